//! Signers re-sign their own metadata before it expires, with no job and no operator, and
//! `tuf-client refresh-expiry` forces it; python-tuf accepts the repository afterwards.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn timestamp_version(repo: &TestRepo) -> u64 {
    let bytes = std::fs::read(repo.layout().timestamp()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["signed"]["version"].as_u64().unwrap()
}

fn newest(repo: &TestRepo, role: &str) -> u64 {
    *repo.layout().scan_versions().unwrap()[role].last().unwrap()
}

#[test]
fn metadata_is_re_signed_before_it_expires_and_on_request() {
    // Lifetimes of seconds: without refreshing, python-tuf would refuse this repository as
    // expired (a freeze) a few seconds after init.
    let short = SHORT_LIFETIMES;
    let repo = TestRepo::init(4, &short);
    let inbox = repo.path("inbox");
    let releases = make_releases(&repo.path("rel"), 5, "x");
    let _signer = repo.spawn_embedded(&inbox, &short);
    repo.add_over_inbox(&inbox, "30s", &[repo.path("rel")]);

    // Idle for longer than every lifetime: each role must have re-signed by itself.
    let (ts, snap, top) = (
        timestamp_version(&repo),
        newest(&repo, "snapshot"),
        newest(&repo, "targets"),
    );
    std::thread::sleep(Duration::from_secs(14));
    assert!(timestamp_version(&repo) > ts + 1, "timestamp not re-signed");
    assert!(newest(&repo, "snapshot") > snap, "snapshot not re-signed");
    assert!(
        newest(&repo, "targets") > top,
        "top-level targets not re-signed"
    );
    ngclient_verify(&repo, &items_for(&releases));

    // Forced: the targets role re-signs every bin now, and the chain follows.
    let bin = package_signing::bins::HashBins::new(4).unwrap().name(0);
    let bins_before = newest(&repo, &bin);
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args(["refresh-expiry", "--inbox"])
        .arg(&inbox));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    while newest(&repo, &bin) <= bins_before {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "refresh-expiry did nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ngclient_verify(&repo, &items_for(&releases));
    assert_metadata_rules(&repo);
}
