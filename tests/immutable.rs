//! A signed release never changes unless someone says so: other bytes under a signed name are
//! refused (dead-lettered with the reason, and the submitter's `--wait` says why), while what
//! Composer rewrites (p2/ metadata, dev versions) changes freely and `--replace` replaces on
//! purpose. Two submitters racing on one name each learn what became of theirs. Against the
//! real broker; python-tuf verifies the end state.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn file(dir: &Path, name: &str, content: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn client(repo: &TestRepo, prefix: &str) -> Command {
    let mut cmd = Command::new(CLIENT);
    cmd.env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .env("AMQP_URL", amqp_url())
        .env("TUF_QUEUE_PREFIX", prefix)
        .env("TUF_REPO", &repo.repo)
        .stdin(Stdio::null());
    cmd
}

/// `add-targets --wait` of `NAME=FILE`s (and `extra` flags), copying the files into the
/// repository.
fn add(repo: &TestRepo, prefix: &str, extra: &[&str], targets: &[(&str, &Path)]) -> Output {
    let mut cmd = client(repo, prefix);
    cmd.args(["add-targets", "--wait", "--timeout", "60s", "--targets-dir"])
        .arg(repo.repo.join("targets"))
        .args(extra);
    for (name, path) in targets {
        cmd.arg("--target")
            .arg(format!("{name}={}", path.display()));
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What the published metadata says `name` is, checked as a client would.
fn published_as(repo: &TestRepo, name: &str, path: &Path) {
    let release = [(name.to_string(), path.to_path_buf())];
    repo.wait_covered(expected_for(&release), Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_release_never_changes_unless_replaced_on_purpose() {
    let prefix = unique_prefix("immutable");
    let repo = TestRepo::init(16, &[]);
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let dir = repo.path("files");
    let (release, tampered) = (
        file(&dir, "token-1.9.0", "the release"),
        file(&dir, "token-1.9.0-evil", "a backdoored release"),
    );
    let other = file(&dir, "token-1.9.1", "the next release");
    let name = "drupal/token/1.9.0.0";

    let out = add(&repo, &prefix, &[], &[(name, &release)]);
    assert!(out.status.success(), "{:?}", text(&out));

    // Other bytes under the signed name, in one job with a new release: the name is refused
    // and says why, the new release is signed, the job is dead-lettered with the reason.
    let out = add(
        &repo,
        &prefix,
        &[],
        &[(name, &tampered), ("drupal/token/1.9.1.0", &other)],
    );
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "refused means exit 1:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "refused: {name}: already signed with other content"
        )),
        "{stderr}"
    );
    assert!(
        stdout.contains("1 signed") && stdout.contains("1 refused"),
        "{stdout}"
    );
    published_as(&repo, name, &release);
    published_as(&repo, "drupal/token/1.9.1.0", &other);
    let letters = client(&repo, &prefix).arg("dead-letters").output().unwrap();
    let (listed, _) = text(&letters);
    assert!(
        listed.contains("1 target(s) refused") && listed.contains(name),
        "the dead letter says why:\n{listed}"
    );
    let dropped = client(&repo, &prefix)
        .args(["dead-letters", "drop", "--all"])
        .output()
        .unwrap();
    assert!(text(&dropped).0.contains("dropped"), "{:?}", text(&dropped));

    // What Composer rewrites changes freely: p2/ metadata and dev versions.
    for (mutable, first, second) in [
        ("p2/drupal/token.json", "{\"v\":1}", "{\"v\":2}"),
        ("drupal/token/dev-main", "main at a1", "main at b2"),
    ] {
        for content in [first, second] {
            let path = file(
                &dir,
                &format!("{}-{content}", mutable.replace('/', "_")),
                content,
            );
            let out = add(&repo, &prefix, &[], &[(mutable, &path)]);
            assert!(out.status.success(), "{mutable}: {:?}", text(&out));
            published_as(&repo, mutable, &path);
        }
    }

    // --replace replaces on purpose.
    let out = add(&repo, &prefix, &["--replace"], &[(name, &tampered)]);
    assert!(out.status.success(), "{:?}", text(&out));
    published_as(&repo, name, &tampered);

    // Two submitters race on one name, both held in the queue until the signer resumes: the
    // later one is signed, the earlier one learns it was replaced; neither times out.
    let racing = "p2/drupal/views.json";
    let paused = client(&repo, &prefix).args(["pause"]).output().unwrap();
    assert!(paused.status.success());
    std::thread::sleep(Duration::from_secs(1));
    let submitters: Vec<_> = ["first", "second"]
        .iter()
        .map(|who| {
            let path = file(
                &dir,
                &format!("views-{who}.json"),
                &format!("{{\"from\":\"{who}\"}}"),
            );
            let child = client(&repo, &prefix)
                .args(["add-targets", "--wait", "--timeout", "60s", "--targets-dir"])
                .arg(repo.repo.join("targets"))
                .arg("--target")
                .arg(format!("{racing}={}", path.display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // One after the other: the second is issued later.
            std::thread::sleep(Duration::from_millis(300));
            (path, child)
        })
        .collect();
    let resumed = client(&repo, &prefix).args(["resume"]).output().unwrap();
    assert!(resumed.status.success());
    let start = Instant::now();
    let mut outcomes = Vec::new();
    for (path, child) in submitters {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        outcomes.push((path, stdout, stderr));
    }
    println!(
        "racing submitters done {:.1} s after resume: {:?}",
        start.elapsed().as_secs_f64(),
        outcomes
            .iter()
            .map(|(_, o, _)| o.trim())
            .collect::<Vec<_>>()
    );
    assert!(
        outcomes[0].1.contains("1 replaced by a later submission"),
        "{:?}",
        outcomes[0]
    );
    assert!(outcomes[0].2.contains(&format!("replaced: {racing}")));
    assert!(
        outcomes[1].1.contains("covered by timestamp.json"),
        "{:?}",
        outcomes[1]
    );
    published_as(&repo, racing, &outcomes[1].0);

    let items = vec![
        format!("{name}={}", tampered.display()),
        format!("drupal/token/1.9.1.0={}", other.display()),
        format!("{racing}={}", outcomes[1].0.display()),
    ];
    let report = ngclient_verify(&repo, &items);
    println!("python-tuf: {report}");
    delete_queues(&prefix).await;
}
