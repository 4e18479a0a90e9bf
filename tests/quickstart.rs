//! The README's first command, `scripts/quickstart`, as a newcomer runs it: on a fresh folder
//! it signs the sample release and verifies it, and run a second time on the same folder it
//! succeeds again (it signs nothing new: a release, once signed, may not change). It uses the
//! binaries this test run built (`TUF_BIN_DIR`) rather than building the release ones.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn quickstart_runs_and_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let bin_dir = Path::new(SIGNER).parent().unwrap();
    let quickstart = || {
        ok(run(Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/quickstart"))
            .arg(&demo)
            .env("TUF_BIN_DIR", bin_dir)
            .env_remove("AMQP_URL")))
    };
    let first = quickstart();
    assert!(first.contains("== tuf-signer init"), "{first}");
    assert!(first.contains("done: the signer's log is"), "{first}");
    let second = quickstart();
    assert!(
        !second.contains("== tuf-signer init"),
        "the second run reuses the repository:\n{second}"
    );
    assert!(second.contains("done: the signer's log is"), "{second}");
    // The signer's log is for reading in a file: no terminal colour codes.
    let log = std::fs::read_to_string(demo.join("signer.log")).unwrap();
    assert!(log.contains("signer ready"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file:\n{log}"
    );
}
