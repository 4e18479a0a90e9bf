//! Removed releases: every name removed that is not mutable leaves a tombstone, so that a
//! release keeps its bytes across removal; so does Composer's `p2/VENDOR/NAME.json`, whose
//! released versions keep their archive and dependencies across its removal
//! ([`crate::repository::composer_p2`]).
//!
//! Invariant: once a release name was signed with some bytes, publishing it again with other
//! bytes needs `--replace`, whether or not it was removed in between; only the mutable names
//! (Composer's metadata, dev versions: [`crate::submission::Mutable`]) change freely. A
//! tombstone holds the bytes' length and sha256 as last signed, when the name was removed and
//! by which submitter key. It is written durably before the bins that drop the name (a crash
//! in between re-applies the removal and writes the tombstone again: a duplicate line, never
//! a lost one), and kept for good: a few hundred bytes a removal.
//!
//! The file, `tombstones.jsonl` beside the submission ledger, is the targets signer's: it is
//! read only if it is a plain file of the signer's own user (or root's), never through a
//! symlink.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a removal left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The target name removed.
    pub name: String,
    /// Its length in bytes as last signed.
    pub length: u64,
    /// Hex.
    pub sha256: String,
    /// When the removal was applied.
    pub removed: jiff::Timestamp,
    /// The submitter key id the removal was signed with, as the submission labels it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The targets signer's tombstones, newest per name.
#[derive(Debug)]
pub struct Tombstones {
    path: PathBuf,
    newest: HashMap<String, Tombstone>,
}

impl Tombstones {
    /// The tombstones beside `ledger` (none yet: nothing removed).
    pub fn open(ledger: &Path) -> Result<Tombstones> {
        let path = ledger.with_file_name("tombstones.jsonl");
        let text = match crate::repository::signed::read_own(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                String::new()
            }
            Err(e) => return Err(e),
        };
        let mut newest = HashMap::new();
        // A last line without its newline was cut short by a crash: the removal it recorded
        // was not applied yet, and is recorded again when its batch comes back.
        let complete = crate::durable::complete_lines(&text);
        for (n, line) in complete.lines().enumerate() {
            let stone: Tombstone = serde_json::from_str(line).map_err(|e| Error::Repository {
                path: path.clone(),
                reason: format!(
                    "line {} is not a tombstone ({e}): restore the file from a backup; without \
                     it, removed releases could be published again with other bytes",
                    n + 1
                ),
            })?;
            newest.insert(stone.name.clone(), stone);
        }
        Ok(Tombstones { path, newest })
    }

    /// The newest tombstone of `name`.
    pub fn of(&self, name: &str) -> Option<&Tombstone> {
        self.newest.get(name)
    }

    /// Appends `stones`, flushed, before the removals they record are written.
    pub fn bury(&mut self, stones: Vec<Tombstone>) -> Result<()> {
        if stones.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for stone in &stones {
            serde_json::to_writer(&mut text, stone).expect("tombstones serialise");
            text.push(b'\n');
        }
        crate::durable::append_durably(&self.path, &text)?;
        for stone in stones {
            self.newest.insert(stone.name.clone(), stone);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_last_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("submissions.jsonl");
        let mut stones = Tombstones::open(&ledger).unwrap();
        assert!(stones.of("drupal/token/1.0.0.0").is_none());
        let stone = Tombstone {
            name: "drupal/token/1.0.0.0".into(),
            length: 3,
            sha256: "ab".repeat(32),
            removed: jiff::Timestamp::now(),
            by: Some("cafe".into()),
        };
        stones.bury(vec![stone.clone()]).unwrap();
        let mut text = std::fs::read_to_string(dir.path().join("tombstones.jsonl")).unwrap();
        text.push_str("{\"name\":\"torn");
        std::fs::write(dir.path().join("tombstones.jsonl"), text).unwrap();
        let stones = Tombstones::open(&ledger).unwrap();
        assert_eq!(stones.of("drupal/token/1.0.0.0"), Some(&stone));
    }
}
