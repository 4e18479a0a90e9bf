//! A second replica of a signer is a hot standby (single-active-consumer): when the active
//! one dies it takes over, starting from what the active one wrote, not from what it read.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn standby_targets_signer_takes_over_without_losing_the_active_ones_work() {
    let prefix = unique_prefix("standby");
    let repo = TestRepo::init(16, &[]);
    let mut active = repo.spawn_signer("targets", &prefix, &[]);
    wait_ready(&mut active);
    let mut standby = repo.spawn_signer("targets", &prefix, &[]);
    wait_ready(&mut standby);
    let _snapshot = repo.spawn_signer("snapshot", &prefix, &[]);
    let _timestamp = repo.spawn_signer("timestamp", &prefix, &[]);

    let first = make_releases(&repo.path("first"), 200, "one");
    repo.add_over_broker(&prefix, &repo.path("first"), &[]);
    assert!(
        !standby.log_text().contains("batch done"),
        "the standby must not consume while the active one lives"
    );

    active.kill();
    let second = make_releases(&repo.path("second"), 200, "two");
    repo.add_over_broker(&prefix, &repo.path("second"), &[]);
    assert!(
        standby.log_text().contains("reloading state from disk"),
        "{}",
        standby.log_text()
    );

    // Both batches are signed: the standby did not sign over the active one's bins.
    let mut all = expected_for(&first);
    all.extend(expected_for(&second));
    repo.wait_covered(all, Duration::from_secs(10));
    let sample: Vec<_> = first
        .iter()
        .chain(second.iter())
        .step_by(20)
        .cloned()
        .collect();
    ngclient_verify(&repo, &items_for(&sample));
    delete_queues(&prefix).await;
}
