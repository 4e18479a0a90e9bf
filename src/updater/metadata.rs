//! The updater's rules for the metadata model ([`crate::schema`]), which it reads more
//! leniently than our signers write it: a file may carry any hash algorithms (the
//! specification requires none in particular), and every one listed must match.

use serde::Deserialize;

use super::delegation::path_matches;
use super::error::{Error, Result};
use crate::schema::{DelegatedRole, Delegations, MetaFile, TargetFile};

impl MetaFile {
    /// §5.5.2, §5.6.2: the file's length and hashes, where listed, must match.
    pub fn check(&self, what: &str, bytes: &[u8]) -> Result<()> {
        if let Some(length) = self.length {
            if bytes.len() as u64 != length {
                return Err(Error::LengthOrHash(format!(
                    "{what}: {} bytes, expected {length}",
                    bytes.len()
                )));
            }
        }
        match &self.hashes {
            Some(h) => check_hashes(what, bytes, h.iter().map(|(a, d)| (a.as_str(), d.as_str()))),
            None => Ok(()),
        }
    }
}

impl Delegations {
    /// What §4.5 requires of a delegation list: unique role names, each role with exactly
    /// one of `paths` and `path_hash_prefixes`, and patterns within the updater's limits.
    pub fn check(
        &self,
        delegator: &str,
        max_pattern_length: usize,
        max_patterns: usize,
    ) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for role in &self.roles {
            let bad = |why: String| {
                Error::BadMetadata(format!("{delegator} delegates to {:?}: {why}", role.name))
            };
            if !names.insert(role.name.as_str()) {
                return Err(bad("the name is delegated twice".into()));
            }
            let ((Some(patterns), None) | (None, Some(patterns))) =
                (&role.paths, &role.path_hash_prefixes)
            else {
                return Err(bad(
                    "needs exactly one of paths and path_hash_prefixes".into()
                ));
            };
            let longest = patterns.iter().map(String::len).max().unwrap_or(0);
            if patterns.len() > max_patterns || longest > max_pattern_length {
                return Err(bad(format!(
                    "{} patterns up to {longest} bytes; the limits are {max_patterns} and {max_pattern_length}",
                    patterns.len()
                )));
            }
        }
        Ok(())
    }
}

impl DelegatedRole {
    /// Whether this role may sign for target `name` (§5.6.7.2).
    pub fn matches(&self, name: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns.iter().any(|p| path_matches(p, name));
        }
        let hash = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            name.as_bytes(),
        ));
        self.path_hash_prefixes
            .iter()
            .flatten()
            .any(|p| hash.starts_with(p.as_str()))
    }
}

impl TargetFile {
    /// §5.7.3: the downloaded bytes must have the signed length and every signed hash.
    pub fn check(&self, name: &str, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 != self.length {
            return Err(Error::LengthOrHash(format!(
                "{name}: {} bytes, expected {}",
                bytes.len(),
                self.length
            )));
        }
        check_hashes(
            name,
            bytes,
            self.hashes.iter().map(|(a, h)| (a.as_str(), h.as_str())),
        )
    }

    /// The digest that prefixes the file's name in a consistent-snapshot repository
    /// (python-tuf takes the first listed; sha256 when there is one).
    pub fn hash_prefix(&self) -> Option<&str> {
        self.hashes
            .get("sha256")
            .or_else(|| self.hashes.values().next())
            .map(String::as_str)
    }
}

/// Every listed hash must match; an algorithm we cannot compute fails (it cannot be checked).
pub(crate) fn check_hashes<'a>(
    what: &str,
    bytes: &[u8],
    hashes: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<()> {
    use aws_lc_rs::digest::{digest, SHA256, SHA512};
    let mut checked = 0;
    for (algorithm, expected) in hashes {
        let got = match algorithm {
            "sha256" => digest(&SHA256, bytes),
            "sha512" => digest(&SHA512, bytes),
            other => {
                return Err(Error::LengthOrHash(format!(
                    "{what}: hash algorithm {other} is not supported, so the file cannot be checked"
                )))
            }
        };
        if !hex::encode(got.as_ref()).eq_ignore_ascii_case(expected) {
            return Err(Error::LengthOrHash(format!(
                "{what}: {algorithm} does not match the signed one"
            )));
        }
        checked += 1;
    }
    if checked == 0 {
        return Err(Error::LengthOrHash(format!(
            "{what}: no hash is signed for it"
        )));
    }
    Ok(())
}

/// Fails unless the verified `signed` object says it is a `kind` (§5: "the _type must be").
pub(crate) fn check_type(signed: &[u8], kind: &str, what: &str) -> Result<()> {
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "_type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let found: Kind = serde_json::from_slice(signed)
        .map_err(|e| Error::BadMetadata(format!("{what}: no _type: {e}")))?;
    if found.kind != kind {
        return Err(Error::BadMetadata(format!(
            "{what}: _type is {:?}, expected {kind:?}",
            found.kind
        )));
    }
    Ok(())
}

/// A role name as one path segment, as python-tuf names its files and URLs
/// (`urllib.parse.quote(name, safe="")`): `/` and `..` cannot escape a folder.
pub fn quote(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_quote_to_one_segment() {
        assert_eq!(quote("bin-000-001"), "bin-000-001");
        assert_eq!(quote("/delegatedrole"), "%2Fdelegatedrole");
        assert_eq!(quote("../delegatedrole"), "..%2Fdelegatedrole");
        assert_eq!(quote("a b?#"), "a%20b%3F%23");
    }

    #[test]
    fn every_listed_hash_must_match_and_unknown_ones_fail() {
        let sha512 = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, b"x"));
        assert!(check_hashes("t", b"x", [("sha512", sha512.as_str())]).is_ok());
        assert!(check_hashes("t", b"y", [("sha512", sha512.as_str())]).is_err());
        assert!(check_hashes("t", b"x", [("md5", "00")]).is_err());
        assert!(check_hashes("t", b"x", []).is_err());
    }

    #[test]
    fn the_type_field_is_checked() {
        assert!(check_type(br#"{"_type":"snapshot"}"#, "snapshot", "s").is_ok());
        assert!(check_type(br#"{"_type":"snapshot"}"#, "timestamp", "t").is_err());
    }
}
