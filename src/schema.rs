//! The metadata model: one plain serde type per file kind (`root`, `targets` and every
//! delegated role, `snapshot`, `timestamp`), one type for a file a snapshot or timestamp lists
//! ([`MetaFile`]), one for a signed target ([`TargetFile`]) and one delegation type
//! ([`Delegations`]). The signers, `validate`, the client and the updater all read and write
//! these; only the leaves (a public key, a signature, a role's key list) are tough's.
//!
//! Invariant: parsing is lenient where the specification is (any hash algorithms, either
//! `paths` or `path_hash_prefixes`), and checking is the reader's: the updater's rules are in
//! [`crate::updater::metadata`], the signers' in the roles. Nothing here does I/O.
//!
//! Invariant: a key id is an opaque label. These types read a key map as written and never
//! recompute its ids, so a repository whose ids follow php-tuf's rule (see
//! [`crate::keys::KeyIdRule`]) parses as well as one that follows the specification's.
//! tough's own `Root` and `Delegations` recompute each id and refuse every other rule, which
//! is why these two live here. Whether two ids name one key is checked where keys are
//! trusted ([`crate::verify`]), by comparing the public keys themselves.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::schema::{RoleKeys, RoleType};

/// A map from key id to public key, read without recomputing the ids.
pub type KeyMap = HashMap<Decoded<Hex>, Key>;

/// TUF 1.0 §4.3 root.json: the keys of every top-level role, and their thresholds.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "_type", rename = "root")]
pub struct Root {
    /// The TUF specification version the file follows, e.g. `1.0.0`.
    pub spec_version: String,
    /// Whether metadata and targets are published under version- and hash-prefixed names
    /// (`3.targets.json`); our repositories always set it.
    pub consistent_snapshot: bool,
    /// This root's version: the chain's next root is this plus one.
    pub version: NonZeroU64,
    /// When clients stop trusting this root.
    #[serde(serialize_with = "whole_seconds")]
    pub expires: jiff::Timestamp,
    /// The public keys of every top-level role, by the id the root gives them.
    pub keys: KeyMap,
    /// Each top-level role's key ids and threshold.
    pub roles: HashMap<RoleType, RoleKeys>,
    /// Fields we do not know, kept so that the signed bytes can be rebuilt.
    #[serde(flatten, deserialize_with = "extra_without_type")]
    pub _extra: HashMap<String, Value>,
}

/// TUF 1.0 §4.5 targets.json and every delegated role (our hashed bins). Unknown fields are
/// read past: a signer re-signs only the targets files it wrote itself.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "_type", rename = "targets")]
pub struct Targets {
    /// The TUF specification version the file follows, e.g. `1.0.0`: always written by our
    /// signers; our updater has never required it of a file it reads, and still does not.
    #[serde(default)]
    pub spec_version: String,
    /// The role's version, one higher each time it is signed anew.
    pub version: NonZeroU64,
    /// When clients stop trusting this version.
    #[serde(serialize_with = "whole_seconds")]
    pub expires: jiff::Timestamp,
    /// The targets this role signs for, by target path.
    pub targets: BTreeMap<String, TargetFile>,
    /// The roles this one delegates to (top-level targets: the hashed bins); `None` in a bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
}

/// TUF 1.0 §4.4 snapshot.json: the version (and here always the length and hashes) of
/// top-level targets and of every delegated role.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "_type", rename = "snapshot")]
pub struct Snapshot {
    /// The TUF specification version the file follows, e.g. `1.0.0`: always written by our
    /// signers; our updater has never required it of a file it reads, and still does not.
    #[serde(default)]
    pub spec_version: String,
    /// The snapshot's version, one higher each time it is signed anew.
    pub version: NonZeroU64,
    /// When clients stop trusting this version.
    #[serde(serialize_with = "whole_seconds")]
    pub expires: jiff::Timestamp,
    /// Every targets file (top-level and each bin) by file name (`targets.json`), with its
    /// version, length and hashes.
    pub meta: BTreeMap<String, MetaFile>,
}

/// TUF 1.0 §4.6 timestamp.json: the snapshot's version, length and hashes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "_type", rename = "timestamp")]
pub struct Timestamp {
    /// The TUF specification version the file follows, e.g. `1.0.0`: always written by our
    /// signers; our updater has never required it of a file it reads, and still does not.
    #[serde(default)]
    pub spec_version: String,
    /// The timestamp's version, one higher each time it is signed anew.
    pub version: NonZeroU64,
    /// When clients stop trusting this version.
    #[serde(serialize_with = "whole_seconds")]
    pub expires: jiff::Timestamp,
    /// The one entry `snapshot.json`: the snapshot's version, length and hashes.
    pub meta: BTreeMap<String, MetaFile>,
}

/// TUF 1.0 §4.4 METAFILES: a metadata file as snapshot or timestamp lists it. The
/// specification makes length and hashes optional; our signers always write both (php-tuf
/// caps a download it has no length for at 100 kB).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MetaFile {
    /// The listed file's version.
    pub version: NonZeroU64,
    /// The listed file's length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Algorithm -> hex digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

/// TUF 1.0 §4.5 TARGETS: a target's signed description, its length and hashes (algorithm ->
/// hex digest; our signers write sha256 and sha512).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TargetFile {
    /// The target's length in bytes.
    pub length: u64,
    /// Algorithm -> hex digest of the target's bytes.
    pub hashes: BTreeMap<String, String>,
}

/// What a signer needs of a file another signer wrote, which it has verified: its `_type`
/// and version, and for top-level targets its delegations. The rest (a snapshot's meta, a
/// bin's targets) is skipped unparsed: the file's bytes are what is listed.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    /// The file's `_type`: `root`, `targets`, `snapshot` or `timestamp`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// The file's version.
    pub version: NonZeroU64,
    /// Top-level targets' delegations (the bins); `None` in every other file.
    #[serde(default)]
    pub delegations: Option<Delegations>,
}

/// TUF 1.0 §4.5 DELEGATIONS: the keys of the delegated roles, and the roles in order.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Delegations {
    /// The public keys of the delegated roles, by the id the delegator gives them.
    pub keys: KeyMap,
    /// The delegated roles, in the order a client searches them.
    pub roles: Vec<DelegatedRole>,
}

/// One delegated role. Path patterns and hash prefixes are kept as strings: parsing compiles
/// nothing a hostile repository could make costly, and exactly one of the two must be given
/// (checked by the reader: [`crate::updater::metadata`], and our signers' own expectations).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DelegatedRole {
    /// The role's name, its file's name without `.json` (a bin: `bin-000-001`, see
    /// [`crate::bins`]).
    pub name: String,
    /// The ids (in [`Delegations::keys`]) of the keys that may sign this role.
    pub keyids: Vec<Decoded<Hex>>,
    /// How many of those keys must sign.
    pub threshold: NonZeroU64,
    /// Whether a client that finds no target here stops searching the later delegations.
    #[serde(default)]
    pub terminating: bool,
    /// The target paths this role is trusted for, as shell-style patterns (`*` never crosses a
    /// `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// The hex prefixes of the SHA-256 of a target path this role is trusted for (our bins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
}

impl Root {
    /// The id under which this root lists `key` for `role`, if it does.
    pub fn id_of(&self, role: RoleType, key: &Key) -> Option<&Decoded<Hex>> {
        let listed = &self.roles.get(&role)?.keyids;
        listed.iter().find(|id| {
            self.keys
                .get(id)
                .is_some_and(|k| crate::keys::same_key(k, key))
        })
    }

    /// How many of its keys must sign `role` (0 for a role the root does not list).
    pub fn threshold_of(&self, role: RoleType) -> u64 {
        self.roles.get(&role).map_or(0, |r| r.threshold.get())
    }

    /// The keys `role` names (ids it lists with no key are left out).
    pub fn keys_of(&self, role: RoleType) -> Vec<&Key> {
        self.roles
            .get(&role)
            .map(|r| r.keyids.iter().filter_map(|id| self.keys.get(id)).collect())
            .unwrap_or_default()
    }
}

/// The name under which snapshot and timestamp list a role's file (TUF 1.0 §4.4): the role's
/// name and `.json` (`targets.json`, `bin-000-001.json`). Names are joined here, and taken
/// apart by [`role_of_listed`], nowhere else.
pub fn listed_name(role: &str) -> String {
    format!("{role}.json")
}

/// The role whose file a snapshot or timestamp lists under `name`: `bin-000-001.json` gives
/// `bin-000-001`; `None` for a name that is no metadata file's.
pub fn role_of_listed(name: &str) -> Option<&str> {
    name.strip_suffix(".json").filter(|role| !role.is_empty())
}

impl Targets {
    /// An empty targets role.
    pub fn new(spec_version: String, version: NonZeroU64, expires: jiff::Timestamp) -> Targets {
        Targets {
            spec_version,
            version,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
        }
    }
}

impl Snapshot {
    /// A snapshot listing nothing yet.
    pub fn new(spec_version: String, version: NonZeroU64, expires: jiff::Timestamp) -> Snapshot {
        Snapshot {
            spec_version,
            version,
            expires,
            meta: BTreeMap::new(),
        }
    }
}

impl Snapshot {
    /// What this snapshot lists of `role`'s file.
    pub fn listed(&self, role: &str) -> Option<&MetaFile> {
        self.meta.get(&listed_name(role))
    }
}

impl Timestamp {
    /// A timestamp listing nothing yet.
    pub fn new(spec_version: String, version: NonZeroU64, expires: jiff::Timestamp) -> Timestamp {
        Timestamp {
            spec_version,
            version,
            expires,
            meta: BTreeMap::new(),
        }
    }
}

/// What every file kind has, for code that reads any of them: its version and expiry.
pub trait Metadata {
    /// The file's version.
    fn version(&self) -> NonZeroU64;
    /// When clients stop trusting the file.
    fn expires(&self) -> jiff::Timestamp;
}

macro_rules! metadata {
    ($($kind:ident),*) => {$(
        impl Metadata for $kind {
            fn version(&self) -> NonZeroU64 {
                self.version
            }
            fn expires(&self) -> jiff::Timestamp {
                self.expires
            }
        }
    )*};
}

metadata!(Root, Targets, Snapshot, Timestamp);

/// An expiry as the specification writes it, in whole seconds: `2030-01-01T00:00:00Z`.
pub fn expiry_string(t: jiff::Timestamp) -> String {
    format!(
        "{:.0}",
        jiff::Timestamp::from_second(t.as_second()).expect("in range")
    )
}

/// Serialises an expiry: whole seconds, as we always write it; a fraction in a file someone
/// else signed is kept. Signatures are checked over the bytes as received, never over a
/// re-encoding.
fn whole_seconds<S: Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    if t.subsec_nanosecond() == 0 {
        s.serialize_str(&expiry_string(*t))
    } else {
        s.collect_str(t)
    }
}

fn extra_without_type<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<String, Value>, D::Error> {
    let mut map = HashMap::<String, Value>::deserialize(d)?;
    map.remove("_type");
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_id_is_read_as_written() {
        let key = crate::keys::public_key(&[7; 32]);
        let json = serde_json::json!({
            "_type": "root", "spec_version": "1.0.0", "consistent_snapshot": true,
            "version": 1, "expires": "2030-01-01T00:00:00Z",
            "keys": {"abcd": key},
            "roles": {"root": {"keyids": ["abcd"], "threshold": 1}}
        });
        let root: Root = serde_json::from_value(json.clone()).unwrap();
        assert!(root.keys.contains_key(&Decoded::from(vec![0xab, 0xcd])));
        assert_eq!(serde_json::to_value(&root).unwrap(), json);
    }
}
