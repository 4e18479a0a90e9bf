//! The timestamp signer: points `timestamp.json` at the newest snapshot it is told of.

use tough::schema::{RoleType, Timestamp};

use super::{ensure_key_listed, latest_root, RoleSettings};
use crate::jobs::{check_meta, TimestampJob};
use crate::keys::SigningKey;
use crate::repository::init::timestamp_for;
use crate::repository::layout::write_durably;
use crate::repository::{signed, MetaEntry};
use crate::{Error, Result};

#[derive(Debug)]
pub struct TimestampRole {
    settings: RoleSettings,
    key: SigningKey,
    version: u64,
    snapshot: MetaEntry,
}

impl TimestampRole {
    pub fn load(settings: RoleSettings, key: SigningKey) -> Result<TimestampRole> {
        let layout = &settings.layout;
        ensure_key_listed(&latest_root(layout)?, RoleType::Timestamp, &key, "--key")?;
        let (ts, _) = signed::load::<Timestamp>(&layout.timestamp(), "timestamp")?;
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
        Ok(TimestampRole {
            settings,
            key,
            version: ts.signed.version.get(),
            snapshot,
        })
    }

    /// Whether another replica has written a newer timestamp than the one held here.
    pub fn is_stale(&self) -> Result<bool> {
        let (ts, _) = signed::load::<Timestamp>(&self.settings.layout.timestamp(), "timestamp")?;
        Ok(ts.signed.version.get() > self.version)
    }

    pub fn check(&self, job: &TimestampJob) -> Result<()> {
        check_meta("snapshot.json", &job.snapshot)
    }

    /// Writes a new timestamp when a job names a newer snapshot; returns whether it did.
    pub fn apply(&mut self, jobs: &[TimestampJob]) -> Result<bool> {
        let Some(newest) = jobs.iter().map(|j| &j.snapshot).max_by_key(|m| m.version) else {
            return Ok(false);
        };
        if newest.version <= self.snapshot.version {
            return Ok(false);
        }
        let file = timestamp_for(newest, self.version + 1, &self.key, self.settings.expiries)?;
        write_durably(&self.settings.layout.timestamp(), &file.bytes)?;
        self.version += 1;
        self.snapshot = newest.clone();
        Ok(true)
    }
}
