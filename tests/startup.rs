//! Signers and `tuf-client serve` started before `tuf-signer init` (a container set coming up
//! together) wait for the repository in its (empty) folder, saying so once, instead of exiting
//! into a restart loop; once init has finished they sign and serve. A configuration mistake
//! stops them at once.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn signers_and_serve_started_before_init_wait_for_it_then_sign() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo {
        repo: dir.path().join("repo"),
        keys: dir.path().join("keys"),
        dir,
    };
    // The repository's volume, mounted and still empty.
    std::fs::create_dir(&repo.repo).unwrap();
    let prefix = unique_prefix("startup");
    let mut signers = repo.spawn_all_signers(&prefix);
    // The web server of the compose set (tuf-repo-http) comes up with them.
    let server = HttpServer::ours(&repo.repo);
    std::thread::sleep(Duration::from_secs(2));
    for s in &mut signers {
        assert!(s.is_running(), "a signer gave up:\n{}", s.log_text());
        let log = s.log_text();
        assert_eq!(
            log.matches("waiting for the repository").count(),
            1,
            "said once what it waits for:\n{log}"
        );
    }
    ok(run(Command::new(SIGNER)
        .args(["init", "--bins", "16", "--repo"])
        .arg(&repo.repo)
        .arg("--keys")
        .arg(&repo.keys)));
    for s in &mut signers {
        wait_ready(s);
    }
    let releases = make_releases(&repo.path("rel"), 3, "s");
    repo.add_over_broker(&prefix, &repo.path("rel"), &[]);
    let report = ngclient_verify_at(&repo, &server.url(""), &items_for(&releases));
    assert_eq!(report["verified"], releases.len());
    // The signers' gzip copies (on by default), served to a client that asks for gzip, once
    // the copy of the snapshot the timestamp names is there (made off the signing path).
    let timestamp = std::fs::read(repo.repo.join("metadata/timestamp.json")).unwrap();
    let timestamp: serde_json::Value = serde_json::from_slice(&timestamp).unwrap();
    let named = timestamp["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let copy = repo.repo.join(format!("metadata/{named}.snapshot.json.gz"));
    let start = std::time::Instant::now();
    while !copy.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {}",
            copy.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = ngclient_verify_gzip_at(&repo, &server.url(""), &items_for(&releases));
    assert_eq!(report["verified"], releases.len());
    assert!(report["gzip_responses"].as_u64().unwrap() >= 1, "{report}");
    delete_queues(&prefix).await;
}

/// A configuration mistake stops a signer at once, with its reason and a failing exit code,
/// instead of a reconnect loop (in a container, a crash the operator sees rather than a spin):
/// here an AMQP URL that does not parse. The signer that retried never exited: it is killed
/// after a minute, and that fails the test.
#[test]
fn a_signer_with_a_malformed_amqp_url_stops_at_once() {
    let repo = TestRepo::init(4, &[]);
    let out = run_to_end(
        Command::new(SIGNER)
            .args(["run", "--role", "timestamp", "--repo"])
            .arg(&repo.repo)
            .arg("--key")
            .arg(repo.key("timestamp"))
            .args(["--amqp", "amqp://guest:guest@127.0.0.1:notaport/%2f"]),
        "the signer is still retrying a URL that will never parse",
    );
    refused(out, "not an AMQP URL; write amqp://USER@HOST:PORT/VHOST");
}
