//! The timestamp signer: points `timestamp.json` at the newest snapshot it is told of.

use tough::schema::{RoleType, Timestamp};

use super::{label_key, load_state, read_verified, signed_by, RoleSettings};
use crate::jobs::{check_meta, TimestampJob};
use crate::keys::SigningKey;
use crate::repository::init::timestamp_for;
use crate::repository::{signed, MetaEntry};
use crate::verify::RootChain;
use crate::{Error, Result};

#[derive(Debug)]
pub struct TimestampRole {
    settings: RoleSettings,
    key: SigningKey,
    version: u64,
    expires: jiff::Timestamp,
    snapshot: MetaEntry,
    /// The current timestamp.json is not signed by this signer's key (a key rotation).
    new_key: bool,
    /// The roots, to check snapshots against.
    chain: RootChain,
}

impl TimestampRole {
    pub fn load(settings: RoleSettings, key: SigningKey) -> Result<TimestampRole> {
        let layout = &settings.layout;
        let chain = RootChain::load(layout)?;
        let key = label_key(&chain.current, RoleType::Timestamp, key, "--key")?;
        let path = layout.timestamp();
        let (ts, _) =
            load_state::<Timestamp>(&chain, &path, RoleType::Timestamp, "timestamp", None)?;
        let snapshot = ts
            .signed
            .meta
            .get("snapshot.json")
            .and_then(MetaEntry::from_metafile)
            .ok_or_else(|| Error::Repository {
                path: layout.timestamp(),
                reason: "timestamp.json does not describe snapshot.json with length and sha256"
                    .into(),
            })?;
        let new_key = !signed_by(&ts, &key);
        if new_key {
            tracing::info!(
                key_id = key.key_id(),
                "timestamp.json is not signed by this key yet: re-signing it now"
            );
        }
        Ok(TimestampRole {
            new_key,
            chain,
            settings,
            key,
            version: ts.signed.version.get(),
            expires: ts.signed.expires,
            snapshot,
        })
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn layout(&self) -> &crate::repository::Layout {
        &self.settings.layout
    }

    /// How often the worker should look for metadata about to expire.
    pub fn refresh_interval(&self) -> std::time::Duration {
        super::refresh_check_interval(&self.settings, &[self.settings.expiries.timestamp])
    }

    /// Whether another replica has written a newer timestamp than the one held here.
    pub fn is_stale(&self) -> Result<bool> {
        let (ts, _) = signed::load::<Timestamp>(&self.settings.layout.timestamp(), "timestamp")?;
        Ok(ts.signed.version.get() > self.version)
    }

    /// A job's snapshot entry is a hint: a snapshot newer than the current one is read and
    /// verified against the root's snapshot keys, and its version, length and sha256 are
    /// taken from the bytes. One that does not verify, or was never written, refuses the job
    /// (issue 10: a job naming version 2^64-1 was signed and broke every client).
    pub fn check(&mut self, mut job: TimestampJob) -> Result<TimestampJob> {
        let Some(hint) = job.snapshot.take() else {
            return if job.refresh_expiry || job.check_expiry {
                Ok(job)
            } else {
                Err(Error::InvalidJob("the job names no snapshot".into()))
            };
        };
        check_meta("snapshot.json", &hint)?;
        if hint.version <= self.snapshot.version {
            return Ok(job); // nothing newer: a redelivery or a resync
        }
        let layout = &self.settings.layout;
        self.chain.refresh(layout)?;
        let chain = &self.chain;
        let verified = read_verified(
            layout,
            "snapshot",
            hint.version,
            "snapshot",
            None,
            |b, p| chain.verify_role(b, p, RoleType::Snapshot),
        )?;
        job.snapshot = verified.map(|(_, entry)| entry);
        Ok(job)
    }

    /// Writes a new timestamp when a job names a newer snapshot, when asked to refresh it, or
    /// when it is inside its refresh window; returns whether it did.
    pub fn apply(&mut self, jobs: &[TimestampJob]) -> Result<bool> {
        let newest = jobs
            .iter()
            .filter_map(|j| j.snapshot.as_ref())
            .max_by_key(|m| m.version);
        let newer = newest
            .filter(|m| m.version > self.snapshot.version)
            .cloned();
        let force = jobs.iter().any(|j| j.refresh_expiry);
        if newer.is_none() && !force && !self.expiring() {
            return Ok(false);
        }
        if let Some(meta) = newer {
            self.snapshot = meta;
        }
        self.sign_new_version()?;
        Ok(true)
    }

    fn expiring(&self) -> bool {
        self.new_key
            || super::expires_within(
                self.expires,
                self.settings.expiries.timestamp,
                self.settings.refresh_window,
            )
    }

    fn sign_new_version(&mut self) -> Result<()> {
        let file = timestamp_for(
            &self.snapshot,
            self.version + 1,
            &self.key,
            self.settings.expiries,
        )?;
        let layout = &self.settings.layout;
        layout
            .staging()?
            .write_durably(&layout.timestamp(), &file.bytes)?;
        self.version += 1;
        self.expires = crate::repository::expiry::expires_in(self.settings.expiries.timestamp);
        self.new_key = false;
        Ok(())
    }
}
