//! A folder held open by handle, for writing in a repository that other users can write too.
//!
//! Invariant: every file this project creates in a shared folder is made by name relative to
//! a handle opened on that folder (`O_DIRECTORY | O_NOFOLLOW`), created exclusively
//! (`O_CREAT | O_EXCL | O_NOFOLLOW`: never an existing file, never through a symlink), and
//! moved into place by `renameat`/`linkat` between held handles. So a folder swapped for a
//! symlink after it was opened, or a symlink planted at a temp name, redirects nothing: no
//! file outside the repository is ever opened for writing, and nothing but a regular file of
//! ours is ever moved into a served name.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

use crate::{Error, Result};

/// A folder, held open.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

fn io(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from(e)
}

impl Folder {
    /// Opens `path`, which must be a folder and not a symlink to one.
    pub fn open(path: &Path) -> Result<Folder> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            let e = io(e);
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
                Error::Repository {
                    path: path.into(),
                    reason: "is not a folder (a symlink, or a file): a folder of the repository \
                             was replaced; nothing is written through it. Find out who did it, \
                             and restore the folder"
                        .into(),
                }
            } else {
                Error::io("cannot open folder", path)(e)
            }
        })?;
        Ok(Folder {
            fd,
            path: path.into(),
        })
    }

    /// The same folder, known by `path` from now on (it was renamed there by its owner).
    pub fn renamed(self, path: &Path) -> Folder {
        Folder {
            fd: self.fd,
            path: path.into(),
        }
    }

    /// Opens (creates) `name` for reading and writing, not through a symlink: a lock file.
    pub fn open_lock(&self, name: &str) -> Result<File> {
        rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map(File::from)
        .map_err(|e| Error::io("cannot open lock file", self.at(name))(io(e)))
    }

    /// The folder's path (as opened; for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn at(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates `name` with `bytes` and mode `mode` (less the umask), flushed (`all`: its
    /// metadata too). Refused if anything is there already, a symlink included. Removed again
    /// if any step fails, so that a full disk leaves nothing behind.
    pub fn create_new(&self, name: &str, bytes: &[u8], all: bool, mode: u32) -> Result<()> {
        let path = self.at(name);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| Error::io("cannot create", &path)(io(e)))?;
        let mut file = File::from(fd);
        let written = file
            .write_all(bytes)
            .map_err(Error::io("cannot write", &path))
            .and_then(|()| {
                if all {
                    file.sync_all()
                } else {
                    file.sync_data()
                }
                .map_err(Error::io("cannot fsync", &path))
            });
        if written.is_err() {
            let _ = self.remove(name);
        }
        written
    }

    /// Removes `name` (a symlink itself, never what it points to).
    pub fn remove(&self, name: &str) -> std::io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(io)
    }

    /// Renames `name` here to `to_name` in `to`, replacing what is there.
    pub fn rename(&self, name: &str, to: &Folder, to_name: &str) -> std::io::Result<()> {
        rustix::fs::renameat(&self.fd, name, &to.fd, to_name).map_err(io)
    }

    /// Links `name` here as `to_name` in `to`; fails if `to_name` exists.
    pub fn link(&self, name: &str, to: &Folder, to_name: &str) -> std::io::Result<()> {
        rustix::fs::linkat(&self.fd, name, &to.fd, to_name, AtFlags::empty()).map_err(io)
    }

    /// The bytes of `name`, not followed if it is a symlink.
    pub fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        let mut bytes = Vec::new();
        File::from(fd).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Makes renames and links in this folder durable.
    pub fn sync(&self) -> Result<()> {
        rustix::fs::fsync(&self.fd)
            .map_err(|e| Error::io("cannot fsync directory", &self.path)(io(e)))
    }
}

/// The file name of `path`, as UTF-8 (every name this project writes is).
pub fn name_of(path: &Path) -> Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Repository {
            path: path.into(),
            reason: "has no file name this project writes".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symlink at the temp name, or a folder swapped for a symlink after it was opened,
    /// sends no write elsewhere.
    #[test]
    fn no_symlink_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("inside");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&inside).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "keep").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), inside.join("tmp")).unwrap();
        let folder = Folder::open(&inside).unwrap();
        let e = folder.create_new("tmp", b"x", true, 0o644).unwrap_err();
        assert!(e.to_string().contains("cannot create"), "{e}");
        assert_eq!(
            std::fs::read_to_string(outside.join("secret")).unwrap(),
            "keep"
        );

        // The folder's path now points elsewhere: the held handle still writes inside.
        let moved = dir.path().join("moved");
        std::fs::rename(&inside, &moved).unwrap();
        std::os::unix::fs::symlink(&outside, &inside).unwrap();
        folder.create_new("new", b"y", true, 0o644).unwrap();
        assert!(moved.join("new").is_file());
        assert!(!outside.join("new").exists());
        let e = Folder::open(&inside).unwrap_err();
        assert!(e.to_string().contains("is not a folder"), "{e}");
    }
}
