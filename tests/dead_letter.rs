//! Bad input never crashes a signer and is never lost: each malformed job lands in the
//! dead-letter queue with its reason in a header, and the signer carries on.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use package_signing::broker::Queue;
use serde_json::json;

fn add(name: &str, length: serde_json::Value, sha256: &str) -> serde_json::Value {
    json!({"add": [{"name": name, "length": length, "hashes": {"sha256": sha256, "sha512": "b".repeat(128)}}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_jobs_go_to_the_dead_letter_queue_with_their_reason() {
    let prefix = unique_prefix("dlq");
    let repo = TestRepo::init(16, &[]);
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let good_hash = "a".repeat(64);
    // Targets jobs signed with the submitter key, as the packaging pipeline sends them: what
    // is checked is the job inside.
    let signed = |job: serde_json::Value| repo.submission(&job);
    let cases: Vec<(Queue, Vec<u8>, &str)> = vec![
        (Queue::Targets, b"this is not json".to_vec(), "not a targets job"),
        (Queue::Targets, signed(json!({"add":[],"frobnicate":true})), "unknown field"),
        (Queue::Targets, signed(json!({})), "adds and removes nothing"),
        (Queue::Targets, signed(add("../etc/passwd", json!(1), &good_hash)), ". or .. segment"),
        (Queue::Targets, signed(add("drupal/../../x", json!(1), &good_hash)), ". or .. segment"),
        (Queue::Targets, signed(add("/etc/passwd", json!(1), &good_hash)), "absolute"),
        (Queue::Targets, signed(add("drupal/a\u{0}b", json!(1), &good_hash)), "control character"),
        (Queue::Targets, signed(add("", json!(1), &good_hash)), "is empty"),
        (Queue::Targets, signed(add(&"a".repeat(2000), json!(1), &good_hash)), "the limit is 1024"),
        (Queue::Targets, signed(add("drupal/x/1.0.0.0", json!(1u64 << 50), &good_hash)), "larger than any release"),
        (Queue::Targets, signed(add("drupal/x/1.0.0.0", json!(-1), &good_hash)), "not a targets job"),
        (Queue::Targets, signed(add("drupal/x/1.0.0.0", json!(1), "zz")), "sha256 must be 64"),
        (
            Queue::Snapshot,
            serde_json::to_vec(&json!({"meta": {"bin-zzz.json": {"version": 9, "length": 10, "sha256": good_hash}}})).unwrap(),
            "unknown role",
        ),
        (
            Queue::Timestamp,
            serde_json::to_vec(&json!({"snapshot": {"version": 0, "length": 10, "sha256": good_hash}})).unwrap(),
            "version 0",
        ),
    ];
    for (queue, body, _) in &cases {
        publish_raw(&prefix, *queue, body).await;
    }
    let dead = drain_dead_letters(&prefix, cases.len(), Duration::from_secs(60)).await;
    let reasons: HashMap<Vec<u8>, String> = dead.into_iter().collect();
    for (_, body, want) in &cases {
        let reason = reasons
            .get(body)
            .unwrap_or_else(|| panic!("not dead-lettered: {}", String::from_utf8_lossy(body)));
        assert!(
            reason.contains(want),
            "reason {reason:?} should mention {want:?}"
        );
    }
    assert_eq!(reasons.len(), cases.len());

    // Every signer is still up, logged each rejection, and signs the next good job.
    for s in &mut signers {
        assert!(s.is_running(), "a signer died:\n{}", s.log_text());
    }
    assert!(signers[0].log_text().matches("dead-letter").count() >= 12);
    let releases = make_releases(&repo.path("rel"), 3, "ok");
    for (name, path) in &releases {
        let bytes = std::fs::read(path).unwrap();
        let sha256 = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &bytes,
        ));
        let sha512 = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA512,
            &bytes,
        ));
        let body = json!({"add": [{"name": name, "length": bytes.len(), "hashes": {"sha256": sha256, "sha512": sha512}}]});
        publish_raw(&prefix, Queue::Targets, &repo.submission(&body)).await;
    }
    repo.wait_covered(expected_for(&releases), Duration::from_secs(60));
    delete_queues(&prefix).await;
}

fn dead_letters(repo: &TestRepo, prefix: &str, args: &[&str]) -> (bool, String, String) {
    let out = run(std::process::Command::new(CLIENT)
        .arg("dead-letters")
        .args(args)
        .args(["--amqp", &amqp_url(), "--queue-prefix", prefix])
        .env("TUF_REPO", &repo.repo));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tuf-client dead-letters`: a submission refused because its key was not trusted yet is
/// listed with why; once the operator trusts the key, replayed by its id, it is signed; the
/// rest is dropped. The same over the embedded mode's inbox.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_with_why_replayed_and_dropped() {
    let prefix = unique_prefix("dlq-tool");
    let repo = TestRepo::init(16, &[]);
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    // A second packaging pipeline whose key the targets signer does not trust yet.
    let (key, pem) = package_signing::keys::SigningKey::generate().unwrap();
    let new_key = repo.path("pipeline-2.pem");
    package_signing::durable::write_secret_durably(&new_key, pem.as_bytes()).unwrap();
    let releases = make_releases(&repo.path("rel"), 3, "late-key");
    let out = run(std::process::Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", &new_key)
        .args([
            "add-targets",
            "--amqp",
            &amqp_url(),
            "--queue-prefix",
            &prefix,
        ])
        .arg("--targets-dir")
        .arg(repo.repo.join("targets"))
        .arg(repo.path("rel")));
    assert!(out.status.success());
    publish_raw(&prefix, Queue::Targets, b"garbage").await;

    let start = std::time::Instant::now();
    let listed = loop {
        let (ok, stdout, stderr) = dead_letters(&repo, &prefix, &[]);
        assert!(ok, "{stderr}");
        if stderr.contains("2 dead letter(s)") {
            break stdout;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{stdout}{stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("{listed}");
    let submission = listed
        .lines()
        .find(|l| l.contains("not signed by a submitter key this signer trusts"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(submission.contains("targets") && submission.contains("add 3, remove 0"));
    let id = &submission[..12];
    assert!(
        listed.lines().any(|l| l.contains("not a targets job")),
        "{listed}"
    );
    // Listing took nothing away.
    let (_, _, stderr) = dead_letters(&repo, &prefix, &[]);
    assert!(stderr.contains("2 dead letter(s)"), "{stderr}");
    let (ok, _, stderr) = dead_letters(&repo, &prefix, &["replay"]);
    assert!(!ok && stderr.contains("give their ids"), "{stderr}");

    // The operator trusts the new key (and restarts the targets signer), then replays.
    let trusted = repo.keys.join("submitters.pub");
    let mut keys = std::fs::read_to_string(&trusted).unwrap();
    keys.push_str(&package_signing::keys::public_pem(key.public()).unwrap());
    std::fs::write(&trusted, keys).unwrap();
    signers[0].kill();
    signers[0] = repo.spawn_signer("targets", &prefix, &[]);
    wait_ready(&mut signers[0]);
    let (ok, stdout, stderr) = dead_letters(&repo, &prefix, &["replay", id]);
    assert!(
        ok && stdout.contains(&format!("replayed {id}")),
        "{stdout}{stderr}"
    );
    repo.wait_covered(expected_for(&releases), Duration::from_secs(60));

    let (ok, stdout, _) = dead_letters(&repo, &prefix, &["drop", "--all"]);
    assert!(ok && stdout.contains("dropped"), "{stdout}");
    let (_, _, stderr) = dead_letters(&repo, &prefix, &[]);
    assert!(stderr.contains("0 dead letter(s)"), "{stderr}");
    let report = ngclient_verify(&repo, &items_for(&releases));
    println!("python-tuf: {report}");
    delete_queues(&prefix).await;

    // The embedded mode: the inbox's dead-letter/ folder.
    let inbox = repo.path("inbox");
    let mut embedded = repo.spawn_embedded(&inbox, &[]);
    wait_ready(&mut embedded);
    package_signing::broker::inbox::submit_to_inbox(&inbox, b"{\"unsigned\":1}", 0).unwrap();
    let in_inbox = |args: &[&str]| {
        run(std::process::Command::new(CLIENT)
            .arg("dead-letters")
            .args(args)
            .arg("--inbox")
            .arg(&inbox)
            .env_remove("AMQP_URL"))
    };
    let start = std::time::Instant::now();
    while !String::from_utf8_lossy(&in_inbox(&[]).stderr).contains("1 dead letter(s)") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            embedded.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = in_inbox(&["drop", "--all"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("dropped"));
    assert!(String::from_utf8_lossy(&in_inbox(&[]).stderr).contains("0 dead letter(s)"));
}

/// A terminal escape sequence that sets the window title and clears the screen.
const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J";

/// Neither output holds a control character but the line ends: every text from a letter
/// was escaped.
fn assert_escaped(stdout: &str, stderr: &str) {
    for text in [stdout, stderr] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a raw control character reached the terminal: {text:?}"
        );
    }
}

/// Publishes `body` to the dead-letter queue as anyone who may publish there can, with the
/// headers they choose.
async fn forge_dead_letter(prefix: &str, body: &[u8], from: &str, reason: &str) {
    use lapin::types::{AMQPValue, FieldTable, LongString};
    let (_conn, channel) = confirming_channel(&amqp_url()).await;
    let mut headers = FieldTable::default();
    headers.insert(
        "x-rejection-reason".into(),
        AMQPValue::LongString(LongString::from(reason)),
    );
    headers.insert(
        "x-dead-letter-from".into(),
        AMQPValue::LongString(LongString::from(from)),
    );
    let confirm = channel
        .basic_publish(
            Queue::DeadLetter.exchange(prefix).as_str().into(),
            Queue::DeadLetter.name(prefix).as_str().into(),
            lapin::options::BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            lapin::BasicProperties::default()
                .with_delivery_mode(2)
                .with_headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(confirm, lapin::Confirmation::Ack(None));
}

/// A dead letter's headers are anyone's to write. A signed submission whose
/// `x-dead-letter-from` names the snapshot stage is replayed to targets (and signed); a
/// timestamp job claiming targets goes to timestamp (which refuses it again, naming itself);
/// a body that is no job is not replayed, and the error names it. Escape sequences in the
/// reason, the header and the body reach neither the listing nor the replay's output.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_go_where_their_body_says_and_print_no_escape_sequences() {
    use package_signing::submission::id_of;
    let prefix = unique_prefix("dlq-forged");
    let repo = TestRepo::init(16, &[]);
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let releases = make_releases(&repo.path("rel"), 2, "forged");
    let submission = repo.submission(&add_job(&releases));
    let timestamp_job = serde_json::to_vec(
        &json!({"snapshot": {"version": 9999, "length": 10, "sha256": "a".repeat(64)}}),
    )
    .unwrap();
    let garbage = format!("not a job {EVIL}").into_bytes();
    forge_dead_letter(&prefix, &submission, "snapshot", EVIL).await;
    forge_dead_letter(&prefix, &timestamp_job, "targets", EVIL).await;
    forge_dead_letter(&prefix, &garbage, EVIL, EVIL).await;
    let (submission_id, timestamp_id, garbage_id) =
        (id_of(&submission), id_of(&timestamp_job), id_of(&garbage));

    let (ok, stdout, stderr) = dead_letters(&repo, &prefix, &[]);
    println!("{stdout}{stderr}");
    assert!(
        ok && stderr.contains("3 dead letter(s)"),
        "{stdout}{stderr}"
    );
    assert_escaped(&stdout, &stderr);
    assert_eq!(
        stdout.matches("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J").count(),
        4,
        "three reasons and a header, escaped (a body that is not JSON is shown by its size): \
         {stdout}"
    );
    let line = |out: &str, id: &str| {
        out.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed: {out}"))
            .to_string()
    };
    assert!(line(&stdout, &submission_id).contains("targets submission issued"));
    assert!(line(&stdout, &timestamp_id).contains("timestamp job, snapshot version 9999"));
    assert!(line(&stdout, &garbage_id).contains("not a job ("));
    for (id, header, stage) in [
        (&submission_id, "snapshot", "targets"),
        (&timestamp_id, "targets", "timestamp"),
    ] {
        assert!(
            stderr.contains(&format!(
                "dead letter {id}: its x-dead-letter-from header says \"{header}\""
            )) && stderr.contains(&format!("replay sends it to {stage}")),
            "{stderr}"
        );
    }

    let (ok, stdout, stderr) = dead_letters(&repo, &prefix, &["replay", "--all"]);
    println!("{stdout}{stderr}");
    assert_escaped(&stdout, &stderr);
    assert!(
        !ok,
        "a letter that is no job must make replay fail: {stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!("replayed {submission_id} to targets"))
            && stdout.contains(&format!("replayed {timestamp_id} to timestamp")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "dead letter {garbage_id} not replayed: no stage takes it"
        )),
        "{stderr}"
    );
    // Sent to the snapshot stage as its header says, the submission would have come back
    // refused; sent to targets, it is signed.
    repo.wait_covered(expected_for(&releases), Duration::from_secs(60));
    // The timestamp job reached the timestamp signer, which checked it as any job and
    // refused it (no such snapshot): back in the dead letters, from timestamp. The letter
    // that is no job is still there.
    let start = std::time::Instant::now();
    loop {
        let (ok, stdout, stderr) = dead_letters(&repo, &prefix, &[]);
        assert!(ok, "{stderr}");
        assert_escaped(&stdout, &stderr);
        let back = stdout.lines().find(|l| l.starts_with(&timestamp_id));
        if let Some(back) = back {
            assert!(
                back.starts_with(&format!("{timestamp_id}  timestamp ")),
                "{back}"
            );
            assert!(back.contains("version 9999 is not on disk"), "{back}");
            assert!(line(&stdout, &garbage_id).contains("not a job ("));
            assert!(stderr.contains("2 dead letter(s)"), "{stdout}{stderr}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{stdout}{stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for s in &mut signers {
        assert!(s.is_running(), "a signer died:\n{}", s.log_text());
    }
    delete_queues(&prefix).await;
}

/// The same over the embedded mode's `INBOX/dead-letter/`: a `.reason` holding escape
/// sequences is shown escaped, a signed submission goes back into the inbox, and a snapshot
/// job (which the inbox cannot carry) stays, the error naming it.
#[test]
fn inbox_dead_letters_print_escaped_and_replay_only_submissions() {
    use package_signing::submission::id_of;
    let repo = TestRepo::init(16, &[]);
    let inbox = repo.path("inbox");
    let letters = inbox.join("dead-letter");
    std::fs::create_dir_all(&letters).unwrap();
    let submission = repo.submission(&json!({"remove": ["drupal/x/1.0.0.0"]}));
    let snapshot = serde_json::to_vec(
        &json!({"meta": {"bin-0-f.json": {"version": 3, "length": 10, "sha256": "a".repeat(64)}}}),
    )
    .unwrap();
    for (name, body) in [("1.json", &submission), ("2.json", &snapshot)] {
        std::fs::write(letters.join(name), body).unwrap();
        std::fs::write(letters.join(name).with_extension("reason"), EVIL).unwrap();
    }
    let in_inbox = |args: &[&str]| {
        let out = run(std::process::Command::new(CLIENT)
            .arg("dead-letters")
            .args(args)
            .arg("--inbox")
            .arg(&inbox)
            .env_remove("AMQP_URL"));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert_escaped(&stdout, &stderr);
        (out.status.success(), stdout, stderr)
    };
    let (ok, stdout, stderr) = in_inbox(&[]);
    assert!(
        ok && stderr.contains("2 dead letter(s)"),
        "{stdout}{stderr}"
    );
    assert_eq!(stdout.matches("\\u{1b}]0;pwned").count(), 2, "{stdout}");
    let (ok, stdout, stderr) = in_inbox(&["replay", "--all"]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("replayed {} to targets", id_of(&submission))),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "dead letter {} not replayed: a snapshot job",
            id_of(&snapshot)
        )),
        "{stderr}"
    );
    let (_, _, stderr) = in_inbox(&[]);
    assert!(stderr.contains("1 dead letter(s)"), "{stderr}");
}

/// `add-targets --wait` for a submission the targets signer refuses as a whole (here signed by
/// a key it does not trust) stops as soon as the signer has refused it, with the signer's
/// reason and a failing exit code, over the broker and in the embedded mode alike. Before, it
/// waited out its whole `--timeout` and then blamed a signer that was not running.
#[tokio::test(flavor = "multi_thread")]
async fn wait_reports_a_refused_submission_at_once_with_the_reason() {
    let repo = TestRepo::init(16, &[]);
    let (stranger, _) = openssl_key(&repo.path(""), "stranger");
    let releases = make_releases(&repo.path("rel"), 2, "w");
    // A wait that timed out (the default --timeout is 10 minutes) fails the test.
    let wait_for_exit = |mut cmd: std::process::Command| {
        run_to_end(
            cmd.env("TUF_SUBMITTER_KEY", &stranger)
                .env("TUF_ROOT", repo.pin_file())
                .args(["--wait", "--timeout", "600s", "--repo"])
                .arg(&repo.repo)
                .arg(repo.path("rel")),
            "add-targets --wait is still waiting for a submission already refused",
        )
    };
    let expect = "the targets signer refused the submission";

    // Over the broker.
    let prefix = unique_prefix("dlq-wait");
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let mut cmd = std::process::Command::new(CLIENT);
    cmd.args([
        "add-targets",
        "--amqp",
        &amqp_url(),
        "--queue-prefix",
        &prefix,
    ])
    .arg("--targets-dir")
    .arg(repo.repo.join("targets"));
    let out = wait_for_exit(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(expect) && err.contains("submitter"), "{err}");
    assert!(
        err.contains(&releases[0].0),
        "names the refused target: {err}"
    );
    drop(signers);
    delete_queues(&prefix).await;

    // In the embedded mode, through the inbox.
    let inbox = repo.path("inbox");
    let mut embedded = repo.spawn_embedded(&inbox, &[]);
    wait_ready(&mut embedded);
    let mut cmd = std::process::Command::new(CLIENT);
    cmd.args(["add-targets", "--inbox"])
        .arg(&inbox)
        .arg("--targets-dir")
        .arg(repo.repo.join("targets"))
        .env_remove("AMQP_URL");
    let out = wait_for_exit(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(expect), "{err}");
}
