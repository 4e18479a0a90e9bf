//! Attacks on the shared repository volume, each run as the attacker is placed in
//! the compose set: every agent its own uid (targets 10001, snapshot 10002, timestamp 10003,
//! packaging pipeline 10004; the signers in the repository's group 10000, the pipeline in a
//! group of its own), against the real broker and the real files. The attacker is an agent that can write the volume and holds no signing key:
//! the packaging pipeline's uid. What it writes never gets signed by a genuine key: the
//! signers trust only a root chain that starts at the root beside their key (their pin) and
//! never sign a version at or below one they signed; they stop, naming the file, and once the
//! operator restores the files, legitimate releases are published and python-tuf verifies
//! them. Needs root (to run each agent as its uid); without it each test says skipped.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{php, *};
use package_signing::bins::HashBins;
use package_signing::keys::SigningKey;
use package_signing::pin::Pin;
use serde_json::{json, Value};

/// The signers' group: theirs alone may write `metadata/`.
const GROUP: u32 = 10000;
const PIPELINE: u32 = 10004;
const BINS: u32 = 16;

/// The uid each signer runs as (nix/agents.json).
fn uid_of(role: &str) -> u32 {
    match role {
        "targets" => 10001,
        "snapshot" => 10002,
        "timestamp" => 10003,
        _ => unreachable!("{role}"),
    }
}

/// A repository as the compose set's `tuf-init` makes it: one key folder per agent, owned by
/// its uid, the repository writable by the agents' group.
struct Deployed {
    repo: TestRepo,
    prefix: String,
    signers: Vec<(&'static str, Proc)>,
    /// The packaging pipeline's group: its own (nix/agents.json), or the signers' in a
    /// deployment made before it had one ([`Deployed::unstick`]).
    pipeline_gid: u32,
}

fn deploy(tag: &str) -> Option<Deployed> {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: needs root, to run each agent as its own uid");
        return None;
    }
    let owners = [
        "targets=10001",
        "snapshot=10002",
        "timestamp=10003",
        "submitter=10004",
    ];
    let mut args = vec!["--key-folders", "--repo-group", "10000"];
    for owner in &owners {
        args.extend(["--key-owner", owner]);
    }
    let repo = TestRepo::init_with(BINS, &args, |dir| {
        use std::os::unix::fs::PermissionsExt;
        let top = dir.parent().unwrap();
        std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
    });
    let mut deployed = Deployed {
        repo,
        prefix: unique_prefix(tag),
        signers: Vec::new(),
        pipeline_gid: PIPELINE,
    };
    for role in ["targets", "snapshot", "timestamp"] {
        deployed.start(role);
    }
    for (_, proc) in &mut deployed.signers {
        wait_ready(proc);
    }
    Some(deployed)
}

impl Deployed {
    fn key(&self, role: &str) -> PathBuf {
        self.repo.keys.join(role).join(format!("{role}.pem"))
    }

    /// Starts `role`'s signer as its own uid, with nothing but its key folder (the pin and
    /// state beside the key, as in its image).
    fn start(&mut self, role: &'static str) {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let log = self.repo.path(&format!("{role}-{nanos}.log"));
        let child = Command::new(SIGNER)
            .uid(uid_of(role))
            .gid(GROUP)
            .args(["run", "--role", role, "--repo"])
            .arg(&self.repo.repo)
            .arg("--key")
            .arg(self.key(role))
            .args(["--amqp", &amqp_url(), "--queue-prefix", &self.prefix])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.signers.retain(|(r, _)| *r != role);
        self.signers.push((role, Proc { child, log }));
    }

    fn signer(&mut self, role: &str) -> &mut Proc {
        &mut self.signers.iter_mut().find(|(r, _)| *r == role).unwrap().1
    }

    fn restart_all(&mut self) {
        for role in ["targets", "snapshot", "timestamp"] {
            self.signer(role).kill();
            self.start(role);
            wait_ready(self.signer(role));
        }
    }

    /// `tuf-client add-targets` as the packaging pipeline's uid, with its key folder.
    fn submit(&self, input: &Path, wait: bool) -> Output {
        let mut cmd = Command::new(CLIENT);
        cmd.uid(PIPELINE)
            .gid(self.pipeline_gid)
            .args([
                "add-targets",
                "--amqp",
                &amqp_url(),
                "--queue-prefix",
                &self.prefix,
            ])
            .arg("--submitter-key")
            .arg(self.repo.keys.join("submitter/submitter.pem"))
            .arg("--targets-dir")
            .arg(self.repo.repo.join("targets"));
        if wait {
            cmd.args(["--wait", "--timeout", "90s", "--repo"])
                .arg(&self.repo.repo);
        }
        run(cmd.arg(input))
    }

    /// Puts `files` in place as the attacker's uid: each written into a folder of its own,
    /// then moved over the target (what its write access to the volume allows); panics if
    /// the volume does not let it (see [`Deployed::try_plant`]).
    fn plant_as_attacker(&self, files: &[(PathBuf, Vec<u8>)]) {
        if let Err(e) = self.try_plant(files) {
            panic!("{e}");
        }
    }

    /// The same; the first file the volume does not let it write, with why.
    fn try_plant(&self, files: &[(PathBuf, Vec<u8>)]) -> Result<(), String> {
        let own = self.repo.path("attacker");
        std::fs::create_dir_all(&own).unwrap();
        std::os::unix::fs::chown(&own, Some(PIPELINE), Some(PIPELINE)).unwrap();
        for (i, (dest, bytes)) in files.iter().enumerate() {
            let staged = own.join(format!("{i}.json"));
            std::fs::write(&staged, bytes).unwrap();
            std::os::unix::fs::chown(&staged, Some(PIPELINE), Some(PIPELINE)).unwrap();
            let out = run(Command::new("mv")
                .uid(PIPELINE)
                .gid(self.pipeline_gid)
                .arg("-f")
                .arg(&staged)
                .arg(dest));
            if !out.status.success() {
                return Err(format!(
                    "the attacker's uid could not write {}: {}",
                    dest.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    }

    /// The repository as deployments made before this one had it: every agent, the pipeline
    /// too, in the repository's group, every folder group-writable and not sticky (2775), so
    /// that any agent's uid may replace or remove any file: the placing the pin and the
    /// version record must hold against by themselves.
    fn unstick(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for dir in ["", "metadata", "targets", "control", "control/staging"] {
            let path = self.repo.repo.join(dir);
            std::os::unix::fs::chown(&path, None, Some(GROUP)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o2775)).unwrap();
        }
        self.pipeline_gid = GROUP;
    }

    /// `tuf-client validate` from the packaging pipeline's pin.
    fn validate(&self) -> (bool, String) {
        let out = run(Command::new(CLIENT)
            .uid(PIPELINE)
            .gid(self.pipeline_gid)
            .args(["validate", "--repo"])
            .arg(&self.repo.repo)
            .arg("--root")
            .arg(self.repo.pin_file()));
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// php-tuf (Composer's client), installed with the genuine root handed over out of band,
/// verifies every release; where there is no php-tuf checkout this says skipped, on one line.
fn php_tuf_accepts(repo: &TestRepo, releases: &[(String, PathBuf)], tag: &str) {
    if !cfg!(php_tuf) {
        println!("skipped: php-tuf (no php-tuf checkout; PHP_TUF_CHECKOUTS)");
        return;
    }
    let server = HttpServer::serve(&repo.repo);
    let clients = php::PhpClient::trusting_file(repo, tag, &repo.pin_file());
    php::all_accept(&clients, &server, releases, &format!("the {tag} attack"));
}

/// Waits until `proc` has exited; returns its log.
fn exited(proc: &mut Proc, within: Duration) -> String {
    let start = Instant::now();
    while proc.is_running() {
        assert!(
            start.elapsed() < within,
            "still running:\n{}",
            proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    proc.log_text()
}

/// `signed` as a metadata file signed by `keys`.
fn sign_value(signed: &Value, keys: &[&SigningKey]) -> Vec<u8> {
    let bytes = package_signing::canonical::value_to_vec(signed, "forged").unwrap();
    package_signing::repository::signed::sign_canonical(&bytes, 0, keys)
        .unwrap()
        .bytes
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// What the attacker on the volume wrote: a new root chain from `1.root.json` up, signed with a
/// root key of its own and listing the real online keys plus its own for targets; a new
/// top-level targets delegating every bin to its key; and the bin of `backdoor` listing it.
fn forge(repo: &TestRepo, backdoor: &str, content: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let layout = repo.layout();
    let (root_key, _) = SigningKey::generate().unwrap();
    let (targets_key, _) = SigningKey::generate().unwrap();
    let public = |k: &SigningKey| serde_json::to_value(k.public()).unwrap();
    let mut root = read_json(&layout.versioned("root", 1))["signed"].clone();
    root["keys"][root_key.key_id()] = public(&root_key);
    root["keys"][targets_key.key_id()] = public(&targets_key);
    root["roles"]["root"]["keyids"] = json!([root_key.key_id()]);
    root["roles"]["targets"]["keyids"]
        .as_array_mut()
        .unwrap()
        .push(json!(targets_key.key_id()));
    let v1 = sign_value(&root, &[&root_key]);
    root["version"] = json!(2);
    let v2 = sign_value(&root, &[&root_key]);

    let versions = layout.scan_versions().unwrap();
    let newest = |role: &str| *versions[role].last().unwrap();
    let top_version = newest("targets");
    let mut top = read_json(&layout.versioned("targets", top_version))["signed"].clone();
    top["version"] = json!(top_version + 1);
    top["delegations"]["keys"] = json!({ targets_key.key_id(): public(&targets_key) });
    for role in top["delegations"]["roles"].as_array_mut().unwrap() {
        role["keyids"] = json!([targets_key.key_id()]);
    }
    let bins = HashBins::new(BINS).unwrap();
    let bin = bins.name(bins.index_of(backdoor));
    let bin_version = newest(&bin);
    let mut planted = read_json(&layout.versioned(&bin, bin_version))["signed"].clone();
    planted["version"] = json!(bin_version + 1);
    let digest = |alg| hex::encode(aws_lc_rs::digest::digest(alg, content));
    planted["targets"][backdoor] = json!({"length": content.len(), "hashes": {
        "sha256": digest(&aws_lc_rs::digest::SHA256),
        "sha512": digest(&aws_lc_rs::digest::SHA512)}});
    vec![
        (layout.versioned("root", 1), v1),
        (layout.versioned("root", 2), v2.clone()),
        (layout.root(), v2),
        (
            layout.versioned("targets", top_version + 1),
            sign_value(&top, &[&targets_key]),
        ),
        (
            layout.versioned(&bin, bin_version + 1),
            sign_value(&planted, &[&targets_key]),
        ),
    ]
}

/// The id the real targets key signs under.
fn real_targets_id(d: &Deployed) -> String {
    let root = read_json(&d.repo.pin_file());
    root["signed"]["roles"]["targets"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every metadata file that lists `name`, and the key ids that signed it.
fn files_listing(repo: &TestRepo, name: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repo.repo.join("metadata")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.contains(name) {
            continue;
        }
        let file: Value = serde_json::from_str(&text).unwrap();
        let ids = file["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["keyid"].as_str().unwrap().to_string())
            .collect();
        found.push((path.file_name().unwrap().to_string_lossy().into(), ids));
    }
    found
}

/// Attack 1 (critical): a forged root chain on the volume. The targets signer stops at its
/// next batch naming the replaced root, and no genuine key signs the backdoor; `validate`
/// from the pin names the file. Once the operator restores the roots and removes what was
/// planted, the submission that waited is signed and python-tuf verifies every release and
/// finds no backdoor.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_root_chain_on_the_volume_gets_nothing_signed() {
    let Some(mut d) = deploy("forgedroot") else {
        return;
    };
    let first = make_releases(&d.repo.path("first"), 3, "a");
    ok(d.submit(&d.repo.path("first"), true));

    let backdoor = "drupal/evil/1.0.0.0";
    let forged = forge(&d.repo, backdoor, b"backdoor");
    let genuine: Vec<(PathBuf, Option<Vec<u8>>)> = forged
        .iter()
        .map(|(p, _)| (p.clone(), std::fs::read(p).ok()))
        .collect();
    // metadata/ is the signers' alone: the attacker's uid can neither replace the genuine
    // roots nor add a root of its own...
    for file in &forged[..2] {
        let refused = d.try_plant(std::slice::from_ref(file)).unwrap_err();
        assert!(refused.contains("Permission denied"), "{refused}");
    }
    // ...but a repository made before it was sticky does not.
    d.unstick();
    d.plant_as_attacker(&forged);
    // What the signers did before their pin: walked from the volume's own 1.root.json. From
    // there the forged chain verifies and lists the attacker's targets key.
    let layout = d.repo.layout();
    let from_volume = Pin::new(layout.versioned("root", 1));
    let chain = package_signing::trusted::trusted_chain(&layout, &from_volume)
        .expect("the forged chain is self-consistent");
    assert_eq!(chain.root().version.get(), 2);

    // A legitimate submission makes the targets signer take its lock and check the roots.
    let second = make_releases(&d.repo.path("second"), 2, "b");
    ok(d.submit(&d.repo.path("second"), false));
    let log = exited(d.signer("targets"), Duration::from_secs(60));
    assert!(
        log.contains("1.root.json") && log.contains("is not the root this agent trusts"),
        "{log}"
    );
    let real = real_targets_id(&d);
    for (file, ids) in files_listing(&d.repo, backdoor) {
        assert!(
            !ids.contains(&real),
            "{file} lists the backdoor and is signed by the real targets key"
        );
    }
    let (valid, report) = d.validate();
    assert!(!valid, "{report}");
    assert!(report.contains("1.root.json"), "{report}");

    // The operator restores the genuine roots and removes the planted files.
    for (path, bytes) in genuine {
        match bytes {
            Some(bytes) => std::fs::write(&path, bytes).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
    }
    d.restart_all();
    let mut all = first;
    all.extend(second);
    d.repo
        .wait_covered(expected_for(&all), Duration::from_secs(60));
    let mut items = items_for(&all);
    items.push(format!("!{backdoor}"));
    let report = ngclient_verify(&d.repo, &items);
    assert_eq!(report["verified"], all.len());
    php_tuf_accepts(&d.repo, &all, "forged-chain");
    assert!(files_listing(&d.repo, backdoor).is_empty());
    let (valid, report) = d.validate();
    assert!(valid, "{report}");
    drop(d.signers);
    delete_queues(&d.prefix).await;
}

/// Attacks 2 and 3: the volume goes back. An older, genuinely signed timestamp.json put back
/// by the attacker's uid is refused as a file the timestamp signer did not write; the newest
/// snapshots removed (an older one is then the newest on disk) stop the snapshot signer,
/// which already signed a newer version, naming the file, instead of signing a version
/// clients have seen again. Nothing is signed lower; once the operator restores the files,
/// signing goes on above every version signed before.
#[tokio::test(flavor = "multi_thread")]
async fn a_volume_that_goes_back_is_never_signed_lower() {
    let Some(mut d) = deploy("wentback") else {
        return;
    };
    let layout = d.repo.layout();
    let first = make_releases(&d.repo.path("first"), 2, "a");
    ok(d.submit(&d.repo.path("first"), true));
    let old_timestamp = std::fs::read(layout.timestamp()).unwrap();
    let second = make_releases(&d.repo.path("second"), 2, "b");
    ok(d.submit(&d.repo.path("second"), true));
    let newer_timestamp = std::fs::read(layout.timestamp()).unwrap();
    let version = |bytes: &[u8]| {
        serde_json::from_slice::<Value>(bytes).unwrap()["signed"]["version"]
            .as_u64()
            .unwrap()
    };
    assert!(version(&newer_timestamp) > version(&old_timestamp));

    // An old timestamp put back: metadata/ is the signers' alone; in a repository made before
    // it was, the timestamp signer refuses a file it did not write.
    let put_back = [(layout.timestamp(), old_timestamp.clone())];
    let refused = d.try_plant(&put_back).unwrap_err();
    assert!(refused.contains("Permission denied"), "{refused}");
    d.unstick();
    d.signer("timestamp").kill();
    d.plant_as_attacker(&put_back);
    d.start("timestamp");
    let log = exited(d.signer("timestamp"), Duration::from_secs(60));
    assert!(
        log.contains("timestamp.json") && log.contains("owned by uid 10004"),
        "{log}"
    );
    assert_eq!(std::fs::read(layout.timestamp()).unwrap(), old_timestamp);
    std::fs::write(layout.timestamp(), &newer_timestamp).unwrap();
    std::os::unix::fs::chown(layout.timestamp(), Some(uid_of("timestamp")), None).unwrap();

    // The newest snapshots removed by the attacker's uid (the folder is not sticky now).
    d.signer("snapshot").kill();
    let snapshots = layout.scan_versions().unwrap()["snapshot"].clone();
    let newest = *snapshots.last().unwrap();
    let removed: Vec<(PathBuf, Vec<u8>)> = snapshots
        .iter()
        .filter(|v| **v > 1 && **v + 2 > newest)
        .map(|v| {
            let path = layout.versioned("snapshot", *v);
            (path.clone(), std::fs::read(&path).unwrap())
        })
        .collect();
    assert!(snapshots.len() > removed.len());
    for (path, _) in &removed {
        ok(run(Command::new("rm")
            .uid(PIPELINE)
            .gid(d.pipeline_gid)
            .arg(path)));
    }
    d.start("snapshot");
    let log = exited(d.signer("snapshot"), Duration::from_secs(60));
    assert!(
        log.contains(&format!("already signed version {newest} of snapshot")),
        "{log}"
    );
    assert!(
        layout.scan_versions().unwrap()["snapshot"].last() < Some(&newest),
        "nothing signed at or below what was signed before"
    );
    for (path, bytes) in &removed {
        std::fs::write(path, bytes).unwrap();
        std::os::unix::fs::chown(path, Some(uid_of("snapshot")), None).unwrap();
    }
    d.start("snapshot");
    wait_ready(d.signer("snapshot"));
    d.start("timestamp");
    wait_ready(d.signer("timestamp"));
    let third = make_releases(&d.repo.path("third"), 1, "c");
    ok(d.submit(&d.repo.path("third"), true));
    assert!(version(&std::fs::read(layout.timestamp()).unwrap()) > version(&newer_timestamp));
    assert!(layout.scan_versions().unwrap()["snapshot"].last() > Some(&newest));
    let mut all = first;
    all.extend(second);
    all.extend(third);
    let report = ngclient_verify(&d.repo, &items_for(&all));
    assert_eq!(report["verified"], all.len());
    php_tuf_accepts(&d.repo, &all, "went-back");
    drop(d.signers);
    delete_queues(&d.prefix).await;
}

/// Attacks 4, 5 and 8: the attacker's uid replaces a signer's staging folder with a symlink
/// to a file of that signer's user outside the repository (its key), plants symlinks where
/// the signer makes its temp files, or replaces the targets signer's ledger, lock or receipts.
/// Each of those folders is its writer's own (control/staging/UID/, control/ROLE/), so none
/// works; signing goes on, the key is untouched and every served file stays a plain file.
#[tokio::test(flavor = "multi_thread")]
async fn control_and_staging_folders_are_their_writers_own() {
    let Some(d) = deploy("staging") else {
        return;
    };
    let staging = d.repo.repo.join("control/staging");
    let key = d.key("timestamp");
    let key_before = std::fs::read(&key).unwrap();
    // Each agent's user has a folder there, and each process one inside it.
    let mut theirs: Vec<PathBuf> = Vec::new();
    for user in std::fs::read_dir(&staging).unwrap() {
        let user = user.unwrap().path();
        if user.ends_with(PIPELINE.to_string()) {
            continue;
        }
        theirs.extend(std::fs::read_dir(&user).unwrap().map(|e| e.unwrap().path()));
        theirs.push(user);
    }
    assert!(theirs.len() > 3, "the signers stage their writes there");
    let attacker = |script: &str| {
        run(Command::new("sh")
            .uid(PIPELINE)
            .gid(d.pipeline_gid)
            .args(["-c", script]))
    };
    for folder in &theirs {
        let f = folder.display();
        let swapped = attacker(&format!(
            "mv {f} {f}.gone || ln -s {} {f}.new && mv -T {f}.new {f}",
            key.parent().unwrap().display()
        ));
        assert!(!swapped.status.success(), "{f} was swapped");
        assert!(folder.is_dir() && !folder.is_symlink(), "{f}");
        let planted = attacker(&format!("ln -s {} {f}/0.timestamp.json", key.display()));
        assert!(!planted.status.success(), "a symlink was planted in {f}");
    }
    let control = d.repo.repo.join("control");
    for role in ["targets", "snapshot", "timestamp"] {
        for file in [
            "submissions.jsonl",
            "receipts.jsonl",
            &format!("{role}.lock"),
        ] {
            let path = control.join(role).join(file);
            let p = path.display();
            let replaced = attacker(&format!("echo '{{}}' > {p}.new && mv -f {p}.new {p}"));
            assert!(!replaced.status.success(), "{p} was replaced");
            let written = attacker(&format!("echo '{{}}' >> {p}"));
            assert!(!written.status.success(), "{p} was written");
        }
    }
    let releases = make_releases(&d.repo.path("rel"), 3, "s");
    ok(d.submit(&d.repo.path("rel"), true));
    assert_eq!(
        std::fs::read(&key).unwrap(),
        key_before,
        "the key is untouched"
    );
    for entry in std::fs::read_dir(d.repo.repo.join("metadata")).unwrap() {
        let entry = entry.unwrap();
        assert!(
            entry.file_type().unwrap().is_file(),
            "{} is not a plain file",
            entry.path().display()
        );
    }
    let report = ngclient_verify(&d.repo, &items_for(&releases));
    assert_eq!(report["verified"], releases.len());
    php_tuf_accepts(&d.repo, &releases, "swaps");
    drop(d.signers);
    delete_queues(&d.prefix).await;
}
