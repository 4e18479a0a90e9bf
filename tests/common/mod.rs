//! Shared by the integration tests: real binaries, the real broker, real files, python-tuf.
#![allow(dead_code)]

pub mod broker;
pub mod broker_node;
pub mod interop;
pub mod php;
pub mod repo;
pub mod root;
pub mod stream;

// Every test file takes what it needs of these through `use common::*`.
#[allow(unused_imports)]
pub use {broker::*, interop::*, repo::*, root::*};

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SIGNER: &str = env!("CARGO_BIN_EXE_tuf-signer");
pub const CLIENT: &str = env!("CARGO_BIN_EXE_tuf-client");

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A queue prefix no other test (or earlier run) uses.
pub fn unique_prefix(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test.{tag}.{}.{nanos}.", std::process::id())
}

/// A child process killed when the test ends, however it ends.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// [`run`] for a command that must end by itself, where the bug it guards against is one that
/// never ends (a retry loop, a wait for what already happened): after a minute it is killed
/// and the test fails saying `stuck`. Not a measure of speed.
pub fn run_to_end(cmd: &mut Command, stuck: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (limit, step) = (
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(100),
    );
    let mut waited = std::time::Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        if waited > limit {
            child.kill().unwrap();
            panic!("{stuck}");
        }
        std::thread::sleep(step);
        waited += step;
    }
    child.wait_with_output().unwrap()
}

/// Lifetimes of seconds, for `init` and `run`: without refreshing, python-tuf would refuse
/// such a repository as expired (a freeze) a few seconds after init.
pub const SHORT_LIFETIMES: [&str; 8] = [
    "--expire-timestamp",
    "4s",
    "--expire-snapshot",
    "6s",
    "--expire-bins",
    "8s",
    "--expire-targets",
    "8s",
];

/// Waits until a signer says it is consuming (its queues are then declared).
pub fn wait_ready(proc: &mut Proc) {
    let start = Instant::now();
    while !proc.log_text().contains("signer ready") {
        assert!(proc.is_running(), "signer exited:\n{}", proc.log_text());
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "signer not ready:\n{}",
            proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn refused(out: std::process::Output, reason: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should have been refused");
    assert!(err.contains(reason), "expected {reason:?} in: {err}");
}
