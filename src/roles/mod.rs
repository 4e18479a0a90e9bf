//! What each online role does with a batch of jobs. A role holds its state in memory, loaded
//! from its own latest files when it becomes the active signer, and writes only its own files.

pub mod snapshot;
pub mod stage;
pub mod targets;
pub mod timestamp;

use std::collections::BTreeMap;
use std::time::Duration;

use tough::schema::key::Key;
use tough::schema::{RoleType, Signed};

use crate::pin::Pin;
use crate::schema::{role_of_listed, Root};
use crate::trusted::RootChain;

use crate::keys::SigningKey;
use crate::repository::{signed, Expiries, Layout, MetaEntry};
use crate::role::Role;
use crate::schema::Header;
use crate::{Error, Result};
use serde::de::{DeserializeOwned, IgnoredAny};

pub use snapshot::SnapshotRole;
pub use stage::{Applied, Core, Last, Refusal, Stage};
pub use targets::TargetsRole;
pub use timestamp::TimestampRole;

/// What every role is given at start.
#[derive(Debug, Clone)]
pub struct RoleSettings {
    /// The repository the role writes.
    pub layout: Layout,
    /// Where trust starts: every root on disk must chain from it ([`crate::pin`]).
    pub pin: Pin,
    /// The signer's own state folder (never on the shared volume): its moved pin and the
    /// highest version it signed of each file ([`crate::high_water`]).
    pub state: std::path::PathBuf,
    /// Each role's lifetime, for the versions it signs.
    pub expiries: Expiries,
    /// How long superseded versions stay on disk, and how many.
    pub retention: crate::repository::prune::Retention,
    /// Re-sign a role when less than this fraction of its lifetime is left (0.5: a 1-day
    /// timestamp is re-signed once less than 12 hours remain).
    pub refresh_window: f64,
    /// How many targets the targets signer keeps in memory, at most: a bin beyond it is read
    /// back from disk when a job touches it ([`HELD_TARGETS`] by default).
    pub held_targets: usize,
    /// Whose targets jobs the targets signer applies (see [`crate::submission`]); the other
    /// roles take jobs only from the signer upstream and leave it `None`.
    pub submissions: Option<crate::submission::Policy>,
}

/// How many targets the targets signer keeps in memory by default: a million (about 250 MB),
/// so a repository of Drupal.org's size (about 250,000) is held whole, and Packagist's (6
/// million) reads a bin back from disk when a job touches one not held.
pub const HELD_TARGETS: usize = 1_000_000;

/// Whether metadata expiring at `expires`, whose lifetime is `lifetime`, is inside the
/// refresh window (or already expired).
pub fn expires_within(expires: jiff::Timestamp, lifetime: Duration, window: f64) -> bool {
    let left = expires.as_second() - jiff::Timestamp::now().as_second();
    (left as f64) < lifetime.as_secs_f64() * window
}

/// How often a signer looks for metadata to re-sign: often enough for the shortest lifetime
/// it signs, at most once a minute.
pub fn refresh_check_interval(settings: &RoleSettings, lifetimes: &[Duration]) -> Duration {
    let shortest = lifetimes
        .iter()
        .min()
        .copied()
        .unwrap_or(Duration::from_secs(60));
    shortest
        .mul_f64(settings.refresh_window / 4.0)
        .clamp(Duration::from_millis(250), Duration::from_secs(60))
}

/// Whether `key` is among the signers of a loaded metadata file. A role whose newest file
/// lacks its signature has a new key (an online key rotation): it re-signs at once.
pub fn signed_by<T>(file: &Signed<T>, key: &SigningKey) -> bool {
    file.signatures
        .iter()
        .any(|s| hex::encode(&s.keyid) == key.key_id())
}

/// The bytes of `version` of `role`'s file, which a job names; `None` when it was superseded
/// and pruned (a newer version is on disk, and a job listing it is on its way). A version
/// newer than any on disk was never written by the role's signer (files are durable before
/// the job naming them is sent): the job is refused.
fn read_named(layout: &Layout, role: &str, version: u64) -> Result<Option<Vec<u8>>> {
    let path = layout.versioned(role, version);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match layout.newest(role)? {
            Some(newest) if newest > version => {
                tracing::warn!(file = %path.display(), newest,
                        "a job names a superseded file that is no longer on disk; left out");
                Ok(None)
            }
            newest => Err(Error::InvalidJob(format!(
                "{role}.json version {version} is not on disk (the newest is {}); only \
                     files its signer wrote may be named",
                newest.map_or_else(|| "none".into(), |v| v.to_string())
            ))),
        },
        Err(e) => Err(Error::io("cannot read metadata", &path)(e)),
    }
}

/// Reads `version` of `role` (`snapshot`, `targets` or `bin-…`), a file a job names, checks
/// it, and returns its header with its meta entry taken from the bytes; `None` when it was
/// superseded and pruned ([`read_named`]). The check: when the job's signer `vouched` for
/// these bytes, their hash must be the one it listed; otherwise `verify` checks the file's
/// own signatures, and the file must be metadata of its role's kind, of that version. A
/// vouched file is parsed only when its header is `needed` (top-level targets' delegations):
/// else its header is what the voucher said, kind and version. Every refusal is the job's
/// fault: an [`Error::InvalidJob`] naming the file.
pub fn read_verified(
    layout: &Layout,
    (role, version): (impl AsRef<str>, u64),
    (vouched, needed): (Option<&MetaEntry>, bool),
    verify: impl FnOnce(&[u8], &std::path::Path) -> Result<Header>,
) -> Result<Option<(Header, MetaEntry)>> {
    let role = role.as_ref();
    let kind: &str = match Role::of_metadata(role) {
        Some(known) => known.kind(),
        None => role,
    };
    let Some(bytes) = read_named(layout, role, version)? else {
        return Ok(None);
    };
    let refused = |e: Error| Error::InvalidJob(format!("{role}.json version {version}: {e}"));
    let entry = MetaEntry::of(version, &bytes);
    let header = match vouched {
        // Its signer vouched for these very bytes in the job it signed.
        Some(vouched) if *vouched == entry && !needed => Header {
            kind: kind.to_string(),
            version: crate::repository::signed::non_zero(version)?,
            delegations: None,
        },
        Some(vouched) if *vouched == entry => {
            #[derive(serde::Deserialize)]
            struct File {
                signed: Header,
            }
            serde_json::from_slice::<File>(&bytes)
                .map(|f| f.signed)
                .map_err(|e| refused(Error::Verify(format!("not metadata: {e}"))))?
        }
        Some(_) => {
            return Err(refused(Error::Verify(
                "its bytes are not the ones the job's signer vouched for".into(),
            )))
        }
        None => verify(&bytes, &layout.versioned(role, version)).map_err(refused)?,
    };
    if header.kind != kind || header.version.get() != version {
        return Err(refused(Error::Verify(format!(
            "the file says it is {} version {}",
            header.kind, header.version
        ))));
    }
    Ok(Some((header, entry)))
}

/// The key among `candidates` that signed `job`: it vouches for the hashes the job lists.
/// `None` for an unsigned job (its files' own signatures are then checked); a signature no
/// candidate made refuses the job, saying whose keys it should be of (`whose`).
pub fn voucher_of<J: crate::jobs::Vouching>(
    job: &J,
    candidates: Vec<Key>,
    whose: &str,
) -> Result<Option<Key>> {
    let Some(signature) = job.signature() else {
        return Ok(None);
    };
    let refused = || Error::InvalidJob(format!("signed by no key of {whose}"));
    let sig = hex::decode(&signature.sig).map_err(|_| refused())?;
    let message = job.signed_bytes();
    candidates
        .into_iter()
        .find(|key| crate::keys::verify(key, &message, &sig))
        .map(Some)
        .ok_or_else(refused)
}

/// Whether `key` alone meets a role's `threshold` among its `keys`: then its signature on a
/// job vouches for the files of that role the job lists.
pub fn vouches(threshold: u64, keys: &[&Key], key: &Key) -> bool {
    threshold == 1 && keys.iter().any(|k| crate::keys::same_key(k, key))
}

/// Loads a file a signer adopts as its state: it must verify against `role`'s keys in the
/// current root and, when its name gives a version (`named`), be that version.
pub fn load_state<T: DeserializeOwned + crate::schema::Metadata>(
    chain: &RootChain,
    path: &std::path::Path,
    role: Role,
    named: Option<u64>,
) -> Result<(Signed<T>, MetaEntry)> {
    let loaded = signed::load_verified::<T>(path, role.name(), |bytes| {
        chain
            .verify_role::<IgnoredAny>(bytes, path, role.role_type())
            .map(drop)
    })?;
    if let Some(named) = named {
        check_version(path, loaded.0.signed.version().get(), named)?;
    }
    Ok(loaded)
}

/// Refuses a file whose `signed` part names another version than its file name: a signed
/// old version copied under a newer name (a rollback) verifies, but is not that version.
pub fn check_version(path: &std::path::Path, claimed: u64, named: u64) -> Result<()> {
    if claimed == named {
        return Ok(());
    }
    Err(Error::Untrusted {
        path: path.into(),
        reason: format!("says it is version {claimed}, not the {named} its name gives"),
    })
}

/// What the newest snapshot on disk lists, `role name -> version` (`targets`, `bin-…`),
/// verified against the root's snapshot keys: the versions a signer's state may not be
/// older than. Empty before the first snapshot.
pub fn listed_versions(layout: &Layout, chain: &RootChain) -> Result<BTreeMap<String, u64>> {
    let Some(newest) = layout.newest(Role::Snapshot)? else {
        return Ok(BTreeMap::new());
    };
    let path = layout.versioned(Role::Snapshot, newest);
    let bytes = std::fs::read(&path).map_err(Error::io("cannot read metadata", &path))?;
    let snapshot: crate::schema::Snapshot = chain.verify_role(&bytes, &path, RoleType::Snapshot)?;
    check_version(&path, snapshot.version.get(), newest)?;
    Ok(snapshot
        .meta
        .iter()
        .filter_map(|(file, m)| Some((role_of_listed(file)?.to_string(), m.version.get())))
        .collect())
}

/// Refuses state older than what the snapshot lists: a newer version was removed, and
/// signing on from the older one would bring back what it changed.
pub fn check_not_older(path: &std::path::Path, version: u64, listed: Option<u64>) -> Result<()> {
    match listed {
        Some(listed) if version < listed => Err(Error::Untrusted {
            path: path.into(),
            reason: format!(
                "is the newest version on disk, but the snapshot lists version {listed}: a \
                 newer version was removed"
            ),
        }),
        _ => Ok(()),
    }
}

/// The newest root on disk that chains to `pin` (see [`RootChain`]).
pub fn latest_root(layout: &Layout, pin: &Pin) -> Result<Root> {
    Ok(RootChain::load(layout, pin)?.current)
}

/// Gives a starting signer's key the id the root lists it under for `role`, so that it signs
/// under that id whichever rule made it; refuses a key the root does not list for the role, so
/// a wrong mount fails at once instead of producing metadata no client accepts.
pub fn label_key(
    root: &Root,
    role: RoleType,
    mut key: SigningKey,
    flag_hint: &str,
) -> Result<SigningKey> {
    match root.id_of(role, key.public()) {
        Some(id) => {
            key.sign_as(id);
            Ok(key)
        }
        None => Err(not_listed(root, role, &key, flag_hint)),
    }
}

/// Fails unless `root` lists `key` for its role under the id the key signs with: once the
/// root drops the key, or renames it, what the signer signs would be refused by clients.
pub fn ensure_key_listed(
    root: &Root,
    role: RoleType,
    key: &SigningKey,
    flag_hint: &str,
) -> Result<()> {
    match root.id_of(role, key.public()).map(hex::encode) {
        Some(id) if id == key.key_id() => Ok(()),
        Some(id) => Err(Error::Key {
            path: flag_hint.into(),
            reason: format!(
                "root version {} lists this {role:?} key under the id {id}, not {}; restart \
                 this signer: it re-signs under the new id",
                root.version,
                key.key_id()
            ),
        }),
        None => Err(not_listed(root, role, key, flag_hint)),
    }
}

fn not_listed(root: &Root, role: RoleType, key: &SigningKey, flag_hint: &str) -> Error {
    Error::Key {
        path: flag_hint.into(),
        reason: format!(
            "key {} is not a {role:?} key in root version {}; pass this role's own key \
                 (tuf-signer init wrote it as KEYS/{}.pem)",
            key.key_id(),
            root.version,
            crate::role::Role::of_type(role)
        ),
    }
}
