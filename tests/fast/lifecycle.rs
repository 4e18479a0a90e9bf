//! The signers' life around their jobs: the pause switch holds jobs and resume signs them
//! (tests/pause.rs), a stopped signer set loses nothing and a new one carries on
//! (tests/crash.rs, without the kill), and a second replica of each role on the same
//! repository reloads what the other wrote before signing (tests/standby.rs).

use std::time::Duration;

use package_signing::client::status;
use package_signing::repository::control::Control;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_jobs_across_a_restart_and_resume_signs_them() {
    let repo = Repo::init(4);
    let signers = repo.start().await;
    let before = repo.releases("rel-a", 5, "a");
    assert_all_signed(&repo.add(&before).await, 5);

    let control = Control::new(&repo.layout);
    assert!(control
        .pause(Some("release freeze".into()))
        .unwrap()
        .is_none());
    signers
        .targets
        .wait_for("paused (tuf-client resume", 1)
        .await;
    let batches = signers.targets.count("batch done");
    let held = repo.releases("rel-b", 7, "b");
    let submitted = repo.submit(&repo.inbox, &held, 100, false).await;
    // Two polls of the pause switch, many of the inbox: the job still waits, unsigned.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        inbox_jobs(&repo.inbox),
        1,
        "the held job waits in the inbox"
    );
    assert_eq!(
        signers.targets.count("batch done"),
        batches,
        "no batch while paused"
    );
    let mut client = repo.assert_downloads(&before).await;
    for r in &held {
        assert_eq!(
            client.download(&r.name).await,
            None,
            "{} signed while paused",
            r.name
        );
    }

    // A restarted signer stays paused: the switch is on disk.
    signers.stop().await;
    let signers = Signers::start_with(&repo, &repo.inbox, repo.settings());
    signers
        .targets
        .wait_for("paused (tuf-client resume", 1)
        .await;
    let paused = status::read(&repo.layout, &repo.pin())
        .unwrap()
        .paused
        .expect("paused");
    assert_eq!(paused.reason.as_deref(), Some("release freeze"));
    assert_eq!(
        inbox_jobs(&repo.inbox),
        1,
        "still waiting after the restart"
    );

    assert!(control.resume().unwrap().is_some());
    signers
        .targets
        .wait_for("resumed: taking jobs again", 1)
        .await;
    assert_all_signed(&submitted.outcomes().await, 7);
    assert_eq!(inbox_jobs(&repo.inbox), 0);
    repo.assert_downloads(&[before, held].concat()).await;
    let status = status::read(&repo.layout, &repo.pin()).unwrap();
    assert!(status.paused.is_none());
    assert_eq!(status.targets, 12);
    signers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signers_stopped_and_started_again_lose_nothing_and_carry_on() {
    let repo = Repo::init(16);
    let signers = repo.start().await;
    let first = repo.releases("first", 20, "one");
    assert_all_signed(&repo.add(&first).await, 20);
    let (snapshot, timestamp) = (repo.newest("snapshot"), repo.timestamp().0);
    signers.stop().await;

    // Submitted while no signer runs: the jobs wait in the inbox for the next ones.
    let second = repo.releases("second", 20, "two");
    let waiting = repo.submit(&repo.inbox, &second, 10, false).await;
    assert_eq!(inbox_jobs(&repo.inbox), 2);
    let signers = repo.start().await;
    assert_all_signed(&waiting.outcomes().await, 20);
    let third = repo.releases("third", 20, "three");
    assert_all_signed(&repo.add(&third).await, 20);

    // The new signers went on from the versions the old ones wrote.
    assert!(repo.newest("snapshot") > snapshot);
    assert!(repo.timestamp().0 > timestamp);
    let all = [first, second, third].concat();
    repo.covered(expected(&all)).await;
    repo.assert_downloads(&all.iter().step_by(3).cloned().collect::<Vec<_>>())
        .await;
    assert_eq!(status::read(&repo.layout, &repo.pin()).unwrap().targets, 60);
    let report = repo.validate();
    assert!(report.is_ok(), "{}", report.render());
    signers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_reloads_what_the_other_wrote_and_nothing_is_lost() {
    let repo = Repo::init(16);
    // Two replicas of every role on one repository, each set with a transport and an inbox
    // of its own, so the test chooses which one signs.
    let inbox_b = repo.path("inbox-b");
    let a = repo.start().await;
    let b = Signers::start(&repo, &inbox_b).await;
    // Each has applied its start-up expiry check: from here on, only jobs move them.
    for log in [
        &a.targets,
        &a.snapshot,
        &a.timestamp,
        &b.targets,
        &b.snapshot,
        &b.timestamp,
    ] {
        log.wait_for("batch done", 1).await;
    }
    let reloads = |s: &Signers| {
        [&s.targets, &s.snapshot, &s.timestamp]
            .map(|log| log.count("another replica signed since this one loaded"))
    };
    assert_eq!(reloads(&b), [0, 0, 0]);

    let first = repo.releases("first", 30, "one");
    let sent = repo.submit(&repo.inbox, &first, 10, false).await;
    assert_all_signed(&sent.outcomes().await, 30);
    // B loaded its state before A signed: it must reload before signing over A's files.
    let second = repo.releases("second", 30, "two");
    let sent = repo.submit(&inbox_b, &second, 10, false).await;
    assert_all_signed(&sent.outcomes().await, 30);
    assert!(
        reloads(&b).iter().all(|n| *n >= 1),
        "every role of B reloads: {:?}\n{}",
        reloads(&b),
        b.targets.text()
    );
    // And back: A reloads what B wrote.
    let third = repo.releases("third", 30, "three");
    let sent = repo.submit(&repo.inbox, &third, 10, false).await;
    assert_all_signed(&sent.outcomes().await, 30);
    assert!(reloads(&a)[0] >= 1, "{}", a.targets.text());

    // Nothing any replica signed was signed over by the other.
    let all = [first, second, third].concat();
    repo.covered(expected(&all)).await;
    repo.assert_downloads(&all.iter().step_by(4).cloned().collect::<Vec<_>>())
        .await;
    assert_eq!(status::read(&repo.layout, &repo.pin()).unwrap().targets, 90);
    let report = repo.validate();
    assert!(report.is_ok(), "{}", report.render());
    a.stop().await;
    b.stop().await;
}
