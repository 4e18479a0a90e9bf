//! The packaging-pipeline side.
//!
//! - [`submit`]: hash release files, send them to the targets queue, wait until a
//!   `timestamp.json` covers them ([`coverage`]).
//! - [`status`]: what each role's newest metadata says.
//! - [`validate`], [`serve`]: check a repository folder; serve it read-only over HTTP.
//!
//! Composer's side, the verifying updater, is [`crate::updater`].

pub mod coverage;
pub mod serve;
pub mod status;
pub mod submit;
pub mod validate;
