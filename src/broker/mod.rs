//! How jobs travel between the roles.
//!
//! Over RabbitMQ ([`amqp`]) every role has one durable queue with single-active-consumer
//! (a second replica is a hot standby), persistent messages, publisher confirms and manual
//! acks. Each queue is fed by an exchange of its own (`tuf.to-targets` feeds `tuf.targets`),
//! so that the broker's write permission, which it checks on exchanges, can say who may send
//! each stage its jobs; nobody publishes through `amq.default`. Without a broker ([`inbox`]) the three roles run in one process and pass jobs over
//! in-process channels, fed from an inbox folder so that submissions survive a restart.

pub mod amqp;
pub mod backoff;
pub mod inbox;
pub mod secrets;

use std::time::{Duration, Instant};

use crate::role::Role;
use crate::Result;

/// Which way jobs travel, chosen once for every command that sends or takes them: a broker,
/// or the embedded mode's inbox folder (`tuf-signer run --all --inbox DIR`).
#[derive(Debug, Clone)]
pub enum Via {
    /// Over RabbitMQ, with this connection's settings.
    Broker(amqp::AmqpConfig),
    /// Through the embedded mode's inbox folder.
    Inbox(std::path::PathBuf),
}

impl Via {
    /// An inbox wins over a broker (so a broker in the environment does not get in the way
    /// of the embedded mode); neither is a usage error saying what to give.
    pub fn choose(
        inbox: Option<std::path::PathBuf>,
        broker: Option<amqp::AmqpConfig>,
    ) -> Result<Via> {
        match (inbox, broker) {
            (Some(dir), _) => Ok(Via::Inbox(dir)),
            (None, Some(config)) => Ok(Via::Broker(config)),
            (None, None) => Err(crate::Error::Usage(
                "where do jobs go? --amqp URL (or AMQP_URL) for signers over RabbitMQ, or \
                 --inbox DIR for `tuf-signer run --all --inbox DIR`"
                    .into(),
            )),
        }
    }
}

/// A command's patience with a broker out of reach (see
/// [`crate::Error::is_broker_unreachable`]): after each failed attempt, [`Waiting::after`]
/// says on stderr that it waits, sleeps [`backoff::Backoff`]'s jittered wait, and lets the
/// caller try again, for at most `patience` from the first failure; any other error, or the
/// last one, it returns. A signer waits for ever in its own loop instead.
#[derive(Debug)]
pub struct Waiting {
    broker: String,
    patience: Duration,
    backoff: backoff::Backoff,
    since: Option<Instant>,
}

impl Waiting {
    /// A fresh wait for the broker in `config`, its patience `config.patience` (`--broker-wait`).
    pub fn new(config: &amqp::AmqpConfig) -> Waiting {
        Waiting {
            broker: config.redacted_url(),
            patience: config.patience,
            backoff: backoff::Backoff::default(),
            since: None,
        }
    }

    /// Runs `attempt` until it succeeds, or until [`Waiting::after`] gives up.
    pub async fn retry<T, F, Fut>(config: &amqp::AmqpConfig, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut waiting = Waiting::new(config);
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) => waiting.after(e).await?,
            }
        }
    }

    /// Called with an attempt's error: `Ok` once it is worth another attempt.
    pub async fn after(&mut self, e: crate::Error) -> Result<()> {
        if !e.is_broker_unreachable() {
            return Err(e);
        }
        let waited = self.since.get_or_insert_with(Instant::now).elapsed();
        if waited >= self.patience {
            return Err(crate::Error::BrokerRefused(format!(
                "gave up after waiting {:.0} s for the broker at {} (--broker-wait): {e}; \
                 nothing was lost: run the command again once the broker is back",
                waited.as_secs_f64(),
                self.broker
            )));
        }
        let delay = self
            .backoff
            .next_delay()
            .min(self.patience.saturating_sub(waited));
        eprintln!(
            "waiting for the broker at {} ({e}); trying again in {:.1} s, giving up in {:.0} s",
            self.broker,
            delay.as_secs_f64(),
            self.patience.saturating_sub(waited).as_secs_f64()
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// A command's way to the broker: connects, and publishes with confirms, waiting out an
/// outage (see [`Waiting`]) by connecting again and sending the same bytes again. A job
/// whose confirm was lost may so arrive twice: the same bytes are the same job, which the
/// roles apply once (a targets job's issue time makes the second a redelivery, see
/// [`crate::submission`]; the other jobs name versions).
pub struct Publisher {
    config: amqp::AmqpConfig,
    endpoint: tokio::sync::Mutex<Option<Endpoint>>,
}

impl Publisher {
    /// Connects now (waiting for the broker if need be), so that a wrong URL or password is
    /// said before any work.
    pub async fn connect(config: &amqp::AmqpConfig) -> Result<Publisher> {
        let publisher = Publisher {
            config: config.clone(),
            endpoint: tokio::sync::Mutex::new(None),
        };
        let endpoint = Waiting::retry(config, || Endpoint::amqp(config, None, 1)).await?;
        *publisher.endpoint.lock().await = Some(endpoint);
        Ok(publisher)
    }

    /// Publishes `body` to `queue` and returns once the broker has confirmed it.
    pub async fn publish(&self, queue: Queue, body: &[u8]) -> Result<()> {
        let mut slot = self.endpoint.lock().await;
        let mut waiting = Waiting::new(&self.config);
        loop {
            let attempt = match slot.as_ref() {
                Some(endpoint) => endpoint.publish(queue, body).await,
                None => match Endpoint::amqp(&self.config, None, 1).await {
                    Ok(endpoint) => endpoint.publish(queue, body).await.map(|()| {
                        *slot = Some(endpoint);
                    }),
                    Err(e) => Err(e),
                },
            };
            match attempt {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Some(broken) = slot.take() {
                        broken.close().await;
                    }
                    waiting.after(e).await?;
                }
            }
        }
    }

    /// Closes the connection, if one is open.
    pub async fn close(self) {
        if let Some(endpoint) = self.endpoint.into_inner() {
            endpoint.close().await;
        }
    }
}

/// The queues of one deployment. A prefix keeps several deployments (or tests) apart on
/// one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// The targets signer's queue, fed by the packaging pipeline and by the signer itself.
    Targets,
    /// The snapshot signer's queue, fed by the targets signer.
    Snapshot,
    /// The timestamp signer's queue, fed by the snapshot signer.
    Timestamp,
    /// Where jobs that fail their checks go, with the reason, for an operator to look at.
    DeadLetter,
}

impl Queue {
    /// The queue `role`'s signer consumes; the root has none (its key is offline), and the
    /// bins are the targets signer's.
    pub const fn of(role: Role) -> Option<Queue> {
        match role.key_role() {
            Role::Root => None,
            Role::Snapshot => Some(Queue::Snapshot),
            Role::Timestamp => Some(Queue::Timestamp),
            _ => Some(Queue::Targets),
        }
    }

    /// The queue's name on the broker: `{prefix}tuf.targets`.
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}tuf.{}", self.stage())
    }

    /// The exchange that feeds this queue (and nothing else): `tuf.to-targets`.
    pub fn exchange(self, prefix: &str) -> String {
        format!("{prefix}tuf.to-{}", self.stage())
    }

    /// `targets`, `snapshot`, `timestamp`, `dead-letter`.
    pub fn stage(self) -> &'static str {
        match self {
            Queue::Targets => Role::Targets.name(),
            Queue::Snapshot => Role::Snapshot.name(),
            Queue::Timestamp => Role::Timestamp.name(),
            Queue::DeadLetter => "dead-letter",
        }
    }

    /// Where a role consuming this queue sends its jobs on.
    pub const fn next(self) -> Option<Queue> {
        match self {
            Queue::Targets => Some(Queue::Snapshot),
            Queue::Snapshot => Some(Queue::Timestamp),
            Queue::Timestamp | Queue::DeadLetter => None,
        }
    }

    /// The queues an agent uses, and so declares with their exchanges where the broker lets
    /// it: a signer its own queue (it also sends itself expiry checks), the next role's and
    /// the dead letters; the submitting client the targets queue. It publishes to each of
    /// these queues' exchanges, and nowhere else.
    pub fn used_by(consume: Option<Queue>) -> Vec<Queue> {
        match consume {
            Some(own) => [Some(own), own.next(), Some(Queue::DeadLetter)]
                .into_iter()
                .flatten()
                .collect(),
            None => vec![Queue::Targets],
        }
    }
}

/// A received job, to acknowledge once its effects are durable.
#[derive(Debug)]
pub struct Delivery {
    /// The job's bytes, as published.
    pub body: Vec<u8>,
    /// Whether the broker handed this job out before (a consumer stopped before acknowledging
    /// it); always false from the inbox.
    pub redelivered: bool,
    handle: Handle,
}

#[derive(Debug)]
enum Handle {
    Amqp(lapin::Acker),
    Inbox(Option<std::path::PathBuf>),
}

/// A connection for one role: consumes its queue, publishes downstream.
pub enum Endpoint {
    /// A RabbitMQ connection and channel.
    Amqp(Box<amqp::AmqpEndpoint>),
    /// The embedded mode's in-process queues.
    Inbox(inbox::InboxEndpoint),
}

impl Endpoint {
    /// Connects to RabbitMQ; see [`amqp::AmqpEndpoint::connect`].
    pub async fn amqp(
        config: &amqp::AmqpConfig,
        consume: Option<Queue>,
        prefetch: u16,
    ) -> Result<Endpoint> {
        Ok(Endpoint::Amqp(Box::new(
            amqp::AmqpEndpoint::connect(config, consume, prefetch).await?,
        )))
    }

    /// Waits for at least one job, then takes whatever else is already waiting, up to `max`.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>> {
        match self {
            Endpoint::Amqp(e) => e.next_batch(max).await,
            Endpoint::Inbox(e) => e.next_batch(max).await,
        }
    }

    /// Messages waiting in the queue consumed, as the broker counts them; `None` for the
    /// inbox (nothing to ask) or when the broker does not answer.
    pub async fn waiting(&self) -> Option<u32> {
        match self {
            Endpoint::Amqp(e) => e.waiting().await,
            Endpoint::Inbox(_) => None,
        }
    }

    /// Publishes persistently and returns once the broker has confirmed it.
    pub async fn publish(&self, queue: Queue, body: &[u8]) -> Result<()> {
        match self {
            Endpoint::Amqp(e) => e.publish(queue, body, None).await,
            Endpoint::Inbox(e) => e.publish(queue, body),
        }
    }

    /// Moves a job that cannot be processed to the dead-letter queue, with the reason.
    pub async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        match self {
            Endpoint::Amqp(e) => {
                e.publish(Queue::DeadLetter, &delivery.body, Some(reason))
                    .await
            }
            Endpoint::Inbox(e) => e.dead_letter(delivery, reason),
        }
    }

    /// Lets go of the queue; unacknowledged jobs go back to it.
    pub async fn close(self) {
        match self {
            Endpoint::Amqp(e) => e.close().await,
            Endpoint::Inbox(e) => drop(e),
        }
    }

    /// Acknowledges a whole batch.
    pub async fn ack(&self, batch: &[Delivery]) -> Result<()> {
        match self {
            Endpoint::Amqp(e) => e.ack(batch).await,
            Endpoint::Inbox(e) => e.ack(batch),
        }
    }
}
