//! The loop every signer runs, whatever its role:
//! take a batch → check each job (bad ones to the dead-letter queue) → sign and write
//! durably → publish the downstream job and wait for the broker's confirm → acknowledge.
//! A crash anywhere before the acknowledgement means the batch comes back, and applying it
//! again changes nothing that was already written.
//!
//! Writes happen under the role's lock in `REPO/control/` (see [`Control`]), and the
//! targets signer obeys the pause switch there: paused, it lets go of its queue (jobs wait
//! there) and keeps only its expiry refresh going. Superseded versions are pruned every few
//! seconds whatever happens, and a write that fails for want of space prunes and retries
//! (see [`crate::repository::prune`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::broker::amqp::AmqpConfig;
use crate::broker::backoff::Backoff;
use crate::broker::memory::MemoryBroker;
use crate::broker::{Endpoint, Queue};
use crate::jobs::{ExpiryCheck, Job, SnapshotJob, TargetsJob, TimestampJob};
use crate::keys::SigningKey;
use crate::repository::control::Control;
use crate::repository::prune::{space_is_low, still_named, Named};
use crate::repository::Layout;
use crate::roles::{ensure_key_listed, latest_root, SnapshotRole, TargetsRole, TimestampRole};
use crate::{Error, Result};
use tough::schema::RoleType;

/// A role as the worker drives it.
pub trait Stage: Send + 'static {
    type Job: ExpiryCheck;
    const NAME: &'static str;
    const QUEUE: Queue;
    const ROLE: RoleType;
    /// Whether `tuf-client pause` stops this role taking jobs.
    const PAUSABLE: bool = false;

    /// Reads a job off the queue; an [`Error::InvalidJob`] sends it to the dead letters.
    fn decode(&self, body: &[u8]) -> Result<Self::Job> {
        serde_json::from_slice(body)
            .map_err(|e| Error::InvalidJob(format!("not a {} job: {e}", Self::NAME)))
    }
    /// Refuses a job that must not be applied (the reason goes with it to the dead letters),
    /// or returns what to apply: a job's contents are hints, and a role replaces what it can
    /// check (the version, length and hashes of a file it names) with what it read and
    /// verified.
    fn check(&mut self, job: Self::Job) -> Result<Self::Job>;
    /// Applies a batch durably; returns the downstream job, how many files it wrote, and the
    /// jobs refused in part.
    fn apply(&mut self, jobs: &[Self::Job]) -> Result<Applied>;
    /// The downstream job that re-announces this role's current files, sent at start.
    fn resync(&self) -> Option<Vec<u8>>;
    /// Whether another replica has written newer files since this state was loaded.
    fn is_stale(&self) -> Result<bool>;
    /// How often to look for metadata about to expire.
    fn refresh_interval(&self) -> Duration;
    /// The repository this role signs.
    fn layout(&self) -> &Layout;
    /// This role's signing key.
    fn key(&self) -> &SigningKey;

    /// Removes superseded versions retention no longer keeps and `named` does not protect
    /// (see [`crate::repository::prune`]); returns how many files went.
    fn prune(&mut self, _named: &Named) -> usize {
        0
    }
    /// The disk is full: removes every superseded version no client can still need.
    fn free_space(&mut self, _named: &Named) -> usize {
        0
    }

    /// The lock and the pause switch.
    fn control(&self) -> Control {
        Control::new(self.layout())
    }
    /// Fails once the newest root no longer lists this signer's key for its role (a rotation
    /// finished without restarting this signer): what it signs would be refused by clients.
    fn key_still_listed(&self) -> Result<()> {
        ensure_key_listed(
            &latest_root(self.layout())?,
            Self::ROLE,
            self.key(),
            "--key",
        )
    }
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The job for the next role.
    pub next: Option<Vec<u8>>,
    /// How many files were written.
    pub written: usize,
    /// Jobs (their index in the batch) part of which was refused, and why: each goes to the
    /// dead letters with the reason, once the rest is durable.
    pub refused: Vec<(usize, String)>,
}

fn encode<T: serde::Serialize>(job: &T) -> Vec<u8> {
    serde_json::to_vec(job).expect("jobs always serialise")
}

impl Stage for TargetsRole {
    type Job = TargetsJob;
    const NAME: &'static str = "targets";
    const ROLE: RoleType = RoleType::Targets;
    const QUEUE: Queue = Queue::Targets;
    const PAUSABLE: bool = true;

    /// Only a submission signed by a trusted submitter key, within the allowed age (or the
    /// signer's own expiry reminder): see [`crate::submission`].
    fn decode(&self, body: &[u8]) -> Result<TargetsJob> {
        self.submissions().open(body)
    }
    fn check(&mut self, job: TargetsJob) -> Result<TargetsJob> {
        TargetsRole::check(self, &job).map(|()| job)
    }
    fn apply(&mut self, jobs: &[TargetsJob]) -> Result<Applied> {
        let out = TargetsRole::apply(self, jobs)?;
        let next = out
            .snapshot_job
            .map(|job| encode(&job.signed_with(self.key())));
        Ok(Applied {
            next,
            written: out.changed_bins,
            refused: out.refused,
        })
    }
    fn resync(&self) -> Option<Vec<u8>> {
        Some(encode(&TargetsRole::resync(self).signed_with(self.key())))
    }
    fn is_stale(&self) -> Result<bool> {
        TargetsRole::is_stale(self)
    }
    fn refresh_interval(&self) -> Duration {
        self.refresh_interval()
    }
    fn prune(&mut self, named: &Named) -> usize {
        self.pruner().sweep(named)
    }
    fn free_space(&mut self, named: &Named) -> usize {
        self.pruner().free_space(named)
    }
    fn layout(&self) -> &Layout {
        self.layout()
    }
    fn key(&self) -> &SigningKey {
        self.key()
    }
}

impl Stage for SnapshotRole {
    type Job = SnapshotJob;
    const NAME: &'static str = "snapshot";
    const ROLE: RoleType = RoleType::Snapshot;
    const QUEUE: Queue = Queue::Snapshot;

    fn check(&mut self, job: SnapshotJob) -> Result<SnapshotJob> {
        SnapshotRole::check(self, job)
    }
    fn apply(&mut self, jobs: &[SnapshotJob]) -> Result<Applied> {
        let (changed, next) = SnapshotRole::apply(self, jobs)?;
        Ok(Applied {
            next: Some(encode(&next)),
            written: usize::from(changed),
            refused: Vec::new(),
        })
    }
    fn resync(&self) -> Option<Vec<u8>> {
        Some(encode(&SnapshotRole::resync(self)))
    }
    fn is_stale(&self) -> Result<bool> {
        SnapshotRole::is_stale(self)
    }
    fn refresh_interval(&self) -> Duration {
        self.refresh_interval()
    }
    fn prune(&mut self, named: &Named) -> usize {
        self.pruner().sweep(named)
    }
    fn free_space(&mut self, named: &Named) -> usize {
        self.pruner().free_space(named)
    }
    fn layout(&self) -> &Layout {
        self.layout()
    }
    fn key(&self) -> &SigningKey {
        self.key()
    }
}

impl Stage for TimestampRole {
    type Job = TimestampJob;
    const NAME: &'static str = "timestamp";
    const ROLE: RoleType = RoleType::Timestamp;
    const QUEUE: Queue = Queue::Timestamp;

    fn check(&mut self, job: TimestampJob) -> Result<TimestampJob> {
        TimestampRole::check(self, job)
    }
    fn apply(&mut self, jobs: &[TimestampJob]) -> Result<Applied> {
        Ok(Applied {
            written: usize::from(TimestampRole::apply(self, jobs)?),
            ..Applied::default()
        })
    }
    fn resync(&self) -> Option<Vec<u8>> {
        None
    }
    fn is_stale(&self) -> Result<bool> {
        TimestampRole::is_stale(self)
    }
    fn refresh_interval(&self) -> Duration {
        self.refresh_interval()
    }
    fn layout(&self) -> &Layout {
        self.layout()
    }
    fn key(&self) -> &SigningKey {
        self.key()
    }
}

/// How a signer reaches its queues.
#[derive(Clone)]
pub enum Connector {
    Amqp(AmqpConfig),
    Memory(Arc<MemoryBroker>),
}

impl Connector {
    pub async fn open(&self, consume: Option<Queue>, prefetch: u16) -> Result<Endpoint> {
        match self {
            Connector::Amqp(config) => Endpoint::amqp(config, consume, prefetch).await,
            Connector::Memory(broker) => Ok(Endpoint::Memory(broker.endpoint(consume))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Most jobs folded into one batch (also the broker prefetch).
    pub batch_max: u16,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { batch_max: 1000 }
    }
}

/// Runs one signer until `shutdown` turns true. Waits for the broker rather than failing when
/// it is down; returns an error only for what a restart cannot fix (a wrong key, a missing
/// repository).
pub async fn run<S: Stage>(
    connector: Connector,
    load: impl Fn() -> Result<S>,
    options: WorkerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let mut backoff = Backoff::default();
    let mut signer = Signer::new(load()?);
    let control = signer.stage.control();
    // Opening the staging folder removes what writers stopped mid-write left there.
    if let Err(e) = signer.stage.layout().staging() {
        tracing::warn!(role = S::NAME, error = %e,
            "cannot open the staging folder yet; trying again at the first write");
    }
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let result = if S::PAUSABLE && control.paused()?.is_some() {
            paused(&connector, &mut signer, &load, &control, &mut shutdown).await
        } else {
            let endpoint = tokio::select! {
                e = connector.open(Some(S::QUEUE), options.batch_max) => e,
                _ = shutdown.changed() => return Ok(()),
            };
            match endpoint {
                Ok(mut endpoint) => {
                    let opened = std::time::Instant::now();
                    let r = serve(&mut endpoint, &mut signer, &load, options, &mut shutdown).await;
                    endpoint.close().await;
                    // Only a connection that held: one that fails at once (a write error on
                    // every batch, say) keeps the delay growing.
                    if opened.elapsed() >= Backoff::STABLE {
                        backoff = Backoff::default();
                    }
                    r
                }
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(Stop::Shutdown) => return Ok(()),
            Ok(Stop::Paused | Stop::Resumed) => continue,
            // A key the root does not list, or state that does not verify: no retry can fix
            // that.
            Err(e @ (Error::Key { .. } | Error::Untrusted { .. })) => return Err(e),
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(role = S::NAME, error = %e, retry_in_ms = delay.as_millis() as u64,
                    "signer lost its queue or could not write; reconnecting (unacknowledged jobs come back)");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {},
                    _ = shutdown.changed() => return Ok(()),
                }
            }
        }
    }
}

/// A role's state, the name it records in the role's lock file when it writes, and the
/// newest root version it has checked its key against.
struct Signer<S> {
    stage: S,
    id: String,
    root_version: u64,
}

/// Why `serve` or `paused` returned.
enum Stop {
    Shutdown,
    Paused,
    Resumed,
}

fn writer_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}@{} {nanos}",
        std::process::id(),
        std::env::var("HOSTNAME").unwrap_or_default()
    )
}

impl<S: Stage> Signer<S> {
    fn new(stage: S) -> Signer<S> {
        Signer {
            stage,
            id: writer_id(),
            root_version: 0,
        }
    }

    /// Fails when a newer root no longer lists this signer's key; one `stat` when no new
    /// root has appeared.
    fn check_root(&mut self) -> Result<()> {
        let layout = self.stage.layout();
        let mut newest = self.root_version;
        while layout.versioned("root", newest + 1).is_file() {
            newest += 1;
        }
        if newest != self.root_version {
            self.stage.key_still_listed()?;
            self.root_version = newest;
        }
        Ok(())
    }

    /// Removes superseded versions retention no longer keeps, or, when the disk is nearly
    /// full, every one no client can still need.
    fn prune(&mut self) {
        let layout = self.stage.layout();
        let low = space_is_low(&layout.metadata_dir());
        let Some(named) = still_named(layout) else {
            return;
        };
        let removed = tokio::task::block_in_place(|| {
            if low {
                self.stage.free_space(&named)
            } else {
                self.stage.prune(&named)
            }
        });
        if low && removed > 0 {
            tracing::warn!(
                role = S::NAME,
                removed,
                "disk nearly full: removed superseded versions past the client grace"
            );
        } else if removed > 0 {
            tracing::debug!(role = S::NAME, removed, "pruned superseded versions");
        }
    }

    /// Applies `jobs` under the role's lock; returns the downstream jobs to publish, in
    /// order, how many files were written, and the jobs refused in part.
    ///
    /// When the lock names another writer (a standby taking over, a paused replica's
    /// refresh, this process's own first write), the state is reloaded if the disk moved,
    /// and what was reloaded is announced downstream too: the replica that wrote it may have
    /// died before handing it on. A failed apply reloads as well, since it may have moved
    /// the state ahead of the disk.
    fn apply_locked(
        &mut self,
        jobs: &[S::Job],
        load: &impl Fn() -> Result<S>,
        control: &Control,
    ) -> Result<(Vec<Vec<u8>>, Applied)> {
        let mut lock = control.lock(S::NAME)?;
        self.check_root()?;
        let mut downstream = Vec::new();
        if lock.last_writer()? != self.id && self.stage.is_stale()? {
            tracing::info!(
                role = S::NAME,
                "another replica signed since this one loaded: reloading state from disk"
            );
            self.stage = load()?;
            downstream.extend(self.stage.resync());
        }
        // Named before writing: if this process dies mid-write, the next writer sees a
        // name not its own and checks the disk before signing.
        lock.record(&self.id)?;
        let mut freed = false;
        loop {
            match self.stage.apply(jobs) {
                Ok(mut applied) => {
                    downstream.extend(applied.next.take());
                    return Ok((downstream, applied));
                }
                Err(e) => {
                    self.stage = load()?;
                    // A full disk: prune what no client can still need and try once more.
                    // Otherwise (or if that frees nothing) the batch comes back after the
                    // reconnect wait, which grows, and pruning is tried again then.
                    if e.is_disk_full() && !freed {
                        freed = true;
                        let removed = still_named(self.stage.layout())
                            .map_or(0, |named| self.stage.free_space(&named));
                        tracing::warn!(role = S::NAME, error = %e, removed,
                            "disk full: removed superseded versions past the client grace; \
                             trying the batch again");
                        if removed > 0 {
                            continue;
                        }
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// How often superseded versions are pruned, whether or not jobs come: a signer that cannot
/// write (a full disk) still frees space.
fn prune_interval() -> tokio::time::Interval {
    let mut prune = tokio::time::interval(Duration::from_secs(5));
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    prune
}

/// Paused (targets only): no consumer on the queue, so jobs wait there; the expiry refresh
/// runs here directly, under the role lock.
async fn paused<S: Stage>(
    connector: &Connector,
    signer: &mut Signer<S>,
    load: &impl Fn() -> Result<S>,
    control: &Control,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Stop> {
    let publisher = tokio::select! {
        e = connector.open(None, 1) => e?,
        _ = shutdown.changed() => return Ok(Stop::Shutdown),
    };
    if let (Some(next), Some(body)) = (S::QUEUE.next(), signer.stage.resync()) {
        publisher.publish(next, &body).await?;
    }
    tracing::info!(
        role = S::NAME,
        "paused (tuf-client resume to continue): jobs wait in the queue; expiry refresh goes on"
    );
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let mut expiry_check = tokio::time::interval(signer.stage.refresh_interval());
    expiry_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prune = prune_interval();
    loop {
        tokio::select! {
            _ = prune.tick() => signer.prune(),
            _ = poll.tick() => {
                if control.paused()?.is_none() {
                    tracing::info!(role = S::NAME, "resumed: taking jobs again");
                    publisher.close().await;
                    return Ok(Stop::Resumed);
                }
            }
            _ = expiry_check.tick() => {
                let check = [S::Job::expiry_check()];
                let (next, _) = tokio::task::block_in_place(|| {
                    signer.apply_locked(&check, load, control)
                })?;
                if let Some(queue) = S::QUEUE.next() {
                    for body in next {
                        publisher.publish(queue, &body).await?;
                    }
                }
            }
            _ = shutdown.changed() => {
                publisher.close().await;
                return Ok(Stop::Shutdown);
            }
        }
    }
}

async fn serve<S: Stage>(
    endpoint: &mut Endpoint,
    signer: &mut Signer<S>,
    load: &impl Fn() -> Result<S>,
    options: WorkerOptions,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Stop> {
    let control = signer.stage.control();
    if let (Some(next), Some(body)) = (S::QUEUE.next(), signer.stage.resync()) {
        endpoint.publish(next, &body).await?;
    }
    // The key id is the one the root gives this signer's key, whichever rule made it.
    tracing::info!(
        role = S::NAME,
        key_id = signer.stage.key().key_id(),
        "signer ready"
    );
    // Expiry is checked at once (a signer that was down may find its metadata expired), then
    // regularly, through this role's own queue: see `ExpiryCheck`.
    let mut expiry_check = tokio::time::interval(signer.stage.refresh_interval());
    expiry_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pause_poll = tokio::time::interval(Duration::from_millis(500));
    let mut prune = prune_interval();
    loop {
        let batch = tokio::select! {
            _ = prune.tick() => {
                signer.prune();
                continue;
            }
            b = endpoint.next_batch(options.batch_max as usize) => b?,
            _ = expiry_check.tick() => {
                // Also what stops a standby, which never applies, whose key was retired.
                signer.check_root()?;
                endpoint.publish(S::QUEUE, &encode(&S::Job::expiry_check())).await?;
                continue;
            }
            _ = pause_poll.tick(), if S::PAUSABLE => {
                if control.paused()?.is_some() {
                    return Ok(Stop::Paused);
                }
                continue;
            }
            _ = shutdown.changed() => return Ok(Stop::Shutdown),
        };
        if S::PAUSABLE && control.paused()?.is_some() {
            // Paused while this batch was on its way: unacknowledged, it goes back to the
            // queue when the connection closes.
            return Ok(Stop::Paused);
        }
        let started = Instant::now();
        let stage = &mut signer.stage;
        let mut jobs = Vec::with_capacity(batch.len());
        // Which delivery each job came from.
        let mut from_delivery = Vec::with_capacity(batch.len());
        let mut rejected = 0;
        for (d, delivery) in batch.iter().enumerate() {
            let job = stage
                .decode(&delivery.body)
                .and_then(|job| tokio::task::block_in_place(|| stage.check(job)));
            match job {
                Ok(job) => {
                    jobs.push(job);
                    from_delivery.push(d);
                }
                // Not the job's fault (a root that no longer chains, a read error): stop or
                // retry, with the batch unacknowledged.
                Err(e) if !matches!(e, Error::InvalidJob(_)) => return Err(e),
                Err(e) => {
                    rejected += 1;
                    let reason = e.to_string();
                    tracing::warn!(role = S::NAME, reason = %reason, "job sent to the dead-letter queue");
                    endpoint.dead_letter(delivery, &reason).await?;
                }
            }
        }
        let items: usize = jobs.iter().map(Job::items).sum();
        let (next, applied) =
            tokio::task::block_in_place(|| signer.apply_locked(&jobs, load, &control))?;
        if let Some(queue) = S::QUEUE.next() {
            for body in next {
                endpoint.publish(queue, &body).await?;
            }
        }
        for (index, reason) in &applied.refused {
            rejected += 1;
            tracing::warn!(role = S::NAME, reason = %reason, "job refused in part: sent to the dead-letter queue");
            endpoint
                .dead_letter(&batch[from_delivery[*index]], reason)
                .await?;
        }
        let written = applied.written;
        endpoint.ack(&batch).await?;
        tracing::info!(
            role = S::NAME,
            jobs = batch.len(),
            items,
            rejected,
            files_written = written,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "batch done"
        );
    }
}
