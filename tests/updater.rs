//! The updater against an in-memory repository, through the `Fetcher` trait: no broker, no
//! processes, no network. One test per step of the client workflow (TUF 1.0 §5) and per
//! hardening case, in the style of python-tuf's `test_updater_*`: each builds a repository,
//! changes it as an attacker or a repository owner would, and checks what the updater trusts,
//! refuses (by its typed error) and keeps in its metadata folder.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use package_signing::canonical;
use package_signing::keys::SigningKey;
use package_signing::updater::{Config, Error, Fetcher, Updater};
use serde_json::{json, Value};
use url::Url;

const BASE: &str = "http://repo.test/metadata/";
const TARGETS: &str = "http://repo.test/targets/";

/// A repository in memory: the signed parts of each role, the keys that sign them, and the
/// files published so far (by path below the server root).
struct Repo {
    keys: HashMap<String, Vec<SigningKey>>,
    signed: BTreeMap<String, Value>,
    files: Mutex<HashMap<String, Vec<u8>>>,
    requests: Mutex<Vec<String>>,
}

fn expires(days: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn key_json(key: &SigningKey) -> Value {
    serde_json::to_value(key.public()).unwrap()
}

impl Repo {
    /// One key per top-level role, root v1, targets v1 with no targets, snapshot and
    /// timestamp naming them: all published.
    fn new() -> Repo {
        let mut repo = Repo {
            keys: HashMap::new(),
            signed: BTreeMap::new(),
            files: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        };
        for role in ["root", "timestamp", "snapshot", "targets"] {
            repo.keys
                .insert(role.into(), vec![SigningKey::generate().unwrap().0]);
        }
        repo.signed.insert("root".into(), repo.root_of(1));
        repo.signed.insert(
            "targets".into(),
            json!({"_type": "targets", "spec_version": "1.0.31", "version": 1,
                   "expires": expires(30), "targets": {}}),
        );
        repo.signed.insert(
            "snapshot".into(),
            json!({"_type": "snapshot", "spec_version": "1.0.31", "version": 0,
                   "expires": expires(30), "meta": {}}),
        );
        repo.signed.insert(
            "timestamp".into(),
            json!({"_type": "timestamp", "spec_version": "1.0.31", "version": 0,
                   "expires": expires(1), "meta": {}}),
        );
        repo.put("metadata/1.root.json", repo.sign("root"));
        repo.publish("targets");
        repo.snapshot_and_timestamp();
        repo
    }

    fn root_of(&self, version: u64) -> Value {
        let mut keys = serde_json::Map::new();
        let mut roles = serde_json::Map::new();
        for (role, signers) in &self.keys {
            let ids: Vec<&str> = signers
                .iter()
                .map(package_signing::keys::SigningKey::key_id)
                .collect();
            for k in signers {
                keys.insert(k.key_id().into(), key_json(k));
            }
            roles.insert(role.clone(), json!({"keyids": ids, "threshold": 1}));
        }
        json!({"_type": "root", "spec_version": "1.0.31", "consistent_snapshot": true,
               "version": version, "expires": expires(365), "keys": keys, "roles": roles})
    }

    /// The file bytes: `signed` with a signature by each of `signers`.
    fn sign_with(signed: &Value, signers: &[&SigningKey]) -> Vec<u8> {
        let message = canonical::value_to_vec(signed, "test").unwrap();
        let signatures: Vec<Value> = signers
            .iter()
            .map(|k| json!({"keyid": k.key_id(), "sig": hex::encode(k.sign(&message).unwrap())}))
            .collect();
        serde_json::to_vec(&json!({"signatures": signatures, "signed": signed})).unwrap()
    }

    fn sign(&self, role: &str) -> Vec<u8> {
        let signers: Vec<&SigningKey> = self.keys[role].iter().collect();
        Repo::sign_with(&self.signed[role], &signers)
    }

    /// Puts at `path` a copy of `role`'s signed part, changed by `change`, validly signed by
    /// the role's key: what a holder of that key (or an attacker who has it) could publish.
    fn forge(&self, role: &str, path: &str, change: impl FnOnce(&mut Value)) {
        let mut signed = self.signed[role].clone();
        change(&mut signed);
        self.put(path, Repo::sign_with(&signed, &[&self.keys[role][0]]));
    }

    fn put(&self, path: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(path.into(), bytes);
    }

    fn get(&self, path: &str) -> Vec<u8> {
        self.files.lock().unwrap()[path].clone()
    }

    fn version(&self, role: &str) -> u64 {
        self.signed[role]["version"].as_u64().unwrap()
    }

    fn bump(&mut self, role: &str) {
        let v = self.version(role) + 1;
        self.signed.get_mut(role).unwrap()["version"] = json!(v);
    }

    /// A targets role at its current version, as `N.ROLE.json`.
    fn publish(&self, role: &str) {
        let v = self.version(role);
        let name = package_signing::updater::metadata::quote(role);
        self.put(&format!("metadata/{v}.{name}.json"), self.sign(role));
    }

    /// A new snapshot naming every targets role's current version, and a new timestamp
    /// naming that snapshot (with its length and hash).
    fn snapshot_and_timestamp(&mut self) {
        let mut meta = serde_json::Map::new();
        for (role, signed) in &self.signed {
            if !["root", "timestamp", "snapshot"].contains(&role.as_str()) {
                meta.insert(
                    format!("{role}.json"),
                    json!({"version": signed["version"]}),
                );
            }
        }
        self.bump("snapshot");
        self.signed.get_mut("snapshot").unwrap()["meta"] = Value::Object(meta);
        let v = self.version("snapshot");
        let bytes = self.sign("snapshot");
        self.put(&format!("metadata/{v}.snapshot.json"), bytes.clone());
        self.timestamp_for(v, &bytes);
    }

    fn timestamp_for(&mut self, snapshot_version: u64, snapshot: &[u8]) {
        self.bump("timestamp");
        let sha = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            snapshot,
        ));
        self.signed.get_mut("timestamp").unwrap()["meta"] = json!({"snapshot.json":
            {"version": snapshot_version, "length": snapshot.len(), "hashes": {"sha256": sha}}});
        self.put("metadata/timestamp.json", self.sign("timestamp"));
    }

    /// A target file in `role`, with its length and sha256, and its bytes on the server.
    fn add_target(&mut self, role: &str, name: &str, bytes: &[u8]) {
        let sha = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes));
        self.signed.get_mut(role).unwrap()["targets"][name] =
            json!({"length": bytes.len(), "hashes": {"sha256": sha}});
        let (folder, base) = name.rsplit_once('/').map_or(("", name), |(f, b)| (f, b));
        let path = if folder.is_empty() {
            format!("targets/{sha}.{base}")
        } else {
            format!("targets/{folder}/{sha}.{base}")
        };
        self.put(&path, bytes.to_vec());
    }

    /// `delegator` lists a delegation of `role` to `key` for `paths`.
    fn add_delegation(
        &mut self,
        delegator: &str,
        role: &str,
        key: &SigningKey,
        paths: &[&str],
        terminating: bool,
    ) {
        let d = &mut self.signed.get_mut(delegator).unwrap()["delegations"];
        if d.is_null() {
            *d = json!({"keys": {}, "roles": []});
        }
        d["keys"][key.key_id()] = key_json(key);
        d["roles"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": role, "keyids": [key.key_id()],
            "threshold": 1, "terminating": terminating, "paths": paths}));
    }

    /// `delegator` delegates `role` (new, with a key of its own) for `paths`.
    fn delegate(&mut self, delegator: &str, role: &str, paths: &[&str], terminating: bool) {
        let key = SigningKey::generate().unwrap().0;
        self.add_delegation(delegator, role, &key, paths, terminating);
        self.keys.insert(role.into(), vec![key]);
        self.signed.insert(
            role.into(),
            json!({"_type": "targets", "spec_version": "1.0.31", "version": 1,
                   "expires": expires(30), "targets": {}}),
        );
    }

    /// A new top-level targets version, published with the `delegated` roles at their
    /// current versions, then a snapshot and timestamp naming them.
    fn release(&mut self, delegated: &[&str]) {
        self.bump("targets");
        self.publish("targets");
        for role in delegated {
            self.publish(role);
        }
        self.snapshot_and_timestamp();
    }

    fn requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

impl Fetcher for &Repo {
    async fn fetch(
        &self,
        url: &Url,
        max_length: u64,
    ) -> package_signing::updater::Result<Option<Vec<u8>>> {
        let path = url
            .as_str()
            .strip_prefix("http://repo.test/")
            .unwrap()
            .to_string();
        self.requests.lock().unwrap().push(path.clone());
        match self.files.lock().unwrap().get(&path) {
            Some(b) if b.len() as u64 > max_length => Err(Error::Download {
                url: url.to_string(),
                reason: "too long".into(),
            }),
            Some(b) => Ok(Some(b.clone())),
            None => Ok(None),
        }
    }
}

/// A metadata folder that trusts the repository's root v1.
fn client(repo: &Repo) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    package_signing::updater::init(dir.path(), &repo.get("metadata/1.root.json")).unwrap();
    dir
}

fn updater<'a>(dir: &Path, repo: &'a Repo) -> Updater<&'a Repo> {
    Updater::new(dir, Url::parse(BASE).unwrap(), repo, Config::default()).unwrap()
}

async fn refresh(dir: &Path, repo: &Repo) -> package_signing::updater::Result<()> {
    updater(dir, repo).refresh().await
}

/// The versions of the files in the metadata folder, by file name.
fn trusted(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                v["signed"]["version"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn versions(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
    list.iter().map(|(n, v)| (n.to_string(), *v)).collect()
}

#[tokio::test]
async fn refresh_trusts_and_keeps_each_top_level_role_in_order() {
    let repo = Repo::new();
    let dir = client(&repo);
    refresh(dir.path(), &repo).await.unwrap();
    assert_eq!(
        repo.requests(),
        [
            "metadata/2.root.json",
            "metadata/timestamp.json",
            "metadata/1.snapshot.json",
            "metadata/1.targets.json"
        ]
    );
    assert_eq!(
        trusted(dir.path()),
        versions(&[
            ("root.json", 1),
            ("timestamp.json", 1),
            ("snapshot.json", 1),
            ("targets.json", 1)
        ])
    );
    // Unchanged repository: the local snapshot and targets are used, not fetched again.
    refresh(dir.path(), &repo).await.unwrap();
    assert_eq!(
        repo.requests(),
        ["metadata/2.root.json", "metadata/timestamp.json"]
    );
}

/// §5.3.4-5: a new root needs a threshold of the trusted root's keys and of its own.
#[tokio::test]
async fn a_new_root_needs_the_old_and_the_new_root_keys() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    let old = repo.keys.get_mut("root").unwrap().remove(0);
    repo.keys
        .get_mut("root")
        .unwrap()
        .push(SigningKey::generate().unwrap().0);
    repo.signed.insert("root".into(), repo.root_of(2));
    // Signed by the new key only.
    repo.put("metadata/2.root.json", repo.sign("root"));
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(matches!(e, Error::Unsigned(_)), "{e}");
    assert_eq!(trusted(dir.path()), versions(&[("root.json", 1)]));
    // Signed by both: trusted, and the new key signs from then on.
    let new = &repo.keys["root"][0];
    repo.put(
        "metadata/2.root.json",
        Repo::sign_with(&repo.signed["root"], &[&old, new]),
    );
    refresh(dir.path(), &repo).await.unwrap();
    assert_eq!(trusted(dir.path())["root.json"], 2);
}

/// §5.3.6: `N.root.json` must say it is version N.
#[tokio::test]
async fn a_root_must_be_the_version_its_name_says() {
    let repo = Repo::new();
    let dir = client(&repo);
    repo.forge("root", "metadata/2.root.json", |s| {
        s["version"] = json!(3);
    });
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(matches!(e, Error::BadMetadata(_)), "{e}");
}

/// §5.4.3: a timestamp older than the trusted one is a rollback.
#[tokio::test]
async fn an_older_timestamp_is_a_rollback() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    let v1 = repo.get("metadata/timestamp.json");
    repo.snapshot_and_timestamp();
    refresh(dir.path(), &repo).await.unwrap();
    repo.put("metadata/timestamp.json", v1);
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(matches!(e, Error::Rollback(_)), "{e}");
    assert_eq!(
        trusted(dir.path())["timestamp.json"],
        2,
        "the trusted one is kept"
    );
}

/// §5.5.5: a snapshot that takes a targets role back to an older version is a rollback.
#[tokio::test]
async fn a_snapshot_that_takes_targets_back_is_a_rollback() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    repo.release(&[]);
    refresh(dir.path(), &repo).await.unwrap();
    repo.signed.get_mut("targets").unwrap()["version"] = json!(1);
    repo.snapshot_and_timestamp();
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(matches!(e, Error::Rollback(_)), "{e}");
}

/// §5.4.4: an expired timestamp is refused (a freeze attack), though it is newer.
#[tokio::test]
async fn an_expired_timestamp_is_refused() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    repo.signed.get_mut("timestamp").unwrap()["expires"] = json!(expires(-1));
    repo.snapshot_and_timestamp();
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(
        matches!(e, Error::Expired { ref role, .. } if role == "timestamp"),
        "{e}"
    );
}

/// §5.5.2: a snapshot whose bytes differ from the hash the timestamp signed is refused.
#[tokio::test]
async fn a_snapshot_not_matching_the_timestamp_is_refused() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    repo.snapshot_and_timestamp();
    repo.forge("snapshot", "metadata/2.snapshot.json", |s| {
        s["expires"] = json!(expires(29));
    });
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(matches!(e, Error::LengthOrHash(_)), "{e}");
}

/// §5: a correctly signed file of another role's type is refused.
#[tokio::test]
async fn metadata_of_the_wrong_type_is_refused() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    // The timestamp key also signs a file that says it is a snapshot, served as timestamp.
    repo.forge("timestamp", "metadata/timestamp.json", |s| {
        s["_type"] = json!("snapshot");
        s["version"] = json!(5);
    });
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(matches!(e, Error::BadMetadata(_)), "{e}");
    repo.snapshot_and_timestamp();
    refresh(dir.path(), &repo).await.unwrap();
}

/// §5.6.3: targets must be the version the snapshot names.
#[tokio::test]
async fn targets_must_be_the_version_the_snapshot_names() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    refresh(dir.path(), &repo).await.unwrap();
    repo.bump("targets");
    repo.snapshot_and_timestamp(); // names targets v2, which is not published
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(matches!(e, Error::Download { .. }), "{e}");
    assert_eq!(
        trusted(dir.path())["snapshot.json"],
        2,
        "proven steps are kept"
    );
    // v2 published under its name but saying it is v1.
    repo.forge("targets", "metadata/2.targets.json", |s| {
        s["version"] = json!(1);
    });
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(
        matches!(e, Error::BadMetadata(_) | Error::LengthOrHash(_)),
        "{e}"
    );
}

/// Two signatures under one key id count once at most: such metadata is refused outright.
#[tokio::test]
async fn two_signatures_under_one_key_id_are_refused() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    repo.snapshot_and_timestamp();
    let mut file: Value = serde_json::from_slice(&repo.get("metadata/timestamp.json")).unwrap();
    let sig = file["signatures"][0].clone();
    file["signatures"].as_array_mut().unwrap().push(sig);
    repo.put(
        "metadata/timestamp.json",
        serde_json::to_vec(&file).unwrap(),
    );
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(matches!(e, Error::Unsigned(_)), "{e}");
}

/// §5.7: a target is found through its delegation and its bytes must match the signed hash.
#[tokio::test]
async fn targets_are_found_through_delegations_and_checked() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    repo.delegate("targets", "drupal", &["drupal/*/*"], false);
    repo.add_target("drupal", "drupal/token/1.0.0.0", b"token 1.0");
    repo.release(&["drupal"]);
    let mut u = updater(dir.path(), &repo);
    u.refresh().await.unwrap();
    let info = u
        .target_info("drupal/token/1.0.0.0")
        .await
        .unwrap()
        .unwrap();
    let targets = Url::parse(TARGETS).unwrap();
    assert_eq!(
        u.download_target("drupal/token/1.0.0.0", &info, &targets)
            .await
            .unwrap(),
        b"token 1.0"
    );
    assert!(u.target_info("other/pkg/1.0.0.0").await.unwrap().is_none());
    // The server swaps the bytes: refused.
    let sha = info.hashes["sha256"].clone();
    repo.put(
        &format!("targets/drupal/token/{sha}.1.0.0.0"),
        b"evil 1.0".to_vec(),
    );
    let e = u
        .download_target("drupal/token/1.0.0.0", &info, &targets)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::LengthOrHash(_)), "{e}");
}

/// §5.6.7.2: pre-order, depth first; a terminating delegation ends the search beyond it.
#[tokio::test]
async fn the_delegation_walk_is_preorder_and_stops_at_a_terminating_role() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    repo.delegate("targets", "a", &["*"], false);
    repo.delegate("a", "a1", &["*"], true);
    repo.delegate("targets", "b", &["*"], false);
    repo.add_target("b", "file", b"from b");
    repo.release(&["a", "a1", "b"]);
    let mut u = updater(dir.path(), &repo);
    u.refresh().await.unwrap();
    repo.requests();
    // a, then a1 (terminating): b is never looked at.
    assert!(u.target_info("file").await.unwrap().is_none());
    assert_eq!(repo.requests(), ["metadata/1.a.json", "metadata/1.a1.json"]);
}

/// A delegated role named like a top-level role is refused: its file would stand for the
/// top-level role's in the metadata folder.
#[tokio::test]
async fn a_delegated_role_named_like_a_top_level_role_is_refused() {
    // `Timestamp` too: on a case-insensitive file system it is `timestamp.json`.
    for name in ["snapshot", "Timestamp", "ROOT"] {
        let mut repo = Repo::new();
        let dir = client(&repo);
        let key = SigningKey::generate().unwrap().0;
        repo.add_delegation("targets", name, &key, &["*"], false);
        repo.release(&[]);
        let mut u = updater(dir.path(), &repo);
        u.refresh().await.unwrap();
        let e = u.target_info("x").await.unwrap_err();
        assert!(matches!(e, Error::BadMetadata(_)), "{name}: {e}");
        let kept: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("snapshot.json")).unwrap())
                .unwrap();
        assert_eq!(
            kept["signed"]["_type"], "snapshot",
            "the trusted snapshot is not overwritten"
        );
    }
}

/// A role reached through a second delegator is checked against that delegator's keys: the
/// trust of the first does not carry over.
#[tokio::test]
async fn a_loaded_role_is_checked_again_for_each_delegator() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    repo.delegate("targets", "team-a", &["a/*"], false);
    repo.delegate("targets", "team-b", &["b/*"], false);
    repo.delegate("team-a", "release", &["a/*"], false);
    let a_key = repo.keys.remove("release").unwrap();
    repo.delegate("team-b", "release", &["b/*"], false); // another key for the same name
    repo.keys.insert("release".into(), a_key); // signed with team-a's key only
    repo.add_target("release", "a/file", b"a");
    repo.add_target("release", "b/file", b"b");
    repo.release(&["team-a", "team-b", "release"]);
    let mut u = updater(dir.path(), &repo);
    u.refresh().await.unwrap();
    assert!(u.target_info("a/file").await.unwrap().is_some());
    let e = u.target_info("b/file").await.unwrap_err();
    assert!(matches!(e, Error::Unsigned(_)), "{e}");
}

/// Path patterns beyond the limits are refused when the delegator is loaded, before any
/// matching (a pattern of 300 `*` once took more than 30 s).
#[tokio::test]
async fn oversized_path_patterns_are_refused() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    let huge = "*".repeat(Config::default().max_pattern_length + 1);
    repo.delegate("targets", "wild", &[huge.as_str()], false);
    repo.release(&[]);
    let e = refresh(dir.path(), &repo).await.unwrap_err();
    assert!(
        matches!(e, Error::BadMetadata(ref m) if m.contains("limits")),
        "{e}"
    );
}

/// Role names become one file name and one URL segment: `../x` and `/x` stay in place.
#[tokio::test]
async fn role_names_cannot_leave_the_metadata_folder() {
    let mut repo = Repo::new();
    let dir = client(&repo);
    repo.delegate("targets", "../escape", &["*"], false);
    repo.add_target("../escape", "f", b"f");
    repo.release(&["../escape"]);
    let mut u = updater(dir.path(), &repo);
    u.refresh().await.unwrap();
    assert!(u.target_info("f").await.unwrap().is_some());
    assert!(repo
        .requests()
        .contains(&"metadata/1...%2Fescape.json".to_string()));
    assert!(dir.path().join("..%2Fescape.json").is_file());
    assert!(!dir.path().parent().unwrap().join("escape.json").exists());
}

/// A server that sends its headers, then a byte now and then: the HTTP fetcher gives up once
/// the transfer falls below the minimum speed, and on a server that never answers once the
/// read timeout passes (a refresh is never held forever).
#[tokio::test]
async fn the_http_fetcher_gives_up_on_a_trickle_and_on_silence() {
    use package_signing::updater::HttpFetcher;
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let n = tokio::io::AsyncReadExt::read(&mut s, &mut request)
                    .await
                    .unwrap();
                if String::from_utf8_lossy(&request[..n]).contains("/silent") {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    return;
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                    .await;
                for _ in 0..600 {
                    if s.write_all(b"x").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            });
        }
    });
    let config = Config {
        read_timeout: std::time::Duration::from_millis(500),
        ..Config::default()
    };
    let fetcher = HttpFetcher::new(&config);
    let trickle = Url::parse(&format!("http://{addr}/metadata/timestamp.json")).unwrap();
    let e = fetcher.fetch(&trickle, 1_000_000).await.unwrap_err();
    assert!(
        matches!(e, Error::Download { ref reason, .. } if reason.contains("slower than")),
        "{e}"
    );
    let silent = Url::parse(&format!("http://{addr}/silent")).unwrap();
    let e = fetcher.fetch(&silent, 1_000_000).await.unwrap_err();
    assert!(matches!(e, Error::Download { .. }), "{e}");
}

/// The trusted set alone, on bytes: the specification's order is enforced (no root after the
/// timestamp, no snapshot before it, no targets before the snapshot, no snapshot after the
/// targets), an unchanged timestamp is reported as such, and expiry is judged at the set's one
/// reference time.
#[tokio::test]
async fn the_trusted_set_enforces_the_workflow_order_on_bytes() {
    use package_signing::updater::TrustedSet;
    let mut repo = Repo::new();
    let now = jiff::Timestamp::now();
    let mut set =
        TrustedSet::new(&repo.get("metadata/1.root.json"), now, &Config::default()).unwrap();
    let snapshot = repo.get("metadata/1.snapshot.json");
    assert!(matches!(
        set.update_snapshot(&snapshot, false),
        Err(Error::Order(_))
    ));
    let timestamp = repo.get("metadata/timestamp.json");
    set.update_timestamp(&timestamp).unwrap();
    assert!(matches!(
        set.update_timestamp(&timestamp),
        Err(Error::SameVersion(_))
    ));
    repo.bump("root");
    repo.signed.insert("root".into(), repo.root_of(2));
    let root2 = repo.sign("root");
    assert!(matches!(set.update_root(&root2), Err(Error::Order(_))));
    assert!(matches!(
        set.update_delegated_targets(&repo.get("metadata/1.targets.json"), "targets", "root"),
        Err(Error::Order(_))
    ));
    set.update_snapshot(&snapshot, false).unwrap();
    set.update_delegated_targets(&repo.get("metadata/1.targets.json"), "targets", "root")
        .unwrap();
    assert!(matches!(
        set.update_snapshot(&snapshot, false),
        Err(Error::Order(_))
    ));
    // A reference time past the timestamp's expiry: the same bytes are refused as expired.
    let later = now + jiff::SignedDuration::from_hours(48);
    let mut set =
        TrustedSet::new(&repo.get("metadata/1.root.json"), later, &Config::default()).unwrap();
    let e = set.update_timestamp(&timestamp).unwrap_err();
    assert!(
        matches!(e, Error::Expired { ref role, .. } if role == "timestamp"),
        "{e}"
    );
}

/// A trusted set may take top-level targets as an earlier set parsed it (`--wait` checking
/// the published metadata again and again): only when the earlier set trusted those very
/// bytes under the very same root. Under a new root that no longer gives the targets role the
/// key that signed them, the same bytes are verified again, and refused.
#[tokio::test]
async fn carried_top_level_targets_are_taken_only_under_the_same_root() {
    use package_signing::updater::TrustedSet;
    let mut repo = Repo::new();
    let now = jiff::Timestamp::now();
    let targets = repo.get("metadata/1.targets.json");
    let set_under = |root: &[u8], timestamp: &[u8], snapshot: &[u8]| {
        let mut set = TrustedSet::new(root, now, &Config::default()).unwrap();
        set.update_timestamp(timestamp).unwrap();
        set.update_snapshot(snapshot, false).unwrap();
        set
    };
    let root1 = repo.get("metadata/1.root.json");
    let (timestamp, snapshot) = (
        repo.get("metadata/timestamp.json"),
        repo.get("metadata/1.snapshot.json"),
    );
    let mut first = set_under(&root1, &timestamp, &snapshot);
    first
        .update_delegated_targets(&targets, "targets", "root")
        .unwrap();
    let mut second = set_under(&root1, &timestamp, &snapshot);
    second.carry_top_level_targets(first);
    let taken = second
        .update_delegated_targets(&targets, "targets", "root")
        .unwrap();
    assert_eq!(taken.version.get(), 1);

    // Root 2 gives the targets role a new key; targets.json is still the old key's.
    repo.keys
        .insert("targets".into(), vec![SigningKey::generate().unwrap().0]);
    repo.bump("root");
    repo.signed.insert("root".into(), repo.root_of(2));
    let signers: Vec<&SigningKey> = repo.keys["root"].iter().collect();
    let root2 = Repo::sign_with(&repo.signed["root"], &signers);
    let mut third = TrustedSet::new(&root1, now, &Config::default()).unwrap();
    third.update_root(&root2).unwrap();
    third.update_timestamp(&timestamp).unwrap();
    third.update_snapshot(&snapshot, false).unwrap();
    third.carry_top_level_targets(second);
    let e = third
        .update_delegated_targets(&targets, "targets", "root")
        .unwrap_err();
    assert!(matches!(e, Error::Unsigned(_)), "{e}");
}

/// Through `tuf-client serve` with gzip copies beside the metadata: the HTTP fetcher asks for
/// gzip and decodes it (the copy here holds other bytes than the plain file, to tell which
/// came), and its byte limit holds for the decoded bytes (a small copy of a huge file is
/// refused, never inflated into memory).
#[tokio::test]
async fn the_http_fetcher_takes_gzip_and_limits_the_decoded_bytes() {
    use package_signing::repository::gzip::compress;
    use package_signing::updater::HttpFetcher;
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("metadata");
    std::fs::create_dir_all(&metadata).unwrap();
    std::fs::create_dir_all(dir.path().join("targets")).unwrap();
    std::fs::write(metadata.join("2.snapshot.json"), b"plain").unwrap();
    std::fs::write(
        metadata.join("2.snapshot.json.gz"),
        compress(b"from the copy"),
    )
    .unwrap();
    let huge = vec![b' '; 10_000_000];
    std::fs::write(metadata.join("3.snapshot.json"), &huge).unwrap();
    std::fs::write(metadata.join("3.snapshot.json.gz"), compress(&huge)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let root = dir.path().to_path_buf();
    let server =
        tokio::spawn(
            async move { package_signing::client::serve::serve(root, None, &listen).await },
        );
    let fetcher = HttpFetcher::new(&Config::default());
    let url = |name: &str| Url::parse(&format!("http://127.0.0.1:{port}/metadata/{name}")).unwrap();
    let start = std::time::Instant::now();
    let got = loop {
        match fetcher.fetch(&url("2.snapshot.json"), 1000).await {
            Ok(got) => break got,
            Err(e) => assert!(start.elapsed().as_secs() < 10, "serve never answered: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(got.unwrap(), b"from the copy");
    let e = fetcher
        .fetch(&url("3.snapshot.json"), 1_000_000)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("longer than the 1000000 bytes"),
        "{e}"
    );
    server.abort();
}
