//! What other clients make of a repository: an HTTP server over it, python-tuf's ngclient,
//! and the metadata rules php-tuf and python-tuf hold us to.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// An HTTP server over a repository folder, on a free loopback port.
pub struct HttpServer {
    pub proc: Proc,
    pub port: u16,
}

impl HttpServer {
    /// `python3 -m http.server` over a folder.
    pub fn serve(dir: &Path) -> HttpServer {
        Self::start(dir, |port| {
            let mut cmd = Command::new("python3");
            cmd.args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "-d",
            ])
            .arg(dir);
            cmd
        })
    }

    /// `tuf-client serve` over a repository folder (metadata/ and targets/ only).
    pub fn ours(repo: &Path) -> HttpServer {
        Self::start(repo, |port| {
            let mut cmd = Command::new(CLIENT);
            cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg(repo);
            cmd
        })
    }

    /// `tuf-client serve --composer`: the repository's metadata/ and targets/, and the Composer
    /// repository in `composer` at the top level, as a site builder's Composer sees them.
    pub fn ours_with_composer(repo: &Path, composer: &Path) -> HttpServer {
        Self::start(repo, |port| {
            let mut cmd = Command::new(CLIENT);
            cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--composer")
                .arg(composer)
                .arg(repo);
            cmd
        })
    }

    fn start(dir: &Path, command: impl FnOnce(u16) -> Command) -> HttpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.parent().unwrap().join(format!("http-{port}.log"));
        let child = command(port)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the HTTP server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer {
            proc: Proc { child, log },
            port,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

/// The python with python-tuf installed (`.ci/run` makes `.venv`).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TUF_PYTHON") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "python-tuf is needed: run `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt` (or bash .ci/run)"
    );
    venv
}

/// Runs python-tuf's ngclient over HTTP against the repository: every `NAME=FILE` must verify
/// and download with the same bytes, every `!NAME` must be absent. Returns its JSON report.
pub fn ngclient_verify(repo: &TestRepo, items: &[String]) -> serde_json::Value {
    let server = HttpServer::serve(&repo.repo);
    ngclient_verify_at(repo, &server.url(""), items)
}

/// The same against a server already running at `base` (serving metadata/ and targets/).
pub fn ngclient_verify_at(repo: &TestRepo, base: &str, items: &[String]) -> serde_json::Value {
    ngclient_run(repo, base, "ngclient", (false, false), items)
}

/// As [`ngclient_verify_at`], with python-tuf asking for gzip (`Accept-Encoding: gzip`, which
/// its fetcher does not send by default) and decoding what comes; the report's
/// `gzip_responses` says how many files came gzip-encoded.
pub fn ngclient_verify_gzip_at(repo: &TestRepo, base: &str, items: &[String]) -> serde_json::Value {
    ngclient_run(repo, base, "ngclient-gzip", (false, true), items)
}

/// A python-tuf client that keeps its trusted metadata in `client` between calls, as an
/// installed client does: it must follow root rotations and key changes from what it knew.
pub fn ngclient_update(repo: &TestRepo, client: &str, items: &[String]) -> serde_json::Value {
    let server = HttpServer::serve(&repo.repo);
    ngclient_run(repo, &server.url(""), client, (true, false), items)
}

fn ngclient_run(
    repo: &TestRepo,
    base: &str,
    client: &str,
    (keep, gzip): (bool, bool),
    items: &[String],
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/ngclient_verify.py");
    let out = run(Command::new(python())
        .env("NGCLIENT_KEEP", if keep { "1" } else { "0" })
        .env("NGCLIENT_GZIP", if gzip { "1" } else { "0" })
        .arg(script)
        .arg(repo.repo.join("metadata/1.root.json"))
        .arg(format!("{base}metadata/"))
        .arg(format!("{base}targets/"))
        .arg(repo.path(client))
        .args(items));
    assert!(
        out.status.success(),
        "python-tuf ngclient refused the repository:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every metadata file parses as the crate's model, holds exactly what the model describes
/// (encoding it again gives the same JSON), and follows the rules php-tuf and python-tuf hold
/// us to: spec 1.0, ed25519 keys only, no field the specification does not
/// define, `length` and hashes in every meta entry, whole-second expiry, consistent
/// snapshots, plain `path_hash_prefixes` delegations, key ids by php-tuf's rule. Returns how
/// many files it checked.
pub fn assert_metadata_rules(repo: &TestRepo) -> usize {
    use tough::schema::{key::Key, Signed};

    use package_signing::keys::KeyIdRule;
    use package_signing::schema::{MetaFile, Root, Snapshot, Targets, Timestamp};
    let mut checked = 0;
    for entry in std::fs::read_dir(repo.repo.join("metadata")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        // A gzip copy: its version's bytes, checked with that version.
        if let Some(plain) = package_signing::repository::layout::version_of_copy(&name) {
            let unpacked = package_signing::repository::gzip::decompress(&bytes).unwrap();
            if let Ok(plain_bytes) = std::fs::read(path.with_file_name(plain)) {
                assert!(plain_bytes == unpacked, "{name}");
            }
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let signed = &value["signed"];
        let expires = signed["expires"].as_str().unwrap();
        assert!(
            !expires.contains('.') && expires.ends_with('Z'),
            "{name}: expires {expires}"
        );
        assert!(
            signed["spec_version"].as_str().unwrap().starts_with("1.0."),
            "{name}"
        );
        assert_eq!(
            value.as_object().unwrap().len(),
            2,
            "{name}: only signed and signatures"
        );
        let ed25519_only = |keys: &package_signing::schema::KeyMap| {
            assert!(
                keys.values()
                    .all(|k| matches!(k, Key::Ed25519 { _extra, .. } if _extra.is_empty())),
                "{name}: non-ed25519 key"
            );
            for (id, key) in keys {
                assert_eq!(
                    KeyIdRule::of(key, id),
                    Some(KeyIdRule::PhpTuf),
                    "{name}: key id {} is not php-tuf's",
                    hex::encode(id)
                );
            }
        };
        let meta_complete = |meta: &std::collections::BTreeMap<String, MetaFile>| {
            for (file, m) in meta {
                assert!(
                    m.length.is_some() && m.hashes.is_some(),
                    "{name}: {file} lacks length/hashes"
                );
            }
        };
        // The model reads past fields it does not define: encoded again, a file with one
        // would differ from what was read.
        let exactly_the_model = |parsed: serde_json::Value| {
            assert_eq!(&parsed, signed, "{name}: a field the model does not define");
        };
        match signed["_type"].as_str().unwrap() {
            "root" => {
                let r: Signed<Root> = serde_json::from_slice(&bytes).unwrap();
                assert!(
                    r.signed.consistent_snapshot && r.signed._extra.is_empty(),
                    "{name}"
                );
                ed25519_only(&r.signed.keys);
            }
            "targets" => {
                let t: Signed<Targets> = serde_json::from_slice(&bytes).unwrap();
                exactly_the_model(serde_json::to_value(&t.signed).unwrap());
                for (target, info) in &t.signed.targets {
                    assert!(
                        info.hashes.keys().eq(["sha256", "sha512"]),
                        "{name}: {target}"
                    );
                }
                if let Some(d) = &t.signed.delegations {
                    ed25519_only(&d.keys);
                    for role in &d.roles {
                        assert!(
                            role.terminating
                                && role.paths.is_none()
                                && role.path_hash_prefixes.is_some(),
                            "{name}: {}",
                            role.name
                        );
                    }
                }
            }
            "snapshot" => {
                let s: Signed<Snapshot> = serde_json::from_slice(&bytes).unwrap();
                exactly_the_model(serde_json::to_value(&s.signed).unwrap());
                meta_complete(&s.signed.meta);
            }
            "timestamp" => {
                let t: Signed<Timestamp> = serde_json::from_slice(&bytes).unwrap();
                exactly_the_model(serde_json::to_value(&t.signed).unwrap());
                meta_complete(&t.signed.meta);
            }
            other => panic!("{name}: unknown _type {other}"),
        }
        checked += 1;
    }
    checked
}
