//! Gzip copies of metadata versions, for a web server that serves a file's precompressed copy
//! when the client accepts gzip (nginx `gzip_static on`, `tuf-client serve`):
//! `metadata/N.ROLE.json.gz` beside `N.ROLE.json`, the same bytes once gunzipped. Not for
//! `timestamp.json` (small, rewritten in place) nor the roots (small, signed offline).
//!
//! Invariant: a copy is never on the signing path, and never seen partial. A signer hands
//! each version it wrote to its process's one copying thread ([`GzipCopies`]), which holds
//! only the newest pending version of each file: one superseded before the thread got to it
//! is skipped (at 20 snapshots a second it copies what it can, never a growing queue). A copy
//! is written as every served file is: temp file in the process's staging folder, fsync,
//! rename, fsync of the folder ([`Staging::write_aside_durably`]). A copy missing or late is
//! harmless: the web server serves the plain file. The pruner removes a version's copy before
//! the version, and a copy made just as its version was pruned is removed again, so no copy
//! outlives its version.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::staging::Staging;
use crate::role::Role;
use crate::{Error, Result};

/// What a copy's name adds to its version's.
pub const SUFFIX: &str = ".gz";

/// The compression level: 6, gzip's default. At 16,384 bins and 40,000 targets a 2.2 MB
/// snapshot becomes 732 kB in 69 ms of CPU (level 1: 750 kB, 15 ms; level 9: 730 kB, 91 ms):
/// a snapshot is downloaded by many clients, and compressed once.
pub const LEVEL: u32 = 6;

/// The largest version copied (a file larger is left plain).
const MAX_COPIED: u64 = 1 << 30;

/// `N.ROLE.json.gz`, the copy of the version at `path`.
pub fn copy_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(SUFFIX);
    PathBuf::from(name)
}

/// `bytes` gzipped at [`LEVEL`], with no file name and no date in the header: the same bytes
/// always give the same copy.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::new(LEVEL),
    );
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .expect("writing to memory does not fail")
}

/// The bytes a gzip copy holds, gunzipped (for checking a copy against its version).
pub fn decompress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut plain)?;
    Ok(plain)
}

/// Writes the copy of the version at `path` through `staging`, unless it is there already (a
/// version never changes, so neither does its copy) or the version is gone (pruned); `true`
/// when one was written.
pub fn write_copy(staging: &Staging, path: &Path) -> Result<bool> {
    let copy = copy_of(path);
    if std::fs::symlink_metadata(&copy).is_ok() {
        return Ok(false);
    }
    let bytes = match crate::durable::read_plain(path, MAX_COPIED) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot read metadata", path)(e)),
    };
    staging.write_aside_durably(&copy, &compress(&bytes))?;
    // Pruned meanwhile (the pruner removes the copy first, then the version): no copy may
    // outlive its version.
    if std::fs::symlink_metadata(path).is_err() {
        let _ = std::fs::remove_file(&copy);
        return Ok(false);
    }
    Ok(true)
}

/// Removes the copy of the version at `path` (before the version goes); a failure is logged
/// (a copy left behind holds that version's bytes still: served, it misleads no one).
pub fn remove_copy(path: &Path) {
    let copy = copy_of(path);
    match std::fs::remove_file(&copy) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %copy.display(), error = %e, "cannot remove a gzip copy");
        }
        _ => {}
    }
}

/// A process's copying thread: started at the first version handed to it, stopped when the
/// last [`super::Layout`] holding it goes.
#[derive(Debug, Default)]
pub struct GzipCopies {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// The newest version waiting of each file, in the order the files first waited: a newer
/// version takes its file's place. Two queues taken in turn, the top-level files (what every
/// client refresh fetches) and the bins, so that neither waits behind the other: not the
/// snapshot behind the 16,384 bins a start hands over, nor a bin behind 20 snapshots a second.
#[derive(Debug, Default)]
struct Pending {
    newest: HashMap<String, (u64, PathBuf)>,
    queues: [VecDeque<String>; 2],
    turn: usize,
    stop: bool,
}

impl Pending {
    fn add(&mut self, role: String, version: u64, path: PathBuf) {
        let top_level = matches!(
            Role::of_metadata(&role),
            Some(Role::Snapshot | Role::Targets)
        );
        match self.newest.entry(role) {
            Entry::Occupied(mut waiting) => {
                if waiting.get().0 < version {
                    waiting.insert((version, path));
                }
            }
            Entry::Vacant(slot) => {
                self.queues[usize::from(!top_level)].push_back(slot.key().clone());
                slot.insert((version, path));
            }
        }
    }

    /// The next version to copy, from each queue in turn.
    fn next(&mut self) -> Option<PathBuf> {
        for i in 0..2 {
            let queue = (self.turn + i) % 2;
            if let Some(role) = self.queues[queue].pop_front() {
                self.turn = (queue + 1) % 2;
                return self.newest.remove(&role).map(|(_, path)| path);
            }
        }
        None
    }
}

impl GzipCopies {
    /// Copies to make later, for the versions just written, each `(file, version, path)`
    /// (`bin-000-001`, 3, `metadata/3.bin-000-001.json`): each replaces the pending version
    /// of its file if newer.
    pub fn later(
        &self,
        staging: impl FnOnce() -> Result<Arc<Staging>>,
        versions: Vec<(String, u64, PathBuf)>,
    ) {
        let mut pending = self.shared.pending.lock().expect("not poisoned");
        for (role, version, path) in versions {
            pending.add(role, version, path);
        }
        drop(pending);
        self.start(staging);
        self.shared.wake.notify_one();
    }

    /// Starts the thread, once.
    fn start(&self, staging: impl FnOnce() -> Result<Arc<Staging>>) {
        let mut thread = self.thread.lock().expect("not poisoned");
        if thread.is_some() {
            return;
        }
        let staging = match staging() {
            Ok(staging) => staging,
            Err(e) => return tracing::warn!(error = %e, "no gzip copies: no staging folder"),
        };
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("gzip-copies".into())
            .spawn(move || shared.work(&staging));
        match spawned {
            Ok(handle) => *thread = Some(handle),
            Err(e) => tracing::warn!(error = %e, "no gzip copies: cannot start their thread"),
        }
    }
}

impl Shared {
    /// Copies the pending versions, one at a time, until told to stop; at the lowest CPU
    /// priority (nice 19, this thread only), so that on a busy machine the signers' threads
    /// come first.
    fn work(&self, staging: &Staging) {
        // Linux keeps a nice value per thread, and `None` (0) names the calling one. Best effort.
        let _ = rustix::process::setpriority_process(None, 19);
        loop {
            let path = {
                let mut pending = self.pending.lock().expect("not poisoned");
                loop {
                    if pending.stop {
                        return;
                    }
                    if let Some(path) = pending.next() {
                        break path;
                    }
                    pending = self.wake.wait(pending).expect("not poisoned");
                }
            };
            match write_copy(staging, &path) {
                Ok(true) => tracing::debug!(path = %path.display(), "wrote a gzip copy"),
                Ok(false) => {}
                // Harmless: the plain file is served; the next version gets its copy.
                Err(e) => tracing::warn!(error = %e, "cannot write a gzip copy"),
            }
        }
    }
}

impl Drop for GzipCopies {
    /// Stops the thread (after the copy it is writing, if any); what is pending is left: a
    /// signer's start copies its newest versions that have none.
    fn drop(&mut self) {
        self.shared.pending.lock().expect("not poisoned").stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().expect("not poisoned").take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bytes_round_trip() {
        let path = Path::new("/r/metadata/3.snapshot.json");
        assert_eq!(copy_of(path), Path::new("/r/metadata/3.snapshot.json.gz"));
        let bytes = br#"{"signed":{"meta":{}}}"#.repeat(100);
        let packed = compress(&bytes);
        assert!(packed.len() < bytes.len() / 5);
        assert_eq!(compress(&bytes), packed, "the same bytes, the same copy");
        assert_eq!(decompress(&packed).unwrap(), bytes);
    }

    /// The top-level files and the bins are taken in turn, each file once, at its newest
    /// version, in the order the files first waited.
    #[test]
    fn neither_the_snapshot_nor_the_bins_wait_behind_the_other() {
        let mut pending = Pending::default();
        let path = |v: u64, role: &str| PathBuf::from(format!("{v}.{role}.json"));
        for bin in ["bin-0", "bin-1", "bin-2"] {
            pending.add(bin.into(), 1, path(1, bin));
        }
        for v in 2..=5 {
            pending.add("snapshot".into(), v, path(v, "snapshot"));
        }
        pending.add("bin-0".into(), 2, path(2, "bin-0"));
        pending.add("targets".into(), 3, path(3, "targets"));
        pending.add("snapshot".into(), 4, path(4, "snapshot"));
        let order: Vec<PathBuf> = std::iter::from_fn(|| pending.next()).collect();
        let expected = ["5.snapshot", "2.bin-0", "3.targets", "1.bin-1", "1.bin-2"];
        let expected: Vec<PathBuf> = expected
            .iter()
            .map(|n| PathBuf::from(format!("{n}.json")))
            .collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn copies_the_newest_pending_version_once_and_never_a_pruned_one() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = dir.path().join("metadata");
        crate::durable::create_dir(&metadata).unwrap();
        let staging = Staging::open(&dir.path().join("staging"), &[]).unwrap();
        let v1 = metadata.join("1.bin-0.json");
        std::fs::write(&v1, b"one").unwrap();
        assert!(write_copy(&staging, &v1).unwrap());
        assert!(!write_copy(&staging, &v1).unwrap(), "already there");
        assert_eq!(
            decompress(&std::fs::read(copy_of(&v1)).unwrap()).unwrap(),
            b"one"
        );
        assert!(!write_copy(&staging, &metadata.join("2.bin-0.json")).unwrap());
        assert!(!copy_of(&metadata.join("2.bin-0.json")).exists());
        remove_copy(&v1);
        assert!(!copy_of(&v1).exists());

        let copies = GzipCopies::default();
        let staging = Arc::new(staging);
        let (v2, v3) = (metadata.join("2.bin-0.json"), metadata.join("3.bin-0.json"));
        std::fs::write(&v2, b"two").unwrap();
        std::fs::write(&v3, b"three").unwrap();
        // Handed over before the thread starts: only the newest is copied.
        copies
            .shared
            .pending
            .lock()
            .unwrap()
            .add("bin-0".into(), 3, v3.clone());
        copies.later(
            || Ok(staging.clone()),
            vec![("bin-0".into(), 2, v2.clone())],
        );
        let start = std::time::Instant::now();
        while !copy_of(&v3).exists() {
            assert!(start.elapsed() < std::time::Duration::from_secs(30));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(copies);
        assert!(!copy_of(&v2).exists(), "superseded before it was copied");
        assert_eq!(
            decompress(&std::fs::read(copy_of(&v3)).unwrap()).unwrap(),
            b"three"
        );
    }
}
