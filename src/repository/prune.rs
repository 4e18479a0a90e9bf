//! Removing superseded metadata versions, late enough that a client in the middle of an
//! update still finds the versions the snapshot it read names, and early enough that the
//! disk holds a bounded number of them whatever the load.
//!
//! A version's gzip copy ([`super::gzip`]) goes with it, just before it.
//!
//! A superseded version goes once it is older than [`Retention::keep_for`] (an hour by
//! default), or once its file has more than [`Retention::keep_versions`] newer superseded
//! versions; never before [`Retention::grace`] (30 s) has passed since it was superseded: a
//! client that read the snapshot naming it a moment ago may be fetching it now. So each file
//! keeps at most `keep_versions` superseded versions plus those of the last grace period.
//! When the disk is full or nearly so ([`space_is_low`]), every superseded version past the
//! grace goes ([`Pruner::free_space`]).
//!
//! Whatever the rule, a version the published metadata still names is kept
//! ([`still_named`]): the snapshot `timestamp.json` names, and the files that snapshot and the
//! newest one on disk name. A signer downstream that is slow or stopped so never leaves
//! clients with a snapshot naming files that are gone.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::Layout;
use crate::role::Role;

/// How long superseded versions stay, and how many.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// `None`: no age limit.
    pub keep_for: Option<Duration>,
    /// Superseded versions kept per file at most (past the grace); `None`: no limit.
    pub keep_versions: Option<usize>,
    /// A version superseded less than this long ago is never removed.
    pub grace: Duration,
}

impl Retention {
    /// From `tuf-signer run`'s flags: `--prune-after` (a duration, or "never"),
    /// `--keep-versions` (a number, or "all") and `--prune-grace` (a duration).
    pub fn parse(keep_for: &str, keep_versions: &str, grace: &str) -> crate::Result<Retention> {
        use crate::repository::expiry::parse_duration;
        Ok(Retention {
            keep_for: match keep_for {
                "never" => None,
                text => Some(parse_duration(text)?),
            },
            keep_versions: match keep_versions {
                "all" => None,
                n => Some(n.parse().map_err(|_| {
                    crate::Error::Usage(format!("--keep-versions {n:?}: a number, or all"))
                })?),
            },
            grace: parse_duration(grace)?,
        })
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_for: Some(Duration::from_secs(3600)),
            keep_versions: Some(10),
            grace: Retention::GRACE,
        }
    }
}

impl Retention {
    /// The default grace: ample for a client between reading a snapshot and fetching what
    /// it names.
    pub const GRACE: Duration = Duration::from_secs(30);

    /// Keeps every version forever.
    pub const ALL: Retention = Retention {
        keep_for: None,
        keep_versions: None,
        grace: Retention::GRACE,
    };

    fn keeps_all(&self) -> bool {
        self.keep_for.is_none() && self.keep_versions.is_none()
    }
}

/// Removes a role's superseded versions as its [`Retention`] allows.
#[derive(Debug)]
pub struct Pruner {
    retention: Retention,
    /// Each file's superseded versions, oldest first, with when each was superseded.
    superseded: HashMap<String, VecDeque<(Instant, PathBuf)>>,
}

impl Pruner {
    /// A pruner that has seen nothing superseded yet.
    pub fn new(retention: Retention) -> Self {
        Pruner {
            retention,
            superseded: HashMap::new(),
        }
    }

    /// `version` of `role` was just superseded by a newer version.
    pub fn superseded(&mut self, layout: &Layout, role: impl AsRef<str>, version: u64) {
        let role = role.as_ref();
        self.superseded_at(role, layout.versioned(role, version), Instant::now());
    }

    fn superseded_at(&mut self, role: &str, path: PathBuf, at: Instant) {
        if self.retention.keeps_all() {
            return;
        }
        self.superseded
            .entry(role.to_string())
            .or_default()
            .push_back((at, path));
    }

    /// Takes on the versions of `role` found on disk (sorted): each one but the newest was
    /// superseded when the next one was written, which its modification time tells.
    pub fn adopt(&mut self, layout: &Layout, role: impl AsRef<str>, versions: &[u64]) {
        let role = role.as_ref();
        let (now, wall) = (Instant::now(), SystemTime::now());
        for pair in versions.windows(2) {
            let written = std::fs::metadata(layout.versioned(role, pair[1]))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| wall.duration_since(t).ok())
                .unwrap_or_default();
            let at = now.checked_sub(written).unwrap_or(now);
            self.superseded_at(role, layout.versioned(role, pair[0]), at);
        }
    }

    /// Removes what retention no longer keeps, except what `named` protects (see
    /// [`still_named`]); returns how many files went.
    pub fn sweep(&mut self, named: &Named) -> usize {
        let Retention {
            keep_for,
            keep_versions,
            grace,
        } = self.retention;
        self.remove(
            |age, beyond_count| {
                age >= grace && (keep_for.is_some_and(|k| age >= k) || beyond_count)
            },
            keep_versions,
            named,
        )
    }

    /// The disk is full: removes every superseded version past the grace, whatever
    /// retention says; returns how many files went.
    pub fn free_space(&mut self, named: &Named) -> usize {
        let grace = self.retention.grace;
        self.remove(|age, _| age >= grace, None, named)
    }

    /// Removes, oldest first within each file, the versions `due(age, beyond_count)` says,
    /// stopping at the first one of a file it keeps (the ones after it are younger, or newer
    /// than one the published metadata names).
    fn remove(
        &mut self,
        due: impl Fn(Duration, bool) -> bool,
        keep: Option<usize>,
        named: &Named,
    ) -> usize {
        let now = Instant::now();
        let mut removed = 0;
        for (role, versions) in &mut self.superseded {
            let oldest_named = named.get(role).copied();
            while let Some((at, path)) = versions.front() {
                let beyond_count = keep.is_some_and(|k| versions.len() > k);
                if !due(now.saturating_duration_since(*at), beyond_count) {
                    break;
                }
                let version = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(super::layout::parse_versioned)
                    .map(|(v, _)| v);
                if version.zip(oldest_named).is_some_and(|(v, n)| v >= n) {
                    break;
                }
                let (_, path) = versions.pop_front().expect("front exists");
                // The gzip copy first: a copy never outlives its version.
                super::gzip::remove_copy(&path);
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot prune old metadata");
                    }
                }
            }
        }
        self.superseded.retain(|_, v| !v.is_empty());
        removed
    }
}

/// For each role, the oldest version the published metadata still names: none older may go.
pub type Named = std::collections::HashMap<String, u64>;

/// What the published metadata names (see the module's comment): read without verifying,
/// since it only keeps files. `None` when it cannot be read whole (a file mid-rename): then
/// nothing is pruned this time.
pub fn still_named(layout: &Layout) -> Option<Named> {
    #[derive(serde::Deserialize)]
    struct Version {
        version: u64,
    }
    #[derive(serde::Deserialize)]
    struct Signed {
        meta: std::collections::HashMap<String, Version>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        signed: Signed,
    }
    let read =
        |path: PathBuf| -> Option<File> { serde_json::from_slice(&std::fs::read(path).ok()?).ok() };
    let timestamp = read(layout.timestamp())?;
    let published = timestamp.signed.meta.get(Role::Snapshot.file())?.version;
    let mut named = Named::from([(Role::Snapshot.name().to_string(), published)]);
    let newest = layout.newest(Role::Snapshot).ok().flatten()?;
    for version in [published, newest] {
        for (file, meta) in read(layout.versioned(Role::Snapshot, version))?.signed.meta {
            let Some(role) = crate::schema::role_of_listed(&file) else {
                continue;
            };
            let slot = named.entry(role.to_string()).or_insert(meta.version);
            *slot = (*slot).min(meta.version);
        }
    }
    Some(named)
}

/// Whether the volume holding `dir` is nearly full (less than a twentieth free, or
/// unknown): then a signer's regular pruning frees what it can, before a write fails.
pub fn space_is_low(dir: &std::path::Path) -> bool {
    rustix::fs::statvfs(dir)
        .is_ok_and(|stat| u128::from(stat.f_bavail) * 20 < u128::from(stat.f_blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(versions: u64) -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        std::fs::create_dir_all(layout.metadata_dir()).unwrap();
        for v in 1..=versions {
            std::fs::write(layout.versioned("bin-0", v), b"x").unwrap();
        }
        (dir, layout)
    }

    fn on_disk(layout: &Layout) -> Vec<u64> {
        layout.scan_versions().unwrap()["bin-0"].clone()
    }

    fn age(layout: &Layout, version: u64, secs: u64) {
        std::fs::File::options()
            .write(true)
            .open(layout.versioned("bin-0", version))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn nothing_goes_within_the_grace_or_when_told_to_keep_all() {
        let (_dir, layout) = setup(3);
        let mut all = Pruner::new(Retention::ALL);
        all.superseded(&layout, "bin-0", 1);
        assert_eq!(all.sweep(&Named::new()) + all.free_space(&Named::new()), 0);
        let mut pruner = Pruner::new(Retention {
            keep_for: Some(Duration::ZERO),
            keep_versions: Some(0),
            grace: Retention::GRACE,
        });
        pruner.superseded(&layout, "bin-0", 1);
        pruner.superseded(&layout, "bin-0", 2);
        let none = Named::new();
        assert_eq!(
            pruner.sweep(&none),
            0,
            "superseded just now: a client may need them"
        );
        assert_eq!(
            pruner.free_space(&none),
            0,
            "not even when the disk is full"
        );
        assert_eq!(on_disk(&layout), [1, 2, 3]);
    }

    /// Versions found at start are dated by the file that superseded them: past the hour,
    /// they go at once; past the grace, the count bound applies; the newest stays.
    #[test]
    fn adopted_versions_go_by_age_and_by_count() {
        let (_dir, layout) = setup(6);
        for (v, secs) in [(2, 7200), (3, 600), (4, 500), (5, 400), (6, 10)] {
            age(&layout, v, secs);
        }
        let mut pruner = Pruner::new(Retention {
            keep_for: Some(Duration::from_secs(3600)),
            keep_versions: Some(2),
            grace: Retention::GRACE,
        });
        pruner.adopt(&layout, "bin-0", &[1, 2, 3, 4, 5, 6]);
        let copy = |v| super::super::gzip::copy_of(&layout.versioned("bin-0", v));
        for v in [1, 4] {
            std::fs::write(copy(v), b"gz").unwrap();
        }
        // 1 (superseded 2 h ago) by age; 2 and 3 by count; 4 and 5 kept (4 is past the
        // grace but within the count; 5 was superseded 10 s ago).
        assert_eq!(pruner.sweep(&Named::new()), 3);
        assert_eq!(on_disk(&layout), [4, 5, 6], "gzip copies are no versions");
        assert!(
            !copy(1).exists() && copy(4).exists(),
            "a copy goes with its version"
        );
        // The disk is full, but the published snapshot still names version 4: it stays.
        let named = Named::from([("bin-0".to_string(), 4)]);
        assert_eq!(pruner.free_space(&named), 0);
        // Once it no longer does, everything past the grace goes.
        assert_eq!(pruner.free_space(&Named::new()), 1);
        assert_eq!(on_disk(&layout), [5, 6]);
        assert!(!copy(4).exists());
    }
}
