//! Composer's side: the verifying TUF updater, as Composer's TUF plugin (php-tuf) and
//! python-tuf's `ngclient` run it, and what `tuf-client init/refresh/download` and the
//! tuf-conformance adapter use.
//!
//! - [`trusted_set`]: the specification's checks and their order, on bytes, no I/O.
//! - [`update`]: the [`Updater`]: local copies, downloads through a [`Fetcher`], persistence,
//!   the delegation walk, target downloads.
//! - [`fetcher`]: the [`Fetcher`] trait and the HTTP and `file://` one.
//! - [`delegation`]: which delegated roles may sign for a target.
//! - [`metadata`]: the metadata as the updater reads it.
//! - [`config`] and [`error`]: every limit, and typed errors to branch on.

pub mod config;
pub mod delegation;
pub mod error;
pub mod fetcher;
pub mod metadata;
pub mod trusted_set;
pub mod update;

pub use crate::schema::TargetFile;
pub use config::Config;
pub use error::{Error, Result};
pub use fetcher::{base_url, Fetcher, HttpFetcher};
pub use trusted_set::TrustedSet;
pub use update::{init, output_path, Updater};
