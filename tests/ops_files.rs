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
            "image: ${TUF_REGISTRY}/snapshot-signer@",
            "image: ${TUF_REGISTRY}/snapshot-sign3r@",
            "not one the flake builds",
        ),
        (
            ".ddev/docker-compose.snapshot-signer.yaml",
            "image: ${TUF_REGISTRY}/snapshot-signer@${TUF_DIGEST_SNAPSHOT_SIGNER}",
            "image: ${TUF_REGISTRY}/snapshot-signer:latest",
            "by its pinned digest",
        ),
        (
            ".ddev/docker-compose.snapshot-signer.yaml",
            "TUF_IMAGE: ${TUF_REGISTRY}/snapshot-signer@",
            "TUF_IMAGE: ${TUF_REGISTRY}/timestamp-signer@",
            "says it runs as",
        ),
        (
            ".ddev/.env",
            "TUF_DIGEST_SNAPSHOT_SIGNER=",
            "TUF_DIGEST_SNAPSHOT=",
            "is not pinned in .ddev/.env",
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

/// A release file (scripts/release): recorded from pushed digests, pinned into an env file with
/// its other lines kept, and refused, naming what is wrong, when an image has no digest.
#[test]
fn a_release_is_recorded_pinned_and_checked_by_digest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/release");
    let release = |args: &[&str]| run(Command::new(python()).arg(&script).args(args));
    let dir = tempfile::tempdir().unwrap();
    let digests = dir.path().join("digests");
    std::fs::create_dir(&digests).unwrap();
    let agents: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(root.join("nix/agents.json")).unwrap()).unwrap();
    let images: Vec<&str> = std::iter::once("rabbitmq")
        .chain(agents.keys().map(String::as_str))
        .collect();
    for (i, image) in images.iter().enumerate() {
        std::fs::write(
            digests.join(image),
            format!("sha256:{}\n", format!("{:x}", i + 1).repeat(64)),
        )
        .unwrap();
    }
    let file = dir.path().join("release.env");
    let d = digests.to_str().unwrap();
    let out = release(&[
        "record",
        "--registry",
        "registry.example/tuf",
        "--commit",
        "abc123",
        "--digests-dir",
        d,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = std::fs::read_to_string(&file).unwrap();
    for (i, image) in images.iter().enumerate() {
        let var = format!("TUF_DIGEST_{}", image.to_uppercase().replace('-', "_"));
        assert!(
            recorded.contains(&format!(
                "{var}=sha256:{}",
                format!("{:x}", i + 1).repeat(64)
            )),
            "{recorded}"
        );
    }

    // Pinned into a copy of .ddev/.env: the release's lines replace the old pins, the rest stays.
    let env = dir.path().join(".env");
    std::fs::copy(root.join(".ddev/.env"), &env).unwrap();
    let out = release(&[
        "pin",
        file.to_str().unwrap(),
        "--env",
        env.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pinned = std::fs::read_to_string(&env).unwrap();
    assert!(
        pinned.contains("TUF_RELEASE=abc123\n")
            && pinned.contains("TUF_REGISTRY=registry.example/tuf\n"),
        "{pinned}"
    );
    assert!(
        pinned.contains("TUF_BINS=2048\n") && !pinned.contains(&"0".repeat(64)),
        "{pinned}"
    );
    let out = release(&["check", env.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("release abc123 from registry.example/tuf")
    );

    // An image without a digest, or a tag instead of one: refused, naming the variable.
    std::fs::write(
        &env,
        pinned.replace(
            "TUF_DIGEST_SNAPSHOT_SIGNER=sha256:",
            "TUF_DIGEST_SNAPSHOT_SIGNER=latest-",
        ),
    )
    .unwrap();
    let out = release(&["check", env.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("TUF_DIGEST_SNAPSHOT_SIGNER is 'latest-"),
        "{stderr}"
    );
    std::fs::remove_file(digests.join("timestamp-signer")).unwrap();
    let out = release(&[
        "record",
        "--registry",
        "r",
        "--commit",
        "c",
        "--digests-dir",
        d,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("no digest for timestamp-signer"),
        "{stderr}"
    );
}
