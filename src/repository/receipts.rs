//! `REPO/control/targets/receipts.jsonl`: what the targets signer did with each submission, so that
//! the submitter's `--wait` can say, per name, signed, refused (and why) or replaced by a
//! later submission, rather than wait for content that will never be published.
//!
//! One line per batch that held submissions, appended once the batch's files and ledger
//! are durable. Receipts are a report, not state: they are not flushed on their own (a
//! crash loses at most the last lines, and the batch, never acknowledged, is applied and
//! receipted again), and when the file passes [`ROTATE_AT`] it becomes `receipts.jsonl.1`
//! (the one before is dropped), which readers read too.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Past this size the file is rotated.
pub const ROTATE_AT: u64 = 8 << 20;

/// What one batch did with the submissions in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The submissions of the batch (ids, see [`crate::submission::id_of`]).
    pub jobs: Vec<String>,
    /// Each bin the batch's names fall in, at its version once the batch was written: a
    /// name's content in a published bin at least this new is what the batch left, or what
    /// a later submission made of it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bins: BTreeMap<String, u64>,
    /// Per submission, the names refused and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<String, BTreeMap<String, String>>,
    /// Per submission, the names left out because a submission issued later had already
    /// changed them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub superseded: BTreeMap<String, Vec<String>>,
    /// Per submission, the names it removed (each not mutable left a tombstone: see
    /// [`crate::repository::tombstones`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, Vec<String>>,
    /// Per submission, the names it published with other bytes than they were last signed
    /// with (`--replace`, or a mutable name), removed since or not.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replaced: BTreeMap<String, Vec<String>>,
    /// Per submission refused as a whole before anything of it was applied (a signature the
    /// signer does not trust, a job that does not parse, one too old), why: it is in the
    /// dead-letter queue (`tuf-client dead-letters`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dead_lettered: BTreeMap<String, String>,
    /// Per submission, the submitter key id its signature is labelled with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub submitters: BTreeMap<String, String>,
    /// The build (and image) of the signer that signed the batch
    /// ([`crate::provenance::describe`]): every signature traces to a build.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signer: String,
}

impl Receipt {
    /// Takes the bins the batch's snapshot job names (its `meta`: file name → entry), at
    /// their versions (top-level targets left out).
    pub fn set_bins(&mut self, meta: &std::collections::BTreeMap<String, super::MetaEntry>) {
        let top = crate::role::Role::Targets.name();
        self.bins = meta
            .iter()
            .filter_map(|(file, m)| {
                Some((crate::schema::role_of_listed(file)?.to_string(), m.version))
            })
            .filter(|(role, _)| role != top)
            .collect();
    }
}

/// Where receipts are written and read.
#[derive(Debug, Clone)]
pub struct Receipts {
    path: PathBuf,
}

impl Receipts {
    /// `layout`'s receipts, in the targets signer's folder (`control/targets/`).
    pub fn new(layout: &super::Layout) -> Receipts {
        Receipts {
            path: layout
                .role_dir(crate::role::Role::Targets)
                .join("receipts.jsonl"),
        }
    }

    fn rotated(&self) -> PathBuf {
        self.path.with_extension("jsonl.1")
    }

    /// Appends `receipt` when it names a submission. A report, not state: a receipt lost
    /// costs a submitter's `--wait` its detail (it then waits for coverage), never a signed
    /// file, so a failure is only logged.
    pub fn record(&self, receipt: &Receipt) {
        if receipt.jobs.is_empty() {
            return;
        }
        if let Err(e) = self.append(receipt) {
            tracing::warn!(error = %e, "cannot write the receipt of a batch");
        }
    }

    /// Appends one batch's receipt (see the module's comment for why without a flush).
    pub fn append(&self, receipt: &Receipt) -> Result<()> {
        let mut line = serde_json::to_vec(receipt).expect("receipts serialise");
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(Error::io("cannot open the receipts", &self.path))?;
        file.write_all(&line)
            .map_err(Error::io("cannot append to the receipts", &self.path))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > ROTATE_AT {
            std::fs::rename(&self.path, self.rotated())
                .map_err(Error::io("cannot rotate the receipts", &self.path))?;
        }
        Ok(())
    }

    /// A reader from the current end of the receipts: it sees what is appended from now on.
    pub fn follow(&self) -> ReceiptReader {
        let (offset, inode) = identity(&self.path);
        ReceiptReader {
            receipts: self.clone(),
            offset,
            inode,
            partial: Vec::new(),
        }
    }
}

/// Reads the receipts appended since it was made, across a rotation.
#[derive(Debug)]
pub struct ReceiptReader {
    receipts: Receipts,
    offset: u64,
    /// The file `offset` is in: another one at the path means it was rotated.
    inode: u64,
    /// The start of a line not yet complete.
    partial: Vec<u8>,
}

impl ReceiptReader {
    /// The receipts appended since the last call that name one of `ids`.
    pub fn read_new(&mut self, ids: &std::collections::HashSet<String>) -> Vec<Receipt> {
        let mut bytes = Vec::new();
        let (_, inode) = identity(&self.receipts.path);
        if inode != self.inode {
            // Rotated: the rest of the old file first, then the new one from its start.
            if identity(&self.receipts.rotated()).1 == self.inode {
                read_from(&self.receipts.rotated(), self.offset, &mut bytes);
            }
            self.offset = 0;
            self.inode = inode;
        }
        self.offset += read_from(&self.receipts.path, self.offset, &mut bytes);
        let mut text = std::mem::take(&mut self.partial);
        text.extend(bytes);
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.partial = text.split_off(complete);
        text.split(|b| *b == b'\n')
            .filter(|line| {
                let line = String::from_utf8_lossy(line);
                ids.iter().any(|id| line.contains(id.as_str()))
            })
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect()
    }
}

/// The size and inode of `path` (zeros when it is missing).
fn identity(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or((0, 0), |m| (m.len(), m.ino()))
}

/// Appends to `out` what `path` holds from `offset` on; returns how many bytes.
fn read_from(path: &Path, offset: u64, out: &mut Vec<u8>) -> u64 {
    let Ok(mut file) = std::fs::File::open(path) else {
        return 0;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return 0;
    }
    file.read_to_end(out).map(|n| n as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_its_receipts_appended_later_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let layout = super::super::Layout::new(dir.path());
        std::fs::create_dir_all(layout.role_dir(crate::role::Role::Targets)).unwrap();
        let receipts = Receipts::new(&layout);
        let receipt = |id: &str| Receipt {
            jobs: vec![id.into()],
            ..Default::default()
        };
        receipts.append(&receipt("before")).unwrap();
        let mut reader = receipts.follow();
        let ids = ["mine".to_string()].into_iter().collect();
        assert!(reader.read_new(&ids).is_empty(), "nothing of ours yet");
        receipts.append(&receipt("other")).unwrap();
        receipts.append(&receipt("mine")).unwrap();
        assert_eq!(reader.read_new(&ids), [receipt("mine")]);
        // A rotation between two reads loses nothing.
        receipts.append(&receipt("mine")).unwrap();
        std::fs::rename(&receipts.path, receipts.rotated()).unwrap();
        receipts.append(&receipt("mine")).unwrap();
        assert_eq!(reader.read_new(&ids).len(), 2);
        assert!(reader.read_new(&ids).is_empty());
    }
}
