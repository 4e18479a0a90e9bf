//! The offline root: a new root version is drafted, signed by one keyholder at a time (each on
//! their own machine, with their own key), and published once it carries the threshold of
//! both the current root's keys and its own (TUF 1.0 §5.3.4).
//!
//! The draft is an ordinary metadata file, `{"signatures": [...], "signed": {...}}`, so it
//! travels as one file between keyholders and is published byte for byte.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tough::schema::key::Key;
use tough::schema::{RoleKeys, RoleType, Signed};

use crate::schema::Root;

use crate::durable::write_durably;
use crate::keys::{self, KeyIdRule, SigningKey};
use crate::pin::Pin;
use crate::repository::expiry::expires_in;
use crate::repository::signed::{hex_decoded, non_zero};
use crate::repository::Layout;
use crate::role::Role;
use crate::roles::latest_root;
use crate::verify::{root_authority, verify};
use crate::{canonical, Error, Result};

fn role_name(role: RoleType) -> &'static str {
    Role::of_type(role).name()
}

/// What a new root version changes.
#[derive(Debug, Default)]
pub struct Changes {
    /// New lifetime, counted from now; `None` keeps the current expiry.
    pub expires: Option<Duration>,
    /// Keys to give a top-level role (`--add-key ROLE=FILE`).
    pub add: Vec<(RoleType, Key)>,
    /// Key ids, or unique prefixes of at least 8 hex digits.
    pub remove: Vec<(RoleType, String)>,
    /// New thresholds of top-level roles (`--threshold ROLE=N`), each at least 1.
    pub thresholds: Vec<(RoleType, u64)>,
    /// Rename every key by this rule; `None` keeps the ids and names added keys as the root
    /// names its keys already.
    pub key_id_rule: Option<KeyIdRule>,
}

impl Changes {
    /// From `tuf-signer root new`'s flags, each `ROLE=VALUE`: keys to add (`ROLE=FILE`, a
    /// public or private ed25519 PEM), keys to remove (`ROLE=KEYID`), thresholds
    /// (`ROLE=N`), and the new lifetime (`365d`).
    pub fn parse(
        add: &[(String, String)],
        remove: &[(String, String)],
        thresholds: &[(String, String)],
        expires: Option<&str>,
    ) -> Result<Changes> {
        let role = |name: &str| Role::top_level(name).map(Role::role_type);
        Ok(Changes {
            expires: expires
                .map(crate::repository::expiry::parse_duration)
                .transpose()?,
            add: add
                .iter()
                .map(|(r, file)| Ok((role(r)?, keys::load_public(Path::new(file))?)))
                .collect::<Result<_>>()?,
            remove: remove
                .iter()
                .map(|(r, id)| Ok((role(r)?, id.to_lowercase())))
                .collect::<Result<_>>()?,
            thresholds: thresholds
                .iter()
                .map(|(r, n)| {
                    let n = n
                        .parse()
                        .map_err(|_| Error::Usage(format!("--threshold {r}={n}: not a number")))?;
                    Ok((role(r)?, n))
                })
                .collect::<Result<_>>()?,
            key_id_rule: None,
        })
    }
}

/// The offline ceremony's steps on one draft file, each saying what it did and what comes
/// next (what `tuf-signer root` prints).
pub struct Ceremony {
    layout: Layout,
    /// The root the keyholders trust: the repository's roots must chain from it, and it
    /// moves forward to each root they publish.
    pin: Pin,
    draft: std::path::PathBuf,
}

impl Ceremony {
    /// The ceremony on `draft` for the repository at `layout`, trusting `pin_file` (a root
    /// the keyholders hold, moved forward to every root they publish).
    pub fn new(layout: Layout, pin_file: &Path, draft: &Path) -> Ceremony {
        Ceremony {
            layout,
            pin: Pin {
                file: pin_file.into(),
                forward: Some(pin_file.into()),
            },
            draft: draft.to_path_buf(),
        }
    }

    /// Refuses to replace a draft in progress unless `force`: said before anything else.
    pub fn may_start(&self, force: bool) -> Result<()> {
        if self.draft.exists() && !force {
            return Err(Error::Usage(format!(
                "{} exists: finish that ceremony, or pass --force to start over",
                self.draft.display()
            )));
        }
        Ok(())
    }

    /// Drafts the next root version from the newest one with `changes`, once
    /// [`Ceremony::may_start`] allows it.
    pub fn start(&self, changes: &Changes) -> Result<String> {
        let path = self.draft.display();
        let new = Draft::new(&self.layout, &self.pin, changes)?;
        new.save(&self.draft)?;
        Ok(format!(
            "{}Wrote {path}. Next: each keyholder runs `tuf-signer root sign --draft {path} --key KEY`.\n",
            new.describe(&latest_root(&self.layout, &self.pin)?)?
        ))
    }

    /// Adds the signature of `key_file`, a root key of the current root or of the new one.
    pub fn sign(&self, key_file: &Path) -> Result<String> {
        let current = latest_root(&self.layout, &self.pin)?;
        let mut draft = Draft::load(&self.draft)?;
        let ids = draft.sign(&SigningKey::load(key_file)?, Some(&current))?;
        draft.save(&self.draft)?;
        Ok(format!(
            "signed with {}\n{}",
            ids.join(" and "),
            draft.describe(&current)?
        ))
    }

    /// What the draft changes, and which signatures it has and still needs.
    pub fn status(&self) -> Result<String> {
        let current = latest_root(&self.layout, &self.pin)?;
        Draft::load(&self.draft)?.describe(&current)
    }

    /// Publishes the draft once both thresholds are met, saying which signers to restart.
    pub fn publish(&self, force: bool) -> Result<String> {
        let previous = latest_root(&self.layout, &self.pin)?;
        let draft = Draft::load(&self.draft)?;
        let version = draft.publish(&self.layout, &self.pin, force)?;
        let mut out = format!("published root v{version}\n");
        for role in Role::ONLINE {
            let (name, kind) = (role.name(), role.role_type());
            if previous.roles.get(&kind).map(|r| &r.keyids)
                != draft.root.roles.get(&kind).map(|r| &r.keyids)
            {
                out += &format!(
                    "  {name} keys changed: restart the {name} signer with its listed key\n"
                );
            }
        }
        Ok(out)
    }
}

/// A root version on its way to being published.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The new root's `signed` part, as it will be published.
    pub root: Root,
    /// `(key id, signature hex)`, one per key.
    pub signatures: Vec<(String, String)>,
}

/// How far a draft is from being publishable, for one set of root keys.
#[derive(Debug)]
pub struct Quorum {
    /// How many of these keys must sign.
    pub threshold: u64,
    /// The hex ids of the keys whose signature on the draft is valid.
    pub signed: Vec<String>,
    /// The hex ids of the keys that have not signed it (or not validly).
    pub missing: Vec<String>,
}

impl Quorum {
    /// Whether enough of the keys have signed.
    pub fn met(&self) -> bool {
        self.signed.len() as u64 >= self.threshold
    }
}

/// `--remove-key ROLE=ID`: drops the one key of `role` whose id starts with `id` (at
/// least 8 hex digits) from a draft of the root after version `current`.
fn remove_key(root: &mut Root, role: RoleType, id: &str, current: u64) -> Result<()> {
    let keys = &mut role_keys(root, role)?.keyids;
    let found: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| id.len() >= 8 && hex::encode(k).starts_with(id))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [i] => {
            keys.remove(*i);
            Ok(())
        }
        [] => Err(Error::Usage(format!(
            "--remove-key {}={id}: root v{current} lists no such {} key (give the key id, or \
             at least its first 8 hex digits; `tuf-client status` shows them)",
            role_name(role),
            role_name(role)
        ))),
        _ => Err(Error::Usage(format!(
            "--remove-key {}={id}: several keys start so; give more digits",
            role_name(role)
        ))),
    }
}

/// `--add-key ROLE=FILE`: gives `role` the ed25519 `key`, under the id the root already
/// gives it, else by `rule`.
fn add_key(root: &mut Root, role: RoleType, key: &Key, rule: KeyIdRule) -> Result<()> {
    if !matches!(key, Key::Ed25519 { .. }) {
        return Err(Error::Usage("only ed25519 keys are supported".into()));
    }
    let decoded = match root.keys.iter().find(|(_, k)| keys::same_key(k, key)) {
        Some((id, _)) => id.clone(),
        None => hex_decoded(&keys::key_id(key, rule)?)?,
    };
    let id = hex::encode(&decoded);
    let ids = &mut role_keys(root, role)?.keyids;
    if ids.contains(&decoded) {
        return Err(Error::Usage(format!(
            "--add-key: key {id} is already a {} key",
            role_name(role)
        )));
    }
    ids.push(decoded.clone());
    root.keys.insert(decoded, key.clone());
    Ok(())
}

impl Draft {
    /// Starts version N+1 of the repository's newest root, with `changes` applied.
    pub fn new(layout: &Layout, pin: &Pin, changes: &Changes) -> Result<Draft> {
        let current = latest_root(layout, pin)?;
        let mut root = current.clone();
        root.version = non_zero(crate::repository::signed::next_version(
            current.version.get(),
            &layout.versioned(Role::Root, current.version.get()),
        )?)?;
        if let Some(lifetime) = changes.expires {
            root.expires = expires_in(lifetime);
        }
        for (role, id) in &changes.remove {
            remove_key(&mut root, *role, id, current.version.get())?;
        }
        // A new key is named as the root names its keys already (php-tuf's rule unless the
        // repository was made with `init --key-id-rule spec`); a key the root knows keeps its id.
        let rule = match changes.key_id_rule {
            Some(rule) => {
                rename_keys(&mut root, rule)?;
                rule
            }
            None => KeyIdRule::of_all(&current.keys).unwrap_or_default(),
        };
        for (role, key) in &changes.add {
            add_key(&mut root, *role, key, rule)?;
        }
        for (role, threshold) in &changes.thresholds {
            role_keys(&mut root, *role)?.threshold = non_zero(*threshold)
                .map_err(|_| Error::Usage("--threshold: a threshold is at least 1".into()))?;
        }
        // Keys no role uses any more are dropped, so the file lists only live keys.
        let used: BTreeSet<_> = root.roles.values().flat_map(|r| r.keyids.clone()).collect();
        root.keys.retain(|id, _| used.contains(id));
        check_roles(&root)?;
        Ok(Draft {
            root,
            signatures: Vec::new(),
        })
    }

    /// Reads a draft a keyholder saved (`root new`, `root sign`).
    pub fn load(path: &Path) -> Result<Draft> {
        let bytes = std::fs::read(path).map_err(Error::io("cannot read the draft", path))?;
        let signed: Signed<Root> =
            serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
                what: "root draft",
                path: path.into(),
                source,
            })?;
        Ok(Draft {
            root: signed.signed,
            signatures: signed
                .signatures
                .iter()
                .map(|s| (hex::encode(&s.keyid), hex::encode(&s.sig)))
                .collect(),
        })
    }

    /// The file: canonical JSON, as it will be published.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let signatures: Vec<Value> = self
            .signatures
            .iter()
            .map(|(keyid, sig)| json!({"keyid": keyid, "sig": sig}))
            .collect();
        let signed = serde_json::to_value(&self.root).map_err(|e| Error::Canonical {
            what: Role::Root.name().into(),
            reason: e.to_string(),
        })?;
        canonical::value_to_vec(&json!({"signatures": signatures, "signed": signed}), "root")
    }

    /// Writes the draft to `path`, whole or not at all.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_durably(path, &self.to_bytes()?)
    }

    fn message(&self) -> Result<Vec<u8>> {
        canonical::to_vec(&self.root, Role::Root.name())
    }

    /// Adds `key`'s signature, under the id each of the two roots gives it (the same id unless
    /// this draft renames the key). The key must be a root key of this draft or of `previous`
    /// (the root it replaces): a signature no one counts is a mistake worth stopping. Returns
    /// the ids signed under.
    pub fn sign(&mut self, key: &SigningKey, previous: Option<&Root>) -> Result<Vec<String>> {
        let ids: BTreeSet<String> = std::iter::once(&self.root)
            .chain(previous)
            .filter_map(|root| root.id_of(RoleType::Root, key.public()).map(hex::encode))
            .collect();
        if ids.is_empty() {
            return Err(Error::Key {
                path: "--key".into(),
                reason: format!(
                    "key {} is not a root key of this draft{}; sign with a root key",
                    key.key_id(),
                    if previous.is_some() {
                        " nor of the current root"
                    } else {
                        " (pass --repo to also accept the current root's keys)"
                    }
                ),
            });
        }
        let sig = hex::encode(key.sign(&self.message()?)?);
        self.signatures.retain(|(k, _)| !ids.contains(k));
        self.signatures
            .extend(ids.iter().map(|id| (id.clone(), sig.clone())));
        self.signatures.sort();
        Ok(ids.into_iter().collect())
    }

    /// Which of `root`'s root keys have validly signed this draft, and which have not.
    pub fn quorum(&self, root: &Root) -> Result<Quorum> {
        let message = self.message()?;
        let role = &root.roles[&RoleType::Root];
        let mut quorum = Quorum {
            threshold: role.threshold.get(),
            signed: Vec::new(),
            missing: Vec::new(),
        };
        // Each id once: a hand-edited draft may list one twice (`check_roles` refuses it).
        let ids: BTreeSet<_> = role.keyids.iter().collect();
        for id in ids {
            let hex_id = hex::encode(id);
            let valid = self.signatures.iter().any(|(k, sig)| {
                *k == hex_id
                    && hex::decode(sig).is_ok_and(|sig| {
                        root.keys
                            .get(id)
                            .is_some_and(|key| keys::verify(key, &message, &sig))
                    })
            });
            if valid {
                quorum.signed.push(hex_id);
            } else {
                quorum.missing.push(hex_id);
            }
        }
        Ok(quorum)
    }

    /// Writes `N.root.json` and `root.json` once both thresholds are met; returns N.
    ///
    /// Refuses (unless `force`) a root under which the online metadata being served would
    /// not verify: published before the signer re-signed with its new key, it would stop
    /// every client until then. Running it again after an interruption finishes the job.
    pub fn publish(&self, layout: &Layout, pin: &Pin, force: bool) -> Result<u64> {
        let current = latest_root(layout, pin)?;
        let version = self.root.version.get();
        let bytes = self.to_bytes()?;
        let numbered = layout.versioned(Role::Root, version);
        if version == current.version.get()
            && std::fs::read(&numbered).is_ok_and(|on_disk| on_disk == bytes)
        {
            // Interrupted between the two writes last time.
            layout.staging()?.write_durably(&layout.root(), &bytes)?;
            return Ok(version);
        }
        if current.version.get().checked_add(1) != Some(version) {
            return Err(Error::Refused(format!(
                "this draft is root v{version} but the repository is at v{}; start a new \
                 draft with `tuf-signer root new`",
                current.version
            )));
        }
        check_roles(&self.root)?;
        if self.root.expires <= jiff::Timestamp::now() {
            return Err(Error::Refused(
                "this draft has already expired; start a new one".into(),
            ));
        }
        // The same check clients make (§5.3.4-§5.3.6), by the updater's trusted set over the
        // chain on disk: a threshold of the current root keys, then of the new ones.
        let mut chain = crate::trusted::trusted_chain(layout, pin)?;
        chain.update_root(&bytes).map_err(|e| match e {
            crate::updater::Error::Unsigned(m) => Error::Refused(format!(
                "not enough signatures of the current or the new root keys ({m}); see \
                 `tuf-signer root status`"
            )),
            other => Error::Refused(format!("clients would refuse this root: {other}")),
        })?;
        let orphaned = unsigned_under(layout, &self.root)?;
        if !orphaned.is_empty() && !force {
            return Err(Error::Refused(format!(
                "clients would refuse the repository under this root: {}. Restart that \
                 signer with a key this root lists first (rotate in two root versions: add \
                 the new key, restart the signer, then remove the old key), or pass --force",
                orphaned.join("; ")
            )));
        }
        let staging = layout.staging()?;
        staging.write_version_durably(&numbered, &bytes)?;
        staging.write_durably(&layout.root(), &bytes)?;
        // The keyholders' pin moves to the root they just published.
        pin.advance(&pin.load()?, &bytes, version)?;
        Ok(version)
    }

    /// What this draft changes against `previous`, and who has signed it.
    pub fn describe(&self, previous: &Root) -> Result<String> {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "root v{} (replaces v{}), expires {}",
            self.root.version, previous.version, self.root.expires
        );
        for role in Role::TOP_LEVEL {
            let (name, role) = (role.name(), role.role_type());
            let ids = |root: &Root| -> (BTreeSet<String>, u64) {
                root.roles
                    .get(&role)
                    .map(|r| {
                        (
                            r.keyids.iter().map(hex::encode).collect(),
                            r.threshold.get(),
                        )
                    })
                    .unwrap_or_default()
            };
            let (old, old_t) = ids(previous);
            let (new, new_t) = ids(&self.root);
            let mut line = format!("  {name:<9} threshold {new_t} of {}", new.len());
            if old_t != new_t {
                let _ = write!(line, " (was {old_t})");
            }
            let _ = writeln!(out, "{line}");
            for id in new.union(&old) {
                let mark = match (old.contains(id), new.contains(id)) {
                    (true, true) => "   ",
                    (false, true) => "  +",
                    _ => "  -",
                };
                let _ = writeln!(out, "  {mark} {id}");
            }
        }
        for (what, root) in [("current", previous), ("new", &self.root)] {
            let q = self.quorum(root)?;
            let _ = writeln!(
                out,
                "signatures of the {what} root keys: {} of {} needed{}",
                q.signed.len(),
                q.threshold,
                if q.met() { " (met)" } else { "" }
            );
            for id in &q.signed {
                let _ = writeln!(out, "  signed  {id}");
            }
            for id in &q.missing {
                let _ = writeln!(out, "  missing {id}");
            }
        }
        Ok(out)
    }
}

/// The online files being served (timestamp, the snapshot it names, the targets that names)
/// that would not verify under `root`: clients would refuse them.
fn unsigned_under(layout: &Layout, root: &Root) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut check = |role: RoleType, path: std::path::PathBuf, what: String| -> Result<Value> {
        let bytes = std::fs::read(&path).map_err(Error::io("cannot read", &path))?;
        if let Err(e) = verify::<Value>(&bytes, &what, &root_authority(root, role)?) {
            problems.push(format!("{e} (a {} file)", role_name(role)));
        }
        Ok(serde_json::from_slice::<Value>(&bytes).unwrap_or_default()["signed"].take())
    };
    let version_of = |file: &Value, name: &str| file["meta"][name]["version"].as_u64();
    let timestamp = check(
        RoleType::Timestamp,
        layout.timestamp(),
        Role::Timestamp.file().into(),
    )?;
    if let Some(v) = version_of(&timestamp, Role::Snapshot.file()) {
        let snapshot = check(
            RoleType::Snapshot,
            layout.versioned(Role::Snapshot, v),
            format!("{v}.snapshot.json"),
        )?;
        if let Some(v) = version_of(&snapshot, Role::Targets.file()) {
            check(
                RoleType::Targets,
                layout.versioned(Role::Targets, v),
                format!("{v}.targets.json"),
            )?;
        }
    }
    Ok(problems)
}

/// Gives every key of `root` its id by `rule`, in the key list and in every role.
fn rename_keys(root: &mut Root, rule: KeyIdRule) -> Result<()> {
    let mut renamed = HashMap::new();
    for (id, key) in std::mem::take(&mut root.keys) {
        let new = hex_decoded(&keys::key_id(&key, rule)?)?;
        root.keys.insert(new.clone(), key);
        renamed.insert(id, new);
    }
    for role in root.roles.values_mut() {
        for id in &mut role.keyids {
            if let Some(new) = renamed.get(id) {
                *id = new.clone();
            }
        }
    }
    Ok(())
}

fn role_keys(root: &mut Root, role: RoleType) -> Result<&mut RoleKeys> {
    root.roles
        .get_mut(&role)
        .ok_or_else(|| Error::Refused(format!("the current root has no {} role", role_name(role))))
}

/// Every top-level role present, with at least as many keys as its threshold, each listed, and
/// no public key under two ids (a threshold counts keys, not ids).
fn check_roles(root: &Root) -> Result<()> {
    let keys: &HashMap<_, _> = &root.keys;
    crate::verify::refuse_duplicate_keys(keys, "the root")
        .map_err(|e| Error::Usage(e.to_string()))?;
    for role in Role::TOP_LEVEL {
        let (name, role) = (role.name(), role.role_type());
        let r = root
            .roles
            .get(&role)
            .ok_or_else(|| Error::Usage(format!("the root has no {name} role")))?;
        if r.keyids.iter().collect::<BTreeSet<_>>().len() != r.keyids.len() {
            return Err(Error::Usage(format!("{name}: lists one key id twice")));
        }
        if (r.keyids.len() as u64) < r.threshold.get() {
            return Err(Error::Usage(format!(
                "{name}: threshold {} but only {} key(s); add keys or lower --threshold {name}=N",
                r.threshold,
                r.keyids.len()
            )));
        }
        if role != RoleType::Root && r.threshold.get() != 1 {
            return Err(Error::Usage(format!(
                "{name}: threshold {}; an online role is signed by one signer with one key, so \
                 its threshold must be 1 (list a second key only while rotating)",
                r.threshold
            )));
        }
        if let Some(id) = r.keyids.iter().find(|id| !keys.contains_key(*id)) {
            return Err(Error::Usage(format!(
                "{name}: key {} is not in the root's key list",
                hex::encode(id)
            )));
        }
    }
    Ok(())
}
