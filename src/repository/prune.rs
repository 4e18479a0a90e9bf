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
