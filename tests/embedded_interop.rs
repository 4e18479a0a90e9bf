//! The embedded single-process mode (no broker: `run --all --inbox`), and names that trip
//! up canonical JSON encoders other than securesystemslib's, verified by python-tuf.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn embedded_mode_signs_tricky_names_that_python_tuf_accepts() {
    // One bin, so that "pkgs/foo", "pkgs/foo bar" and "pkgs/foo!bar" share a file: the key
    // order olpc-cjson gets wrong. Unicode in both normal forms, which must not be merged.
    let repo = TestRepo::init(1, &[]);
    let inbox = repo.path("inbox");
    let _signer = repo.spawn_embedded(&inbox, &[]);
    let names = [
        "pkgs/foo",
        "pkgs/foo bar",
        "pkgs/foo!bar",
        "pkgs/foo+x~y",
        "caf\u{e9}/1.0.0.0",
        "cafe\u{301}/1.0.0.0",
        "p2/drupal/token.json",
    ];
    let mut releases = Vec::new();
    let mut args = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let file = repo.path(&format!("file{i}"));
        std::fs::write(&file, format!("content of {name}")).unwrap();
        args.push("--target".to_string());
        args.push(format!("{name}={}", file.display()));
        releases.push((name.to_string(), file));
    }
    repo.add_over_inbox(&inbox, "60s", &args);

    let report = ngclient_verify(&repo, &items_for(&releases));
    assert_eq!(report["verified"], names.len());
    assert_metadata_rules(&repo);
}

#[test]
fn embedded_mode_keeps_bad_jobs_and_survives_a_restart() {
    let repo = TestRepo::init(16, &[]);
    let inbox = repo.path("inbox");
    let mut signer = repo.spawn_embedded(&inbox, &[]);
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(
        inbox.join("0001-bad.json"),
        repo.submission(&serde_json::json!(
            {"add":[{"name":"../x","length":1,"hashes":{"sha256":"","sha512":""}}]}
        )),
    )
    .unwrap();
    let reason = inbox.join("dead-letter/0001-bad.reason");
    let start = Instant::now();
    while !reason.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "bad job never dead-lettered:\n{}",
            signer.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(std::fs::read_to_string(&reason)
        .unwrap()
        .contains(". or .. segment"));
    assert!(
        inbox.join("dead-letter/0001-bad.json").exists(),
        "the job itself is kept"
    );
    assert!(signer.is_running());

    // Jobs written while the signer is down are signed once it is back.
    signer.kill();
    let releases = make_releases(&repo.path("rel"), 40, "e");
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args(["add-targets", "--inbox"])
        .arg(&inbox)
        .arg("--targets-dir")
        .arg(repo.repo.join("targets"))
        .arg(repo.path("rel")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _signer = repo.spawn_embedded(&inbox, &[]);
    repo.wait_covered(expected_for(&releases), Duration::from_secs(60));
    let left: Vec<_> = std::fs::read_dir(&inbox)
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.path().is_file())
        .collect();
    assert!(
        left.is_empty(),
        "done jobs are removed from the inbox: {left:?}"
    );
}
