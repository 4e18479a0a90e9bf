//! Whether the published `timestamp.json` covers what we submitted: timestamp → its snapshot
//! → each target's bin at the version that snapshot names → the entry with our length and
//! hash (or, for a removal, no entry).

use std::collections::HashMap;

use tough::schema::{Snapshot, Timestamp};

use crate::schema::Targets;
use tough::TargetName;

use crate::repository::{signed, HashBins, Layout};
use crate::{Error, Result};

/// What a name should look like once published: `Some((length, sha256))`, or `None` for
/// removed.
pub type Expected = HashMap<String, Option<(u64, String)>>;

pub struct Coverage {
    layout: Layout,
    bins_cache: HashMap<(String, u64), Targets>,
    last_timestamp: Vec<u8>,
    /// Top-level targets version and the bins it delegates to.
    top: Option<(u64, HashBins)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub timestamp_version: u64,
    pub done: usize,
}

impl Coverage {
    pub fn new(layout: Layout) -> Self {
        Coverage {
            layout,
            bins_cache: HashMap::new(),
            last_timestamp: Vec::new(),
            top: None,
        }
    }

    /// Removes from `pending` every name the current timestamp covers. Cheap when the
    /// timestamp has not changed since the last call: nothing new can be covered then.
    pub fn check(&mut self, pending: &mut Expected) -> Result<Progress> {
        let path = self.layout.timestamp();
        let bytes = std::fs::read(&path).map_err(Error::io("cannot read", &path))?;
        if bytes == self.last_timestamp {
            return Ok(Progress {
                timestamp_version: 0,
                done: 0,
            });
        }
        let ts: tough::schema::Signed<Timestamp> =
            serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
                what: "timestamp",
                path: path.clone(),
                source,
            })?;
        let snap_version = ts
            .signed
            .meta
            .get("snapshot.json")
            .map(|m| m.version.get())
            .ok_or_else(|| Error::Verify("timestamp.json names no snapshot".into()))?;
        let (snapshot, _) =
            signed::load::<Snapshot>(&self.layout.versioned("snapshot", snap_version), "snapshot")?;
        // The bin count is what top-level targets delegates (the snapshot may also list the
        // retired bins of an earlier count).
        let top_version = snapshot
            .signed
            .meta
            .get("targets.json")
            .map(|m| m.version.get())
            .ok_or_else(|| Error::Verify("snapshot lists no targets.json".into()))?;
        if self.top.as_ref().is_none_or(|(v, _)| *v != top_version) {
            let (top, _) =
                signed::load::<Targets>(&self.layout.versioned("targets", top_version), "targets")?;
            let count = top.signed.delegations.map_or(0, |d| d.roles.len()) as u32;
            self.top = Some((top_version, HashBins::new(count)?));
        }
        let bins = self.top.expect("just set").1;
        let before = pending.len();
        let mut done = Vec::new();
        for (name, want) in pending.iter() {
            let bin = bins.name(bins.index_of(name));
            let version = snapshot
                .signed
                .meta
                .get(&format!("{bin}.json"))
                .map(|m| m.version.get())
                .ok_or_else(|| Error::Verify(format!("snapshot lists no {bin}.json")))?;
            let key = (bin.clone(), version);
            if !self.bins_cache.contains_key(&key) {
                let (targets, _) =
                    signed::load::<Targets>(&self.layout.versioned(&bin, version), "bin")?;
                self.bins_cache.insert(key.clone(), targets.signed);
            }
            let targets = &self.bins_cache[&key];
            let target_name =
                TargetName::new(name.as_str()).map_err(|e| Error::Usage(e.to_string()))?;
            let found = targets
                .targets
                .get(&target_name)
                .map(|t| (t.length, hex::encode(&t.hashes.sha256)));
            if &found == want {
                done.push(name.clone());
            }
        }
        for name in done {
            pending.remove(&name);
        }
        // Only now: a failed read above (a file mid-rename) must be retried next time.
        self.last_timestamp = bytes;
        Ok(Progress {
            timestamp_version: ts.signed.version.get(),
            done: before - pending.len(),
        })
    }
}
