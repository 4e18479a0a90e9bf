//! A repository of a test's own: init, its signers (over the broker or embedded), submissions
//! and the releases they carry.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use package_signing::client::coverage::{Coverage, Expected};
use package_signing::repository::Layout;

use super::*;

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
        self.key("submitter")
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

    /// The root init handed over beside the keys (the packaging pipeline's, with
    /// `--key-folders`): where every check of this repository starts.
    pub fn pin_file(&self) -> PathBuf {
        let folder = self.keys.join("submitter");
        if folder.is_dir() {
            return folder.join(package_signing::pin::PIN_FILE);
        }
        self.keys.join(package_signing::pin::PIN_FILE)
    }

    pub fn pin(&self) -> package_signing::pin::Pin {
        package_signing::pin::Pin::new(self.pin_file())
    }

    /// The key (or token reference) init wrote for `role`.
    pub fn key(&self, role: &str) -> PathBuf {
        package_signing::ops::init::find_key(&self.keys, role)
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
            .env("TUF_ROOT", self.pin_file())
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
        let mut coverage = Coverage::new(self.layout(), self.pin());
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
    package_signing::repository::signed::sign_canonical(&signed, 0, &[key])
        .unwrap()
        .bytes
}

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
/// The targets job adding `releases`, as the packaging pipeline writes it (to be signed with
/// [`TestRepo::submission`]).
pub fn add_job(releases: &[(String, PathBuf)]) -> serde_json::Value {
    let add: Vec<serde_json::Value> = releases
        .iter()
        .map(|(name, path)| {
            let bytes = std::fs::read(path).unwrap();
            let hash = |alg| hex::encode(aws_lc_rs::digest::digest(alg, &bytes));
            serde_json::json!({"name": name, "length": bytes.len(), "hashes": {
                "sha256": hash(&aws_lc_rs::digest::SHA256),
                "sha512": hash(&aws_lc_rs::digest::SHA512)}})
        })
        .collect();
    serde_json::json!({ "add": add })
}

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

pub fn items_for(releases: &[(String, PathBuf)]) -> Vec<String> {
    releases
        .iter()
        .map(|(n, p)| format!("{n}={}", p.display()))
        .collect()
}
