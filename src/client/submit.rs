//! `tuf-client add-targets` / `remove-targets`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest::{Context, SHA256, SHA512};

use crate::broker::inbox::submit_to_inbox;
use crate::broker::{Publisher, Queue};
use crate::durable::create_dir;
use crate::jobs::{check_target_name, NewTarget, TargetHashes, TargetsJob};
use crate::keys::SigningKey;
use crate::repository::staging::Staging;
use crate::repository::Layout;
use crate::submission;
use crate::{Error, Result};

/// Where jobs go: the broker, or the inbox of `tuf-signer run --all` without one.
pub enum Route {
    /// Publish to the targets queue through the broker.
    Broker(Publisher),
    /// Write into this inbox folder, for `tuf-signer run --all --inbox DIR`.
    Inbox(PathBuf),
}

/// Sends targets jobs, each signed with the submitter key (see [`crate::submission`]).
pub struct Sink {
    /// Where the signed jobs go.
    pub route: Route,
    /// The submitter key every job is signed with (`--submitter-key`).
    pub key: SigningKey,
}

impl Sink {
    /// Signs `job` and sends it; returns the submission's id (what its receipt names, see
    /// [`crate::repository::receipts`]). Signed once: if the broker goes away mid-send, the
    /// same bytes are sent again once it is back, which the targets signer applies once.
    pub async fn send(&self, job: &TargetsJob, seq: usize) -> Result<String> {
        let body = submission::sign(job, &self.key)?;
        match &self.route {
            Route::Broker(publisher) => publisher.publish(Queue::Targets, &body).await?,
            Route::Inbox(dir) => submit_to_inbox(dir, &body, seq).map(|_| ())?,
        }
        Ok(submission::id_of(&body))
    }
}

/// A file to sign and the name it is signed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The target name it is signed under: a path under `targets/`.
    pub name: String,
    /// The file on disk whose length and hashes are signed.
    pub file: PathBuf,
}

/// Turns the command line into releases: a folder gives every file under it, named by its
/// path relative to the folder; a file gives itself, named by its path as written;
/// `NAME=FILE` names a file explicitly. Release folders are read as they are: a symbolic link
/// (to a file or a folder) or anything but a plain file or folder is refused, named, rather
/// than followed out of the folder (or round a loop).
pub fn collect(inputs: &[PathBuf], named: &[String]) -> Result<Vec<Release>> {
    let mut out = Vec::new();
    for input in inputs {
        refuse_links(input)?;
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
        refuse_links(Path::new(file))?;
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
        refuse_links(&path)?;
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

/// Fails on a symbolic link, or on anything that is neither a plain file nor a folder (a
/// FIFO would block the read forever). A path that does not exist passes: the caller says so.
fn refuse_links(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(Error::Usage(format!(
            "{}: a symbolic link; add-targets reads release folders as they are and follows \
             no link: put the file itself there",
            path.display()
        )));
    }
    if !kind.is_file() && !kind.is_dir() {
        return Err(Error::Usage(format!(
            "{}: neither a file nor a folder; releases are plain files",
            path.display()
        )));
    }
    Ok(())
}

/// Length and hashes of a file, read once. The file is opened without following a link, in
/// case one was put there after `collect` looked.
pub fn describe(release: &Release) -> Result<NewTarget> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let mut file = options.open(&release.file).map_err(Error::io(
        "cannot open (a link is not followed)",
        &release.file,
    ))?;
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

pub use crate::repository::layout::consistent_path;

/// Copies releases into a repository's targets folder, each under its consistent name, its
/// temp file staged in the repository's `control/staging/` (the folder above `targets/`), not
/// in the served folder.
pub struct TargetsFolder {
    dir: PathBuf,
    staging: Arc<Staging>,
}

impl TargetsFolder {
    /// `dir` is a repository's `targets/` folder.
    /// Refuses a folder that is not a repository's `targets/` (nothing beside it says
    /// `metadata/1.root.json`): a mistyped path writes nothing, not even the staging folder.
    pub fn open(dir: &Path) -> Result<TargetsFolder> {
        let repo = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let layout = Layout::new(repo);
        if layout.require_initialised().is_err() || !dir.is_dir() {
            return Err(Error::Usage(format!(
                "--targets-dir {}: not the targets/ folder of a repository (no \
                 metadata/1.root.json beside it); give REPO/targets, the folder the repository \
                 serves its target files from",
                dir.display()
            )));
        }
        Ok(TargetsFolder {
            dir: dir.to_path_buf(),
            staging: Layout::new(repo).staging()?,
        })
    }

    /// Copies one release in (nothing to do when it is there already).
    pub fn publish(&self, release: &Release, target: &NewTarget) -> Result<()> {
        let dest = self
            .dir
            .join(consistent_path(&target.name, &target.hashes.sha256));
        if dest.is_file() && std::fs::metadata(&dest).map(|m| m.len()).ok() == Some(target.length) {
            return Ok(());
        }
        create_dir(dest.parent().expect("has a parent"))?;
        let bytes =
            std::fs::read(&release.file).map_err(Error::io("cannot read", &release.file))?;
        self.staging.write_durably(&dest, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release folder with a link to a file outside it, and one with a link looping back to
    /// itself: each refused, naming the link; nothing outside the folder is read.
    #[cfg(unix)]
    #[test]
    fn links_in_release_folders_are_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret.pem");
        std::fs::write(&secret, "not a release").unwrap();
        let releases = dir.path().join("releases");
        std::fs::create_dir_all(releases.join("drupal/token")).unwrap();
        std::fs::write(releases.join("drupal/token/1.9.0.0"), "zip").unwrap();
        assert_eq!(
            collect(std::slice::from_ref(&releases), &[]).unwrap().len(),
            1
        );

        // The folder with a link at `at` (to `to`) is refused, naming the link.
        let refused_with_link = |at: &Path, to: &Path| {
            std::os::unix::fs::symlink(to, at).unwrap();
            let err = collect(std::slice::from_ref(&releases), &[])
                .unwrap_err()
                .to_string();
            std::fs::remove_file(at).unwrap();
            err
        };
        let link = releases.join("drupal/token/1.9.1.0");
        let err = refused_with_link(&link, &secret);
        assert!(err.contains("1.9.1.0: a symbolic link"), "{err}");
        let err = refused_with_link(&releases.join("drupal/loop"), &releases);
        assert!(err.contains("loop: a symbolic link"), "{err}");

        let named = format!("drupal/token/2.0.0.0={}", link.display());
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let err = collect(&[], &[named]).unwrap_err().to_string();
        assert!(err.contains("a symbolic link"), "{err}");
        let release = Release {
            name: "drupal/token/1.9.1.0".into(),
            file: link,
        };
        assert!(
            describe(&release).is_err(),
            "describe does not follow a link either"
        );
    }
}
