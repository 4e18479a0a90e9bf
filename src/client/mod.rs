//! The packaging-pipeline side.
//!
//! - [`send`]: the commands that send jobs (add-targets, remove-targets, refresh-expiry, bins);
//!   [`submit`] hashes release files and signs jobs; [`wait`] follows each name until it is
//!   signed (a `timestamp.json` covers it, [`coverage`]), refused, or replaced.
//! - [`status`]: what each role's newest metadata says; [`dead_letters`]: the jobs refused.
//! - [`validate`], [`serve`]: check a repository folder; serve it read-only over HTTP.
//!
//! - [`composer`]: Composer's side, the verifying [`crate::updater`] behind `tuf-client init`,
//!   `refresh` and `download`.

pub mod composer;
pub mod coverage;
pub mod dead_letters;
pub mod send;
pub mod serve;
pub mod status;
pub mod submit;
pub mod validate;
pub mod wait;
