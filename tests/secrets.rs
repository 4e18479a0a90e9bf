//! The broker password stays secret: a URL that does not parse is never echoed (errors, JSON
//! logs), a password can come from a file instead of the command line (it replaces the
//! URL's), and an empty
//! `AMQP_URL` means no broker rather than a broken one.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const BAD_URL: &str = "amqp://tuf:s3cret@bro ker:5672/%2f";

#[test]
fn an_unparseable_url_is_never_shown() {
    let repo = TestRepo::init(1, &[]);
    let mut signer = Command::new(SIGNER)
        .args(["run", "--role", "targets", "--log-format", "json", "--repo"])
        .arg(&repo.repo)
        .arg("--key")
        .arg(repo.key("targets"))
        .env("AMQP_URL", BAD_URL)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signer.kill().unwrap();
    let log = String::from_utf8_lossy(&signer.wait_with_output().unwrap().stderr).into_owned();
    assert!(log.contains("<unparseable AMQP URL>"), "{log}");
    assert!(
        !log.contains("s3cret"),
        "the signer logged the password:\n{log}"
    );

    let out = run(Command::new(CLIENT)
        .args(["status", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file())
        .env("AMQP_URL", BAD_URL));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("<unparseable AMQP URL>"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn the_password_comes_from_a_file_and_an_empty_url_means_no_broker() {
    let repo = TestRepo::init(1, &[]);
    let url = url::Url::parse(&amqp_url()).unwrap();
    let mut wrong = url.clone();
    wrong.set_password(Some("wrong")).unwrap();
    let file = repo.path("amqp-password");
    std::fs::write(&file, format!("{}\n", url.password().unwrap_or(""))).unwrap();
    let status = |extra: &[&str]| {
        run(Command::new(CLIENT)
            .args(["status", "--repo"])
            .arg(&repo.repo)
            .arg("--root")
            .arg(repo.pin_file())
            .args(extra)
            .env_remove("AMQP_URL"))
    };
    let out = status(&["--amqp", wrong.as_str()]);
    assert!(!out.status.success(), "a wrong password, no entry");
    let shown = ok(status(&[
        "--amqp",
        wrong.as_str(),
        "--amqp-password-file",
        file.to_str().unwrap(),
    ]));
    assert!(
        shown.contains("tuf.dead-letter"),
        "queue depths shown: {shown}"
    );
    let shown = ok(run(Command::new(CLIENT)
        .args(["status", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file())
        .env("AMQP_URL", "")));
    assert!(
        !shown.contains("tuf.dead-letter"),
        "no broker asked: {shown}"
    );
}
