//! The TUF repository on disk.
//!
//! ```text
//! REPO/metadata/1.root.json, root.json       root (offline keys; see `root` for new versions)
//! REPO/metadata/N.targets.json               top-level targets: delegates to the bins
//! REPO/metadata/N.bin-000-001.json           hashed bins (path_hash_prefixes)
//! REPO/metadata/N.snapshot.json              snapshot
//! REPO/metadata/N.ROLE.json.gz               gzip copies of the newest versions (not root)
//! REPO/metadata/timestamp.json               timestamp (the one unversioned file)
//! REPO/targets/drupal/token/HASH.1.9.0.0     target files, consistent-snapshot names
//! ```

pub mod build;
pub mod composer_p2;
pub mod control;
pub mod deployment;
pub mod expiry;
pub mod gzip;
pub mod layout;
pub mod prune;
pub mod receipts;
pub mod signed;
pub mod staging;
pub mod tombstones;

pub use expiry::Expiries;
pub use layout::Layout;
pub use signed::{MetaEntry, SignedFile};

/// The TUF specification version we write.
pub const SPEC_VERSION: &str = "1.0.31";
