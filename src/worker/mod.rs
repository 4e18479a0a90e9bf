//! The loop every signer runs, whatever its role: a state machine (ARCHITECTURE.md draws it).
//!
//! ```text
//!            start ──► consuming ◄──────────────► paused (targets only)
//!                        │   ▲    pause / resume     │
//!        lost queue or   ▼   │ after the backoff     ▼
//!        failed write ► reconnecting ◄───────────────┘
//! ```
//! - **consuming** ([`batch`]): take a batch → check each job (bad ones to the dead-letter
//!   queue) → under the role's lock, reload if another replica wrote, apply (sign and write
//!   durably) → publish the next role's job and wait for the broker's confirm → dead-letter
//!   the jobs refused in part → acknowledge. A crash anywhere before the acknowledgement means
//!   the batch comes back, and applying it again changes nothing already written.
//! - **paused** ([`paused`]): the targets signer lets go of its queue (jobs wait there) and
//!   keeps only its expiry refresh going, until `tuf-client resume`.
//! - **reconnecting**: a jittered, growing wait (see [`Backoff`]), then back to consuming or
//!   paused. Only what a restart cannot fix (a key the root does not list, state that does
//!   not verify: [`crate::Error::restart_cannot_fix`]) stops the loop with an error.
//!
//! Whatever the state, superseded versions are pruned every few seconds, and a write that
//! fails for want of space prunes and retries ([`crate::repository::prune`]); the signer's
//! health record is rewritten every few seconds and its key probed on a timer ([`health`]).

mod batch;
mod health;
mod paused;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::broker::amqp::AmqpConfig;
use crate::broker::backoff::Backoff;
use crate::broker::inbox::Inbox;
use crate::broker::{Endpoint, Queue, Via};
use crate::health::Activity;
use crate::roles::Stage;
use crate::{Error, Result};
use health::Health;
use writer::Writer;

/// How a signer reaches its queues: a broker, or the embedded mode's in-process queues fed
/// from an inbox folder.
#[derive(Clone)]
pub enum Transport {
    /// Through RabbitMQ, each signer connecting with this configuration.
    Amqp(AmqpConfig),
    /// Through the embedded mode's in-process queues, shared by the signers of one process.
    Inbox(Arc<Inbox>),
}

impl Transport {
    /// The transport `via` names; for an inbox, starts feeding its submissions in.
    pub fn start(via: Via) -> Transport {
        match via {
            Via::Broker(config) => Transport::Amqp(config),
            Via::Inbox(dir) => {
                let inbox = Inbox::new();
                tracing::info!(inbox = %dir.display(), "no broker configured: embedded mode, jobs from the inbox");
                tokio::spawn(inbox.clone().feed_from_inbox(dir));
                Transport::Inbox(inbox)
            }
        }
    }

    /// Connects, consuming `consume` (or nothing, to publish only).
    pub async fn open(&self, consume: Option<Queue>, prefetch: u16) -> Result<Endpoint> {
        match self {
            Transport::Amqp(config) => Endpoint::amqp(config, consume, prefetch).await,
            Transport::Inbox(inbox) => Ok(Endpoint::Inbox(inbox.endpoint(consume))),
        }
    }
}

/// How a signer's loop takes its jobs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Most jobs folded into one batch (also the broker prefetch).
    pub batch_max: u16,
    /// How often the signer's key signs a probe (`--key-probe`), for its health record.
    pub key_probe: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            batch_max: 1000,
            key_probe: crate::health::KEY_PROBE,
        }
    }
}

/// Where the worker is (see the module's diagram).
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Consuming,
    Paused,
    Reconnecting(Duration),
    Stopped,
}

/// Runs one signer until `shutdown` turns true. Waits for the broker rather than failing when
/// it is down; returns an error only for what a restart cannot fix (a wrong key, a missing
/// repository).
pub async fn run<S: Stage>(
    transport: Transport,
    load: impl Fn() -> Result<S>,
    options: WorkerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let stage = load()?;
    let health = Health::start(&stage, options.key_probe);
    let mut writer = Writer::new(stage, load, health);
    // Opening the staging folder removes what writers stopped mid-write left there.
    if let Err(e) = writer.stage.layout().staging() {
        tracing::warn!(role = %S::ROLE, error = %e,
            "cannot open the staging folder yet; trying again at the first write");
    }
    let ended = drive(&transport, &mut writer, options, &mut shutdown).await;
    writer.health.stopped();
    ended
}

/// The state machine itself, from the resting state until stopped or failed for good.
async fn drive<S: Stage, L: Fn() -> Result<S>>(
    transport: &Transport,
    writer: &mut Writer<S, L>,
    options: WorkerOptions,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<()> {
    let mut backoff = Backoff::default();
    let mut state = writer.resting_state()?;
    loop {
        if *shutdown.borrow() {
            state = State::Stopped;
        }
        let next = match state {
            State::Stopped => return Ok(()),
            State::Consuming => {
                batch::consume(transport, writer, options, shutdown, &mut backoff).await
            }
            State::Paused => paused::hold(transport, writer, shutdown).await,
            State::Reconnecting(delay) => {
                writer.health.set(Activity::Reconnecting);
                writer.health.probe_if_due(writer.stage.key());
                tokio::select! {
                    () = tokio::time::sleep(delay) => writer.resting_state(),
                    _ = shutdown.changed() => Ok(State::Stopped),
                }
            }
        };
        state = match next {
            Ok(next) => next,
            Err(e) if e.restart_cannot_fix() => return Err(e),
            Err(e) => {
                if matches!(e, Error::Signing(_)) {
                    writer.health.key_failed(writer.stage.key().key_id(), &e);
                }
                let delay = backoff.next_delay();
                tracing::warn!(role = %S::ROLE, error = %e, retry_in_ms = delay.as_millis() as u64,
                    "signer lost its queue or could not write; reconnecting (unacknowledged jobs come back)");
                State::Reconnecting(delay)
            }
        };
    }
}

/// How often superseded versions are pruned, whether or not jobs come: a signer that cannot
/// write (a full disk) still frees space.
fn prune_interval() -> tokio::time::Interval {
    let mut prune = tokio::time::interval(Duration::from_secs(5));
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    prune
}

/// How often the key signs a probe: every `--key-probe`, the first at once.
fn key_probe_interval(health: &Health) -> tokio::time::Interval {
    let mut probe = tokio::time::interval(health.probe_every());
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    probe
}

/// How often a signer looks for metadata about to expire (see [`crate::jobs::ExpiryCheck`]).
fn expiry_interval<S: Stage>(stage: &S) -> tokio::time::Interval {
    let mut check = tokio::time::interval(stage.refresh_interval());
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check
}

/// The queue a stage consumes: its role's. Named here, not by the stage: a role knows
/// nothing of how its jobs travel.
trait Queued: Stage {
    const QUEUE: Queue = match Queue::of(Self::ROLE) {
        Some(queue) => queue,
        None => panic!("an offline role has no stage"),
    };
}

impl<S: Stage> Queued for S {}

/// Publishes `bodies` to the queue after `S`'s, if there is one.
async fn hand_on<S: Stage>(endpoint: &Endpoint, bodies: Vec<Vec<u8>>) -> Result<()> {
    if let Some(queue) = <S as Queued>::QUEUE.next() {
        for body in bodies {
            endpoint.publish(queue, &body).await?;
        }
    }
    Ok(())
}
