//! Shared by the integration tests: real binaries, the real broker, real files, python-tuf.
#![allow(dead_code)]

pub mod broker_node;
pub mod stream;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use package_signing::client::coverage::{Coverage, Expected};
use package_signing::repository::Layout;

pub const SIGNER: &str = env!("CARGO_BIN_EXE_tuf-signer");
pub const CLIENT: &str = env!("CARGO_BIN_EXE_tuf-client");

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A queue prefix no other test (or earlier run) uses.
pub fn unique_prefix(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test.{tag}.{}.{nanos}.", std::process::id())
}

/// A child process killed when the test ends, however it ends.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct TestRepo {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub keys: PathBuf,
}

impl TestRepo {
    pub fn init(bins: u32, extra: &[&str]) -> TestRepo {
        Self::init_with(bins, extra, |_| {})
    }

    /// The same, calling `prepare` with the repository folder (created, empty) before init
    /// (to mount a small file system there, say).
    pub fn init_with(bins: u32, extra: &[&str], prepare: impl FnOnce(&Path)) -> TestRepo {
        // KEEP_TEST_DIRS=1 keeps each test's folder (repository, keys, signer logs) for a look.
        let keep = std::env::var_os("KEEP_TEST_DIRS").is_some();
        let dir = tempfile::Builder::new()
            .prefix("tuf-test-")
            .disable_cleanup(keep)
            .tempdir()
            .unwrap();
        if keep {
            eprintln!("test folder: {}", dir.path().display());
        }
        let repo = dir.path().join("repo");
        let keys = dir.path().join("keys");
        std::fs::create_dir(&repo).unwrap();
        prepare(&repo);
        let out = run(Command::new(SIGNER)
            .args(["init", "--repo"])
            .arg(&repo)
            .arg("--keys")
            .arg(&keys)
            .args(["--bins", &bins.to_string()])
            .args(extra));
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestRepo { dir, repo, keys }
    }

    /// The packaging pipeline's key, which signs every targets job.
    pub fn submitter_key(&self) -> PathBuf {
        self.keys.join("submitter.pem")
    }

    /// `job` (any JSON, well-formed or not) signed as a submission issued now, as the
    /// packaging pipeline sends it.
    pub fn submission(&self, job: &serde_json::Value) -> Vec<u8> {
        self.submission_issued(job, jiff::Timestamp::now())
    }

    /// The same, issued at `issued`.
    pub fn submission_issued(&self, job: &serde_json::Value, issued: jiff::Timestamp) -> Vec<u8> {
        let key = package_signing::keys::SigningKey::load(&self.submitter_key()).unwrap();
        submission_signed_by(&key, job, issued)
    }

    pub fn layout(&self) -> Layout {
        Layout::new(&self.repo)
    }

    pub fn key(&self, role: &str) -> PathBuf {
        self.keys.join(format!("{role}.pem"))
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// One signer process over the broker.
    pub fn spawn_signer(&self, role: &str, prefix: &str, extra: &[&str]) -> Proc {
        self.spawn_signer_with_key(role, &self.key(role), prefix, extra)
    }

    /// One signer process over the broker, with the given key file.
    pub fn spawn_signer_with_key(
        &self,
        role: &str,
        key: &Path,
        prefix: &str,
        extra: &[&str],
    ) -> Proc {
        self.spawn_signer_env(role, key, prefix, extra, &[])
    }

    /// One signer process over the broker, with the given key file and environment.
    pub fn spawn_signer_env(
        &self,
        role: &str,
        key: &Path,
        prefix: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Proc {
        self.spawn_signer_at(&amqp_url(), role, key, prefix, extra, env)
    }

    /// One signer process over the broker at `url` (one URL or several, comma-separated).
    pub fn spawn_signer_at(
        &self,
        url: &str,
        role: &str,
        key: &Path,
        prefix: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Proc {
        let log = self.path(&format!(
            "{role}-{}.log",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let child = Command::new(SIGNER)
            .args(["run", "--role", role, "--repo"])
            .arg(&self.repo)
            .arg("--key")
            .arg(key)
            .args(["--amqp", url, "--queue-prefix", prefix])
            .args(extra)
            // Where init put them, wherever the key comes from (a rotation's new key).
            .env("TUF_SUBMITTERS", self.keys.join("submitters.pub"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    /// The embedded mode: all three roles in one process, jobs from `inbox`, no broker.
    pub fn spawn_embedded(&self, inbox: &Path, extra: &[&str]) -> Proc {
        let log = self.path(&format!(
            "embedded-{}.log",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let child = Command::new(SIGNER)
            .args(["run", "--all", "--repo"])
            .arg(&self.repo)
            .arg("--keys")
            .arg(&self.keys)
            .arg("--inbox")
            .arg(inbox)
            .args(extra)
            .env_remove("AMQP_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    pub fn spawn_all_signers(&self, prefix: &str) -> Vec<Proc> {
        ["targets", "snapshot", "timestamp"]
            .iter()
            .map(|r| self.spawn_signer(r, prefix, &[]))
            .collect()
    }

    /// `tuf-client add-targets` through an embedded signer's inbox, waiting (at most
    /// `timeout`) until a timestamp covers it; `args` are the input folder or `--target`s.
    pub fn add_over_inbox<A: AsRef<std::ffi::OsStr>>(
        &self,
        inbox: &Path,
        timeout: &str,
        args: &[A],
    ) -> String {
        ok(run(Command::new(CLIENT)
            .env("TUF_SUBMITTER_KEY", self.submitter_key())
            .args(["add-targets", "--inbox"])
            .arg(inbox)
            .arg("--targets-dir")
            .arg(self.repo.join("targets"))
            .args(["--wait", "--timeout", timeout, "--repo"])
            .arg(&self.repo)
            .args(args)
            .env_remove("AMQP_URL")))
    }

    /// `tuf-client add-targets` over the broker into this repository, waiting until a
    /// timestamp covers it; `extra` goes before the input. Returns what it printed.
    pub fn add_over_broker(&self, prefix: &str, input: &Path, extra: &[&str]) -> String {
        let repo = self.repo.to_str().unwrap();
        let mut args = vec!["--wait", "--timeout", "120s", "--repo", repo];
        args.extend(extra);
        self.submit_over_broker(prefix, input, &args)
    }

    /// `tuf-client add-targets` over the broker, returning once the job is queued.
    pub fn submit_over_broker(&self, prefix: &str, input: &Path, extra: &[&str]) -> String {
        let out = run(Command::new(CLIENT)
            .env("TUF_SUBMITTER_KEY", self.submitter_key())
            .args([
                "add-targets",
                "--amqp",
                &amqp_url(),
                "--queue-prefix",
                prefix,
            ])
            .arg("--targets-dir")
            .arg(self.repo.join("targets"))
            .args(extra)
            .arg(input));
        assert!(
            out.status.success(),
            "add-targets failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until timestamp.json covers `expected` (names → Some((len, sha256)) or None).
    pub fn wait_covered(&self, mut expected: Expected, timeout: Duration) {
        let mut coverage = Coverage::new(self.layout());
        let start = Instant::now();
        while !expected.is_empty() {
            let _ = coverage.check(&mut expected);
            assert!(
                start.elapsed() < timeout,
                "{} target(s) never covered, e.g. {:?}",
                expected.len(),
                expected.keys().next()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `job` signed as a submission by `key`, issued at `issued`.
pub fn submission_signed_by(
    key: &package_signing::keys::SigningKey,
    job: &serde_json::Value,
    issued: jiff::Timestamp,
) -> Vec<u8> {
    let body = serde_json::json!({"_type": "submission", "issued": issued, "job": job});
    let signed = package_signing::canonical::value_to_vec(&body, "submission").unwrap();
    package_signing::repository::signed::sign_canonical(&signed, 0, &[key]).bytes
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// Lifetimes of seconds, for `init` and `run`: without refreshing, python-tuf would refuse
/// such a repository as expired (a freeze) a few seconds after init.
pub const SHORT_LIFETIMES: [&str; 8] = [
    "--expire-timestamp",
    "4s",
    "--expire-snapshot",
    "6s",
    "--expire-bins",
    "8s",
    "--expire-targets",
    "8s",
];

/// Writes `count` release files under `dir` as vendor/name/version, with distinct contents.
pub fn make_releases(dir: &Path, count: usize, tag: &str) -> Vec<(String, PathBuf)> {
    (0..count)
        .map(|i| {
            let name = format!("drupal/module{}/{}.{}.0.0", i % 97, i / 97, tag);
            let path = dir.join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("release {tag} {i} {}", "x".repeat(i % 300))).unwrap();
            (name, path)
        })
        .collect()
}

/// What coverage must see for these files.
pub fn expected_for(releases: &[(String, PathBuf)]) -> Expected {
    releases
        .iter()
        .map(|(name, path)| {
            let bytes = std::fs::read(path).unwrap();
            let sha = hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                &bytes,
            ));
            (name.clone(), Some((bytes.len() as u64, sha)))
        })
        .collect()
}

/// An HTTP server over a repository folder, on a free loopback port.
pub struct HttpServer {
    pub proc: Proc,
    pub port: u16,
}

impl HttpServer {
    /// `python3 -m http.server` over a folder.
    pub fn serve(dir: &Path) -> HttpServer {
        Self::start(dir, |port| {
            let mut cmd = Command::new("python3");
            cmd.args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "-d",
            ])
            .arg(dir);
            cmd
        })
    }

    /// `tuf-client serve` over a repository folder (metadata/ and targets/ only).
    pub fn ours(repo: &Path) -> HttpServer {
        Self::start(repo, |port| {
            let mut cmd = Command::new(CLIENT);
            cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg(repo);
            cmd
        })
    }

    fn start(dir: &Path, command: impl FnOnce(u16) -> Command) -> HttpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.parent().unwrap().join(format!("http-{port}.log"));
        let child = command(port)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the HTTP server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer {
            proc: Proc { child, log },
            port,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

/// The python with python-tuf installed (`.ci/run` makes `.venv`).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TUF_PYTHON") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "python-tuf is needed: run `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt` (or bash .ci/run)"
    );
    venv
}

/// Runs python-tuf's ngclient over HTTP against the repository: every `NAME=FILE` must verify
/// and download with the same bytes, every `!NAME` must be absent. Returns its JSON report.
pub fn ngclient_verify(repo: &TestRepo, items: &[String]) -> serde_json::Value {
    let server = HttpServer::serve(&repo.repo);
    ngclient_verify_at(repo, &server.url(""), items)
}

/// The same against a server already running at `base` (serving metadata/ and targets/).
pub fn ngclient_verify_at(repo: &TestRepo, base: &str, items: &[String]) -> serde_json::Value {
    ngclient_run(repo, base, "ngclient", false, items)
}

/// A python-tuf client that keeps its trusted metadata in `client` between calls, as an
/// installed client does: it must follow root rotations and key changes from what it knew.
pub fn ngclient_update(repo: &TestRepo, client: &str, items: &[String]) -> serde_json::Value {
    let server = HttpServer::serve(&repo.repo);
    ngclient_run(repo, &server.url(""), client, true, items)
}

fn ngclient_run(
    repo: &TestRepo,
    base: &str,
    client: &str,
    keep: bool,
    items: &[String],
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/ngclient_verify.py");
    let out = run(Command::new(python())
        .env("NGCLIENT_KEEP", if keep { "1" } else { "0" })
        .arg(script)
        .arg(repo.repo.join("metadata/1.root.json"))
        .arg(format!("{base}metadata/"))
        .arg(format!("{base}targets/"))
        .arg(repo.path(client))
        .args(items));
    assert!(
        out.status.success(),
        "python-tuf ngclient refused the repository:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn items_for(releases: &[(String, PathBuf)]) -> Vec<String> {
    releases
        .iter()
        .map(|(n, p)| format!("{n}={}", p.display()))
        .collect()
}

/// Deletes a test's queues and exchanges so the broker does not fill up across runs.
pub async fn delete_queues(prefix: &str) {
    use lapin::options::QueueDeleteOptions;
    use package_signing::broker::Queue;
    let Ok(conn) =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    let channel = conn.create_channel().await.unwrap();
    for q in [
        Queue::Targets,
        Queue::Snapshot,
        Queue::Timestamp,
        Queue::DeadLetter,
    ] {
        let _ = channel
            .queue_delete(
                q.name(prefix).as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await;
        let _ = channel
            .exchange_delete(
                q.exchange(prefix).as_str().into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await;
    }
}

/// Every metadata file parses with tough's types and follows the rules php-tuf and
/// python-tuf hold us to: spec 1.0, ed25519 keys only, no field the specification does not
/// define, `length` and hashes in every meta entry, whole-second expiry, consistent
/// snapshots, plain `path_hash_prefixes` delegations, key ids by php-tuf's rule. Returns how
/// many files it checked.
pub fn assert_metadata_rules(repo: &TestRepo) -> usize {
    use tough::schema::{key::Key, PathSet, Signed, Snapshot, Timestamp};

    use package_signing::keys::KeyIdRule;
    use package_signing::schema::{Root, Targets};
    let mut checked = 0;
    for entry in std::fs::read_dir(repo.repo.join("metadata")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let signed = &value["signed"];
        let expires = signed["expires"].as_str().unwrap();
        assert!(
            !expires.contains('.') && expires.ends_with('Z'),
            "{name}: expires {expires}"
        );
        assert!(
            signed["spec_version"].as_str().unwrap().starts_with("1.0."),
            "{name}"
        );
        assert_eq!(
            value.as_object().unwrap().len(),
            2,
            "{name}: only signed and signatures"
        );
        let ed25519_only = |keys: &package_signing::schema::KeyMap| {
            assert!(
                keys.values()
                    .all(|k| matches!(k, Key::Ed25519 { _extra, .. } if _extra.is_empty())),
                "{name}: non-ed25519 key"
            );
            for (id, key) in keys {
                assert_eq!(
                    KeyIdRule::of(key, id),
                    Some(KeyIdRule::PhpTuf),
                    "{name}: key id {} is not php-tuf's",
                    hex::encode(id)
                );
            }
        };
        let meta_complete = |meta: &std::collections::HashMap<String, tough::schema::Metafile>| {
            for (file, m) in meta {
                assert!(
                    m.length.is_some() && m.hashes.is_some() && m._extra.is_empty(),
                    "{name}: {file} lacks length/hashes"
                );
            }
        };
        match signed["_type"].as_str().unwrap() {
            "root" => {
                let r: Signed<Root> = serde_json::from_slice(&bytes).unwrap();
                assert!(
                    r.signed.consistent_snapshot && r.signed._extra.is_empty(),
                    "{name}"
                );
                ed25519_only(&r.signed.keys);
            }
            "targets" => {
                let t: Signed<Targets> = serde_json::from_slice(&bytes).unwrap();
                assert!(t.signed._extra.is_empty(), "{name}: unknown fields");
                for (target, info) in &t.signed.targets {
                    assert!(
                        info._extra.is_empty() && info.custom.is_empty(),
                        "{name}: {}",
                        target.raw()
                    );
                    assert!(info.hashes._extra.keys().all(|k| k == "sha512"), "{name}");
                }
                if let Some(d) = &t.signed.delegations {
                    ed25519_only(&d.keys);
                    for role in &d.roles {
                        assert!(
                            role.terminating && matches!(role.paths, PathSet::PathHashPrefixes(_)),
                            "{name}: {}",
                            role.name
                        );
                    }
                }
            }
            "snapshot" => {
                let s: Signed<Snapshot> = serde_json::from_slice(&bytes).unwrap();
                assert!(s.signed._extra.is_empty(), "{name}");
                meta_complete(&s.signed.meta);
            }
            "timestamp" => {
                let t: Signed<Timestamp> = serde_json::from_slice(&bytes).unwrap();
                assert!(t.signed._extra.is_empty(), "{name}");
                meta_complete(&t.signed.meta);
            }
            other => panic!("{name}: unknown _type {other}"),
        }
        checked += 1;
    }
    checked
}

/// Waits until a signer says it is consuming (its queues are then declared).
pub fn wait_ready(proc: &mut Proc) {
    let start = Instant::now();
    while !proc.log_text().contains("signer ready") {
        assert!(proc.is_running(), "signer exited:\n{}", proc.log_text());
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "signer not ready:\n{}",
            proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A connection to `url` and a channel on it with publisher confirms on.
pub async fn confirming_channel(url: &str) -> (lapin::Connection, lapin::Channel) {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    (conn, channel)
}

/// Publishes a raw body to one of a deployment's queues (through its exchange) and waits for
/// the broker's confirm.
pub async fn publish_raw(prefix: &str, queue: package_signing::broker::Queue, body: &[u8]) {
    use lapin::options::BasicPublishOptions;
    let (_conn, channel) = confirming_channel(&amqp_url()).await;
    let confirm = channel
        .basic_publish(
            queue.exchange(prefix).as_str().into(),
            queue.name(prefix).as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        confirm,
        lapin::Confirmation::Ack(None),
        "unroutable: is the queue declared?"
    );
}

/// Takes every message from the dead-letter queue: (body, x-rejection-reason).
pub async fn drain_dead_letters(
    prefix: &str,
    expect: usize,
    timeout: Duration,
) -> Vec<(Vec<u8>, String)> {
    use lapin::options::{BasicAckOptions, BasicGetOptions};
    use lapin::types::AMQPValue;
    let conn = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let queue = package_signing::broker::Queue::DeadLetter.name(prefix);
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < expect && start.elapsed() < timeout {
        match channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap()
        {
            Some(msg) => {
                let reason = msg
                    .delivery
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("x-rejection-reason").cloned())
                    .map(|v| match v {
                        AMQPValue::LongString(s) => {
                            String::from_utf8_lossy(s.as_bytes()).to_string()
                        }
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                msg.delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .unwrap();
                out.push((msg.delivery.data.clone(), reason));
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    out
}

// The offline root ceremony, as a keyholder runs it.

/// `openssl genpkey -algorithm ED25519`: the private key, and its public half as keyholders
/// hand it over.
pub fn openssl_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let out = run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ED25519", "-out"])
        .arg(&private));
    assert!(out.status.success(), "openssl genpkey failed");
    let out = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    assert!(out.status.success(), "openssl pkey -pubout failed");
    (private, public)
}

pub fn root_cmd(repo: &TestRepo, args: &[&str]) -> std::process::Output {
    run(Command::new(SIGNER)
        .arg("root")
        .args(args)
        .arg("--repo")
        .arg(&repo.repo)
        .arg("--draft")
        .arg(repo.path("root-draft.json")))
}

pub fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn refused(out: std::process::Output, reason: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should have been refused");
    assert!(err.contains(reason), "expected {reason:?} in: {err}");
}

pub fn root_sign(repo: &TestRepo, key: &Path) -> String {
    ok(root_cmd(repo, &["sign", "--key", key.to_str().unwrap()]))
}

/// The id a key file signs under (php-tuf's rule, as `init` and `root new` name keys).
pub fn key_id(path: &Path) -> String {
    package_signing::keys::SigningKey::load(path)
        .unwrap()
        .key_id()
        .to_string()
}

/// A new root version with `changes` (`root new` flags), signed with init's root key (the
/// threshold of a root that still has it) and published.
pub fn publish_root_change(repo: &TestRepo, changes: &[&str]) {
    let mut args = vec!["new", "--force"];
    args.extend(changes);
    ok(root_cmd(repo, &args));
    root_sign(repo, &repo.key("root"));
    ok(root_cmd(repo, &["publish"]));
}

/// The key ids that signed the newest file of `role`: `timestamp`, `snapshot`, `targets`, or
/// `bins` (the first of the 8 bins `TestRepo::init(8, ..)` makes).
pub fn newest_signer(repo: &TestRepo, role: &str) -> Vec<String> {
    let path = if role == "timestamp" {
        repo.layout().timestamp()
    } else {
        let bin = if role == "bins" {
            package_signing::repository::HashBins::new(8)
                .unwrap()
                .name(0)
        } else {
            role.to_string()
        };
        let v = *repo.layout().scan_versions().unwrap()[&bin].last().unwrap();
        repo.layout().versioned(&bin, v)
    };
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    value["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_string())
        .collect()
}
