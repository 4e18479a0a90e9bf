//! `REPO/control/`: the operator's switches and the signers' coordination, beside the
//! metadata but never served (only `metadata/` and `targets/` are). Each file is in the folder
//! of the one agent that writes it:
//!
//! - `pause/paused.json`: while it exists the targets signer takes no new jobs (they wait in
//!   the queue); expiry refresh goes on. Written by `tuf-client pause`, removed by `resume`.
//!   (`control/paused.json`, where a repository made before per-writer folders kept it, is
//!   still obeyed, and removed by `resume`.)
//! - `ROLE/ROLE.lock`: every write of a role's metadata happens under this file lock, and the
//!   lock file names the last writer. A replica that finds another's name there reloads
//!   before writing, so two replicas never sign the same version twice.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Layout;
use crate::durable::{create_dir, sync_dir, write_durably};
use crate::role::Role;
use crate::{Error, Result};

/// The switches under `REPO/control/`: pausing the signers, and each role's write lock.
#[derive(Debug, Clone)]
pub struct Control {
    layout: Layout,
}

/// Why and since when the signers are paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// When the pause began.
    pub since: jiff::Timestamp,
    /// Why, as the operator gave it (`tuf-client pause --reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Control {
    /// The control folder of the repository at `layout`.
    pub fn new(layout: &Layout) -> Control {
        Control {
            layout: layout.clone(),
        }
    }

    fn paused_file(&self) -> PathBuf {
        self.layout.pause_dir().join("paused.json")
    }

    /// Where a repository made before per-writer folders kept the switch.
    fn legacy_paused_file(&self) -> PathBuf {
        self.layout.control_dir().join("paused.json")
    }

    /// Pauses the targets signers; returns the pause already in force, if any.
    pub fn pause(&self, reason: Option<String>) -> Result<Option<Pause>> {
        if let Some(p) = self.paused()? {
            return Ok(Some(p));
        }
        create_dir(&self.layout.pause_dir())?;
        let pause = Pause {
            since: jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
                .expect("now is in range"),
            reason,
        };
        write_durably(
            &self.paused_file(),
            &serde_json::to_vec_pretty(&pause).expect("serialises"),
        )?;
        Ok(None)
    }

    /// Resumes; returns the pause that was in force, if any.
    pub fn resume(&self) -> Result<Option<Pause>> {
        let was = self.paused()?;
        for path in [self.paused_file(), self.legacy_paused_file()] {
            match std::fs::remove_file(&path) {
                Ok(()) => sync_dir(crate::durable::folder_of(&path))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("cannot remove", &path)(e)),
            }
        }
        Ok(was)
    }

    /// The pause in force. An unreadable pause file still counts as a pause: stopping is the
    /// safe reading of a switch we cannot read.
    pub fn paused(&self) -> Result<Option<Pause>> {
        let legacy = self.legacy_paused_file();
        let path = if legacy.exists() {
            legacy
        } else {
            self.paused_file()
        };
        // Written by the operator's user: a plain file only, read without blocking.
        let unreadable = |why: String| Pause {
            since: jiff::Timestamp::UNIX_EPOCH,
            reason: Some(format!("{} is unreadable ({why})", path.display())),
        };
        match crate::durable::read_plain(&path, 64 * 1024) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).unwrap_or_else(|e| unreadable(e.to_string())),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Ok(Some(unreadable(e.to_string())))
            }
            Err(e) => Err(Error::io("cannot read the pause switch", path)(e)),
        }
    }

    /// Takes `role`'s write lock, waiting for another replica to finish its write.
    pub fn lock(&self, role: Role) -> Result<RoleLock> {
        let dir = self.layout.role_dir(role);
        create_dir(&dir)?;
        let path = dir.join(format!("{role}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("cannot open lock file", &path))?;
        flock(&file, true).map_err(Error::io("cannot lock", &path))?;
        Ok(RoleLock { file, path })
    }
}

/// `flock(LOCK_EX)` on `file`: waiting for it when `wait`, else `Ok(false)` when another
/// holder has it. (`File::lock` does this from Rust 1.89; we build with 1.85+.) The lock goes
/// with the file descriptor, so dropping the file releases it, and so does a crash.
pub(crate) fn flock(file: &File, wait: bool) -> std::io::Result<bool> {
    use rustix::fs::FlockOperation;
    let operation = if wait {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    loop {
        match rustix::fs::flock(file, operation) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) if !wait => return Ok(false),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A role's write lock, held until dropped.
#[derive(Debug)]
pub struct RoleLock {
    file: File,
    path: PathBuf,
}

impl RoleLock {
    /// Who wrote the role's metadata last (empty before anyone recorded a write).
    pub fn last_writer(&mut self) -> Result<String> {
        let mut text = String::new();
        self.file
            .rewind()
            .and_then(|()| self.file.read_to_string(&mut text))
            .map_err(Error::io("cannot read lock file", &self.path))?;
        Ok(text)
    }

    /// Records `writer` as the last writer. Not fsynced: after a machine crash every signer
    /// restarts, and a restarted signer reloads from disk anyway.
    pub fn record(&mut self, writer: &str) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .and_then(|()| self.file.write_all(writer.as_bytes()))
            .map_err(Error::io("cannot write lock file", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_resume_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::new(&Layout::new(dir.path()));
        assert_eq!(control.paused().unwrap(), None);
        assert_eq!(control.pause(Some("release freeze".into())).unwrap(), None);
        let p = control.paused().unwrap().unwrap();
        assert_eq!(p.reason.as_deref(), Some("release freeze"));
        assert_eq!(
            control.pause(None).unwrap(),
            Some(p.clone()),
            "already paused"
        );
        assert_eq!(control.resume().unwrap(), Some(p));
        assert_eq!(control.resume().unwrap(), None);
    }

    #[test]
    fn lock_remembers_the_last_writer() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::new(&Layout::new(dir.path()));
        let mut lock = control.lock(Role::Targets).unwrap();
        assert_eq!(lock.last_writer().unwrap(), "");
        lock.record("writer-a-long-name").unwrap();
        lock.record("writer-b").unwrap();
        drop(lock);
        assert_eq!(
            control.lock(Role::Targets).unwrap().last_writer().unwrap(),
            "writer-b"
        );
    }
}
