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
use crate::schema::{listed_name, Targets};
use crate::updater::trusted_set::TrustedSet;
use crate::verify::{root_authority, verify};
use crate::{Error, Result};
use std::path::PathBuf;

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
/// (the bytes of `timestamp.json`) and the snapshot it names, as a client takes them. A file
/// that fails is named by its path ([`Error::Published`]).
pub fn trust_published_snapshot(
    set: &mut TrustedSet,
    layout: &Layout,
    timestamp: &[u8],
) -> Result<()> {
    set.update_timestamp(timestamp)
        .map_err(published(layout.timestamp()))?;
    let path = published_file(set, layout, Role::Snapshot.name());
    let bytes = std::fs::read(&path).map_err(Error::io("cannot read", &path))?;
    set.update_snapshot(&bytes, false)
        .map_err(published(path))?;
    Ok(())
}

/// `set` takes the published `role` as `delegator` delegates it ("root" for the top-level
/// targets), at the version its trusted snapshot names. A file that fails is named by its
/// path: the role's, or the snapshot's when it does not list the role.
pub fn trust_published_targets<'s>(
    set: &'s mut TrustedSet,
    layout: &Layout,
    role: &str,
    delegator: &str,
) -> Result<&'s Targets> {
    let path = published_file(set, layout, role);
    let listed = set.snapshot().is_some_and(|s| s.listed(role).is_some());
    if !listed {
        return Err(Error::Published {
            path,
            source: crate::updater::error::Error::BadMetadata(format!(
                "the snapshot does not list {role}.json"
            )),
        });
    }
    let bytes = std::fs::read(&path).map_err(Error::io("cannot read", &path))?;
    set.update_delegated_targets(&bytes, role, delegator)
        .map_err(published(path))
}

/// The published file of `role` (`snapshot`, `targets` or a bin) that `set` would take next:
/// the version its trusted timestamp (for the snapshot) or snapshot lists; when that lists
/// none, the file that should have listed it (`timestamp.json`, or the snapshot).
pub fn published_file(set: &TrustedSet, layout: &Layout, role: &str) -> PathBuf {
    let (lister, meta) = match (role == Role::Snapshot.name(), set.snapshot()) {
        (false, Some(s)) => (
            layout.versioned(Role::Snapshot.name(), s.version.get()),
            Some(&s.meta),
        ),
        _ => (layout.timestamp(), set.timestamp().map(|t| &t.meta)),
    };
    meta.and_then(|m| m.get(&listed_name(role)))
        .map_or(lister, |m| layout.versioned(role, m.version.get()))
}

/// Names the published file at `path` in what a client's check of it found.
fn published(path: PathBuf) -> impl FnOnce(crate::updater::error::Error) -> Error {
    move |source| Error::Published { path, source }
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
