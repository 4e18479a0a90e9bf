//! `tuf-client init`, `refresh` and `download`: the verifying updater ([`crate::updater`])
//! driven as Composer's TUF plugin drives php-tuf: trust a root once, then refresh the trusted
//! metadata and fetch targets, each checked against it; any failure is an error saying why.

use std::path::{Path, PathBuf};

use crate::durable::{create_dir, write_durably};
use crate::updater::{self, base_url, HttpFetcher, Updater};
use crate::{Error, Result};

/// Where the trusted metadata is kept, and where the repository's is served.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The trusted metadata folder (made by `tuf-client init`).
    pub metadata_dir: PathBuf,
    /// Base URL (or folder) of the repository's metadata.
    pub metadata_url: String,
}

impl Remote {
    fn updater(&self) -> Result<Updater<HttpFetcher>> {
        let config = updater::Config::default();
        let fetcher = HttpFetcher::new(&config);
        Ok(Updater::new(
            &self.metadata_dir,
            base_url(&self.metadata_url)?,
            fetcher,
            config,
        )?)
    }
}

/// `tuf-client init`: trusts `root_json` (the start of every client's trust).
pub fn trust(metadata_dir: &Path, root_json: &Path) -> Result<()> {
    let bytes = std::fs::read(root_json).map_err(Error::io("cannot read", root_json))?;
    updater::init(metadata_dir, &bytes)?;
    println!(
        "trusting {} in {}",
        root_json.display(),
        metadata_dir.display()
    );
    Ok(())
}

/// `tuf-client refresh`: the root chain, timestamp, snapshot and top-level targets.
pub async fn refresh(remote: &Remote) -> Result<()> {
    let mut updater = remote.updater()?;
    updater.refresh().await?;
    println!(
        "metadata up to date (root v{})",
        updater.trusted().root().version
    );
    Ok(())
}

/// `tuf-client download`: refreshes, then fetches each of `names` from `targets_url` into
/// `out/NAME`, verified; a file already there with the signed length and hashes is kept.
pub async fn download(
    remote: &Remote,
    targets_url: &str,
    out: &Path,
    names: &[String],
) -> Result<()> {
    let targets_url = base_url(targets_url)?;
    let mut updater = remote.updater()?;
    updater.refresh().await?;
    for name in names {
        let dest = updater::output_path(out, name)?;
        let info = updater.target_info(name).await?.ok_or_else(|| {
            Error::Verify(format!("{name}: no such target in the signed metadata"))
        })?;
        if std::fs::read(&dest).is_ok_and(|b| info.check(name, &b).is_ok()) {
            println!("verified {name} (already at {})", dest.display());
            continue;
        }
        let bytes = updater.download_target(name, &info, &targets_url).await?;
        create_dir(dest.parent().unwrap_or(out))?;
        write_durably(&dest, &bytes)?;
        println!("verified {name} -> {}", dest.display());
    }
    Ok(())
}
