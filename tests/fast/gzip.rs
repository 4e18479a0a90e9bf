//! Gzip copies beside the metadata versions (`N.ROLE.json.gz`, `repository::gzip`): made off
//! the signing path for the newest version of each file, each the gzip of its version's bytes,
//! pruned with their versions, never taken for versions, and accepted by `validate`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use package_signing::repository::gzip::{copy_of, decompress};
use package_signing::repository::layout::version_of_copy;
use package_signing::repository::prune::Retention;
use package_signing::repository::Layout;

use crate::harness::*;

/// The newest version of every file on disk (`timestamp.json` has none; roots get none).
fn newest_versions(layout: &Layout) -> Vec<PathBuf> {
    let versions = layout.scan_versions().unwrap();
    versions
        .iter()
        .filter(|(role, _)| role.as_str() != "root")
        .map(|(role, v)| layout.versioned(role, *v.last().unwrap()))
        .collect()
}

/// Whether every newest version has its copy, gunzipping to its bytes (`None`: not yet).
fn all_copied(layout: &Layout) -> Option<usize> {
    let newest = newest_versions(layout);
    for path in &newest {
        let copy = std::fs::read(copy_of(path)).ok()?;
        assert_eq!(
            decompress(&copy).unwrap(),
            std::fs::read(path).unwrap(),
            "{}",
            path.display()
        );
    }
    Some(newest.len())
}

/// Every copy in `metadata/`: each beside its version, with its bytes once gunzipped.
fn copies(layout: &Layout) -> BTreeSet<String> {
    let dir = layout.metadata_dir();
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(plain) = version_of_copy(&name) {
            let unpacked = decompress(&std::fs::read(dir.join(&name)).unwrap()).unwrap();
            assert_eq!(unpacked, std::fs::read(dir.join(plain)).unwrap(), "{name}");
            found.insert(name);
        } else {
            assert!(!name.ends_with(".gz"), "a stray copy: {name}");
        }
    }
    found
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_copies_follow_every_publish_and_go_with_their_versions() {
    let repo = Repo::init(16);
    let mut settings = repo.settings();
    assert!(settings.layout.makes_gzip_copies(), "on by default");
    // Prune every superseded version as soon as the pruner runs (every 5 s) past a short grace.
    settings.retention = Retention {
        keep_for: Some(Duration::ZERO),
        keep_versions: Some(0),
        grace: Duration::from_millis(200),
    };
    let signers = Signers::start_with(&repo, &repo.inbox, settings);
    // init writes none: the signers copy what they find at start (an upgrade, too).
    let layout = &repo.layout;
    let first = eventually("copies of init's versions", || all_copied(layout)).await;
    assert_eq!(first, 16 + 2, "the bins, targets and snapshot");
    let v1 = layout.versioned("snapshot", 1);
    assert!(exists(&copy_of(&v1)));

    for round in 0..3 {
        let releases = repo.releases(&format!("rel{round}"), 20, &format!("r{round}"));
        assert_all_signed(&repo.add(&releases).await, 20);
    }
    eventually("copies of the newest versions", || all_copied(layout)).await;
    assert!(!exists(&repo.layout.timestamp().with_extension("json.gz")));

    // Pruned: each superseded version and its copy, never a copy alone.
    eventually("version 1 of the snapshot pruned", || {
        (!exists(&v1)).then_some(())
    })
    .await;
    assert!(!exists(&copy_of(&v1)), "its copy went with it");
    // Copies are no versions: the client and validate see the repository as before.
    repo.assert_downloads(&repo.releases("rel0", 20, "r0")[..3])
        .await;
    let report = repo.validate();
    assert!(report.is_ok(), "{}", report.render());
    assert!(
        report.render().contains("gzip copies in metadata/"),
        "{}",
        report.render()
    );
    signers.stop().await;
    // Stopped: nothing is pruned while the folder is listed.
    let found = copies(layout);
    assert!(found.contains(&format!(
        "{}.gz",
        newest_versions(layout)
            .iter()
            .find(|p| p.to_string_lossy().ends_with(".snapshot.json"))
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    )));

    // A copy that is not its version's bytes, or a stray .gz a web server would serve, is a
    // problem validate names.
    let newest = newest_versions(layout).pop().unwrap();
    std::fs::write(
        copy_of(&newest),
        package_signing::repository::gzip::compress(b"{}"),
    )
    .unwrap();
    std::fs::write(layout.metadata_dir().join("timestamp.json.gz"), b"old").unwrap();
    let report = repo.validate();
    let text = report.render();
    assert_eq!(report.problems.len(), 2, "{text}");
    assert!(
        text.contains("does not gunzip to") && text.contains("timestamp.json.gz"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_copies_when_turned_off() {
    let repo = Repo::init(4);
    let keys = package_signing::role::Role::ONLINE
        .map(|role| {
            (
                role,
                package_signing::ops::init::find_key(&repo.keys, role.name()),
            )
        })
        .to_vec();
    let mut off = package_signing::signer::Signers::new(&repo.layout.dir, keys);
    off.gzip_copies = false;
    let settings = off.settings().unwrap();
    assert!(!settings.layout.makes_gzip_copies());
    let signers = Signers::start_with(&repo, &repo.inbox, settings);
    assert_all_signed(&repo.add(&repo.releases("rel", 5, "a")).await, 5);
    signers.stop().await;
    assert!(copies(&repo.layout).is_empty());
}
