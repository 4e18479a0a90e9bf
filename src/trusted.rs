//! What an agent trusts on the shared volume, and why: the root chain walked from its pinned
//! root ([`crate::pin`]) with the updater's trusted set, so that every agent checks a new root
//! the way a client does, and the published timestamp, snapshot and targets checked against
//! it. Nothing on the volume is trusted for being there.

use serde::de::DeserializeOwned;
use tough::schema::RoleType;

use crate::pin::Pin;
use crate::repository::Layout;
use crate::role::Role;
use crate::schema::Root;
use crate::schema::Targets;
use crate::updater::trusted_set::TrustedSet;
use crate::verify::{fail, root_authority, verify};
use crate::{Error, Result};

/// The roots on disk from the pinned version to the newest, checked as a client checks each
/// new root (the updater's [`TrustedSet`]): a trusted set holding the newest, ready for the
/// timestamp. Trust starts at `pin`, never at the repository's own `1.root.json`. Fails,
/// naming the file, when the repository's copy of the pinned version is not the pinned root
/// or missing (roots replaced, or rolled back), or a newer version does not chain. A pin that
/// moves ([`Pin::forward`]) is moved to the newest root, durably, before this returns.
pub fn trusted_chain(layout: &Layout, pin: &Pin) -> Result<TrustedSet> {
    trusted_chain_at(layout, pin, jiff::Timestamp::now())
}

/// [`trusted_chain`] with `reference_time` for every expiry check of the set. Takes
/// `N.root.json` for N = the pinned version + 1, + 2, … until the next is missing, as a
/// client does (no folder scan: cheap enough to run on every poll of `add-targets --wait`).
pub fn trusted_chain_at(
    layout: &Layout,
    pin: &Pin,
    reference_time: jiff::Timestamp,
) -> Result<TrustedSet> {
    layout.require_initialised()?;
    let pinned = pin.load()?;
    let pinned_version = pinned.root.version.get();
    let mut set = pinned.trusted_set(reference_time)?;
    // The repository's copy of the pinned version must be the very root pinned: otherwise
    // its roots were replaced (a chain of someone else's), or it was rolled back below the pin.
    let own = layout.versioned(Role::Root, pinned_version);
    match std::fs::read(&own) {
        Ok(bytes) if bytes == pinned.bytes => {}
        Ok(_) => {
            return Err(Error::Untrusted {
                path: own,
                reason: format!(
                    "is not the root this agent trusts ({}): the repository's roots were \
                     replaced; nothing is signed or trusted until they are restored",
                    pinned.from.display()
                ),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Untrusted {
                path: own,
                reason: format!(
                    "is missing, but this agent trusts root version {pinned_version} ({}): the \
                     repository was rolled back, or is another repository",
                    pinned.from.display()
                ),
            })
        }
        Err(e) => return Err(Error::io("cannot read metadata", &own)(e)),
    }
    let mut newest: Option<Vec<u8>> = None;
    let mut version = pinned_version;
    while let Some(next) = version.checked_add(1) {
        let path = layout.versioned(Role::Root, next);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(Error::io("cannot read metadata", &path)(e)),
        };
        set.update_root(&bytes).map_err(|e| Error::Untrusted {
            path: path.clone(),
            reason: format!(
                "does not extend the pinned root ({}, version {pinned_version}): {e}",
                pinned.from.display()
            ),
        })?;
        version = next;
        newest = Some(bytes);
    }
    if let Some(bytes) = newest {
        pin.advance(&pinned, &bytes, version)?;
    }
    Ok(set)
}

/// `set` (the root chain on disk, from [`trusted_chain`]) takes the published `timestamp`
/// (the bytes of `timestamp.json`) and the snapshot it names, as a client takes them.
pub fn trust_published_snapshot(
    set: &mut TrustedSet,
    layout: &Layout,
    timestamp: &[u8],
) -> Result<()> {
    let version = set
        .update_timestamp(timestamp)?
        .meta
        .get(Role::Snapshot.file())
        .expect("checked by update_timestamp")
        .version
        .get();
    set.update_snapshot(
        &read_published(layout, Role::Snapshot.name(), version)?,
        false,
    )?;
    Ok(())
}

/// `set` takes the published `role` as `delegator` delegates it ("root" for the top-level
/// targets), at the version its trusted snapshot names.
pub fn trust_published_targets<'s>(
    set: &'s mut TrustedSet,
    layout: &Layout,
    role: &str,
    delegator: &str,
) -> Result<&'s Targets> {
    let version = set
        .snapshot()
        .and_then(|s| s.meta.get(&format!("{role}.json")))
        .ok_or_else(|| fail(format!("the snapshot does not list {role}.json")))?
        .version
        .get();
    let bytes = read_published(layout, role, version)?;
    Ok(set.update_delegated_targets(&bytes, role, delegator)?)
}

fn read_published(layout: &Layout, role: &str, version: u64) -> Result<Vec<u8>> {
    let path = layout.versioned(role, version);
    std::fs::read(&path).map_err(Error::io("cannot read", &path))
}

/// The roots on disk, from the pin, checked as a client checks an update (§5.3.4, §5.3.5):
/// version N+1 is signed by a threshold of version N's root keys and of its own, and says it
/// is N+1. A signer trusts no root that does not chain to its pin (see [`trusted_chain`]).
#[derive(Debug, Clone)]
pub struct RootChain {
    /// The newest root that chains.
    pub current: Root,
    /// Where the chain starts.
    pub pin: Pin,
}

impl RootChain {
    /// Walks the roots on disk from the pinned version up to the newest; fails on the first
    /// that does not chain, naming it.
    pub fn load(layout: &Layout, pin: &Pin) -> Result<RootChain> {
        Ok(RootChain {
            current: trusted_chain(layout, pin)?.root().clone(),
            pin: pin.clone(),
        })
    }

    /// Walks the chain again when a newer root has appeared on disk (one `stat` otherwise).
    pub fn refresh(&mut self, layout: &Layout) -> Result<()> {
        let current = self.current.version.get();
        if layout.newest_root_after(current) > current {
            *self = RootChain::load(layout, &self.pin)?;
        }
        Ok(())
    }

    /// Parses `bytes` (the file at `path`) and checks it is signed by a threshold of
    /// `role`'s keys in the current root, whatever ids the signatures carry (a signer asks
    /// whether a key of the role signed it; see [`Authority::by_key`]). Keys a root has
    /// dropped count for nothing: a file only they signed is never adopted. Returns the
    /// parsed `signed` part.
    pub fn verify_role<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        path: &std::path::Path,
        role: RoleType,
    ) -> Result<T> {
        let what = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        root_authority(&self.current, role)
            .and_then(|a| verify(bytes, &what, &a.by_key()))
            .map_err(|e| Error::Untrusted {
                path: path.into(),
                reason: format!(
                    "not signed by the {role:?} keys of root version {}: {e}",
                    self.current.version
                ),
            })
    }
}
