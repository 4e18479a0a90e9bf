//! Which delegated roles may sign for a target (TUF 1.0 §4.5 `paths` and
//! `path_hash_prefixes`), in time linear in the sizes of the pattern and the name.
//!
//! Invariant: `*` and `?` never match `/`, so a pattern matches a name only segment by
//! segment (as python-tuf matches them), and no pattern can make matching slow: each segment
//! is matched by the two-pointer wildcard algorithm, at most pattern × name steps, and the
//! updater refuses patterns longer or more numerous than its [`super::Config`] allows (and
//! reads them as plain strings: [`super::metadata::DelegatedRole`]).

use tough::schema::{DelegatedRole, PathSet};

/// Whether `role` (as our signers' schema reads it, for `validate`) may sign for target `name`.
pub fn role_matches(role: &DelegatedRole, name: &str) -> bool {
    match &role.paths {
        PathSet::PathHashPrefixes(prefixes) => {
            let hash = hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                name.as_bytes(),
            ));
            prefixes.iter().any(|p| hash.starts_with(p.value()))
        }
        PathSet::Paths(patterns) => patterns.iter().any(|p| path_matches(p.value(), name)),
    }
}

/// The longest pattern and the count of patterns of a role (for the updater's limits).
pub fn pattern_sizes(role: &DelegatedRole) -> (usize, usize) {
    match &role.paths {
        PathSet::PathHashPrefixes(p) => (
            p.iter().map(|p| p.value().len()).max().unwrap_or(0),
            p.len(),
        ),
        PathSet::Paths(p) => (
            p.iter().map(|p| p.value().len()).max().unwrap_or(0),
            p.len(),
        ),
    }
}

/// Shell-style matching of a TUF PATHPATTERN: `*` any run and `?` any one character, neither
/// crossing `/`.
pub fn path_matches(pattern: &str, name: &str) -> bool {
    let (mut p, mut n) = (pattern.split('/'), name.split('/'));
    loop {
        match (p.next(), n.next()) {
            (None, None) => return true,
            (Some(ps), Some(ns)) if segment_matches(ps.as_bytes(), ns.as_bytes()) => {}
            _ => return false,
        }
    }
}

/// One segment: on a mismatch after a `*`, the `*` takes one more character and matching
/// resumes; no other backtracking is needed, so it never takes more than |p| × |n| steps.
fn segment_matches(p: &[u8], n: &[u8]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            // `?` matches one character, which is whole: step over a UTF-8 sequence.
            if p[pi] == b'?' {
                ni += utf8_len(n[ni]);
            } else {
                ni += 1;
            }
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, ni));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_do_not_cross_folders() {
        assert!(path_matches("drupal/*", "drupal/token"));
        assert!(!path_matches("drupal/*", "drupal/token/1.0.0.0"));
        assert!(path_matches("drupal/*/*", "drupal/token/1.0.0.0"));
        assert!(path_matches("p2/?.json", "p2/a.json"));
        assert!(!path_matches("p2/?.json", "p2/ab.json"));
        assert!(path_matches("*.tgz", "a.tgz"));
        assert!(!path_matches("*.tgz", "a/b.tgz"));
        assert!(path_matches("a*b*c", "aXXbYYc"));
        assert!(!path_matches("a*b*c", "aXXbYY"));
        assert!(path_matches("*", ""));
        assert!(!path_matches("File", "file"), "case sensitive");
    }

    /// `*` × 300 against a long name that does not match: exponential in a backtracking
    /// matcher, at most |p| × |n| steps here.
    #[test]
    fn many_stars_stay_fast() {
        let pattern = format!("{}x", "*".repeat(300));
        let name = "a".repeat(5000);
        assert!(!path_matches(&pattern, &name));
        let pattern = "*a".repeat(300);
        assert!(path_matches(&pattern, &"a".repeat(400)));
    }
}
