//! Every limit the updater keeps, in one place. The defaults fit a Drupal.org-sized repository
//! (16,384 bins make a snapshot of about 2.3 MB) with room to grow; python-tuf's defaults
//! (2 MB for the snapshot) refuse such a repository above about 13,000 bins.

use std::time::Duration;

/// The updater's limits: sizes, counts and network timeouts. [`Default`] fits a Drupal.org-sized
/// repository.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most new root versions taken in one refresh (§5.3.3); the rest wait for the next.
    pub max_root_rotations: u64,
    /// Most delegated roles visited looking for one target (§5.6.7).
    pub max_delegations: usize,
    /// Byte limits for files whose length no trusted metadata gives.
    pub root_max_length: u64,
    /// Byte limit for `timestamp.json` (16 KiB by default).
    pub timestamp_max_length: u64,
    /// Byte limit for a snapshot whose length the timestamp does not give (32 MiB by default).
    pub snapshot_max_length: u64,
    /// Byte limit for a targets file whose length the snapshot does not give (32 MiB by default).
    pub targets_max_length: u64,
    /// Longest path pattern, and most patterns in one delegation, that are matched; longer
    /// or more are refused (a hostile repository could otherwise make matching slow).
    pub max_pattern_length: usize,
    /// Most patterns in one delegation (4096 by default).
    pub max_patterns: usize,
    /// Network limits for each file: connecting, and the longest wait for the next bytes.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a file (30 s by default).
    pub read_timeout: Duration,
    /// Slowest transfer accepted, in bytes per second averaged after the first `read_timeout`
    /// (a server trickling a byte every few seconds would otherwise hold a refresh forever).
    pub min_bytes_per_second: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_root_rotations: 256,
            max_delegations: 32,
            root_max_length: 512 * 1024,
            timestamp_max_length: 16 * 1024,
            snapshot_max_length: 32 * 1024 * 1024,
            targets_max_length: 32 * 1024 * 1024,
            max_pattern_length: 1024,
            max_patterns: 4096,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            min_bytes_per_second: 1024,
        }
    }
}
