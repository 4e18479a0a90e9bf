//! Sets `cfg(php_tuf)` when `PHP_TUF_CHECKOUTS` names a folder, so that the php-tuf interop
//! tests (`tests/php_tuf.rs`) run; without it they are ignored with the reason
//! "skipped: no php-tuf checkout" (libtest can only ignore a test when it is compiled).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(php_tuf)");
    println!("cargo::rerun-if-env-changed=PHP_TUF_CHECKOUTS");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("PHP_TUF_CHECKOUTS").is_some_and(|d| std::path::Path::new(&d).is_dir()) {
        println!("cargo::rustc-cfg=php_tuf");
    }
}
