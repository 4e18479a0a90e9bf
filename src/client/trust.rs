//! The verifying client's trusted metadata and the specification's update workflow
//! (TUF 1.0 §5): root chain, timestamp, snapshot, top-level targets, then delegated roles on
//! demand. Everything trusted is kept in a metadata folder between runs, as Composer's TUF
//! plugin keeps it, so rollback and freeze are caught across runs too.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tough::schema::{Role, RoleType, Snapshot, Timestamp};

use crate::schema::{Delegations, Root, Targets};
use url::Url;

use super::fetch::Fetcher;
use crate::repository::layout::{create_dir, write_durably};
use crate::verify::{
    check_metafile, delegated_authority, fail, root_authority, unverified, verify,
};
use crate::{Error, Result};

/// Longest root chain walked in one refresh, and size caps for files without a length.
const MAX_ROOT_ROTATIONS: u64 = 256;
const MAX_ROOT_LEN: u64 = 512 * 1024;
const MAX_TIMESTAMP_LEN: u64 = 16 * 1024;
const MAX_SNAPSHOT_LEN: u64 = 4 * 1024 * 1024;
const MAX_TARGETS_LEN: u64 = 32 * 1024 * 1024;
const MAX_DELEGATIONS_VISITED: usize = 32;

/// A verified metadata file: its parsed form and its bytes.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    pub signed: T,
    pub bytes: Vec<u8>,
}

pub struct TrustedMetadata {
    dir: PathBuf,
    root: Verified<Root>,
    timestamp: Option<Verified<Timestamp>>,
    snapshot: Option<Verified<Snapshot>>,
    targets: Option<Verified<Targets>>,
    delegated: HashMap<String, Verified<Targets>>,
}

fn check_expiry(what: &str, expires: jiff::Timestamp) -> Result<()> {
    if expires <= jiff::Timestamp::now() {
        return Err(fail(format!(
            "{what} expired at {expires}; the repository may be frozen by an attacker, or its signers are down"
        )));
    }
    Ok(())
}

fn read_opt(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// File name of a delegated role in the metadata folder (names are percent-encoded).
fn role_file(name: &str) -> String {
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{encoded}.json")
}

impl TrustedMetadata {
    /// `tuf-client init`: trusts `root_bytes` (it must be signed by its own root keys).
    pub fn init(dir: &Path, root_bytes: &[u8]) -> Result<()> {
        let value: Root = unverified(root_bytes, "that file (as a TUF root.json)")?;
        verify::<Root>(root_bytes, "root", &root_authority(&value, RoleType::Root)?)?;
        create_dir(dir)?;
        if dir.join("root.json").exists() {
            return Err(Error::Usage(format!(
                "{} already trusts a root; to start over, empty that folder first",
                dir.display()
            )));
        }
        write_durably(&dir.join("root.json"), root_bytes)
    }

    /// Loads the trusted metadata; files that no longer verify are ignored (they will be
    /// fetched again), but the root must.
    pub fn load(dir: &Path) -> Result<TrustedMetadata> {
        let path = dir.join("root.json");
        let bytes = std::fs::read(&path).map_err(|_| {
            Error::Usage(format!(
                "{} holds no trusted root.json; run `tuf-client init --metadata-dir {} ROOT_JSON` first",
                dir.display(),
                dir.display()
            ))
        })?;
        let claimed: Root = unverified(&bytes, "trusted root.json")?;
        let root = verify::<Root>(
            &bytes,
            "trusted root",
            &root_authority(&claimed, RoleType::Root)?,
        )?;
        let mut me = TrustedMetadata {
            dir: dir.to_path_buf(),
            root: Verified {
                signed: root,
                bytes,
            },
            timestamp: None,
            snapshot: None,
            targets: None,
            delegated: HashMap::new(),
        };
        if let Some(b) = read_opt(&dir.join("timestamp.json")) {
            me.timestamp = verify(
                &b,
                "trusted timestamp",
                &root_authority(&me.root.signed, RoleType::Timestamp)?,
            )
            .ok()
            .map(|signed| Verified { signed, bytes: b });
        }
        if let Some(b) = read_opt(&dir.join("snapshot.json")) {
            me.snapshot = verify(
                &b,
                "trusted snapshot",
                &root_authority(&me.root.signed, RoleType::Snapshot)?,
            )
            .ok()
            .map(|signed| Verified { signed, bytes: b });
        }
        Ok(me)
    }

    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    /// The whole top-level refresh: root chain, timestamp, snapshot, targets.
    pub async fn refresh(&mut self, fetcher: &Fetcher, base: &Url) -> Result<()> {
        self.update_root(fetcher, base).await?;
        self.update_timestamp(fetcher, base).await?;
        self.update_snapshot(fetcher, base).await?;
        self.update_targets(fetcher, base).await
    }

    async fn update_root(&mut self, fetcher: &Fetcher, base: &Url) -> Result<()> {
        let start = self.root.signed.version.get();
        for next in start + 1..=start + MAX_ROOT_ROTATIONS {
            let Some(bytes) = fetcher
                .get(base, &format!("{next}.root.json"), MAX_ROOT_LEN)
                .await?
            else {
                break;
            };
            let what = format!("{next}.root.json");
            verify::<Root>(
                &bytes,
                &what,
                &root_authority(&self.root.signed, RoleType::Root)?,
            )
            .map_err(|e| {
                fail(format!(
                    "{e} (checked against trusted root v{})",
                    self.root.signed.version
                ))
            })?;
            let claimed: Root = unverified(&bytes, &what)?;
            let new = verify::<Root>(&bytes, &what, &root_authority(&claimed, RoleType::Root)?)?;
            if new.version.get() != next {
                return Err(fail(format!("{what} says it is version {}", new.version)));
            }
            let rotated = |role| self.root.signed.keys_changed(&new, role);
            if rotated(RoleType::Timestamp) || rotated(RoleType::Snapshot) {
                // §5.3.11: after a key rotation the old timestamp and snapshot prove nothing.
                self.timestamp = None;
                self.snapshot = None;
                let _ = std::fs::remove_file(self.dir.join("timestamp.json"));
                let _ = std::fs::remove_file(self.dir.join("snapshot.json"));
            }
            write_durably(&self.dir.join("root.json"), &bytes)?;
            self.root = Verified { signed: new, bytes };
        }
        check_expiry("root", self.root.signed.expires)
    }

    async fn update_timestamp(&mut self, fetcher: &Fetcher, base: &Url) -> Result<()> {
        let bytes = fetcher
            .get(base, "timestamp.json", MAX_TIMESTAMP_LEN)
            .await?
            .ok_or_else(|| fail("the repository has no timestamp.json"))?;
        let new: Timestamp = verify(
            &bytes,
            "timestamp",
            &root_authority(&self.root.signed, RoleType::Timestamp)?,
        )?;
        let snap_of = |t: &Timestamp| t.meta.get("snapshot.json").map(|m| m.version.get());
        let new_snap = snap_of(&new).ok_or_else(|| fail("timestamp names no snapshot.json"))?;
        if let Some(old) = &self.timestamp {
            if new.version < old.signed.version {
                return Err(fail(format!(
                    "timestamp rollback: version {} offered, {} already trusted",
                    new.version, old.signed.version
                )));
            }
            if snap_of(&old.signed).is_some_and(|v| new_snap < v) {
                return Err(fail(
                    "timestamp names an older snapshot than the one already trusted (rollback)",
                ));
            }
            if new.version == old.signed.version {
                // Same version: keep what we trust (§5.4.3); still refuse a frozen one.
                return check_expiry("timestamp", old.signed.expires);
            }
        }
        check_expiry("timestamp", new.expires)?;
        write_durably(&self.dir.join("timestamp.json"), &bytes)?;
        self.timestamp = Some(Verified { signed: new, bytes });
        Ok(())
    }

    async fn update_snapshot(&mut self, fetcher: &Fetcher, base: &Url) -> Result<()> {
        let ts = &self.timestamp.as_ref().expect("timestamp first").signed;
        let meta = ts.meta.get("snapshot.json").expect("checked").clone();
        let version = meta.version.get();
        if let Some(old) = &self.snapshot {
            if old.signed.version.get() == version
                && check_metafile("snapshot", &old.bytes, &meta).is_ok()
            {
                return check_expiry("snapshot", old.signed.expires);
            }
        }
        let what = format!("{version}.snapshot.json");
        let bytes = fetcher
            .get(base, &what, meta.length.unwrap_or(MAX_SNAPSHOT_LEN))
            .await?
            .ok_or_else(|| fail(format!("{what} is missing from the repository")))?;
        check_metafile(&what, &bytes, &meta)?;
        let new: Snapshot = verify(
            &bytes,
            &what,
            &root_authority(&self.root.signed, RoleType::Snapshot)?,
        )?;
        if new.version.get() != version {
            return Err(fail(format!(
                "{what} says it is version {} (mix-and-match?)",
                new.version
            )));
        }
        if let Some(old) = &self.snapshot {
            for (file, old_meta) in &old.signed.meta {
                match new.meta.get(file) {
                    None => {
                        return Err(fail(format!("snapshot v{version} drops {file} (rollback)")))
                    }
                    Some(m) if m.version < old_meta.version => {
                        return Err(fail(format!(
                            "snapshot v{version} rolls {file} back from version {} to {}",
                            old_meta.version, m.version
                        )))
                    }
                    _ => {}
                }
            }
        }
        check_expiry("snapshot", new.expires)?;
        write_durably(&self.dir.join("snapshot.json"), &bytes)?;
        self.snapshot = Some(Verified { signed: new, bytes });
        Ok(())
    }

    async fn update_targets(&mut self, fetcher: &Fetcher, base: &Url) -> Result<()> {
        let top = self.load_role(fetcher, base, "targets", None).await?;
        self.targets = Some(top);
        Ok(())
    }

    /// Loads a targets role at the version the snapshot names: from the metadata folder when
    /// it is already there and matches, otherwise from the repository.
    async fn load_role(
        &mut self,
        fetcher: &Fetcher,
        base: &Url,
        name: &str,
        delegator: Option<&Delegations>,
    ) -> Result<Verified<Targets>> {
        let snapshot = &self.snapshot.as_ref().expect("snapshot first").signed;
        let meta = snapshot
            .meta
            .get(&format!("{name}.json"))
            .ok_or_else(|| fail(format!("snapshot does not list {name}.json")))?
            .clone();
        let authority = match delegator {
            None => root_authority(&self.root.signed, RoleType::Targets)?,
            Some(d) => delegated_authority(d, name)?,
        };
        let local = self.dir.join(role_file(name));
        let cached = read_opt(&local).filter(|b| check_metafile(name, b, &meta).is_ok());
        let bytes = match cached {
            Some(b) => b,
            None => {
                let what = format!("{}.{name}.json", meta.version);
                let b = fetcher
                    .get(base, &what, meta.length.unwrap_or(MAX_TARGETS_LEN))
                    .await?
                    .ok_or_else(|| fail(format!("{what} is missing from the repository")))?;
                check_metafile(&what, &b, &meta)?;
                b
            }
        };
        let signed: Targets = verify(&bytes, name, &authority)?;
        if signed.version() != meta.version {
            return Err(fail(format!(
                "{name}: version {} but snapshot says {}",
                signed.version, meta.version
            )));
        }
        check_expiry(name, signed.expires)?;
        write_durably(&local, &bytes)?;
        Ok(Verified { signed, bytes })
    }

    /// Finds a target's signed description by walking the delegations in the specification's
    /// order (pre-order, depth first, stopping at a terminating match). Fetches only the roles
    /// on the way.
    pub async fn find_target(
        &mut self,
        fetcher: &Fetcher,
        base: &Url,
        name: &str,
    ) -> Result<Option<tough::schema::Target>> {
        let target_name = tough::TargetName::new(name).map_err(|e| Error::Usage(e.to_string()))?;
        let mut stack: Vec<(String, Option<String>)> = vec![("targets".into(), None)];
        let mut visited = HashSet::new();
        while let Some((role, parent)) = stack.pop() {
            if visited.len() >= MAX_DELEGATIONS_VISITED {
                break;
            }
            if !visited.insert(role.clone()) {
                continue;
            }
            let targets = if role == "targets" {
                self.targets.clone().expect("refreshed first")
            } else {
                let parent_roles =
                    self.role(parent.as_deref().expect("delegated roles have a parent"));
                let delegations = parent_roles
                    .and_then(|p| p.signed.delegations.clone())
                    .expect("parent has delegations");
                if let Some(v) = self.delegated.get(&role) {
                    v.clone()
                } else {
                    let v = self
                        .load_role(fetcher, base, &role, Some(&delegations))
                        .await?;
                    self.delegated.insert(role.clone(), v.clone());
                    v
                }
            };
            if let Some(t) = targets.signed.targets.get(&target_name) {
                return Ok(Some(t.clone()));
            }
            if let Some(d) = &targets.signed.delegations {
                let mut children = Vec::new();
                for child in &d.roles {
                    if role_matches(child, name) {
                        children.push((child.name.clone(), Some(role.clone())));
                        if child.terminating {
                            stack.clear();
                            break;
                        }
                    }
                }
                children.reverse();
                stack.extend(children);
            }
        }
        Ok(None)
    }

    fn role(&self, name: &str) -> Option<&Verified<Targets>> {
        if name == "targets" {
            self.targets.as_ref()
        } else {
            self.delegated.get(name)
        }
    }
}

pub(crate) fn role_matches(role: &tough::schema::DelegatedRole, name: &str) -> bool {
    match &role.paths {
        tough::schema::PathSet::PathHashPrefixes(prefixes) => {
            let hash = hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                name.as_bytes(),
            ));
            prefixes.iter().any(|p| hash.starts_with(p.value()))
        }
        tough::schema::PathSet::Paths(patterns) => {
            patterns.iter().any(|p| glob_match(p.value(), name))
        }
    }
}

/// Shell-style matching where `*` and `?` do not cross `/` (TUF's PATHPATTERN).
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && n[0] != '/' && go(p, &n[1..])),
            (Some('?'), Some(c)) if *c != '/' => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_do_not_cross_folders() {
        assert!(glob_match("drupal/*", "drupal/token"));
        assert!(!glob_match("drupal/*", "drupal/token/1.0.0.0"));
        assert!(glob_match("drupal/*/*", "drupal/token/1.0.0.0"));
        assert!(glob_match("p2/?.json", "p2/a.json"));
    }

    #[test]
    fn role_files_are_safe_names() {
        assert_eq!(role_file("bin-000-001"), "bin-000-001.json");
        assert_eq!(role_file("a/b"), "a%2Fb.json");
    }
}
