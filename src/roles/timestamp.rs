//! The timestamp signer: points `timestamp.json` at the newest snapshot it is told of.

use crate::schema::Timestamp;
use tough::schema::RoleType;

use super::stage::{Applied, Core, Last, Stage};
use super::{load_state, read_verified, voucher_of, vouches, RoleSettings};
use crate::jobs::{check_meta, TimestampJob};
use crate::keys::RoleKeys;
use crate::repository::build;
use crate::repository::{signed, MetaEntry};
use crate::role::Role;
use crate::trusted::RootChain;
use crate::{Error, Result};

/// The timestamp signer's state: the timestamp as last signed and the snapshot it names.
#[derive(Debug)]
pub struct TimestampRole {
    core: Core,
    version: u64,
    expires: jiff::Timestamp,
    snapshot: MetaEntry,
    /// The roots, to check snapshots against.
    chain: RootChain,
}

impl TimestampRole {
    /// Loads the signer's state from the repository, verified against the root chain from the pin.
    pub fn load(settings: RoleSettings, keys: RoleKeys) -> Result<TimestampRole> {
        let layout = &settings.layout;
        let chain = RootChain::load(layout, &settings.pin)?;
        let path = layout.timestamp();
        let (ts, _) = load_state::<Timestamp>(&chain, &path, Role::Timestamp, None)?;
        let snapshot = ts
            .signed
            .meta
            .get(Role::Snapshot.file())
            .and_then(MetaEntry::from_metafile)
            .ok_or_else(|| Error::Repository {
                path: layout.timestamp(),
                reason: "timestamp.json does not describe snapshot.json with length and sha256"
                    .into(),
            })?;
        let mut core = Core::new(settings, Role::Timestamp, keys, &chain)?;
        core.check_loaded(Role::Timestamp.name(), ts.signed.version.get(), &path)?;
        core.check_signed_by_key(&ts, Role::Timestamp);
        Ok(TimestampRole {
            core,
            chain,
            version: ts.signed.version.get(),
            expires: ts.signed.expires,
            snapshot,
        })
    }
}

impl Stage for TimestampRole {
    fn published(&self) -> Vec<(&'static str, u64, jiff::Timestamp)> {
        vec![(Role::Timestamp.name(), self.version, self.expires)]
    }

    const ROLE: Role = Role::Timestamp;
    type Job = TimestampJob;
    type Next = Last;

    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    /// Whether another replica has written a newer timestamp than the one held here.
    fn is_stale(&self) -> Result<bool> {
        let (ts, _) =
            signed::load::<Timestamp>(&self.layout().timestamp(), Role::Timestamp.name())?;
        Ok(ts.signed.version.get() > self.version)
    }

    /// Nothing follows the timestamp.
    fn resync(&self) -> Result<Option<Last>> {
        Ok(None)
    }

    /// A job's snapshot entry is a hint: a snapshot newer than the current one is read and
    /// verified against the root's snapshot keys, and its version, length and sha256 are
    /// taken from the bytes. One that does not verify, or was never written, refuses the job
    /// (a job naming version 2^64-1, once signed, would leave no version above it: every
    /// client would be stuck).
    ///
    /// The snapshot signer signs its jobs. When its key alone meets the root's snapshot
    /// threshold, its signature vouches for the sha256 listed: the snapshot's bytes must hash
    /// to it, and the snapshot is neither verified nor parsed again. A signature by a key
    /// the root does not give the snapshot role refuses the job.
    fn check(&mut self, mut job: TimestampJob) -> Result<TimestampJob> {
        // Before anything is taken out of the job: the signature covers all of it.
        let layout = &self.core.settings.layout;
        self.chain.refresh(layout)?;
        let root = &self.chain.current;
        let keys = root.keys_of(RoleType::Snapshot);
        let candidates = keys.iter().map(|k| (*k).clone()).collect();
        let voucher = voucher_of(&job, candidates, "the snapshot role")?
            .filter(|k| vouches(root.threshold_of(RoleType::Snapshot), &keys, k));
        let Some(hint) = job.snapshot.take() else {
            return if job.refresh_expiry || job.check_expiry {
                Ok(job)
            } else {
                Err(Error::InvalidJob("the job names no snapshot".into()))
            };
        };
        check_meta(Role::Snapshot.file(), &hint)?;
        if hint.version <= self.snapshot.version {
            return Ok(job); // nothing newer: a redelivery or a resync
        }
        let chain = &self.chain;
        let vouched = voucher.is_some().then_some(&hint);
        let verified = read_verified(
            layout,
            (Role::Snapshot, hint.version),
            (vouched, false),
            |b, p| chain.verify_role(b, p, RoleType::Snapshot),
        )?;
        job.snapshot = verified.map(|(_, entry)| entry);
        Ok(job)
    }

    /// Writes a new timestamp when a job names a newer snapshot, when asked to refresh it, or
    /// when it is inside its refresh window.
    fn apply(&mut self, jobs: &[TimestampJob]) -> Result<Applied<Last>> {
        let newest = jobs
            .iter()
            .filter_map(|j| j.snapshot.as_ref())
            .max_by_key(|m| m.version);
        let newer = newest
            .filter(|m| m.version > self.snapshot.version)
            .cloned();
        let force = jobs.iter().any(|j| j.refresh_expiry);
        let expiring = self
            .core
            .expiring(self.expires, self.core.settings.expiries.timestamp);
        if newer.is_none() && !force && !expiring {
            return Ok(Applied::new(0, None));
        }
        if let Some(meta) = newer {
            self.snapshot = meta;
        }
        self.sign_new_version()?;
        Ok(Applied::new(1, None))
    }
}

impl TimestampRole {
    fn sign_new_version(&mut self) -> Result<()> {
        let layout = &self.core.settings.layout;
        let name = Role::Timestamp.name();
        let version = self
            .core
            .next_version(name, self.version, &layout.timestamp())?;
        let file = build::timestamp(
            &self.snapshot,
            version,
            &self.core.top_level_keys(),
            self.core.settings.expiries,
        )?;
        layout
            .staging()?
            .write_durably(&layout.timestamp(), &file.bytes)?;
        self.core.high_water.record([(name, version)])?;
        self.version = version;
        self.expires = crate::repository::expiry::expires_in(self.core.settings.expiries.timestamp);
        self.core.new_key = false;
        Ok(())
    }
}
