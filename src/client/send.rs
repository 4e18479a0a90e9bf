//! The jobs the packaging pipeline sends (`tuf-client add-targets`, `remove-targets`,
//! `refresh-expiry`, `bins`) and, with `--wait`, how it follows them to an outcome.
//!
//! Every targets job is signed with the submitter key (see [`crate::submission`]); the jobs go
//! the one way [`Via`] names, the broker or an inbox folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::coverage::Expected;
use super::status;
use super::submit::{collect, describe, Route, Sink, TargetsFolder};
use super::wait::{poll_saying, Wait};
use crate::bins::HashBins;
use crate::broker::inbox::submit_to_inbox;
use crate::broker::{Publisher, Queue, Via};
use crate::jobs::{check_target_name, NewTarget, SnapshotJob, TargetsJob, TimestampJob};
use crate::keys::SigningKey;
use crate::pin::Pin;
use crate::progress::{Progress, Show};
use crate::repository::Layout;
use crate::role::Role;
use crate::{Error, Result};

/// How a command sends its jobs, and whether it waits for their outcome. The broker, the
/// key and the timeout are read when first needed, after the command's own checks and work
/// (a command with nothing to sign says so, whatever else is missing).
#[derive(Debug, Clone)]
pub struct Sending {
    /// Where the jobs go: the inbox folder if given, else the broker.
    pub inbox: Option<PathBuf>,
    /// How to reach the broker, when there is no inbox.
    pub broker: crate::cli::BrokerArgs,
    /// The packaging pipeline's key file, which signs every targets job.
    pub submitter_key: Option<PathBuf>,
    /// Follow the jobs to an outcome in this repository (`--wait --repo`), for at most
    /// `timeout` (a duration, e.g. 10m).
    pub wait: Option<Layout>,
    /// The root `--wait` checks the published metadata from (default: root.json beside the
    /// submitter key).
    pub root: crate::cli::RootArgs,
    /// How long a wait for the outcome lasts before it gives up (`--timeout`).
    pub timeout: Duration,
    /// Targets per job.
    pub batch_size: usize,
    /// How progress shows on stderr (hashing, and the wait).
    pub show: Show,
}

impl Sending {
    fn via(&self) -> Result<Via> {
        Via::choose(self.inbox.clone(), self.broker.config()?)
    }

    fn submitter_key(&self) -> Result<SigningKey> {
        let file = self.submitter_key.as_ref().ok_or_else(|| {
            Error::Usage(
                "targets jobs are signed: give --submitter-key FILE (or TUF_SUBMITTER_KEY), the \
                 key `tuf-signer init` wrote as KEYS/submitter.pem"
                    .into(),
            )
        })?;
        SigningKey::load(file)
    }

    /// Where `--wait`'s check of the published metadata starts.
    fn pin(&self) -> Result<crate::pin::Pin> {
        self.root.pin(self.submitter_key.as_deref(), "--wait")
    }

    /// What `--wait` needs, checked before anything is written or sent: `--repo` holds a
    /// repository, and the root it is checked from can be read. A mistake here would
    /// otherwise show only when the wait times out, after the jobs went.
    pub fn checked_repo(&self) -> Result<Option<(&Layout, Pin)>> {
        let Some(layout) = &self.wait else {
            return Ok(None);
        };
        layout.require_initialised()?;
        let pin = self.pin()?;
        pin.load()?;
        Ok(Some((layout, pin)))
    }

    /// [`Sending::checked_repo`], and the wait that follows the jobs' receipts from now on, so
    /// that none of the jobs sent later is missed.
    pub fn checked_wait(&self) -> Result<Option<Wait>> {
        Ok(self
            .checked_repo()?
            .map(|(layout, pin)| Wait::new(layout.clone(), pin).showing(self.show)))
    }

    /// Connects (waiting for a broker that is down, see [`crate::broker::Waiting`]).
    pub async fn sink(&self) -> Result<Sink> {
        let key = self.submitter_key()?;
        let route = match self.via()? {
            Via::Inbox(dir) => Route::Inbox(dir),
            Via::Broker(config) => Route::Broker(Publisher::connect(&config).await?),
        };
        Ok(Sink { route, key })
    }

    /// Sends `jobs`, then, with `wait` (from [`Sending::checked_wait`], made before anything
    /// was written), follows them until every name in `expected` has an outcome.
    pub async fn submit(
        &self,
        jobs: Vec<TargetsJob>,
        expected: Expected,
        started: Instant,
        mut wait: Option<Wait>,
    ) -> Result<()> {
        let sink = self.sink().await?;
        let total = expected.len();
        for (seq, job) in jobs.iter().enumerate() {
            let id = sink.send(job, seq).await?;
            if let Some(wait) = &mut wait {
                let names = job.add.iter().map(|t| t.name.clone());
                wait.sent(id, names.chain(job.remove.iter().cloned()).collect());
            }
        }
        eprintln!("submitted {total} target(s) in {} job(s)", jobs.len());
        match &mut wait {
            Some(wait) => wait.run(expected, started, self.timeout).await,
            None => Ok(()),
        }
    }
}

/// The jobs that add `targets`, `batch_size` a job.
pub fn add_jobs(targets: &[NewTarget], batch_size: usize, replace: bool) -> Vec<TargetsJob> {
    targets
        .chunks(batch_size.max(1))
        .map(|c| TargetsJob {
            add: c.to_vec(),
            replace,
            ..Default::default()
        })
        .collect()
}

/// `tuf-client add-targets`: hashes the release files `inputs` and `named` (`NAME=FILE`)
/// give, copies each into `targets_dir` under its consistent-snapshot name when given, and
/// submits them.
pub async fn add_targets(
    sending: &Sending,
    inputs: &[PathBuf],
    named: &[String],
    targets_dir: Option<&Path>,
    replace: bool,
) -> Result<()> {
    if inputs.is_empty() && named.is_empty() {
        return Err(Error::Usage(
            "nothing to sign: give folders or files, or --target NAME=FILE".into(),
        ));
    }
    let wait = sending.checked_wait()?;
    let releases = collect(inputs, named)?;
    let started = Instant::now();
    let targets_dir = targets_dir.map(TargetsFolder::open).transpose()?;
    let mut described = Vec::with_capacity(releases.len());
    let mut hashed = Progress::new("hashed", " files", releases.len() as u64, sending.show);
    for release in &releases {
        let target = describe(release)?;
        if let Some(dir) = &targets_dir {
            dir.publish(release, &target)?;
        }
        described.push(target);
        hashed.inc(1);
    }
    hashed.finish();
    let expected: Expected = described
        .iter()
        .map(|t| (t.name.clone(), Some((t.length, t.hashes.sha256.clone()))))
        .collect();
    let jobs = add_jobs(&described, sending.batch_size, replace);
    sending.submit(jobs, expected, started, wait).await
}

/// `tuf-client remove-targets`: withdraws `names`.
pub async fn remove_targets(sending: &Sending, names: &[String]) -> Result<()> {
    for n in names {
        check_target_name(n)?;
    }
    let wait = sending.checked_wait()?;
    let expected: Expected = names.iter().map(|n| (n.clone(), None)).collect();
    let jobs = names
        .chunks(sending.batch_size.max(1))
        .map(|c| TargetsJob {
            remove: c.to_vec(),
            ..Default::default()
        })
        .collect();
    sending.submit(jobs, expected, Instant::now(), wait).await
}

/// `tuf-client refresh-expiry`: asks `role`'s signer to re-sign with a fresh expiry now (the
/// roles after it follow); with `--wait`, returns once the published timestamp leads to
/// `role`'s re-signed file. Over an inbox only the targets role can be asked.
pub async fn refresh_expiry(sending: &Sending, role: Role) -> Result<()> {
    let checked = sending.checked_repo()?;
    let before = match &checked {
        Some((layout, _)) => Some(status::top_level(layout)?.of(role)),
        None => None,
    };
    let body = refresh_job(sending, role)?;
    let queue = Queue::of(role).unwrap_or(Queue::Targets);
    match sending.via()? {
        Via::Inbox(dir) if queue == Queue::Targets => {
            submit_to_inbox(&dir, &body, 0)?;
        }
        Via::Inbox(_) => {
            return Err(Error::Usage(
                "over the inbox only the targets role can be asked; snapshot and timestamp \
                 follow it"
                    .into(),
            ))
        }
        Via::Broker(config) => {
            let publisher = Publisher::connect(&config).await?;
            publisher.publish(queue, &body).await?;
            publisher.close().await;
        }
    }
    println!(
        "asked the {} signer to re-sign with a fresh expiry",
        role.key_role()
    );
    let (Some((layout, _)), Some((version, expires))) = (checked, before) else {
        return Ok(());
    };
    let (timeout, every) = (sending.timeout, Duration::from_millis(200));
    let what = format!("the {role} signer to publish its re-signed file");
    // A read can race with a signer's rename; the next poll sees the finished files.
    let resigned = poll_saying(&what, timeout, every, || {
        let now = status::top_level(layout).ok()?.of(role);
        (now.0 > version && now.1 >= expires).then_some(now)
    })
    .await;
    match resigned {
        Some((version, expires)) => {
            println!("{role} v{version} published, expires {expires}");
            Ok(())
        }
        None => Err(Error::TimedOut(format!(
            "timed out after {timeout:?}: {role} is still v{version}, expiring {expires}; are \
             the signers running, or paused? (tuf-client status --repo ...)"
        ))),
    }
}

/// The job that asks `role`'s signer to re-sign now: a targets job is a submission, signed
/// with the submitter key; the others go to their queue as they are.
fn refresh_job(sending: &Sending, role: Role) -> Result<Vec<u8>> {
    let body = match role {
        Role::Snapshot => serde_json::to_vec(&SnapshotJob {
            refresh_expiry: true,
            ..Default::default()
        }),
        Role::Timestamp => serde_json::to_vec(&TimestampJob {
            refresh_expiry: true,
            ..Default::default()
        }),
        _ => {
            let job = TargetsJob {
                refresh_expiry: true,
                ..Default::default()
            };
            return crate::submission::sign(&job, &sending.submitter_key()?);
        }
    };
    Ok(body.expect("jobs serialise"))
}

/// `tuf-client bins`: asks the targets signer to spread every target over `count` bins;
/// with `--wait`, returns once that many bins are published.
pub async fn change_bins(sending: &Sending, count: u32) -> Result<()> {
    HashBins::new(count)?;
    let checked = sending.checked_repo()?;
    let job = TargetsJob {
        bins: Some(count),
        ..Default::default()
    };
    let started = Instant::now();
    sending.sink().await?.send(&job, 0).await?;
    eprintln!("asked the targets signer for {count} bins");
    let Some((layout, pin)) = checked else {
        return Ok(());
    };
    let (timeout, every) = (sending.timeout, Duration::from_millis(100));
    // A read can race with a signer's rename; the next poll sees the finished files.
    let what = format!("the targets signer to publish {count} bins");
    let published = poll_saying(&what, timeout, every, || {
        (status::published_bins(layout).ok()? == count as usize).then_some(())
    })
    .await;
    if published.is_none() {
        return Err(Error::TimedOut(format!(
            "timed out after {timeout:?} waiting for {count} bins; the job stays queued: are \
             the signers running, or paused? (tuf-client status --repo ...)"
        )));
    }
    println!(
        "{count} bins published ({} targets) in {:.1} s",
        status::read(layout, &pin)?.targets,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
