//! A broker that goes away and comes back: submissions wait for it and are neither lost nor
//! applied twice, and the signers consume again within seconds of its return. On a RabbitMQ
//! node of the test's own (`scripts/broker-node`), never the shared one.

mod common;

use std::time::{Duration, Instant};

use common::broker_node::{self, BrokerNodes};
use common::stream::*;
use common::*;

/// How long after `since` each signer said "signer ready" for the `n`-th time (its
/// consumer attached again), in seconds; `None` while one has not.
fn ready_again(signers: &[Proc], n: usize, since: jiff::Timestamp) -> Option<Vec<f64>> {
    signers
        .iter()
        .map(|s| {
            let log = s.log_text();
            let line = log
                .lines()
                .filter(|l| l.contains("signer ready"))
                .nth(n - 1)?;
            // Text logs start with the RFC 3339 time (after an ANSI dim code on a terminal).
            let stamp = line
                .trim_start_matches("\u{1b}[2m")
                .split(['\u{1b}', ' '])
                .next()?;
            let at: jiff::Timestamp = stamp.trim().parse().ok()?;
            Some(at.duration_since(since).as_secs_f64())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn submissions_wait_out_a_broker_restart_and_nothing_is_lost_or_doubled() {
    if !broker_node::available() {
        println!("skipped: no RabbitMQ installation to run a private node");
        return;
    }
    let repo = TestRepo::init(64, &[]);
    let node = BrokerNodes::single(&repo.path("broker"), "tuf-outage", 5691);
    let url = node.urls[0].clone();
    let prefix = "";
    let mut signers: Vec<Proc> = ["targets", "snapshot", "timestamp"]
        .iter()
        .map(|r| repo.spawn_signer_at(&url, r, &repo.key(r), prefix, &[], &[]))
        .collect();
    for s in &mut signers {
        wait_ready(s);
    }

    // The broker crashes; a release is submitted while it is down.
    node.kill(0);
    let down_at = Instant::now();
    let releases = make_releases(&repo.path("rel"), 400, "outage");
    let stderr = repo.path("add-targets.err");
    let wait = ["--broker-wait", "2m", "--batch-size", "20"];
    let mut submit = submit_in_background(&repo, &url, &repo.path("rel"), &wait, Some(&stderr));
    while !std::fs::read_to_string(&stderr)
        .unwrap()
        .contains("waiting for the broker")
    {
        assert!(
            down_at.elapsed() < Duration::from_secs(30),
            "add-targets does not say it waits:\n{}",
            std::fs::read_to_string(&stderr).unwrap()
        );
        assert!(submit.try_wait().unwrap().is_none(), "add-targets gave up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(5));
    assert!(submit.try_wait().unwrap().is_none(), "add-targets gave up");

    node.start(0);
    let back = jiff::Timestamp::now();
    let out = submit.wait_with_output().unwrap();
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(out.status.success(), "add-targets failed:\n{err}");
    println!(
        "broker down for {:.1} s; add-targets waited and then: {}",
        down_at.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    let start = Instant::now();
    let delays = loop {
        if let Some(d) = ready_again(&signers, 2, back) {
            break d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "signers never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("signers consuming again after the broker's return: {delays:.2?} s");

    // Now the broker goes away in the middle of a stream of jobs (graceful stop this time),
    // and comes back 3 s later: every job of the stream is signed, once.
    let more = make_releases(&repo.path("more"), 3000, "midstream");
    let one_by_one = ["--broker-wait", "2m", "--batch-size", "1"];
    let submit = submit_in_background(&repo, &url, &repo.path("more"), &one_by_one, None);
    let before = ledger_lines(&repo);
    let why = "the stream never started";
    wait_for_batches(&repo, before, 1, Duration::from_secs(60), why, &signers);
    node.stop(0);
    std::thread::sleep(Duration::from_secs(3));
    node.start(0);
    let out = submit.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "add-targets failed:\n{err}");
    assert!(err.contains("waiting for the broker"), "{err}");

    let mut all = releases.clone();
    all.extend(more);
    assert_all_signed_once(&repo, &url, &all).await;
    let report = ngclient_verify(&repo, &items_for(&all));
    println!("python-tuf: {report}");
}
