//! Where writes to the served folders are staged: never in them.
//!
//! Clients and web servers see `metadata/` and `targets/`; a temp file there (half written,
//! or left by a killed writer) would be served, listed, and never cleaned. So every write to
//! a served folder goes: temp file in `REPO/control/staging/PROCESS/` (same file system, so
//! the rename or link into place is atomic) → fsync → rename or link → fsync of the folder.
//!
//! Each process stages in a folder of its own, which it holds a lock on for as long as it
//! runs: the folder appears under its name only once locked (it is made as `.new-NAME`, and
//! renamed). When a process opens its staging folder it removes every other one whose lock
//! is free (its process is gone: killed mid-write, say) and that it may remove: each agent
//! cleans up after its own kind, since agents run as different users. Leftovers of the
//! layout before this one (`.NAME.tmp-PID` beside the file in `metadata/`) go too, once an
//! hour old.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::control::flock;
use crate::durable::folder::{name_of, Folder};
use crate::durable::{create_dir, folder_of};
use crate::{Error, Result};

/// The name a staging folder has until it is locked.
const PENDING: &str = ".new-";

/// How old a temp file of the former layout (beside the file) must be before it is removed:
/// a writer of that layout may still be running during an upgrade.
const OLD_TEMP_AGE: Duration = Duration::from_secs(3600);

/// A process's staging folder, locked while the process runs, and held open: temp files are
/// made in it through its handle, and moved into place between held handles ([`Folder`]), so
/// a staging folder swapped for a symlink by another user redirects nothing.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    folder: Folder,
    next: AtomicU64,
    /// Holds the lock that tells other processes this folder is in use.
    _lock: File,
}

impl Staging {
    /// Opens (creates) this process's folder under `staging_root`, locks it, and removes the
    /// folders of processes that are gone. `served` are the folders whose old-style temp
    /// files are removed.
    pub fn open(staging_root: &Path, served: &[PathBuf]) -> Result<Staging> {
        create_shared_dir(staging_root)?;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("{}-{nanos}", std::process::id());
        // Locked before it has the name other processes look at: one that opens its staging
        // folder at the same moment never finds it unlocked.
        let pending = staging_root.join(format!("{PENDING}{name}"));
        std::fs::create_dir(&pending).map_err(Error::io("cannot create directory", &pending))?;
        let folder = Folder::open(&pending)?;
        let lock_path = pending.join(".lock");
        let lock = folder.open_lock(".lock")?;
        if !flock(&lock, false).map_err(Error::io("cannot lock", &lock_path))? {
            return Err(Error::Repository {
                path: pending,
                reason: "another process holds this staging folder".into(),
            });
        }
        let dir = staging_root.join(name);
        std::fs::rename(&pending, &dir).map_err(Error::io("cannot name", &pending))?;
        let staging = Staging {
            folder: folder.renamed(&dir),
            dir,
            next: AtomicU64::new(0),
            _lock: lock,
        };
        let removed = staging.remove_leftovers(staging_root) + remove_old_temps(served);
        if removed > 0 {
            tracing::info!(
                removed,
                "removed temp files left by writers that were stopped mid-write"
            );
        }
        Ok(staging)
    }

    /// The folder temp files go in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the staging folders under `root` whose process is gone; returns how many
    /// files went. A folder this process may not remove (another agent's) is left alone.
    fn remove_leftovers(&self, root: &Path) -> usize {
        let Ok(entries) = fs::read_dir(root) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path == self.dir || !path.is_dir() {
                continue;
            }
            let being_made = entry.file_name().to_string_lossy().starts_with(PENDING);
            let lock = OpenOptions::new().read(true).open(path.join(".lock"));
            let free = match &lock {
                // A process is making it this instant: only an old one was abandoned.
                _ if being_made => is_older_than(&path, Duration::from_secs(60)),
                Ok(file) => flock(file, false).unwrap_or(false),
                // Not made by a staging process (or not ours to open): left alone.
                Err(_) => false,
            };
            if !free {
                continue;
            }
            let files = fs::read_dir(&path)
                .map(|d| d.count().saturating_sub(usize::from(lock.is_ok())))
                .unwrap_or(0);
            if fs::remove_dir_all(&path).is_ok() {
                removed += files;
            }
        }
        removed
    }

    /// A fresh temp name for a file that will be called `name`.
    fn temp_for(&self, name: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{n}.{name}")
    }

    /// Writes `bytes` to `path` so that a crash leaves either the old or the new content.
    pub fn write_durably(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.replace(path, bytes, true)
    }

    /// As [`Staging::write_durably`], for a file nothing waits for (a gzip copy, made off the
    /// signing path): without the failpoint the crash tests aim at the signing path's writes.
    pub fn write_aside_durably(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.replace(path, bytes, false)
    }

    fn replace(&self, path: &Path, bytes: &[u8], failpoint: bool) -> Result<()> {
        let (dest, name) = (Folder::open(folder_of(path))?, name_of(path)?);
        let tmp = if failpoint {
            self.write_temp(name, bytes)?
        } else {
            let tmp = self.temp_for(name);
            self.folder.create_new(&tmp, bytes, true, 0o666)?;
            tmp
        };
        let renamed = self.folder.rename(&tmp, &dest, name);
        if renamed.is_err() {
            let _ = self.folder.remove(&tmp);
        }
        renamed.map_err(|e| place_error(path, e))?;
        dest.sync()
    }

    /// Writes a new version of a metadata file, which must not exist yet: a version, once
    /// published, never changes (clients hold its hash). Finding it there with other content
    /// means another signer wrote it; that is an error (the signer reloads and tries again),
    /// never a silent overwrite. The same content is fine: the write was already done.
    pub fn write_version_durably(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let (dest, name) = (Folder::open(folder_of(path))?, name_of(path)?);
        let tmp = self.write_temp(name, bytes)?;
        self.link_into_place(&tmp, &dest, name, bytes)?;
        dest.sync()
    }

    /// Writes several new versions in one folder (each must not exist yet, as with
    /// [`Staging::write_version_durably`]): temp files first, flushed by a few threads at
    /// once (the file system folds concurrent flushes into shared journal commits: 0.14 ms a
    /// file with 16 threads against 0.52 ms one by one, measured here; 64 threads do no
    /// worse), then the links and one folder fsync. A crash leaves each file old or new,
    /// never torn.
    pub fn write_all_durably(&self, dir: &Path, files: &[(PathBuf, &[u8])]) -> Result<()> {
        if files.len() <= 1 {
            return files
                .iter()
                .try_for_each(|(path, bytes)| self.write_version_durably(path, bytes));
        }
        const FLUSHERS: usize = 64;
        let dest = Folder::open(dir)?;
        let names: Vec<&str> = files
            .iter()
            .map(|(path, _)| name_of(path))
            .collect::<Result<_>>()?;
        let temps: Vec<String> = names.iter().map(|name| self.temp_for(name)).collect();
        let chunk = files.len().div_ceil(FLUSHERS);
        let flushed = std::thread::scope(|scope| {
            let workers: Vec<_> = files
                .chunks(chunk)
                .zip(temps.chunks(chunk))
                .map(|(files, temps)| {
                    scope.spawn(move || -> Result<()> {
                        for ((_, bytes), tmp) in files.iter().zip(temps) {
                            self.folder.create_new(tmp, bytes, false, 0o666)?;
                        }
                        crate::failpoint::hit("staging:temp-written");
                        Ok(())
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("flush thread does not panic"))
        });
        let placed =
            flushed.and_then(|()| {
                temps.iter().zip(names.iter().zip(files)).try_for_each(
                    |(tmp, (name, (_, bytes)))| self.link_into_place(tmp, &dest, name, bytes),
                )
            });
        if placed.is_err() {
            for tmp in &temps {
                let _ = self.folder.remove(tmp);
            }
        }
        placed?;
        dest.sync()
    }

    /// Writes `bytes` to a flushed temp file for `name`; removed again if that fails.
    fn write_temp(&self, name: &str, bytes: &[u8]) -> Result<String> {
        let tmp = self.temp_for(name);
        self.folder.create_new(&tmp, bytes, true, 0o666)?;
        crate::failpoint::hit("staging:temp-written");
        Ok(tmp)
    }

    /// `link(tmp, name)` then removes `tmp`: atomic, and unlike a rename it fails when `name`
    /// exists. On a file system without hard links, a rename after checking `name` is absent
    /// (writers of one role hold its lock, so nobody else writes between the two).
    fn link_into_place(&self, tmp: &str, dest: &Folder, name: &str, bytes: &[u8]) -> Result<()> {
        let path = dest.path().join(name);
        let mut linked = self.folder.link(tmp, dest, name);
        if let Err(e) = &linked {
            let unsupported = e.kind() != std::io::ErrorKind::AlreadyExists
                && e.raw_os_error() != Some(libc::EXDEV);
            let absent = dest
                .read(name)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
            if unsupported && absent {
                linked = self.folder.rename(tmp, dest, name);
            }
        }
        let _ = self.folder.remove(tmp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if dest.read(name).is_ok_and(|existing| existing == bytes) {
                    Ok(())
                } else {
                    Err(Error::Repository {
                        path,
                        reason: "this version exists with other content: another signer wrote \
                                 it (two active replicas?); the signer reloads from disk and \
                                 retries"
                            .into(),
                    })
                }
            }
            Err(e) => Err(place_error(&path, e)),
        }
    }
}

impl Drop for Staging {
    /// A process that ends cleanly leaves nothing: by now its folder holds only the lock.
    fn drop(&mut self) {
        let _ = self.folder.remove(".lock");
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A failed rename or link into place; says what to do when staging is on another file
/// system.
fn place_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::EXDEV) {
        return Error::Repository {
            path: path.into(),
            reason: "control/staging/ is on another file system than this file, so it cannot \
                     be moved into place atomically: keep the repository folder (metadata/, \
                     targets/, control/) on one volume"
                .into(),
        };
    }
    Error::io("cannot move into place", path)(e)
}

/// Creates `dir` (if missing) with its parent folder's mode and the sticky bit: in a
/// repository shared by agents running as different users (`init --repo-group`, a
/// group-writable setgid `control/`), each must be able to make its own folder in it, whatever
/// the umask of the first, and none may rename or remove another's (a folder swapped for a
/// symlink). A staging root made before the sticky bit gets it from its owner.
pub(super) fn create_shared_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::symlink_metadata(dir) {
        let mode = meta.permissions().mode();
        if meta.is_dir() && mode & 0o1000 == 0 {
            // Only its owner may; the others go on as before.
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o1000));
        }
        return Ok(());
    }
    create_dir(dir)?;
    if let Some(parent) = dir.parent() {
        if let Ok(meta) = fs::metadata(parent) {
            let mode = meta.permissions().mode() | 0o1000;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .map_err(Error::io("cannot set the mode of", dir))?;
        }
    }
    Ok(())
}

fn is_older_than(path: &Path, age: Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age))
}

/// Removes `.NAME.tmp-PID` files (the former layout's temp files) an hour old or more from
/// each of `dirs` (not their subfolders); returns how many went.
fn remove_old_temps(dirs: &[PathBuf]) -> usize {
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let old_temp = name.starts_with('.') && name.contains(".tmp-");
            if old_temp
                && is_older_than(&entry.path(), OLD_TEMP_AGE)
                && fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_leave_nothing_in_the_served_folder_and_never_replace_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let served = dir.path().join("metadata");
        create_dir(&served).unwrap();
        let staging = Staging::open(&dir.path().join("staging"), &[]).unwrap();
        let path = served.join("3.snapshot.json");
        staging.write_version_durably(&path, b"one").unwrap();
        staging.write_version_durably(&path, b"one").unwrap();
        let err = staging
            .write_version_durably(&path, b"two")
            .unwrap_err()
            .to_string();
        assert!(err.contains("exists with other content"), "{err}");
        let other = served.join("4.snapshot.json");
        let err = staging
            .write_all_durably(&served, &[(path.clone(), b"three"), (other, b"x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("exists with other content"), "{err}");
        staging
            .write_durably(&served.join("timestamp.json"), b"a")
            .unwrap();
        staging
            .write_durably(&served.join("timestamp.json"), b"b")
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(fs::read(served.join("timestamp.json")).unwrap(), b"b");
        assert_eq!(entries(&served), ["3.snapshot.json", "timestamp.json"]);
        assert_eq!(entries(staging.dir()), [".lock"], "no temp file left");
    }

    /// The staging root made by a signer of a repository made before it existed takes the
    /// mode of `control/`, so that agents of other users can make their folders in it, and the
    /// sticky bit, so that none can rename or remove another's.
    #[test]
    fn the_staging_root_is_as_shared_as_its_parent_and_sticky() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("control");
        create_dir(&control).unwrap();
        fs::set_permissions(&control, fs::Permissions::from_mode(0o2775)).unwrap();
        let _staging = Staging::open(&control.join("staging"), &[]).unwrap();
        let mode = fs::metadata(control.join("staging"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o3775);
    }

    /// Processes starting together (signers waiting for init, say) never remove each other's
    /// folders: each is locked before it can be seen.
    #[test]
    fn writers_starting_together_keep_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("staging");
        for _ in 0..20 {
            let stagings: Vec<Staging> = std::thread::scope(|scope| {
                let opening: Vec<_> = (0..8)
                    .map(|_| scope.spawn(|| Staging::open(&root, &[]).unwrap()))
                    .collect();
                opening.into_iter().map(|t| t.join().unwrap()).collect()
            });
            for staging in &stagings {
                assert!(staging.dir().join(".lock").exists(), "{:?}", staging.dir());
            }
        }
    }

    /// A writer killed mid-write leaves its staging folder; the next process to open one
    /// removes it, but never the folder of a process still running.
    #[test]
    fn leftovers_of_a_dead_writer_go_and_a_live_writers_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("staging");
        let live = Staging::open(&root, &[]).unwrap();
        fs::write(live.dir().join("0.bin-1.json"), b"in flight").unwrap();
        let dead = root.join("999999-1");
        create_dir(&dead).unwrap();
        fs::write(dead.join(".lock"), b"").unwrap();
        fs::write(dead.join("7.snapshot.json"), b"half").unwrap();
        let served = dir.path().join("metadata");
        create_dir(&served).unwrap();
        let old = served.join(".2.snapshot.json.tmp-42");
        fs::write(&old, b"half").unwrap();
        let recent = served.join(".3.snapshot.json.tmp-43");
        fs::write(&recent, b"half").unwrap();
        let an_hour_ago = SystemTime::now() - Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();

        // A folder another process is making this instant (not locked yet) stays.
        let being_made = root.join(".new-4242-1");
        create_dir(&being_made).unwrap();
        fs::write(being_made.join(".lock"), b"").unwrap();

        let next = Staging::open(&root, std::slice::from_ref(&served)).unwrap();
        assert!(
            being_made.exists(),
            "a folder being made is left to its maker"
        );
        assert!(!dead.exists(), "a dead writer's folder is removed");
        assert!(
            live.dir().join("0.bin-1.json").exists(),
            "a live one's stays"
        );
        assert!(!old.exists() && recent.exists());
        drop(next);
    }
}
