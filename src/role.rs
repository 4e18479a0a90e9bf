//! The roles, named once. Every table of roles (init's keys, the root's role list, the CLI's
//! `--role` values) and every role name in a file name, a log line or a lock goes through
//! [`Role`]: a role's name, its metadata file and the role whose key signs it. Where its key
//! file is, is init's to say (`ops::init::key_path`); which agent runs its signer,
//! `nix/agents.json`'s; the queue its signer consumes, the broker's (`broker::Queue::of`):
//! roles know nothing of deployment or of how jobs travel.
//!
//! The hashed bins are one role here, [`Role::Bins`]: each bin is its own delegated metadata
//! file (`N.bin-000-001.json`, named by [`crate::bins::HashBins`]), all signed by the
//! targets key, by the same signer, from the same queue.

use std::fmt;
use std::str::FromStr;

use tough::schema::RoleType;

use crate::bins::HashBins;
use crate::{Error, Result};

/// The packaging pipeline's key, `KEYS/submitter.pem`, with which it signs every targets job
/// (see [`crate::submission`]): an agent's key like a role's, though no metadata lists it.
pub const SUBMITTER: &str = "submitter";

/// A TUF role of the repository: the four top-level roles and the hashed bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The root: the keys and thresholds of the top-level roles; its key is offline.
    Root,
    /// The top-level targets: signs no targets itself, delegates every one to the bins.
    Targets,
    /// The snapshot: the version, length and hashes of every targets file.
    Snapshot,
    /// The timestamp: the snapshot's version, length and hashes, re-signed after every snapshot.
    Timestamp,
    /// The hashed-bin roles the top-level targets delegates to.
    Bins,
}

impl Role {
    /// The top-level roles, in the order the root lists them.
    pub const TOP_LEVEL: [Role; 4] = [Role::Root, Role::Targets, Role::Snapshot, Role::Timestamp];
    /// The roles whose keys are online, each held by its own signer.
    pub const ONLINE: [Role; 3] = [Role::Targets, Role::Snapshot, Role::Timestamp];

    /// `root`, `targets`, `snapshot`, `timestamp`, `bins`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
            Role::Bins => "bins",
        }
    }

    /// The role's metadata file as snapshot and timestamp list it: `targets.json`, as
    /// [`crate::schema::listed_name`] makes it (a test holds the two together). A bin's file
    /// is named by the bin, `bin-000-001.json`; this gives the pattern.
    pub const fn file(self) -> &'static str {
        match self {
            Role::Root => "root.json",
            Role::Targets => "targets.json",
            Role::Snapshot => "snapshot.json",
            Role::Timestamp => "timestamp.json",
            Role::Bins => "bin-*.json",
        }
    }

    /// The `_type` its metadata carries: a bin is `targets` metadata.
    pub const fn kind(self) -> &'static str {
        match self {
            Role::Bins => "targets",
            role => role.name(),
        }
    }

    /// The role whose key signs this one's metadata: the bins are signed with the targets key.
    pub const fn key_role(self) -> Role {
        match self {
            Role::Bins => Role::Targets,
            role => role,
        }
    }

    /// The role as the root (and tough) types it.
    pub const fn role_type(self) -> RoleType {
        match self {
            Role::Root => RoleType::Root,
            Role::Targets => RoleType::Targets,
            Role::Snapshot => RoleType::Snapshot,
            Role::Timestamp => RoleType::Timestamp,
            Role::Bins => RoleType::DelegatedTargets,
        }
    }

    /// The role of a root's (or tough's) role type; a delegated role is one of the bins.
    pub const fn of_type(role: RoleType) -> Role {
        match role {
            RoleType::Root => Role::Root,
            RoleType::Targets => Role::Targets,
            RoleType::Snapshot => Role::Snapshot,
            RoleType::Timestamp => Role::Timestamp,
            RoleType::DelegatedTargets => Role::Bins,
        }
    }

    /// The role a metadata name (`snapshot`, `bin-000-001`) belongs to.
    pub fn of_metadata(name: &str) -> Option<Role> {
        match name {
            "bins" => None,
            _ if HashBins::is_bin_name(name) => Some(Role::Bins),
            _ => Self::TOP_LEVEL.into_iter().find(|r| r.name() == name),
        }
    }

    /// A top-level role by name, or a usage error listing them.
    pub fn top_level(name: &str) -> Result<Role> {
        Self::find(&Self::TOP_LEVEL, name, "a top-level role")
    }

    /// An online role by name (`targets`, `snapshot`, `timestamp`), or a usage error.
    pub fn online(name: &str) -> Result<Role> {
        Self::find(&Self::ONLINE, name, "an online role")
    }

    fn find(among: &[Role], name: &str, what: &str) -> Result<Role> {
        among
            .iter()
            .copied()
            .find(|r| r.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = among.iter().map(|r| r.name()).collect();
                Error::Usage(format!("{name}: not {what} ({})", names.join(", ")))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl AsRef<str> for Role {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

impl FromStr for Role {
    type Err = Error;

    /// Any role by its name, `bins` included.
    fn from_str(name: &str) -> Result<Role> {
        let all = [Self::TOP_LEVEL.as_slice(), &[Role::Bins]].concat();
        Self::find(&all, name, "a role")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name_and_type() {
        for role in [
            Role::Root,
            Role::Targets,
            Role::Snapshot,
            Role::Timestamp,
            Role::Bins,
        ] {
            assert_eq!(role.name().parse::<Role>().unwrap(), role);
            assert_eq!(Role::of_type(role.role_type()), role);
        }
        assert_eq!(Role::of_metadata("bin-000-001"), Some(Role::Bins));
        assert_eq!(Role::of_metadata("snapshot"), Some(Role::Snapshot));
        assert_eq!(Role::of_metadata("bins"), None);
        assert!(Role::top_level("bins").is_err());
        assert!(Role::online("root").is_err());
    }

    #[test]
    fn each_top_level_file_is_listed_under_its_role_name() {
        for role in Role::TOP_LEVEL {
            assert_eq!(role.file(), crate::schema::listed_name(role.name()));
            assert_eq!(
                crate::schema::role_of_listed(role.file()),
                Some(role.name())
            );
        }
        assert_eq!(crate::schema::role_of_listed(".json"), None);
    }

    #[test]
    fn the_bins_share_the_targets_key_and_queue() {
        assert_eq!(Role::Bins.key_role(), Role::Targets);
        use crate::broker::Queue;
        assert_eq!(Queue::of(Role::Bins), Some(Queue::Targets));
        assert_eq!(Queue::of(Role::Root), None);
        assert_eq!(Queue::of(Role::Timestamp), Some(Queue::Timestamp));
    }
}
