//! What `tuf-signer run` runs: the signer of one online role (an agent: the
//! delegated-targets-signer, snapshot-signer or timestamp-signer image), or all three in one
//! process (the embedded mode), each a [`worker`] over one [`Transport`], until stopped.
//!
//! A signer loads only its own role's key, and reads its key file again whenever it reloads
//! its state (a rotated key takes effect at the next reload).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use crate::keys::{KeySource, RoleKeys};
use crate::repository::prune::Retention;
use crate::repository::{Expiries, Layout};
use crate::role::Role;
use crate::roles::{RoleSettings, SnapshotRole, TargetsRole, TimestampRole};
use crate::submission::SUBMITTERS_FILE;
use crate::submission::{Mutable, Policy};
use crate::worker::{self, Transport, WorkerOptions};
use crate::{Error, Result};

/// Whose targets jobs the targets signer applies, and how it judges them (see
/// [`crate::submission`]).
#[derive(Debug, Clone)]
pub struct Submissions {
    /// The submitter public keys; default: `submitters.pub` beside the targets key.
    pub submitters: Option<PathBuf>,
    /// Jobs issued longer ago are refused; also how long the ledger remembers.
    pub max_job_age: Duration,
    /// The submission ledger; default: `REPO/control/targets/submissions.jsonl`.
    pub ledger: Option<PathBuf>,
    /// Names that may be signed again with other content.
    pub mutable: Mutable,
}

impl Default for Submissions {
    fn default() -> Self {
        Submissions {
            submitters: None,
            max_job_age: Duration::from_secs(24 * 3600),
            ledger: None,
            mutable: Mutable::parse(Mutable::DEFAULT),
        }
    }
}

/// The signers one process runs, and what each is given.
#[derive(Debug, Clone)]
pub struct Signers {
    /// The repository the signers write.
    pub repo: PathBuf,
    /// Each role to run with its key file: one, or all three online roles.
    pub keys: Vec<(Role, PathBuf)>,
    /// Each role's lifetime, for the versions the signers sign.
    pub expiries: Expiries,
    /// How long superseded versions stay in the repository, and how many.
    pub retention: Retention,
    /// Re-sign a role when less than this fraction of its lifetime is left.
    pub refresh_window: f64,
    /// How many targets the targets signer keeps in memory (`--held-targets`).
    pub held_targets: usize,
    /// Whose targets jobs are applied, and how they are judged (the targets signer's).
    pub submissions: Submissions,
    /// How each signer's loop takes its batches.
    pub options: WorkerOptions,
    /// The root this signer trusts (`--root`); default: `root.json` beside the (first) key.
    pub root: Option<PathBuf>,
    /// The signer's own state folder (`--state`): its moved pin and the versions it signed;
    /// default: `state/` beside the (first) key. Never inside the repository.
    pub state: Option<PathBuf>,
    /// Whether a gzip copy is made beside each version written (`N.ROLE.json.gz`, off the
    /// signing path: [`crate::repository::gzip`]); on unless `--no-gzip-copies`.
    pub gzip_copies: bool,
}

impl Signers {
    /// `repo`'s signers with the defaults `tuf-signer run` has, each role's key from `keys`.
    pub fn new(repo: impl Into<PathBuf>, keys: Vec<(Role, PathBuf)>) -> Signers {
        Signers {
            repo: repo.into(),
            keys,
            expiries: Expiries::default(),
            retention: Retention::default(),
            refresh_window: 0.5,
            held_targets: crate::roles::HELD_TARGETS,
            submissions: Submissions::default(),
            options: WorkerOptions::default(),
            root: None,
            state: None,
            gzip_copies: true,
        }
    }

    /// The state folder: `--state`, else `state/` beside the first key. Refused inside the
    /// repository, which every agent can write.
    pub fn state_dir(&self) -> Result<PathBuf> {
        let dir = match (&self.state, self.keys.first()) {
            (Some(dir), _) => dir.clone(),
            (None, Some((_, key))) => crate::durable::folder_of(key).join("state"),
            (None, None) => return Err(Error::Usage("a signer needs a key (--key)".into())),
        };
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        if absolute(&dir).starts_with(absolute(&self.repo)) {
            return Err(Error::Usage(format!(
                "--state {}: the signer's state folder must not be inside the repository \
                 (every agent can write that); give it a private volume of its own",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// What every role is given; the targets signer's submission policy is loaded (its keys
    /// read) only when it is among the roles.
    pub fn settings(&self) -> Result<RoleSettings> {
        let mut layout = Layout::new(&self.repo);
        if self.gzip_copies {
            layout = layout.with_gzip_copies();
        }
        let submissions = match self.key_file(Role::Targets) {
            Some(key) => {
                let s = &self.submissions;
                let file = s.submitters.clone().unwrap_or_else(|| {
                    key.parent().unwrap_or(Path::new(".")).join(SUBMITTERS_FILE)
                });
                let ledger = match &s.ledger {
                    Some(ledger) => ledger.clone(),
                    None => {
                        let ledger = layout.default_ledger();
                        // Where a repository made before per-writer folders kept it.
                        let legacy = layout.control_dir().join("submissions.jsonl");
                        crate::durable::move_legacy(&legacy, &ledger);
                        ledger
                    }
                };
                let mut policy = Policy::load(&file, s.max_job_age, ledger)?;
                policy.mutable = s.mutable.clone();
                Some(policy)
            }
            None => None,
        };
        let state = self.state_dir()?;
        let first_key = self.keys.first().map(|(_, f)| f.as_path());
        let pin = crate::pin::Pin::resolve(self.root.as_deref(), first_key, "tuf-signer run")?
            .moving_in(&state)
            .map_err(|e| match e {
                Error::Io { path, source, .. } => Error::Usage(format!(
                    "cannot make the signer's state folder {}: {source}. Pass --state DIR (or \
                     TUF_STATE): a private, writable folder of this signer's own, not in the \
                     repository",
                    path.display()
                )),
                e => e,
            })?;
        Ok(RoleSettings {
            pin,
            state,
            layout,
            expiries: self.expiries,
            retention: self.retention,
            refresh_window: self.refresh_window,
            held_targets: self.held_targets,
            submissions,
        })
    }

    fn key_file(&self, role: Role) -> Option<&Path> {
        self.keys
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, f)| f.as_path())
    }

    /// Runs every signer until `stop` turns true, or until one fails with what a restart
    /// cannot fix (then the others stop too). Waits first for `init` to finish the repository.
    pub async fn run(&self, transport: Transport, mut stop: watch::Receiver<bool>) -> Result<()> {
        // Started before `tuf-signer init` (a container set coming up together): wait for the
        // repository rather than exit and be restarted in a loop. init writes the keys first
        // and timestamp.json last; once that is there, a missing key is a mistake, said at once.
        if !wait_for_repository(&Layout::new(&self.repo), &mut stop).await {
            return Ok(());
        }
        let settings = self.settings()?;
        settings.layout.require_initialised()?;
        // Every key is loaded before any signer starts: a wrong one fails at once.
        let mut keys = Vec::with_capacity(self.keys.len());
        for (role, file) in &self.keys {
            let source = KeySource::file(file.clone());
            let Some(key) = load_waiting(*role, &source, &mut stop).await? else {
                return Ok(());
            };
            tracing::info!(role = %role, key_file = %file.display(),
                previous_key = key.previous.is_some(), "loaded signing key");
            keys.push((*role, source, key));
        }
        // One role (a signer's own process): run it on this task, not a spawned one.
        if keys.len() == 1 {
            let (role, source, key) = keys.pop().expect("one key");
            return run_role(role, transport, settings, (key, source), self.options, stop).await;
        }
        let mut signers = tokio::task::JoinSet::new();
        for (role, source, key) in keys {
            signers.spawn(run_role(
                role,
                transport.clone(),
                settings.clone(),
                (key, source),
                self.options,
                stop.clone(),
            ));
        }
        while let Some(done) = signers.join_next().await {
            done.map_err(|e| Error::Internal(format!("a signer task panicked: {e}")))??;
        }
        Ok(())
    }
}

/// `role`'s keys from `source`; while their holder cannot be reached (a token not plugged
/// in yet, an HSM not answering: [`Error::Signing`]), tries again every few seconds, as the
/// signer waits for its broker; `None` when stopped meanwhile. A mistake (no such key, a
/// wrong PIN, an unreadable file) fails at once.
async fn load_waiting(
    role: Role,
    source: &KeySource,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<RoleKeys>> {
    loop {
        match source.load() {
            Ok(keys) => return Ok(Some(keys)),
            Err(Error::Signing(reason)) => {
                tracing::warn!(role = %role, reason,
                    "cannot reach the key's token yet; trying again in 5 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs `role`'s signer with `key` (read again from `source` at each reload).
pub async fn run_role(
    role: Role,
    transport: Transport,
    settings: RoleSettings,
    (key, source): (RoleKeys, KeySource),
    options: WorkerOptions,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    match role {
        Role::Targets => {
            let load = loader(settings, key, source, TargetsRole::load);
            worker::run(transport, load, options, stop).await
        }
        Role::Snapshot => {
            let load = loader(settings, key, source, SnapshotRole::load);
            worker::run(transport, load, options, stop).await
        }
        Role::Timestamp => {
            let load = loader(settings, key, source, TimestampRole::load);
            worker::run(transport, load, options, stop).await
        }
        Role::Root | Role::Bins => Err(Error::Usage(format!(
            "{role} has no signer of its own (root is signed offline, the bins by the targets \
             signer)"
        ))),
    }
}

/// What the worker calls when it (re)loads the role's state: the first call uses the keys
/// already loaded, later ones read them from `source` again.
pub fn loader<S>(
    settings: RoleSettings,
    key: RoleKeys,
    source: KeySource,
    load: fn(RoleSettings, RoleKeys) -> Result<S>,
) -> impl Fn() -> Result<S> {
    let first = std::sync::Mutex::new(Some(key));
    move || {
        let key = match first.lock().expect("lock").take() {
            Some(k) => k,
            None => source.load()?,
        };
        load(settings.clone(), key)
    }
}

/// Waits until `init` has finished the repository (it writes `metadata/timestamp.json`
/// last), saying once what it waits for; `false` when stopped first.
pub async fn wait_for_repository(layout: &Layout, stop: &mut watch::Receiver<bool>) -> bool {
    let done = layout.timestamp();
    if done.is_file() {
        return true;
    }
    tracing::warn!(repo = %layout.dir.display(),
        "waiting for the repository: no metadata/timestamp.json yet (run `tuf-signer init`; \
         it writes that file last)");
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return false,
        }
        if done.is_file() {
            tracing::info!("the repository is there: starting");
            return true;
        }
    }
}
