//! High availability: a three-node RabbitMQ cluster of the test's own on loopback, quorum
//! queues, two replicas of each signer given every node's URL, and a node killed with
//! SIGKILL in the middle of a stream of submissions. Nothing is lost, signing goes on, and
//! python-tuf verifies the result.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker_node::{self, BrokerNodes};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_node_killed_mid_stream_loses_nothing() {
    if !broker_node::available() {
        println!("skipped: no RabbitMQ installation to run a private cluster");
        return;
    }
    let repo = TestRepo::init(64, &[]);
    let started = Instant::now();
    let cluster = BrokerNodes::cluster(&repo.path("cluster"), "tuf-ha", &[5695, 5696, 5697]);
    println!(
        "cluster of {} nodes up in {:.1} s",
        cluster.urls.len(),
        started.elapsed().as_secs_f64()
    );
    // Each replica lists every node, starting from a different one.
    let urls_from = |first: usize| {
        (0..cluster.urls.len())
            .map(|i| cluster.urls[(first + i) % cluster.urls.len()].clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    let quorum = ["--queue-type", "quorum"];
    // Small batches, so that the stream is still being signed when the node dies.
    let signer_flags = ["--queue-type", "quorum", "--batch-max", "5"];
    let mut signers = Vec::new();
    for (n, role) in ["targets", "snapshot", "timestamp"].iter().enumerate() {
        for replica in 0..2 {
            let urls = urls_from(n + replica);
            signers.push(repo.spawn_signer_at(
                &urls,
                role,
                &repo.key(role),
                "",
                &signer_flags,
                &[],
            ));
        }
    }
    for s in &mut signers {
        wait_ready(s);
    }
    let queues = cluster.ctl(
        1,
        "rabbitmqctl",
        &["list_queues", "name", "type", "consumers"],
    );
    println!("{queues}");
    assert!(
        queues.contains("tuf.targets\tquorum"),
        "the queues are quorum queues:\n{queues}"
    );

    let releases = make_releases(&repo.path("rel"), 2000, "ha");
    let submit = Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args(["add-targets", "--amqp", &urls_from(0)])
        .args(quorum)
        .args(["--batch-size", "5", "--wait", "--timeout", "5m", "--repo"])
        .arg(&repo.repo)
        .arg("--targets-dir")
        .arg(repo.repo.join("targets"))
        .arg(repo.path("rel"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once signing is under way, the first node (every client's first choice) dies.
    let ledger = repo.repo.join("control/submissions.jsonl");
    let lines = || std::fs::read_to_string(&ledger).unwrap().lines().count();
    let before = lines();
    let start = Instant::now();
    while lines() < before + 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "signing never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed_at = Instant::now();
    cluster.kill(0);
    let applied_then = lines();
    while lines() <= applied_then {
        assert!(
            killed_at.elapsed() < Duration::from_secs(120),
            "signing never went on after the node died:\n{}",
            signers
                .iter()
                .map(Proc::log_text)
                .collect::<String>()
                .lines()
                .filter(|l| !l.contains("INFO"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "node 1 killed; the targets signer applied a batch again {:.2} s later",
        killed_at.elapsed().as_secs_f64()
    );
    let out = submit.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "add-targets failed:\n{stderr}");
    println!(
        "add-targets: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );

    repo.wait_covered(expected_for(&releases), Duration::from_secs(60));
    let config = package_signing::broker::amqp::AmqpConfig::new(urls_from(1));
    let dead = package_signing::broker::amqp::inspect_queues(
        &config,
        &[package_signing::broker::Queue::DeadLetter],
    )
    .await
    .unwrap();
    assert_eq!(
        dead[0].1.map(|(messages, _)| messages),
        Some(0),
        "nothing refused"
    );
    let status = ok(run(Command::new(CLIENT)
        .args(["status", "--color", "never", "--repo"])
        .arg(&repo.repo)));
    assert!(
        status.contains(&format!("targets signed: {}", releases.len())),
        "{status}"
    );
    let alive = signers
        .iter_mut()
        .map(Proc::is_running)
        .filter(|r| *r)
        .count();
    assert_eq!(alive, signers.len(), "every replica rode it out");
    let report = ngclient_verify(&repo, &items_for(&releases));
    println!("python-tuf: {report}");
}
