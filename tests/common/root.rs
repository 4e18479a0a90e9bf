//! The offline root ceremony, as a keyholder runs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
            package_signing::bins::HashBins::new(8).unwrap().name(0)
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

/// The README's rotation of every online key, then of the root key, on a repository whose
/// `signers` are `spawn_all_signers`' (targets, snapshot, timestamp): root version +1 adds a
/// new key to each online role; each signer restarts with its new key and the key it replaces
/// beside it (`NAME.previous.pem`), so both sign; `between` runs then (a release, checks);
/// root version +2 removes the old keys; root version +3 replaces init's root key, signed by
/// it and the new one. Returns the new online key files, in the signers' order.
pub fn rotate_every_key(
    repo: &TestRepo,
    signers: &mut [Proc],
    prefix: &str,
    between: impl FnOnce(&[PathBuf]),
) -> Vec<PathBuf> {
    let dir = repo.path("rotated-keys");
    std::fs::create_dir_all(&dir).unwrap();
    let roles = ["targets", "snapshot", "timestamp"];
    let (mut added, mut removed, mut new_keys) = (Vec::new(), Vec::new(), Vec::new());
    for role in roles {
        let (private, public) = openssl_key(&dir, role);
        added.extend([
            "--add-key".to_string(),
            format!("{role}={}", public.display()),
        ]);
        removed.extend([
            "--remove-key".to_string(),
            format!("{role}={}", key_id(&repo.key(role))),
        ]);
        std::fs::copy(
            repo.key(role),
            package_signing::keys::previous_key_file(&private),
        )
        .unwrap();
        new_keys.push(private);
    }
    publish_root_change(repo, &strs(&added));
    for (i, role) in roles.iter().enumerate() {
        signers[i].kill();
        signers[i] = repo.spawn_signer_with_key(role, &new_keys[i], prefix, &[]);
        wait_ready(&mut signers[i]);
    }
    between(&new_keys);
    // The old keys go once the served files are signed by the new ones: the restarted
    // signers re-sign at once, but on their own time; `root publish` refuses until then, and
    // the operator tries again, as here.
    let mut args = vec!["new", "--force"];
    args.extend(strs(&removed));
    ok(root_cmd(repo, &args));
    root_sign(repo, &repo.key("root"));
    let started = std::time::Instant::now();
    loop {
        let out = root_cmd(repo, &["publish"]);
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("clients would refuse") && started.elapsed().as_secs() < 120,
            "root publish: {err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (root_key, root_public) = openssl_key(&dir, "root-2");
    ok(root_cmd(
        repo,
        &[
            "new",
            "--force",
            "--add-key",
            &format!("root={}", root_public.display()),
            "--remove-key",
            &format!("root={}", key_id(&repo.key("root"))),
        ],
    ));
    root_sign(repo, &repo.key("root"));
    root_sign(repo, &root_key);
    ok(root_cmd(repo, &["publish"]));
    new_keys
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Waits until the newest file of `role` is signed by `id` alone.
pub fn wait_signed_by(repo: &TestRepo, role: &str, id: &str) {
    let start = Instant::now();
    while newest_signer(repo, role) != [id] {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{role} never re-signed with the new key"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our own verifying client (`tuf-client download`), keeping its trusted metadata in
/// `trusted` between calls: it must follow the same rotations as python-tuf.
pub fn our_client_downloads(repo: &TestRepo, releases: &[(String, PathBuf)]) {
    let trusted = repo.path("our-client");
    if !trusted.join("root.json").exists() {
        ok(run(Command::new(CLIENT)
            .args(["init", "--metadata-dir"])
            .arg(&trusted)
            .arg(repo.repo.join("metadata/1.root.json"))));
    }
    let out_dir = repo.path("our-downloads");
    let _ = std::fs::remove_dir_all(&out_dir);
    let sample: Vec<&str> = releases
        .iter()
        .step_by(7)
        .map(|(n, _)| n.as_str())
        .collect();
    ok(run(Command::new(CLIENT)
        .args(["download", "--metadata-dir"])
        .arg(&trusted)
        .arg("--metadata-url")
        .arg(repo.repo.join("metadata"))
        .arg("--targets-url")
        .arg(repo.repo.join("targets"))
        .arg("-o")
        .arg(&out_dir)
        .args(&sample)));
    for (name, file) in releases.iter().step_by(7) {
        assert_eq!(
            std::fs::read(out_dir.join(name)).unwrap(),
            std::fs::read(file).unwrap()
        );
    }
}
