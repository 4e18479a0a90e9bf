//! `tuf-signer init`: the keys and the first signed version of every role.
//!
//! In order: refuse to overwrite anything → write the keys (private from their first byte) →
//! build every role's first version ([`crate::repository::build`]), sign it, write it (through staging;
//! `timestamp.json` last, which is what starting signers wait for) → give keys and folders to
//! the agents' users ([`Deployment`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::bins::HashBins;
use crate::durable::{create_dir, create_private_dir, write_durably};
use crate::keys::{self, KeyIdRule, SigningKey};
use crate::ops::new_key::Holder;
use crate::repository::build;
use crate::repository::deployment::Deployment;
use crate::repository::signed::sign;
use crate::repository::{Expiries, Layout};
use crate::role::Role;
use crate::role::SUBMITTER;
use crate::submission::SUBMITTERS_FILE;
use crate::{Error, Result};

/// What `tuf-signer init` makes, from its flags.
pub struct InitOptions {
    /// Where the repository goes; it must not hold one already.
    pub repo: PathBuf,
    /// Where the keys go, one `ROLE.pem` each; none may exist already.
    pub keys: PathBuf,
    /// How many hashed bins: a power of two from 1 to [`crate::bins::MAX_BINS`].
    pub bins: u32,
    /// Each role's lifetime, for the first versions' expiries.
    pub expiries: Expiries,
    /// Who gets which key, one folder per key or not, and the agents' group.
    pub deployment: Deployment,
    /// How the root names its keys (and the targets role its bins' key).
    pub key_id_rule: KeyIdRule,
    /// Where the keys are made: files, or inside a PKCS#11 token (`--token`).
    pub holder: Holder,
}

impl InitOptions {
    /// A repository at `repo` with its keys in `keys` (one folder, this process's user) and
    /// `bins` hashed bins; default lifetimes and php-tuf's key-id rule, as `tuf-signer init`
    /// with no other flag.
    pub fn new(repo: PathBuf, keys: PathBuf, bins: u32) -> InitOptions {
        InitOptions {
            repo,
            keys,
            bins,
            expiries: Expiries::default(),
            deployment: Deployment::default(),
            key_id_rule: KeyIdRule::default(),
            holder: Holder::default(),
        }
    }
}

/// What init made, for the summary it prints.
#[derive(Debug)]
pub struct InitReport {
    /// `(role, key id)` of every top-level role's key and of the submitter key.
    pub key_ids: Vec<(String, String)>,
    /// How many metadata files init wrote: every bin and five more.
    pub files_written: usize,
}

/// Where init writes the key `name` (a role's, or the submitter's) in one folder of keys:
/// `KEYS/<name>.pem`. The images read each signer's key from there (`nix/agents.json`).
pub fn key_path(keys_dir: &Path, role: &str) -> PathBuf {
    keys_dir.join(format!("{role}.pem"))
}

/// Where init put a role's key: `KEYS/<role>.pem`, or `KEYS/<role>/<role>.pem` with
/// `--key-folders`; `.pkcs11` in place of `.pem` for a key in a token (`--token`).
pub fn find_key(keys_dir: &Path, role: &str) -> PathBuf {
    let places = [keys_dir.join(role), keys_dir.to_path_buf()];
    let extensions = [Holder::File, token_holder()].map(|h| h.extension());
    places
        .iter()
        .flat_map(|dir| extensions.map(|ext| dir.join(format!("{role}.{ext}"))))
        .find(|path| path.is_file())
        .unwrap_or_else(|| key_path(keys_dir, role))
}

/// A token holder, for its extension.
fn token_holder() -> Holder {
    Holder::Token {
        uri: Default::default(),
        label_prefix: String::new(),
    }
}

fn new_key_path(opts: &InitOptions, role: &str) -> PathBuf {
    let file = format!("{role}.{}", opts.holder.extension());
    if opts.deployment.key_folders {
        opts.keys.join(role).join(file)
    } else {
        opts.keys.join(file)
    }
}

/// Where `init` wrote the submitter keys the targets signer trusts.
pub fn submitters_file(keys_dir: &Path) -> PathBuf {
    find_key(keys_dir, Role::Targets.name()).with_file_name(SUBMITTERS_FILE)
}

impl InitReport {
    /// What `tuf-signer init` prints: the keys, where they are, and what to do next.
    pub fn summary(&self, opts: &InitOptions) -> String {
        let keys = &opts.keys;
        let mut out = format!(
            "Initialised {} ({} bins, {} metadata files).\n",
            opts.repo.display(),
            opts.bins,
            self.files_written
        );
        for (role, id) in &self.key_ids {
            out += &format!("  {role:<9} key {id}  {}\n", find_key(keys, role).display());
        }
        out += &format!(
            "Move {} to offline storage: no signer needs it.\n",
            find_key(keys, Role::Root.name()).display()
        );
        out += &format!(
            "The packaging pipeline signs its jobs with {} (tuf-client --submitter-key); the \
             targets signer trusts the key in {}.\n",
            find_key(keys, SUBMITTER).display(),
            submitters_file(keys).display()
        );
        out += "Each key's folder holds root.json, the root that agent trusts (its --root): copy \
                it with the key; the repository's own roots count only if they chain from it.\n";
        out += &format!(
            "Next: tuf-signer run --all --repo {} --keys {} --inbox ./inbox\n",
            opts.repo.display(),
            keys.display()
        );
        out
    }
}

/// Makes a new repository: keys, first versions of every role, folders handed to the agents.
/// Refuses to overwrite anything; `progress(done, total)` follows the bins signed.
pub fn init(opts: &InitOptions, progress: impl FnMut(usize, usize)) -> Result<InitReport> {
    let bins = HashBins::new(opts.bins)?;
    let layout = Layout::new(&opts.repo);
    refuse_existing(opts, &layout)?;
    make_folders(opts, &layout)?;
    let (mut keys, submitter) = make_keys(opts, &layout)?;
    let root = build::root(&keys, opts.expiries, opts.key_id_rule)?;
    let mut key_ids = Vec::new();
    for role in Role::TOP_LEVEL {
        let key = keys.get_mut(&role).expect("made above");
        let id = root
            .id_of(role.role_type(), key.public())
            .expect("root lists every key");
        key.sign_as(id);
        key_ids.push((role.to_string(), key.key_id().to_string()));
    }
    key_ids.push((SUBMITTER.to_string(), submitter.key_id().to_string()));
    let root_file = sign(&root, 1, &[&keys[&Role::Root]], Role::Root.name())?;
    hand_over_pins(opts, &root_file.bytes)?;
    let staging = layout.staging()?;
    staging.write_version_durably(&layout.versioned(Role::Root, 1), &root_file.bytes)?;
    staging.write_durably(&layout.root(), &root_file.bytes)?;
    write_first_versions(opts, &layout, bins, &keys, progress)?;
    opts.deployment.give_metadata(&layout)?;
    opts.deployment.lay_out(&layout)?;
    Ok(InitReport {
        key_ids,
        files_written: bins.count() as usize + 5,
    })
}

/// init never overwrites: a repository already there, or any key file, stops it before
/// anything is written.
fn refuse_existing(opts: &InitOptions, layout: &Layout) -> Result<()> {
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
    for name in Role::TOP_LEVEL.map(Role::name).iter().chain(&[SUBMITTER]) {
        let path = find_key(&opts.keys, name);
        if path.exists() {
            return Err(Error::Key {
                path,
                reason:
                    "already exists; init never overwrites a key: choose an empty --keys folder"
                        .into(),
            });
        }
    }
    Ok(())
}

/// The keys folder (private from the start) and the repository's folders.
fn make_folders(opts: &InitOptions, layout: &Layout) -> Result<()> {
    create_private_dir(&opts.keys, opts.deployment.keys_mode())?;
    create_dir(&layout.metadata_dir())?;
    create_dir(&layout.targets_dir())?;
    create_dir(&layout.control_dir())?;
    for role in Role::ONLINE {
        create_dir(&layout.role_dir(role))?;
    }
    create_dir(&layout.pause_dir())
}

/// A new key for every top-level role and the submitter, each file private from its first
/// byte and given to its owner before anything else is made; the submitter's public key in
/// the file the targets signer trusts, and the targets signer's empty ledger.
fn make_keys(
    opts: &InitOptions,
    layout: &Layout,
) -> Result<(HashMap<Role, SigningKey>, SigningKey)> {
    let deployment = &opts.deployment;
    let new_key = |name: &str| -> Result<SigningKey> {
        let path = new_key_path(opts, name);
        if deployment.key_folders {
            create_private_dir(path.parent().expect("key files have a folder"), 0o700)?;
        }
        // Private from its first byte, never replacing a file.
        let key = opts.holder.make(name, &path)?;
        deployment.give_key(name, &path)?;
        Ok(key)
    };
    let keys = Role::TOP_LEVEL
        .into_iter()
        .map(|role| Ok((role, new_key(role.name())?)))
        .collect::<Result<HashMap<Role, SigningKey>>>()?;
    let submitter = new_key(SUBMITTER)?;
    // The targets signer applies only jobs signed by a key in this file.
    let submitters = new_key_path(opts, Role::Targets.name()).with_file_name(SUBMITTERS_FILE);
    let public = keys::public_pem(submitter.public()).expect("an ed25519 key");
    write_durably(&submitters, public.as_bytes())?;
    deployment.give_key(Role::Targets.name(), &submitters)?;
    // What the targets signer's replay rule remembers; it appends to it.
    let ledger = layout.default_ledger();
    crate::submission::Ledger::create(&ledger)?;
    deployment.give_to_targets_signer(&ledger)?;
    Ok((keys, submitter))
}

/// Each agent's pinned root, beside its key (crate::pin): where its trust starts, handed
/// over with the key, never read from the repository. One in each key folder, or one beside
/// all the keys (public: anyone may read it).
fn hand_over_pins(opts: &InitOptions, root: &[u8]) -> Result<()> {
    let deployment = &opts.deployment;
    let folders: Vec<&str> = if deployment.key_folders {
        Role::TOP_LEVEL
            .map(Role::name)
            .into_iter()
            .chain([SUBMITTER])
            .collect()
    } else {
        vec![Role::Root.name()]
    };
    for name in folders {
        let pin = new_key_path(opts, name).with_file_name(crate::pin::PIN_FILE);
        write_durably(&pin, root)?;
        if deployment.key_folders {
            deployment.give_key(name, &pin)?;
        }
    }
    Ok(())
}

/// Version 1 of every bin (empty), of top-level targets, of the snapshot listing them, and
/// timestamp.json last: a signer started first waits for that file.
fn write_first_versions(
    opts: &InitOptions,
    layout: &Layout,
    bins: HashBins,
    keys: &HashMap<Role, SigningKey>,
    mut progress: impl FnMut(usize, usize),
) -> Result<()> {
    let staging = layout.staging()?;
    let targets_key = &keys[&Role::Targets];
    let mut snapshot = build::snapshot(1, opts.expiries)?;
    let total = bins.count() as usize;
    let mut files = Vec::with_capacity(total);
    for (i, name) in bins.names().enumerate() {
        let file = sign(
            &build::empty_bin(1, opts.expiries)?,
            1,
            &[targets_key],
            &name,
        )?;
        snapshot
            .meta
            .insert(crate::schema::listed_name(&name), file.meta.to_metafile()?);
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

    let top = build::top_targets(bins, targets_key, 1, opts.expiries)?;
    let top_file = sign(&top, 1, &[targets_key], Role::Targets.name())?;
    staging.write_version_durably(&layout.versioned(Role::Targets, 1), &top_file.bytes)?;
    snapshot
        .meta
        .insert(Role::Targets.file().into(), top_file.meta.to_metafile()?);

    let snapshot_file = sign(
        &snapshot,
        1,
        &[&keys[&Role::Snapshot]],
        Role::Snapshot.name(),
    )?;
    staging.write_version_durably(&layout.versioned(Role::Snapshot, 1), &snapshot_file.bytes)?;
    let timestamp_file = build::timestamp(
        &snapshot_file.meta,
        1,
        &[&keys[&Role::Timestamp]],
        opts.expiries,
    )?;
    staging.write_durably(&layout.timestamp(), &timestamp_file.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nix/agents.json`, the one source of the images, runs each online role's signer, with
    /// the key init writes for the role that signs it (the bins are signed by the targets
    /// signer, with its key).
    #[test]
    fn each_signer_image_runs_its_role_with_the_key_init_writes() {
        let agents: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(include_str!("../../nix/agents.json")).unwrap();
        for role in Role::ONLINE {
            let runs = |agent: &&serde_json::Value| {
                agent["args"] == serde_json::json!(["run", "--role", role.key_role().name()])
            };
            let running: Vec<_> = agents.values().filter(runs).collect();
            assert_eq!(running.len(), 1, "{role}: one agent runs its signer");
            let key = Path::new(running[0]["env"]["TUF_KEY"].as_str().unwrap());
            assert_eq!(
                key,
                key_path(key.parent().unwrap(), role.key_role().name()),
                "{role}"
            );
        }
    }
}
