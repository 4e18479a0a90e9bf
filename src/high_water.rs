//! The highest version a signer has signed of each of its role's files, kept in its own state
//! folder (`tuf-signer run --state`), never on the shared volume.
//!
//! Invariant: a signer never signs a file at or below a version it signed before, whatever
//! the shared volume holds now (files removed, an older copy restored, a failed write and a
//! reload): clients that saw the higher version would refuse the lower one as a rollback
//! forever, and an attacker who can write the volume could otherwise have old content signed
//! again. A version is recorded once its file is durable; a signer that finds its newest file
//! on disk below its record stops, naming the file, instead of signing from there.
//!
//! The record is `STATE/ROLE.versions`, one `NAME VERSION` line per signed file, appended and
//! fsynced a batch at a time (a batch touching a few bins writes a few lines, not the whole
//! map), and rewritten compactly when it has grown to several lines per file.
//!
//! A line may also say what the file holds at that version ([`Written`]: `NAME VERSION
//! LENGTH SHA256 EXPIRES KEYID`): the targets signer records each bin it writes or verifies,
//! so that at start it trusts a bin whose bytes are still those (checked when a job first
//! touches it) without reading every bin of a large repository. The trust comes from this
//! folder, the signer's own; the shared volume's files are only ever compared with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::durable::{append_durably, write_durably};
use crate::repository::MetaEntry;
use crate::role::Role;
use crate::{Error, Result};

/// What a signer wrote (or verified) as a file's highest version: its meta entry, its expiry
/// and the key id that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Version, length and SHA-256 of the file's bytes.
    pub meta: MetaEntry,
    /// The file's `expires`.
    pub expires: jiff::Timestamp,
    /// The hex key id of the key that signed it.
    pub key_id: String,
}

/// One role's record of the highest version it signed of each file.
#[derive(Debug)]
pub struct HighWater {
    path: PathBuf,
    highest: HashMap<String, (u64, Option<Written>)>,
    /// Lines in the file, to know when to compact it.
    lines: usize,
}

impl HighWater {
    /// Reads `role`'s record in `state_dir` (none yet: nothing signed by this signer).
    pub fn open(state_dir: &Path, role: Role) -> Result<HighWater> {
        let path = state_dir.join(format!("{}.versions", role.name()));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(Error::io("cannot read the signer's version record", &path)(
                    e,
                ))
            }
        };
        let mut highest: HashMap<String, (u64, Option<Written>)> = HashMap::new();
        let mut lines = 0;
        // A last line without its newline was cut short by a crash mid-append: its file's
        // version is recorded again by the write that follows it, or was never durable.
        let complete = crate::durable::complete_lines(&text);
        for (n, line) in complete.lines().enumerate() {
            let Some((name, version, written)) = parse_line(line) else {
                return Err(Error::Repository {
                    path: path.clone(),
                    reason: format!(
                        "line {} is not NAME VERSION [LENGTH SHA256 EXPIRES KEYID]: this \
                         signer's private state is damaged; restore it from a backup (deleting \
                         it lets the signer sign versions it has signed before)",
                        n + 1
                    ),
                });
            };
            let slot = highest.entry(name.to_string()).or_default();
            // The last line at the highest version says what the file holds.
            if version > slot.0 || (version == slot.0 && written.is_some()) {
                *slot = (version, written);
            }
            lines += 1;
        }
        Ok(HighWater {
            path,
            highest,
            lines,
        })
    }

    /// The highest version of `name` this signer signed, if any.
    pub fn highest(&self, name: &str) -> Option<u64> {
        self.highest.get(name).map(|(v, _)| *v)
    }

    /// What this signer recorded `name` holds at its highest version, if it recorded that.
    pub fn written(&self, name: &str) -> Option<&Written> {
        self.highest.get(name)?.1.as_ref()
    }

    /// Refuses `version` of `name` (the newest on disk, at `path`), when this signer already
    /// signed a higher one: the volume went back.
    pub fn check_loaded(&self, name: &str, version: u64, path: &Path) -> Result<()> {
        match self.highest(name) {
            Some(highest) if version < highest => Err(self.went_back(name, highest, path)),
            _ => Ok(()),
        }
    }

    /// Refuses to sign `version` of `name` (to be written at `path`) at or below a version
    /// this signer already signed.
    pub fn check_next(&self, name: &str, version: u64, path: &Path) -> Result<()> {
        match self.highest(name) {
            Some(highest) if version <= highest => Err(self.went_back(name, highest, path)),
            _ => Ok(()),
        }
    }

    fn went_back(&self, name: &str, highest: u64, path: &Path) -> Error {
        Error::Untrusted {
            path: path.into(),
            reason: format!(
                "this signer already signed version {highest} of {name} ({}): the repository \
                 went back (newer files removed, or an older copy restored). Restore the \
                 newer files; nothing is signed below a version clients may have seen",
                self.path.display()
            ),
        }
    }

    /// Records `signed` (`name`, version), whose files are durable, durably.
    pub fn record<'a>(&mut self, signed: impl IntoIterator<Item = (&'a str, u64)>) -> Result<()> {
        let mut text = String::new();
        for (name, version) in signed {
            let slot = self.highest.entry(name.to_string()).or_default();
            if version > slot.0 {
                *slot = (version, None);
                text.push_str(&format!("{name} {version}\n"));
                self.lines += 1;
            }
        }
        self.append(text)
    }

    /// Records durably, with each version, what its file holds: written by this signer, or
    /// verified by it against a key it trusts. A version below the highest is not recorded.
    pub fn record_written<'a>(
        &mut self,
        written: impl IntoIterator<Item = (&'a str, &'a Written)>,
    ) -> Result<()> {
        let mut text = String::new();
        for (name, w) in written {
            let slot = self.highest.entry(name.to_string()).or_default();
            let version = w.meta.version;
            if version > slot.0 || (version == slot.0 && slot.1.as_ref() != Some(w)) {
                *slot = (version, Some(w.clone()));
                text.push_str(&line(name, version, Some(w)));
                self.lines += 1;
            }
        }
        self.append(text)
    }

    fn append(&mut self, text: String) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        if self.lines > 4 * self.highest.len() + 64 {
            return self.compact();
        }
        append_durably(&self.path, text.as_bytes())
    }

    /// Rewrites the record with one line per file.
    fn compact(&mut self) -> Result<()> {
        let mut names: Vec<(&String, &(u64, Option<Written>))> = self.highest.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        let text: String = names
            .iter()
            .map(|(n, (v, w))| line(n, *v, w.as_ref()))
            .collect();
        write_durably(&self.path, text.as_bytes())?;
        self.lines = names.len();
        Ok(())
    }
}

/// One line of the record: `NAME VERSION`, and what the file holds when known.
fn line(name: &str, version: u64, written: Option<&Written>) -> String {
    match written {
        None => format!("{name} {version}\n"),
        Some(w) => format!(
            "{name} {version} {} {} {} {}\n",
            w.meta.length,
            w.meta.sha256,
            crate::schema::expiry_string(w.expires),
            w.key_id
        ),
    }
}

/// Reads one line back: `None` when it is neither form.
fn parse_line(line: &str) -> Option<(&str, u64, Option<Written>)> {
    let fields: Vec<&str> = line.split(' ').collect();
    let version = fields.get(1)?.parse::<u64>().ok()?;
    let written = match fields[2..] {
        [] => None,
        [length, sha256, expires, key_id] => {
            let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex64(sha256) || !hex64(key_id) {
                return None;
            }
            Some(Written {
                meta: MetaEntry {
                    version,
                    length: length.parse().ok()?,
                    sha256: sha256.to_string(),
                },
                expires: expires.parse().ok()?,
                key_id: key_id.to_string(),
            })
        }
        _ => return None,
    };
    Some((fields[0], version, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_highest_across_opens_and_compactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut hw = HighWater::open(dir.path(), Role::Targets).unwrap();
        let p = Path::new("x");
        hw.record([("bin-0", 3), ("targets", 1)]).unwrap();
        for v in 4..400 {
            hw.record([("bin-0", v)]).unwrap();
        }
        hw.record([("bin-0", 2)]).unwrap(); // lower: not recorded
        let hw = HighWater::open(dir.path(), Role::Targets).unwrap();
        assert_eq!(hw.highest("bin-0"), Some(399));
        assert_eq!(hw.highest("targets"), Some(1));
        assert!(hw.lines < 100, "compacted: {} lines", hw.lines);
        assert!(hw.check_next("bin-0", 399, p).is_err());
        assert!(hw.check_next("bin-0", 400, p).is_ok());
        assert!(hw.check_loaded("bin-0", 398, p).is_err());
        assert!(hw.check_loaded("bin-0", 399, p).is_ok());
        assert!(hw.check_next("bin-1", 1, p).is_ok());
    }

    #[test]
    fn remembers_what_each_highest_version_holds() {
        let dir = tempfile::tempdir().unwrap();
        let written = |version, byte: u8| Written {
            meta: MetaEntry::of(version, &[byte]),
            expires: "2030-01-01T00:00:00Z".parse().unwrap(),
            key_id: "ab".repeat(32),
        };
        let mut hw = HighWater::open(dir.path(), Role::Targets).unwrap();
        hw.record_written([("bin-0", &written(3, 1)), ("bin-1", &written(5, 2))])
            .unwrap();
        hw.record([("bin-0", 4)]).unwrap(); // a version without what it holds
        hw.record_written([("bin-1", &written(4, 9))]).unwrap(); // below: not recorded
        let hw = HighWater::open(dir.path(), Role::Targets).unwrap();
        assert_eq!(hw.highest("bin-0"), Some(4));
        assert_eq!(
            hw.written("bin-0"),
            None,
            "version 4's content is not known"
        );
        assert_eq!(hw.written("bin-1"), Some(&written(5, 2)));
        let mut hw = hw;
        for v in 6..200 {
            hw.record_written([("bin-1", &written(v, 3))]).unwrap();
        }
        let hw = HighWater::open(dir.path(), Role::Targets).unwrap();
        assert_eq!(
            hw.written("bin-1"),
            Some(&written(199, 3)),
            "kept across compaction"
        );
        assert!(hw.lines < 100, "compacted: {} lines", hw.lines);
    }

    #[test]
    fn a_line_cut_short_is_ignored_and_a_damaged_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snapshot.versions");
        std::fs::write(&file, "snapshot 7\nsnapshot 9").unwrap();
        let hw = HighWater::open(dir.path(), Role::Snapshot).unwrap();
        assert_eq!(hw.highest("snapshot"), Some(7));
        // Appended after a torn line: the torn line is cut off, the record reads back.
        let mut hw = HighWater::open(dir.path(), Role::Snapshot).unwrap();
        hw.record([("snapshot", 12)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "snapshot 7\nsnapshot 12\n"
        );
        let hw = HighWater::open(dir.path(), Role::Snapshot).unwrap();
        assert_eq!(hw.highest("snapshot"), Some(12));
        std::fs::write(&file, "snapshot seven\n").unwrap();
        let e = HighWater::open(dir.path(), Role::Snapshot).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        std::fs::write(&file, "snapshot 7 12 nothex 2030-01-01T00:00:00Z k\n").unwrap();
        let e = HighWater::open(dir.path(), Role::Snapshot).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
