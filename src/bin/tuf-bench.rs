//! `tuf-bench`: measures the signing pipeline through the real broker and three signer
//! processes, and prints the figures. Not a test: it asserts nothing about time.
//!
//!   cargo build --release && target/release/tuf-bench --amqp amqp://guest:guest@127.0.0.1:5672/%2f
//!
//! With `--scenario drupal|packagist` it runs a user's repository instead (issue 27): fill it
//! to the scenario's size, restart the signers there, a throughput run, then releases on the
//! scenario's schedule; then python-tuf doing the same work
//! (`tests/python/bench_python_tuf.py`) and the ratios. `--scale 0.01` for a quick run.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
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
use package_signing::ops::init::find_key;
use package_signing::progress::{Progress, Show};
use package_signing::repository::Layout;
use package_signing::role::{Role, SUBMITTER};

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
    /// A user's scenario instead of the default runs: drupal (250,000 targets at 2,048 bins;
    /// a burst of 100 releases in 10 s, then 1/s for 60 s) or packagist (6,000,000 targets at
    /// 16,384 bins; 1 release/s for 30 s, 20/s for 60 s, 1/s for 30 s). Its throughput run
    /// is --bulk targets in jobs of --job-size; --bins, --rate, --large and --rebin are unused.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Multiplies the scenario's target count (0.01 for a quick run); the schedule stays.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// The scenario's release schedule replaced: phases `N/Ts` (N releases evenly over T
    /// seconds), one after the other, comma-separated (drupal's is 100/10s,60/60s).
    #[arg(long)]
    schedule: Option<String>,
    /// The Python that has python-tuf, for the side-by-side run of a scenario (relative: to
    /// the current folder, else to the source tree this binary was built in).
    #[arg(long, default_value = ".venv/bin/python")]
    python_tuf: PathBuf,
    /// The python-tuf program (relative as --python-tuf).
    #[arg(long, default_value = "tests/python/bench_python_tuf.py")]
    python_bench: PathBuf,
    /// Make every key inside this PKCS#11 token (`tuf-signer init --token URI`) instead of
    /// key files, to measure signing with token-held keys against key files, back to back
    /// (README, "Keys in an HSM"). The signers start one after the other (SoftHSM2 reads its
    /// tokens as each process opens it).
    #[arg(long, value_name = "URI")]
    token: Option<String>,
}

/// A user's repository and how its releases arrive.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Scenario {
    /// Drupal.org: 250,000 targets at 2,048 bins; a burst of 100 releases in 10 s, then 1/s.
    Drupal,
    /// Packagist: 6,000,000 targets at 16,384 bins; 1 release/s with a 60 s peak at 20/s.
    Packagist,
}

impl Scenario {
    /// Its name, target count, bin count and release schedule (see [`arrivals`]).
    fn shape(self) -> (&'static str, usize, u32, &'static str) {
        match self {
            Scenario::Drupal => ("drupal", 250_000, 2048, "100/10s,60/60s"),
            Scenario::Packagist => ("packagist", 6_000_000, 16384, "30/30s,1200/60s,30/30s"),
        }
    }
}

/// The three signer processes, and when they were spawned.
struct Signers(Vec<(String, Child)>, Instant);

impl Drop for Signers {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Signers {
    /// Stops the signers with SIGTERM, as an operator would, and waits (30 s at most, then
    /// kills them) until they have exited.
    fn stop(self) {
        use rustix::process::{kill_process, Pid, Signal};
        for (_, c) in &self.0 {
            let _ = kill_process(Pid::from_child(c), Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut signers = self;
        for (_, c) in &mut signers.0 {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Prints each signer's peak RSS so far, `when` saying which part of the run it covers.
    fn print_peak_rss(&self, when: &str) {
        for (role, mib) in self.peak_rss_mib() {
            println!("peak RSS {role:<10} {when:<26} {mib:>10.1} MiB");
        }
    }

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

/// Each release's arrival, from the start of a latency run, for `schedule`: phases `N/Ts`
/// (N releases evenly spread over T seconds), one after the other, comma-separated.
fn arrivals(schedule: &str) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut start = 0.0;
    for phase in schedule.split(',') {
        let (n, secs) = phase
            .trim()
            .split_once('/')
            .and_then(|(n, t)| {
                let secs: f64 = t.trim_end_matches('s').parse().ok()?;
                Some((n.parse::<usize>().ok()?, secs))
            })
            .filter(|&(n, secs)| n > 0 && secs >= 0.0)
            .unwrap_or_else(|| panic!("schedule phase {phase:?}: not N/Ts (e.g. 100/10s)"));
        out.extend((0..n).map(|k| Duration::from_secs_f64(start + k as f64 * secs / n as f64)));
        start += secs;
    }
    out
}

/// The single releases of a latency run in flight: when each was published, which no
/// timestamp.json covers yet, and the latencies of those covered (ms).
struct Releases {
    coverage: Coverage,
    sent: HashMap<String, Instant>,
    pending: Expected,
    latencies: Vec<f64>,
}

impl Releases {
    /// Publishes `t` alone in a job.
    async fn send(&mut self, sink: &Sink, t: NewTarget) {
        let name = t.name.clone();
        self.pending
            .insert(name.clone(), Some((t.length, t.hashes.sha256.clone())));
        self.sent.insert(name, Instant::now());
        let job = TargetsJob {
            add: vec![t],
            ..Default::default()
        };
        sink.send(&job, 0).await.unwrap();
    }

    /// Records the latency of every pending release the current timestamp.json covers.
    fn check(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let before: Vec<String> = self.pending.keys().cloned().collect();
        let _ = self.coverage.check(&mut self.pending);
        let now = Instant::now();
        for name in before.iter().filter(|n| !self.pending.contains_key(*n)) {
            self.latencies
                .push((now - self.sent[name]).as_secs_f64() * 1000.0);
        }
    }
}

/// Publishes release `i` (`target(i, tag)`) alone in a job at `arrivals[i]` from the start,
/// and measures each one's time from publish to the first timestamp.json that covers it;
/// `written`, if given, counts what the signers write meanwhile. Returns the latencies (ms),
/// sorted.
async fn latency(
    sink: &Sink,
    layout: &Layout,
    arrivals: &[Duration],
    tag: &str,
    mut written: Option<&mut Written>,
) -> Vec<f64> {
    let mut run = Releases {
        coverage: Coverage::new(layout.clone(), pin(layout)),
        sent: HashMap::new(),
        pending: HashMap::new(),
        latencies: Vec::with_capacity(arrivals.len()),
    };
    let start = Instant::now();
    let mut i = 0;
    let mut last_ts = std::fs::read(layout.timestamp()).unwrap_or_default();
    while run.latencies.len() < arrivals.len() {
        if i < arrivals.len() && start.elapsed() >= arrivals[i] {
            run.send(sink, target(i, tag)).await;
            i += 1;
        }
        let ts = std::fs::read(layout.timestamp()).unwrap_or_default();
        if ts != last_ts {
            if let Some(w) = written.as_deref_mut() {
                w.timestamp_written(ts.len());
            }
            run.check();
            last_ts = ts;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if let Some(w) = written {
        w.scan();
    }
    run.latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    run.latencies
}

/// The bytes the signers write under metadata/ from its creation on: each new file once
/// (found by a scan at most once a second, well within the 30 s a superseded version is kept
/// at least), and timestamp.json, rewritten in place, each time it changes.
struct Written {
    dir: PathBuf,
    seen: HashSet<OsString>,
    bytes: u64,
    scanned: Instant,
}

impl Written {
    /// Counting from now: the files already there are not counted.
    fn new(layout: &Layout) -> Written {
        let mut w = Written {
            dir: layout.metadata_dir(),
            seen: HashSet::new(),
            bytes: 0,
            scanned: Instant::now(),
        };
        w.scan();
        w.bytes = 0;
        w
    }

    /// Counts the files not seen before.
    fn scan(&mut self) {
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if name != "timestamp.json" && !self.seen.contains(&name) {
                self.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                self.seen.insert(name);
            }
        }
        self.scanned = Instant::now();
    }

    /// Counts a new timestamp.json of `len` bytes, and scans if the last scan is a second old.
    fn timestamp_written(&mut self, len: usize) {
        self.bytes += len as u64;
        if self.scanned.elapsed() >= Duration::from_secs(1) {
            self.scan();
        }
    }
}

/// Waits until the three signers have logged that they consume their queues; returns each
/// one's start-up time, from spawn to its `signer ready` line.
fn wait_ready(work: &Path, signers: &Signers) -> Vec<(String, f64)> {
    let spawned = signers.1;
    let mut ready: Vec<(String, Option<f64>)> = signers
        .0
        .iter()
        .map(|(role, _)| (role.clone(), None))
        .collect();
    while ready.iter().any(|(_, took)| took.is_none()) {
        for (role, took) in ready.iter_mut().filter(|(_, took)| took.is_none()) {
            if std::fs::read_to_string(work.join(format!("{role}.log")))
                .unwrap_or_default()
                .contains("signer ready")
            {
                *took = Some(spawned.elapsed().as_secs_f64());
            }
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(600),
            "a signer did not start in 10 minutes; see its log in the work folder"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    ready
        .into_iter()
        .map(|(role, took)| (role, took.unwrap_or_default()))
        .collect()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The work folder and what runs in it: the binaries beside this one, the repository, the
/// keys, and the broker with this run's queue prefix.
struct Rig {
    exe_dir: PathBuf,
    work: PathBuf,
    /// The work folder, when it is a temporary one to delete afterwards.
    tmp: Option<PathBuf>,
    repo: PathBuf,
    keys: PathBuf,
    amqp: String,
    prefix: String,
    /// `--token`: the keys are in this PKCS#11 token.
    token: Option<String>,
}

impl Rig {
    fn new(args: &Args) -> Rig {
        let tmp = args.work.is_none().then(tempfile_dir);
        let work = args.work.clone().or(tmp.clone()).unwrap();
        let exe = std::env::current_exe().unwrap();
        Rig {
            exe_dir: exe.parent().unwrap().to_path_buf(),
            repo: work.join("repo"),
            keys: work.join("keys"),
            work,
            tmp,
            amqp: args.amqp.clone(),
            prefix: format!("bench.{}.", std::process::id()),
            token: args.token.clone(),
        }
    }

    /// Starts the three signer processes, each logging to ROLE.log in the work folder.
    fn spawn(&self) -> Signers {
        let spawned = Instant::now();
        let roles = [
            Role::Targets.name(),
            Role::Snapshot.name(),
            Role::Timestamp.name(),
        ];
        let children = roles.iter().map(|role| {
            if self.token.is_some() {
                self.wait_for_ready_log();
            }
            let child = Command::new(self.exe_dir.join("tuf-signer"))
                .args(["run", "--role", role, "--repo"])
                .arg(&self.repo)
                .arg("--key")
                .arg(find_key(&self.keys, role))
                .args(["--amqp", &self.amqp, "--queue-prefix", &self.prefix])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(self.work.join(format!("{role}.log"))).unwrap())
                .spawn()
                .expect("tuf-signer next to tuf-bench (cargo build --release)");
            (role.to_string(), child)
        });
        Signers(children.collect(), spawned)
    }

    /// Waits until every signer log in the work folder says `signer ready` (a token's
    /// signers start one at a time).
    fn wait_for_ready_log(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let logs = || {
            [Role::Targets, Role::Snapshot, Role::Timestamp]
                .map(|r| std::fs::read_to_string(self.work.join(format!("{}.log", r.name()))))
        };
        while logs()
            .iter()
            .any(|log| log.as_ref().is_ok_and(|l| !l.contains("signer ready")))
        {
            assert!(Instant::now() < deadline, "a signer did not start in 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `tuf-signer init` of the repository (with `--token`, every key in the token), timed,
    /// and how fast the targets key signs.
    fn init(&self, bins: u32) {
        let t = Instant::now();
        let mut init = Command::new(self.exe_dir.join("tuf-signer"));
        init.args(["init", "--repo"])
            .arg(&self.repo)
            .arg("--keys")
            .arg(&self.keys)
            .args(["--bins", &bins.to_string(), "--quiet"])
            .stdout(Stdio::null());
        if let Some(token) = &self.token {
            // Labels of this run's own: a token keeps the keys of earlier runs.
            init.args(["--token", token, "--token-label-prefix", &self.prefix]);
        }
        assert!(init.status().unwrap().success(), "init failed");
        println!(
            "init ({bins} bins)                         {:>10.2} s",
            t.elapsed().as_secs_f64()
        );
        let key = SigningKey::load(&find_key(&self.keys, Role::Targets.name())).unwrap();
        let where_ = if self.token.is_some() {
            "token"
        } else {
            "file"
        };
        let message = vec![7u8; 4096];
        let (start, mut signed) = (Instant::now(), 0u32);
        while start.elapsed() < Duration::from_secs(1) {
            key.sign(&message).unwrap();
            signed += 1;
        }
        println!(
            "targets key ({where_}): signatures of 4 kB     {:>10.0} /s",
            f64::from(signed) / start.elapsed().as_secs_f64()
        );
    }

    /// Renames each signer's log to ROLE.`suffix`.log, so that a restart starts a new one.
    fn keep_logs(&self, suffix: &str) {
        for role in [Role::Targets, Role::Snapshot, Role::Timestamp] {
            let log = |tail: &str| self.work.join(format!("{}{tail}.log", role.name()));
            let _ = std::fs::rename(log(""), log(&format!(".{suffix}")));
        }
    }

    /// The repository, and a connection to its signers' queues.
    async fn bench(&self) -> Bench {
        Bench {
            layout: Layout::new(&self.repo),
            sink: connect(&self.amqp, &self.prefix, &self.keys).await,
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let rig = Rig::new(&args);
    match args.scenario {
        Some(scenario) => run_scenario(&args, &rig, scenario).await,
        None => default_runs(&args, &rig).await,
    }
    if let Some(tmp) = &rig.tmp {
        let _ = std::fs::remove_dir_all(tmp);
    }
}

/// Today's runs: throughput, latency after it and at `--large` targets, a bin-count change.
async fn default_runs(args: &Args, rig: &Rig) {
    println!(
        "tuf-bench: {} bins, work folder {}",
        args.bins,
        rig.work.display()
    );
    rig.init(args.bins);
    let signers = rig.spawn();
    let bench = rig.bench().await;
    wait_ready(&rig.work, &signers);
    let filled = bench.throughput(args).await;
    let small_p50 = bench.latency_at(args, filled, "small", None).await;
    if args.large > filled {
        bench.grow(args, filled).await;
        bench
            .latency_at(args, args.large, "large", Some((small_p50, filled)))
            .await;
    }
    let rebin = args.rebin.unwrap_or(args.bins * 2);
    if rebin > 0 {
        bench.rebin(args.bins, rebin).await;
    }
    for (role, mib) in signers.peak_rss_mib() {
        println!("peak RSS {role:<10}                     {mib:>10.1} MiB");
    }
}

/// A user's repository (`--scenario`): filled through bulk jobs, the signers restarted at that
/// size, a throughput run, then single releases on the scenario's schedule; then python-tuf
/// doing the same work, and the ratios.
async fn run_scenario(args: &Args, rig: &Rig, scenario: Scenario) {
    let (name, full, bins, schedule) = scenario.shape();
    let schedule = args.schedule.clone().unwrap_or(schedule.to_string());
    let targets = (full as f64 * args.scale).round() as usize;
    let scaled = if args.scale == 1.0 {
        String::new()
    } else {
        format!(" (scaled x{} from {full})", args.scale)
    };
    println!("scenario {name}: {targets} targets{scaled} at {bins} bins, releases {schedule}");
    println!("work folder {}", rig.work.display());
    rig.init(bins);
    let signers = rig.spawn();
    print_startup("empty repository", &wait_ready(&rig.work, &signers));
    let bench = rig.bench().await;
    bench.prefill(targets, args.job_size).await;
    signers.print_peak_rss("(spawn to end of prefill)");
    signers.stop();
    rig.keep_logs("fill");
    let signers = rig.spawn();
    print_startup(
        &format!("restart at {targets} targets"),
        &wait_ready(&rig.work, &signers),
    );
    let ours = bench.scenario_runs(args, &schedule).await;
    signers.print_peak_rss("(restart to end)");
    drop(signers);
    match python_tuf(args, rig, targets, bins, &schedule) {
        Ok(python) => side_by_side(&ours, &python),
        Err(why) => println!("python-tuf: skipped ({why})"),
    }
}

/// Prints the signers' start-up times (spawn to `signer ready`).
fn print_startup(when: &str, ready: &[(String, f64)]) {
    let each: Vec<String> = ready
        .iter()
        .map(|(role, secs)| format!("{role} {secs:.2}"))
        .collect();
    println!("start-up, {when:<30} {} s", each.join(" / "));
}

/// What a scenario measured of our signers, for the side-by-side lines.
struct Figures {
    throughput: f64,
    p50: f64,
    p99: f64,
}

/// python-tuf's figures for the same work (`--python-bench` run by `--python-tuf`, in the
/// work folder's python-tuf/), or why it could not run.
fn python_tuf(
    args: &Args,
    rig: &Rig,
    targets: usize,
    bins: u32,
    schedule: &str,
) -> Result<serde_json::Value, String> {
    let python = locate(&args.python_tuf, &rig.exe_dir);
    let script = locate(&args.python_bench, &rig.exe_dir);
    if !script.is_file() {
        return Err(format!("{} not found", script.display()));
    }
    let has_tuf = Command::new(&python)
        .args(["-c", "import tuf.api.metadata"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_tuf {
        return Err(format!(
            "{} cannot import tuf; python3 -m venv .venv && .venv/bin/pip install -r \
             tests/python/requirements.txt",
            python.display()
        ));
    }
    println!("python-tuf: running {}", script.display());
    let out = Command::new(&python)
        .arg(&script)
        .arg("--dir")
        .arg(rig.work.join("python-tuf"))
        .args([
            "--bins",
            &bins.to_string(),
            "--prefill",
            &targets.to_string(),
        ])
        .args(["--throughput", &args.bulk.to_string()])
        .args([
            "--job-size",
            &args.job_size.to_string(),
            "--schedule",
            schedule,
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let _ = std::fs::remove_dir_all(rig.work.join("python-tuf"));
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("its output: {e}"))
}

/// `path` if it exists or is absolute, else the same path in the source tree this binary
/// was built in (`target/release/..`).
fn locate(path: &Path, exe_dir: &Path) -> PathBuf {
    let in_tree = exe_dir.join("../..").join(path);
    if path.exists() || path.is_absolute() || !in_tree.exists() {
        path.to_path_buf()
    } else {
        in_tree
    }
}

/// Prints python-tuf's figures and ours divided by them.
fn side_by_side(ours: &Figures, python: &serde_json::Value) {
    let f = |key: &str| python[key].as_f64().unwrap_or(f64::NAN);
    println!("python-tuf, same work in one process (no broker, no fsync, no client check):");
    println!(
        "  start-up {:.2} s; prefill of {} targets {:.1} s (each bin written once)",
        f("startup_s"),
        f("prefill_targets"),
        f("prefill_s")
    );
    println!(
        "  throughput {:.0} targets/s; {} releases in {} batches: p50 {:.1} ms, p99 {:.1} ms",
        f("throughput_targets_per_s"),
        f("releases"),
        f("batches"),
        f("p50_ms"),
        f("p99_ms")
    );
    println!(
        "  peak RSS {:.1} MiB to the end of the prefill, {:.1} MiB from there on; written per \
         release {:.1} kB; snapshot {:.1} kB",
        f("prefill_peak_rss_mib"),
        f("peak_rss_mib"),
        f("bytes_per_release") / 1000.0,
        f("snapshot_bytes") / 1000.0
    );
    println!(
        "ours / python-tuf: throughput {:.2}x (higher is better), p50 {:.2}x, p99 {:.2}x (lower is better)",
        ours.throughput / f("throughput_targets_per_s"),
        ours.p50 / f("p50_ms"),
        ours.p99 / f("p99_ms")
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
        key: SigningKey::load(&find_key(keys, SUBMITTER)).unwrap(),
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
        let schedule = format!(
            "{}/{}s",
            args.rate as u64 * args.latency_secs,
            args.latency_secs
        );
        let l = latency(&self.sink, &self.layout, &arrivals(&schedule), tag, None).await;
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

    /// Fills the repository with `count` targets (`target(i, "prefill")`) in jobs of
    /// `job_size`, a lot at a time: each lot's jobs are published, then the lot's last job is
    /// waited for (the queue is consumed in order). A lot is 100,000 targets, or 500,000 (what
    /// one batch of 1,000 jobs of 500 holds) past a million: at 16,384 bins every lot touches
    /// nearly every bin, so fewer lots write the large repository fewer times over. Timed.
    async fn prefill(&self, count: usize, job_size: usize) {
        let start = Instant::now();
        let lot = if count > 1_000_000 { 500_000 } else { 100_000 };
        let mut prefilled = Progress::new(
            "prefilled",
            " targets",
            count as u64,
            Show::for_stderr(false),
        );
        for first in (0..count).step_by(lot) {
            let end = count.min(first + lot);
            let mut last = Vec::new();
            for from in (first..end).step_by(job_size) {
                last = (from..end.min(from + job_size))
                    .map(|i| target(i, "prefill"))
                    .collect();
                let job = TargetsJob {
                    add: last.clone(),
                    ..Default::default()
                };
                self.sink.send(&job, 0).await.unwrap();
            }
            wait_covered(&self.layout, expected(&last)).await;
            prefilled.set(end as u64);
        }
        prefilled.finish();
        let took = start.elapsed().as_secs_f64();
        println!(
            "prefill {count} targets, {job_size} per job   {:>10.0} targets/s ({took:.1} s)",
            count as f64 / took
        );
    }

    /// A scenario's measures once the repository is filled: `--bulk` targets in jobs of
    /// `--job-size`, then single releases on `schedule`; prints them, the bytes written per
    /// release and the snapshot's size.
    async fn scenario_runs(&self, args: &Args, schedule: &str) -> Figures {
        let targets: Vec<NewTarget> = (0..args.bulk).map(|i| target(i, "bulk")).collect();
        let took = bulk(&self.sink, &self.layout, &targets, args.job_size).await;
        let throughput = args.bulk as f64 / took.as_secs_f64();
        println!(
            "throughput: {} targets, {} per job     {throughput:>10.0} targets/s",
            args.bulk, args.job_size
        );
        let mut written = Written::new(&self.layout);
        let due = arrivals(schedule);
        let l = latency(
            &self.sink,
            &self.layout,
            &due,
            "release",
            Some(&mut written),
        )
        .await;
        let (p50, p99) = (pct(&l, 0.5), pct(&l, 0.99));
        println!(
            "{} releases, submit -> covering timestamp   p50 {p50:>7.1} ms   p99 {p99:>7.1} ms",
            l.len()
        );
        println!(
            "written per release (metadata/)          {:>10.1} kB",
            written.bytes as f64 / l.len() as f64 / 1000.0
        );
        println!(
            "snapshot a client downloads              {:>10.1} kB",
            self.snapshot_bytes() as f64 / 1000.0
        );
        Figures {
            throughput,
            p50,
            p99,
        }
    }

    /// The newest snapshot's size in bytes.
    fn snapshot_bytes(&self) -> usize {
        let newest = self.layout.newest(Role::Snapshot).unwrap().unwrap();
        std::fs::read(self.layout.versioned(Role::Snapshot.name(), newest))
            .unwrap()
            .len()
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
        let snapshot_bytes = self.snapshot_bytes();
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
