//! The signers of the fast tier: the three roles of `tuf-signer run --all`, each a task
//! running `signer::run_role` over the in-process transport fed from an inbox folder, stopped through the
//! watch channel it takes; each signer's log captured on its own ([`Log`]), so that a test
//! waits for what a signer says (ready, paused, reloading) instead of sleeping.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use package_signing::broker::inbox::Inbox;
use package_signing::broker::{Endpoint, Queue};
use package_signing::keys::{KeySource, RoleKeys};
use package_signing::ops::init::find_key;
use package_signing::role::Role;
use package_signing::roles::RoleSettings;
use package_signing::signer::run_role;
use package_signing::worker::{Transport, WorkerOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

use crate::harness::{Repo, PATIENCE};

/// One signer's log lines, captured apart from the others'.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Waits until the log holds `needle` at least `times` times.
    pub async fn wait_for(&self, needle: &str, times: usize) {
        let start = Instant::now();
        while self.count(needle) < times {
            assert!(
                start.elapsed() < PATIENCE,
                "the signer never logged {needle:?} {times} time(s):\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;
    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

/// The three signers of `run --all`, each a task running `worker::run`, stopped through the
/// watch channel it takes.
pub struct Signers {
    pub broker: Arc<Inbox>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<package_signing::Result<()>>)>,
    feeder: JoinHandle<package_signing::Result<()>>,
    pub targets: Log,
    pub snapshot: Log,
    pub timestamp: Log,
}

impl Signers {
    /// Starts the three roles over a new in-process transport fed from `inbox` (as `tuf-signer run
    /// --all --inbox INBOX` does), and waits until each says it is ready.
    pub async fn start(repo: &Repo, inbox: &Path) -> Signers {
        let signers = Signers::start_with(repo, inbox, repo.settings());
        for log in [&signers.targets, &signers.snapshot, &signers.timestamp] {
            log.wait_for("signer ready", 1).await;
        }
        signers
    }

    /// The same with `settings`, not waiting (a paused targets signer never says ready).
    pub fn start_with(repo: &Repo, inbox: &Path, settings: RoleSettings) -> Signers {
        Signers::start_with_keys(inbox, settings, |role| {
            KeySource::file(find_key(&repo.keys, role.name()))
        })
    }

    /// The same with each role's keys from `keys` (a key that cannot sign, say), not waiting.
    pub fn start_with_keys(
        inbox: &Path,
        settings: RoleSettings,
        keys: impl Fn(Role) -> KeySource,
    ) -> Signers {
        Signers::start_with_options(inbox, settings, keys, WorkerOptions::default())
    }

    /// The same with each signer's loop given `options` (a key probed often, say).
    pub fn start_with_options(
        inbox: &Path,
        settings: RoleSettings,
        keys: impl Fn(Role) -> KeySource,
        options: WorkerOptions,
    ) -> Signers {
        let broker = Inbox::new();
        let feeder = tokio::spawn(broker.clone().feed_from_inbox(inbox.to_path_buf()));
        let transport = Transport::Inbox(broker.clone());
        let (stop, stop_rx) = watch::channel(false);
        let (targets, snapshot, timestamp) = (Log::default(), Log::default(), Log::default());
        let tasks = [
            (Role::Targets, &targets),
            (Role::Snapshot, &snapshot),
            (Role::Timestamp, &timestamp),
        ]
        .into_iter()
        .map(|(role, log)| {
            let source = keys(role);
            let key: RoleKeys = source.load().unwrap();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(log.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            let signer = run_role(
                role,
                transport.clone(),
                settings.clone(),
                (key, source),
                options,
                stop_rx.clone(),
            );
            (
                role.name(),
                tokio::spawn(signer.with_subscriber(subscriber)),
            )
        })
        .collect();
        Signers {
            broker,
            stop,
            tasks,
            feeder,
            targets,
            snapshot,
            timestamp,
        }
    }

    /// Whether every signer is still running.
    pub fn all_running(&self) -> bool {
        self.tasks.iter().all(|(_, t)| !t.is_finished())
    }

    /// A publisher on this transport (what another agent, or an attacker with access to the
    /// queues, would use).
    pub fn publisher(&self) -> Endpoint {
        Endpoint::Inbox(self.broker.endpoint(None))
    }

    /// Waits for `role`'s signer to stop by itself and returns its error; then stops the
    /// others, however they end.
    pub async fn failure(self, role: &str) -> String {
        let start = Instant::now();
        let watched = || self.tasks.iter().find(|(name, _)| *name == role);
        while !watched().expect("a signer of that role").1.is_finished() {
            assert!(start.elapsed() < PATIENCE, "the {role} signer did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.send(true).unwrap();
        let mut error = String::new();
        for (name, task) in self.tasks {
            let ended = tokio::time::timeout(PATIENCE, task).await;
            if name == role {
                let ended = ended.unwrap().unwrap();
                error = ended
                    .expect_err("the signer stopped without an error")
                    .to_string();
            }
        }
        self.feeder.abort();
        error
    }

    /// Stops every signer (after its current batch) and checks each ended cleanly.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        for (role, task) in self.tasks {
            let ended = tokio::time::timeout(PATIENCE, task)
                .await
                .unwrap_or_else(|_| panic!("the {role} signer did not stop"))
                .unwrap();
            assert!(ended.is_ok(), "the {role} signer failed: {ended:?}");
        }
        self.feeder.abort();
    }
}

/// A job for `queue` straight onto the transport, as `tuf-client refresh-expiry --role` or
/// an upstream signer sends it.
pub async fn publish(signers: &Signers, queue: Queue, body: &[u8]) {
    signers.publisher().publish(queue, body).await.unwrap();
}
