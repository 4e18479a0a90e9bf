//! The deployment files agree with the flake and the broker definitions (the cross-checks in
//! tests/python/check_ops.py), and the check does catch a mismatch.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn check(root: &Path) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_ops.py");
    run(Command::new(python()).arg(script).arg(root))
}

fn copy(from: &Path, to: &Path, rel: &str) {
    std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
    std::fs::copy(from.join(rel), to.join(rel)).unwrap();
}

#[test]
fn compose_and_ci_name_only_flake_images_and_definition_users() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = check(root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same files with one mistake each: the check must fail.
    let files = [
        "nix/agents.json",
        "nix/rabbitmq/definitions.json",
        ".ddev/.env",
        ".gitlab-ci.yml",
        ".ddev/docker-compose.rabbitmq.yaml",
        ".ddev/docker-compose.packaging-pipeline.yaml",
        ".ddev/docker-compose.delegated-targets-signer.yaml",
        ".ddev/docker-compose.snapshot-signer.yaml",
        ".ddev/docker-compose.timestamp-signer.yaml",
    ];
    let mutations = [
        (
            ".ddev/docker-compose.snapshot-signer.yaml",
            "/snapshot-signer:",
            "/snapshot-sign3r:",
            "not one the flake builds",
        ),
        (
            ".ddev/docker-compose.snapshot-signer.yaml",
            "dev-snapshot-signer@",
            "wrong@",
            "password does not match",
        ),
        (
            ".ddev/docker-compose.snapshot-signer.yaml",
            "tuf-keys-snapshot:/run/keys",
            "tuf-keys-targets:/run/keys",
            "expected only",
        ),
        (
            ".gitlab-ci.yml",
            "timestamp-signer\"",
            "timestamp-signer extra\"",
            "differ from the flake",
        ),
    ];
    for (file, from, to, why) in mutations {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            copy(root, dir.path(), f);
        }
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert!(text.contains(from), "{file} no longer contains {from}");
        std::fs::write(dir.path().join(file), text.replacen(from, to, 1)).unwrap();
        let out = check(dir.path());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && stdout.contains(why),
            "{file}: {from} -> {to} not caught:\n{stdout}"
        );
    }
}
