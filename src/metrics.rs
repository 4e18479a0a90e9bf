//! Prometheus metrics of a signer process, served on `tuf-signer run --metrics-listen ADDR`
//! (off by default; `GET /metrics`, the text exposition format written by the
//! `prometheus-client` crate). Every family is labelled by `role`, so that `run --all` (three
//! roles in one process) is read as three signers. The families (see docs/monitoring.md for
//! the alert rules built on them):
//!
//! | family | what |
//! |---|---|
//! | `tuf_jobs_total{role,outcome}` | jobs taken off the queue: `applied`, `dead_lettered` (refused whole), `refused_in_part` |
//! | `tuf_batch_seconds{role}` | a batch from taken to written and handed on (histogram) |
//! | `tuf_batch_jobs{role}` | jobs in a batch: the queue depth the signer saw (histogram) |
//! | `tuf_queue_messages{role}` | jobs waiting in the role's queue, as the broker counts them (asked every 15 s) |
//! | `tuf_submission_seconds` | a submission from its issue (signed by the packaging pipeline) to its bins written: queue wait and signing (histogram; the targets signer) |
//! | `tuf_metadata_version{role}` | the version of the role's current file (`bins`: the newest bin) |
//! | `tuf_metadata_expires_in_seconds{role}` | seconds until it expires (`bins`: the first to expire), at scrape time |
//! | `tuf_last_publish_timestamp_seconds{role}` | when this signer last wrote a file |
//! | `tuf_broker_connected{role}` | 1 while connected to the broker (or using the inbox) |
//! | `tuf_signer_active{role}` | 1 once this replica has taken a batch since it connected, 0 while it has not: a hot standby (the broker gives a queue to one consumer at a time) |
//!
//! `tuf-client serve --metrics-listen ADDR` serves, from the same registry:
//!
//! | family | what |
//! |---|---|
//! | `tuf_served_requests_total{status}` | requests answered, by HTTP status |
//! | `tuf_served_bytes_total` | body bytes sent |
//! | `tuf_served_seconds` | a request from read to its last byte sent (histogram) |
//! | `tuf_metadata_version{role="timestamp"}`, `tuf_metadata_expires_in_seconds{role="timestamp"}` | the `timestamp.json` it serves: what clients see |
//!
//! Invariant: recording is lock-free but for the expiry table (one short lock a batch), and
//! nothing here can fail a job: metrics are observed, never waited on.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

use crate::{Error, Result};

/// What became of a job.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// Applied (written, or found already there).
    applied,
    /// Refused whole: sent to the dead-letter queue.
    dead_lettered,
    /// Applied but for some names, which went to the dead-letter queue with the job.
    refused_in_part,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByRole {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByStatus {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByOutcome {
    role: String,
    outcome: Outcome,
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn jobs_histogram() -> Histogram {
    // 1 to 1,024 jobs.
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// The process's metrics.
struct Metrics {
    registry: Registry,
    jobs: Family<ByOutcome, Counter>,
    batch_seconds: Family<ByRole, Histogram, fn() -> Histogram>,
    batch_jobs: Family<ByRole, Histogram, fn() -> Histogram>,
    version: Family<ByRole, Gauge>,
    expires_in: Family<ByRole, Gauge<f64, std::sync::atomic::AtomicU64>>,
    last_publish: Family<ByRole, Gauge<f64, std::sync::atomic::AtomicU64>>,
    connected: Family<ByRole, Gauge>,
    active: Family<ByRole, Gauge>,
    submission_seconds: Histogram,
    waiting: Family<ByRole, Gauge>,
    served: Family<ByStatus, Counter>,
    served_bytes: Counter,
    served_seconds: Histogram,
    /// When each role's current metadata expires: `expires_in` is worked out from it at
    /// scrape time.
    expiries: Mutex<BTreeMap<String, jiff::Timestamp>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let jobs = registered(
        &mut registry,
        "tuf_jobs",
        "Jobs taken off the role's queue, by outcome",
        Family::default(),
    );
    let batch_seconds = registered(
        &mut registry,
        "tuf_batch_seconds",
        "Seconds from a batch taken off the queue to its files written and handed on",
        Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
    );
    let batch_jobs = registered(
        &mut registry,
        "tuf_batch_jobs",
        "Jobs in a batch: the queue depth the signer saw",
        Family::new_with_constructor(jobs_histogram as fn() -> Histogram),
    );
    let version = registered(
        &mut registry,
        "tuf_metadata_version",
        "Version of the role's current metadata (bins: the newest bin)",
        Family::default(),
    );
    let expires_in = registered(
        &mut registry,
        "tuf_metadata_expires_in_seconds",
        "Seconds until the role's current metadata expires (bins: the first to expire)",
        Family::default(),
    );
    let last_publish = registered(
        &mut registry,
        "tuf_last_publish_timestamp_seconds",
        "Unix time this signer last wrote a file of the role",
        Family::default(),
    );
    let connected = registered(
        &mut registry,
        "tuf_broker_connected",
        "1 while the signer is connected to the broker (or reads its inbox)",
        Family::default(),
    );
    let active = registered(
        &mut registry,
        "tuf_signer_active",
        "1 once this replica has taken a batch since it connected; 0: a hot standby",
        Family::default(),
    );
    let waiting = registered(
        &mut registry,
        "tuf_queue_messages",
        "Jobs waiting in the role's queue, as the broker counts them (asked every 15 s)",
        Family::default(),
    );
    let submission_seconds = registered(
        &mut registry,
        "tuf_submission_seconds",
        "Seconds from a submission's issue (signed by the packaging pipeline) to its bins written",
        seconds_histogram(),
    );
    let served = registered(
        &mut registry,
        "tuf_served_requests",
        "Requests tuf-client serve answered, by HTTP status",
        Family::default(),
    );
    let served_bytes = registered(
        &mut registry,
        "tuf_served_bytes",
        "Body bytes tuf-client serve sent",
        Counter::default(),
    );
    let served_seconds = registered(
        &mut registry,
        "tuf_served_seconds",
        "Seconds from a request read to its last byte sent",
        seconds_histogram(),
    );
    Metrics {
        registry,
        submission_seconds,
        waiting,
        served,
        served_bytes,
        served_seconds,
        jobs,
        batch_seconds,
        batch_jobs,
        version,
        expires_in,
        last_publish,
        connected,
        active,
        expiries: Mutex::new(BTreeMap::new()),
    }
});

/// `metric`, registered in `registry` as `name` with `help`.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn by(role: &str) -> ByRole {
    ByRole {
        role: role.to_string(),
    }
}

/// `count` jobs of `role` ended as `outcome`.
pub fn jobs(role: &str, outcome: Outcome, count: usize) {
    METRICS
        .jobs
        .get_or_create(&ByOutcome {
            role: role.to_string(),
            outcome,
        })
        .inc_by(count as u64);
}

/// A batch of `jobs` jobs of `role` took `took`, and wrote `written` files.
pub fn batch(role: &str, jobs: usize, took: Duration, written: usize) {
    let m = &*METRICS;
    m.batch_seconds
        .get_or_create(&by(role))
        .observe(took.as_secs_f64());
    m.batch_jobs.get_or_create(&by(role)).observe(jobs as f64);
    m.active.get_or_create(&by(role)).set(1);
    if written > 0 {
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        m.last_publish.get_or_create(&by(role)).set(now);
    }
}

/// `role`'s current metadata (`targets`, `bins`, `snapshot`, `timestamp`) is at `version`
/// and expires at `expires`.
pub fn published(role: &str, version: u64, expires: jiff::Timestamp) {
    let m = &*METRICS;
    m.version
        .get_or_create(&by(role))
        .set(i64::try_from(version).unwrap_or(i64::MAX));
    if let Ok(mut expiries) = m.expiries.lock() {
        expiries.insert(role.to_string(), expires);
    }
}

/// `role`'s signer is connected to its broker (or inbox), or not; a new connection makes it
/// a standby until it takes a batch.
pub fn connected(role: &str, up: bool) {
    let m = &*METRICS;
    m.connected.get_or_create(&by(role)).set(i64::from(up));
    m.active.get_or_create(&by(role)).set(0);
}

/// `waiting` jobs wait in `role`'s queue, as the broker counts them.
pub fn waiting(role: &str, waiting: u32) {
    METRICS
        .waiting
        .get_or_create(&by(role))
        .set(i64::from(waiting));
}

/// A submission issued at `issued` has its bins written now (durably).
pub fn submission_written(issued: jiff::Timestamp) {
    let age = jiff::Timestamp::now().duration_since(issued).as_secs_f64();
    METRICS.submission_seconds.observe(age.max(0.0));
}

/// `tuf-client serve` answered a request with `status`, sending `bytes` of body in `took`.
pub fn served(status: u16, bytes: u64, took: Duration) {
    let m = &*METRICS;
    m.served.get_or_create(&ByStatus { status }).inc();
    m.served_bytes.inc_by(bytes);
    m.served_seconds.observe(took.as_secs_f64());
}

/// The text exposition of every family, `tuf_metadata_expires_in_seconds` as of now.
pub fn render() -> String {
    let m = &*METRICS;
    let now = jiff::Timestamp::now();
    if let Ok(expiries) = m.expiries.lock() {
        for (role, expires) in expiries.iter() {
            let left = expires.duration_since(now).as_secs_f64();
            m.expires_in.get_or_create(&by(role)).set(left);
        }
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &m.registry)
        .expect("writing to a String does not fail");
    text
}

/// Listens on `addr` (`--metrics-listen`) and serves [`render`] on `GET /metrics` there, in
/// a task of its own, until the process ends (every other path is 404). Fails at once when
/// the address cannot be bound; logs the one it listens on (with port 0, the one the system
/// gave).
pub async fn listen(addr: &str) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {addr} (--metrics-listen): {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("--metrics-listen {addr}: {e}")))?;
    tracing::info!(listen = %local, "serving metrics on http://{local}/metrics");
    tokio::spawn(serve(listener));
    Ok(())
}

/// Answers each connection to `listener`, one task each.
async fn serve(listener: tokio::net::TcpListener) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};

    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|request: hyper::Request<_>| async move {
                let response = if request.uri().path() == "/metrics" {
                    Response::builder()
                        .header(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )
                        .body(Full::new(Bytes::from(render())))
                } else {
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Full::new(Bytes::from_static(b"see /metrics\n")))
                };
                response
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_recorded_are_rendered() {
        jobs("unit-test-role", Outcome::applied, 3);
        batch("unit-test-role", 3, Duration::from_millis(12), 2);
        let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
        published("unit-test-role", 7, expires);
        let text = render();
        assert!(
            text.contains(r#"tuf_jobs_total{role="unit-test-role",outcome="applied"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tuf_metadata_version{role="unit-test-role"} 7"#),
            "{text}"
        );
        let left: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(r#"tuf_metadata_expires_in_seconds{role="unit-test-role"} "#)
            })
            .unwrap()
            .parse()
            .unwrap();
        assert!(left > 3500.0 && left <= 3600.0, "{left}");
    }
}
