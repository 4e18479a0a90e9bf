//! What a role is to the worker: a [`Stage`] that checks and applies batches of its jobs and
//! names the job it hands the next role, on a [`Core`] every role shares (its settings, its
//! key as the root names it, whether that key is new, and the pruner of its superseded
//! versions). A role writes only its own files, and only through `apply`.

use std::time::Duration;

use serde::Serialize;
use tough::schema::Signed;

use super::{ensure_key_listed, label_key, latest_root, RoleSettings};
use crate::high_water::HighWater;
use crate::jobs::ExpiryCheck;
use crate::keys::{RoleKeys, SigningKey};
use crate::repository::control::Control;
use crate::repository::prune::{Named, Pruner};
use crate::repository::Layout;
use crate::role::Role;
use crate::trusted::RootChain;
use crate::{Error, Result};

/// A role as the worker drives it.
pub trait Stage: Send + 'static {
    /// The role this stage signs (the worker consumes its queue).
    const ROLE: Role;
    /// Whether `tuf-client pause` stops this role taking jobs.
    const PAUSABLE: bool = false;
    /// What its queue carries.
    type Job: ExpiryCheck;
    /// What it hands the next role ([`Last`] for the last one).
    type Next: Serialize;

    /// What every online role holds: settings, keys, pruner, high-water marks.
    fn core(&self) -> &Core;
    /// The same, to change.
    fn core_mut(&mut self) -> &mut Core;

    /// Reads a job off the queue; an [`Error::InvalidJob`] sends it to the dead letters.
    fn decode(&self, body: &[u8]) -> Result<Self::Job> {
        serde_json::from_slice(body)
            .map_err(|e| Error::InvalidJob(format!("not a {} job: {e}", Self::ROLE)))
    }
    /// Refuses a job that must not be applied (the reason goes with it to the dead letters),
    /// or returns what to apply: a job's contents are hints, and a role replaces what it can
    /// check (the version, length and hashes of a file it names) with what it read and
    /// verified.
    fn check(&mut self, job: Self::Job) -> Result<Self::Job>;
    /// A job of this role (the bytes `body`) went to the dead-letter queue for `reason`, a
    /// fault of the job. The targets signer says so in its receipts, so that the submitter's
    /// `--wait` stops at once with the reason; the other roles have no one waiting.
    fn dead_lettered(&self, _body: &[u8], _reason: &str) {}
    /// Applies a batch durably: every file it names is written (temp file, fsync, rename)
    /// before this returns.
    fn apply(&mut self, jobs: &[Self::Job]) -> Result<Applied<Self::Next>>;
    /// The job that re-announces this role's current files downstream, sent at start and
    /// after a reload: the replica that wrote them may have died before handing them on.
    /// Fails when the key cannot sign it (the job is signed).
    fn resync(&self) -> Result<Option<Self::Next>>;
    /// Whether another replica has written newer files since this state was loaded.
    fn is_stale(&self) -> Result<bool>;
    /// This role's current files for the metrics: `(what, version, expires)`, e.g.
    /// `("timestamp", 12, …)`; the targets signer also gives `bins` (the newest bin's version,
    /// the first bin to expire).
    fn published(&self) -> Vec<(&'static str, u64, jiff::Timestamp)>;

    /// The lifetimes of the metadata this role signs, which set how often it looks for
    /// metadata about to expire: its own file's, unless it signs several kinds.
    fn lifetimes(&self) -> Vec<Duration> {
        vec![self.core().settings.expiries.of(Self::ROLE)]
    }

    /// The repository this role signs.
    fn layout(&self) -> &Layout {
        &self.core().settings.layout
    }
    /// This role's signing key, labelled with the id the root gives it.
    fn key(&self) -> &SigningKey {
        &self.core().key
    }
    /// How often to look for metadata about to expire.
    fn refresh_interval(&self) -> Duration {
        super::refresh_check_interval(&self.core().settings, &self.lifetimes())
    }
    /// The lock and the pause switch.
    fn control(&self) -> Control {
        Control::new(self.layout())
    }
    /// Removes superseded versions retention no longer keeps and `named` does not protect
    /// (see [`crate::repository::prune`]); returns how many files went.
    fn prune(&mut self, named: &Named) -> usize {
        self.core_mut().pruner.sweep(named)
    }
    /// The disk is full: removes every superseded version no client can still need.
    fn free_space(&mut self, named: &Named) -> usize {
        self.core_mut().pruner.free_space(named)
    }
    /// Fails once the newest root no longer lists this signer's key for its role (a rotation
    /// finished without restarting this signer): what it signs would be refused by clients.
    fn key_still_listed(&self) -> Result<()> {
        ensure_key_listed(
            &latest_root(self.layout(), &self.core().settings.pin)?,
            Self::ROLE.role_type(),
            self.key(),
            "--key",
        )
    }
    /// The next job's bytes on the queue.
    fn encode(next: &Self::Next) -> Vec<u8> {
        serde_json::to_vec(next).expect("jobs always serialise")
    }
}

/// What a batch did.
#[derive(Debug)]
pub struct Applied<N> {
    /// The job for the next role.
    pub next: Option<N>,
    /// How many files were written.
    pub written: usize,
    /// Jobs part of which was refused: each goes to the dead letters with the reason, once
    /// the rest is durable.
    pub refused: Vec<Refusal>,
}

impl<N> Applied<N> {
    /// A batch that wrote `written` files and hands on `next`, refusing nothing.
    pub fn new(written: usize, next: Option<N>) -> Applied<N> {
        Applied {
            next,
            written,
            refused: Vec::new(),
        }
    }
}

/// A job of a batch part of which was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Its index in the batch.
    pub job: usize,
    /// Why, for the dead letters and the submitter's `--wait`.
    pub reason: String,
}

/// The job after the last role: there is none.
#[derive(Debug, Serialize)]
pub enum Last {}

/// What every online role holds beside its own files' state.
#[derive(Debug)]
pub struct Core {
    /// What the role is given at start: where the repository is, the pin, lifetimes.
    pub settings: RoleSettings,
    /// The role's key, labelled with the id the current root lists it under.
    pub key: SigningKey,
    /// The key it replaced, while a rotation settles (`NAME.previous.pem`, see
    /// [`RoleKeys`]), labelled with the id the newest root that listed it gave it: it
    /// co-signs the role's top-level file.
    pub previous: Option<SigningKey>,
    /// Some file of the role is not signed by `key` (an online key rotation): it is
    /// re-signed with this key at once.
    pub new_key: bool,
    /// The role's superseded versions, removed as retention allows.
    pub pruner: Pruner,
    /// The highest version this signer signed of each of the role's files.
    pub high_water: HighWater,
}

impl Core {
    /// Refuses a key the current root does not list for `role` (a wrong mount fails at once
    /// instead of producing metadata no client accepts), and labels it with the listed id.
    ///
    /// The previous key, if any, must be one a root from the pin up listed for `role`: the
    /// trust in it comes from that root, as the key's comes from the current one.
    pub fn new(
        settings: RoleSettings,
        role: Role,
        keys: RoleKeys,
        chain: &RootChain,
    ) -> Result<Core> {
        let key = label_key(&chain.current, role.role_type(), keys.key, "--key")?;
        let previous = match keys.previous {
            Some(previous) => Some(label_previous(
                &settings.layout,
                chain,
                role,
                previous,
                &keys.previous_file,
            )?),
            None => None,
        };
        if let Some(previous) = &previous {
            tracing::info!(role = %role, key_id = previous.key_id(),
                "co-signing the role's top-level file with the previous key too, so that \
                 clients which check against an older root still verify; remove the \
                 previous key file and restart to stop");
        }
        let pruner = Pruner::new(settings.retention);
        let high_water = HighWater::open(&settings.state, role)?;
        Ok(Core {
            settings,
            key,
            previous,
            new_key: false,
            pruner,
            high_water,
        })
    }

    /// The version to sign after `current` of `name` (the file at `path`): checked, never
    /// wrapped, and above every version of it this signer signed.
    pub fn next_version(&self, name: &str, current: u64, path: &std::path::Path) -> Result<u64> {
        let next = crate::repository::signed::next_version(current, path)?;
        self.high_water.check_next(name, next, path)?;
        Ok(next)
    }

    /// Refuses `role`'s file `name` loaded from disk at `version` (from `path`) when it is
    /// above the version ceiling, or below a version this signer signed (the volume went
    /// back).
    pub fn check_loaded(&self, name: &str, version: u64, path: &std::path::Path) -> Result<()> {
        crate::repository::signed::check_ceiling(version, path)?;
        self.high_water.check_loaded(name, version, path)
    }

    /// Notes whether `file`, the role's newest, lacks this key's signature (a key rotation):
    /// then it is re-signed at the first batch.
    pub fn check_signed_by_key<T>(&mut self, file: &Signed<T>, role: Role) {
        self.new_key = !self
            .top_level_keys()
            .iter()
            .all(|k| super::signed_by(file, k));
        if self.new_key {
            tracing::info!(
                key_id = self.key.key_id(),
                role = %role,
                "the role's newest file is not signed by this key yet: re-signing it now"
            );
        }
    }

    /// The keys that sign the role's top-level file: its key, and the previous one if any.
    pub fn top_level_keys(&self) -> Vec<&SigningKey> {
        std::iter::once(&self.key)
            .chain(self.previous.as_ref())
            .collect()
    }

    /// Whether metadata expiring at `expires` with `lifetime` should be signed again now:
    /// inside the refresh window, or not yet signed by this key.
    pub fn expiring(&self, expires: jiff::Timestamp, lifetime: Duration) -> bool {
        self.new_key || super::expires_within(expires, lifetime, self.settings.refresh_window)
    }
}

/// Labels `previous` with the id the newest root that listed it for `role` gave it, looking
/// from the current root down through the roots on disk; refuses a key no root listed for the
/// role (a wrong file would add a signature no client counts, and hide the mistake).
///
/// Trust in the previous key comes from where it is, the signer's own key folder, as for its
/// key; the roots are only read to name it and to catch a wrong file. The roots below the
/// current one are read as they are on disk, not verified: a signer's pin moves forward past
/// the root that last listed the key (see [`crate::pin`]), so they no longer chain from it. A
/// forged root there can at most give the co-signature a wrong id, which clients then ignore.
fn label_previous(
    layout: &Layout,
    chain: &RootChain,
    role: Role,
    mut previous: SigningKey,
    file: &std::path::Path,
) -> Result<SigningKey> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        signed: crate::schema::Root,
    }
    let mut version = chain.current.version.get();
    let mut root = chain.current.clone();
    loop {
        if let Some(id) = root.id_of(role.role_type(), previous.public()) {
            previous.sign_as(id);
            return Ok(previous);
        }
        version -= 1;
        let path = layout.versioned(Role::Root, version);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) if version > 0 => bytes,
            _ => break,
        };
        root = match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(envelope) => envelope.signed,
            Err(_) => break,
        };
    }
    Err(Error::Key {
        path: file.to_path_buf(),
        reason: format!(
            "key {} was never a {role} key in roots 1 to {}: it must hold the key this role's \
             key replaced (or be removed)",
            previous.key_id(),
            chain.current.version
        ),
    })
}
