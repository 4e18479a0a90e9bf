//! The messages between the roles, and the checks that decide what goes to the dead-letter
//! queue. A job says what changed, and carries what the next role needs to sign (versions,
//! lengths, hashes of the files written), so no role reads another role's key or state.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::bins::HashBins;
use crate::repository::MetaEntry;
use crate::{Error, Result};

/// Longest target name we sign, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Largest target we sign (1 TiB): a bigger length is a mistake, not a release.
pub const MAX_TARGET_LENGTH: u64 = 1 << 40;

/// Something a queue carries.
pub trait Job: DeserializeOwned + Serialize + Send + 'static {
    /// How many items the job holds, for the batch log line.
    fn items(&self) -> usize;
}

/// To the targets signer: releases to add and names to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsJob {
    /// The releases to sign into their bins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<NewTarget>,
    /// The target names to take out of their bins (a name that is not mutable leaves a tombstone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Re-sign every bin and top-level targets with a fresh expiry (`tuf-client refresh-expiry`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub refresh_expiry: bool,
    /// A signer's own reminder to re-sign what is about to expire; see [`ExpiryCheck`].
    #[serde(default, skip_serializing_if = "is_false")]
    pub check_expiry: bool,
    /// Re-spread every target over this many bins (`tuf-client bins --count N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<u32>,
    /// The adds may replace names already signed with other content (`add-targets
    /// --replace`); otherwise such a name is refused unless it is mutable (see
    /// [`crate::submission::Mutable`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub replace: bool,
    /// When the submitter signed it (see [`crate::submission`]); not part of the job's JSON.
    #[serde(skip)]
    pub issued: Option<jiff::Timestamp>,
    /// The submission's id, [`crate::submission::id_of`] its bytes: what its receipt names.
    #[serde(skip)]
    pub id: Option<String>,
    /// The id (php-tuf's rule) of the trusted submitter key that signed it; for the receipts
    /// and tombstones.
    #[serde(skip)]
    pub submitter: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// One release (or Composer metadata file) to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    /// The target's path under `targets/`, checked by [`check_target_name`].
    pub name: String,
    /// The target's length in bytes, at most [`MAX_TARGET_LENGTH`].
    pub length: u64,
    /// The target's SHA-256 and SHA-512, as the bin will list them.
    pub hashes: TargetHashes,
}

/// A target's two hashes, both required: what its bin lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetHashes {
    /// Lowercase hex SHA-256 of the target's bytes (64 digits).
    pub sha256: String,
    /// Lowercase hex SHA-512 of the target's bytes (128 digits).
    pub sha512: String,
}

/// To the snapshot signer: the new versions of targets files, `"bin-000-001.json" -> meta`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotJob {
    /// The targets files written, by file name, with each one's version, length and SHA-256.
    #[serde(default)]
    pub meta: BTreeMap<String, MetaEntry>,
    /// Re-sign the snapshot with a fresh expiry even if nothing changed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub refresh_expiry: bool,
    /// A signer's own reminder to re-sign the snapshot if it is about to expire; see
    /// [`ExpiryCheck`].
    #[serde(default, skip_serializing_if = "is_false")]
    pub check_expiry: bool,
    /// The targets signer's signature over the rest of the job: its key vouches for the
    /// hashes listed, so the snapshot signer checks one signature and each file's hash
    /// instead of each file's signature (see `SnapshotRole::check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<JobSignature>,
}

/// A signature over a job's other fields, as [`Vouching::signed_bytes`] gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSignature {
    /// The id of the key that signed, as the signer's key names it.
    pub keyid: String,
    /// The hex signature over [`Vouching::signed_bytes`].
    pub sig: String,
}

/// A job its sender signs with its role's key: the signature vouches for the hashes the job
/// lists, so the next signer checks one signature and each file's hash instead of each
/// file's own signatures (see `SnapshotRole::check`, `TimestampRole::check`).
pub trait Vouching: Serialize + Clone {
    /// The job's signature, if it has one.
    fn signature(&self) -> Option<&JobSignature>;

    /// The job with `signature` in place of its own.
    fn with_signature(self, signature: Option<JobSignature>) -> Self;

    /// What a signature covers: the job without its signature, as serde_json writes it
    /// (fields in a fixed order, maps sorted, every field typed: parsing and writing it
    /// again gives the same bytes).
    fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = self.clone().with_signature(None);
        serde_json::to_vec(&unsigned).expect("jobs serialise")
    }

    /// The job, signed with `key`.
    fn signed_with(self, key: &crate::keys::SigningKey) -> crate::Result<Self> {
        let sig = hex::encode(key.sign(&self.signed_bytes())?);
        let signature = JobSignature {
            keyid: key.key_id().to_string(),
            sig,
        };
        Ok(self.with_signature(Some(signature)))
    }
}

/// Both jobs a signer hands on carry their signature in the same field.
macro_rules! vouching {
    ($($job:ident),*) => {$(
        impl Vouching for $job {
            fn signature(&self) -> Option<&JobSignature> {
                self.signature.as_ref()
            }

            fn with_signature(self, signature: Option<JobSignature>) -> Self {
                $job { signature, ..self }
            }
        }
    )*};
}

vouching!(SnapshotJob, TimestampJob);

/// To the timestamp signer: the snapshot it should point at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampJob {
    /// The snapshot just written (version, length, SHA-256); `None` in a job that only
    /// refreshes or checks the timestamp's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<MetaEntry>,
    /// Re-sign the timestamp with a fresh expiry even if the snapshot did not change.
    #[serde(default, skip_serializing_if = "is_false")]
    pub refresh_expiry: bool,
    /// A signer's own reminder to re-sign the timestamp if it is about to expire; see
    /// [`ExpiryCheck`].
    #[serde(default, skip_serializing_if = "is_false")]
    pub check_expiry: bool,
    /// The snapshot signer's signature over the rest of the job: its key vouches for the
    /// snapshot's hash, so the timestamp signer hashes the snapshot instead of checking its
    /// signature and parsing it again (2.2 MB at 16,384 bins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<JobSignature>,
}

/// Every job type can carry an expiry check: a signer sends one to its own queue now and
/// then, so that whichever replica is active (single-active-consumer) re-signs what is about
/// to expire, and a hot standby never does.
pub trait ExpiryCheck: Job + Default {
    /// The job that asks only for an expiry check.
    fn expiry_check() -> Self;
}

/// The expiry check of each job type is the same: its `check_expiry` flag alone.
macro_rules! expiry_check {
    ($($job:ident),*) => {$(
        impl ExpiryCheck for $job {
            fn expiry_check() -> Self {
                $job {
                    check_expiry: true,
                    ..Default::default()
                }
            }
        }
    )*};
}

expiry_check!(TargetsJob, SnapshotJob, TimestampJob);

impl Job for TargetsJob {
    fn items(&self) -> usize {
        self.add.len() + self.remove.len()
    }
}

impl Job for SnapshotJob {
    fn items(&self) -> usize {
        self.meta.len()
    }
}

impl Job for TimestampJob {
    fn items(&self) -> usize {
        1
    }
}

impl TargetsJob {
    /// Every check a targets job must pass before it may touch a bin.
    pub fn check(&self) -> Result<()> {
        if self.add.is_empty()
            && self.remove.is_empty()
            && !self.refresh_expiry
            && !self.check_expiry
            && self.bins.is_none()
        {
            return Err(Error::InvalidJob("the job adds and removes nothing".into()));
        }
        if let Some(count) = self.bins {
            HashBins::new(count).map_err(|e| Error::InvalidJob(e.to_string()))?;
        }
        for t in &self.add {
            check_target_name(&t.name)?;
            if t.length > MAX_TARGET_LENGTH {
                return Err(Error::InvalidJob(format!(
                    "{}: length {} is larger than any release can be ({MAX_TARGET_LENGTH} bytes)",
                    t.name, t.length
                )));
            }
            check_hex(&t.name, "sha256", &t.hashes.sha256, 64)?;
            check_hex(&t.name, "sha512", &t.hashes.sha512, 128)?;
        }
        for name in &self.remove {
            check_target_name(name)?;
        }
        Ok(())
    }
}

/// A checked meta entry: a real version, a plausible length, a SHA-256.
pub fn check_meta(name: &str, meta: &MetaEntry) -> Result<()> {
    if meta.version == 0 {
        return Err(Error::InvalidJob(format!(
            "{name}: version 0 is not a TUF version"
        )));
    }
    if meta.length == 0 || meta.length > MAX_TARGET_LENGTH {
        return Err(Error::InvalidJob(format!(
            "{name}: length {} cannot be a metadata file's",
            meta.length
        )));
    }
    check_hex(name, "sha256", &meta.sha256, 64)
}

/// Target names are paths relative to the targets folder: `drupal/token/1.9.0.0`,
/// `p2/drupal/token.json`. We refuse what could escape that folder or confuse a client:
/// `..` and `.` segments, absolute paths, empty segments, backslashes, control characters
/// (NUL included), `#`, `?` and `%` (reference clients put the name into the URL unescaped),
/// and names over [`MAX_NAME_LEN`] bytes. Other Unicode and spaces are fine:
/// our canonical JSON matches python-tuf's for them.
pub fn check_target_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidJob(format!("target name {name:?}: {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad(&format!(
            "is {} bytes long; the limit is {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character (NUL, newline, …)");
    }
    if name.starts_with('/') {
        return bad("is absolute; give the path relative to the targets folder");
    }
    if name.contains('\\') {
        return bad("contains a backslash; use / between folders");
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '#' | '?' | '%')) {
        // python-tuf puts the name into the download URL unescaped: these would cut it short
        // or be decoded by the server into another name.
        return bad(&format!(
            "contains {c:?}, which clients cannot put in a URL unescaped"
        ));
    }
    for segment in name.split('/') {
        match segment {
            "" => return bad("has an empty path segment (// or a trailing /)"),
            "." | ".." => return bad("has a . or .. segment"),
            _ => {}
        }
    }
    Ok(())
}

fn check_hex(name: &str, algorithm: &str, value: &str, len: usize) -> Result<()> {
    if value.len() != len
        || !value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::InvalidJob(format!(
            "{name}: {algorithm} must be {len} lowercase hex digits, got {value:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> NewTarget {
        NewTarget {
            name: name.into(),
            length: 3,
            hashes: TargetHashes {
                sha256: "a".repeat(64),
                sha512: "b".repeat(128),
            },
        }
    }

    #[test]
    fn good_names_pass() {
        for name in [
            "drupal/token/1.9.0.0",
            "p2/drupal/token.json",
            "pkgs/foo bar",
            "caf\u{e9}/x",
        ] {
            check_target_name(name).unwrap();
        }
    }

    #[test]
    fn bad_names_say_why() {
        for (name, why) in [
            ("", "empty"),
            ("../etc/passwd", ".."),
            ("a/../b", ".."),
            ("/abs", "absolute"),
            ("a\0b", "control"),
            ("a//b", "empty path segment"),
            ("a/", "empty path segment"),
            ("a\\b", "backslash"),
            ("a/b#c", "URL"),
            ("a/b?c", "URL"),
            ("a/b%20c", "URL"),
        ] {
            let err = check_target_name(name).unwrap_err().to_string();
            assert!(err.contains(why), "{name:?}: {err}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(check_target_name(&long)
            .unwrap_err()
            .to_string()
            .contains("limit"));
    }

    #[test]
    fn impossible_lengths_and_hashes_are_refused() {
        let mut t = target("a/b");
        t.length = MAX_TARGET_LENGTH + 1;
        let job = TargetsJob {
            add: vec![t],
            ..Default::default()
        };
        assert!(job.check().unwrap_err().to_string().contains("larger"));
        let mut t = target("a/b");
        t.hashes.sha256 = "XYZ".into();
        let job = TargetsJob {
            add: vec![t],
            ..Default::default()
        };
        assert!(job.check().unwrap_err().to_string().contains("sha256"));
        assert!(TargetsJob::default().check().is_err());
    }

    #[test]
    fn unknown_fields_do_not_parse() {
        assert!(serde_json::from_str::<TargetsJob>(r#"{"add":[],"frobnicate":1}"#).is_err());
    }
}
