//! The verifying client refuses what the specification says it must: tampered targets,
//! forged metadata, rollback, freeze (expired metadata) and mix-and-match.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn client(args: &[&str], extra: &[&Path]) -> Output {
    run(Command::new(CLIENT).args(args).args(extra))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

struct Setup {
    repo: TestRepo,
    inbox: std::path::PathBuf,
    signer: Proc,
}

fn setup(extra: &[&str]) -> Setup {
    let repo = TestRepo::init(16, &[]);
    let inbox = repo.path("inbox");
    let signer = repo.spawn_embedded(&inbox, extra);
    Setup {
        repo,
        inbox,
        signer,
    }
}

fn add(s: &Setup, tag: &str) -> Vec<(String, std::path::PathBuf)> {
    let dir = s.repo.path(&format!("rel-{tag}"));
    let releases = make_releases(&dir, 3, tag);
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", s.repo.submitter_key())
        .args(["add-targets", "--inbox"])
        .arg(&s.inbox)
        .arg("--targets-dir")
        .arg(s.repo.repo.join("targets"))
        .args(["--wait", "--timeout", "60s", "--repo"])
        .arg(&s.repo.repo)
        .arg(&dir));
    assert!(out.status.success(), "{}", stderr(&out));
    releases
}

fn trust(s: &Setup, name: &str) -> std::path::PathBuf {
    let dir = s.repo.path(name);
    let out = client(
        &["init", "--metadata-dir"],
        &[&dir, &s.repo.repo.join("metadata/1.root.json")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

fn refresh(trusted: &Path, metadata: &Path) -> Output {
    client(
        &["refresh", "--metadata-dir"],
        &[trusted, Path::new("--metadata-url"), metadata],
    )
}

#[test]
fn tampered_target_is_refused_and_nothing_is_written() {
    let s = setup(&[]);
    let releases = add(&s, "t");
    let mirror = s.repo.path("mirror");
    copy_dir(&s.repo.repo, &mirror);
    // Same length, other bytes: only the hash can tell.
    let (name, file) = &releases[0];
    let bytes = std::fs::read(file).unwrap();
    let sha = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &bytes,
    ));
    let stored = mirror
        .join("targets")
        .join(package_signing::client::submit::consistent_path(name, &sha));
    let mut evil = bytes.clone();
    evil[0] ^= 1;
    std::fs::write(&stored, &evil).unwrap();

    let trusted = trust(&s, "trusted");
    let out_dir = s.repo.path("out");
    let out = client(
        &["download", "--metadata-dir"],
        &[
            &trusted,
            Path::new("--metadata-url"),
            &mirror.join("metadata"),
            Path::new("--targets-url"),
            &mirror.join("targets"),
            Path::new("-o"),
            &out_dir,
            Path::new(name),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("sha256 does not match"),
        "{}",
        stderr(&out)
    );
    assert!(
        !out_dir.join(name).exists(),
        "an unverified file was written"
    );

    // The honest copy downloads.
    let out = client(
        &["download", "--metadata-dir"],
        &[
            &trusted,
            Path::new("--metadata-url"),
            &s.repo.repo.join("metadata"),
            Path::new("--targets-url"),
            &s.repo.repo.join("targets"),
            Path::new("-o"),
            &out_dir,
            Path::new(name),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(out_dir.join(name)).unwrap(), bytes);
}

#[test]
fn forged_rolled_back_and_mixed_metadata_are_refused() {
    let s = setup(&[]);
    add(&s, "a");
    let old = s.repo.path("old");
    copy_dir(&s.repo.repo.join("metadata"), &old);
    add(&s, "b");
    let metadata = s.repo.repo.join("metadata");

    let trusted = trust(&s, "trusted");
    let out = refresh(&trusted, &metadata);
    assert!(out.status.success(), "{}", stderr(&out));

    // Rollback: a mirror serving the older timestamp.
    let out = refresh(&trusted, &old);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rollback"), "{}", stderr(&out));

    // Forgery: the newest timestamp with its version bumped but not re-signed.
    let forged = s.repo.path("forged");
    copy_dir(&metadata, &forged);
    let text = std::fs::read_to_string(forged.join("timestamp.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let v = value["signed"]["version"].as_u64().unwrap();
    value["signed"]["version"] = (v + 1).into();
    std::fs::write(
        forged.join("timestamp.json"),
        serde_json::to_vec(&value).unwrap(),
    )
    .unwrap();
    let fresh = trust(&s, "trusted-fresh");
    let out = refresh(&fresh, &forged);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("valid signature(s)"),
        "{}",
        stderr(&out)
    );

    // Mix-and-match: the snapshot the timestamp names replaced by another one.
    let mixed = s.repo.path("mixed");
    copy_dir(&metadata, &mixed);
    let versions = s.repo.layout().scan_versions().unwrap();
    let snaps = &versions["snapshot"];
    let (newest, older) = (snaps[snaps.len() - 1], snaps[snaps.len() - 2]);
    std::fs::copy(
        old.join(format!("{older}.snapshot.json")),
        mixed.join(format!("{newest}.snapshot.json")),
    )
    .unwrap();
    let fresh = trust(&s, "trusted-mixed");
    let out = refresh(&fresh, &mixed);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("expected") || err.contains("sha256 does not match"),
        "{err}"
    );
}

#[test]
fn expired_timestamp_is_refused_as_a_freeze() {
    let mut s = setup(&["--expire-timestamp", "2s"]);
    add(&s, "f");
    let trusted = trust(&s, "trusted");
    let metadata = s.repo.repo.join("metadata");
    let out = refresh(&trusted, &metadata);
    assert!(out.status.success(), "{}", stderr(&out));
    // A running signer would re-sign the timestamp before it expires: stop it, as a freeze
    // attack (or an outage) would leave clients with what was last published.
    s.signer.kill();
    std::thread::sleep(Duration::from_secs(3));
    let out = refresh(&trusted, &metadata);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
}

#[test]
fn validate_passes_a_good_repository_and_names_what_is_wrong_with_a_bad_one() {
    let s = setup(&[]);
    add(&s, "v");
    let pin = s.repo.pin_file();
    let validate = |extra: &[&str], repo: &Path| {
        run(Command::new(CLIENT)
            .arg("validate")
            .args(extra)
            .arg("--root")
            .arg(&pin)
            .arg("--repo")
            .arg(repo))
    };
    let out = validate(&[], &s.repo.repo);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", stderr(&out));
    assert!(
        stdout.contains("repository valid") && stdout.contains("3 targets"),
        "{stdout}"
    );

    // A timestamp that expires within the window asked for is reported.
    let out = validate(&["--expires-within", "2d"], &s.repo.repo);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("PROBLEM metadata/timestamp.json: expires")
    );

    // One byte changed in a bin: its hash no longer matches the snapshot. The problem names
    // the file the operator opens, not the role.
    let copy = s.repo.path("tampered");
    copy_dir(&s.repo.repo, &copy);
    let versions = s.repo.layout().scan_versions().unwrap();
    let (bin, v) = versions
        .iter()
        .filter(|(r, _)| r.starts_with("bin-"))
        .map(|(r, v)| (r.clone(), *v.last().unwrap()))
        .max_by_key(|(_, v)| *v)
        .unwrap();
    let file = copy.join("metadata").join(format!("{v}.{bin}.json"));
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("\"length\":", "\"length\": ", 1);
    std::fs::write(&file, text).unwrap();
    let out = validate(&[], &copy);
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        all.contains(&format!("PROBLEM metadata/{v}.{bin}.json: "))
            && (all.contains("sha256") || all.contains("bytes")),
        "{all}"
    );
}

/// `tuf-client serve` stops at once on SIGTERM, as a container runtime stops it (it used to
/// ignore the signal as PID 1 and be killed after the grace period).
#[test]
fn serve_stops_on_sigterm() {
    let repo = TestRepo::init(1, &[]);
    let mut server = HttpServer::ours(&repo.repo);
    let pid = rustix::process::Pid::from_child(&server.proc.child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = server.proc.child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "serve ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
