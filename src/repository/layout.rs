//! Where a repository's files live, and their names.
//!
//! Writes to the served folders stage their temp files elsewhere ([`Layout::staging`]);
//! files nobody serves keep theirs beside them ([`crate::durable::write_durably`]).

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::gzip::GzipCopies;
use super::staging::Staging;
use crate::durable::create_dir;
use crate::role::Role;
use crate::{Error, Result};

/// Where a repository's files live.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The repository folder (`REPO`).
    pub dir: PathBuf,
    /// This process's staging folder, opened at the first write (shared by clones).
    staging: Arc<Mutex<Option<Arc<Staging>>>>,
    /// Gzip copies of the versions this process writes, when asked for
    /// ([`Layout::with_gzip_copies`]; shared by clones: one thread a process).
    gzip: Option<Arc<GzipCopies>>,
}

impl Layout {
    /// The repository in `dir`; nothing is read or made until asked.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Layout {
            dir: dir.into(),
            staging: Arc::default(),
            gzip: None,
        }
    }

    /// The same repository, with a gzip copy made beside each version written through
    /// [`Layout::copy_later`] (see [`super::gzip`]).
    pub fn with_gzip_copies(mut self) -> Self {
        self.gzip = Some(Arc::default());
        self
    }

    /// Whether gzip copies are made.
    pub fn makes_gzip_copies(&self) -> bool {
        self.gzip.is_some()
    }

    /// The versions at `paths` were just written durably: their gzip copies are made later,
    /// off the signing path, if this layout makes copies (nothing otherwise).
    pub fn copy_later(&self, paths: impl IntoIterator<Item = PathBuf>) {
        if let Some(gzip) = &self.gzip {
            let versions = paths
                .into_iter()
                .filter_map(|path| {
                    let name = path.file_name()?.to_str()?;
                    let (version, role) = parse_versioned(name)?;
                    Some((role.to_string(), version, path.clone()))
                })
                .collect();
            gzip.later(|| self.staging(), versions);
        }
    }

    /// Where this process stages its writes to `metadata/` and `targets/` (see
    /// [`crate::repository::staging`]): opened once, removing what stopped writers left.
    pub fn staging(&self) -> Result<Arc<Staging>> {
        let mut slot = self.staging.lock().expect("staging lock");
        if let Some(staging) = &*slot {
            return Ok(staging.clone());
        }
        let staging = Arc::new(Staging::open(
            &self.staging_root()?,
            &[self.metadata_dir()],
        )?);
        *slot = Some(staging.clone());
        Ok(staging)
    }

    /// `REPO/metadata/`: every role's signed versions, as served to clients.
    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    /// `REPO/targets/`: the files the targets sign for, as served to clients.
    pub fn targets_dir(&self) -> PathBuf {
        self.dir.join("targets")
    }

    /// `N.ROLE.json`, the consistent-snapshot name of a version of a role ([`Role`]) or of a
    /// bin (`bin-000-001`).
    pub fn versioned(&self, role: impl AsRef<str>, version: u64) -> PathBuf {
        let role = role.as_ref();
        self.metadata_dir().join(format!("{version}.{role}.json"))
    }

    /// `metadata/timestamp.json`, the one unversioned file.
    pub fn timestamp(&self) -> PathBuf {
        self.metadata_dir().join(Role::Timestamp.file())
    }

    /// `metadata/root.json`, the newest root under its unversioned name.
    pub fn root(&self) -> PathBuf {
        self.metadata_dir().join(Role::Root.file())
    }

    /// `control/`: never served. It holds a folder per writer, each written by one agent
    /// only (see [`Layout::role_dir`], [`Layout::pause_dir`], [`Layout::staging_root`]).
    pub fn control_dir(&self) -> PathBuf {
        self.dir.join("control")
    }

    /// `control/ROLE/`: what only `role`'s signer writes: its lock and, for targets, the
    /// submission ledger, the tombstones and the receipts.
    pub fn role_dir(&self, role: Role) -> PathBuf {
        self.control_dir().join(role.name())
    }

    /// `control/pause/`: the pause switch, the operator's (the packaging pipeline's user).
    pub fn pause_dir(&self) -> PathBuf {
        self.control_dir().join("pause")
    }

    /// Where the targets signer keeps its submission ledger unless told otherwise.
    pub fn default_ledger(&self) -> PathBuf {
        self.role_dir(Role::Targets).join("submissions.jsonl")
    }

    /// `control/staging/UID/`: this user's staging folders (one per process), its own: `init`
    /// makes one for each agent's user of a deployment; elsewhere the first process of a user
    /// makes it. A folder of another user there is refused, never written through.
    pub fn staging_root(&self) -> Result<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        let root = self.control_dir().join("staging");
        // In a repository of agents sharing a group (made without key owners), as shared as
        // control/ and sticky, so that each user makes its own folder in it.
        super::staging::create_shared_dir(&root)?;
        let dir = root.join(me.to_string());
        if !dir.exists() {
            create_dir(&dir)?;
        }
        let meta = fs::symlink_metadata(&dir).map_err(Error::io("cannot read", &dir))?;
        if !meta.is_dir() || meta.uid() != me {
            return Err(Error::Repository {
                path: dir,
                reason: format!(
                    "is not a folder of uid {me}, this process's: the staging folders of each user \
                     are its own (remove it, or give it to uid {me})"
                ),
            });
        }
        Ok(dir)
    }

    /// Fails at once when the repository folder does not exist: a mistyped path. What starts
    /// before `init` (a signer, `serve`) waits for the repository, but only in a folder that
    /// exists (a mounted volume that init is filling); nothing is written before this check.
    pub fn require_folder(&self) -> Result<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        Err(Error::Repository {
            path: self.dir.clone(),
            reason: "no such folder: is the path mistyped? (`tuf-signer init --repo DIR --keys \
                     DIR` makes a repository; a signer or `serve` started first waits for it in \
                     a folder that exists, such as a mounted volume)"
                .into(),
        })
    }

    /// Fails with advice when the repository was never initialised.
    pub fn require_initialised(&self) -> Result<()> {
        if self.metadata_dir().join("1.root.json").is_file() {
            Ok(())
        } else {
            Err(Error::Repository {
                path: self.dir.clone(),
                reason: "no repository here (no metadata/1.root.json): is the path \
                         mistyped? `tuf-signer init --repo DIR --keys DIR` makes one"
                    .into(),
            })
        }
    }

    /// The newest version of `role` (a [`Role`] or a bin's name) on disk, if any (one
    /// directory scan).
    pub fn newest(&self, role: impl AsRef<str>) -> Result<Option<u64>> {
        Ok(self
            .scan_versions()?
            .get(role.as_ref())
            .and_then(|v| v.last())
            .copied())
    }

    /// The newest root after version `known`, found as a client finds it: `N.root.json` for
    /// N = `known + 1`, `known + 2`, … until the next is missing (one `stat` a version, no
    /// folder scan); `known` when there is no newer one.
    pub fn newest_root_after(&self, known: u64) -> u64 {
        let mut newest = known;
        while let Some(next) = newest.checked_add(1) {
            if !self.versioned(Role::Root, next).is_file() {
                break;
            }
            newest = next;
        }
        newest
    }

    /// Every version on disk of each role: `role -> sorted versions`, from one directory scan.
    pub fn scan_versions(&self) -> Result<HashMap<String, Vec<u64>>> {
        let dir = self.metadata_dir();
        let mut found: HashMap<String, Vec<u64>> = HashMap::new();
        for entry in fs::read_dir(&dir).map_err(Error::io("cannot list metadata", &dir))? {
            let entry = entry.map_err(Error::io("cannot list metadata", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some((version, role)) = parse_versioned(name) {
                found.entry(role.to_string()).or_default().push(version);
            }
        }
        for versions in found.values_mut() {
            versions.sort_unstable();
        }
        Ok(found)
    }
}

/// Where a target file lives in a consistent-snapshot repository: `dir/SHA256.file`.
pub fn consistent_path(name: &str, sha256: &str) -> String {
    match name.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/{sha256}.{file}"),
        None => format!("{sha256}.{name}"),
    }
}

/// `"12.bin-000-001.json"` → `(12, "bin-000-001")`.
pub fn parse_versioned(file_name: &str) -> Option<(u64, &str)> {
    let stem = file_name.strip_suffix(".json")?;
    let (version, role) = stem.split_once('.')?;
    if role.is_empty() || version.starts_with('0') {
        return None;
    }
    Some((version.parse().ok()?, role))
}

/// The version a gzip copy's file name is the copy of (`"3.snapshot.json.gz"` →
/// `"3.snapshot.json"`), `None` for any other name (see [`super::gzip`]).
pub fn version_of_copy(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(super::gzip::SUFFIX)
        .filter(|plain| parse_versioned(plain).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versioned_names_only() {
        assert_eq!(
            parse_versioned("12.bin-000-001.json"),
            Some((12, "bin-000-001"))
        );
        assert_eq!(parse_versioned("1.root.json"), Some((1, "root")));
        assert_eq!(parse_versioned(Role::Timestamp.file()), None);
        assert_eq!(parse_versioned("01.root.json"), None);
        assert_eq!(parse_versioned(".1.root.json.tmp-3"), None);
        assert_eq!(
            parse_versioned("3.snapshot.json.gz"),
            None,
            "a copy is no version"
        );
        assert_eq!(
            version_of_copy("3.snapshot.json.gz"),
            Some("3.snapshot.json")
        );
        assert_eq!(version_of_copy("timestamp.json.gz"), None);
        assert_eq!(version_of_copy("3.snapshot.json"), None);
    }
}
