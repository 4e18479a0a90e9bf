//! Releases through the three signers to a client, as tests/pipeline.rs does over the broker
//! with python-tuf: submitted in several jobs, signed, downloaded and verified byte for byte,
//! removed again.

use std::time::Duration;

use package_signing::client::status;
use package_signing::client::validate::{validate, Window};
use package_signing::client::wait::Outcome;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_go_through_targets_snapshot_timestamp_and_verify_byte_for_byte() {
    let repo = Repo::init(64);
    let signers = repo.start().await;

    // 120 releases in jobs of 25, plus Composer metadata under its repository path.
    let mut releases = repo.releases("rel", 120, "a");
    releases.push(repo.release("p2/drupal/module1.json", r#"{"packages":{}}"#));
    let submitted = repo.submit(&repo.inbox, &releases, 25, false).await;
    assert_eq!(submitted.expected.len(), 121);
    let outcomes = submitted.outcomes().await;
    assert_all_signed(&outcomes, 121);

    // The verifying updater, from a fresh trusted folder holding only 1.root.json: a sample
    // and the Composer file, byte for byte; only the bins those names need are fetched.
    let mut sample: Vec<_> = releases[..120].iter().step_by(7).cloned().collect();
    sample.push(releases[120].clone());
    let client = repo.assert_downloads(&sample).await;
    assert!(
        (1..=sample.len()).contains(&client.bins_fetched()),
        "fetched {} bins for {} names",
        client.bins_fetched(),
        sample.len()
    );

    // Every signature, hash, bin and expiry, as `tuf-client validate` checks them.
    let report = repo.validate();
    assert!(report.is_ok(), "{}", report.render());
    assert!(
        report.render().contains("64 bins, 121 targets")
            && !report.render().contains("newer than the snapshot lists"),
        "{}",
        report.render()
    );
    assert_eq!(
        status::read(&repo.layout, &repo.pin()).unwrap().targets,
        121
    );

    // The inbox is empty once every job is signed and handed on; nothing was refused.
    assert_eq!(inbox_jobs(&repo.inbox), 0);
    assert!(!repo.inbox.join("dead-letter").exists());
    signers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_targets_disappear_for_the_client_and_the_rest_stay() {
    let repo = Repo::init(16);
    let signers = repo.start().await;
    let releases = repo.releases("rel", 10, "r");
    assert_all_signed(&repo.add(&releases).await, 10);
    let before = repo.newest("snapshot");

    let removed: Vec<&str> = releases[..3].iter().map(|r| r.name.as_str()).collect();
    let outcomes = repo.remove(&removed).await;
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.values().all(|o| *o == Outcome::Signed),
        "{outcomes:?}"
    );
    assert!(repo.newest("snapshot") > before);

    let mut client = repo.assert_downloads(&releases[3..]).await;
    for name in &removed {
        assert_eq!(client.download(name).await, None, "{name} still listed");
    }
    let report = repo.validate();
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(status::read(&repo.layout, &repo.pin()).unwrap().targets, 7);
    signers.stop().await;
}

/// A snapshot that leaves a bin out (re-signed by the snapshot key, so it verifies): validate
/// names the snapshot's file, the one to open, not a version of the bin that does not exist.
#[test]
fn validate_names_the_snapshot_that_leaves_a_bin_out() {
    use package_signing::keys::SigningKey;
    use package_signing::ops::init::find_key;
    use package_signing::repository::{build, signed, Expiries};

    let repo = Repo::init(4);
    let layout = &repo.layout;
    let key = |role: &str| SigningKey::load(&find_key(&repo.keys, role)).unwrap();
    let version = repo.newest("snapshot") + 1;
    let mut snapshot = repo.read_json(&layout.versioned("snapshot", version - 1))["signed"].clone();
    let bin = snapshot["meta"]
        .as_object()
        .unwrap()
        .keys()
        .find(|f| f.starts_with("bin-"))
        .unwrap()
        .clone();
    snapshot["meta"].as_object_mut().unwrap().remove(&bin);
    snapshot["version"] = version.into();
    let file = signed::sign(&snapshot, version, &[&key("snapshot")], "snapshot").unwrap();
    std::fs::write(layout.versioned("snapshot", version), &file.bytes).unwrap();
    let timestamp_version = repo.timestamp().0 + 1;
    let timestamp = build::timestamp(
        &file.meta,
        timestamp_version,
        &[&key("timestamp")],
        Expiries::default(),
    )
    .unwrap();
    std::fs::write(layout.timestamp(), &timestamp.bytes).unwrap();

    let report = validate_metadata(&repo);
    let named = format!("metadata/{version}.snapshot.json: ");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with(&named) && p.contains(&bin)),
        "{}",
        report.render()
    );
}

/// `validate` of `repo`'s metadata (not its target files), every role's expiry judged against
/// one minute.
fn validate_metadata(repo: &Repo) -> package_signing::client::validate::Report {
    validate(
        &repo.layout,
        &repo.pin(),
        &Window::Every(Duration::from_secs(60)),
        false,
    )
    .unwrap()
}

/// A snapshot that no longer verifies (a byte of its signature changed) is named by its own
/// path, not by timestamp.json's, which names it and verifies; nothing past it is checked.
#[test]
fn validate_names_the_snapshot_that_does_not_verify() {
    let repo = Repo::init(4);
    let layout = &repo.layout;
    let path = layout.versioned("snapshot", repo.newest("snapshot"));
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("\"sig\":\"").unwrap() + 7;
    let flipped = if &text[at..at + 1] == "0" { "1" } else { "0" };
    std::fs::write(
        &path,
        format!("{}{flipped}{}", &text[..at], &text[at + 1..]),
    )
    .unwrap();

    let report = validate_metadata(&repo);
    let named = format!("metadata/{}: ", path.file_name().unwrap().to_str().unwrap());
    assert_eq!(report.problems.len(), 1, "{}", report.render());
    assert!(
        report.problems[0].starts_with(&named),
        "{}",
        report.render()
    );
}
