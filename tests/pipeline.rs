//! End to end over the real broker: init, three signer processes, 1,000 releases in several
//! batches, then python-tuf's ngclient and our own verifying client download a sample.

mod common;

use std::process::Command;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn thousand_releases_through_three_signer_processes_verify_with_python_tuf() {
    let prefix = unique_prefix("e2e");
    let repo = TestRepo::init(2048, &[]);
    let _signers = repo.spawn_all_signers(&prefix);

    let mut all = Vec::new();
    for batch in 0..4 {
        let dir = repo.path(&format!("releases{batch}"));
        let releases = make_releases(&dir, 250, &format!("b{batch}"));
        let out = repo.add_over_broker(&prefix, &dir, &["--batch-size", "100"]);
        assert!(out.contains("250 target(s) covered"), "{out}");
        all.extend(releases);
    }
    // Composer metadata goes in under its repository path.
    let p2 = repo.path("p2src/p2/drupal/module1.json");
    std::fs::create_dir_all(p2.parent().unwrap()).unwrap();
    std::fs::write(&p2, br#"{"packages":{}}"#).unwrap();
    repo.add_over_broker(&prefix, &repo.path("p2src"), &[]);
    all.push(("p2/drupal/module1.json".into(), p2));

    let status = run(Command::new(CLIENT)
        .args(["status", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file()));
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains("targets signed: 1001"), "{status}");

    // python-tuf, the reference client, over HTTP: a sample of 60 plus the Composer file.
    let sample: Vec<_> = all
        .iter()
        .step_by(17)
        .cloned()
        .chain(std::iter::once(all.last().unwrap().clone()))
        .collect();
    let report = ngclient_verify(&repo, &items_for(&sample));
    assert_eq!(report["verified"], sample.len());

    // Our own verifying client, from a fresh trusted-metadata folder.
    let server = HttpServer::serve(&repo.repo);
    let trusted = repo.path("client-metadata");
    let out = run(Command::new(CLIENT)
        .args(["init", "--metadata-dir"])
        .arg(&trusted)
        .arg(repo.repo.join("metadata/1.root.json")));
    assert!(out.status.success());
    let names: Vec<&str> = all.iter().step_by(50).map(|(n, _)| n.as_str()).collect();
    let out_dir = repo.path("downloads");
    let out = run(Command::new(CLIENT)
        .args(["download", "--metadata-dir"])
        .arg(&trusted)
        .args([
            "--metadata-url",
            &server.url("metadata/"),
            "--targets-url",
            &server.url("targets/"),
            "-o",
        ])
        .arg(&out_dir)
        .args(&names));
    assert!(
        out.status.success(),
        "tuf-client download: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, file) in all.iter().step_by(50) {
        assert_eq!(
            std::fs::read(out_dir.join(name)).unwrap(),
            std::fs::read(file).unwrap(),
            "{name}"
        );
    }
    // Only the bins those names need were fetched, not all 2048.
    let fetched_bins = std::fs::read_dir(&trusted)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with("bin-")
        })
        .count();
    assert!(
        fetched_bins <= names.len(),
        "fetched {fetched_bins} bins for {} names",
        names.len()
    );

    // Removing releases: they disappear for python-tuf too.
    let removed: Vec<&str> = all.iter().take(5).map(|(n, _)| n.as_str()).collect();
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args([
            "remove-targets",
            "--amqp",
            &amqp_url(),
            "--queue-prefix",
            &prefix,
            "--wait",
            "--timeout",
            "60s",
            "--repo",
        ])
        .arg(&repo.repo)
        .args(&removed));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut items: Vec<String> = removed.iter().map(|n| format!("!{n}")).collect();
    items.extend(items_for(&all[5..8]));
    let report = ngclient_verify(&repo, &items);
    assert_eq!(report["absent"], 5);

    assert!(assert_metadata_rules(&repo) > 2048);
    let out = run(Command::new(CLIENT)
        .args(["validate", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file()));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains("2048 bins, 996 targets"),
        "{report}"
    );
    delete_queues(&prefix).await;
}
