//! `tuf-client add-targets` / `remove-targets`.

use std::io::Read;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{Context, SHA256, SHA512};

use crate::broker::memory::submit_to_inbox;
use crate::broker::{Endpoint, Queue};
use crate::jobs::{check_target_name, NewTarget, TargetHashes, TargetsJob};
use crate::repository::layout::{create_dir, write_durably};
use crate::{Error, Result};

/// Where jobs go: the broker, or the inbox of `tuf-signer run --all` without one.
pub enum Sink {
    Broker(Endpoint),
    Inbox(PathBuf),
}

impl Sink {
    pub async fn send(&self, job: &TargetsJob, seq: usize) -> Result<()> {
        let body = serde_json::to_vec(job).expect("jobs serialise");
        match self {
            Sink::Broker(endpoint) => endpoint.publish(Queue::Targets, &body).await,
            Sink::Inbox(dir) => submit_to_inbox(dir, &body, seq).map(|_| ()),
        }
    }
}

/// A file to sign and the name it is signed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub file: PathBuf,
}

/// Turns the command line into releases: a folder gives every file under it, named by its
/// path relative to the folder; a file gives itself, named by its path as written;
/// `NAME=FILE` names a file explicitly.
pub fn collect(inputs: &[PathBuf], named: &[String]) -> Result<Vec<Release>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, input, &mut out)?;
        } else if input.is_file() {
            let name = input
                .to_str()
                .ok_or_else(|| Error::Usage(format!("{}: not UTF-8", input.display())))?;
            out.push(Release {
                name: name.trim_start_matches("./").to_string(),
                file: input.clone(),
            });
        } else {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                input.display()
            )));
        }
    }
    for spec in named {
        let (name, file) = spec.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "--target {spec:?}: write NAME=FILE, e.g. drupal/token/1.9.0.0=token.zip"
            ))
        })?;
        out.push(Release {
            name: name.to_string(),
            file: PathBuf::from(file),
        });
    }
    for r in &out {
        check_target_name(&r.name)
            .map_err(|e| Error::Usage(format!("{}: {e}", r.file.display())))?;
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<Release>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(Error::io("cannot list", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(base, &path, out)?;
        } else if path.is_file() {
            let rel = path.strip_prefix(base).expect("under base");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_str())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::Usage(format!("{}: not UTF-8", path.display())))?
                .join("/");
            out.push(Release { name, file: path });
        }
    }
    Ok(())
}

/// Length and hashes of a file, read once.
pub fn describe(release: &Release) -> Result<NewTarget> {
    let mut file =
        std::fs::File::open(&release.file).map_err(Error::io("cannot open", &release.file))?;
    let (mut s256, mut s512) = (Context::new(&SHA256), Context::new(&SHA512));
    let mut buf = vec![0u8; 1 << 16];
    let mut length = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(Error::io("cannot read", &release.file))?;
        if n == 0 {
            break;
        }
        s256.update(&buf[..n]);
        s512.update(&buf[..n]);
        length += n as u64;
    }
    Ok(NewTarget {
        name: release.name.clone(),
        length,
        hashes: TargetHashes {
            sha256: hex::encode(s256.finish()),
            sha512: hex::encode(s512.finish()),
        },
    })
}

/// Where a target file lives in a consistent-snapshot repository: `dir/SHA256.file`.
pub fn consistent_path(name: &str, sha256: &str) -> String {
    match name.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/{sha256}.{file}"),
        None => format!("{sha256}.{name}"),
    }
}

/// Copies a release into the repository's targets folder under its consistent name.
pub fn publish_file(targets_dir: &Path, release: &Release, target: &NewTarget) -> Result<()> {
    let dest = targets_dir.join(consistent_path(&target.name, &target.hashes.sha256));
    if dest.is_file() && std::fs::metadata(&dest).map(|m| m.len()).ok() == Some(target.length) {
        return Ok(());
    }
    create_dir(dest.parent().expect("has a parent"))?;
    let bytes = std::fs::read(&release.file).map_err(Error::io("cannot read", &release.file))?;
    write_durably(&dest, &bytes)
}
