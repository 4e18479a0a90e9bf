//! package-signing: signs a Composer package repository with The Update Framework (TUF).
//!
//! The pieces, each in its own module:
//! - [`canonical`]: canonical JSON, byte for byte what python-tuf (securesystemslib) signs.
//! - [`keys`]: ed25519 signing keys (one file per role), key ids, and signature checks of every standard key type.
//! - [`bins`]: hashed-bin arithmetic: which bin holds a target, and the bins' names.
//! - [`schema`]: root and targets as plain serde types that keep key ids as written.
//! - [`high_water`]: the highest version a signer signed of each file, in its own state folder.
//! - [`health`]: a signer's health record in its state folder, and the rules
//!   `tuf-signer health` judges it by (heartbeat, key, metadata within its window).
//! - [`pin`]: the pinned root, outside the repository: where every check starts.
//! - [`verify`]: signatures, thresholds and meta checks, for the client, `validate` and root.
//! - [`trusted`]: what an agent trusts on the shared volume: the root chain from its pin, the
//!   published files checked against it.
//! - [`durable`]: writes named by their guarantee (whole or not at all, never through a symlink).
//! - [`repository`]: the files on disk: names, hashed bins, staging, receipts, control.
//! - [`ops`]: what an operator runs beside the signing path: `init` and the root ceremony.
//! - [`jobs`]: the messages that flow between the roles, and the checks on them.
//! - [`submission`]: targets jobs signed by the packaging pipeline, and the replay rule.
//! - [`role`]: the roles named once: name, file, key file and agent of each.
//! - [`roles`]: what each online role does with a batch of jobs (targets, snapshot, timestamp).
//! - [`broker`]: how jobs travel: RabbitMQ, or an in-process queue for the embedded mode.
//! - [`signer`]: what `tuf-signer run` runs: one role's signer, or all three in one process.
//! - [`worker`]: the loop every signer runs: take a batch, sign, write, hand on, acknowledge.
//! - [`cli`]: what both binaries share around their commands.
//! - [`provenance`]: which build (commit, image) is running, for the signers' logs and receipts.
//! - [`client`]: the packaging-pipeline side: submit releases, wait, status, validate, serve.
//! - [`updater`]: Composer's side: the verifying TUF updater (trusted metadata set, fetcher,
//!   delegation walk), what Composer's TUF plugin does.

// unsafe_code is denied, and a few of clippy's pedantic lints are on, for every target, in
// Cargo.toml's [lints] (where each says why); public items need docs in the library.
#![warn(missing_docs)]

pub mod bins;
pub mod broker;
pub mod canonical;
pub mod cli;
pub mod client;
pub mod durable;
pub mod error;
pub mod failpoint;
pub mod health;
pub mod high_water;
pub mod jobs;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod pin;
pub mod progress;
pub mod provenance;
pub mod repository;
pub mod role;
pub mod roles;
pub mod schema;
pub mod signer;
pub mod submission;
pub mod trusted;
pub mod updater;
pub mod verify;
pub mod worker;

pub use error::{Error, Result};
