//! Signing a role into the bytes of its file, and what snapshot/timestamp record about a file.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::Path;

use aws_lc_rs::digest::{digest, SHA256};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::Signed;

use crate::keys::SigningKey;
use crate::schema::{MetaFile, Metadata};
use crate::{canonical, Error, Result};

/// What snapshot lists for a targets file and timestamp for the snapshot: version, length and
/// SHA-256. php-tuf caps downloads it has no `length` for at 100 kB, so we always send both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaEntry {
    /// The file's version.
    pub version: u64,
    /// The file's length in bytes.
    pub length: u64,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
}

impl MetaEntry {
    /// The entry for a file of `version` whose bytes are `bytes`.
    pub fn of(version: u64, bytes: &[u8]) -> MetaEntry {
        MetaEntry {
            version,
            length: bytes.len() as u64,
            sha256: hex::encode(digest(&SHA256, bytes).as_ref()),
        }
    }

    /// The entry as a snapshot or timestamp lists it: length, and `sha256` as its one hash.
    pub fn to_metafile(&self) -> Result<MetaFile> {
        Ok(MetaFile {
            length: Some(self.length),
            hashes: Some(BTreeMap::from([(
                "sha256".into(),
                hex::encode(hex_decoded(&self.sha256)?),
            )])),
            version: non_zero(self.version)?,
        })
    }

    /// Reads back what a snapshot or timestamp recorded; a file we did not write may lack
    /// length or hashes, and then we cannot vouch for it.
    pub fn from_metafile(m: &MetaFile) -> Option<MetaEntry> {
        Some(MetaEntry {
            version: m.version.get(),
            length: m.length?,
            sha256: hex::encode(hex::decode(m.hashes.as_ref()?.get("sha256")?).ok()?),
        })
    }
}

/// A signed role, ready to write.
#[derive(Debug, Clone)]
pub struct SignedFile {
    /// The file's canonical JSON bytes, signatures included: what is written to disk.
    pub bytes: Vec<u8>,
    /// Its version, length and SHA-256, for the snapshot or timestamp that will list it.
    pub meta: MetaEntry,
}

/// Signs `role` (a [`crate::schema`] type) with `keys` and returns the file's canonical bytes.
pub fn sign<T: Serialize>(
    role: &T,
    version: u64,
    keys: &[&SigningKey],
    what: &str,
) -> Result<SignedFile> {
    sign_canonical(&canonical::to_vec(role, what)?, version, keys)
}

/// Signs the canonical bytes of a role's `signed` object; fails, with nothing to write, when a
/// key cannot sign.
pub fn sign_canonical(signed: &[u8], version: u64, keys: &[&SigningKey]) -> Result<SignedFile> {
    // The file is itself canonical JSON: "signatures" sorts before "signed".
    let mut bytes = Vec::with_capacity(signed.len() + 200 * keys.len() + 32);
    bytes.extend_from_slice(b"{\"signatures\":[");
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(b"{\"keyid\":\"");
        bytes.extend_from_slice(key.key_id().as_bytes());
        bytes.extend_from_slice(b"\",\"sig\":\"");
        bytes.extend_from_slice(hex::encode(key.sign(signed)?).as_bytes());
        bytes.extend_from_slice(b"\"}");
    }
    bytes.extend_from_slice(b"],\"signed\":");
    bytes.extend_from_slice(signed);
    bytes.push(b'}');
    let meta = MetaEntry::of(version, &bytes);
    Ok(SignedFile { bytes, meta })
}

/// Reads and parses a metadata file ([`crate::schema`]); returns it with its own meta entry.
/// Checks no signature: for a file a signer adopts as state, see [`load_verified`].
pub fn load<T: DeserializeOwned + Metadata>(
    path: &Path,
    what: &'static str,
) -> Result<(Signed<T>, MetaEntry)> {
    let bytes = std::fs::read(path).map_err(Error::io("cannot read metadata", path))?;
    parse(path, what, &bytes)
}

/// Reads a metadata file a signer adopts as its state ([`read_own`]: a plain file of this
/// signer's user), lets `verify` check its bytes (signatures, against the keys that must
/// have signed it), then parses it; returns it with its own meta entry.
pub fn load_verified<T: DeserializeOwned + Metadata>(
    path: &Path,
    what: &'static str,
    verify: impl FnOnce(&[u8]) -> Result<()>,
) -> Result<(Signed<T>, MetaEntry)> {
    let bytes = read_own(path)?;
    verify(&bytes)?;
    parse(path, what, &bytes)
}

/// The bytes of a file a signer wrote: a plain file (not a symlink, never followed) owned by
/// this process's user, or by root (`init`, and the root ceremony, run as root). A file of
/// another agent's user was not written by this role's signer: refused, naming it.
pub fn read_own(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::Untrusted {
                path: path.into(),
                reason: "is a symlink, which no signer writes".into(),
            },
            _ => Error::io("cannot read metadata", path)(e),
        })?;
    let meta = file
        .metadata()
        .map_err(Error::io("cannot read metadata", path))?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_file() || (meta.uid() != me && meta.uid() != 0) {
        return Err(Error::Untrusted {
            path: path.into(),
            reason: format!(
                "is {} owned by uid {}, but this signer runs as uid {me}: it did not write it",
                if meta.is_file() {
                    "a file"
                } else {
                    "not a plain file"
                },
                meta.uid()
            ),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(Error::io("cannot read metadata", path))?;
    Ok(bytes)
}

fn parse<T: DeserializeOwned + Metadata>(
    path: &Path,
    what: &'static str,
    bytes: &[u8],
) -> Result<(Signed<T>, MetaEntry)> {
    let signed: Signed<T> = serde_json::from_slice(bytes).map_err(|source| Error::Parse {
        what,
        path: path.into(),
        source,
    })?;
    let meta = MetaEntry::of(signed.signed.version().get(), bytes);
    Ok((signed, meta))
}

/// A hex key id as the schema types hold it; text that is not hex is an invalid job.
pub fn hex_decoded(text: &str) -> Result<Decoded<Hex>> {
    hex::decode(text)
        .map(Decoded::from)
        .map_err(|_| Error::InvalidJob(format!("{text:?} is not hex")))
}

/// A version as the schema types hold it; 0, which no TUF version is, is an invalid job.
pub fn non_zero(version: u64) -> Result<NonZeroU64> {
    NonZeroU64::new(version)
        .ok_or_else(|| Error::InvalidJob("version 0 is not a TUF version".into()))
}

/// The highest version this project signs or adopts: far above any real count (a new version
/// every millisecond for 285,000 years), far below where `u64` arithmetic wraps, and exact as
/// a JSON number in every client (2^53 - 1). A version above it is refused wherever it is
/// read, so no version computed from one can wrap to 0 (which every client refuses as a
/// rollback, for good).
pub const MAX_VERSION: u64 = (1 << 53) - 1;

/// The version after `version` of the file at `path`: refused at the ceiling, never wrapped.
pub fn next_version(version: u64, path: &std::path::Path) -> Result<u64> {
    check_ceiling(version, path)?;
    Ok(version + 1)
}

/// Refuses a version above [`MAX_VERSION`] (or at it: nothing may follow it), read from the
/// file at `path`.
pub fn check_ceiling(version: u64, path: &std::path::Path) -> Result<()> {
    if version < MAX_VERSION {
        return Ok(());
    }
    Err(Error::Untrusted {
        path: path.into(),
        reason: format!(
            "has version {version}, at or above the ceiling of {MAX_VERSION}: no real \
             repository gets there, and a version after it could wrap to 0"
        ),
    })
}
