//! The role's state as the worker holds it, and how it writes: under the role's lock in
//! `REPO/control/` (see [`Control`]), reloading first when another replica wrote since, and
//! announcing what it reloaded downstream (the replica that wrote it may have died before
//! handing it on).

use crate::repository::control::Control;
use crate::repository::prune::{space_is_low, still_named};
use crate::roles::{Applied, Stage};
use crate::Result;

use super::health::Health;
use super::State;

/// A role's state, how to load it again, the name it records in the role's lock file when it
/// writes, the newest root version it has checked its key against, and its health record.
pub(super) struct Writer<S, L> {
    pub stage: S,
    load: L,
    pub health: Health,
    pub control: Control,
    id: String,
    root_version: u64,
}

/// What a batch applied under the lock did, and the jobs to publish downstream, in order.
pub(super) struct Locked<N> {
    pub downstream: Vec<Vec<u8>>,
    pub applied: Applied<N>,
}

fn writer_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}@{} {nanos}",
        std::process::id(),
        std::env::var("HOSTNAME").unwrap_or_default()
    )
}

impl<S: Stage, L: Fn() -> Result<S>> Writer<S, L> {
    pub fn new(stage: S, load: L, health: Health) -> Writer<S, L> {
        Writer {
            control: stage.control(),
            stage,
            load,
            health,
            id: writer_id(),
            root_version: 0,
        }
    }

    /// Consuming, or paused when this role obeys the pause switch and it is on.
    pub fn resting_state(&self) -> Result<State> {
        Ok(if self.is_paused()? {
            State::Paused
        } else {
            State::Consuming
        })
    }

    pub fn is_paused(&self) -> Result<bool> {
        Ok(S::PAUSABLE && self.control.paused()?.is_some())
    }

    /// Fails when a newer root no longer lists this signer's key; one `stat` when no new
    /// root has appeared.
    pub fn check_root(&mut self) -> Result<()> {
        let newest = self.stage.layout().newest_root_after(self.root_version);
        if newest != self.root_version {
            self.stage.key_still_listed()?;
            self.root_version = newest;
        }
        Ok(())
    }

    /// Removes superseded versions retention no longer keeps, or, when the disk is nearly
    /// full, every one no client can still need.
    pub fn prune(&mut self) {
        let layout = self.stage.layout();
        let low = space_is_low(&layout.metadata_dir());
        let Some(named) = still_named(layout) else {
            return;
        };
        let removed = tokio::task::block_in_place(|| {
            if low {
                self.stage.free_space(&named)
            } else {
                self.stage.prune(&named)
            }
        });
        if low && removed > 0 {
            tracing::warn!(
                role = %S::ROLE,
                removed,
                "disk nearly full: removed superseded versions past the client grace"
            );
        } else if removed > 0 {
            tracing::debug!(role = %S::ROLE, removed, "pruned superseded versions");
        }
    }

    /// Applies `jobs` under the role's lock; returns the downstream jobs to publish, in
    /// order (a resync first, when it reloaded), and what the batch did.
    ///
    /// When the lock names another writer (a standby taking over, a paused replica's
    /// refresh, this process's own first write), the state is reloaded if the disk moved.
    /// A failed apply reloads as well, since it may have moved the state ahead of the disk.
    pub fn apply_locked(&mut self, jobs: &[S::Job]) -> Result<Locked<S::Next>> {
        let mut lock = self.control.lock(S::ROLE)?;
        self.check_root()?;
        let mut downstream = Vec::new();
        if lock.last_writer()? != self.id && self.stage.is_stale()? {
            tracing::info!(
                role = %S::ROLE,
                "another replica signed since this one loaded: reloading state from disk"
            );
            self.stage = (self.load)()?;
            downstream.extend(self.resync()?);
        }
        // Named before writing: if this process dies mid-write, the next writer sees a
        // name not its own and checks the disk before signing.
        lock.record(&self.id)?;
        let mut freed = false;
        loop {
            match self.stage.apply(jobs) {
                Ok(applied) => {
                    downstream.extend(applied.next.as_ref().map(S::encode));
                    return Ok(Locked {
                        downstream,
                        applied,
                    });
                }
                Err(e) => {
                    self.stage = (self.load)()?;
                    // A full disk: prune what no client can still need and try once more.
                    // Otherwise (or if that frees nothing) the batch comes back after the
                    // reconnect wait, which grows, and pruning is tried again then.
                    if e.is_disk_full() && !freed {
                        freed = true;
                        let removed = still_named(self.stage.layout())
                            .map_or(0, |named| self.stage.free_space(&named));
                        tracing::warn!(role = %S::ROLE, error = %e, removed,
                            "disk full: removed superseded versions past the client grace; \
                             trying the batch again");
                        if removed > 0 {
                            continue;
                        }
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The job that re-announces this role's files downstream, if it has a next role;
    /// fails when the key cannot sign it.
    pub fn resync(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.stage.resync()?.as_ref().map(S::encode))
    }
}
