//! The offline root ceremony (threshold root keys made by OpenSSL, one keyholder at a time)
//! and the rotation of every online key, with python-tuf clients verifying before, during
//! and after.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn validate(repo: &TestRepo) {
    ok(run(Command::new(CLIENT)
        .args(["validate", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file())));
}

#[test]
fn threshold_root_ceremony_with_openssl_keys() {
    let repo = TestRepo::init(8, &[]);
    let kh = repo.path("keyholders");
    std::fs::create_dir_all(&kh).unwrap();
    let keys: Vec<_> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| openssl_key(&kh, n))
        .collect();
    // An installed client that trusted root v1 and must follow the chain.
    ngclient_update(&repo, "client", &[]);

    // v2: three keyholders, two signatures needed, init's root key retired.
    let init_root = key_id(&repo.key("root"));
    let mut new = vec!["new", "--expires", "30d", "--threshold", "root=2"];
    let adds: Vec<String> = keys
        .iter()
        .map(|(_, public)| format!("root={}", public.display()))
        .collect();
    for a in &adds {
        new.extend(["--add-key", a]);
    }
    let remove = format!("root={}", &init_root[..12]);
    new.extend(["--remove-key", &remove]);
    let shown = ok(root_cmd(&repo, &new));
    assert!(shown.contains("threshold 2 of 3 (was 1)"), "{shown}");
    assert!(shown.contains(&format!("  - {init_root}")), "{shown}");

    refused(root_cmd(&repo, &["publish"]), "not enough signatures");
    // A key that is not a root key is refused rather than silently useless.
    refused(
        root_cmd(
            &repo,
            &["sign", "--key", repo.key("targets").to_str().unwrap()],
        ),
        "is not a root key",
    );
    root_sign(&repo, &repo.key("root")); // the old root's threshold (1 of 1)
    let status = root_sign(&repo, &keys[0].0);
    assert!(
        status.contains("signatures of the current root keys: 1 of 1 needed (met)")
            && status.contains("signatures of the new root keys: 1 of 2 needed\n"),
        "{status}"
    );
    refused(root_cmd(&repo, &["publish"]), "new root keys");
    root_sign(&repo, &keys[2].0);
    assert!(ok(root_cmd(&repo, &["publish"])).contains("published root v2"));
    // Publishing the same draft again changes nothing; an outdated draft is refused below.
    ok(root_cmd(&repo, &["publish"]));
    std::fs::copy(repo.path("root-draft.json"), repo.path("v2-draft.json")).unwrap();
    assert!(repo.repo.join("metadata/2.root.json").is_file());
    assert_eq!(
        std::fs::read(repo.repo.join("metadata/2.root.json")).unwrap(),
        std::fs::read(repo.repo.join("metadata/root.json")).unwrap()
    );
    let report = ngclient_update(&repo, "client", &[]);
    assert_eq!(report["root"], 2);

    // v3, a plain expiry extension: two of the three keyholders, the old key counts no more.
    ok(root_cmd(&repo, &["new", "--expires", "365d", "--force"]));
    root_sign(&repo, &keys[1].0);
    refused(
        root_cmd(
            &repo,
            &["sign", "--key", repo.key("root").to_str().unwrap()],
        ),
        "is not a root key",
    );
    refused(root_cmd(&repo, &["publish"]), "not enough signatures");
    root_sign(&repo, &keys[2].0);
    // Interrupted after writing 3.root.json, before root.json: running it again finishes.
    let draft = std::fs::read(repo.path("root-draft.json")).unwrap();
    std::fs::write(repo.repo.join("metadata/3.root.json"), &draft).unwrap();
    ok(root_cmd(&repo, &["publish"]));
    assert_eq!(
        std::fs::read(repo.repo.join("metadata/root.json")).unwrap(),
        draft
    );
    std::fs::copy(repo.path("v2-draft.json"), repo.path("root-draft.json")).unwrap();
    refused(root_cmd(&repo, &["publish"]), "repository is at v3");

    assert_eq!(ngclient_update(&repo, "client", &[])["root"], 3);
    assert_eq!(ngclient_verify(&repo, &[])["root"], 3);
    validate(&repo);
    assert_metadata_rules(&repo);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_online_key_rotates_while_clients_keep_verifying() {
    let repo = TestRepo::init(8, &[]);
    let prefix = unique_prefix("rotate");
    let mut signers: Vec<Proc> = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let mut releases = make_releases(&repo.path("rel-0"), 20, "r0");
    repo.add_over_broker(&prefix, &repo.path("rel-0"), &[]);
    ngclient_update(&repo, "client", &items_for(&releases));
    our_client_downloads(&repo, &releases);
    let kh = repo.path("new-keys");
    std::fs::create_dir_all(&kh).unwrap();

    for (i, role) in ["timestamp", "snapshot", "targets"].into_iter().enumerate() {
        let old = key_id(&repo.key(role));
        let (private, public) = openssl_key(&kh, role);
        let new = key_id(&private);

        // 1. Root lists the new key beside the old one; nothing else changes yet.
        publish_root_change(
            &repo,
            &["--add-key", &format!("{role}={}", public.display())],
        );
        ngclient_update(&repo, "client", &items_for(&releases));
        our_client_downloads(&repo, &releases);

        // Removing the old key before the signer holds the new one would stop every
        // client: publish refuses it.
        ok(root_cmd(
            &repo,
            &["new", "--force", "--remove-key", &format!("{role}={old}")],
        ));
        root_sign(&repo, &repo.key("root"));
        refused(
            root_cmd(&repo, &["publish"]),
            "clients would refuse the repository",
        );

        // 2. The signer restarts with the new key and re-signs its metadata at once.
        let slot = ["targets", "snapshot", "timestamp"]
            .iter()
            .position(|r| *r == role)
            .unwrap();
        signers[slot].kill();
        signers[slot] = repo.spawn_signer_with_key(role, &private, &prefix, &[]);
        wait_signed_by(&repo, role, &new);
        if role == "targets" {
            wait_signed_by(&repo, "bins", &new);
        }
        // A standby left running with the old key, behind the new active signer (with a
        // short lifetime it checks its key every half second).
        let mut stale = (role == "timestamp").then(|| {
            let mut p = repo.spawn_signer(role, &prefix, &["--expire-timestamp", "4s"]);
            wait_ready(&mut p);
            p
        });
        // The chain follows the re-signed file up to a new timestamp.
        let more = make_releases(
            &repo.path(&format!("rel-{}", i + 1)),
            5,
            &format!("r{}", i + 1),
        );
        repo.add_over_broker(&prefix, &repo.path(&format!("rel-{}", i + 1)), &[]);
        releases.extend(more);
        ngclient_update(&repo, "client", &items_for(&releases));

        // 3. Root drops the old key: only the new one signs this role from now on.
        publish_root_change(&repo, &["--remove-key", &format!("{role}={old}")]);
        ngclient_update(&repo, "client", &items_for(&releases));
        our_client_downloads(&repo, &releases);
        ngclient_verify(&repo, &items_for(&releases));
        validate(&repo);

        // The forgotten standby notices its key is gone and stops, saying why.
        if let Some(stale) = &mut stale {
            let start = Instant::now();
            while stale.is_running() {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "a signer whose key the root dropped kept running:\n{}",
                    stale.log_text()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(
                stale
                    .log_text()
                    .contains("is not a Timestamp key in root version"),
                "{}",
                stale.log_text()
            );
        }
    }
    assert_metadata_rules(&repo);
    drop(signers);
    delete_queues(&prefix).await;
}

/// The key files `init` writes are PKCS#8 v1, as `openssl genpkey` writes them: OpenSSL and
/// Python's `cryptography` read each one and derive the public key the root publishes.
#[test]
fn init_keys_are_read_by_openssl_and_python_cryptography() {
    let repo = TestRepo::init(1, &[]);
    let root: package_signing::schema::Root = serde_json::from_value(
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(repo.repo.join("metadata/1.root.json")).unwrap(),
        )
        .unwrap()["signed"]
            .take(),
    )
    .unwrap();
    let python_public = "import sys\n\
        from cryptography.hazmat.primitives import serialization as s\n\
        k = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)\n\
        sys.stdout.write(k.public_key().public_bytes(s.Encoding.PEM, \
        s.PublicFormat.SubjectPublicKeyInfo).decode())";
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let key = repo.key(role);
        let role_type = package_signing::role::Role::top_level(role)
            .unwrap()
            .role_type();
        let published = root.keys_of(role_type)[0];
        let ours = package_signing::keys::public_pem(published).unwrap();
        let by_openssl = ok(run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)));
        assert_eq!(
            by_openssl, ours,
            "{role}: openssl derives another public key"
        );
        let by_python = ok(run(Command::new(python())
            .args(["-c", python_public])
            .arg(&key)));
        assert_eq!(
            by_python, ours,
            "{role}: cryptography derives another public key"
        );
    }
}

/// A repository made with the specification's key-id rule: root rotations keep the rule,
/// and our client, python-tuf and `validate` accept it as they accept php-tuf's.
#[tokio::test(flavor = "multi_thread")]
async fn the_spec_key_id_rule_is_kept_and_accepted() {
    use package_signing::keys::{key_id as id_by_rule, KeyIdRule};
    let repo = TestRepo::init(8, &["--key-id-rule", "spec"]);
    let spec_id = |path: &Path| {
        id_by_rule(
            &package_signing::keys::load_public(path).unwrap(),
            KeyIdRule::Spec,
        )
        .unwrap()
    };
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.repo.join("metadata/1.root.json")).unwrap())
            .unwrap();
    assert_eq!(
        root["signed"]["roles"]["targets"]["keyids"][0],
        spec_id(&repo.key("targets"))
    );
    let prefix = unique_prefix("spec-ids");
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let releases = make_releases(&repo.path("rel"), 10, "s");
    repo.add_over_broker(&prefix, &repo.path("rel"), &[]);

    let kh = repo.path("kh");
    std::fs::create_dir_all(&kh).unwrap();
    let (_, public) = openssl_key(&kh, "spare");
    let add = format!("snapshot={}", public.display());
    publish_root_change(&repo, &["--add-key", &add]);
    let v2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.repo.join("metadata/2.root.json")).unwrap())
            .unwrap();
    assert!(
        v2["signed"]["keys"]
            .as_object()
            .unwrap()
            .contains_key(&spec_id(&public)),
        "a key added to a spec-rule root gets a spec-rule id"
    );

    ngclient_verify(&repo, &items_for(&releases));
    our_client_downloads(&repo, &releases);
    let report = ok(run(Command::new(CLIENT)
        .args(["validate", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file())));
    assert!(
        report.contains("key ids by the specification's rule"),
        "{report}"
    );
    drop(signers);
    delete_queues(&prefix).await;
}

/// An attack on `init`: another local user copying key files while they are written.
/// Run as root, an attacker loops as `nobody` over the keys folders (temp names included)
/// during five inits; it reads a world-readable canary beside them (so it can look) and never
/// a key. The folders are 0700 and the files 0600 afterwards; the race itself is best effort.
#[test]
fn no_other_user_reads_a_key_while_init_writes_it() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: needs root, to run the attacker as another user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("canary"), "seen").unwrap();
    std::fs::set_permissions(
        dir.path().join("canary"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let stolen = dir.path().join("stolen");
    let attack = format!(
        "while :; do cat {d}/canary {d}/keys*/*.pem {d}/keys*/.*.pem* {d}/keys*/*/*.pem \
         {d}/keys*/*/.*.pem* 2>/dev/null; done",
        d = dir.path().display()
    );
    let mut attacker = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(&attack)
        .stdout(std::fs::File::create(&stolen).unwrap())
        .spawn()
        .expect("setpriv (util-linux) runs the attacker");
    for i in 0..5 {
        let folders: &[&str] = if i % 2 == 0 { &[] } else { &["--key-folders"] };
        ok(run(Command::new(SIGNER)
            .args(["init", "--bins", "1", "--repo"])
            .arg(dir.path().join(format!("repo{i}")))
            .arg("--keys")
            .arg(dir.path().join(format!("keys{i}")))
            .args(folders)));
    }
    std::thread::sleep(Duration::from_millis(200));
    attacker.kill().unwrap();
    attacker.wait().unwrap();
    let seen = std::fs::read_to_string(&stolen).unwrap();
    assert!(seen.contains("seen"), "the attacker never ran");
    assert!(
        !seen.contains("PRIVATE KEY"),
        "another user read a key file"
    );
    for i in 0..5 {
        let mode = std::fs::metadata(dir.path().join(format!("keys{i}")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "keys{i}");
    }
}

/// The previous key beside a signer's key (a rotation settling) must be the key the role had:
/// the signer refuses to start with a key no root ever listed for its role, or with its own key
/// again, naming the file and what to put there.
#[test]
fn a_signer_refuses_a_previous_key_its_role_never_had() {
    let repo = TestRepo::init(4, &[]);
    let key = repo.key("timestamp");
    let previous = package_signing::keys::previous_key_file(&key);
    let start = || {
        run(Command::new(SIGNER)
            .args(["run", "--role", "timestamp", "--repo"])
            .arg(&repo.repo)
            .arg("--key")
            .arg(&key)
            .args(["--amqp", &amqp_url(), "--queue-prefix"])
            .arg(unique_prefix("previous"))
            .env("TUF_ROOT", repo.pin_file()))
    };
    let (stranger, _) = openssl_key(&repo.path(""), "stranger");
    std::fs::copy(&stranger, &previous).unwrap();
    refused(start(), "was never a timestamp key in roots 1 to 1");
    std::fs::copy(repo.key("snapshot"), &previous).unwrap();
    refused(start(), "was never a timestamp key");
    std::fs::copy(&key, &previous).unwrap();
    refused(start(), "is the same key as");
}
