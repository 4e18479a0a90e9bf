//! A newcomer's mistakes with `tuf-client add-targets`, each caught before anything is written
//! or sent: a failing exit code, a message that says what to give instead, and not one file
//! more in the test's folder (no stray `rep/control/staging/`, no job in the inbox).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Every path under `dir`, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                todo.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn add_targets_checks_its_paths_before_it_writes_or_sends() {
    let repo = TestRepo::init(4, &[]);
    let inbox = repo.path("inbox");
    std::fs::create_dir(&inbox).unwrap();
    make_releases(&repo.path("rel"), 1, "n");
    let lone = repo.path("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(repo.submitter_key(), lone.join("submitter.pem")).unwrap();
    let add = |key: &Path, args: &[&Path]| {
        let mut cmd = Command::new(CLIENT);
        cmd.args(["add-targets", "--inbox"])
            .arg(&inbox)
            .env("TUF_SUBMITTER_KEY", key)
            .env_remove("AMQP_URL")
            .env_remove("TUF_ROOT");
        for a in args {
            cmd.arg(a);
        }
        run(cmd.arg(repo.path("rel")))
    };
    let before = listing(repo.dir.path());
    let (targets, mistyped) = (repo.repo.join("targets"), repo.path("rep"));
    let (wait, flag_repo, flag_dir) = (
        Path::new("--wait"),
        Path::new("--repo"),
        Path::new("--targets-dir"),
    );

    // A mistyped --repo with --wait.
    refused(
        add(
            &repo.submitter_key(),
            &[wait, flag_repo, &mistyped, flag_dir, &targets],
        ),
        "no repository here (no metadata/1.root.json)",
    );
    // A mistyped --targets-dir.
    refused(
        add(
            &repo.submitter_key(),
            &[flag_dir, &mistyped.join("targets")],
        ),
        "not the targets/ folder of a repository",
    );
    // --wait with no root to check the published metadata from (none beside the key).
    refused(
        add(
            &lone.join("submitter.pem"),
            &[wait, flag_repo, &repo.repo, flag_dir, &targets],
        ),
        "no pinned root here",
    );
    // No word on where the release files go.
    refused(add(&repo.submitter_key(), &[]), "--targets-dir");
    assert_eq!(
        listing(repo.dir.path()),
        before,
        "something was written or sent"
    );
}

/// Every command that takes `--repo`, given one that holds no repository, says so at once,
/// naming the folder, and writes nothing (no stray folder) and sends nothing.
#[test]
fn every_command_refuses_a_mistyped_repo_and_writes_nothing() {
    let repo = TestRepo::init(4, &[]);
    let inbox = repo.path("inbox");
    std::fs::create_dir(&inbox).unwrap();
    make_releases(&repo.path("rel"), 1, "n");
    let mistyped = repo.path("rep");
    let (rep, inbox_arg, pin) = (
        mistyped.to_str().unwrap(),
        inbox.to_str().unwrap(),
        repo.pin_file(),
    );
    let (keys, rel) = (repo.keys.to_str().unwrap(), repo.path("rel"));
    let targets_key = repo.key("targets");
    let prefix = unique_prefix("newcomer-repo");
    let url = amqp_url();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            CLIENT,
            vec![
                "add-targets",
                "--no-copy",
                "--inbox",
                inbox_arg,
                "--wait",
                "--repo",
                rep,
                rel.to_str().unwrap(),
            ],
        ),
        (
            CLIENT,
            vec![
                "remove-targets",
                "--inbox",
                inbox_arg,
                "--wait",
                "--repo",
                rep,
                "drupal/n0/1.0.0.0",
            ],
        ),
        (
            CLIENT,
            vec![
                "bins", "--count", "8", "--inbox", inbox_arg, "--wait", "--repo", rep,
            ],
        ),
        (
            CLIENT,
            vec![
                "refresh-expiry",
                "--inbox",
                inbox_arg,
                "--wait",
                "--repo",
                rep,
            ],
        ),
        (
            CLIENT,
            vec!["status", "--root", pin.to_str().unwrap(), "--repo", rep],
        ),
        (
            CLIENT,
            vec!["validate", "--root", pin.to_str().unwrap(), "--repo", rep],
        ),
        (CLIENT, vec!["pause", "--repo", rep]),
        (CLIENT, vec!["resume", "--repo", rep]),
        (CLIENT, vec!["serve", "--listen", "127.0.0.1:0", rep]),
        (
            SIGNER,
            vec![
                "run", "--all", "--keys", keys, "--inbox", inbox_arg, "--repo", rep,
            ],
        ),
        (
            SIGNER,
            vec![
                "run",
                "--role",
                "targets",
                "--key",
                targets_key.to_str().unwrap(),
                "--amqp",
                &url,
                "--repo",
                rep,
            ],
        ),
    ];
    let before = listing(repo.dir.path());
    for (binary, args) in &cases {
        let out = run_to_end(
            Command::new(binary)
                .args(args)
                .env("TUF_SUBMITTER_KEY", repo.submitter_key())
                .env("TUF_QUEUE_PREFIX", &prefix)
                .env_remove("AMQP_URL")
                .env_remove("TUF_ROOT"),
            &format!("{args:?} never ended"),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(rep),
            "{args:?} should have named {rep}: {err}"
        );
        assert_eq!(listing(repo.dir.path()), before, "{args:?} wrote: {err}");
        eprintln!("{}: {}", args[0], err.lines().last().unwrap_or_default());
    }
}

/// Signed with `--no-copy`, the targets have no files where the repository serves them:
/// `validate` says so, naming the file clients would not find and what to do, and
/// `--no-target-files` is for a repository whose files are published elsewhere.
#[test]
fn validate_finds_signed_targets_whose_files_are_not_served() {
    let repo = TestRepo::init(4, &[]);
    let inbox = repo.path("inbox");
    let mut signer = repo.spawn_embedded(&inbox, &[]);
    wait_ready(&mut signer);
    let releases = make_releases(&repo.path("rel"), 2, "v");
    ok(run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args(["add-targets", "--no-copy", "--inbox"])
        .arg(&inbox)
        .args(["--wait", "--timeout", "60s", "--repo"])
        .arg(&repo.repo)
        .arg(repo.path("rel"))
        .env_remove("AMQP_URL")));
    let validate = |extra: &[&str]| {
        run(Command::new(CLIENT)
            .args(["validate", "--repo"])
            .arg(&repo.repo)
            .arg("--root")
            .arg(repo.pin_file())
            .args(extra))
    };
    let out = validate(&[]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    for (name, _) in &releases {
        assert!(
            report.contains(&format!("PROBLEM {name}: no file"))
                && report.contains("clients cannot download it"),
            "{report}"
        );
    }
    let report = ok(validate(&["--no-target-files"]));
    assert!(report.contains("repository valid"), "{report}");
}

/// The README's `validate` passes on a fresh repository, by default and with the window it
/// shows; a window is judged against each role's own lifetime unless one is given for all.
#[test]
fn validate_judges_each_role_by_its_own_lifetime() {
    let repo = TestRepo::init(4, &[]);
    let validate = |extra: &[&str]| {
        let out = run(Command::new(CLIENT)
            .args(["validate", "--no-target-files", "--repo"])
            .arg(&repo.repo)
            .arg("--root")
            .arg(repo.pin_file())
            .args(extra));
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), report)
    };
    // A fresh repository: the timestamp has 1 day left of its 1-day lifetime.
    for window in [
        &[][..],
        &["--expires-within", "12h"],
        &["--expires-within", "0"],
    ] {
        let (valid, report) = validate(window);
        assert!(valid, "{window:?}: {report}");
    }
    // One window for every role, longer than the timestamp's lifetime: only it is reported.
    let (valid, report) = validate(&["--expires-within", "2d"]);
    assert!(!valid, "{report}");
    assert!(
        report.contains("PROBLEM metadata/timestamp.json: expires in ")
            && report.contains("within --expires-within 2d")
            && report.matches("PROBLEM").count() == 1,
        "{report}"
    );
    // Signers told the timestamp lasts 200 days would re-sign this one at once: past a
    // quarter of that, validate says the signer is not doing its job, and names the flag.
    let (valid, report) = validate(&["--expire-timestamp", "200d"]);
    assert!(!valid, "{report}");
    assert!(
        report.contains("less than a quarter of its 200d lifetime is left")
            && report.contains("--expire-timestamp")
            && report.matches("PROBLEM").count() == 1,
        "{report}"
    );
}

/// A newcomer adding a large folder sees it move. With stderr not a terminal (here a pipe, as
/// in CI or a log) `add-targets` says every few seconds how many files it has hashed, then,
/// with `--wait`, how many names are decided, and each step's total and time when it ends.
/// (On a terminal the same progress is a bar.)
#[test]
fn a_100k_target_add_targets_shows_its_progress() {
    const COUNT: usize = 100_000;
    let repo = TestRepo::init(2048, &[]);
    let inbox = repo.path("inbox");
    std::fs::create_dir(&inbox).unwrap();
    make_releases(&repo.path("rel"), COUNT, "p");
    let signer = repo.spawn_embedded(&inbox, &[]);
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args(["add-targets", "--no-copy", "--inbox"])
        .arg(&inbox)
        .args(["--wait", "--timeout", "600s", "--repo"])
        .arg(&repo.repo)
        .arg(repo.path("rel"))
        .env_remove("AMQP_URL"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "add-targets failed: {stderr}");
    for last in [
        format!("hashed {COUNT}/{COUNT} files in "),
        format!("done {COUNT}/{COUNT} names in "),
    ] {
        assert!(stderr.contains(&last), "no {last:?} in:\n{stderr}");
    }
    // Said while the work moved (every 2 s): reading and hashing 100,000 files, and signing
    // them, each take longer than that.
    let moving: Vec<&str> = stderr
        .lines()
        .filter(|l| (l.starts_with("hashed ") || l.starts_with("done ")) && !l.contains(" in "))
        .collect();
    assert!(!moving.is_empty(), "no progress while it worked:\n{stderr}");
    for line in moving {
        let (done, total) = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.split_once('/'))
            .unwrap_or_else(|| panic!("{line}"));
        let done: usize = done.parse().unwrap();
        assert!(done < COUNT && total == COUNT.to_string(), "{line}");
    }
    drop(signer);
}
