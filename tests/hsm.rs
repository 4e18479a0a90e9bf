//! Keys in a PKCS#11 token (SoftHSM2, a real token): a repository whose every key (the three
//! online roles', root's and the packaging pipeline's) was generated inside the token, signed
//! by signers over the real broker, is accepted by python-tuf, php-tuf and our own client,
//! through a root rotation signed by token-held root keys; no private key file exists
//! anywhere. A token that disappears fails the batch: nothing is written, the job is neither
//! lost nor dead-lettered, and it is signed once the token is back.
//!
//! Needs SoftHSM2 (`SOFTHSM2_MODULE`, which scripts/test sets when Debian's `softhsm2` is
//! installed); without it each test is ignored with the reason "skipped: no SoftHSM2".

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use package_signing::broker::Queue;

/// One test at a time: SoftHSM2 reads every token's folder as a process starts, and a token
/// being made or unplugged by another test must not be half-seen.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The tokens the tests use, each test its own.
const TOKENS: [&str; 4] = ["all", "gone", "wrong", "late"];

/// This process's SoftHSM2 configuration: a token folder of its own, named to every child
/// process (and to this one's module) by `SOFTHSM2_CONF`, with every test's token made up
/// front (SoftHSM2 sees only the tokens there when a process first opens it).
fn softhsm() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("softhsm-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::create_dir(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        // Set once, before any token is opened, and the same for every test of this binary.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for label in TOKENS {
            ok(run(Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", "4321", "--so-pin", "87654321"])));
            std::fs::write(dir.join(format!("{label}.pin")), "4321\n").unwrap();
        }
        dir
    })
}

/// The `pkcs11:` URI of the token labelled `label`, its user PIN in a file only this user
/// reads (no key named: init and new-key name their own).
fn token(label: &str) -> String {
    let dir = softhsm();
    format!(
        "pkcs11:token={label}?module-path={}&pin-source=file:{}",
        std::env::var("SOFTHSM2_MODULE").unwrap(),
        dir.join(format!("{label}.pin")).display()
    )
}

/// The folder SoftHSM2 keeps the token labelled `label` in.
fn token_folder(uri: &str) -> PathBuf {
    let label = uri
        .strip_prefix("pkcs11:token=")
        .and_then(|rest| rest.split('?').next())
        .unwrap();
    std::fs::read_dir(softhsm().join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|dir| {
            std::fs::read(dir.join("token.object"))
                .is_ok_and(|b| b.windows(label.len()).any(|w| w == label.as_bytes()))
        })
        .unwrap_or_else(|| panic!("no SoftHSM2 folder holds token {label}"))
}

/// The three signers over the broker, each started once the one before is ready: SoftHSM2's
/// file store lists the tokens as a process opens it, and skips one that another process
/// holds locked at that instant (as each does while it logs in).
fn spawn_signers_in_turn(repo: &TestRepo, prefix: &str) -> Vec<Proc> {
    ["targets", "snapshot", "timestamp"]
        .iter()
        .map(|role| {
            let mut signer = repo.spawn_signer(role, prefix, &[]);
            wait_ready(&mut signer);
            signer
        })
        .collect()
}

/// Where a token's folder goes while it is unplugged: out of SoftHSM2's token folder, which
/// it reads whole.
fn unplugged(folder: &Path) -> PathBuf {
    softhsm().join(format!(
        "unplugged-{}",
        folder.file_name().unwrap().to_string_lossy()
    ))
}

/// `tuf-signer new-key --token URI;object=LABEL --out OUT`: a new key inside the token.
fn new_token_key(token: &str, label: &str, out: &Path) -> String {
    let (path, query) = token.split_once('?').unwrap();
    let uri = format!("{path};object={label}?{query}");
    ok(run(Command::new(SIGNER)
        .args(["new-key", "--token", &uri, "--out"])
        .arg(out)));
    key_id(out)
}

/// Every file init wrote in the keys folder, and that none of them holds a private key:
/// the keys are references into the token.
fn assert_no_key_file(keys: &Path) {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(keys).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("PRIVATE KEY"),
            "{} holds a private key",
            path.display()
        );
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "root.json",
            "root.pkcs11",
            "snapshot.pkcs11",
            "submitter.pkcs11",
            "submitters.pub",
            "targets.pkcs11",
            "timestamp.pkcs11",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(not(softhsm), ignore = "skipped: no SoftHSM2")]
async fn a_repository_signed_by_keys_in_a_token_verifies_everywhere_through_a_root_rotation() {
    let _serial = SERIAL.lock().await;
    let token = token("all");
    let repo = TestRepo::init(8, &["--token", &token]);
    assert_no_key_file(&repo.keys);
    let prefix = unique_prefix("hsm");
    let mut signers = spawn_signers_in_turn(&repo, &prefix);
    let mut releases = make_releases(&repo.path("rel-0"), 12, "h0");
    repo.add_over_broker(&prefix, &repo.path("rel-0"), &[]);
    ngclient_update(&repo, "client", &items_for(&releases));
    our_client_downloads(&repo, &releases);
    php_tuf_accepts(&repo, &releases, "the first releases");

    // A rotation made entirely of token keys: a new timestamp key and a second root key,
    // both generated in the token, added by a root version the token's root key signs.
    let old_timestamp = key_id(&repo.key("timestamp"));
    let old_root = key_id(&repo.key("root"));
    let next = repo.path("timestamp-next");
    std::fs::create_dir(&next).unwrap();
    let new_timestamp = new_token_key(&token, "tuf-timestamp-2", &next.join("timestamp.pkcs11"));
    let root_2 = repo.path("root-2.pkcs11");
    new_token_key(&token, "tuf-root-2", &root_2);
    publish_root_change(
        &repo,
        &[
            "--add-key",
            &format!("timestamp={}", next.join("timestamp.pkcs11").display()),
            "--add-key",
            &format!("root={}", root_2.display()),
        ],
    );
    // The timestamp signer moves to the new key; the old one co-signs while clients move on
    // (README, "Rotating an online key").
    std::fs::copy(
        repo.key("timestamp"),
        next.join("timestamp.previous.pkcs11"),
    )
    .unwrap();
    signers[2].kill();
    signers[2] =
        repo.spawn_signer_with_key("timestamp", &next.join("timestamp.pkcs11"), &prefix, &[]);
    wait_ready(&mut signers[2]);
    let start = std::time::Instant::now();
    while !newest_signer(&repo, "timestamp").contains(&new_timestamp) {
        assert!(start.elapsed() < Duration::from_secs(20), "never re-signed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Root drops the old timestamp key and the first root key, signed by both root keys (in
    // the token): the threshold of the root before and of the new one, and of v1, which php-tuf
    // checks the whole refresh against (php-tuf issue #365).
    ok(root_cmd(
        &repo,
        &[
            "new",
            "--force",
            "--remove-key",
            &format!("timestamp={old_timestamp}"),
            "--remove-key",
            &format!("root={old_root}"),
        ],
    ));
    root_sign(&repo, &repo.key("root"));
    root_sign(&repo, &root_2);
    ok(root_cmd(&repo, &["publish"]));

    let more = make_releases(&repo.path("rel-1"), 6, "h1");
    repo.add_over_broker(&prefix, &repo.path("rel-1"), &[]);
    releases.extend(more);
    let report = ngclient_update(&repo, "client", &items_for(&releases));
    assert_eq!(report["root"], 3, "{report}");
    assert_eq!(ngclient_verify(&repo, &items_for(&releases))["root"], 3);
    our_client_downloads(&repo, &releases);
    php_tuf_accepts(&repo, &releases, "the rotation");
    ok(run(Command::new(CLIENT)
        .args(["validate", "--quiet", "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file())));
    assert_metadata_rules(&repo);
    drop(signers);
    delete_queues(&prefix).await;
}

/// php-tuf (each version under test, installed with root v1 and keeping its state between
/// calls) refreshes and verifies every release; without php-tuf, says so on one line.
fn php_tuf_accepts(repo: &TestRepo, releases: &[(String, PathBuf)], step: &str) {
    #[cfg(php_tuf)]
    {
        let server = HttpServer::ours(&repo.repo);
        common::php::all_accept(
            &common::php::PhpClient::all(repo, "hsm"),
            &server,
            releases,
            step,
        );
    }
    #[cfg(not(php_tuf))]
    {
        let _ = (repo, releases);
        eprintln!("skipped: no php-tuf checkout (php-tuf after {step})");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(not(softhsm), ignore = "skipped: no SoftHSM2")]
async fn a_token_that_disappears_fails_the_batch_writes_nothing_and_loses_no_job() {
    let _serial = SERIAL.lock().await;
    let token = token("gone");
    let repo = TestRepo::init(8, &["--token", &token]);
    let prefix = unique_prefix("hsm-gone");
    let mut signers = spawn_signers_in_turn(&repo, &prefix);
    let releases = make_releases(&repo.path("rel"), 3, "gone");
    // Signed by the packaging pipeline's token key while the token is there.
    let job = repo.submission(&add_job(&releases));
    for (name, file) in &releases {
        let served = common::php::served_path(name, &std::fs::read(file).unwrap());
        let dest = repo.repo.join(served);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(file, dest).unwrap();
    }
    let metadata = || {
        let mut names: Vec<_> = std::fs::read_dir(repo.layout().metadata_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".gz"))
            .collect();
        names.sort();
        (names, std::fs::read(repo.layout().timestamp()).unwrap())
    };
    let before = metadata();

    // The token goes away (its folder, as SoftHSM2 keeps it), then the job comes.
    let folder = token_folder(&token);
    let hidden = unplugged(&folder);
    std::fs::rename(&folder, &hidden).unwrap();
    publish_raw(&prefix, Queue::Targets, &job).await;
    let start = std::time::Instant::now();
    while !signers[0].log_text().contains("could not sign")
        && !signers[0].log_text().contains("the token of")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the targets signer never tried to sign:\n{}",
            signers[0].log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(signers[0].is_running(), "{}", signers[0].log_text());
    assert_eq!(
        metadata(),
        before,
        "something was written without the token"
    );
    assert!(
        drain_dead_letters(&prefix, 1, Duration::from_secs(1))
            .await
            .is_empty(),
        "the job was dead-lettered"
    );

    // The token is back; the signer is restarted (as an unhealthy container is), and the job,
    // never acknowledged, is signed.
    std::fs::rename(&hidden, &folder).unwrap();
    signers[0].kill();
    signers[0] = repo.spawn_signer("targets", &prefix, &[]);
    repo.wait_covered(expected_for(&releases), Duration::from_secs(60));
    ngclient_verify(&repo, &items_for(&releases));
    drop(signers);
    delete_queues(&prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(not(softhsm), ignore = "skipped: no SoftHSM2")]
async fn a_wrong_pin_or_a_key_the_root_does_not_list_stops_the_signer_at_start_saying_why() {
    let _serial = SERIAL.lock().await;
    let token = token("wrong");
    let repo = TestRepo::init(2, &["--token", &token]);
    let prefix = unique_prefix("hsm-wrong");

    // A key made in the token but never added to the root.
    let stranger = repo.path("stranger.pkcs11");
    new_token_key(&token, "tuf-stranger", &stranger);
    let mut signer = repo.spawn_signer_with_key("timestamp", &stranger, &prefix, &[]);
    let log = wait_exit(&mut signer);
    assert!(
        log.contains("is not a Timestamp key in root version"),
        "{log}"
    );

    // The right key with a PIN the token refuses: said once, not retried.
    let wrong_pin = repo.path("wrong.pin");
    std::fs::write(&wrong_pin, "97531\n").unwrap();
    let reference = std::fs::read_to_string(repo.key("timestamp")).unwrap();
    let (uri, _) = reference.trim().split_once("&pin-source=").unwrap();
    let wrong = repo.path("wrong-pin.pkcs11");
    std::fs::write(
        &wrong,
        format!("{uri}&pin-source=file:{}\n", wrong_pin.display()),
    )
    .unwrap();
    let mut signer = repo.spawn_signer_with_key("timestamp", &wrong, &prefix, &[]);
    let log = wait_exit(&mut signer);
    assert!(log.contains("the token refused the PIN"), "{log}");
    assert!(!log.contains("97531"), "the PIN was logged: {log}");
}

/// Waits for a signer that should stop by itself; returns its log.
fn wait_exit(signer: &mut Proc) -> String {
    let start = std::time::Instant::now();
    while signer.is_running() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the signer kept running:\n{}",
            signer.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    signer.log_text()
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(not(softhsm), ignore = "skipped: no SoftHSM2")]
async fn a_signer_whose_token_is_not_there_yet_waits_for_it_then_starts() {
    let _serial = SERIAL.lock().await;
    let token = token("late");
    let repo = TestRepo::init(2, &["--token", &token]);
    let prefix = unique_prefix("hsm-late");
    let folder = token_folder(&token);
    let hidden = unplugged(&folder);
    std::fs::rename(&folder, &hidden).unwrap();
    let mut signer = repo.spawn_signer("timestamp", &prefix, &[]);
    let start = std::time::Instant::now();
    while !signer
        .log_text()
        .contains("cannot reach the key's token yet")
    {
        assert!(signer.is_running(), "{}", signer.log_text());
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            signer.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(signer.is_running(), "{}", signer.log_text());
    // Plugged in: the module is opened afresh (it lists tokens only as it starts) and the
    // signer starts.
    std::fs::rename(&hidden, &folder).unwrap();
    wait_ready(&mut signer);
    drop(signer);
    delete_queues(&prefix).await;
}
