//! `tuf-client bins --count N`: every target is kept, the published repository verifies at
//! every moment, and a signer killed at any point of the change finishes it on restart.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn published_bins(repo: &TestRepo) -> usize {
    package_signing::client::status::published_bins(&repo.layout()).unwrap()
}

fn client(repo: &TestRepo, prefix: &str, args: &[&str]) -> String {
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args(args)
        .args(["--amqp", &amqp_url(), "--queue-prefix", prefix]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = repo;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn validate(repo: &TestRepo) -> String {
    let out = run(Command::new(CLIENT)
        .args(["validate", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text
}

/// Every release verifies for a fresh python-tuf client and for one that kept its state.
fn verify_all(repo: &TestRepo, releases: &[(String, std::path::PathBuf)]) {
    ngclient_verify(repo, &items_for(releases));
    ngclient_update(repo, "installed-client", &items_for(releases));
    validate(repo);
}

/// A targets signer that aborts at crash point `point`.
fn spawn_failing(repo: &TestRepo, prefix: &str, point: &str) -> Proc {
    repo.spawn_signer_env(
        "targets",
        &repo.key("targets"),
        prefix,
        &[],
        &[("TUF_FAILPOINT", point)],
    )
}

fn wait_until_bins(repo: &TestRepo, count: usize, signer: &Proc) {
    let start = Instant::now();
    while published_bins(repo) != count {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{count} bins never published:\n{}",
            signer.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_aborted(proc: &mut Proc, point: &str) {
    let start = Instant::now();
    while proc.is_running() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the signer never reached {point}:\n{}",
            proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        proc.log_text()
            .contains(&format!("TUF_FAILPOINT {point}: aborting here")),
        "stopped elsewhere than {point}:\n{}",
        proc.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bin_count_change_survives_a_kill_at_every_point() {
    let repo = TestRepo::init(4, &[]);
    let prefix = unique_prefix("bins");
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let mut releases = make_releases(&repo.path("rel-a"), 60, "a");
    repo.add_over_broker(&prefix, &repo.path("rel-a"), &[]);
    verify_all(&repo, &releases);

    // Killed before half the new bins, then before top-level targets: each time the
    // published repository is the old one, whole, and the job waits in the queue.
    signers[0].kill();
    let mut first = spawn_failing(&repo, &prefix, "rebin:half-the-bins-written");
    wait_ready(&mut first);
    client(&repo, &prefix, &["bins", "--count", "64"]);
    wait_aborted(&mut first, "rebin:half-the-bins-written");
    assert_eq!(published_bins(&repo), 4);
    verify_all(&repo, &releases);
    let mut second = spawn_failing(&repo, &prefix, "rebin:bins-written");
    wait_aborted(&mut second, "rebin:bins-written");
    assert_eq!(published_bins(&repo), 4);
    verify_all(&repo, &releases);

    // A restarted signer finishes the change.
    signers[0] = repo.spawn_signer("targets", &prefix, &[]);
    wait_until_bins(&repo, 64, &signers[0]);
    verify_all(&repo, &releases);
    let report = validate(&repo);
    assert!(report.contains("64 bins, 60 targets"), "{report}");
    assert!(report.contains("4 retired bin(s)"), "{report}");

    // Killed after the new top-level targets, before handing it on, with a hot standby
    // behind it: the standby (which read the repository before) finishes the change.
    signers[0].kill();
    let mut active = spawn_failing(&repo, &prefix, "rebin:top-written");
    wait_ready(&mut active);
    let mut standby = repo.spawn_signer("targets", &prefix, &[]);
    wait_ready(&mut standby);
    client(&repo, &prefix, &["bins", "--count", "16"]);
    wait_aborted(&mut active, "rebin:top-written");
    wait_until_bins(&repo, 16, &standby);
    verify_all(&repo, &releases);
    signers[0] = standby;

    // New releases land in the new bins; then back to 4 bins (names used before).
    let more = make_releases(&repo.path("rel-b"), 20, "b");
    repo.add_over_broker(&prefix, &repo.path("rel-b"), &[]);
    releases.extend(more);
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args([
            "bins",
            "--count",
            "4",
            "--amqp",
            &amqp_url(),
            "--queue-prefix",
            &prefix,
        ])
        .args(["--wait", "--timeout", "60s", "--repo"])
        .arg(&repo.repo));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 bins published (80 targets)"));
    verify_all(&repo, &releases);
    assert!(validate(&repo).contains("80 retired bin(s)"));
    assert_metadata_rules(&repo);
    drop(signers);
    delete_queues(&prefix).await;
}
