//! What a running signer says of its health ([`crate::health`]): its record in its state
//! folder, `STATE/health.ROLE.json`, kept here and rewritten whole every [`HEARTBEAT`] by a
//! task of its own, whatever the worker is doing (a long batch, a wait for the broker), so an
//! old heartbeat means the process is gone or its runtime is stuck; a change of what it does
//! or of its key's state is written at once, at most once a second. The worker tells it what
//! it does (standby, active, paused, reconnecting), what it published, and how its key fared:
//! the key is probed every `--key-probe` (it signs [`PROBE`], and the signature is checked
//! against the key's public key), so that a key that cannot sign is seen while no job comes.
//!
//! Invariant: nothing here can fail or slow a job: the record is written by its own task, a
//! write that fails is logged once (and again once it works), never retried in the signing
//! path; the key's failures are logged by reason, never the key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::health::{Activity, Kept, Record, HEARTBEAT, PROBE};
use crate::keys::SigningKey;
use crate::role::Role;
use crate::roles::Stage;
use crate::Error;

/// A signer's health record, shared with the task that writes it.
pub(super) struct Health {
    role: Role,
    shared: Arc<Shared>,
    beat: tokio::task::JoinHandle<()>,
    probe_every: Duration,
    last_probe: Option<Instant>,
}

/// What the worker and the heartbeat task share.
struct Shared {
    role: Role,
    /// The state folder the record goes in.
    state: PathBuf,
    record: Mutex<Record>,
    /// Told when the record should be written before the next heartbeat.
    changed: tokio::sync::Notify,
    /// Held while writing: the last write (stopped) cannot be overtaken by a heartbeat.
    writing: Mutex<()>,
}

impl Shared {
    /// Writes the record with its heartbeat set to now; `None` when there is nothing to write
    /// any more (the record says stopped, unless this is that last write).
    fn write(&self, last: bool) -> Option<crate::Result<()>> {
        let _writing = self.writing.lock().ok()?;
        let record = {
            let mut record = self.record.lock().ok()?;
            if record.activity == Activity::Stopped && !last {
                return None;
            }
            record.heartbeat = Timestamp::now();
            record.clone()
        };
        Some(record.write(&self.state))
    }
}

impl Health {
    /// Starts `stage`'s record (starting, with the files it loaded) and its heartbeat, the
    /// key probed every `probe_every`.
    pub fn start<S: Stage>(stage: &S, probe_every: Duration) -> Health {
        let settings = &stage.core().settings;
        let mut record = Record::new(
            S::ROLE,
            stage.key().key_id(),
            settings.refresh_window,
            Timestamp::now(),
        );
        record.kept = kept(stage);
        let shared = Arc::new(Shared {
            role: S::ROLE,
            state: settings.state.clone(),
            record: Mutex::new(record),
            changed: tokio::sync::Notify::new(),
            writing: Mutex::new(()),
        });
        let beat = tokio::spawn(beat(shared.clone()));
        Health {
            role: S::ROLE,
            shared,
            beat,
            probe_every,
            last_probe: None,
        }
    }

    /// Applies `change` to the record; written at once (at most once a second) when what
    /// the signer does or whether its key signs changed.
    fn update(&self, change: impl FnOnce(&mut Record)) {
        let Ok(mut record) = self.shared.record.lock() else {
            return;
        };
        let before = (record.activity, record.key.fails());
        change(&mut record);
        if (record.activity, record.key.fails()) != before {
            self.shared.changed.notify_one();
        }
    }

    /// The signer now does `activity`.
    pub fn set(&self, activity: Activity) {
        self.update(|r| r.activity = activity);
    }

    /// A batch of `stage` is done, having written `written` files: the signer is active (or
    /// paused), and its files are as `stage` holds them now.
    pub fn batch_done<S: Stage>(&self, stage: &S, written: usize) {
        let kept = kept(stage);
        self.update(|r| {
            if r.activity != Activity::Paused {
                r.activity = Activity::Active;
            }
            r.kept = kept;
            if written > 0 {
                let now = Timestamp::now();
                r.published_at = Some(now);
                // What it wrote was signed.
                r.key.signed_at = Some(now);
            }
        });
    }

    /// The files `stage` holds now (after a load or a reload).
    pub fn loaded<S: Stage>(&self, stage: &S) {
        let kept = kept(stage);
        self.update(|r| r.kept = kept);
    }

    /// Signs [`PROBE`] with `key` and checks the signature against its public key.
    pub fn probe(&mut self, key: &SigningKey) {
        self.last_probe = Some(Instant::now());
        let signed = tokio::task::block_in_place(|| key.sign(PROBE)).and_then(|signature| {
            if crate::keys::verify(key.public(), PROBE, &signature) {
                Ok(())
            } else {
                Err(Error::Signing(
                    "its signature does not verify against its public key".into(),
                ))
            }
        });
        match signed {
            Ok(()) => self.key_signed(key),
            Err(e) => self.key_failed(key.key_id(), &e),
        }
    }

    /// [`Health::probe`], if the last probe was `--key-probe` ago or more.
    pub fn probe_if_due(&mut self, key: &SigningKey) {
        if self
            .last_probe
            .is_none_or(|at| at.elapsed() >= self.probe_every)
        {
            self.probe(key);
        }
    }

    /// How often the key is probed.
    pub fn probe_every(&self) -> Duration {
        self.probe_every
    }

    fn key_signed(&self, key: &SigningKey) {
        let role = self.role;
        self.update(|r| {
            if r.key.fails() {
                tracing::info!(role = %role, key_id = key.key_id(), "key can sign again");
            }
            r.key.key_id = key.key_id().to_string();
            r.key.signed_at = Some(Timestamp::now());
        });
    }

    /// The key `key_id` could not sign (a probe, or a batch's signature) for `error`.
    pub fn key_failed(&self, key_id: &str, error: &Error) {
        let reason = error.to_string();
        let role = self.role;
        self.update(|r| {
            // Said when it starts failing and when the reason changes, not every probe.
            if !r.key.fails() || r.key.error.as_deref() != Some(reason.as_str()) {
                tracing::warn!(role = %role, key_id, error = %reason,
                    "key cannot sign: nothing is signed until it can (`tuf-signer health` \
                     reports it); check the key's token or service");
            }
            r.key.key_id = key_id.to_string();
            r.key.failed_at = Some(Timestamp::now());
            r.key.error = Some(reason);
        });
    }

    /// The signer stops: says so in the record at once, and stops the heartbeat.
    pub fn stopped(&self) {
        self.beat.abort();
        self.update(|r| r.activity = Activity::Stopped);
        if let Some(Err(e)) = self.shared.write(true) {
            tracing::warn!(role = %self.role, error = %e, "cannot write the health record");
        }
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.beat.abort();
    }
}

/// Writes the record every [`HEARTBEAT`] and when it changed (at most once a second),
/// until it says stopped; a write that fails is logged when it starts failing and when it
/// works again.
async fn beat(shared: Arc<Shared>) {
    let role = shared.role;
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut last = None::<Instant>;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shared.changed.notified() => {
                let gap = last.and_then(|at| Duration::from_secs(1).checked_sub(at.elapsed()));
                if let Some(wait) = gap {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        last = Some(Instant::now());
        match shared.write(false) {
            None => return,
            Some(Ok(())) if failing => {
                failing = false;
                tracing::info!(role = %role, "the health record is written again");
            }
            Some(Ok(())) => {}
            Some(Err(e)) if !failing => {
                failing = true;
                tracing::warn!(role = %role, error = %e,
                    "cannot write the health record: `tuf-signer health` will call this \
                     signer dead; is its state folder (--state, TUF_STATE) writable?");
            }
            Some(Err(_)) => {}
        }
    }
}

/// The files `stage` keeps current, with the lifetime it signs each with.
fn kept<S: Stage>(stage: &S) -> Vec<Kept> {
    let expiries = stage.core().settings.expiries;
    stage
        .published()
        .into_iter()
        .map(|(what, version, expires)| {
            let role = if what == Role::Bins.name() {
                Role::Bins
            } else {
                Role::of_metadata(what).unwrap_or(S::ROLE)
            };
            Kept {
                what: what.to_string(),
                version,
                expires,
                lifetime_seconds: expiries.of(role).as_secs(),
            }
        })
        .collect()
}
