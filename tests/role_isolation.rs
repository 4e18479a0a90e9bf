//! Attacks by an agent without the role's key, against the real broker and files: a job is only a hint, and a file
//! is trusted only when it verifies against the keys that must have signed it. Whoever can
//! publish to a signer's queue or write the shared volume, without that role's key, gets
//! nothing signed: forged jobs go to the dead letters with the reason, planted files stop the
//! signer that would adopt them, and `validate` names them. Legitimate work goes on and
//! python-tuf verifies the result.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use package_signing::broker::Queue;
use package_signing::jobs::{SnapshotJob, TimestampJob, Vouching};
use package_signing::keys::SigningKey;
use package_signing::repository::MetaEntry;
use serde_json::{json, Value};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

fn newest(repo: &TestRepo, role: &str) -> u64 {
    repo.layout().scan_versions().unwrap()[role]
        .last()
        .copied()
        .unwrap()
}

/// Copies `version` of `role` to `at`, with `edit` applied to its `signed` part and the old
/// signatures kept: what an attacker without the key can write into `metadata/`.
fn plant(
    repo: &TestRepo,
    role: &str,
    version: u64,
    at: u64,
    edit: impl FnOnce(&mut Value),
) -> (PathBuf, Vec<u8>) {
    let layout = repo.layout();
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(layout.versioned(role, version)).unwrap()).unwrap();
    file["signed"]["version"] = json!(at);
    edit(&mut file["signed"]);
    let bytes = serde_json::to_vec(&file).unwrap();
    let path = layout.versioned(role, at);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn meta(version: u64, bytes: &[u8]) -> Value {
    json!({"version": version, "length": bytes.len(), "sha256": sha256(bytes)})
}

/// A snapshot job naming one file, signed with `key` as the targets signer signs its jobs.
fn signed_job(key: &SigningKey, bin: &str, version: u64, bytes: &[u8]) -> Value {
    let job = SnapshotJob {
        meta: [(format!("{bin}.json"), MetaEntry::of(version, bytes))].into(),
        ..Default::default()
    };
    serde_json::to_value(job.signed_with(key).unwrap()).unwrap()
}

/// A timestamp job naming one snapshot, signed with `key` as the snapshot signer signs its jobs.
fn signed_timestamp_job(key: &SigningKey, version: u64, bytes: &[u8]) -> Value {
    let job = TimestampJob {
        snapshot: Some(MetaEntry::of(version, bytes)),
        ..Default::default()
    };
    serde_json::to_value(job.signed_with(key).unwrap()).unwrap()
}

fn add_release(repo: &TestRepo, prefix: &str, tag: &str) -> Vec<(String, PathBuf)> {
    let dir = repo.path(&format!("rel-{tag}"));
    let releases = make_releases(&dir, 3, tag);
    repo.add_over_broker(prefix, &dir, &[]);
    releases
}

/// A 16-bin repository, its three signers over the broker, and a first release signed.
fn running(tag: &str) -> (String, TestRepo, Vec<Proc>, Vec<(String, PathBuf)>) {
    let prefix = unique_prefix(tag);
    let repo = TestRepo::init(16, &[]);
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let first = add_release(&repo, &prefix, "a");
    (prefix, repo, signers, first)
}

/// python-tuf verifies every release and finds no trace of the attackers' targets, and
/// `validate` finds nothing wrong.
fn honest(repo: &TestRepo, releases: Vec<(String, PathBuf)>) {
    let report = ngclient_verify(repo, &items_for(&releases));
    assert_eq!(report["verified"], releases.len());
    let attackers = ["!drupal/evil/1.0.0.0", "!drupal/core/99.0.0.0"].map(String::from);
    let report = ngclient_verify(repo, &attackers);
    assert_eq!(report["absent"], attackers.len());
    let (valid, out) = validate(repo);
    assert!(valid, "{out}");
}

fn wait_exit(proc: &mut Proc, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < timeout,
            "still running:\n{}",
            proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn validate(repo: &TestRepo) -> (bool, String) {
    let out = run(Command::new(CLIENT)
        .args(["validate", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Attack 2: jobs that name files the role's signer never wrote (version 2^64-1; an unsigned
/// snapshot, top-level targets or bin planted in `metadata/`) are dead-lettered with the
/// reason, and the timestamp and snapshot stay what the real signers made.
#[tokio::test(flavor = "multi_thread")]
async fn downstream_signers_sign_only_files_that_verify() {
    let (prefix, repo, mut signers, first) = running("forged");

    let snapshot = newest(&repo, "snapshot");
    let top = newest(&repo, "targets");
    let bin = "bin-0".to_string();
    let bin_version = newest(&repo, &bin);
    let far = 1_000_000;
    let (planted_snapshot, forged_snapshot) =
        plant(&repo, "snapshot", snapshot, snapshot + far, |_| {});
    let (planted_top, forged_top) = plant(&repo, "targets", top, top + far, |_| {});
    let (planted_bin, forged_bin) = plant(&repo, &bin, bin_version, bin_version + far, |s| {
        s["targets"]["drupal/evil/1.0.0.0"] = json!({"length": 1,
            "hashes": {"sha256": "a".repeat(64), "sha512": "b".repeat(128)}});
    });
    let max = json!({"version": u64::MAX, "length": 1000, "sha256": "c".repeat(64)});
    // Snapshot jobs signed as the targets signer signs them (its key vouches for the hashes):
    // by a stranger's key, and by the targets key but altered afterwards.
    let (stranger, _) = SigningKey::generate().unwrap();
    let targets_key = SigningKey::load(&repo.key("targets")).unwrap();
    let snapshot_key = SigningKey::load(&repo.key("snapshot")).unwrap();
    let mut tampered = signed_job(&targets_key, &bin, bin_version, b"the genuine bytes");
    tampered["meta"][format!("{bin}.json")]["version"] = json!(bin_version + far);
    let cases: Vec<(Queue, Value, String)> = vec![
        (
            Queue::Timestamp,
            json!({"snapshot": max}),
            "is not on disk".into(),
        ),
        (
            Queue::Timestamp,
            json!({"snapshot": meta(snapshot + far, &forged_snapshot)}),
            "not signed by the Snapshot keys".into(),
        ),
        (
            Queue::Snapshot,
            json!({"meta": {"targets.json": meta(top + far, &forged_top)}}),
            "not signed by the Targets keys".into(),
        ),
        (
            Queue::Snapshot,
            json!({"meta": {format!("{bin}.json"): meta(bin_version + far, &forged_bin)}}),
            format!("not signed by the keys targets delegates {bin} to"),
        ),
        (
            Queue::Snapshot,
            json!({"meta": {"targets.json": max}}),
            "is not on disk".into(),
        ),
        (
            Queue::Snapshot,
            signed_job(&stranger, &bin, bin_version + far, &forged_bin),
            "signed by no key of the targets role".into(),
        ),
        (
            Queue::Snapshot,
            tampered,
            "signed by no key of the targets role".into(),
        ),
        // The targets key vouched for other bytes than the (planted) file holds.
        (
            Queue::Snapshot,
            signed_job(&targets_key, &bin, bin_version + far, b"other bytes"),
            "not the ones the job's signer vouched for".into(),
        ),
        // Timestamp jobs signed as the snapshot signer signs them (its key vouches for the
        // snapshot's hash): by a stranger, by the targets key (a real key, of another role),
        // and by the snapshot key for other bytes than the (planted) snapshot holds.
        (
            Queue::Timestamp,
            signed_timestamp_job(&stranger, snapshot + far, &forged_snapshot),
            "signed by no key of the snapshot role".into(),
        ),
        (
            Queue::Timestamp,
            signed_timestamp_job(&targets_key, snapshot + far, &forged_snapshot),
            "signed by no key of the snapshot role".into(),
        ),
        (
            Queue::Timestamp,
            signed_timestamp_job(&snapshot_key, snapshot + far, b"other bytes"),
            "not the ones the job's signer vouched for".into(),
        ),
    ];
    for (queue, body, _) in &cases {
        publish_raw(&prefix, *queue, &serde_json::to_vec(body).unwrap()).await;
    }
    let dead = drain_dead_letters(&prefix, cases.len(), Duration::from_secs(60)).await;
    let reasons: HashMap<Vec<u8>, String> = dead.into_iter().collect();
    for (_, body, want) in &cases {
        let body = serde_json::to_vec(body).unwrap();
        let reason = reasons
            .get(&body)
            .unwrap_or_else(|| panic!("not dead-lettered: {}", String::from_utf8_lossy(&body)));
        assert!(
            reason.contains(want.as_str()),
            "{reason:?} should say {want:?}"
        );
    }
    for p in [&planted_snapshot, &planted_top, &planted_bin] {
        std::fs::remove_file(p).unwrap();
    }

    // Nothing was signed over them: the timestamp names a snapshot the snapshot signer wrote,
    // which lists the targets signer's files; every signer is up and takes the next release.
    let timestamp: Value =
        serde_json::from_slice(&std::fs::read(repo.layout().timestamp()).unwrap()).unwrap();
    let named = timestamp["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    assert!(named < snapshot + far, "timestamp names snapshot {named}");
    for s in &mut signers {
        assert!(s.is_running(), "a signer died:\n{}", s.log_text());
    }
    let second = add_release(&repo, &prefix, "b");
    let snap: Value = serde_json::from_slice(
        &std::fs::read(
            repo.layout()
                .versioned("snapshot", newest(&repo, "snapshot")),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        snap["signed"]["meta"]["targets.json"]["version"]
            .as_u64()
            .unwrap()
            < top + far
    );
    honest(&repo, first.into_iter().chain(second).collect());
    delete_queues(&prefix).await;
}

/// Attack 3: an unsigned bin with one extra target, dropped into `metadata/` as the next
/// version, is never adopted: the targets signer stops on it naming the file, `validate`
/// names it, and once it is moved away the signer starts and signs as before. The same for
/// an old signed version copied under a newer name.
#[tokio::test(flavor = "multi_thread")]
async fn a_planted_file_stops_the_signer_that_would_adopt_it() {
    let (prefix, repo, mut signers, first) = running("planted");
    let bin = "bin-3";
    let version = newest(&repo, bin);
    let (planted, _) = plant(&repo, bin, version, version + 1, |s| {
        s["targets"]["drupal/evil/1.0.0.0"] = json!({"length": 1,
            "hashes": {"sha256": "a".repeat(64), "sha512": "b".repeat(128)}});
    });
    let name = planted.file_name().unwrap().to_str().unwrap().to_string();

    let (valid, out) = validate(&repo);
    assert!(!valid, "{out}");
    assert!(
        out.contains(&name) && out.contains("not signed by the keys targets delegates"),
        "{out}"
    );

    signers[0].kill();
    let refused_at_start = |why: &str| {
        let mut restarted = repo.spawn_signer("targets", &prefix, &[]);
        let status = wait_exit(&mut restarted, Duration::from_secs(30));
        assert!(!status.success());
        let log = restarted.log_text();
        assert!(
            log.contains(&name) && log.contains(why) && log.contains("will not adopt"),
            "{log}"
        );
        // Not re-signed: no newer version of the bin was written over the planted one.
        assert_eq!(newest(&repo, bin), version + 1);
    };
    refused_at_start("not signed by the keys targets delegates");

    // A rollback: the bin's first version, signed, copied under the next version's name
    // (it would bring back whatever was removed since).
    std::fs::rename(&planted, repo.path("quarantined.json")).unwrap();
    std::fs::copy(repo.layout().versioned(bin, 1), &planted).unwrap();
    let (valid, out) = validate(&repo);
    assert!(!valid && out.contains("says it is version 1"), "{out}");
    refused_at_start("says it is version 1");

    std::fs::remove_file(&planted).unwrap();
    signers[0] = repo.spawn_signer("targets", &prefix, &[]);
    wait_ready(&mut signers[0]);
    let second = add_release(&repo, &prefix, "b");
    honest(&repo, first.into_iter().chain(second).collect());
    delete_queues(&prefix).await;
}

fn release_job(name: &str, content: &[u8]) -> Value {
    let sha512 = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA512,
        content,
    ));
    json!({"add": [{"name": name, "length": content.len(),
        "hashes": {"sha256": sha256(content), "sha512": sha512}}]})
}

fn bin_versions(repo: &TestRepo) -> HashMap<String, u64> {
    repo.layout()
        .scan_versions()
        .unwrap()
        .into_iter()
        .filter(|(role, _)| role.starts_with("bin-"))
        .map(|(role, v)| (role, *v.last().unwrap()))
        .collect()
}

/// Attack 1 and the replay rule: the targets signer applies only jobs signed by the
/// submitter key, issued recently, and newer than the last change to each name. An unsigned
/// job (what any broker user could send), one signed by another key or tampered with, a stale
/// one and one from the future are dead-lettered; a replayed add does not undo a later
/// remove; replayed refresh jobs re-sign nothing; a job older than a lost ledger is refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_targets_signer_applies_only_fresh_signed_submissions() {
    let (prefix, repo, mut signers, first) = running("submit");
    let evil = release_job("drupal/core/99.0.0.0", b"evil");
    let now = jiff::Timestamp::now();
    let hours = |h: i64| jiff::SignedDuration::from_hours(h);
    let (stranger, _) = SigningKey::generate().unwrap();
    let mut tampered: Value =
        serde_json::from_slice(&repo.submission(&release_job("drupal/core/1.0.0.0", b"fine")))
            .unwrap();
    tampered["signed"]["job"] = evil.clone();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (serde_json::to_vec(&evil).unwrap(), "unsigned"),
        (
            submission_signed_by(&stranger, &evil, now),
            "not signed by a submitter key this signer trusts",
        ),
        (
            serde_json::to_vec(&tampered).unwrap(),
            "not signed by a submitter key this signer trusts",
        ),
        (repo.submission_issued(&evil, now - hours(25)), "stale"),
        (
            repo.submission_issued(&evil, now + hours(1)),
            "ahead of this signer's clock",
        ),
    ];
    for (body, _) in &cases {
        publish_raw(&prefix, Queue::Targets, body).await;
    }
    let dead = drain_dead_letters(&prefix, cases.len(), Duration::from_secs(60)).await;
    let reasons: HashMap<Vec<u8>, String> = dead.into_iter().collect();
    for (body, want) in &cases {
        let reason = reasons
            .get(body)
            .unwrap_or_else(|| panic!("not dead-lettered: {}", String::from_utf8_lossy(body)));
        assert!(reason.contains(want), "{reason:?} should say {want:?}");
    }

    // A replayed add does not undo the remove that followed it.
    let layout = repo.layout();
    let (x, x_file) = ("drupal/replay/1.0.0.0", repo.path("x"));
    std::fs::write(&x_file, b"first").unwrap();
    std::fs::create_dir_all(layout.targets_dir().join("drupal/replay")).unwrap();
    std::fs::copy(&x_file, layout.targets_dir().join(x)).unwrap();
    let add_x = repo.submission(&release_job(x, b"first"));
    publish_raw(&prefix, Queue::Targets, &add_x).await;
    repo.wait_covered(
        [(x.to_string(), Some((5, sha256(b"first"))))].into(),
        Duration::from_secs(60),
    );
    publish_raw(
        &prefix,
        Queue::Targets,
        &repo.submission(&json!({"remove": [x]})),
    )
    .await;
    repo.wait_covered([(x.to_string(), None)].into(), Duration::from_secs(60));
    publish_raw(&prefix, Queue::Targets, &add_x).await;

    // Replayed refresh jobs: the first re-signs every bin, its replays nothing.
    let refresh = repo.submission(&json!({"refresh_expiry": true}));
    let before = bin_versions(&repo);
    publish_raw(&prefix, Queue::Targets, &refresh).await;
    let start = Instant::now();
    while bin_versions(&repo).iter().any(|(b, v)| *v == before[b]) {
        assert!(start.elapsed() < Duration::from_secs(60), "never refreshed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let refreshed = bin_versions(&repo);
    for _ in 0..3 {
        publish_raw(&prefix, Queue::Targets, &refresh).await;
    }
    // A marker after the replays: once it is covered, they have all been handled.
    let marker = ("drupal/marker/1.0.0.0", b"marker".as_slice());
    // Its file, where the packaging pipeline puts it (add-targets --targets-dir).
    let marker_file =
        layout
            .targets_dir()
            .join(package_signing::repository::layout::consistent_path(
                marker.0,
                &sha256(marker.1),
            ));
    std::fs::create_dir_all(marker_file.parent().unwrap()).unwrap();
    std::fs::write(&marker_file, marker.1).unwrap();
    publish_raw(
        &prefix,
        Queue::Targets,
        &repo.submission(&release_job(marker.0, marker.1)),
    )
    .await;
    repo.wait_covered(
        [
            (marker.0.to_string(), Some((6, sha256(marker.1)))),
            (x.to_string(), None),
        ]
        .into(),
        Duration::from_secs(60),
    );
    let moved: Vec<_> = bin_versions(&repo)
        .into_iter()
        .filter(|(b, v)| *v != refreshed[b])
        .collect();
    assert_eq!(moved.len(), 1, "replays re-signed bins: {moved:?}");
    assert!(signers[0].log_text().contains("superseded"));

    // A lost ledger: what was issued before the signer started a new one is refused.
    let issued_before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    signers[0].kill();
    std::fs::remove_file(repo.repo.join("control/targets/submissions.jsonl")).unwrap();
    signers[0] = repo.spawn_signer("targets", &prefix, &[]);
    wait_ready(&mut signers[0]);
    let old = repo.submission_issued(&evil, issued_before);
    publish_raw(&prefix, Queue::Targets, &old).await;
    let dead = drain_dead_letters(&prefix, 1, Duration::from_secs(60)).await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .1
            .contains("before what the submission ledger remembers"),
        "{}",
        dead[0].1
    );

    let second = add_release(&repo, &prefix, "b");
    honest(&repo, first.into_iter().chain(second).collect());
    let report = ngclient_verify(&repo, &[format!("!{x}")]);
    assert_eq!(report["absent"], 1);
    delete_queues(&prefix).await;
}
