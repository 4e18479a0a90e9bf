//! The packaging-pipeline side.
//!
//! - [`submit`]: hash release files, send them to the targets queue; [`wait`] until each is
//!   signed (a `timestamp.json` covers it, [`coverage`]), refused, or replaced.
//! - [`status`]: what each role's newest metadata says; [`dead_letters`]: the jobs refused.
//! - [`validate`], [`serve`]: check a repository folder; serve it read-only over HTTP.
//!
//! Composer's side, the verifying updater, is [`crate::updater`].

pub mod coverage;
pub mod dead_letters;
pub mod serve;
pub mod status;
pub mod submit;
pub mod validate;
pub mod wait;
