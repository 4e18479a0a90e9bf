//! Build-time facts for the crate:
//! - `cfg(php_tuf)` when `PHP_TUF_CHECKOUTS` names a folder, so that the php-tuf interop tests
//!   (`tests/php_tuf.rs`) run; without it they are ignored with the reason "skipped: no php-tuf
//!   checkout" (libtest can only ignore a test when it is compiled).
//! - `cfg(composer)` when `COMPOSER_CHROOT` names a chroot made by `tests/composer/chroot.sh`,
//!   so that the Composer end-to-end test (`tests/composer.rs`) runs; without it, it is ignored
//!   with the reason "skipped: no Composer chroot".
//! - `cfg(promtool)` when `PROMTOOL` names Prometheus's `promtool` (Debian's `prometheus`
//!   package), so that the alert rules are checked and unit-tested (`tests/metrics.rs`);
//!   without it that test is ignored with the reason "skipped: no promtool".
//! - `cfg(softhsm)` when `SOFTHSM2_MODULE` names SoftHSM2's PKCS#11 module (Debian's
//!   `softhsm2` package: /usr/lib/softhsm/libsofthsm2.so), so that the token-key tests run
//!   (`tests/hsm.rs`); without it they are ignored with the reason "skipped: no SoftHSM2".
//! - `PACKAGE_SIGNING_BUILD`, what `--version`, the signers' start-up line and their receipts
//!   name (`src/provenance.rs`): the crate version and, when `PACKAGE_SIGNING_COMMIT` is set (the
//!   flake sets it to the commit, scripts/repro to the commit it builds), that commit. Nothing
//!   else from the build machine goes in, so the bytes stay reproducible.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(php_tuf)");
    println!("cargo::rerun-if-env-changed=PHP_TUF_CHECKOUTS");
    println!("cargo::rustc-check-cfg=cfg(composer)");
    println!("cargo::rerun-if-env-changed=COMPOSER_CHROOT");
    println!("cargo::rustc-check-cfg=cfg(promtool)");
    println!("cargo::rerun-if-env-changed=PROMTOOL");
    println!("cargo::rustc-check-cfg=cfg(softhsm)");
    println!("cargo::rerun-if-env-changed=SOFTHSM2_MODULE");
    println!("cargo::rerun-if-env-changed=PACKAGE_SIGNING_COMMIT");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("PHP_TUF_CHECKOUTS").is_some_and(|d| std::path::Path::new(&d).is_dir()) {
        println!("cargo::rustc-cfg=php_tuf");
    }
    if std::env::var_os("COMPOSER_CHROOT").is_some_and(|d| {
        std::path::Path::new(&d)
            .join(".package-signing-ready")
            .exists()
    }) {
        println!("cargo::rustc-cfg=composer");
    }
    if std::env::var_os("PROMTOOL").is_some_and(|p| std::path::Path::new(&p).is_file()) {
        println!("cargo::rustc-cfg=promtool");
    }
    if std::env::var_os("SOFTHSM2_MODULE").is_some_and(|p| std::path::Path::new(&p).is_file()) {
        println!("cargo::rustc-cfg=softhsm");
    }
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("PACKAGE_SIGNING_COMMIT").unwrap_or_default();
    let commit = commit.trim();
    let commit = if commit.is_empty() { "unknown" } else { commit };
    println!("cargo::rustc-env=PACKAGE_SIGNING_BUILD={version} (commit {commit})");
}
