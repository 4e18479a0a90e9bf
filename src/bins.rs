//! Hashed bins: which bin role holds a target, by the SHA-256 of its name.
//!
//! With `2^k` bins we use the shortest hex prefix that gives at least that many values, and
//! each bin takes a contiguous run of prefixes: 2048 bins → 3 hex digits, 2 prefixes a bin,
//! named `bin-000-001`, `bin-002-003`, … This is the python-tuf `hashed_bin_delegation`
//! scheme with plain `path_hash_prefixes`, which php-tuf also reads (it refuses TAP-15
//! succinct roles).

use aws_lc_rs::digest::{digest, SHA256};

use crate::{Error, Result};

/// The most bins a repository may have: 16,384, four hex digits of prefix each.
pub const MAX_BINS: u32 = 16384;

/// How `count` bins split the SHA-256 prefixes of target names: which bin holds a name,
/// and each bin's name (`bin-000-001`, or `bin-0a` when a bin has one prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashBins {
    count: u32,
    prefix_len: usize,
    per_bin: u32,
}

impl HashBins {
    /// The split into `count` bins: a power of two from 1 to [`MAX_BINS`], else a usage error.
    pub fn new(count: u32) -> Result<HashBins> {
        if count == 0 || count > MAX_BINS || !count.is_power_of_two() {
            return Err(Error::Usage(format!(
                "{count} bins: the number of bins must be a power of two from 1 to {MAX_BINS} \
                 (e.g. 256, 2048, 16384)"
            )));
        }
        let bits = count.trailing_zeros() as usize;
        let prefix_len = bits.div_ceil(4).max(1);
        let per_bin = (16u32.pow(prefix_len as u32)) / count;
        Ok(HashBins {
            count,
            prefix_len,
            per_bin,
        })
    }

    /// How many bins.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The bin number a target name falls in.
    pub fn index_of(&self, target: &str) -> u32 {
        let hash = digest(&SHA256, target.as_bytes());
        let bytes = hash.as_ref();
        // The first `prefix_len` hex digits as a number (at most 4 digits = 2 bytes).
        let first = u32::from(bytes[0]) << 8 | u32::from(bytes[1]);
        let prefix = first >> (16 - 4 * self.prefix_len);
        prefix / self.per_bin
    }

    /// The role name of bin `index`.
    pub fn name(&self, index: u32) -> String {
        let first = index * self.per_bin;
        let last = first + self.per_bin - 1;
        if first == last {
            format!("bin-{}", self.hex(first))
        } else {
            format!("bin-{}-{}", self.hex(first), self.hex(last))
        }
    }

    /// The `path_hash_prefixes` of bin `index`.
    pub fn prefixes(&self, index: u32) -> Vec<String> {
        let first = index * self.per_bin;
        (first..first + self.per_bin).map(|p| self.hex(p)).collect()
    }

    /// Whether `name` is the name of a bin for some bin count.
    pub fn is_bin_name(name: &str) -> bool {
        let Some(rest) = name.strip_prefix("bin-") else {
            return false;
        };
        let (first, last) = rest.split_once('-').unwrap_or((rest, rest));
        let (Ok(a), Ok(b)) = (
            u32::from_str_radix(first, 16),
            u32::from_str_radix(last, 16),
        ) else {
            return false;
        };
        if first.is_empty() || first.len() > 4 || b < a {
            return false;
        }
        let per_bin = b - a + 1;
        let count = 16u32.pow(first.len() as u32) / per_bin;
        HashBins::new(count).is_ok_and(|bins| {
            a % per_bin == 0 && a / per_bin < count && bins.name(a / per_bin) == name
        })
    }

    /// Every bin's name, in bin order (see [`HashBins::name`]).
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.count).map(|i| self.name(i))
    }

    fn hex(&self, value: u32) -> String {
        format!("{value:0width$x}", width = self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_for_common_counts() {
        let b = HashBins::new(2048).unwrap();
        assert_eq!(b.name(0), "bin-000-001");
        assert_eq!(b.name(2047), "bin-ffe-fff");
        assert_eq!(b.prefixes(1), vec!["002", "003"]);
        let b = HashBins::new(16).unwrap();
        assert_eq!(b.name(15), "bin-f");
        let b = HashBins::new(1).unwrap();
        assert_eq!(b.name(0), "bin-0-f");
        assert_eq!(b.prefixes(0).len(), 16);
        let b = HashBins::new(16384).unwrap();
        assert_eq!(b.name(16383), "bin-fffc-ffff");
        assert!(HashBins::new(3000).is_err());
        assert!(HashBins::new(32768).is_err());
    }

    #[test]
    fn every_bin_name_of_every_count_is_recognised_and_nothing_else() {
        let mut k = 1;
        while k <= MAX_BINS {
            let bins = HashBins::new(k).unwrap();
            assert!(bins.names().all(|n| HashBins::is_bin_name(&n)), "{k}");
            k *= 2;
        }
        for bad in [
            "targets", "bin-", "bin-g", "bin-1-0", "bin-0-2", "bin-1-2", "bin-00-7", "bin-0-0",
        ] {
            assert!(!HashBins::is_bin_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_target_lands_in_the_bin_whose_prefix_matches_its_hash() {
        for count in [1, 2, 16, 256, 2048, 4096, 16384] {
            let bins = HashBins::new(count).unwrap();
            for name in ["drupal/token/1.9.0.0", "p2/drupal/token.json", "a", "x y"] {
                let hash = hex::encode(digest(&SHA256, name.as_bytes()));
                let i = bins.index_of(name);
                assert!(
                    bins.prefixes(i)
                        .iter()
                        .any(|p| hash.starts_with(p.as_str())),
                    "{count} bins: {name} in {}",
                    bins.name(i)
                );
            }
        }
    }
}
