//! The TUF roles that carry keys, `root` and `targets` (with its delegations), as plain serde
//! types. Everything else (snapshot, timestamp, key, target, path set) is tough's schema.
//!
//! Invariant: a key id is an opaque label. These types read a key map as written and never
//! recompute its ids, so a repository whose ids follow php-tuf's rule (see
//! [`crate::keys::KeyIdRule`]) parses as well as one that follows the specification's.
//! tough's own `Root` and `Delegations` recompute each id and refuse every other rule, which
//! is why these two live here. Whether two ids name one key is checked where keys are
//! trusted ([`crate::verify`]), by comparing the public keys themselves.

use std::collections::HashMap;
use std::num::NonZeroU64;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::schema::{DelegatedRole, RoleKeys, RoleType, Target};
use tough::TargetName;

/// A map from key id to public key, read without recomputing the ids.
pub type KeyMap = HashMap<Decoded<Hex>, Key>;

/// TUF 1.0 §4.3 root.json: the keys of every top-level role, and their thresholds.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "_type", rename = "root")]
pub struct Root {
    pub spec_version: String,
    pub consistent_snapshot: bool,
    pub version: NonZeroU64,
    #[serde(serialize_with = "whole_seconds")]
    pub expires: jiff::Timestamp,
    pub keys: KeyMap,
    pub roles: HashMap<RoleType, RoleKeys>,
    /// Fields we do not know, kept so that the signed bytes can be rebuilt.
    #[serde(flatten, deserialize_with = "extra_without_type")]
    pub _extra: HashMap<String, Value>,
}

/// TUF 1.0 §4.5 targets.json and every delegated role (our hashed bins).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "_type", rename = "targets")]
pub struct Targets {
    pub spec_version: String,
    pub version: NonZeroU64,
    #[serde(serialize_with = "whole_seconds")]
    pub expires: jiff::Timestamp,
    pub targets: HashMap<TargetName, Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    #[serde(flatten, deserialize_with = "extra_without_type")]
    pub _extra: HashMap<String, Value>,
}

/// What a signer needs of a file another signer wrote, which it has verified: its `_type`
/// and version, and for top-level targets its delegations. The rest (a snapshot's meta, a
/// bin's targets) is skipped unparsed: the file's bytes are what is listed.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    #[serde(rename = "_type")]
    pub kind: String,
    pub version: NonZeroU64,
    #[serde(default)]
    pub delegations: Option<Delegations>,
}

/// TUF 1.0 §4.5 DELEGATIONS: the keys of the delegated roles, and the roles in order.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Delegations {
    pub keys: KeyMap,
    pub roles: Vec<DelegatedRole>,
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

impl Targets {
    /// An empty targets role.
    pub fn new(spec_version: String, version: NonZeroU64, expires: jiff::Timestamp) -> Targets {
        Targets {
            spec_version,
            version,
            expires,
            targets: HashMap::new(),
            delegations: None,
            _extra: HashMap::new(),
        }
    }
}

impl tough::schema::Role for Root {
    const TYPE: RoleType = RoleType::Root;
    fn expires(&self) -> jiff::Timestamp {
        self.expires
    }
    fn version(&self) -> NonZeroU64 {
        self.version
    }
    fn filename(&self, _consistent_snapshot: bool) -> String {
        format!("{}.root.json", self.version)
    }
}

impl tough::schema::Role for Targets {
    const TYPE: RoleType = RoleType::Targets;
    fn expires(&self) -> jiff::Timestamp {
        self.expires
    }
    fn version(&self) -> NonZeroU64 {
        self.version
    }
    fn filename(&self, _consistent_snapshot: bool) -> String {
        format!("{}.targets.json", self.version)
    }
}

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
