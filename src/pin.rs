//! The pinned root: where every check of the repository starts.
//!
//! Invariant: nothing read from the repository folder is trusted unless it chains, root by
//! root, from a root this agent holds outside the repository: the `root.json` handed to it
//! out of band (`tuf-signer init` writes one into every key folder; `--root`, `TUF_ROOT`), or
//! a newer root it verified from there and kept in its own state folder (a signer's
//! `--state`). The repository's own `1.root.json` is never a starting point: whoever can write
//! the shared volume can write that, and a chain of their own above it.
//!
//! A pin only moves forward, and only to a root that a threshold of the pinned root's keys
//! and of its own signed (TUF 1.0 §5.3.4, §5.3.5, checked by the updater's trusted set); the
//! moved pin is written durably before anything signed under it.

use std::path::{Path, PathBuf};

use crate::durable::{create_private_dir, folder_of, write_durably};
use crate::schema::Root;
use crate::updater::config::Config;
use crate::updater::trusted_set::TrustedSet;
use crate::{Error, Result};

/// The pin's file name: in a key folder, and in a signer's state folder.
pub const PIN_FILE: &str = "root.json";

/// Where an agent's trust starts, and where it moves forward to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The root handed over out of band; read only.
    pub file: PathBuf,
    /// Where the pin moves forward (a signer's state folder's `root.json`); `None`: it stays
    /// (a command that keeps no state walks the chain from `file` each time).
    pub forward: Option<PathBuf>,
}

/// The pinned root as read: its bytes, what it says, and the file they came from.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// The root's bytes, as read.
    pub bytes: Vec<u8>,
    /// The root, parsed but not yet verified.
    pub root: Root,
    /// The file read: the pin itself, or where it moved forward to.
    pub from: PathBuf,
}

impl Pin {
    /// Trust starts at `file` and stays there.
    pub fn new(file: impl Into<PathBuf>) -> Pin {
        Pin {
            file: file.into(),
            forward: None,
        }
    }

    /// `--root` when given, else the `root.json` beside `key` (the agent's own key folder:
    /// `init` writes both), else a usage error saying what to pass.
    pub fn resolve(explicit: Option<&Path>, key: Option<&Path>, command: &str) -> Result<Pin> {
        match (explicit, key) {
            (Some(file), _) => Ok(Pin::new(file)),
            (None, Some(key)) => Ok(Pin::new(folder_of(key).join(PIN_FILE))),
            (None, None) => Err(Error::Usage(format!(
                "{command} needs the root you trust: --root FILE or TUF_ROOT (tuf-signer init \
                 wrote KEYS/root.json). The repository's own roots are checked against it, \
                 never trusted by themselves"
            ))),
        }
    }

    /// The pin also moves forward, into `state_dir/root.json` (made private if missing).
    pub fn moving_in(mut self, state_dir: &Path) -> Result<Pin> {
        create_private_dir(state_dir, 0o700)?;
        self.forward = Some(state_dir.join(PIN_FILE));
        Ok(self)
    }

    /// The newest root this agent trusts: the out-of-band file, or the root it moved forward
    /// to, whichever is newer (its signatures are checked as the chain starts from it:
    /// [`Pinned::trusted_set`]).
    pub fn load(&self) -> Result<Pinned> {
        let handed = read_root(&self.file).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::Key {
                    path: self.file.clone(),
                    reason: "no pinned root here: copy the repository's trusted root.json \
                             (tuf-signer init wrote it into every key folder) here, or pass \
                             --root FILE (TUF_ROOT)"
                        .into(),
                }
            }
            e => e,
        })?;
        let Some(forward) = &self.forward else {
            return Ok(handed);
        };
        match read_root(forward) {
            Ok(moved) if moved.root.version > handed.root.version => Ok(moved),
            Ok(_) => Ok(handed),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(handed)
            }
            Err(e) => Err(e),
        }
    }

    /// Moves the pin to `newer` (a root verified from the pin): durably, before anything is
    /// signed under it. Nothing to do for a pin that stays, or a root no newer than the pin.
    pub fn advance(&self, pinned: &Pinned, newer: &[u8], version: u64) -> Result<()> {
        let Some(forward) = &self.forward else {
            return Ok(());
        };
        if version <= pinned.root.version.get() {
            return Ok(());
        }
        write_durably(forward, newer)?;
        tracing::info!(pin = %forward.display(), version, "moved the pinned root forward");
        Ok(())
    }
}

/// Reads a root file, parsed but not yet verified: [`Pinned::trusted_set`] checks it.
fn read_root(path: &Path) -> Result<Pinned> {
    let bytes = std::fs::read(path).map_err(Error::io("cannot read the pinned root", path))?;
    let root = crate::verify::unverified(&bytes, "root").map_err(|e| Error::Key {
        path: path.into(),
        reason: format!("not a root: {e}"),
    })?;
    Ok(Pinned {
        root,
        bytes,
        from: path.into(),
    })
}

impl Pinned {
    /// The trusted set starting from this root, with `reference_time` for its expiry checks;
    /// refused unless the root is signed by a threshold of its own root keys.
    pub fn trusted_set(&self, reference_time: jiff::Timestamp) -> Result<TrustedSet> {
        TrustedSet::new(&self.bytes, reference_time, &Config::default()).map_err(|e| Error::Key {
            path: self.from.clone(),
            reason: format!("not a root signed by its own root keys: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::init::{init, InitOptions};
    use crate::ops::root::{Ceremony, Changes};
    use crate::repository::Layout;
    use crate::trusted::trusted_chain;

    /// A pin moves forward, durably, only along the chain; the repository may then not go
    /// back below it, and a root that does not chain from it is refused, naming the file.
    #[test]
    fn a_pin_moves_forward_along_the_chain_and_never_back() {
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions::new(dir.path().join("repo"), dir.path().join("keys"), 1);
        init(&opts, |_, _| {}).unwrap();
        let layout = Layout::new(&opts.repo);
        let handed = dir.path().join("handed-root.json");
        std::fs::copy(opts.keys.join(PIN_FILE), &handed).unwrap();
        let state = dir.path().join("state");
        let pin = Pin::new(&handed).moving_in(&state).unwrap();
        assert_eq!(
            trusted_chain(&layout, &pin).unwrap().root().version.get(),
            1
        );
        assert!(!state.join(PIN_FILE).exists(), "nothing newer to move to");

        // The keyholders publish root v2: the pin follows it, into the state folder.
        let ceremony = Ceremony::new(
            layout.clone(),
            &opts.keys.join(PIN_FILE),
            &dir.path().join("draft.json"),
        );
        ceremony
            .start(&Changes {
                expires: Some(std::time::Duration::from_secs(86400)),
                ..Default::default()
            })
            .unwrap();
        ceremony.sign(&opts.keys.join("root.pem")).unwrap();
        ceremony.publish(false).unwrap();
        assert_eq!(
            trusted_chain(&layout, &pin).unwrap().root().version.get(),
            2
        );
        assert_eq!(pin.load().unwrap().root.version.get(), 2);
        assert_eq!(
            std::fs::read(state.join(PIN_FILE)).unwrap(),
            std::fs::read(layout.versioned("root", 2)).unwrap()
        );

        // The repository's v2 removed (rolled back): refused, though v1 is still there.
        let v2 = layout.versioned("root", 2);
        let bytes = std::fs::read(&v2).unwrap();
        std::fs::remove_file(&v2).unwrap();
        let e = trusted_chain(&layout, &pin).unwrap_err().to_string();
        assert!(
            e.contains("2.root.json") && e.contains("rolled back"),
            "{e}"
        );
        // Put back with a byte changed: not the root this agent trusts.
        let mut changed = bytes.clone();
        let at = changed.len() - 2;
        changed.insert(at, b' ');
        std::fs::write(&v2, &changed).unwrap();
        let e = trusted_chain(&layout, &pin).unwrap_err().to_string();
        assert!(e.contains("is not the root this agent trusts"), "{e}");
        std::fs::write(&v2, &bytes).unwrap();
        // A v3 signed by nobody the pin trusts: refused, naming it.
        std::fs::write(layout.versioned("root", 3), &bytes).unwrap();
        let e = trusted_chain(&layout, &pin).unwrap_err().to_string();
        assert!(
            e.contains("3.root.json") && e.contains("does not extend the pinned root"),
            "{e}"
        );
    }
}
