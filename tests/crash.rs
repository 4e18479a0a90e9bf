//! SIGKILL in the middle of the stream loses nothing and signs nothing twice.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use package_signing::bins::HashBins;

fn newest_versions(repo: &TestRepo) -> HashMap<String, u64> {
    repo.layout()
        .scan_versions()
        .unwrap()
        .into_iter()
        .map(|(role, v)| (role, *v.last().unwrap()))
        .collect()
}

fn submit(repo: &TestRepo, prefix: &str, inputs: &[String], wait: bool) {
    let mut cmd = Command::new(CLIENT);
    cmd.env("TUF_SUBMITTER_KEY", repo.submitter_key());
    cmd.args([
        "add-targets",
        "--amqp",
        &amqp_url(),
        "--queue-prefix",
        prefix,
        "--batch-size",
        "25",
        "--targets-dir",
    ])
    .arg(repo.repo.join("targets"))
    .args(inputs);
    if wait {
        cmd.args(["--wait", "--timeout", "120s", "--repo"])
            .arg(&repo.repo);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_batch_then_restart_signs_every_target_exactly_once() {
    let prefix = unique_prefix("crash");
    let repo = TestRepo::init(256, &[]);
    let mut targets = repo.spawn_signer("targets", &prefix, &["--batch-max", "40"]);
    let mut snapshot = repo.spawn_signer("snapshot", &prefix, &[]);
    let _timestamp = repo.spawn_signer("timestamp", &prefix, &[]);
    wait_ready(&mut targets);

    let releases = make_releases(&repo.path("rel"), 3000, "c");
    submit(
        &repo,
        &prefix,
        &[repo.path("rel").display().to_string()],
        false,
    );

    // Kill both signers while the stream is being signed.
    let start = Instant::now();
    while newest_versions(&repo).values().filter(|v| **v >= 3).count() < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "signing never started:\n{}",
            targets.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    targets.kill();
    snapshot.kill();
    let mut pending = expected_for(&releases);
    let mut coverage = package_signing::client::coverage::Coverage::new(repo.layout(), repo.pin());
    coverage.check(&mut pending).unwrap();
    assert!(
        !pending.is_empty(),
        "everything was signed before the kill: the test proves nothing"
    );
    eprintln!("killed with {} of 3000 not yet covered", pending.len());

    let _targets = repo.spawn_signer("targets", &prefix, &["--batch-max", "40"]);
    let _snapshot = repo.spawn_signer("snapshot", &prefix, &[]);
    repo.wait_covered(expected_for(&releases), Duration::from_secs(120));

    // Exactly once: 3000 entries in all, each in the bin its hash names.
    let bins = HashBins::new(256).unwrap();
    let versions = newest_versions(&repo);
    let mut total = 0;
    for i in 0..256 {
        let name = bins.name(i);
        let bytes = std::fs::read(repo.layout().versioned(&name, versions[&name])).unwrap();
        let bin: tough::schema::Signed<package_signing::schema::Targets> =
            serde_json::from_slice(&bytes).unwrap();
        for target in bin.signed.targets.keys() {
            assert_eq!(bins.index_of(target), i, "{target} in the wrong bin");
        }
        total += bin.signed.targets.len();
    }
    assert_eq!(total, 3000);

    // Submitting the same releases again changes nothing; one new release moves exactly
    // its own bin and one snapshot.
    let before = newest_versions(&repo);
    let again: Vec<String> = releases
        .iter()
        .take(60)
        .flat_map(|(n, p)| ["--target".to_string(), format!("{n}={}", p.display())])
        .collect();
    submit(&repo, &prefix, &again, false);
    let extra = make_releases(&repo.path("extra"), 1, "new");
    submit(
        &repo,
        &prefix,
        &[repo.path("extra").display().to_string()],
        true,
    );
    let after = newest_versions(&repo);
    let moved: Vec<_> = after
        .iter()
        .filter(|(role, v)| before.get(*role) != Some(v))
        .map(|(r, _)| r.clone())
        .collect();
    let new_bin = bins.name(bins.index_of(&extra[0].0));
    let mut want = vec![new_bin.clone(), "snapshot".to_string()];
    want.sort();
    let mut moved_sorted = moved.clone();
    moved_sorted.sort();
    assert_eq!(
        moved_sorted, want,
        "only the new release's bin and the snapshot move"
    );
    assert_eq!(after["snapshot"], before["snapshot"] + 1);
    assert_eq!(after[&new_bin], before[&new_bin] + 1);

    let sample: Vec<_> = releases.iter().step_by(100).cloned().chain(extra).collect();
    ngclient_verify(&repo, &items_for(&sample));
    assert_metadata_rules(&repo);
    delete_queues(&prefix).await;
}
