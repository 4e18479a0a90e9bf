//! Removing superseded metadata versions, late enough that a client in the middle of an
//! update still finds the versions the snapshot it read names.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Pruner {
    keep_for: Option<Duration>,
    due: VecDeque<(Instant, PathBuf)>,
}

impl Pruner {
    /// `keep_for: None` keeps every version forever.
    pub fn new(keep_for: Option<Duration>) -> Self {
        Pruner {
            keep_for,
            due: VecDeque::new(),
        }
    }

    /// `path` was just superseded by a newer version.
    pub fn superseded(&mut self, path: PathBuf) {
        if let Some(keep) = self.keep_for {
            self.due.push_back((Instant::now() + keep, path));
        }
    }

    /// Deletes what is due; returns how many files went.
    pub fn sweep(&mut self) -> usize {
        let now = Instant::now();
        let mut removed = 0;
        while self.due.front().is_some_and(|(at, _)| *at <= now) {
            let (_, path) = self.due.pop_front().expect("front exists");
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot prune old metadata")
                }
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_superseded_files_once_due_and_keeps_all_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("1.bin-0.json");
        std::fs::write(&old, b"x").unwrap();
        let mut keep = Pruner::new(None);
        keep.superseded(old.clone());
        assert_eq!(keep.sweep(), 0);
        assert!(old.exists());

        let mut later = Pruner::new(Some(Duration::from_secs(3600)));
        later.superseded(old.clone());
        assert_eq!(later.sweep(), 0, "not due yet");

        let mut now = Pruner::new(Some(Duration::ZERO));
        now.superseded(old.clone());
        now.superseded(dir.path().join("gone-already.json"));
        assert_eq!(now.sweep(), 1);
        assert!(!old.exists());
    }
}
