//! What the signers refuse, and that refusing never stops them: malformed, unsigned, stale or
//! forged jobs go to the dead letters with their reason (tests/dead_letter.rs), and a release
//! already signed is never given other bytes unless replaced on purpose (tests/immutable.rs).

use package_signing::broker::inbox::submit_to_inbox;
use package_signing::broker::Queue;
use package_signing::client::wait::Outcome;
use package_signing::jobs::TargetsJob;
use package_signing::keys::SigningKey;
use package_signing::repository::control::Control;
use serde_json::json;

use crate::harness::*;

fn add(name: &str, length: serde_json::Value, sha256: &str) -> serde_json::Value {
    json!({"add": [{"name": name, "length": length, "hashes": {"sha256": sha256, "sha512": "b".repeat(128)}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_go_to_the_dead_letters_with_their_reason_and_the_rest_is_signed() {
    let repo = Repo::init(16);
    let signers = repo.start().await;
    let key = submitter_key(&repo);
    let now = jiff::Timestamp::now();
    let signed = |job: serde_json::Value| submission(&key, &job, now);
    let (stranger, _) = SigningKey::generate().unwrap();
    let hours = |h| jiff::SignedDuration::from_hours(h);
    let good = "a".repeat(64);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not json".to_vec(), "not a targets job"),
        (br#"{"remove":["drupal/x/1.0.0.0"]}"#.to_vec(), "unsigned"),
        (
            submission(&stranger, &json!({"remove": ["drupal/x/1.0.0.0"]}), now),
            "not signed by a submitter key this signer trusts",
        ),
        (
            submission(
                &key,
                &json!({"remove": ["drupal/x/1.0.0.0"]}),
                now - hours(48),
            ),
            "stale",
        ),
        (
            submission(
                &key,
                &json!({"remove": ["drupal/x/1.0.0.0"]}),
                now + hours(2),
            ),
            "ahead of this signer's clock",
        ),
        (
            signed(json!({"add": [], "frobnicate": true})),
            "unknown field",
        ),
        (signed(json!({})), "adds and removes nothing"),
        (
            signed(add("../etc/passwd", json!(1), &good)),
            ". or .. segment",
        ),
        (signed(add("/etc/passwd", json!(1), &good)), "absolute"),
        (
            signed(add("drupal/a\u{0}b", json!(1), &good)),
            "control character",
        ),
        (
            signed(add(&"a".repeat(2000), json!(1), &good)),
            "the limit is 1024",
        ),
        (
            signed(add("drupal/x/1.0.0.0", json!(1u64 << 50), &good)),
            "larger than any release",
        ),
        (
            signed(add("drupal/x/1.0.0.0", json!(1), "zz")),
            "sha256 must be 64",
        ),
    ];
    for (seq, (body, _)) in cases.iter().enumerate() {
        submit_to_inbox(&repo.inbox, body, seq).unwrap();
    }
    // Good releases after them: signed, the bad ones around them notwithstanding.
    let releases = repo.releases("rel", 5, "ok");
    assert_all_signed(&repo.add(&releases).await, 5);

    let letters = eventually("every bad job in INBOX/dead-letter/", || {
        let letters = dead_letters(&repo.inbox);
        (letters.len() >= cases.len()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), cases.len());
    for (body, want) in &cases {
        let (_, reason) = letters
            .iter()
            .find(|(letter, _)| letter == body)
            .unwrap_or_else(|| panic!("not dead-lettered: {}", String::from_utf8_lossy(body)));
        assert!(
            reason.contains(want),
            "reason {reason:?} should say {want:?}"
        );
    }
    assert_eq!(
        signers.targets.count("job sent to the dead-letter queue"),
        cases.len()
    );
    assert_eq!(inbox_jobs(&repo.inbox), 0, "nothing left behind");

    // What the snapshot and timestamp signers refuse from upstream (here on the transport
    // itself, as a forger with access to their queues would send it).
    let meta = json!({"version": 9, "length": 10, "sha256": good});
    let bad_snapshot = json!({"meta": {"bin-zzz.json": meta}});
    publish(
        &signers,
        Queue::Snapshot,
        bad_snapshot.to_string().as_bytes(),
    )
    .await;
    let bad_timestamp = json!({"snapshot": {"version": 0, "length": 10, "sha256": good}});
    publish(
        &signers,
        Queue::Timestamp,
        bad_timestamp.to_string().as_bytes(),
    )
    .await;
    for (log, want) in [
        (&signers.snapshot, "unknown role"),
        (&signers.timestamp, "version 0"),
    ] {
        log.wait_for("job sent to the dead-letter queue", 1).await;
        let line = log
            .text()
            .lines()
            .find(|l| l.contains("job sent to the dead-letter queue"))
            .unwrap()
            .to_string();
        assert!(line.contains(want), "{line}");
    }

    // Every signer is still up and signs the next good job.
    assert!(signers.all_running());
    let more = repo.releases("more", 3, "after");
    assert_all_signed(&repo.add(&more).await, 3);
    repo.assert_downloads(&[releases, more].concat()).await;
    signers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_release_never_changes_unless_replaced_on_purpose() {
    let repo = Repo::init(16);
    let signers = repo.start().await;
    let name = "drupal/token/1.9.0.0";
    let release = repo.release(name, "the release");
    let tampered = repo.release(name, "a backdoored release");
    let next = repo.release("drupal/token/1.9.1.0", "the next release");
    assert_all_signed(&repo.add(std::slice::from_ref(&release)).await, 1);

    // Other bytes under the signed name, in one job with a new release: the name is refused
    // and says why, the new release is signed, the job is dead-lettered with the reason.
    let outcomes = repo
        .submit(&repo.inbox, &[tampered.clone(), next.clone()], 100, false)
        .await
        .outcomes()
        .await;
    match &outcomes[name] {
        Outcome::Refused(why) => {
            assert!(why.contains("already signed with other content"), "{why}");
        }
        other => panic!("{name}: {other:?}"),
    }
    assert_eq!(outcomes[&next.name], Outcome::Signed);
    let letters = eventually("the refused job dead-lettered", || {
        Some(dead_letters(&repo.inbox)).filter(|l| !l.is_empty())
    })
    .await;
    assert_eq!(letters.len(), 1);
    assert!(letters[0].1.contains(name), "{}", letters[0].1);
    repo.assert_downloads(&[release, next]).await;

    // What Composer rewrites changes freely: p2/ metadata and dev versions.
    for (mutable, first, second) in [
        ("p2/drupal/token.json", "{\"v\":1}", "{\"v\":2}"),
        ("drupal/token/dev-main", "main at a1", "main at b2"),
    ] {
        for content in [first, second] {
            let r = repo.release(mutable, content);
            assert_all_signed(&repo.add(std::slice::from_ref(&r)).await, 1);
            repo.assert_downloads(&[r]).await;
        }
    }

    // --replace replaces on purpose.
    let replaced = repo.submit(&repo.inbox, std::slice::from_ref(&tampered), 100, true);
    assert_all_signed(&replaced.await.outcomes().await, 1);
    repo.assert_downloads(std::slice::from_ref(&tampered)).await;

    // Two submitters race on one name, both held while the signer is paused: the later one
    // is signed, the earlier one learns it was replaced; neither waits in vain.
    let control = Control::new(&repo.layout);
    control.pause(None).unwrap();
    signers
        .targets
        .wait_for("paused (tuf-client resume", 1)
        .await;
    let racing = "p2/drupal/views.json";
    let first = repo.release(racing, r#"{"from":"first"}"#);
    let second = repo.release(racing, r#"{"from":"second"}"#);
    let first_sent = repo
        .submit(&repo.inbox, std::slice::from_ref(&first), 100, false)
        .await;
    let second_sent = repo
        .submit(&repo.inbox, std::slice::from_ref(&second), 100, false)
        .await;
    control.resume().unwrap();
    assert_eq!(first_sent.outcomes().await[racing], Outcome::Replaced);
    assert_eq!(second_sent.outcomes().await[racing], Outcome::Signed);
    repo.assert_downloads(&[second]).await;
    assert_eq!(dead_letters(&repo.inbox).len(), 1, "only the refused job");
    signers.stop().await;
}

/// A release keeps its bytes across removal, so that removing it cannot launder new bytes under its name. Removed and published again
/// with other bytes it is refused like any change to a signed release; the same bytes come
/// back freely, `--replace` changes it on purpose, and the receipts name each removal and
/// replacement with the submitter key that signed it. Mutable names leave no tombstone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_release_keeps_its_bytes_unless_replaced_on_purpose() {
    let repo = Repo::init(16);
    let signers = repo.start().await;
    let name = "drupal/token/1.9.0.0";
    let release = repo.release(name, "the release");
    let other = repo.release(name, "other bytes under the same name");
    assert_all_signed(&repo.add(std::slice::from_ref(&release)).await, 1);
    assert_eq!(repo.remove(&[name]).await[name], Outcome::Signed);

    match &repo.add(std::slice::from_ref(&other)).await[name] {
        Outcome::Refused(why) => assert!(
            why.contains("removed at") && why.contains("keeps its bytes across removal"),
            "{why}"
        ),
        outcome => panic!("{name}: {outcome:?}"),
    }
    // The same bytes again: a release put back as it was.
    assert_all_signed(&repo.add(std::slice::from_ref(&release)).await, 1);
    assert_eq!(repo.remove(&[name]).await[name], Outcome::Signed);
    let replaced = repo.submit(&repo.inbox, std::slice::from_ref(&other), 100, true);
    assert_all_signed(&replaced.await.outcomes().await, 1);
    repo.assert_downloads(std::slice::from_ref(&other)).await;

    // Removed and added again with other bytes in one batch (both held while paused): the
    // removal's tombstone already counts.
    let batched = "drupal/token/2.0.0.0";
    let v2 = repo.release(batched, "two");
    let v2_other = repo.release(batched, "two, other bytes");
    assert_all_signed(&repo.add(std::slice::from_ref(&v2)).await, 1);
    let control = Control::new(&repo.layout);
    control.pause(None).unwrap();
    signers
        .targets
        .wait_for("paused (tuf-client resume", 1)
        .await;
    let removal = TargetsJob {
        remove: vec![batched.to_string()],
        ..Default::default()
    };
    let removed = repo.send(&repo.inbox, &[removal]).await;
    let readded = repo
        .submit(&repo.inbox, std::slice::from_ref(&v2_other), 100, false)
        .await;
    control.resume().unwrap();
    assert_eq!(removed.outcomes().await[batched], Outcome::Signed);
    match &readded.outcomes().await[batched] {
        Outcome::Refused(why) => assert!(why.contains("keeps its bytes"), "{why}"),
        outcome => panic!("{batched}: {outcome:?}"),
    }

    // A mutable name (Composer's packages.json) changes without --replace, and its removal
    // leaves no tombstone.
    let index = repo.release("packages.json", "{\"packages\":[]}");
    let index_other = repo.release("packages.json", "{\"packages\":[],\"x\":1}");
    assert_all_signed(&repo.add(std::slice::from_ref(&index)).await, 1);
    assert_all_signed(&repo.add(std::slice::from_ref(&index_other)).await, 1);
    assert_eq!(
        repo.remove(&[&index.name]).await[&index.name],
        Outcome::Signed
    );

    let text =
        std::fs::read_to_string(repo.layout.control_dir().join("targets/receipts.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let removals = lines.iter().filter(|r| r["removed"].is_object()).count();
    let replacements: Vec<&serde_json::Value> =
        lines.iter().filter(|r| r["replaced"].is_object()).collect();
    assert_eq!(removals, 4, "{text}");
    assert_eq!(
        replacements.len(),
        2,
        "the release and packages.json: {text}"
    );
    // Every batch names the build that signed it (src/provenance.rs).
    let build = format!("package-signing {}", package_signing::provenance::BUILD);
    assert!(
        lines
            .iter()
            .all(|r| r["signer"].as_str().is_some_and(|s| s.starts_with(&build))),
        "{text}"
    );
    let key_id = submitter_key(&repo).key_id().to_string();
    assert!(
        lines.iter().all(|r| r["submitters"]
            .as_object()
            .unwrap()
            .values()
            .all(|k| *k == key_id)),
        "{text}"
    );
    let stones =
        std::fs::read_to_string(repo.layout.control_dir().join("targets/tombstones.jsonl"))
            .unwrap();
    assert_eq!(
        stones.lines().count(),
        3,
        "no tombstone for the mutable name: {stones}"
    );
    signers.stop().await;
}

/// `p2/VENDOR/NAME.json` changes freely, but not in what it says of a
/// version already released: a new p2 file that moves a released version's archive is
/// refused, saying which version and field; one that adds a release is signed; `--replace`
/// changes it on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composer_metadata_keeps_released_versions_as_they_were() {
    let repo = Repo::init(16);
    let signers = repo.start().await;
    let name = "p2/drupal/token.json";
    let entry = |version: &str, url: &str| {
        json!({"version": version, "version_normalized": format!("{version}.0"),
               "dist": {"type": "zip", "url": url}, "require": {"drupal/core": "^10"}})
    };
    let p2 = |entries: Vec<serde_json::Value>| {
        json!({"packages": {"drupal/token": entries}}).to_string()
    };
    let v190 = entry("1.9.0", "https://example.org/token-1.9.0.zip");
    let first = repo.release(name, &p2(vec![v190.clone()]));
    assert_all_signed(&repo.add(std::slice::from_ref(&first)).await, 1);

    let moved = repo.release(
        name,
        &p2(vec![entry("1.9.0", "https://evil.example/token.zip")]),
    );
    match &repo.add(std::slice::from_ref(&moved)).await[name] {
        Outcome::Refused(why) => assert!(why.contains("1.9.0.0 changes its dist"), "{why}"),
        outcome => panic!("{name}: {outcome:?}"),
    }
    // Removed and published again: compared with the bytes it was last signed with.
    assert_eq!(repo.remove(&[name]).await[name], Outcome::Signed);
    match &repo.add(std::slice::from_ref(&moved)).await[name] {
        Outcome::Refused(why) => assert!(why.contains("1.9.0.0 changes its dist"), "{why}"),
        outcome => panic!("{name} after removal: {outcome:?}"),
    }
    let grown = repo.release(
        name,
        &p2(vec![
            entry("1.9.1", "https://example.org/token-1.9.1.zip"),
            v190,
        ]),
    );
    assert_all_signed(&repo.add(std::slice::from_ref(&grown)).await, 1);
    let replaced = repo.submit(&repo.inbox, std::slice::from_ref(&moved), 100, true);
    assert_all_signed(&replaced.await.outcomes().await, 1);
    repo.assert_downloads(std::slice::from_ref(&moved)).await;
    signers.stop().await;
}
