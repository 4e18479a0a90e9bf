//! `tuf-bench`: measures the signing pipeline through the real broker and three signer
//! processes, and prints the figures. Not a test: it asserts nothing about time.
//!
//!   cargo build --release && target/release/tuf-bench --amqp amqp://guest:guest@127.0.0.1:5672/%2f

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{digest, SHA256, SHA512};
use clap::Parser;
use package_signing::broker::amqp::AmqpConfig;
use package_signing::broker::Publisher;
use package_signing::client::coverage::{Coverage, Expected};
use package_signing::client::submit::{Route, Sink};
use package_signing::jobs::{NewTarget, TargetHashes, TargetsJob};
use package_signing::keys::SigningKey;
use package_signing::repository::Layout;
use package_signing::role::Role;

/// Measures throughput, latency under load, per-add cost as the repository grows, and the
/// signers' peak memory.
#[derive(Parser)]
struct Args {
    /// RabbitMQ URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp: String,
    /// Number of hashed bins.
    #[arg(long, default_value_t = 2048)]
    bins: u32,
    /// Targets in the throughput run.
    #[arg(long, default_value_t = 10_000)]
    bulk: usize,
    /// Targets per job message in bulk runs.
    #[arg(long, default_value_t = 500)]
    job_size: usize,
    /// Single releases per second in the latency runs.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Seconds each latency run lasts.
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// Repository size for the second latency run (the first is after the bulk run).
    #[arg(long, default_value_t = 100_000)]
    large: usize,
    /// Bin count to change to at the end (`tuf-client bins --count`); 0 skips it. The
    /// default is twice --bins.
    #[arg(long)]
    rebin: Option<u32>,
    /// Work folder (a temporary one by default; it is deleted afterwards unless given).
    #[arg(long)]
    work: Option<PathBuf>,
}

struct Signers(Vec<(String, Child)>);

impl Drop for Signers {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Signers {
    fn peak_rss_mib(&self) -> Vec<(String, f64)> {
        self.0
            .iter()
            .map(|(role, c)| {
                let status =
                    std::fs::read_to_string(format!("/proc/{}/status", c.id())).unwrap_or_default();
                let kib: f64 = status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                (role.clone(), kib / 1024.0)
            })
            .collect()
    }
}

fn target(i: usize, tag: &str) -> NewTarget {
    let name = format!("vendor{}/pkg{i}/1.{tag}.{i}.0", i % 5000);
    NewTarget {
        hashes: TargetHashes {
            sha256: hex::encode(digest(&SHA256, name.as_bytes())),
            sha512: hex::encode(digest(&SHA512, name.as_bytes())),
        },
        length: 1000 + i as u64 % 9000,
        name,
    }
}

fn expected(targets: &[NewTarget]) -> Expected {
    targets
        .iter()
        .map(|t| (t.name.clone(), Some((t.length, t.hashes.sha256.clone()))))
        .collect()
}

/// The root init wrote beside the keys, in the work folder beside the repository.
fn pin(layout: &Layout) -> package_signing::pin::Pin {
    let work = layout
        .dir
        .parent()
        .expect("the repository is in the work folder");
    package_signing::pin::Pin::new(work.join("keys").join(package_signing::pin::PIN_FILE))
}

async fn wait_covered(layout: &Layout, mut pending: Expected) {
    let mut coverage = Coverage::new(layout.clone(), pin(layout));
    let mut last = Vec::new();
    while !pending.is_empty() {
        let now = std::fs::read(layout.timestamp()).unwrap_or_default();
        if now != last {
            let _ = coverage.check(&mut pending);
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn bulk(sink: &Sink, layout: &Layout, targets: &[NewTarget], job_size: usize) -> Duration {
    let start = Instant::now();
    for chunk in targets.chunks(job_size) {
        let job = TargetsJob {
            add: chunk.to_vec(),
            ..Default::default()
        };
        sink.send(&job, 0).await.unwrap();
    }
    wait_covered(layout, expected(targets)).await;
    start.elapsed()
}

/// Publishes one release every 1/rate s for `secs`, and measures each one's time from
/// publish to the first timestamp.json that covers it.
async fn latency(sink: &Sink, layout: &Layout, rate: u32, secs: u64, tag: &str) -> Vec<f64> {
    let total = (rate as u64 * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut pending: Expected = HashMap::new();
    let mut coverage = Coverage::new(layout.clone(), pin(layout));
    let mut latencies = Vec::with_capacity(total);
    let mut next_send = Instant::now();
    let mut i = 0;
    let mut last_ts = Vec::new();
    while latencies.len() < total {
        if i < total && Instant::now() >= next_send {
            let t = target(i, tag);
            let job = TargetsJob {
                add: vec![t.clone()],
                ..Default::default()
            };
            sent.insert(t.name.clone(), Instant::now());
            pending.insert(t.name.clone(), Some((t.length, t.hashes.sha256.clone())));
            sink.send(&job, 0).await.unwrap();
            next_send += interval;
            i += 1;
        }
        let ts = std::fs::read(layout.timestamp()).unwrap_or_default();
        if ts != last_ts && !pending.is_empty() {
            let before: Vec<String> = pending.keys().cloned().collect();
            let _ = coverage.check(&mut pending);
            let now = Instant::now();
            for name in before.into_iter().filter(|n| !pending.contains_key(n)) {
                latencies.push((now - sent[&name]).as_secs_f64() * 1000.0);
            }
            last_ts = ts;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    latencies
}

/// Waits until the three signers have logged that they consume their queues.
fn wait_ready(work: &Path) {
    let start = Instant::now();
    for role in [
        Role::Targets.name(),
        Role::Snapshot.name(),
        Role::Timestamp.name(),
    ] {
        while !std::fs::read_to_string(work.join(format!("{role}.log")))
            .unwrap_or_default()
            .contains("signer ready")
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the {role} signer did not start; see its log in the work folder"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn spawn(
    exe_dir: &Path,
    repo: &Path,
    keys: &Path,
    amqp: &str,
    prefix: &str,
    work: &Path,
) -> Signers {
    Signers(
        [
            Role::Targets.name(),
            Role::Snapshot.name(),
            Role::Timestamp.name(),
        ]
        .iter()
        .map(|role| {
            let child = Command::new(exe_dir.join("tuf-signer"))
                .args(["run", "--role", role, "--repo"])
                .arg(repo)
                .arg("--key")
                .arg(keys.join(format!("{role}.pem")))
                .args(["--amqp", amqp, "--queue-prefix", prefix])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work.join(format!("{role}.log"))).unwrap())
                .spawn()
                .expect("tuf-signer next to tuf-bench (cargo build --release)");
            (role.to_string(), child)
        })
        .collect(),
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let tmp = tempfile_dir();
    let work = args.work.clone().unwrap_or_else(|| tmp.clone());
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let (repo, keys) = (work.join("repo"), work.join("keys"));
    let prefix = format!("bench.{}.", std::process::id());
    println!(
        "tuf-bench: {} bins, work folder {}",
        args.bins,
        work.display()
    );
    init(&exe_dir, &repo, &keys, args.bins);
    let signers = spawn(&exe_dir, &repo, &keys, &args.amqp, &prefix, &work);
    let bench = Bench {
        layout: Layout::new(&repo),
        sink: connect(&args.amqp, &prefix, &keys).await,
    };
    wait_ready(&work);
    let filled = bench.throughput(&args).await;
    let small_p50 = bench.latency_at(&args, filled, "small", None).await;
    if args.large > filled {
        bench.grow(&args, filled).await;
        bench
            .latency_at(&args, args.large, "large", Some((small_p50, filled)))
            .await;
    }
    let rebin = args.rebin.unwrap_or(args.bins * 2);
    if rebin > 0 {
        bench.rebin(args.bins, rebin).await;
    }
    for (role, mib) in signers.peak_rss_mib() {
        println!("peak RSS {role:<10}                     {mib:>10.1} MiB");
    }
    drop(signers);
    if args.work.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

/// `tuf-signer init` of the repository, timed.
fn init(exe_dir: &Path, repo: &Path, keys: &Path, bins: u32) {
    let t = Instant::now();
    let status = Command::new(exe_dir.join("tuf-signer"))
        .args(["init", "--repo"])
        .arg(repo)
        .arg("--keys")
        .arg(keys)
        .args(["--bins", &bins.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "init failed");
    println!(
        "init ({bins} bins)                         {:>10.2} s",
        t.elapsed().as_secs_f64()
    );
}

/// Where jobs go: the broker, every job signed with the submitter key, as the packaging
/// pipeline sends them.
async fn connect(amqp: &str, prefix: &str, keys: &Path) -> Sink {
    let publisher = Publisher::connect(&AmqpConfig {
        prefix: prefix.to_string(),
        ..AmqpConfig::new(amqp.to_string())
    })
    .await
    .unwrap();
    Sink {
        route: Route::Broker(publisher),
        key: SigningKey::load(&keys.join("submitter.pem")).unwrap(),
    }
}

/// The repository under measurement and the way jobs reach its signers.
struct Bench {
    layout: Layout,
    sink: Sink,
}

impl Bench {
    /// Three runs on a fresh repository: the first fills it to `bulk`, the others add as
    /// many again (the figure printed is the median). Returns the targets it then holds.
    async fn throughput(&self, args: &Args) -> usize {
        let mut rates = Vec::new();
        for run in 0..3 {
            let targets: Vec<NewTarget> = (run * args.bulk..(run + 1) * args.bulk)
                .map(|i| target(i, "bulk"))
                .collect();
            let took = bulk(&self.sink, &self.layout, &targets, args.job_size).await;
            rates.push(args.bulk as f64 / took.as_secs_f64());
        }
        let runs: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "throughput: {} targets x 3, {} per job   {:>10.0} targets/s median (runs: {})",
            args.bulk,
            args.job_size,
            rates[1],
            runs.join(", ")
        );
        3 * args.bulk
    }

    /// Single releases at `--rate` for `--latency-secs` with the repository at `size`
    /// targets; with `baseline` (p50 and size of an earlier run), the per-add cost against
    /// it. Returns the p50.
    async fn latency_at(
        &self,
        args: &Args,
        size: usize,
        tag: &str,
        baseline: Option<(f64, usize)>,
    ) -> f64 {
        let l = latency(&self.sink, &self.layout, args.rate, args.latency_secs, tag).await;
        let p50 = pct(&l, 0.5);
        let versus = baseline
            .map(|(p50_before, at)| {
                format!("   (per-add cost {:.2}x of {at} targets)", p50 / p50_before)
            })
            .unwrap_or_default();
        println!(
            "latency at {size:>7} targets, {} releases/s   p50 {p50:>7.1} ms   p99 {:>7.1} ms{versus}",
            args.rate,
            pct(&l, 0.99)
        );
        p50
    }

    /// Adds targets from `filled` up to `--large` in bulk jobs, timed.
    async fn grow(&self, args: &Args, filled: usize) {
        let more: Vec<NewTarget> = (filled..args.large).map(|i| target(i, "bulk")).collect();
        let took = bulk(&self.sink, &self.layout, &more, args.job_size).await;
        println!(
            "grow to {} targets                    {:>10.0} targets/s ({:.2} s)",
            args.large,
            more.len() as f64 / took.as_secs_f64(),
            took.as_secs_f64()
        );
    }

    /// Changes the bin count from `bins` to `rebin` (`tuf-client bins`), timed until the
    /// new bins are published; prints the snapshot's size then.
    async fn rebin(&self, bins: u32, rebin: u32) {
        let layout = &self.layout;
        let held = package_signing::client::status::read(layout, &pin(layout))
            .unwrap()
            .targets;
        let t = Instant::now();
        let job = TargetsJob {
            bins: Some(rebin),
            ..Default::default()
        };
        self.sink.send(&job, 0).await.unwrap();
        while !package_signing::client::status::published_bins(layout)
            .is_ok_and(|n| n == rebin as usize)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let newest = layout.newest(Role::Snapshot).unwrap().unwrap();
        let snapshot_bytes = std::fs::read(layout.versioned(Role::Snapshot.name(), newest))
            .unwrap()
            .len();
        println!(
            "bins {bins} -> {rebin} at {held} targets          {:>10.2} s (snapshot now {} kB, old bins still listed)",
            t.elapsed().as_secs_f64(),
            snapshot_bytes / 1000
        );
    }
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tuf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
