//! Named crash points for the interrupt-safety tests: with `TUF_FAILPOINT=NAME` in its
//! environment, a signer aborts the moment it reaches the point `NAME`, as a `kill -9`
//! would stop it there. Without the variable each point costs one load of a cached value.

use std::sync::OnceLock;

/// Aborts the process if `TUF_FAILPOINT` names this point.
pub fn hit(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("TUF_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("TUF_FAILPOINT {name}: aborting here");
        std::process::abort();
    }
}
