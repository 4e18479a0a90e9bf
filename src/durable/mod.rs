//! Writes named by their guarantee: a crash leaves the old file or the new one, never half of
//! one, and nothing is ever written through a symlink another user planted.
//!
//! Every write goes temp file → fsync → rename (or link) → fsync of the folder; a signer
//! acknowledges a job only after this returns. [`Folder`] holds a folder open by handle for
//! writing where other users can write too. No module of this crate but [`crate::error`] is
//! used here: everything that writes a file uses these.

pub mod folder;

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

pub use folder::{name_of, Folder};

use crate::{Error, Result};

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content, its temp
/// file beside it: for files nobody serves (control files, a client's downloads). What goes
/// in `metadata/` or `targets/` is written through `Layout::staging`.
/// The temp file is made in the held folder with no symlink followed ([`Folder`]).
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let folder = Folder::open(folder_of(path))?;
    let name = name_of(path)?;
    // Unique in this process too: its threads (the three roles of `run --all`) may write the
    // same file at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = format!(".{name}.tmp-{}-{n}", std::process::id());
    // Left by a process of this pid that was stopped mid-write (or planted: never followed).
    let _ = folder.remove(&tmp);
    folder.create_new(&tmp, bytes, true, 0o666)?;
    if let Err(e) = folder.rename(&tmp, &folder, name) {
        let _ = folder.remove(&tmp);
        return Err(Error::io("cannot rename into place", path)(e));
    }
    folder.sync()
}

/// Writes `bytes` to `path` so that a reader sees the old content or the new, whole, never
/// half (a temp file beside it, then a rename), with no fsync: after the machine crashes the
/// file may be the old one, or missing. For records rewritten every few seconds that mean
/// nothing after a restart (a signer's health record). Never written
/// through a symlink: the temp file is created new, with `O_NOFOLLOW`, and renamed over.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = name_of(path)?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = folder_of(path).join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(Error::io("cannot write", &tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(Error::io("cannot rename into place", path)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Appends `bytes` (whole lines) to `path` (made if missing, never through a symlink) and
/// flushes it, and its folder when the file is new: for the append-only records a signer
/// keeps (the versions it signed, the tombstones). A last line cut short by a crash is cut off
/// first, so that what is appended starts a line of its own (readers skip such a line: see
/// [`complete_lines`]).
pub fn append_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let error = || Error::io("cannot append to", path);
    let new = !path.exists();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(error())?;
    let whole = cut_torn_line(&mut file).map_err(error())?;
    file.seek(SeekFrom::Start(whole)).map_err(error())?;
    file.write_all(bytes).map_err(error())?;
    file.sync_data().map_err(error())?;
    if new {
        sync_dir(folder_of(path))?;
    }
    Ok(())
}

/// Cuts off a last line that a crash left without its newline, so that the next line
/// appended starts a line of its own; returns the length of the whole lines (the file's new
/// length). Reads one byte in the usual case (the file ends with a newline), else back from
/// the end a block at a time to the last newline, never the whole file into memory. The cut is
/// flushed before it returns.
pub fn cut_torn_line(file: &mut File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: u64 = 64 * 1024;
    let len = file.seek(SeekFrom::End(0))?;
    let mut end = len;
    let mut block = Vec::new();
    while end > 0 {
        let size = if end == len { 1 } else { end.min(BLOCK) };
        let start = end - size;
        block.resize(size as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        if let Some(i) = block.iter().rposition(|b| *b == b'\n') {
            let whole = start + i as u64 + 1;
            if whole < len {
                file.set_len(whole)?;
                file.sync_data()?;
            }
            return Ok(whole);
        }
        end = start;
    }
    if len > 0 {
        file.set_len(0)?;
        file.sync_data()?;
    }
    Ok(0)
}

/// The bytes of `path`, a file another agent's user may have written: a plain file only (not
/// a symlink, never followed; not a FIFO or device, opened without blocking), at most `max`
/// bytes. Anything else is an error of kind `InvalidData`, saying what it is.
pub fn read_plain(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a symlink, which is not followed",
            ),
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a plain file of at most {max} bytes"),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The complete lines of `text`: a last line without its newline was cut short by a crash
/// mid-append, and is left out (what it recorded is recorded again, or was never durable).
pub fn complete_lines(text: &str) -> &str {
    text.rfind('\n').map_or("", |end| &text[..end])
}

/// Writes a new file that only its owner can read, from its first byte: created with mode 0600
/// (the umask can only take bits away), refused if anything is at `path` already, a symlink
/// included; flushed, and its folder too. There is no temp name another user could create
/// first or point elsewhere. For key files.
pub fn write_secret_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(Error::io("cannot create (it must not exist yet)", path))?;
    file.write_all(bytes)
        .map_err(Error::io("cannot write", path))?;
    file.sync_all().map_err(Error::io("cannot fsync", path))?;
    sync_dir(folder_of(path))
}

/// The folder a file is in (`.` for a bare file name).
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates a folder (its parents as usual) that only its owner can list and read: `mode`
/// (0700, or 0711 to let other users reach a folder inside it they own) from its creation,
/// whatever the umask, and set to `mode` if it already existed.
pub fn create_private_dir(dir: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent)?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode & 0o700);
    match builder.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(Error::io("cannot create directory", dir)(e)),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(Error::io("cannot restrict directory permissions", dir))?;
    }
    Ok(())
}

/// Moves `old` (a file where an earlier layout kept it) to `new` when only `old` exists,
/// saying so; a move that fails is logged, and `new` then starts afresh.
pub fn move_legacy(old: &Path, new: &Path) {
    if new.exists() || !old.exists() {
        return;
    }
    let moved = create_dir(folder_of(new)).and_then(|()| {
        fs::rename(old, new).map_err(Error::io("cannot move", old))?;
        sync_dir(folder_of(new))
    });
    match moved {
        Ok(()) => tracing::info!(from = %old.display(), to = %new.display(),
            "moved to where this version keeps it"),
        Err(e) => tracing::warn!(error = %e, "cannot move to where this version keeps it"),
    }
}

/// Makes renames in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("cannot fsync directory", dir))
}

/// Creates a directory and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io("cannot create directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_write_replaces_the_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("health.timestamp.json");
        write_whole(&file, b"one").unwrap();
        write_whole(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temp file left");
        // Into a folder that is not there: an error naming the file, nothing left behind.
        assert!(write_whole(&dir.path().join("gone/health.json"), b"x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn secrets_are_private_from_the_first_byte_and_never_replace_anything() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("a/keys");
        create_private_dir(&keys, 0o700).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys), 0o700);
        let key = keys.join("k.pem");
        write_secret_durably(&key, b"secret").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert!(
            write_secret_durably(&key, b"other").is_err(),
            "never replaces"
        );
        assert_eq!(fs::read(&key).unwrap(), b"secret");
        // A symlink planted where the key goes is refused, not followed.
        let planted = keys.join("planted.pem");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &planted).unwrap();
        assert!(write_secret_durably(&planted, b"secret").is_err());
        assert!(!dir.path().join("elsewhere").exists());
        // An existing folder is made private too.
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&open, 0o700).unwrap();
        assert_eq!(mode(&open), 0o700);
    }

    #[test]
    fn durable_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_durably(&path, b"one").unwrap();
        write_durably(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left behind"
        );
    }

    /// A last line a crash left without its newline is cut off, however long it is (here
    /// longer than the block read back from the end), and the next append starts a line.
    #[test]
    fn a_torn_last_line_of_any_length_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record");
        for torn in [0, 1, 10, 200_000] {
            let mut text = b"one\ntwo\n".to_vec();
            text.extend(std::iter::repeat_n(b'x', torn));
            fs::write(&path, &text).unwrap();
            let mut file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            assert_eq!(cut_torn_line(&mut file).unwrap(), 8, "torn line of {torn}");
            append_durably(&path, b"three\n").unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"one\ntwo\nthree\n");
        }
        fs::write(&path, b"no newline at all").unwrap();
        append_durably(&path, b"line\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"line\n");
    }
}
