//! High availability: a three-node RabbitMQ cluster of the test's own on loopback, quorum
//! queues, two replicas of each signer given every node's URL, and a node killed with
//! SIGKILL in the middle of a stream of submissions. Nothing is lost, signing goes on, and
//! python-tuf verifies the result.

mod common;

use std::time::{Duration, Instant};

use common::broker_node::{self, BrokerNodes};
use common::stream::*;
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
    let flags = ["--queue-type", "quorum", "--batch-size", "5"];
    let submit = submit_in_background(&repo, &urls_from(0), &repo.path("rel"), &flags, None);
    // Once signing is under way, the first node (every client's first choice) dies.
    let before = ledger_lines(&repo);
    let why = "signing never started";
    wait_for_batches(&repo, before, 2, Duration::from_secs(60), why, &signers);
    let killed_at = Instant::now();
    cluster.kill(0);
    let why = "signing never went on after the node died";
    wait_for_batches(
        &repo,
        ledger_lines(&repo),
        1,
        Duration::from_secs(120),
        why,
        &signers,
    );
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
    assert_all_signed_once(&repo, &urls_from(1), &releases).await;
    let alive = signers
        .iter_mut()
        .map(Proc::is_running)
        .filter(|r| *r)
        .count();
    assert_eq!(alive, signers.len(), "every replica rode it out");
    let report = ngclient_verify(&repo, &items_for(&releases));
    println!("python-tuf: {report}");
}
