//! `tuf-signer health`, the containers' health check, against signer processes over the real
//! broker: healthy once started (each role, and all at once), a hot standby healthy without
//! its metadata judged, a signer killed reported dead once its heartbeat is old (and its
//! standby taking over, healthy and active), a hung signer (SIGSTOP) whose metadata runs past
//! its window reported with what to do, and healthy again once it runs on (SIGCONT). A key that
//! cannot sign is the fast tier's (tests/fast/health.rs: a token pulled out, through
//! `keys::Sign`).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// `tuf-signer health --repo REPO ARGS`: whether it passed, and what it printed.
fn health(repo: &TestRepo, args: &[&str]) -> (bool, String) {
    let out = run(Command::new(SIGNER)
        .arg("health")
        .arg("--repo")
        .arg(&repo.repo)
        .args(args)
        .env_remove("TUF_STATE")
        .env_remove("TUF_KEY"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs [`health`] until it passes (`healthy`) or fails, and its output holds every one of
/// `needles`; fails the test after a minute with the last output.
fn health_until(repo: &TestRepo, args: &[&str], healthy: bool, needles: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let (passed, text) = health(repo, args);
        if passed == healthy && needles.iter().all(|n| text.contains(n)) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "health never {} with {needles:?}; last:\n{text}",
            if healthy { "passed" } else { "failed" }
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn fail_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains(": FAIL ")).collect()
}

fn signal(proc: &Proc, signal: &str) {
    let pid = proc.child.id().to_string();
    let status = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test(flavor = "multi_thread")]
async fn signers_are_healthy_a_standby_too_and_a_killed_one_is_dead() {
    let repo = TestRepo::init(16, &[]);
    let prefix = unique_prefix("health");
    let mut signers = repo.spawn_all_signers(&prefix);
    for proc in &mut signers {
        wait_ready(proc);
    }
    // The default state folder, state/ beside the key, as `run` keeps it.
    let timestamp_key = repo.key("timestamp");
    let key_arg = timestamp_key.to_str().unwrap();
    let text = health_until(
        &repo,
        &["--key", key_arg, "--role", "timestamp"],
        true,
        &[", active,"],
    );
    assert!(text.contains("timestamp: ok   alive: heartbeat"), "{text}");
    assert!(text.contains("timestamp: ok   key "), "{text}");
    assert!(
        text.contains("timestamp.json v1: expires in 23h") && text.contains("unhealthy within 6h"),
        "{text}"
    );
    assert!(text.ends_with("healthy\n"), "{text}");
    // Without --role: every signer whose record is in the folder (here all three).
    let text = health_until(&repo, &["--key", key_arg], true, &[]);
    for role in ["targets", "snapshot", "timestamp"] {
        assert!(text.contains(&format!("{role}: ok   alive")), "{text}");
    }
    assert!(text.contains("bins (the first to expire) v1"), "{text}");

    // A second timestamp signer with a state folder of its own: a healthy hot standby.
    let standby_state = repo.path("standby-state");
    let standby_arg = standby_state.to_str().unwrap();
    let mut standby = repo.spawn_signer("timestamp", &prefix, &["--state", standby_arg]);
    wait_ready(&mut standby);
    let standby_health = ["--state", standby_arg, "--role", "timestamp"];
    let text = health_until(&repo, &standby_health, true, &["standby", "not judged"]);
    assert!(fail_lines(&text).is_empty(), "{text}");

    // No record where it looks: unhealthy, saying where it looked.
    let empty = repo.path("no-state");
    let (passed, text) = health(&repo, &["--state", empty.to_str().unwrap()]);
    assert!(!passed, "{text}");
    assert!(text.contains("no health record"), "{text}");

    // The active timestamp signer killed: dead, once its heartbeat is older than allowed.
    signers[2].kill();
    let dead = [
        "--key",
        key_arg,
        "--role",
        "timestamp",
        "--stale-after",
        "2s",
    ];
    let text = health_until(&repo, &dead, false, &["no heartbeat for"]);
    assert!(text.contains("dead or hung"), "{text}");
    assert!(text.contains("unhealthy: 1 check(s) failed"), "{text}");
    // Its standby takes the next job: active now, and healthy.
    let releases = make_releases(&repo.path("rel"), 2, "health");
    repo.add_over_broker(&prefix, &repo.path("rel"), &[]);
    repo.wait_covered(expected_for(&releases), Duration::from_secs(30));
    let text = health_until(&repo, &standby_health, true, &[", active,"]);
    assert!(text.contains("timestamp.json v"), "{text}");
    delete_queues(&prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_signer_whose_metadata_runs_past_its_window_is_unhealthy() {
    // Lifetimes of seconds: a 4-second timestamp, re-signed once 2 s are left.
    let repo = TestRepo::init(16, &SHORT_LIFETIMES);
    let prefix = unique_prefix("health-hung");
    let mut timestamp = repo.spawn_signer("timestamp", &prefix, &SHORT_LIFETIMES);
    wait_ready(&mut timestamp);
    let key = repo.key("timestamp");
    let args = ["--key", key.to_str().unwrap(), "--role", "timestamp"];
    health_until(&repo, &args, true, &[", active,", "re-signed with 2s left"]);

    // Hung: its heartbeat is still recent, but the timestamp it should keep current expires.
    signal(&timestamp, "-STOP");
    let text = health_until(&repo, &args, false, &["timestamp.json"]);
    let failed = fail_lines(&text);
    assert_eq!(failed.len(), 1, "only the metadata fails:\n{text}");
    assert!(
        failed[0].contains("expired") || failed[0].contains("within 1s"),
        "{text}"
    );
    assert!(
        failed[0].contains("this active signer re-signs it once 2s are left and has not"),
        "{text}"
    );
    assert!(
        failed[0].contains("tuf-client refresh-expiry --role timestamp"),
        "{text}"
    );
    // Longer hung than --stale-after: dead or hung, and the metadata still said.
    let stale = [args.as_slice(), &["--stale-after", "1s"]].concat();
    let text = health_until(&repo, &stale, false, &["no heartbeat for"]);
    assert_eq!(fail_lines(&text).len(), 2, "{text}");

    // It runs on: it re-signs at once, and is healthy again.
    signal(&timestamp, "-CONT");
    health_until(&repo, &args, true, &[", active,"]);
    assert!(timestamp.is_running(), "{}", timestamp.log_text());
    delete_queues(&prefix).await;
}
