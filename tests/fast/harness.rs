//! The fast tier's harness: a repository made by the library's `init` in a tempdir,
//! submissions made as `tuf-client add-targets --inbox` makes them (`client::submit`), their
//! outcomes followed as its `--wait` follows them (`client::wait`), and the result read back
//! from the files with the library's verifying updater over `file://`. The signers
//! themselves are in `signers.rs`. No process, broker, Python or network.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use package_signing::client::coverage::{Coverage, Expected};
use package_signing::client::send::add_jobs;
use package_signing::client::submit::{collect, describe, Release, Route, Sink, TargetsFolder};
use package_signing::client::wait::{Outcome, Wait};
use package_signing::jobs::{NewTarget, TargetsJob};
use package_signing::keys::SigningKey;
use package_signing::ops::init::{find_key, init, InitOptions};
use package_signing::repository::{Expiries, Layout};
use package_signing::role::Role;
use package_signing::role::SUBMITTER;
use package_signing::roles::RoleSettings;
use package_signing::updater::{self, base_url, HttpFetcher, Updater};

pub use crate::signers::*;

/// How long a test waits for something the signers do before it fails,
/// saying what it waited for (generous: a loaded CI machine, a debug build).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Lifetimes of seconds (as tests/common's `SHORT_LIFETIMES`): without refreshing, a client
/// would refuse such a repository as expired a few seconds after init.
pub fn short_lifetimes() -> Expiries {
    Expiries {
        timestamp: Duration::from_secs(4),
        snapshot: Duration::from_secs(6),
        bins: Duration::from_secs(8),
        targets: Duration::from_secs(8),
        ..Expiries::default()
    }
}

/// Polls `done` every 20 ms until it gives a value; fails after [`PATIENCE`] with `what`.
pub async fn eventually<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A repository of a test's own, with its keys and inbox, in a tempdir.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub layout: Layout,
    pub keys: PathBuf,
    pub inbox: PathBuf,
    pub expiries: Expiries,
    pub bins: u32,
}

impl Repo {
    /// `init` with `bins` hashed bins and the default lifetimes.
    pub fn init(bins: u32) -> Repo {
        Repo::init_with(bins, Expiries::default())
    }

    pub fn init_with(bins: u32, expiries: Expiries) -> Repo {
        let dir = tempfile::Builder::new()
            .prefix("tuf-fast-")
            .tempdir()
            .unwrap();
        let opts = InitOptions {
            expiries,
            ..InitOptions::new(dir.path().join("repo"), dir.path().join("keys"), bins)
        };
        init(&opts, |_, _| {}).unwrap();
        Repo {
            layout: Layout::new(&opts.repo),
            keys: opts.keys,
            inbox: dir.path().join("inbox"),
            dir,
            expiries,
            bins,
        }
    }

    /// `tuf-client validate` over the repository (a one-hour window, target files checked):
    /// every signature, hash, bin and expiry.
    pub fn validate(&self) -> package_signing::client::validate::Report {
        use package_signing::client::validate::{validate, Window};
        validate(
            &self.layout,
            &self.pin(),
            &Window::Every(Duration::from_secs(3600)),
            true,
        )
        .unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The root init handed over beside the keys: where every check starts.
    pub fn pin(&self) -> package_signing::pin::Pin {
        package_signing::pin::Pin::new(self.keys.join(package_signing::pin::PIN_FILE))
    }

    /// What `tuf-signer run --all` gives its roles (defaults of its flags).
    pub fn settings(&self) -> RoleSettings {
        let keys = Role::ONLINE
            .map(|role| (role, find_key(&self.keys, role.name())))
            .to_vec();
        let mut signers = package_signing::signer::Signers::new(&self.layout.dir, keys);
        signers.expiries = self.expiries;
        signers.settings().unwrap()
    }

    /// The three signers over a new in-process transport fed from this repository's inbox.
    pub async fn start(&self) -> Signers {
        Signers::start(self, &self.inbox).await
    }

    /// The packaging pipeline's side, sending to `inbox`.
    pub fn sink(&self, inbox: &Path) -> Sink {
        Sink {
            route: Route::Inbox(inbox.to_path_buf()),
            key: SigningKey::load(&find_key(&self.keys, SUBMITTER)).unwrap(),
        }
    }

    /// Writes `count` release files under `folder` (as vendor/name/version, distinct
    /// contents) and returns them as `add-targets FOLDER` would take them.
    pub fn releases(&self, folder: &str, count: usize, tag: &str) -> Vec<Release> {
        let dir = self.path(folder);
        for i in 0..count {
            let path = dir.join(format!("drupal/module{}/{}.{tag}.0.0", i % 13, i / 13));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("release {tag} {i} {}", "x".repeat(i % 50))).unwrap();
        }
        collect(&[dir], &[]).unwrap()
    }

    /// One release file named explicitly (`add-targets --target NAME=FILE`).
    pub fn release(&self, name: &str, content: &str) -> Release {
        let file = self.path(&format!(
            "files/{}-{}",
            name.replace('/', "_"),
            hex_of(content)
        ));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, content).unwrap();
        collect(&[], &[format!("{name}={}", file.display())])
            .unwrap()
            .remove(0)
    }

    /// Hashes releases and copies them into `targets/` (what `add-targets --targets-dir`
    /// does before it sends anything).
    pub fn stage(&self, releases: &[Release]) -> Vec<NewTarget> {
        let folder = TargetsFolder::open(&self.layout.targets_dir()).unwrap();
        releases
            .iter()
            .map(|r| {
                let target = describe(r).unwrap();
                folder.publish(r, &target).unwrap();
                target
            })
            .collect()
    }

    /// Sends `jobs` to `inbox`, following their receipts from before the first is sent.
    pub async fn send(&self, inbox: &Path, jobs: &[TargetsJob]) -> Submitted {
        let mut wait = Wait::new(self.layout.clone(), self.pin());
        let sink = self.sink(inbox);
        let mut expected = Expected::new();
        for (seq, job) in jobs.iter().enumerate() {
            let id = sink.send(job, seq).await.unwrap();
            for t in &job.add {
                expected.insert(t.name.clone(), Some((t.length, t.hashes.sha256.clone())));
            }
            for name in &job.remove {
                expected.insert(name.clone(), None);
            }
            let names = job.add.iter().map(|t| t.name.clone());
            wait.sent(id, names.chain(job.remove.iter().cloned()).collect());
        }
        Submitted { wait, expected }
    }

    /// `add-targets --inbox INBOX --batch-size N` of `releases`, not waiting.
    pub async fn submit(
        &self,
        inbox: &Path,
        releases: &[Release],
        batch_size: usize,
        replace: bool,
    ) -> Submitted {
        let jobs = add_jobs(&self.stage(releases), batch_size, replace);
        self.send(inbox, &jobs).await
    }

    /// `add-targets --wait`: what became of each name.
    pub async fn add(&self, releases: &[Release]) -> BTreeMap<String, Outcome> {
        self.submit(&self.inbox, releases, 100, false)
            .await
            .outcomes()
            .await
    }

    /// `remove-targets --wait`.
    pub async fn remove(&self, names: &[&str]) -> BTreeMap<String, Outcome> {
        let job = TargetsJob {
            remove: names.iter().map(std::string::ToString::to_string).collect(),
            ..Default::default()
        };
        self.send(&self.inbox, &[job]).await.outcomes().await
    }

    /// Waits until the published metadata, checked as a client checks it, shows every name
    /// as `expected` says (a release's length and hash, or absent).
    pub async fn covered(&self, mut pending: Expected) {
        let mut coverage = Coverage::new(self.layout.clone(), self.pin());
        let mut last = String::new();
        let start = Instant::now();
        while !pending.is_empty() {
            if let Err(e) = coverage.check(&mut pending) {
                last = e.to_string();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{} name(s) never covered by timestamp.json (e.g. {:?}); last error: {last}",
                pending.len(),
                pending.keys().next()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The newest version of `role` on disk.
    pub fn newest(&self, role: &str) -> u64 {
        self.layout.newest(role).unwrap().unwrap()
    }

    /// `signed.version` and `signed.expires` of timestamp.json.
    pub fn timestamp(&self) -> (u64, String) {
        let v = self.read_json(&self.layout.timestamp());
        (
            v["signed"]["version"].as_u64().unwrap(),
            v["signed"]["expires"].as_str().unwrap().to_string(),
        )
    }

    pub fn read_json(&self, path: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A client trusting `1.root.json` from a fresh metadata folder (`tuf-client init`),
    /// refreshed over `file://` (`tuf-client download`'s path through the updater).
    pub async fn client(&self) -> Client {
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let trusted = self.path(&format!("client-{n}"));
        let root = std::fs::read(self.layout.versioned("root", 1)).unwrap();
        updater::init(&trusted, &root).unwrap();
        let config = updater::Config::default();
        let url = |dir: PathBuf| base_url(dir.to_str().unwrap()).unwrap();
        let mut updater = Updater::new(
            &trusted,
            url(self.layout.metadata_dir()),
            HttpFetcher::new(&config),
            config,
        )
        .unwrap();
        updater.refresh().await.unwrap();
        Client {
            updater,
            targets_url: url(self.layout.targets_dir()),
            trusted,
        }
    }

    /// Downloads each release with a fresh client and checks it byte for byte against the
    /// file submitted; returns that client.
    pub async fn assert_downloads(&self, releases: &[Release]) -> Client {
        let mut client = self.client().await;
        for r in releases {
            let got = client.download(&r.name).await;
            let want = std::fs::read(&r.file).unwrap();
            assert!(got.as_deref() == Some(&want[..]), "{} differs", r.name);
        }
        client
    }
}

fn hex_of(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    hex::encode(&digest.as_ref()[..4])
}

/// What each name should look like once published.
pub fn expected(releases: &[Release]) -> Expected {
    releases
        .iter()
        .map(|r| {
            let t = describe(r).unwrap();
            (t.name, Some((t.length, t.hashes.sha256)))
        })
        .collect()
}

/// Submissions on their way, as `--wait` follows them.
pub struct Submitted {
    pub wait: Wait,
    pub expected: Expected,
}

impl Submitted {
    /// Polls until every name has an outcome (signed, refused, replaced).
    pub async fn outcomes(mut self) -> BTreeMap<String, Outcome> {
        let mut pending = self.expected.clone();
        let start = Instant::now();
        while !pending.is_empty() {
            // A read racing a signer's rename fails; the next poll gets past it.
            let _ = self.wait.poll(&mut pending);
            assert!(
                start.elapsed() < PATIENCE,
                "{} of {} name(s) without an outcome, e.g. {:?}",
                pending.len(),
                self.expected.len(),
                pending.keys().next()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.wait.outcomes
    }
}

/// Asserts every name was signed.
pub fn assert_all_signed(outcomes: &BTreeMap<String, Outcome>, count: usize) {
    assert_eq!(outcomes.len(), count, "{outcomes:?}");
    let not: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| **o != Outcome::Signed)
        .collect();
    assert!(not.is_empty(), "not signed: {not:?}");
}

/// The verifying updater with its trusted metadata folder.
pub struct Client {
    pub updater: Updater<HttpFetcher>,
    pub targets_url: url::Url,
    pub trusted: PathBuf,
}

impl Client {
    /// The target's bytes, verified against its signed length and hashes; `None` when no
    /// trusted metadata lists it.
    pub async fn download(&mut self, name: &str) -> Option<Vec<u8>> {
        let info = self.updater.target_info(name).await.unwrap()?;
        Some(
            self.updater
                .download_target(name, &info, &self.targets_url)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}")),
        )
    }

    /// How many bins the client fetched and keeps.
    pub fn bins_fetched(&self) -> usize {
        std::fs::read_dir(&self.trusted)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_str().unwrap().starts_with("bin-")
            })
            .count()
    }
}

/// `job` (any JSON, well-formed or not) signed by `key` as a submission issued at `issued`,
/// as tests/common's `submission_signed_by` makes it.
pub fn submission(key: &SigningKey, job: &serde_json::Value, issued: jiff::Timestamp) -> Vec<u8> {
    let body = serde_json::json!({"_type": "submission", "issued": issued, "job": job});
    let signed = package_signing::canonical::value_to_vec(&body, "submission").unwrap();
    package_signing::repository::signed::sign_canonical(&signed, 0, &[key])
        .unwrap()
        .bytes
}

/// The letters in `INBOX/dead-letter/`: each job's bytes and the reason beside it.
pub fn dead_letters(inbox: &Path) -> Vec<(Vec<u8>, String)> {
    let Ok(entries) = std::fs::read_dir(inbox.join("dead-letter")) else {
        return Vec::new();
    };
    let mut letters: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let reason = std::fs::read_to_string(p.with_extension("reason")).unwrap_or_default();
            (std::fs::read(&p).unwrap(), reason)
        })
        .collect();
    letters.sort();
    letters
}

/// Job files waiting in an inbox (its dead-letter/ folder aside).
pub fn inbox_jobs(inbox: &Path) -> usize {
    std::fs::read_dir(inbox).map_or(0, |entries| {
        entries
            .filter(|e| e.as_ref().unwrap().path().is_file())
            .count()
    })
}

/// The packaging pipeline's key.
pub fn submitter_key(repo: &Repo) -> SigningKey {
    SigningKey::load(&find_key(&repo.keys, SUBMITTER)).unwrap()
}
