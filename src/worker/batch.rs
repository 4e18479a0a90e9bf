//! The consuming state: batches off the role's queue, each taken through
//! check → lock, reload, apply → hand on → dead-letter → acknowledge.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::writer::Writer;
use super::{
    expiry_interval, hand_on, key_probe_interval, prune_interval, Queued, State, Transport,
    WorkerOptions,
};
use crate::broker::backoff::Backoff;
use crate::broker::{Delivery, Endpoint};
use crate::health::Activity;
use crate::jobs::{ExpiryCheck, Job};
use crate::metrics::Outcome;
use crate::roles::Stage;
use crate::Result;

/// Consumes the role's queue until shutdown (`Stopped`) or the pause switch (`Paused`); an
/// error means reconnecting, with the batch in hand unacknowledged (it comes back). A
/// connection that held at least [`Backoff::STABLE`] resets `backoff`, however it ended: one
/// that fails at once (a write error on every batch, say) keeps the wait growing.
pub(super) async fn consume<S: Stage, L: Fn() -> Result<S>>(
    transport: &Transport,
    writer: &mut Writer<S, L>,
    options: WorkerOptions,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
) -> Result<State> {
    let mut endpoint = tokio::select! {
        e = transport.open(Some(<S as Queued>::QUEUE), options.batch_max) => e?,
        _ = shutdown.changed() => return Ok(State::Stopped),
    };
    let opened = Instant::now();
    crate::metrics::connected(S::ROLE.name(), true);
    writer.health.set(Activity::Standby);
    let state = consume_from(&mut endpoint, writer, options, shutdown).await;
    crate::metrics::connected(S::ROLE.name(), false);
    writer.health.set(Activity::Reconnecting);
    endpoint.close().await;
    if opened.elapsed() >= Backoff::STABLE {
        *backoff = Backoff::default();
    }
    state
}

async fn consume_from<S: Stage, L: Fn() -> Result<S>>(
    endpoint: &mut Endpoint,
    writer: &mut Writer<S, L>,
    options: WorkerOptions,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<State> {
    hand_on::<S>(endpoint, writer.resync()?.into_iter().collect()).await?;
    announce_ready(writer);
    // Expiry is checked at once (a signer that was down may find its metadata expired), then
    // regularly, through this role's own queue: see `ExpiryCheck`.
    let mut expiry_check = expiry_interval(&writer.stage);
    let mut pause_poll = tokio::time::interval(Duration::from_millis(500));
    let mut prune = prune_interval();
    let mut key_probe = key_probe_interval(&writer.health);
    let mut depth = tokio::time::interval(Duration::from_secs(15));
    loop {
        let batch = tokio::select! {
            _ = prune.tick() => {
                writer.prune();
                continue;
            }
            _ = depth.tick() => {
                if let Some(waiting) = endpoint.waiting().await {
                    crate::metrics::waiting(S::ROLE.name(), waiting);
                }
                continue;
            }
            _ = key_probe.tick() => {
                writer.health.probe(writer.stage.key());
                continue;
            }
            b = endpoint.next_batch(options.batch_max as usize) => b?,
            _ = expiry_check.tick() => {
                // Also what stops a standby, which never applies, whose key was retired.
                writer.check_root()?;
                let check = serde_json::to_vec(&S::Job::expiry_check()).expect("jobs serialise");
                endpoint.publish(<S as Queued>::QUEUE, &check).await?;
                continue;
            }
            _ = pause_poll.tick(), if S::PAUSABLE => {
                if writer.is_paused()? {
                    return Ok(State::Paused);
                }
                continue;
            }
            _ = shutdown.changed() => return Ok(State::Stopped),
        };
        if writer.is_paused()? {
            // Paused while this batch was on its way: unacknowledged, it goes back to the
            // queue when the connection closes.
            return Ok(State::Paused);
        }
        process(endpoint, writer, &batch).await?;
    }
}

/// Says the signer is ready (the line tests and operators wait for), and reports what it
/// holds to the metrics and the health record.
fn announce_ready<S: Stage, L: Fn() -> Result<S>>(writer: &mut Writer<S, L>) {
    // The key id is the one the root gives this signer's key, whichever rule made it.
    tracing::info!(
        role = %S::ROLE,
        key_id = writer.stage.key().key_id(),
        build = crate::provenance::BUILD,
        image = crate::provenance::image().as_deref().unwrap_or("(not named: TUF_IMAGE unset)"),
        "signer ready"
    );
    observe_published(&writer.stage);
    writer.health.loaded(&writer.stage);
}

/// One batch, start to acknowledgement.
async fn process<S: Stage, L: Fn() -> Result<S>>(
    endpoint: &Endpoint,
    writer: &mut Writer<S, L>,
    batch: &[Delivery],
) -> Result<()> {
    let started = Instant::now();
    let stage = &mut writer.stage;
    let mut jobs = Vec::with_capacity(batch.len());
    // Which delivery each job came from.
    let mut from_delivery = Vec::with_capacity(batch.len());
    for (d, delivery) in batch.iter().enumerate() {
        let job = stage
            .decode(&delivery.body)
            .and_then(|job| tokio::task::block_in_place(|| stage.check(job)));
        match job {
            Ok(job) => {
                jobs.push(job);
                from_delivery.push(d);
            }
            Err(e) if e.is_job_fault() => {
                let reason = e.to_string();
                tracing::warn!(role = %S::ROLE, reason = %reason, "job sent to the dead-letter queue");
                endpoint.dead_letter(delivery, &reason).await?;
                stage.dead_lettered(&delivery.body, &reason);
            }
            // Not the job's fault (a root that no longer chains, a read error): stop or
            // retry, with the batch unacknowledged.
            Err(e) => return Err(e),
        }
    }
    let done = tokio::task::block_in_place(|| writer.apply_locked(&jobs))?;
    hand_on::<S>(endpoint, done.downstream).await?;
    let applied = done.applied;
    for refusal in &applied.refused {
        tracing::warn!(role = %S::ROLE, reason = %refusal.reason,
            "job refused in part: sent to the dead-letter queue");
        endpoint
            .dead_letter(&batch[from_delivery[refusal.job]], &refusal.reason)
            .await?;
    }
    endpoint.ack(batch).await?;
    batch_done(
        &writer.stage,
        batch.len(),
        &jobs,
        &applied,
        started.elapsed(),
    );
    writer.health.batch_done(&writer.stage, applied.written);
    Ok(())
}

/// Says what became of a batch of `taken` jobs, `jobs` of which were applied (in part, when
/// `applied` refused some), in `took`: in the log, and to the metrics with the role's files
/// after it.
fn batch_done<S: Stage>(
    stage: &S,
    taken: usize,
    jobs: &[S::Job],
    applied: &crate::roles::Applied<S::Next>,
    took: Duration,
) {
    let role = S::ROLE.name();
    let refused_in_part = applied.refused.len();
    tracing::info!(
        role = %S::ROLE,
        jobs = taken,
        items = jobs.iter().map(Job::items).sum::<usize>(),
        rejected = taken - jobs.len() + refused_in_part,
        files_written = applied.written,
        ms = took.as_secs_f64() * 1000.0,
        "batch done"
    );
    crate::metrics::jobs(role, Outcome::applied, jobs.len() - refused_in_part);
    crate::metrics::jobs(role, Outcome::refused_in_part, refused_in_part);
    crate::metrics::jobs(role, Outcome::dead_lettered, taken - jobs.len());
    crate::metrics::batch(role, taken, took, applied.written);
    observe_published(stage);
}

/// Tells the metrics what `stage`'s current files are (version, expiry).
fn observe_published<S: Stage>(stage: &S) {
    for (role, version, expires) in stage.published() {
        crate::metrics::published(role, version, expires);
    }
}
