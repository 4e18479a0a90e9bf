//! Whether the published `timestamp.json` covers what we submitted: timestamp → its snapshot
//! → each target's bin at the version that snapshot names → the entry with our length and
//! hash (or, for a removal, no entry).

use std::collections::HashMap;

use tough::schema::{Snapshot, Targets, Timestamp};
use tough::TargetName;

use crate::repository::{signed, HashBins, Layout};
use crate::{Error, Result};

/// What a name should look like once published: `Some((length, sha256))`, or `None` for
/// removed.
pub type Expected = HashMap<String, Option<(u64, String)>>;

pub struct Coverage {
    layout: Layout,
    bins_cache: HashMap<(String, u64), Targets>,
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
        }
    }

    /// Removes from `pending` every name the current timestamp covers.
    pub fn check(&mut self, pending: &mut Expected) -> Result<Progress> {
        let (ts, _) = signed::load::<Timestamp>(&self.layout.timestamp(), "timestamp")?;
        let snap_version = ts
            .signed
            .meta
            .get("snapshot.json")
            .map(|m| m.version.get())
            .ok_or_else(|| Error::Verify("timestamp.json names no snapshot".into()))?;
        let (snapshot, _) =
            signed::load::<Snapshot>(&self.layout.versioned("snapshot", snap_version), "snapshot")?;
        let bin_count = snapshot.signed.meta.len().saturating_sub(1) as u32;
        let bins = HashBins::new(bin_count)?;
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
        Ok(Progress {
            timestamp_version: ts.signed.version.get(),
            done: before - pending.len(),
        })
    }
}
