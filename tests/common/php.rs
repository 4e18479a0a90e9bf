//! php-tuf, Composer's TUF client, as the interop tests run it: one client per php-tuf version
//! (`tests/php/verify.php`, autoloaded by `tests/php/assemble.sh` from the checkouts that
//! `PHP_TUF_CHECKOUTS` names). Only where `build.rs` set `cfg(php_tuf)`: elsewhere a test says
//! `skipped: no php-tuf checkout` instead of calling these.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::*;

/// The php-tuf versions under test, as `tests/php/assemble.sh` names their autoloaders.
pub const VERSIONS: [&str; 2] = ["0.1.7", "main"];

/// The assembled PHP side: one autoloader per php-tuf version.
pub fn autoloaders() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("php-tuf-autoload-{}", std::process::id()));
        let out = run(Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/php/assemble.sh"))
            .arg(&dir));
        assert!(
            out.status.success(),
            "tests/php/assemble.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// Where a target's bytes are served: `targets/DIR/SHA256.FILE`.
pub fn served_path(name: &str, bytes: &[u8]) -> String {
    let sha = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    match name.rsplit_once('/') {
        Some((dir, file)) => format!("targets/{dir}/{sha}.{file}"),
        None => format!("targets/{sha}.{name}"),
    }
}

/// What php-tuf said: the line for the refresh and one per target.
pub struct Verdict {
    pub lines: Vec<String>,
}

impl Verdict {
    pub fn line(&self, what: &str) -> &str {
        self.lines
            .iter()
            .find(|l| {
                l.strip_prefix("ok ")
                    .or_else(|| l.strip_prefix("refused "))
                    .is_some_and(|rest| rest == what || rest.starts_with(&format!("{what}: ")))
            })
            .map(String::as_str)
            .unwrap_or_else(|| panic!("php-tuf said nothing of {what}:\n{}", self.lines.join("\n")))
    }

    pub fn accepted(&self, what: &str) -> bool {
        self.line(what).starts_with("ok ")
    }
}

/// One installed php-tuf client: its version, its trusted-metadata folder, and the root it
/// was installed with.
pub struct PhpClient {
    pub version: &'static str,
    pub state: PathBuf,
    pub root: PathBuf,
}

impl PhpClient {
    /// One client per php-tuf version, installed with root v1.
    pub fn all(repo: &TestRepo, tag: &str) -> Vec<PhpClient> {
        Self::trusting(repo, tag, "1.root.json")
    }

    /// One client per php-tuf version, installed with `metadata/ROOT_FILE`.
    pub fn trusting(repo: &TestRepo, tag: &str, root_file: &str) -> Vec<PhpClient> {
        Self::trusting_file(repo, tag, &repo.repo.join("metadata").join(root_file))
    }

    /// One client per php-tuf version, installed with the root in `root` (one handed over
    /// out of band, not read from the repository).
    pub fn trusting_file(repo: &TestRepo, tag: &str, root: &Path) -> Vec<PhpClient> {
        VERSIONS
            .iter()
            .map(|version| PhpClient {
                version,
                state: repo.path(&format!("php-{tag}-{version}")),
                root: root.to_path_buf(),
            })
            .collect()
    }

    /// Refreshes and verifies `targets` (name and the URL Composer would download it from).
    pub fn verify(&self, server: &HttpServer, targets: &[(String, String)]) -> Verdict {
        let mut cmd = Command::new("php");
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/php/verify.php"))
            .arg("--autoload")
            .arg(autoloaders().join(format!("autoload-{}.php", self.version)))
            .arg("--root")
            .arg(&self.root)
            .arg("--state")
            .arg(&self.state)
            .arg("--metadata-url")
            .arg(server.url("metadata/"));
        for (name, url) in targets {
            cmd.arg("--target").arg(format!("{name}={url}"));
        }
        let out = run(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "php-tuf {} harness failed to run:\n{stdout}\n{}",
            self.version,
            String::from_utf8_lossy(&out.stderr)
        );
        Verdict {
            lines: stdout.lines().map(str::to_string).collect(),
        }
    }
}

/// The targets a Composer install asks for, by the names the plugin gives them, and the
/// URLs their bytes are served from.
pub fn targets_of(server: &HttpServer, releases: &[(String, PathBuf)]) -> Vec<(String, String)> {
    releases
        .iter()
        .map(|(name, file)| {
            let bytes = std::fs::read(file).unwrap();
            (name.clone(), server.url(&served_path(name, &bytes)))
        })
        .collect()
}

/// Every client refreshes and accepts every target; `gone` must be refused as unknown.
pub fn all_accept(
    clients: &[PhpClient],
    server: &HttpServer,
    releases: &[(String, PathBuf)],
    step: &str,
) {
    let targets = targets_of(server, releases);
    for client in clients {
        let verdict = client.verify(server, &targets);
        let refused: Vec<_> = verdict
            .lines
            .iter()
            .filter(|l| l.starts_with("refused"))
            .collect();
        assert!(
            verdict.accepted("refresh") && refused.is_empty(),
            "php-tuf {} after {step}:\n{}",
            client.version,
            verdict.lines.join("\n")
        );
        for (name, _) in &targets {
            assert!(verdict.accepted(name), "php-tuf {}: {name}", client.version);
        }
        eprintln!(
            "php-tuf {} after {step}: refresh and {} target(s) verified",
            client.version,
            targets.len()
        );
    }
}
