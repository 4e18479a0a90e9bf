//! How jobs travel between the roles.
//!
//! Over RabbitMQ ([`amqp`]) every role has one durable queue with single-active-consumer
//! (a second replica is a hot standby), persistent messages, publisher confirms and manual
//! acks. Each queue is fed by an exchange of its own (`tuf.to-targets` feeds `tuf.targets`),
//! so that the broker's write permission, which it checks on exchanges, can say who may send
//! each stage its jobs; nobody publishes through `amq.default`. Without a broker ([`memory`]) the three roles run in one process and pass jobs over
//! in-process channels, fed from an inbox folder so that submissions survive a restart.

pub mod amqp;
pub mod memory;

use crate::Result;

/// The queues of one deployment. A prefix keeps several deployments (or tests) apart on
/// one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    Targets,
    Snapshot,
    Timestamp,
    DeadLetter,
}

impl Queue {
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}tuf.{}", self.stage())
    }

    /// The exchange that feeds this queue (and nothing else): `tuf.to-targets`.
    pub fn exchange(self, prefix: &str) -> String {
        format!("{prefix}tuf.to-{}", self.stage())
    }

    fn stage(self) -> &'static str {
        match self {
            Queue::Targets => "targets",
            Queue::Snapshot => "snapshot",
            Queue::Timestamp => "timestamp",
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
    pub body: Vec<u8>,
    pub redelivered: bool,
    handle: Handle,
}

#[derive(Debug)]
enum Handle {
    Amqp(lapin::Acker),
    Memory(Option<std::path::PathBuf>),
}

/// A connection for one role: consumes its queue, publishes downstream.
pub enum Endpoint {
    Amqp(Box<amqp::AmqpEndpoint>),
    Memory(memory::MemoryEndpoint),
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
            Endpoint::Memory(e) => e.next_batch(max).await,
        }
    }

    /// Publishes persistently and returns once the broker has confirmed it.
    pub async fn publish(&self, queue: Queue, body: &[u8]) -> Result<()> {
        match self {
            Endpoint::Amqp(e) => e.publish(queue, body, None).await,
            Endpoint::Memory(e) => e.publish(queue, body),
        }
    }

    /// Moves a job that cannot be processed to the dead-letter queue, with the reason.
    pub async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        match self {
            Endpoint::Amqp(e) => {
                e.publish(Queue::DeadLetter, &delivery.body, Some(reason))
                    .await
            }
            Endpoint::Memory(e) => e.dead_letter(delivery, reason),
        }
    }

    /// Lets go of the queue; unacknowledged jobs go back to it.
    pub async fn close(self) {
        match self {
            Endpoint::Amqp(e) => e.close().await,
            Endpoint::Memory(e) => drop(e),
        }
    }

    /// Acknowledges a whole batch.
    pub async fn ack(&self, batch: &[Delivery]) -> Result<()> {
        match self {
            Endpoint::Amqp(e) => e.ack(batch).await,
            Endpoint::Memory(e) => e.ack(batch),
        }
    }
}
