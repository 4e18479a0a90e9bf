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
    assert_eq!(
        listing(repo.dir.path()),
        before,
        "something was written or sent"
    );
}
