//! The metadata builders, in one place: each returns the `signed` part of a role's file,
//! ready for [`super::signed::sign`]; writing it is the caller's (through staging). `init`
//! builds every role's first version with them; the roles build their later versions from
//! their state (the bins and the snapshot straight to canonical JSON, for speed).

use std::collections::HashMap;

use tough::schema::RoleKeys;

use super::expiry::expires_in;
use super::signed::{hex_decoded, non_zero, sign, SignedFile};
use super::{Expiries, MetaEntry, SPEC_VERSION};
use crate::bins::HashBins;
use crate::keys::{self, KeyIdRule, SigningKey};
use crate::role::Role;
use crate::schema::{DelegatedRole, Delegations, Root, Snapshot, Targets, Timestamp};
use crate::Result;

/// Root version 1: each top-level role with its one key (named by `rule`), threshold 1.
pub fn root(keys: &HashMap<Role, SigningKey>, expiries: Expiries, rule: KeyIdRule) -> Result<Root> {
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
        let key = &keys[&role];
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
pub fn top_targets(
    bins: HashBins,
    key: &SigningKey,
    version: u64,
    expiries: Expiries,
) -> Result<Targets> {
    let id = hex_decoded(key.key_id())?;
    let mut delegations = Delegations::default();
    delegations.keys.insert(id.clone(), key.public().clone());
    for i in 0..bins.count() {
        delegations.roles.push(DelegatedRole {
            name: bins.name(i),
            keyids: vec![id.clone()],
            threshold: non_zero(1)?,
            terminating: true,
            paths: None,
            path_hash_prefixes: Some(bins.prefixes(i)),
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

/// A bin with no targets yet.
pub fn empty_bin(version: u64, expiries: Expiries) -> Result<Targets> {
    Ok(Targets::new(
        SPEC_VERSION.into(),
        non_zero(version)?,
        expires_in(expiries.bins),
    ))
}

/// A snapshot listing nothing yet; the caller adds each targets file's meta entry.
pub fn snapshot(version: u64, expiries: Expiries) -> Result<Snapshot> {
    Ok(Snapshot::new(
        SPEC_VERSION.into(),
        non_zero(version)?,
        expires_in(expiries.snapshot),
    ))
}

/// A timestamp that points at `snapshot`, signed with `key`.
pub fn timestamp(
    snapshot: &MetaEntry,
    version: u64,
    keys: &[&SigningKey],
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
    sign(&timestamp, version, keys, Role::Timestamp.name())
}
