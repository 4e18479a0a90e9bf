//! The offline root ceremony, as a keyholder runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// `openssl genpkey -algorithm ED25519`: the private key, and its public half as keyholders
/// hand it over.
pub fn openssl_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let out = run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ED25519", "-out"])
        .arg(&private));
    assert!(out.status.success(), "openssl genpkey failed");
    let out = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    assert!(out.status.success(), "openssl pkey -pubout failed");
    (private, public)
}

pub fn root_cmd(repo: &TestRepo, args: &[&str]) -> std::process::Output {
    run(Command::new(SIGNER)
        .arg("root")
        .args(args)
        .arg("--repo")
        .arg(&repo.repo)
        .arg("--draft")
        .arg(repo.path("root-draft.json"))
        .arg("--root")
        .arg(repo.pin_file()))
}

pub fn root_sign(repo: &TestRepo, key: &Path) -> String {
    ok(root_cmd(repo, &["sign", "--key", key.to_str().unwrap()]))
}

/// The id a key file signs under (php-tuf's rule, as `init` and `root new` name keys).
pub fn key_id(path: &Path) -> String {
    package_signing::keys::SigningKey::load(path)
        .unwrap()
        .key_id()
        .to_string()
}

/// A new root version with `changes` (`root new` flags), signed with init's root key (the
/// threshold of a root that still has it) and published.
pub fn publish_root_change(repo: &TestRepo, changes: &[&str]) {
    let mut args = vec!["new", "--force"];
    args.extend(changes);
    ok(root_cmd(repo, &args));
    root_sign(repo, &repo.key("root"));
    ok(root_cmd(repo, &["publish"]));
}

/// The key ids that signed the newest file of `role`: `timestamp`, `snapshot`, `targets`, or
/// `bins` (the first of the 8 bins `TestRepo::init(8, ..)` makes).
pub fn newest_signer(repo: &TestRepo, role: &str) -> Vec<String> {
    let path = if role == "timestamp" {
        repo.layout().timestamp()
    } else {
        let bin = if role == "bins" {
            package_signing::repository::HashBins::new(8)
                .unwrap()
                .name(0)
        } else {
            role.to_string()
        };
        let v = *repo.layout().scan_versions().unwrap()[&bin].last().unwrap();
        repo.layout().versioned(&bin, v)
    };
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    value["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_string())
        .collect()
}
