//! Who owns what in a deployment where each agent runs as its own user (`init --key-owner`,
//! `--key-folders`, `--repo-group`): each signer's key goes to that signer's user, and the
//! repository's folders to a group every agent is in. Nothing here touches metadata.

use std::path::Path;

use crate::role::Role;
use crate::{Error, Result};

/// The ownership `init` gives what it writes.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// A key's owner, by key name (`targets`, …, `submitter`): each signer runs as its own
    /// user and reads only its own key.
    pub key_owners: Vec<(String, u32)>,
    /// One folder (so one volume) per key: `KEYS/<role>/<role>.pem`.
    pub key_folders: bool,
    /// The group every agent's user is in: the repository's folders become group-writable
    /// (setgid) for it.
    pub repo_group: Option<u32>,
}

impl Deployment {
    /// The keys folder's mode: private (0700), or, when keys go to other users, 0711 so each
    /// reaches its own folder inside without listing the others.
    pub fn keys_mode(&self) -> u32 {
        if self.key_owners.is_empty() {
            0o700
        } else {
            0o711
        }
    }

    fn owner_of(&self, key: &str) -> Option<u32> {
        self.key_owners
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, uid)| *uid)
    }

    /// Gives `path`, key `key`'s file (and with key folders, its folder), to the key's owner.
    pub fn give_key(&self, key: &str, path: &Path) -> Result<()> {
        if let Some(uid) = self.owner_of(key) {
            give(path, uid)?;
            if self.key_folders {
                give(path.parent().expect("has a folder"), uid)?;
            }
        }
        Ok(())
    }

    /// Gives a file only the targets signer writes (its submission ledger) to its owner.
    pub fn give_to_targets_signer(&self, path: &Path) -> Result<()> {
        match self.owner_of(Role::Targets.name()) {
            Some(uid) => give(path, uid),
            None => Ok(()),
        }
    }

    /// Each metadata file `init` wrote to the user of the signer that writes its later
    /// versions (bins and top-level targets to the targets signer's, and so on; roots stay
    /// root's): in the sticky shared folders, only a file's owner may replace or remove it.
    pub fn give_metadata(&self, layout: &super::Layout) -> Result<()> {
        if self.key_owners.is_empty() {
            return Ok(());
        }
        let dir = layout.metadata_dir();
        for entry in std::fs::read_dir(&dir).map_err(Error::io("cannot list", &dir))? {
            let path = entry.map_err(Error::io("cannot list", &dir))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            // A gzip copy goes to its version's owner.
            let name = super::layout::version_of_copy(name).unwrap_or(name);
            let role = match super::layout::parse_versioned(name) {
                Some((_, role)) => Role::of_metadata(role),
                None => crate::schema::role_of_listed(name).and_then(Role::of_metadata),
            };
            let owner = role
                .filter(|r| *r != Role::Root)
                .and_then(|r| self.owner_of(r.key_role().name()));
            if let Some(uid) = owner {
                give(&path, uid)?;
            }
        }
        Ok(())
    }

    /// The repository's folders to their writers. With `--key-owner`s, each folder has one
    /// writer, or only the signers (the `--repo-group`, which the packaging pipeline is not
    /// in) with the sticky bit:
    ///
    /// | folder | owner | mode | written by |
    /// | --- | --- | --- | --- |
    /// | `REPO/`, `control/`, `control/staging/` | root | 0755 | `init` |
    /// | `metadata/` | root, the signers' group | 3775 | each signer its own files |
    /// | `targets/`, `control/pause/` | the packaging pipeline | 0755 | it |
    /// | `control/ROLE/` | ROLE's signer | 0755 | it (lock; ledger, tombstones, receipts) |
    /// | `control/staging/UID/` | UID | 0755 | that agent's processes |
    ///
    /// Without key owners, every folder goes to the `--repo-group`, if any, group-writable,
    /// setgid and sticky (see [`share_with_group`]): one user, or agents that trust each other.
    pub fn lay_out(&self, layout: &super::Layout) -> Result<()> {
        if self.key_owners.is_empty() {
            return match self.repo_group {
                Some(gid) => share_with_group(&layout.dir, gid),
                None => Ok(()),
            };
        }
        let set = |path: &Path, uid: Option<u32>, mode: u32| -> Result<()> {
            use std::os::unix::fs::PermissionsExt;
            std::os::unix::fs::chown(path, uid, self.repo_group).map_err(Error::io(
                "cannot change owner (init must run as root)",
                path,
            ))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(Error::io("cannot set the mode of", path))
        };
        let staging = layout.control_dir().join("staging");
        crate::durable::create_dir(&staging)?;
        for dir in [&layout.dir, &layout.control_dir(), &staging] {
            set(dir, Some(0), 0o755)?;
        }
        set(&layout.metadata_dir(), Some(0), 0o3775)?;
        let pipeline = self.owner_of(crate::role::SUBMITTER);
        set(&layout.targets_dir(), pipeline, 0o755)?;
        set(&layout.pause_dir(), pipeline, 0o755)?;
        for role in Role::ONLINE {
            set(&layout.role_dir(role), self.owner_of(role.name()), 0o755)?;
        }
        let mut uids: Vec<u32> = self.key_owners.iter().map(|(_, uid)| *uid).collect();
        uids.sort_unstable();
        uids.dedup();
        for uid in uids {
            let own = staging.join(uid.to_string());
            crate::durable::create_dir(&own)?;
            set(&own, Some(uid), 0o755)?;
        }
        // What init staged its own writes in (root's) stays root's.
        Ok(())
    }
}

/// `chown uid:uid path`.
pub fn give(path: &Path, uid: u32) -> Result<()> {
    #[cfg(unix)]
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).map_err(Error::io(
        "cannot change owner (init must run as root to give keys to other users)",
        path,
    ))?;
    #[cfg(not(unix))]
    let _ = (path, uid);
    Ok(())
}

/// Every folder under `root` to group `gid`, group-writable, setgid and sticky, so that each
/// signer can add its files and no agent can rename or remove another's (a file, or a
/// staging folder swapped for a symlink); files stay group-readable.
pub fn share_with_group(root: &Path, gid: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            std::os::unix::fs::chown(&dir, None, Some(gid)).map_err(Error::io(
                "cannot change group (init must run as root)",
                &dir,
            ))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o3775))
                .map_err(Error::io("cannot make group-writable", &dir))?;
            for entry in std::fs::read_dir(&dir).map_err(Error::io("cannot list", &dir))? {
                let path = entry.map_err(Error::io("cannot list", &dir))?.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    std::os::unix::fs::chown(&path, None, Some(gid))
                        .map_err(Error::io("cannot change group", &path))?;
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (root, gid);
    Ok(())
}
