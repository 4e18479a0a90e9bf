//! The updater: the specification's client workflow (TUF 1.0 §5) as I/O around the
//! [`TrustedSet`]. It loads the local copies kept in the metadata folder, downloads through a
//! [`Fetcher`], persists what the set trusts, finds targets through the delegations and
//! downloads them.
//!
//! Invariant: a file is written to the metadata folder only after the trusted set has trusted
//! it, under a name no delegated role can take ([`quote`], top-level names refused), and each
//! write is durable (temp file, fsync, rename).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use url::Url;

use super::config::Config;
use super::error::{Error, Result};
use super::fetcher::{join, Fetcher};
use super::metadata::quote;
use super::trusted_set::{is_top_level_name, TrustedSet};
use crate::durable::{create_dir, write_durably};
use crate::role::Role;
use crate::schema::{TargetFile, Targets};

/// A TUF client of one repository: trusted metadata kept in a local folder, fetched through
/// `F`.
pub struct Updater<F: Fetcher> {
    dir: PathBuf,
    metadata_url: Url,
    fetcher: F,
    config: Config,
    trusted: TrustedSet,
}

/// The file a role's trusted copy is kept in, in the metadata folder.
fn local_name(role: &str) -> String {
    format!("{}.json", quote(role))
}

fn storage(e: crate::Error) -> Error {
    match e {
        crate::Error::Io {
            context,
            path,
            source,
        } => Error::Storage {
            context,
            path,
            source,
        },
        other => Error::Usage(other.to_string()),
    }
}

/// `tuf-client init`: starts trust with `root` (it must be signed by its own root keys) in a
/// metadata folder that trusts nothing yet.
pub fn init(dir: &Path, root: &[u8]) -> Result<()> {
    TrustedSet::new(root, jiff::Timestamp::now(), &Config::default())?;
    create_dir(dir).map_err(storage)?;
    if dir.join(Role::Root.file()).exists() {
        return Err(Error::Usage(format!(
            "{} already trusts a root; to start over, empty that folder first",
            dir.display()
        )));
    }
    write_durably(&dir.join(Role::Root.file()), root).map_err(storage)
}

impl<F: Fetcher> Updater<F> {
    /// Starts an update from the metadata folder's trusted root, with the current time as
    /// the reference for every expiry check of this update.
    pub fn new(dir: &Path, metadata_url: Url, fetcher: F, config: Config) -> Result<Updater<F>> {
        let root = std::fs::read(dir.join(Role::Root.file())).map_err(|_| {
            Error::Usage(format!(
                "{} holds no trusted root.json; run `tuf-client init --metadata-dir {} ROOT_JSON` first",
                dir.display(),
                dir.display()
            ))
        })?;
        let trusted = TrustedSet::new(&root, jiff::Timestamp::now(), &config)?;
        Ok(Updater {
            dir: dir.to_path_buf(),
            metadata_url,
            fetcher,
            config,
            trusted,
        })
    }

    /// What this updater trusts now.
    pub fn trusted(&self) -> &TrustedSet {
        &self.trusted
    }

    /// §5.3-§5.6: root chain, timestamp, snapshot, top-level targets. Each file the set
    /// trusts is persisted before the next step, so a failure later keeps what was proven.
    pub async fn refresh(&mut self) -> Result<()> {
        self.load_root().await?;
        self.load_timestamp().await?;
        self.load_snapshot().await?;
        self.load_targets(Role::Targets.name(), Role::Root.name())
            .await?;
        Ok(())
    }

    fn persist(&self, role: &str, bytes: &[u8]) -> Result<()> {
        write_durably(&self.dir.join(local_name(role)), bytes).map_err(storage)
    }

    fn read_local(&self, role: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(local_name(role))).ok()
    }

    async fn fetch(&self, file: &str, max_length: u64) -> Result<Vec<u8>> {
        let url = join(&self.metadata_url, file)?;
        self.fetcher
            .fetch(&url, max_length)
            .await?
            .ok_or_else(|| Error::Download {
                url: url.to_string(),
                reason: "not found".into(),
            })
    }

    /// §5.3: each newer root in turn, until the repository has no next version.
    async fn load_root(&mut self) -> Result<()> {
        let first = self.trusted.root().version.get() + 1;
        for version in first..first + self.config.max_root_rotations {
            let url = join(&self.metadata_url, &format!("{version}.root.json"))?;
            let Some(bytes) = self
                .fetcher
                .fetch(&url, self.config.root_max_length)
                .await?
            else {
                break;
            };
            self.trusted.update_root(&bytes)?;
            self.persist(Role::Root.name(), &bytes)?;
        }
        Ok(())
    }

    /// §5.4: the local timestamp first (the reference for rollback, even when expired), then
    /// the repository's; the same version again keeps the local one.
    async fn load_timestamp(&mut self) -> Result<()> {
        if let Some(local) = self.read_local(Role::Timestamp.name()) {
            if let Err(e) = self.trusted.update_timestamp(&local) {
                tracing::debug!("local timestamp not valid as final: {e}");
            }
        }
        let bytes = self
            .fetch(Role::Timestamp.file(), self.config.timestamp_max_length)
            .await?;
        match self.trusted.update_timestamp(&bytes) {
            Ok(_) => self.persist(Role::Timestamp.name(), &bytes),
            Err(Error::SameVersion(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// §5.5: the local snapshot when it is the one the timestamp names, else the repository's.
    async fn load_snapshot(&mut self) -> Result<()> {
        if let Some(local) = self.read_local(Role::Snapshot.name()) {
            match self.trusted.update_snapshot(&local, true) {
                Ok(_) => return Ok(()),
                Err(e) => tracing::debug!("local snapshot not valid as final: {e}"),
            }
        }
        let meta = self
            .trusted
            .timestamp()
            .and_then(|t| t.meta.get(Role::Snapshot.file()))
            .cloned()
            .ok_or(Error::Order("timestamp first"))?;
        let max = meta.length.unwrap_or(self.config.snapshot_max_length);
        let file = if self.trusted.root().consistent_snapshot {
            format!("{}.snapshot.json", meta.version)
        } else {
            Role::Snapshot.file().to_string()
        };
        let bytes = self.fetch(&file, max).await?;
        self.trusted.update_snapshot(&bytes, false)?;
        self.persist(Role::Snapshot.name(), &bytes)
    }

    /// §5.6: a targets role as `delegator` delegates it: loaded earlier in this update (and
    /// checked again against this delegator), the local copy when it is the version the
    /// snapshot names, else the repository's.
    async fn load_targets(&mut self, role: &str, delegator: &str) -> Result<Targets> {
        if delegator != Role::Root.name() && is_top_level_name(role) {
            return Err(Error::BadMetadata(format!(
                "{delegator} delegates to a role named {role:?}, a top-level role's name"
            )));
        }
        if let Some(loaded) = self.trusted.verify_loaded(role, delegator)? {
            return Ok(loaded.clone());
        }
        if let Some(local) = self.read_local(role) {
            match self
                .trusted
                .update_delegated_targets(&local, role, delegator)
            {
                Ok(t) => return Ok(t.clone()),
                Err(e) => tracing::debug!("local {role} not valid as final: {e}"),
            }
        }
        let meta = self
            .trusted
            .snapshot()
            .and_then(|s| s.listed(role))
            .cloned()
            .ok_or_else(|| Error::BadMetadata(format!("the snapshot does not list {role}.json")))?;
        let max = meta.length.unwrap_or(self.config.targets_max_length);
        let file = if self.trusted.root().consistent_snapshot {
            format!("{}.{}.json", meta.version, quote(role))
        } else {
            local_name(role)
        };
        let bytes = self.fetch(&file, max).await?;
        let trusted = self
            .trusted
            .update_delegated_targets(&bytes, role, delegator)?
            .clone();
        self.persist(role, &bytes)?;
        Ok(trusted)
    }

    /// §5.6.7: the target's signed description, found by a pre-order depth-first walk of the
    /// delegations (a terminating delegation ends the search beyond it), visiting at most
    /// `max_delegations` roles; `None` when no role that may sign for it lists it.
    pub async fn target_info(&mut self, name: &str) -> Result<Option<TargetFile>> {
        if self.trusted.targets(Role::Targets.name()).is_none() {
            return Err(Error::Order("refresh before looking up targets"));
        }
        let mut to_visit: Vec<(String, String)> =
            vec![(Role::Targets.name().into(), Role::Root.name().into())];
        let mut visited: HashSet<(String, String)> = HashSet::new();
        let mut budget = self.config.max_delegations;
        while budget > 0 {
            let Some((role, delegator)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&(role.clone(), delegator.clone())) {
                continue;
            }
            let targets = self.load_targets(&role, &delegator).await?;
            if let Some(target) = targets.targets.get(name) {
                return Ok(Some(target.clone()));
            }
            visited.insert((role.clone(), delegator));
            budget -= 1;
            let Some(delegations) = &targets.delegations else {
                continue;
            };
            let mut children = Vec::new();
            for child in &delegations.roles {
                if child.matches(name) {
                    children.push((child.name.clone(), role.clone()));
                    if child.terminating {
                        to_visit.clear();
                        break;
                    }
                }
            }
            children.reverse();
            to_visit.extend(children);
        }
        if budget == 0 && !to_visit.is_empty() {
            tracing::warn!(
                "looked through {} delegated roles for {name} without finding it; stopped there",
                self.config.max_delegations
            );
        }
        Ok(None)
    }

    /// §5.7: the target's bytes from `targets_url`, checked against its signed length and
    /// hashes (in a consistent-snapshot repository, named with its hash as prefix).
    pub async fn download_target(
        &self,
        name: &str,
        info: &TargetFile,
        targets_url: &Url,
    ) -> Result<Vec<u8>> {
        let file = match (self.trusted.root().consistent_snapshot, info.hash_prefix()) {
            (true, Some(hash)) => match name.rsplit_once('/') {
                Some((folder, base)) => format!("{folder}/{hash}.{base}"),
                None => format!("{hash}.{name}"),
            },
            _ => name.to_string(),
        };
        let url = join(targets_url, &quote_path(&file)?)?;
        let bytes = self
            .fetcher
            .fetch(&url, info.length)
            .await?
            .ok_or_else(|| Error::Download {
                url: url.to_string(),
                reason: "not found on the targets server".into(),
            })?;
        info.check(name, &bytes)?;
        Ok(bytes)
    }
}

/// A target path in a URL: each segment quoted, the `/` between them kept. A path with an
/// empty, `.` or `..` segment is refused: URL parsing would fold it into another path.
fn quote_path(path: &str) -> Result<String> {
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(Error::BadMetadata(format!(
            "{path:?}: a target path with an empty, `.` or `..` segment"
        )));
    }
    Ok(path.split('/').map(quote).collect::<Vec<_>>().join("/"))
}

/// Where `download -o DIR` writes target `name`: DIR/name, for names whose every segment is
/// a plain file name. A name that could leave DIR (`..`, an absolute path, an empty or `.`
/// segment, a backslash or NUL) is refused whatever the metadata says.
pub fn output_path(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['\\', '\0']);
    if name.split('/').all(plain) {
        Ok(dir.join(name))
    } else {
        Err(Error::Usage(format!(
            "{name:?}: not a target name that can be saved under a folder (a segment is empty, \
             `.`, `..`, or holds a backslash or NUL)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_stay_in_their_folder() {
        let dir = Path::new("/out");
        assert_eq!(
            output_path(dir, "drupal/token/1.0.0.0").unwrap(),
            Path::new("/out/drupal/token/1.0.0.0")
        );
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "./a",
            "a\\..\\b",
            "",
        ] {
            assert!(output_path(dir, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn target_paths_keep_their_folders_in_urls() {
        assert_eq!(quote_path("a b/c?.txt").unwrap(), "a%20b/c%3F.txt");
        for bad in ["a/../../x", "./a", "a//b", "/a"] {
            assert!(quote_path(bad).is_err(), "{bad:?}");
        }
    }
}
