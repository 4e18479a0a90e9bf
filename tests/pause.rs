//! `tuf-client pause` holds the targets jobs in the queue (nothing lost, nothing signed),
//! expiry refresh goes on meanwhile, the pause survives a signer restart, and `resume`
//! signs what waited; `status` shows the pause and the waiting jobs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use package_signing::broker::amqp::{inspect_queues, AmqpConfig};
use package_signing::broker::Queue;

fn client(args: &[&str], repo: &TestRepo) -> String {
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .env("TUF_ROOT", repo.pin_file())
        .args(args)
        .arg("--repo")
        .arg(&repo.repo));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_log(proc: &Proc, text: &str, count: usize) {
    let start = Instant::now();
    while proc.log_text().matches(text).count() < count {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "signer never logged {text:?}:\n{}",
            proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn newest(repo: &TestRepo, role: &str) -> u64 {
    *repo.layout().scan_versions().unwrap()[role].last().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_holds_jobs_refresh_goes_on_resume_signs_them() {
    let repo = TestRepo::init(4, &SHORT_LIFETIMES);
    let prefix = unique_prefix("pause");
    let config = AmqpConfig {
        url: amqp_url(),
        prefix: prefix.clone(),
        patience: AmqpConfig::PATIENCE,
        queue_type: Default::default(),
        ca_file: None,
    };
    let mut targets = repo.spawn_signer("targets", &prefix, &SHORT_LIFETIMES);
    let mut others = [
        repo.spawn_signer("snapshot", &prefix, &SHORT_LIFETIMES),
        repo.spawn_signer("timestamp", &prefix, &SHORT_LIFETIMES),
    ];
    wait_ready(&mut targets);
    for s in &mut others {
        wait_ready(s);
    }
    let before = make_releases(&repo.path("rel-a"), 5, "a");
    repo.add_over_broker(&prefix, &repo.path("rel-a"), &[]);

    client(&["pause", "--reason", "release freeze"], &repo);
    wait_log(&targets, "paused (tuf-client resume", 1);
    let held = make_releases(&repo.path("rel-b"), 7, "b");
    repo.submit_over_broker(&prefix, &repo.path("rel-b"), &[]);

    // Longer than every lifetime: without the refresh python-tuf would call this a freeze.
    let (top, ts) = (newest(&repo, "targets"), newest(&repo, "snapshot"));
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        newest(&repo, "targets") > top,
        "targets not refreshed while paused"
    );
    assert!(
        newest(&repo, "snapshot") > ts,
        "snapshot not refreshed while paused"
    );
    let depths = inspect_queues(&config, &[Queue::Targets]).await.unwrap();
    assert_eq!(
        depths[0].1.map(|d| d.0),
        Some(1),
        "the held job waits in the queue"
    );
    let mut items = items_for(&before);
    items.extend(held.iter().map(|(n, _)| format!("!{n}")));
    ngclient_verify(&repo, &items);

    let status = client(
        &[
            "status",
            "--amqp",
            &amqp_url(),
            "--queue-prefix",
            &prefix,
            "--color",
            "never",
        ],
        &repo,
    );
    assert!(
        status.contains("PAUSED since") && status.contains("release freeze"),
        "{status}"
    );
    let line = status
        .lines()
        .find(|l| l.starts_with(&Queue::Targets.name(&prefix)))
        .expect("targets queue line");
    assert_eq!(line.split_whitespace().nth(1), Some("1"), "{status}");

    // A restarted signer stays paused: the switch is on disk.
    targets.kill();
    let mut targets = repo.spawn_signer("targets", &prefix, &SHORT_LIFETIMES);
    wait_log(&targets, "paused (tuf-client resume", 1);
    std::thread::sleep(Duration::from_secs(1));
    let depths = inspect_queues(&config, &[Queue::Targets]).await.unwrap();
    assert_eq!(
        depths[0].1.map(|d| d.0),
        Some(1),
        "still waiting after the restart"
    );

    client(&["resume"], &repo);
    wait_ready(&mut targets);
    repo.wait_covered(expected_for(&held), Duration::from_secs(30));
    let mut all = before;
    all.extend(held);
    ngclient_verify(&repo, &items_for(&all));
    let status = client(&["status", "--color", "never"], &repo);
    assert!(status.contains("running (not paused)"), "{status}");
    assert!(status.contains("targets signed: 12"), "{status}");
    drop(targets);
    drop(others);
    delete_queues(&prefix).await;
}

#[test]
fn embedded_mode_pauses_and_resumes_too() {
    let repo = TestRepo::init(4, &[]);
    let inbox = repo.path("inbox");
    let signer = repo.spawn_embedded(&inbox, &[]);
    wait_log(&signer, "signer ready", 3);
    client(&["pause"], &repo);
    wait_log(&signer, "paused (tuf-client resume", 1);
    let held = make_releases(&repo.path("rel"), 6, "e");
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

    std::thread::sleep(Duration::from_secs(2));
    let waiting = std::fs::read_dir(&inbox)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(waiting, 1, "the job waits in the inbox");
    let absent: Vec<String> = held.iter().map(|(n, _)| format!("!{n}")).collect();
    ngclient_verify(&repo, &absent);

    client(&["resume"], &repo);
    repo.wait_covered(expected_for(&held), Duration::from_secs(30));
    ngclient_verify(&repo, &items_for(&held));
}
