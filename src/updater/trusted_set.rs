//! The trusted metadata set: the specification's checks and their order (TUF 1.0 §5.3-§5.6),
//! on bytes, with no I/O. The updater ([`super::Updater`]) fetches and persists; this decides
//! what may be trusted.
//!
//! Invariant: each `update_*` either trusts the new file or leaves the set as it was, except
//! where the specification keeps a file that is not valid as the *final* one (an expired or
//! superseded timestamp or snapshot stays the reference for rollback checks, as python-tuf
//! keeps it), and every check uses the one reference time the set was made with.

use std::collections::HashMap;

use tough::schema::RoleType;

use super::config::Config;
use super::error::{Error, Result};
use super::metadata::check_type;
use crate::role::Role;
use crate::schema::{MetaFile, Root, Snapshot, Targets, Timestamp};
use crate::verify::{root_authority, unverified, verify_raw, Authority};

/// The top-level role names: no delegated role may take one (its file would stand for the
/// top-level role's in the metadata folder).
pub const TOP_LEVEL: [&str; 4] = [
    Role::Root.name(),
    Role::Timestamp.name(),
    Role::Snapshot.name(),
    Role::Targets.name(),
];

/// Whether a delegated role may not be named `name`: a top-level role's name in any case (on
/// a case-insensitive file system, `Timestamp.json` is `timestamp.json`).
pub fn is_top_level_name(name: &str) -> bool {
    TOP_LEVEL.iter().any(|t| t.eq_ignore_ascii_case(name))
}

/// A verified file: what it says, and its bytes (to persist, or to check again).
#[derive(Debug, Clone)]
pub struct Trusted<T> {
    /// The parsed `signed` part.
    pub signed: T,
    /// The file's bytes, exactly as received and verified.
    pub bytes: Vec<u8>,
}

/// What one update trusts so far: the root, then timestamp, snapshot and the targets roles,
/// each admitted only through the checks of TUF 1.0 §5.3-§5.6, in order.
#[derive(Debug)]
pub struct TrustedSet {
    reference_time: jiff::Timestamp,
    /// Longest path pattern and most patterns a delegation may have.
    limits: (usize, usize),
    root: Trusted<Root>,
    timestamp: Option<Trusted<Timestamp>>,
    snapshot: Option<Trusted<Snapshot>>,
    /// Top-level targets under "targets", and each delegated role loaded so far.
    targets: HashMap<String, Trusted<Targets>>,
    /// Top-level targets as an earlier set under the same root trusted it
    /// ([`TrustedSet::carry_top_level_targets`]).
    carried: Option<Trusted<Targets>>,
}

/// Checks the signatures, then the `_type`, then parses the `signed` object.
fn parse_verified<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    kind: &str,
    authority: &Authority<'_>,
) -> Result<T> {
    let signed = verify_raw(bytes, what, authority).map_err(Error::unsigned)?;
    check_type(signed, kind, what)?;
    serde_json::from_slice(signed)
        .map_err(|e| Error::BadMetadata(format!("{what}: not valid {kind} metadata: {e}")))
}

/// The trusted file in `slot`, or the order error `first` (what must be loaded before).
fn loaded<'s, T>(slot: &'s Option<Trusted<T>>, first: &'static str) -> Result<&'s T> {
    slot.as_ref().map(|t| &t.signed).ok_or(Error::Order(first))
}

fn expired(role: &str, expires: jiff::Timestamp) -> Error {
    Error::Expired {
        role: role.to_string(),
        expires: expires.to_string(),
    }
}

impl TrustedSet {
    /// §5.2: trust a root (the local one, or the one a user gives `init`), which must be
    /// signed by a threshold of its own root keys. Its expiry is not checked here: a newer
    /// root may follow (§5.3.10 checks the final one).
    pub fn new(
        root: &[u8],
        reference_time: jiff::Timestamp,
        config: &Config,
    ) -> Result<TrustedSet> {
        let claimed: Root =
            unverified(root, "trusted root.json").map_err(|e| Error::BadMetadata(e.to_string()))?;
        let authority = root_authority(&claimed, RoleType::Root).map_err(Error::unsigned)?;
        verify_raw(root, "trusted root.json", &authority).map_err(Error::unsigned)?;
        Ok(TrustedSet {
            reference_time,
            limits: (config.max_pattern_length, config.max_patterns),
            root: Trusted {
                signed: claimed,
                bytes: root.to_vec(),
            },
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
            carried: None,
        })
    }

    /// The time every expiry is checked against: fixed when the set was made.
    pub fn reference_time(&self) -> jiff::Timestamp {
        self.reference_time
    }

    /// The newest root trusted so far.
    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    /// The timestamp trusted in this update, if one is yet.
    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.timestamp.as_ref().map(|t| &t.signed)
    }

    /// The snapshot trusted in this update, if one is yet.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref().map(|t| &t.signed)
    }

    /// A targets role loaded in this update ("targets" for the top-level one).
    pub fn targets(&self, role: &str) -> Option<&Targets> {
        self.targets.get(role).map(|t| &t.signed)
    }

    /// §5.3.4-§5.3.8: root version N+1, signed by a threshold of version N's root keys and of
    /// its own, and saying it is N+1.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<&Root> {
        if self.timestamp.is_some() {
            return Err(Error::Order("root cannot change once timestamp is loaded"));
        }
        let next = self.root.signed.version.get() + 1;
        let what = format!("{next}.root.json");
        let claimed: Root =
            unverified(bytes, &what).map_err(|e| Error::BadMetadata(e.to_string()))?;
        // §5.3.5: signed by the trusted root's keys ...
        let trusted = root_authority(&self.root.signed, RoleType::Root).map_err(Error::unsigned)?;
        verify_raw(bytes, &what, &trusted).map_err(|e| {
            Error::Unsigned(format!(
                "{e} (checked against the keys of trusted root v{})",
                self.root.signed.version
            ))
        })?;
        // ... and by its own.
        let own = root_authority(&claimed, RoleType::Root).map_err(Error::unsigned)?;
        verify_raw(bytes, &what, &own).map_err(Error::unsigned)?;
        // §5.3.6: its version is N+1.
        if claimed.version.get() != next {
            return Err(Error::BadMetadata(format!(
                "{what} says it is version {}",
                claimed.version
            )));
        }
        self.root = Trusted {
            signed: claimed,
            bytes: bytes.to_vec(),
        };
        Ok(&self.root.signed)
    }

    /// §5.4: a timestamp signed by the root's timestamp keys, no older than the trusted one
    /// and naming no older snapshot; `SameVersion` when it is the trusted version.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<&Timestamp> {
        if self.snapshot.is_some() {
            return Err(Error::Order(
                "timestamp cannot change once snapshot is loaded",
            ));
        }
        // §5.3.10: the final root must not be expired.
        if self.root.signed.expires <= self.reference_time {
            return Err(expired(Role::Root.name(), self.root.signed.expires));
        }
        let new: Timestamp = self.verify_by_root(bytes, Role::Timestamp)?;
        let snapshot_of = |t: &Timestamp| t.meta.get(Role::Snapshot.file()).map(|m| m.version);
        let new_snapshot = snapshot_of(&new)
            .ok_or_else(|| Error::BadMetadata("timestamp names no snapshot.json".into()))?;
        if let Some(old) = &self.timestamp {
            // §5.4.3.1: no older timestamp ...
            if new.version < old.signed.version {
                return Err(Error::Rollback(format!(
                    "timestamp version {} offered, {} already trusted",
                    new.version, old.signed.version
                )));
            }
            if new.version == old.signed.version {
                return Err(Error::SameVersion(Role::Timestamp.name().into()));
            }
            // §5.4.3.2: ... naming no older snapshot.
            if snapshot_of(&old.signed).is_some_and(|v| new_snapshot < v) {
                return Err(Error::Rollback(format!(
                    "timestamp names snapshot version {new_snapshot}, older than the trusted {}",
                    snapshot_of(&old.signed).expect("checked")
                )));
            }
        }
        self.timestamp = Some(Trusted {
            signed: new,
            bytes: bytes.to_vec(),
        });
        // §5.4.4: expiry is checked on the one just trusted, which stays the reference for
        // rollback checks even when it is expired.
        self.check_final_timestamp()?;
        Ok(&self.timestamp.as_ref().expect("set").signed)
    }

    /// `bytes` verified as the file of the top-level `role`, signed by the keys and threshold
    /// the trusted root gives it.
    fn verify_by_root<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
        role: Role,
    ) -> Result<T> {
        let authority =
            root_authority(&self.root.signed, role.role_type()).map_err(Error::unsigned)?;
        parse_verified(bytes, role.name(), role.name(), &authority)
    }

    fn check_final_timestamp(&self) -> Result<&MetaFile> {
        let t = loaded(&self.timestamp, "timestamp first")?;
        if t.expires <= self.reference_time {
            return Err(expired(Role::Timestamp.name(), t.expires));
        }
        Ok(t.meta
            .get(Role::Snapshot.file())
            .expect("checked on update"))
    }

    /// §5.5: a snapshot matching what the timestamp says of it (`trusted` skips the length and
    /// hash check for a local copy that was checked when it was first trusted), signed by the
    /// root's snapshot keys, dropping no file and rolling none back.
    pub fn update_snapshot(&mut self, bytes: &[u8], trusted: bool) -> Result<&Snapshot> {
        if self.targets.contains_key(Role::Targets.name()) {
            return Err(Error::Order(
                "snapshot cannot change once targets is loaded",
            ));
        }
        let meta = self.check_final_timestamp()?.clone();
        if !trusted {
            meta.check(Role::Snapshot.name(), bytes)?;
        }
        let new: Snapshot = self.verify_by_root(bytes, Role::Snapshot)?;
        // §5.5.5: every file the trusted snapshot lists, at no older version.
        if let Some(old) = &self.snapshot {
            for (file, old_meta) in &old.signed.meta {
                match new.meta.get(file) {
                    None => {
                        return Err(Error::Rollback(format!(
                            "snapshot version {} drops {file}",
                            new.version
                        )))
                    }
                    Some(m) if m.version < old_meta.version => {
                        return Err(Error::Rollback(format!(
                            "snapshot version {} takes {file} back from version {} to {}",
                            new.version, old_meta.version, m.version
                        )))
                    }
                    _ => {}
                }
            }
        }
        self.snapshot = Some(Trusted {
            signed: new,
            bytes: bytes.to_vec(),
        });
        self.check_final_snapshot()?;
        Ok(&self.snapshot.as_ref().expect("set").signed)
    }

    /// §5.5.3, §5.5.6: the snapshot is the version the timestamp names, and not expired.
    fn check_final_snapshot(&self) -> Result<()> {
        let s = loaded(&self.snapshot, "snapshot first")?;
        if s.expires <= self.reference_time {
            return Err(expired(Role::Snapshot.name(), s.expires));
        }
        let named = self.check_final_timestamp()?.version;
        if s.version != named {
            return Err(Error::BadMetadata(format!(
                "snapshot version {}, but the timestamp names version {named}",
                s.version
            )));
        }
        Ok(())
    }

    /// §5.6, §5.6.7.2: `role` as `delegator` ("root" for the top-level targets) delegates it:
    /// the version and hashes the snapshot lists, signed by the delegation's keys, unexpired.
    ///
    /// Top-level targets that an earlier set under the same root trusted with these very
    /// bytes is taken as that set parsed it: the same bytes under the same keys verify the
    /// same way. Its version and expiry are checked again here.
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
    ) -> Result<&Targets> {
        self.check_final_snapshot()?;
        let meta = self
            .snapshot
            .as_ref()
            .expect("checked")
            .signed
            .listed(role)
            .cloned()
            .ok_or_else(|| Error::BadMetadata(format!("the snapshot does not list {role}.json")))?;
        meta.check(role, bytes)?;
        let top_level = role == Role::Targets.name() && delegator == Role::Root.name();
        let carried = if top_level {
            self.carried.take().filter(|c| c.bytes == bytes)
        } else {
            None
        };
        let new = match carried {
            Some(same) => same.signed,
            None => {
                let authority = self.authority(role, delegator)?;
                let new: Targets = parse_verified(bytes, role, Role::Targets.name(), &authority)?;
                drop(authority);
                if let Some(d) = &new.delegations {
                    d.check(role, self.limits.0, self.limits.1)?;
                }
                new
            }
        };
        if new.version != meta.version {
            return Err(Error::BadMetadata(format!(
                "{role}: version {}, but the snapshot names version {}",
                new.version, meta.version
            )));
        }
        if new.expires <= self.reference_time {
            return Err(expired(role, new.expires));
        }
        self.targets.insert(
            role.to_string(),
            Trusted {
                signed: new,
                bytes: bytes.to_vec(),
            },
        );
        Ok(&self.targets[role].signed)
    }

    /// Keeps `earlier`'s top-level targets, when `earlier` trusted one under this set's very
    /// root, for [`TrustedSet::update_delegated_targets`] to take if the snapshot still lists
    /// the same bytes: a process that checks the published metadata again and again (`--wait`
    /// on a repository of 16,384 bins, whose top-level targets is 3 MB) does not verify and
    /// parse it again every time.
    pub fn carry_top_level_targets(&mut self, mut earlier: TrustedSet) {
        if earlier.root.bytes == self.root.bytes {
            self.carried = earlier.targets.remove(Role::Targets.name());
        }
    }

    /// A role loaded earlier in this update, checked again against `delegator`'s delegation:
    /// one delegator's trust does not carry over to another that delegates the same name
    /// with other keys.
    pub fn verify_loaded(&self, role: &str, delegator: &str) -> Result<Option<&Targets>> {
        let Some(loaded) = self.targets.get(role) else {
            return Ok(None);
        };
        let authority = self.authority(role, delegator)?;
        verify_raw(&loaded.bytes, role, &authority)
            .map_err(|e| Error::Unsigned(format!("{e} (as {delegator} delegates {role})")))?;
        Ok(Some(&loaded.signed))
    }

    /// The keys and threshold that must sign `role` as `delegator` delegates it.
    fn authority(&self, role: &str, delegator: &str) -> Result<Authority<'_>> {
        if delegator == Role::Root.name() {
            if role != Role::Targets.name() {
                return Err(Error::Order("root delegates only targets"));
            }
            return root_authority(&self.root.signed, RoleType::Targets).map_err(Error::unsigned);
        }
        if is_top_level_name(role) {
            return Err(Error::BadMetadata(format!(
                "{delegator} delegates to a role named {role:?}, a top-level role's name"
            )));
        }
        let delegations = self
            .targets
            .get(delegator)
            .ok_or(Error::Order(
                "a delegator is loaded before its delegated roles",
            ))?
            .signed
            .delegations
            .as_ref()
            .ok_or_else(|| Error::BadMetadata(format!("{delegator} delegates nothing")))?;
        if !delegations.roles.iter().any(|r| r.name == role) {
            return Err(Error::BadMetadata(format!(
                "{delegator} does not delegate to {role}"
            )));
        }
        crate::verify::delegated_authority(delegations, role).map_err(Error::unsigned)
    }
}
