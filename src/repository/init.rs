//! `tuf-signer init`: the keys and the first signed version of every role.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tough::schema::{
    DelegatedRole, PathHashPrefix, PathSet, Role as _, RoleKeys, Snapshot, Timestamp,
};

use crate::schema::{Delegations, Root, Targets};

use super::expiry::expires_in;
use super::layout::{create_dir, create_private_dir, write_durably};
use super::signed::{hex_decoded, non_zero, sign, SignedFile};
use super::MetaEntry;
use super::{Expiries, HashBins, Layout, SPEC_VERSION};
use crate::keys::{self, KeyIdRule, SigningKey};
use crate::role::Role;
use crate::{Error, Result};

/// The packaging pipeline's key, `KEYS/submitter.pem`, with which it signs every targets job
/// (see [`crate::submission`]); no metadata lists it.
pub const SUBMITTER: &str = "submitter";

/// The submitter public keys the targets signer trusts, written beside the targets key.
pub const SUBMITTERS_FILE: &str = "submitters.pub";

pub struct InitOptions {
    pub repo: PathBuf,
    pub keys: PathBuf,
    pub bins: u32,
    pub expiries: Expiries,
    /// Write `KEYS/<role>/<role>.pem` instead of `KEYS/<role>.pem`: one folder, so one
    /// volume, per role.
    pub key_folders: bool,
    /// Give a role's key (file and folder) to this uid: each signer runs as its own user.
    pub key_owners: Vec<(String, u32)>,
    /// Make the repository folders group-writable (setgid) for this gid, shared by the agents.
    pub repo_group: Option<u32>,
    /// How the root names its keys (and the targets role its bins' key).
    pub key_id_rule: KeyIdRule,
}

/// What init made, for the summary it prints.
#[derive(Debug)]
pub struct InitReport {
    pub key_ids: Vec<(String, String)>,
    pub files_written: usize,
}

pub fn key_path(keys_dir: &Path, role: &str) -> PathBuf {
    keys_dir.join(format!("{role}.pem"))
}

/// Where init put a role's key: `KEYS/<role>.pem`, or `KEYS/<role>/<role>.pem` with
/// `--key-folders`.
pub fn find_key(keys_dir: &Path, role: &str) -> PathBuf {
    let in_folder = keys_dir.join(role).join(format!("{role}.pem"));
    if in_folder.is_file() {
        in_folder
    } else {
        key_path(keys_dir, role)
    }
}

fn new_key_path(opts: &InitOptions, role: &str) -> PathBuf {
    if opts.key_folders {
        opts.keys.join(role).join(format!("{role}.pem"))
    } else {
        key_path(&opts.keys, role)
    }
}

pub fn init(opts: &InitOptions, mut progress: impl FnMut(usize, usize)) -> Result<InitReport> {
    let bins = HashBins::new(opts.bins)?;
    let layout = Layout::new(&opts.repo);
    if layout.metadata_dir().join("1.root.json").exists() {
        return Err(Error::Repository {
            path: opts.repo.clone(),
            reason: "already initialised (metadata/1.root.json exists); init never overwrites a \
                     repository: choose an empty folder"
                .into(),
        });
    }
    // Each top-level role has its own key file `KEYS/<role>.pem` (`Role::key_file`); root's
    // belongs offline: move it away once init is done.
    let key_names = Role::TOP_LEVEL.map(Role::name);
    for name in key_names.iter().chain(&[SUBMITTER]) {
        let path = new_key_path(opts, name);
        if path.exists() {
            return Err(Error::Key {
                path,
                reason:
                    "already exists; init never overwrites a key: choose an empty --keys folder"
                        .into(),
            });
        }
    }
    // Keys are private from the start: the folder 0700, each key file 0600 from its first byte.
    // With --key-owner, other users must reach their own folder inside: 0711 (no listing).
    let keys_mode = if opts.key_owners.is_empty() {
        0o700
    } else {
        0o711
    };
    create_private_dir(&opts.keys, keys_mode)?;
    create_dir(&layout.metadata_dir())?;
    create_dir(&layout.targets_dir())?;
    create_dir(&layout.control_dir())?;

    let mut keys = HashMap::new();
    let mut key_ids = Vec::new();
    for name in key_names.iter().chain(&[SUBMITTER]) {
        let (key, pem) = SigningKey::generate()?;
        let path = new_key_path(opts, name);
        if opts.key_folders {
            create_private_dir(path.parent().expect("key files have a folder"), 0o700)?;
        }
        SigningKey::save_pem(&pem, &path)?;
        give_to_owner(opts, name, &path)?;
        keys.insert(*name, key);
    }
    // The targets signer applies only jobs signed by a key in this file.
    let submitters = new_key_path(opts, Role::Targets.name()).with_file_name(SUBMITTERS_FILE);
    let public = keys::public_pem(keys[SUBMITTER].public()).expect("an ed25519 key");
    write_durably(&submitters, public.as_bytes())?;
    give_to_owner(opts, Role::Targets.name(), &submitters)?;
    // What the targets signer's replay rule remembers; it appends to it.
    let ledger = layout.default_ledger();
    crate::submission::Ledger::create(&ledger)?;
    if let Some((_, uid)) = opts
        .key_owners
        .iter()
        .find(|(r, _)| r == Role::Targets.name())
    {
        ownership::give(&ledger, *uid)?;
    }

    let root = build_root(&keys, opts.expiries, opts.key_id_rule)?;
    for role in Role::TOP_LEVEL {
        let key = keys.get_mut(role.name()).expect("made above");
        let id = root
            .id_of(role.role_type(), key.public())
            .expect("root lists every key");
        key.sign_as(id);
        key_ids.push((role.to_string(), key.key_id().to_string()));
    }
    key_ids.push((SUBMITTER.to_string(), keys[SUBMITTER].key_id().to_string()));
    let root_file = sign(&root, 1, &[&keys[Role::Root.name()]], Role::Root.name())?;
    let staging = layout.staging()?;
    staging.write_version_durably(&layout.versioned(Role::Root, 1), &root_file.bytes)?;
    staging.write_durably(&layout.root(), &root_file.bytes)?;

    let targets_key = &keys[Role::Targets.name()];
    let mut snapshot = Snapshot::new(
        SPEC_VERSION.into(),
        non_zero(1)?,
        expires_in(opts.expiries.snapshot),
    );
    let total = bins.count() as usize;
    let mut files = Vec::with_capacity(total);
    for (i, name) in bins.names().enumerate() {
        let bin = Targets::new(
            SPEC_VERSION.into(),
            non_zero(1)?,
            expires_in(opts.expiries.bins),
        );
        let file = sign(&bin, 1, &[targets_key], &name)?;
        snapshot
            .meta
            .insert(format!("{name}.json"), file.meta.to_metafile()?);
        files.push((layout.versioned(&name, 1), file.bytes));
        if (i + 1) % 256 == 0 || i + 1 == total {
            progress(i + 1, total);
        }
    }
    let refs: Vec<_> = files
        .iter()
        .map(|(p, b)| (p.clone(), b.as_slice()))
        .collect();
    staging.write_all_durably(&layout.metadata_dir(), &refs)?;

    let top = build_top_targets(bins, targets_key, 1, opts.expiries)?;
    let top_file = sign(&top, 1, &[targets_key], Role::Targets.name())?;
    staging.write_version_durably(&layout.versioned(Role::Targets, 1), &top_file.bytes)?;
    snapshot
        .meta
        .insert(Role::Targets.file().into(), top_file.meta.to_metafile()?);

    let snapshot_file = sign(
        &snapshot,
        1,
        &[&keys[Role::Snapshot.name()]],
        Role::Snapshot.name(),
    )?;
    staging.write_version_durably(&layout.versioned(Role::Snapshot, 1), &snapshot_file.bytes)?;
    let timestamp_file = timestamp_for(
        &snapshot_file.meta,
        1,
        &keys[Role::Timestamp.name()],
        opts.expiries,
    )?;
    staging.write_durably(&layout.timestamp(), &timestamp_file.bytes)?;

    if let Some(gid) = opts.repo_group {
        ownership::share_with_group(&opts.repo, gid)?;
    }

    Ok(InitReport {
        key_ids,
        files_written: total + 5,
    })
}

/// With `--key-owner ROLE=UID`: `path` (and, with `--key-folders`, its folder) to that user.
fn give_to_owner(opts: &InitOptions, role: &str, path: &Path) -> Result<()> {
    if let Some((_, uid)) = opts.key_owners.iter().find(|(r, _)| r == role) {
        ownership::give(path, *uid)?;
        if opts.key_folders {
            ownership::give(path.parent().expect("has a folder"), *uid)?;
        }
    }
    Ok(())
}

fn build_root(
    keys: &HashMap<&str, SigningKey>,
    expiries: Expiries,
    rule: KeyIdRule,
) -> Result<Root> {
    let mut root = Root {
        spec_version: SPEC_VERSION.into(),
        consistent_snapshot: true,
        version: non_zero(1)?,
        expires: expires_in(expiries.root),
        keys: HashMap::new(),
        roles: HashMap::new(),
        _extra: HashMap::new(),
    };
    for role in Role::TOP_LEVEL {
        let key = &keys[role.name()];
        let id = hex_decoded(&keys::key_id(key.public(), rule)?)?;
        root.keys.insert(id.clone(), key.public().clone());
        root.roles.insert(
            role.role_type(),
            RoleKeys {
                keyids: vec![id],
                threshold: non_zero(1)?,
                _extra: HashMap::new(),
            },
        );
    }
    Ok(root)
}

/// Top-level targets: no targets of its own, every bin delegated by hash prefix, terminating,
/// to `key` under the id it signs with (the one the root gives it).
pub fn build_top_targets(
    bins: HashBins,
    key: &SigningKey,
    version: u64,
    expiries: Expiries,
) -> Result<Targets> {
    let id = hex_decoded(key.key_id())?;
    let mut delegations = Delegations::default();
    delegations.keys.insert(id.clone(), key.public().clone());
    for i in 0..bins.count() {
        let prefixes = bins
            .prefixes(i)
            .into_iter()
            .map(|p| PathHashPrefix::new(p).map_err(|e| Error::Usage(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        delegations.roles.push(DelegatedRole {
            name: bins.name(i),
            keyids: vec![id.clone()],
            threshold: non_zero(1)?,
            paths: PathSet::PathHashPrefixes(prefixes),
            terminating: true,
            targets: None,
        });
    }
    let mut top = Targets::new(
        SPEC_VERSION.into(),
        non_zero(version)?,
        expires_in(expiries.targets),
    );
    top.delegations = Some(delegations);
    Ok(top)
}

/// A timestamp that points at `snapshot`.
pub fn timestamp_for(
    snapshot: &MetaEntry,
    version: u64,
    key: &SigningKey,
    expiries: Expiries,
) -> Result<SignedFile> {
    let mut timestamp = Timestamp::new(
        SPEC_VERSION.into(),
        non_zero(version)?,
        expires_in(expiries.timestamp),
    );
    timestamp
        .meta
        .insert(Role::Snapshot.file().into(), snapshot.to_metafile()?);
    debug_assert_eq!(timestamp.version().get(), version);
    sign(&timestamp, version, &[key], Role::Timestamp.name())
}

/// Ownership for deployments where each agent runs as its own user (the images).
mod ownership {
    use std::path::Path;

    use crate::{Error, Result};

    /// `chown uid:uid path`.
    pub fn give(path: &Path, uid: u32) -> Result<()> {
        #[cfg(unix)]
        std::os::unix::fs::chown(path, Some(uid), Some(uid)).map_err(Error::io(
            "cannot change owner (init must run as root to give keys to other users)",
            path,
        ))?;
        #[cfg(not(unix))]
        let _ = (path, uid);
        Ok(())
    }

    /// Every folder under `root` to group `gid`, group-writable and setgid, so that each
    /// signer can add its files; files stay group-readable.
    pub fn share_with_group(root: &Path, gid: u32) -> Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mut stack = vec![root.to_path_buf()];
            while let Some(dir) = stack.pop() {
                std::os::unix::fs::chown(&dir, None, Some(gid)).map_err(Error::io(
                    "cannot change group (init must run as root)",
                    &dir,
                ))?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2775))
                    .map_err(Error::io("cannot make group-writable", &dir))?;
                for entry in std::fs::read_dir(&dir).map_err(Error::io("cannot list", &dir))? {
                    let path = entry.map_err(Error::io("cannot list", &dir))?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else {
                        std::os::unix::fs::chown(&path, None, Some(gid))
                            .map_err(Error::io("cannot change group", &path))?;
                    }
                }
            }
        }
        #[cfg(not(unix))]
        let _ = (root, gid);
        Ok(())
    }
}
