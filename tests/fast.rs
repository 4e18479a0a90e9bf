//! The fast tier: the signers (`worker::run` for each role) run in-process over the in-process
//! transport, on repositories in tempdirs made by the library's `init`; jobs go in through the
//! library's submit path (the inbox writer), and what the signers wrote is read back from the
//! real files with our verifying updater and `validate`. No binary, broker, Python or
//! network: `scripts/test --fast` (`cargo test --lib --test fast`) runs it in seconds.
//!
//! Each test mirrors the assertions of a broker test (named in its module) without the broker.

#[path = "fast/harness.rs"]
mod harness;

#[path = "fast/signers.rs"]
mod signers;

#[path = "fast/pipeline.rs"]
mod pipeline;

#[path = "fast/refusals.rs"]
mod refusals;

#[path = "fast/lifecycle.rs"]
mod lifecycle;

#[path = "fast/expiry.rs"]
mod expiry;

#[path = "fast/layers.rs"]
mod layers;

#[path = "fast/long_functions.rs"]
mod long_functions;

#[path = "fast/signing.rs"]
mod signing;

#[path = "fast/health.rs"]
mod health;

#[path = "fast/held.rs"]
mod held;

#[path = "fast/gzip.rs"]
mod gzip;
