//! RabbitMQ through lapin.

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use lapin::{Confirmation, ExchangeKind};

use super::backoff::Backoff;
use super::{Delivery, Handle, Queue};
use crate::{Error, Result};

/// The crate's error for what the AMQP client reported while doing `context`: whether the
/// broker is out of reach (worth waiting out) or refused us is decided here, where the
/// client's error kinds are known, so that nothing above this module sees them.
fn broker_error(context: impl Into<String>) -> impl FnOnce(lapin::Error) -> Error {
    use lapin::protocol::{AMQPErrorKind, AMQPHardError};
    let context = context.into();
    move |e| {
        let unreachable = match e.kind() {
            lapin::ErrorKind::IOError(_)
            | lapin::ErrorKind::InvalidConnectionState(_)
            | lapin::ErrorKind::InvalidChannelState(..)
            | lapin::ErrorKind::MissingHeartbeatError => true,
            lapin::ErrorKind::ProtocolError(e) => matches!(
                e.kind(),
                AMQPErrorKind::Hard(
                    AMQPHardError::CONNECTIONFORCED
                        | AMQPHardError::INTERNALERROR
                        | AMQPHardError::RESOURCEERROR
                )
            ),
            _ => false,
        };
        Error::Broker {
            context,
            reason: e.to_string(),
            unreachable,
        }
    }
}

/// How long a batch waits for the next job of a burst already arriving. Publishers send a
/// burst one confirmed message at a time, a few milliseconds apart; waiting that long folds
/// the burst into one batch (each touched bin then costs one write, not one per job) at the
/// price of at most this much latency.
const BURST_GAP: Duration = Duration::from_millis(10);

/// How long one node may take to accept a connection before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// For how long after connecting a job the broker returns unrouted is published again (see
/// [`Unrouted`]): a broker just restarted may take that long to bind its queues again.
const ROUTING_GRACE: Duration = Duration::from_secs(5);

/// Where the broker is and which queues are ours.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// One URL, or several separated by commas: the nodes of a cluster, tried in turn.
    pub url: String,
    /// Put before every queue and exchange name (`--queue-prefix`), so that several repositories
    /// can share one broker.
    pub prefix: String,
    /// How long a command waits for a broker out of reach (see [`super::Waiting`]).
    pub patience: Duration,
    /// The kind of queue declared (where the agent declares them).
    pub queue_type: QueueType,
    /// For `amqps://` URLs: the PEM file of the certificate authority that signed the
    /// broker's certificate (a broker on another host, with a certificate of its own CA);
    /// without it, the system's trusted authorities.
    pub ca_file: Option<std::path::PathBuf>,
}

impl AmqpConfig {
    /// The default patience of commands: long enough for a broker restart or a cluster
    /// node's failover, short enough that a wrong address is said the same morning.
    pub const PATIENCE: Duration = Duration::from_secs(300);

    /// A broker at `url` with no queue prefix and the default patience.
    pub fn new(url: impl Into<String>) -> AmqpConfig {
        AmqpConfig {
            url: url.into(),
            prefix: String::new(),
            patience: AmqpConfig::PATIENCE,
            queue_type: QueueType::Classic,
            ca_file: None,
        }
    }

    /// The URLs to try, in order.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.url.split(',').map(str::trim).filter(|u| !u.is_empty())
    }

    /// The URLs with any password replaced, for logs and errors.
    pub fn redacted_url(&self) -> String {
        self.urls().map(Self::redact).collect::<Vec<_>>().join(",")
    }

    /// Connects to the first node that answers, trying each URL in turn; the error is the
    /// last node's.
    async fn connect(&self) -> Result<Connection> {
        let mut last = None;
        let tls = match &self.ca_file {
            Some(file) => lapin::tcp::OwnedTLSConfig {
                identity: None,
                cert_chain: Some(
                    std::fs::read_to_string(file)
                        .map_err(Error::io("cannot read the broker's CA file", file))?,
                ),
            },
            None => lapin::tcp::OwnedTLSConfig::default(),
        };
        let runtime = lapin::runtime::default_runtime()
            .map_err(broker_error("no runtime to connect to the broker with"))?;
        for url in self.urls() {
            // A URL that does not parse will never connect: said at once, not waited out.
            if url.parse::<lapin::uri::AMQPUri>().is_err() {
                return Err(Error::Usage(format!(
                    "{}: not an AMQP URL; write amqp://USER@HOST:PORT/VHOST",
                    Self::redact(url)
                )));
            }
            // A node whose host is gone swallows the connection attempt: it is given up
            // after CONNECT_TIMEOUT, so that the next node is tried.
            let attempt = tokio::time::timeout(
                CONNECT_TIMEOUT,
                Connection::connect_with_config(
                    url,
                    ConnectionProperties::default(),
                    tls.clone(),
                    runtime.clone(),
                ),
            )
            .await
            .unwrap_or_else(|_| {
                Err(lapin::Error::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                )))
            });
            match attempt {
                Ok(connection) => return Ok(connection),
                Err(e) => {
                    tracing::debug!(broker = %Self::redact(url), error = %e, "broker node out of reach");
                    last = Some(broker_error(format!(
                        "cannot connect to {}",
                        Self::redact(url)
                    ))(e));
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Usage("no AMQP URL given".into())))
    }

    /// `url` with any password replaced; a URL that does not parse (and might hold a password
    /// where we cannot find it) is not shown at all.
    pub fn redact(url: &str) -> String {
        match url::Url::parse(url) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                u.to_string()
            }
            Err(_) => "<unparseable AMQP URL>".into(),
        }
    }
}

/// A connection and channel to RabbitMQ for one agent: consumes its queue (if it has one)
/// and publishes with confirms.
pub struct AmqpEndpoint {
    config: AmqpConfig,
    connection: Connection,
    channel: Channel,
    consumer: Option<Consumer>,
    /// The queue consumed, named in what this endpoint dead-letters.
    consumes: Option<Queue>,
    /// Deliveries taken from the consumer and not yet handed out (see `next_batch`).
    pending: Vec<Delivery>,
    /// When the connection was made and the queues provisioned (see [`Unrouted`]).
    connected_at: Instant,
}

/// The header of a dead letter that says why it was refused.
const REASON_HEADER: &str = "x-rejection-reason";
/// The header of a dead letter that names the queue it was refused from (`targets`...).
const FROM_HEADER: &str = "x-dead-letter-from";

/// A job in the dead-letter queue, taken and held (unacknowledged) until it is replayed or
/// dropped; let go (the connection closed), it stays in the queue.
///
/// Its headers are whatever the publisher wrote: any broker user that may publish to the
/// dead-letter exchange (every signer's) can write any reason and any queue name. They are
/// kept as text to show (escaped: see [`crate::client::dead_letters::printable`]), never to
/// decide where the letter goes: [`AmqpEndpoint::replay`] is told the queue, which
/// `tuf-client dead-letters` decides from the body.
pub struct DeadLetter {
    /// The job's bytes, as published.
    pub body: Vec<u8>,
    /// `x-rejection-reason` as written (empty when absent).
    pub reason: String,
    /// `x-dead-letter-from` as written: the stage it says refused the job; `None` when it
    /// does not say.
    pub from: Option<String>,
    acker: lapin::Acker,
}

impl DeadLetter {
    fn from_delivery(d: lapin::message::Delivery) -> DeadLetter {
        let header = |name: &str| -> Option<String> {
            match d.properties.headers().as_ref()?.inner().get(name)? {
                AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into()),
                other => Some(format!("{other:?}")),
            }
        };
        DeadLetter {
            reason: header(REASON_HEADER).unwrap_or_default(),
            from: header(FROM_HEADER),
            body: d.data,
            acker: d.acker,
        }
    }
}

/// Which kind of RabbitMQ queue holds the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum QueueType {
    /// One node's queue (mirrored on none): enough on a single broker.
    #[default]
    Classic,
    /// Replicated over a cluster's nodes by Raft: jobs survive the loss of a minority of
    /// nodes. For a RabbitMQ cluster (3 nodes or more).
    Quorum,
}

/// The arguments every declaration of a queue uses; RabbitMQ refuses a redeclaration with
/// different ones, so there is exactly one place that says what they are.
fn queue_arguments(queue: Queue, config: &AmqpConfig) -> FieldTable {
    let mut args = FieldTable::default();
    if config.queue_type == QueueType::Quorum {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from("quorum")),
        );
    }
    if queue == Queue::DeadLetter {
        return args;
    }
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from("")),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(LongString::from(Queue::DeadLetter.name(&config.prefix))),
    );
    args
}

impl AmqpEndpoint {
    /// Connects, enables confirms, declares the queues and (when `consume` is given) starts
    /// consuming with `prefetch` unacknowledged jobs at most.
    pub async fn connect(
        config: &AmqpConfig,
        consume: Option<Queue>,
        prefetch: u16,
    ) -> Result<AmqpEndpoint> {
        let connection = config.connect().await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(broker_error("cannot open a channel"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker_error("cannot enable publisher confirms"))?;
        provision(&connection, &channel, config, &Queue::used_by(consume)).await?;
        let consumer = match consume {
            Some(queue) => {
                channel
                    .basic_qos(prefetch, BasicQosOptions::default())
                    .await
                    .map_err(broker_error("cannot set prefetch"))?;
                let name = queue.name(&config.prefix);
                Some(
                    channel
                        .basic_consume(
                            ShortString::from(name.as_str()),
                            ShortString::from(format!("{name}.{}", std::process::id())),
                            BasicConsumeOptions::default(),
                            FieldTable::default(),
                        )
                        .await
                        .map_err(broker_error(format!("cannot consume {name}")))?,
                )
            }
            None => None,
        };
        Ok(AmqpEndpoint {
            config: config.clone(),
            connection,
            channel,
            consumer,
            consumes: consume,
            pending: Vec::new(),
            connected_at: Instant::now(),
        })
    }

    /// Cancellation-safe: the worker races this against timers, and a delivery already
    /// taken from the consumer must not vanish with a dropped future (a later `multiple` ack
    /// would acknowledge it unprocessed). Deliveries wait in `self.pending` until returned.
    pub(super) async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>> {
        let consumer = self.consumer.as_mut().expect("a consuming endpoint");
        if self.pending.is_empty() {
            let first = consumer
                .next()
                .await
                .ok_or_else(|| Error::BrokerRefused("the broker cancelled our consumer".into()))?
                .map_err(broker_error("delivery failed"))?;
            self.pending.push(to_delivery(first));
        }
        // Take what is already here, then what of a burst is still landing.
        while self.pending.len() < max {
            let next = match consumer.next().now_or_never() {
                Some(next) => next,
                None => match tokio::time::timeout(BURST_GAP, consumer.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            match next {
                Some(d) => self
                    .pending
                    .push(to_delivery(d.map_err(broker_error("delivery failed"))?)),
                None => break,
            }
        }
        Ok(std::mem::take(&mut self.pending))
    }

    pub(super) async fn publish(
        &self,
        queue: Queue,
        body: &[u8],
        reason: Option<&str>,
    ) -> Result<()> {
        let mut unrouted = Unrouted::new(self.connected_at);
        loop {
            let confirm = self.publish_once(queue, body, reason).await?;
            if let Confirmation::Ack(Some(_)) = confirm {
                if let Some(delay) = unrouted.retry_in(Instant::now()) {
                    tracing::info!(queue = %queue.name(&self.config.prefix),
                        retry_in_ms = delay.as_millis() as u64,
                        "the broker returned the job unrouted just after we connected (a broker \
                         just restarted may declare and bind its queues again only a moment \
                         after it accepts connections): publishing it again");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return self.confirmed(queue, confirm);
        }
    }

    /// Publishes `body` once, mandatory and persistent, and waits for the broker's confirm.
    async fn publish_once(
        &self,
        queue: Queue,
        body: &[u8],
        reason: Option<&str>,
    ) -> Result<Confirmation> {
        let name = queue.name(&self.config.prefix);
        let exchange = queue.exchange(&self.config.prefix);
        self.channel
            .basic_publish(
                ShortString::from(exchange.as_str()),
                ShortString::from(name.as_str()),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                self.properties(reason),
            )
            .await
            .map_err(|e| self.refusal_or(e, format!("cannot publish to {exchange}")))?
            .await
            .map_err(|e| {
                self.refusal_or(
                    e,
                    format!(
                        "no confirm from {exchange} (if access is refused, this agent's broker \
                         user may not send jobs to {name})"
                    ),
                )
            })
    }

    /// A persistent JSON message; a dead letter's also says why it was refused (`reason`),
    /// and by which stage, when this endpoint consumes one.
    fn properties(&self, reason: Option<&str>) -> BasicProperties {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"));
        let Some(reason) = reason else {
            return properties;
        };
        let mut headers = FieldTable::default();
        headers.insert(
            REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason)),
        );
        if let Some(from) = self.consumes {
            headers.insert(
                FROM_HEADER.into(),
                AMQPValue::LongString(LongString::from(from.stage())),
            );
        }
        properties.with_headers(headers)
    }

    /// What the broker's answer to a publish to `queue` means: stored, or why not.
    fn confirmed(&self, queue: Queue, confirm: Confirmation) -> Result<()> {
        let name = queue.name(&self.config.prefix);
        let exchange = queue.exchange(&self.config.prefix);
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(Error::BrokerRefused(format!(
                "{exchange} routes to no {name} queue, so the job was returned; load the broker \
                 definitions (nix/rabbitmq/definitions.json: queues, exchanges, bindings), or \
                 start the signers once with a broker user that may declare them"
            ))),
            Confirmation::Nack(_) => Err(Error::BrokerBusy(format!(
                "the broker could not store a job for {name} this time (nacked)"
            ))),
            Confirmation::NotRequested => {
                Err(Error::BrokerRefused("publisher confirms are off".into()))
            }
        }
    }

    /// Takes every job in the dead-letter queue, unacknowledged (they stay in the queue
    /// unless [`AmqpEndpoint::settle`]d): at most `max`.
    pub async fn take_dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>> {
        let name = Queue::DeadLetter.name(&self.config.prefix);
        let mut letters = Vec::new();
        while letters.len() < max {
            let got = self
                .channel
                .basic_get(
                    ShortString::from(name.as_str()),
                    lapin::options::BasicGetOptions::default(),
                )
                .await
                .map_err(|e| {
                    self.refusal_or(
                        e,
                        format!(
                            "cannot read {name} (this broker user may not: use one that may \
                             consume the dead-letter queue, an operator's)"
                        ),
                    )
                })?;
            match got {
                Some(message) => letters.push(DeadLetter::from_delivery(message.delivery)),
                None => break,
            }
        }
        Ok(letters)
    }

    /// Removes a dead letter from its queue, for good.
    pub async fn settle(&self, letter: &DeadLetter) -> Result<()> {
        letter
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(broker_error("cannot acknowledge a dead letter"))
    }

    /// Publishes a dead letter's job, without its headers, to the exchange of `to`, confirmed.
    /// The caller decides `to` from the body, never from the letter's headers (see
    /// [`DeadLetter`]); the dead-letter queue itself is no stage and is refused.
    pub async fn replay(&self, letter: &DeadLetter, to: Queue) -> Result<()> {
        if to == Queue::DeadLetter {
            return Err(Error::Internal(
                "a dead letter cannot be replayed into the dead-letter queue".into(),
            ));
        }
        self.publish(to, &letter.body, None).await
    }

    /// A channel closed under a connection that is still up was closed by the broker
    /// refusing something (access, a missing exchange): no retry helps, so it is said as a
    /// refusal; anything else is the broker error it is.
    fn refusal_or(&self, e: lapin::Error, context: String) -> Error {
        let channel_closed = matches!(e.kind(), lapin::ErrorKind::InvalidChannelState(..));
        if channel_closed && self.connection.status().connected() {
            return Error::BrokerRefused(format!("{context}: {e}"));
        }
        broker_error(context)(e)
    }

    pub(super) async fn ack(&self, batch: &[Delivery]) -> Result<()> {
        if let Some(Delivery {
            handle: Handle::Amqp(acker),
            ..
        }) = batch.last()
        {
            acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .map_err(broker_error("cannot acknowledge"))?;
        }
        Ok(())
    }

    /// Closes the channel and connection: the broker puts every unacknowledged job back in
    /// its queue, in its place.
    pub async fn close(self) {
        let _ = self.channel.close(200, "closing".into()).await;
        let _ = self.connection.close(200, "closing".into()).await;
    }
}

/// Whether to publish again a job the broker returned as routed to no queue. Returned, it
/// was not stored, so publishing it again cannot make two. Just after a connection is made
/// that is worth a few tries: a broker restarted after a crash may accept connections a
/// moment before its queues are declared and bound again. On a connection that has been up
/// for [`ROUTING_GRACE`] no queue is coming: the return is final (the broker lacks the queue
/// or its binding, which an operator must mend).
struct Unrouted {
    connected_at: Instant,
    backoff: Backoff,
}

impl Unrouted {
    fn new(connected_at: Instant) -> Unrouted {
        Unrouted {
            connected_at,
            backoff: Backoff::default(),
        }
    }

    /// How long to wait before publishing again at `now`, or `None`: the return is final.
    fn retry_in(&mut self, now: Instant) -> Option<Duration> {
        let left = (self.connected_at + ROUTING_GRACE).checked_duration_since(now)?;
        (!left.is_zero()).then(|| self.backoff.next_delay().min(left))
    }
}

/// `(messages, consumers)` of a queue, without declaring it.
impl AmqpEndpoint {
    /// Messages ready in the queue this endpoint consumes, as the broker counts them (taken
    /// but unacknowledged ones not included); `None` when it consumes none or the broker
    /// does not answer. A passive look on a channel of its own: it needs no permission, and
    /// a failed look closes only that channel.
    pub async fn waiting(&self) -> Option<u32> {
        let queue = self.consumes?;
        let ask = async {
            let channel = self.connection.create_channel().await.ok()?;
            let found = passive_declare(&channel, &queue.name(&self.config.prefix)).await;
            let _ = channel.close(200, "done".into()).await;
            found.ok().map(|(messages, _)| messages)
        };
        // Never holds up the signer's loop: no answer in time is no figure.
        tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .ok()
            .flatten()
    }
}

async fn passive_declare(channel: &Channel, name: &str) -> lapin::Result<(u32, u32)> {
    let q = channel
        .queue_declare(
            ShortString::from(name),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((q.message_count(), q.consumer_count()))
}

/// Messages waiting in and consumers attached to each queue, `None` for a queue that does
/// not exist yet. Declares nothing (each look is passive, on its own channel, because the
/// broker closes a channel that asks after a missing queue).
///
/// A look that gets no answer within [`LOOK_TIMEOUT`] (seen once: the client dropping its
/// socket mid-look and the call left waiting) is made again on a new connection, once.
pub async fn inspect_queues(
    config: &AmqpConfig,
    queues: &[Queue],
) -> Result<Vec<(Queue, Option<(u32, u32)>)>> {
    for _ in 0..2 {
        let connection = super::Waiting::retry(config, || config.connect()).await?;
        match tokio::time::timeout(LOOK_TIMEOUT, look(connection, config, queues)).await {
            Ok(found) => return found,
            Err(_) => {
                tracing::warn!("the broker did not answer a look at its queues; asking again");
            }
        }
    }
    Err(Error::Broker {
        context: "look at the queues".into(),
        reason: format!("no answer in {} s, twice", LOOK_TIMEOUT.as_secs()),
        unreachable: true,
    })
}

/// How long a passive look at queues may take before it is given up.
pub const LOOK_TIMEOUT: Duration = Duration::from_secs(15);

async fn look(
    connection: Connection,
    config: &AmqpConfig,
    queues: &[Queue],
) -> Result<Vec<(Queue, Option<(u32, u32)>)>> {
    let mut out = Vec::with_capacity(queues.len());
    for &queue in queues {
        let channel = connection
            .create_channel()
            .await
            .map_err(broker_error("cannot open a channel"))?;
        let name = queue.name(&config.prefix);
        let found = passive_declare(&channel, &name).await.ok();
        out.push((queue, found));
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(out)
}

fn to_delivery(d: lapin::message::Delivery) -> Delivery {
    Delivery {
        body: d.data,
        redelivered: d.redelivered,
        handle: Handle::Amqp(d.acker),
    }
}

/// Makes sure the queues this agent uses and their exchanges exist. Where the broker was
/// provisioned (the rabbitmq image loads `nix/rabbitmq/definitions.json`), they all exist and
/// the agent, which then holds no configure permission, declares nothing: passive looks need
/// no permission. Otherwise (a development broker, the `guest` user, a `--queue-prefix`) it
/// declares each queue, its exchange and the binding between them; all three are idempotent.
async fn provision(
    connection: &Connection,
    channel: &Channel,
    config: &AmqpConfig,
    queues: &[Queue],
) -> Result<()> {
    let prefix = config.prefix.as_str();
    if all_exist(connection, prefix, queues).await {
        return Ok(());
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let hint = "if it exists with other arguments, delete it or use another --queue-prefix; if \
                access is refused, load the broker definitions (nix/rabbitmq/definitions.json) \
                or give this agent's broker user configure permission on it";
    let cannot = |what: String| broker_error(format!("cannot {what} ({hint})"));
    for &queue in queues {
        let name = queue.name(prefix);
        let exchange = queue.exchange(prefix);
        let arguments = queue_arguments(queue, config);
        channel
            .queue_declare(ShortString::from(name.as_str()), durable, arguments)
            .await
            .map_err(cannot(format!("declare queue {name}")))?;
        channel
            .exchange_declare(
                ShortString::from(exchange.as_str()),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(cannot(format!("declare exchange {exchange}")))?;
        channel
            .queue_bind(
                ShortString::from(name.as_str()),
                ShortString::from(exchange.as_str()),
                ShortString::from(name.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(cannot(format!("bind {name} to {exchange}")))?;
    }
    Ok(())
}

/// Whether every queue and exchange named exists, looked at passively on a channel of its
/// own (the broker closes a channel that asks after something missing).
async fn all_exist(connection: &Connection, prefix: &str, queues: &[Queue]) -> bool {
    let Ok(probe) = connection.create_channel().await else {
        return false;
    };
    let passive_exchange = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    for &queue in queues {
        let exchange = queue.exchange(prefix);
        let found = passive_declare(&probe, &queue.name(prefix)).await.is_ok()
            && probe
                .exchange_declare(
                    ShortString::from(exchange.as_str()),
                    ExchangeKind::Direct,
                    passive_exchange,
                    FieldTable::default(),
                )
                .await
                .is_ok();
        if !found {
            return false;
        }
    }
    let _ = probe.close(200, "looked".into()).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job returned unrouted just after connecting is published again, within the grace
    /// and with growing waits; at the end of the grace, or on a connection up for longer,
    /// the return is final.
    #[test]
    fn an_unrouted_job_is_retried_only_just_after_connecting() {
        let connected = Instant::now();
        let mut unrouted = Unrouted::new(connected);
        let first = unrouted
            .retry_in(connected)
            .expect("retried at once after connecting");
        assert!(first <= Backoff::FIRST, "{first:?}");
        let second = unrouted
            .retry_in(connected + first)
            .expect("still within the grace");
        assert!(second <= 2 * Backoff::FIRST, "{second:?}");
        let late = connected + ROUTING_GRACE.saturating_sub(Duration::from_millis(100));
        let mut waits = Unrouted::new(connected);
        for _ in 0..10 {
            waits.backoff.next_delay();
        }
        let last = waits.retry_in(late).expect("within the grace");
        assert!(
            last <= Duration::from_millis(100),
            "never past the grace: {last:?}"
        );
        assert_eq!(unrouted.retry_in(connected + ROUTING_GRACE), None);
        let long_up = Unrouted::new(connected).retry_in(connected + Duration::from_secs(60));
        assert_eq!(
            long_up, None,
            "final at once on a connection up for a while"
        );
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            AmqpConfig::redact("amqp://tuf:s3cret@broker:5672/%2f"),
            "amqp://tuf:***@broker:5672/%2f"
        );
        // Unparseable (a space in the host): shown as nothing of itself.
        assert_eq!(
            AmqpConfig::redact("amqp://tuf:s3cret@bro ker/%2f"),
            "<unparseable AMQP URL>"
        );
    }
}
