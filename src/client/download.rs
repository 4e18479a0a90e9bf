//! `tuf-client download`: fetch targets and write them only once length and every hash the
//! metadata gives have been checked. A file already in the output folder that still matches
//! is kept, not fetched again.

use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{digest, SHA256, SHA512};
use url::Url;

use super::fetch::Fetcher;
use super::submit::consistent_path;
use super::trust::TrustedMetadata;
use crate::repository::layout::{create_dir, write_durably};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Downloaded(PathBuf),
    AlreadyPresent(PathBuf),
}

/// Checks `bytes` against a target's signed length and hashes; at least one known hash must
/// be there.
pub fn check_target(name: &str, bytes: &[u8], target: &tough::schema::Target) -> Result<()> {
    if bytes.len() as u64 != target.length {
        return Err(Error::Verify(format!(
            "{name}: {} bytes, the metadata says {}",
            bytes.len(),
            target.length
        )));
    }
    if digest(&SHA256, bytes).as_ref() != target.hashes.sha256.as_ref() {
        return Err(Error::Verify(format!(
            "{name}: sha256 does not match the signed one"
        )));
    }
    if let Some(want) = target.hashes._extra.get("sha512").and_then(|v| v.as_str()) {
        if hex::encode(digest(&SHA512, bytes)) != want {
            return Err(Error::Verify(format!(
                "{name}: sha512 does not match the signed one"
            )));
        }
    }
    Ok(())
}

pub async fn download(
    trusted: &mut TrustedMetadata,
    fetcher: &Fetcher,
    metadata_url: &Url,
    targets_url: &Url,
    name: &str,
    out_dir: &Path,
) -> Result<Outcome> {
    let target = trusted
        .find_target(fetcher, metadata_url, name)
        .await?
        .ok_or_else(|| Error::Verify(format!("{name}: no such target in the signed metadata")))?;
    let dest = out_dir.join(name);
    if let Ok(existing) = std::fs::read(&dest) {
        if check_target(name, &existing, &target).is_ok() {
            return Ok(Outcome::AlreadyPresent(dest));
        }
    }
    let sha256 = hex::encode(&target.hashes.sha256);
    let bytes = fetcher
        .get(targets_url, &consistent_path(name, &sha256), target.length)
        .await?
        .ok_or_else(|| Error::Download {
            url: format!("{targets_url}{}", consistent_path(name, &sha256)),
            reason: "not found on the targets server".into(),
        })?;
    check_target(name, &bytes, &target)?;
    create_dir(dest.parent().unwrap_or(out_dir))?;
    write_durably(&dest, &bytes)?;
    Ok(Outcome::Downloaded(dest))
}
