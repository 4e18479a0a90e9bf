//! For the tests that break something while a stream of submissions is being signed: the
//! submitter in the background, the ledger as a progress gauge, and the end check that
//! everything was signed once and nothing refused.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{expected_for, ok, run, Proc, TestRepo, CLIENT};

/// `tuf-client add-targets --wait` of `input` into `repo` over `url`, in the background, with
/// `extra` flags; stdout piped, stderr to `stderr` (a file, to read while it runs) or piped.
pub fn submit_in_background(
    repo: &TestRepo,
    url: &str,
    input: &Path,
    extra: &[&str],
    stderr: Option<&Path>,
) -> Child {
    let err = match stderr {
        Some(file) => Stdio::from(std::fs::File::create(file).unwrap()),
        None => Stdio::piped(),
    };
    Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args(["add-targets", "--amqp", url, "--wait", "--timeout", "5m"])
        .args(extra)
        .arg("--repo")
        .arg(&repo.repo)
        .arg("--targets-dir")
        .arg(repo.repo.join("targets"))
        .arg(input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .unwrap()
}

/// Lines in the targets signer's ledger: one more each batch it applies.
pub fn ledger_lines(repo: &TestRepo) -> usize {
    std::fs::read_to_string(repo.repo.join("control/targets/submissions.jsonl"))
        .unwrap()
        .lines()
        .count()
}

/// Waits until the targets signer has applied `batches` more batches than `from`; fails
/// after `timeout`, with `why` and the signers' warnings.
pub fn wait_for_batches(
    repo: &TestRepo,
    from: usize,
    batches: usize,
    timeout: Duration,
    why: &str,
    signers: &[Proc],
) {
    let start = Instant::now();
    while ledger_lines(repo) < from + batches {
        assert!(start.elapsed() < timeout, "{why}:\n{}", warnings(signers));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every line of the signers' logs above INFO.
pub fn warnings(signers: &[Proc]) -> String {
    signers
        .iter()
        .map(Proc::log_text)
        .collect::<String>()
        .lines()
        .filter(|l| !l.contains("INFO"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The end of a stream: every release is covered by the published timestamp, listed once
/// (the count of signed targets is theirs), and nothing went to the dead letters of the
/// broker at `url`.
pub async fn assert_all_signed_once(
    repo: &TestRepo,
    url: &str,
    releases: &[(String, std::path::PathBuf)],
) {
    use package_signing::broker::amqp::{inspect_queues, AmqpConfig};
    use package_signing::broker::Queue;
    repo.wait_covered(expected_for(releases), Duration::from_secs(60));
    let dead = inspect_queues(&AmqpConfig::new(url), &[Queue::DeadLetter])
        .await
        .unwrap();
    assert_eq!(
        dead[0].1.map(|(messages, _)| messages),
        Some(0),
        "nothing refused"
    );
    let status = ok(run(Command::new(CLIENT)
        .args(["status", "--color", "never", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file())));
    assert!(
        status.contains(&format!("targets signed: {}", releases.len())),
        "{status}"
    );
}
