//! A site builder's `composer require`, verified by Composer's TUF plugin, end to end: a real
//! Composer (Debian sid's, >= 2.6, in the chroot `tests/composer/chroot.sh` makes once per
//! machine) installs the plugin (php-tuf/composer-integration with php-tuf 0.1.7, from the pinned
//! sources as `path` repositories, Packagist off), then requires `drupal/token` from a Composer
//! repository (`packages.json`, `p2/`, zip archives) that our signers signed over the real broker
//! and `tuf-client serve --composer` serves. The plugin must say it verified `packages.json`, the
//! p2 file and the archive; each tampered file is refused with php-tuf's error, each from a
//! fresh cache; a release published later installs on the next `composer update`; a
//! timestamp served again after a newer one (a rollback) is refused; and a site asleep through
//! a rotation of every online key and of the root key installs the next release in one run.
//!
//! Needs root (chroot) and the chroot: `build.rs` sets `composer` when `COMPOSER_CHROOT` names
//! one; without it this test is ignored with the reason `skipped: no Composer chroot`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::interop::HttpServer;
use common::*;

const PROJECT: &str = "drupal/token";

/// A Composer project inside the chroot, with its own Composer home and cache.
struct Site {
    chroot: PathBuf,
    /// The project folder as seen from outside the chroot, and from inside.
    dir: tempfile::TempDir,
    inside: String,
}

impl Site {
    fn new(chroot: &Path) -> Site {
        let dir = tempfile::Builder::new()
            .prefix("site-")
            .tempdir_in(chroot.join("tmp"))
            .unwrap();
        let inside = format!("/tmp/{}", dir.path().file_name().unwrap().to_str().unwrap());
        Site {
            chroot: chroot.to_path_buf(),
            dir,
            inside,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `composer ARGS` in the project, as root in the chroot (hence `COMPOSER_ALLOW_SUPERUSER`:
    /// without it Composer turns plugins off when run as root).
    fn composer(&self, args: &[&str]) -> Output {
        let out = run(Command::new("chroot")
            .arg(&self.chroot)
            .args(["/usr/bin/env", "-i", "-C", &self.inside])
            .args(["PATH=/usr/bin:/bin", "HOME=/tmp"])
            .arg(format!("COMPOSER_HOME={}/.composer-home", self.inside))
            .arg(format!(
                "COMPOSER_CACHE_DIR={}/.composer-cache",
                self.inside
            ))
            .args(["COMPOSER_ALLOW_SUPERUSER=1", "COMPOSER_NO_INTERACTION=1"])
            .args(["composer", "--no-ansi"])
            .args(args));
        let log = format!(
            "$ composer {}\n{}{}\n",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("composer.log"))
            .unwrap();
        std::io::Write::write_all(&mut file, log.as_bytes()).unwrap();
        out
    }

    /// `composer ARGS`, which must succeed; returns stdout and stderr together.
    fn composer_ok(&self, args: &[&str]) -> String {
        let out = self.composer(args);
        let text = both(&out);
        assert!(
            out.status.success(),
            "composer {} failed:\n{text}",
            args.join(" ")
        );
        text
    }

    fn json(&self, rel: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.path(rel)).unwrap()).unwrap()
    }

    fn write_json(&self, rel: &str, value: &serde_json::Value) {
        std::fs::write(self.path(rel), serde_json::to_vec_pretty(value).unwrap()).unwrap();
    }

    /// The installed package's version, from the file its archive carries.
    fn installed(&self) -> Option<String> {
        std::fs::read_to_string(self.path("vendor/drupal/token/token.info.yml")).ok()
    }
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A zip archive of the project at `version`, as Drupal.org's packaging makes one: a folder
/// with the module's files. `filler` changes the content, not the length. Fixed dates, so the
/// same arguments give the same bytes.
fn zip(path: &Path, version: &str, filler: char) {
    let script = r#"
import sys, zipfile
path, version, filler = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
    info = zipfile.ZipInfo("token/token.info.yml", date_time=(2026, 1, 1, 0, 0, 0))
    z.writestr(info, "version: %s\n# %s\n" % (version, filler * 200))
"#;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    ok(run(Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .args([version, &filler.to_string()])));
}

/// Publishes `versions` of the project in the Composer repository `served` (whose archives are
/// at `http://127.0.0.1:PORT/files/`), and lays out in `release` the same files under the
/// names Composer's TUF plugin verifies them by, for `add-targets`: `packages.json`,
/// `p2/drupal/token.json`, its `~dev.json`, and each archive as `drupal/token/<normalized>`.
fn publish(served: &Path, port: u16, release: &Path, versions: &[&str]) {
    let packages = serde_json::json!({
        "packages": [],
        "metadata-url": "/p2/%package%.json",
        "available-packages": [PROJECT],
    });
    let entries: Vec<_> = versions
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": PROJECT,
                "version": v,
                "version_normalized": format!("{v}.0"),
                "type": "drupal-module",
                "dist": {"type": "zip", "url": format!("http://127.0.0.1:{port}/files/token-{v}.zip")},
            })
        })
        .collect();
    let p2 = serde_json::json!({"packages": {PROJECT: entries}});
    let p2_dev = serde_json::json!({"packages": {PROJECT: []}});
    let write = |dir: &Path, rel: &str, bytes: &[u8]| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    for dir in [served, release] {
        write(
            dir,
            "packages.json",
            &serde_json::to_vec(&packages).unwrap(),
        );
        write(
            dir,
            "p2/drupal/token.json",
            &serde_json::to_vec(&p2).unwrap(),
        );
        write(
            dir,
            "p2/drupal/token~dev.json",
            &serde_json::to_vec(&p2_dev).unwrap(),
        );
    }
    for v in versions {
        let archive = served.join(format!("files/token-{v}.zip"));
        if !archive.exists() {
            zip(&archive, v, 'a');
        }
        write(
            release,
            &format!("drupal/token/{v}.0"),
            &std::fs::read(&archive).unwrap(),
        );
    }
}

/// Each tampered file a mirror or an attacker could serve, and what must refuse it: the file
/// (in the served Composer repository), what is done to it (keeping its length, so that the
/// hash is what catches it, not the size limit), and php-tuf's error.
type Tamper = (&'static str, &'static str, fn(&Path), &'static str);

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn another_zip_of_the_same_length(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    zip(path, "1.9.0", 'b');
    assert_eq!(std::fs::metadata(path).unwrap().len(), len);
}

fn replace_same_length(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

const TAMPERS: [Tamper; 4] = [
    (
        "a flipped byte in the zip",
        "files/token-1.9.0.zip",
        flip_a_byte,
        "Invalid sha256 hash for drupal/token/1.9.0.0",
    ),
    (
        "another zip of the same length",
        "files/token-1.9.0.zip",
        another_zip_of_the_same_length,
        "Invalid sha256 hash for drupal/token/1.9.0.0",
    ),
    (
        "an edited p2 file",
        "p2/drupal/token.json",
        |p| replace_same_length(p, "drupal-module", "drupal-evilxx"),
        "Invalid sha256 hash for p2/drupal/token.json",
    ),
    (
        "an edited packages.json",
        "packages.json",
        |p| replace_same_length(p, "%package%", "%packagf%"),
        "Invalid sha256 hash for packages.json",
    ),
];

#[test]
#[cfg_attr(not(composer), ignore = "skipped: no Composer chroot")]
fn composer_require_is_verified_by_the_tuf_plugin() {
    let chroot = PathBuf::from(
        std::env::var_os("COMPOSER_CHROOT").expect("COMPOSER_CHROOT names the chroot"),
    );
    let repo = TestRepo::init(256, &[]);
    let prefix = unique_prefix("composer");
    let mut signers = repo.spawn_all_signers(&prefix);
    for s in &mut signers {
        wait_ready(s);
    }
    let served = repo.path("composer-repo");
    std::fs::create_dir(&served).unwrap();
    let server = HttpServer::ours_with_composer(&repo.repo, &served);
    let url = format!("http://127.0.0.1:{}", server.port);

    // The packaging pipeline publishes 1.9.0 and has it signed over the broker.
    let release = repo.path("release-1");
    publish(&served, server.port, &release, &["1.9.0"]);
    repo.add_over_broker(&prefix, &release, &[]);

    // The site builder, as the README's guide says: the plugin first, on its own...
    let site = Site::new(&chroot);
    eprintln!("Composer project: {}", site.dir.path().display());
    site.write_json(
        "composer.json",
        &serde_json::json!({
            "name": "example/site",
            "repositories": [
                {"type": "path", "url": "/opt/composer-interop/*", "options": {"symlink": false}},
                {"packagist.org": false},
            ],
            "config": {
                "allow-plugins": {"php-tuf/composer-integration": true},
                "secure-http": false,
            },
        }),
    );
    let version = site.composer_ok(&["--version"]);
    eprintln!("{}", version.lines().next().unwrap_or_default());
    site.composer_ok(&["require", "php-tuf/composer-integration:dev-main"]);
    // ...then the repository with TUF on, its root pinned in tuf/<host>.json...
    let mut composer_json = site.json("composer.json");
    composer_json["repositories"]
        .as_array_mut()
        .unwrap()
        .insert(
            0,
            serde_json::json!({"type": "composer", "url": url, "tuf": true}),
        );
    site.write_json("composer.json", &composer_json);
    std::fs::create_dir(site.path("tuf")).unwrap();
    std::fs::copy(
        repo.repo.join("metadata/root.json"),
        site.path("tuf/127.0.0.1.json"),
    )
    .unwrap();
    let before = (site.json("composer.json"), site.json("composer.lock"));
    // ...a clear cache, then the package.
    site.composer_ok(&["clear-cache"]);
    let out = site.composer_ok(&["require", "drupal/token:^1.9", "-vvv"]);
    for target in [
        "packages.json",
        "p2/drupal/token.json",
        "drupal/token/1.9.0.0",
    ] {
        let line = format!("[TUF] Target '{target}' validated.");
        assert!(out.contains(&line), "no `{line}` in:\n{out}");
    }
    assert!(site.installed().unwrap().starts_with("version: 1.9.0\n"));
    eprintln!("composer require drupal/token: packages.json, the p2 file and the zip verified");

    // Each tampered file, from a fresh cache and without the package: refused, not installed.
    for (what, file, tamper, error) in TAMPERS {
        let path = served.join(file);
        let good = std::fs::read(&path).unwrap();
        tamper(&path);
        site.write_json("composer.json", &before.0);
        site.write_json("composer.lock", &before.1);
        std::fs::remove_dir_all(site.path("vendor/drupal")).ok();
        site.composer_ok(&["clear-cache"]);
        let out = site.composer(&["require", "drupal/token:^1.9", "-vvv"]);
        std::fs::write(&path, good).unwrap();
        let text = both(&out);
        assert!(
            !out.status.success() && text.contains(error),
            "{what}: expected a failure with `{error}`:\n{text}"
        );
        assert_eq!(site.installed(), None, "{what}: installed anyway");
        eprintln!("{what}: refused ({error})");
    }

    // Untampered again: installs.
    site.composer_ok(&["clear-cache"]);
    site.composer_ok(&["require", "drupal/token:^1.9"]);
    assert!(site.installed().unwrap().starts_with("version: 1.9.0\n"));

    // A later release installs on the next `composer update` (the plugin refreshes TUF).
    let older_timestamp = std::fs::read(repo.repo.join("metadata/timestamp.json")).unwrap();
    let release = repo.path("release-2");
    publish(&served, server.port, &release, &["1.9.0", "1.10.0"]);
    repo.add_over_broker(&prefix, &release, &[]);
    let out = site.composer_ok(&["update", "drupal/token", "-vvv"]);
    let line = "[TUF] Target 'drupal/token/1.10.0.0' validated.";
    assert!(out.contains(line), "no `{line}` in:\n{out}");
    assert!(site.installed().unwrap().starts_with("version: 1.10.0\n"));
    eprintln!("composer update: 1.10.0, published later, verified and installed");

    // A rollback: the timestamp from before 1.10.0 served again. The plugin holds the newer.
    let timestamp = repo.repo.join("metadata/timestamp.json");
    let newer = std::fs::read(&timestamp).unwrap();
    std::fs::write(&timestamp, &older_timestamp).unwrap();
    let out = site.composer(&["update", "-vvv"]);
    std::fs::write(&timestamp, &newer).unwrap();
    let text = both(&out);
    assert!(
        !out.status.success() && text.contains("is less than previously seen timestamp version"),
        "a rolled-back timestamp: expected php-tuf's rollback error:\n{text}"
    );
    eprintln!("an older timestamp served again: refused (rollback)");

    // The operator rotates every online key and then the root key while the site sleeps
    // (README "Rotating an online key": the replaced key beside the new as NAME.previous.pem);
    // the site's next `composer update` crosses it all in one run and installs the new release.
    rotate_every_key(&repo, &mut signers, &prefix, |_| {});
    let release = repo.path("release-3");
    publish(
        &served,
        server.port,
        &release,
        &["1.9.0", "1.10.0", "1.11.0"],
    );
    repo.add_over_broker(&prefix, &release, &[]);
    let out = site.composer_ok(&["update", "drupal/token", "-vvv"]);
    // Without the previous key's signature php-tuf refuses the first refresh; Composer then only
    // warns, falls back to its cache, and the next refresh passes: no such warning here.
    assert!(
        !out.contains("could not be fully loaded") && !out.contains("threshold"),
        "a TUF failure on the way through the rotation:\n{out}"
    );
    let line = "[TUF] Target 'drupal/token/1.11.0.0' validated.";
    assert!(out.contains(line), "no `{line}` in:\n{out}");
    assert!(site.installed().unwrap().starts_with("version: 1.11.0\n"));
    eprintln!("asleep through a rotation of every key (root v1 to v4): the next composer update verifies 1.11.0");
}
