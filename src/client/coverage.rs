//! Whether the published `timestamp.json` covers what we submitted: timestamp → its snapshot
//! → each target's bin at the version that snapshot names → the entry with our length and
//! hash (or, for a removal, no entry).

use std::collections::HashMap;

use crate::bins::HashBins;
use crate::pin::Pin;
use crate::repository::Layout;
use crate::role::Role;
use crate::schema::{DelegatedRole, Targets};
use crate::trusted::{trust_published_snapshot, trust_published_targets, trusted_chain};
use crate::updater::TrustedSet;
use crate::{Error, Result};

/// What a name should look like once published: `Some((length, sha256))`, or `None` for
/// removed.
pub type Expected = HashMap<String, Option<(u64, String)>>;

/// Follows the published metadata to see which submitted names it covers; keeps what it
/// verified between checks so that waiting on a large repository stays cheap.
pub struct Coverage {
    layout: Layout,
    /// Where the check of the published roots starts.
    pin: Pin,
    /// Bins verified at a version, under a top-level targets version (files of one version
    /// never change): the newest seen of each bin.
    bins_cache: HashMap<(String, u64, u64), Targets>,
    last_timestamp: Vec<u8>,
    /// Top-level targets version, the bins it delegates to, and each delegation.
    top: Option<(u64, HashBins, HashMap<String, DelegatedRole>)>,
    /// For each name still pending after the last check, what the published metadata shows
    /// of it: its bin, that bin's version, and its entry there.
    published: HashMap<String, Published>,
    /// The last round's trusted set: its top-level targets is carried to the next round
    /// ([`TrustedSet::carry_top_level_targets`]).
    last_set: Option<TrustedSet>,
}

/// What the published metadata shows of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The bin the name's hash puts it in (`bin-000-001`).
    pub bin: String,
    /// The version of that bin the snapshot names.
    pub bin_version: u64,
    /// `(length, sha256)`, `None` when the bin lists no such target.
    pub entry: Option<(u64, String)>,
}

/// What one [`Coverage::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The version of the timestamp checked; 0 when it had not changed since the last check.
    pub timestamp_version: u64,
    /// How many names the check found covered (and took off `pending`).
    pub done: usize,
}

impl Coverage {
    /// A coverage check of the repository at `layout`, its roots checked from `pin`.
    pub fn new(layout: Layout, pin: Pin) -> Self {
        Coverage {
            layout,
            pin,
            bins_cache: HashMap::new(),
            last_timestamp: Vec::new(),
            top: None,
            published: HashMap::new(),
            last_set: None,
        }
    }

    /// What the published metadata showed of each name still pending at the last check.
    pub fn published(&self, name: &str) -> Option<&Published> {
        self.published.get(name)
    }

    /// Removes from `pending` every name the current timestamp covers. Cheap when the
    /// timestamp has not changed since the last call: nothing new can be covered then.
    /// Checks the published files as a client would (the updater's [`TrustedSet`], on the
    /// files on disk: root chain, then timestamp, snapshot, targets and each bin needed, each
    /// signed, matching what names it, unexpired) and takes off `pending` each name they show
    /// as expected. Each bin is verified once per version.
    pub fn check(&mut self, pending: &mut Expected) -> Result<Progress> {
        let path = self.layout.timestamp();
        let bytes = std::fs::read(&path).map_err(Error::io("cannot read", &path))?;
        if bytes == self.last_timestamp {
            return Ok(Progress {
                timestamp_version: 0,
                done: 0,
            });
        }
        let mut round = Round::start(&self.layout, &self.pin, &bytes, self.last_set.take())?;
        if self
            .top
            .as_ref()
            .is_none_or(|(v, _, _)| *v != round.top_version)
        {
            let roles = delegations_of(round.trust_top(&self.layout)?);
            self.top = Some((round.top_version, HashBins::new(roles.len() as u32)?, roles));
        }
        let before = pending.len();
        let mut done = Vec::new();
        for (name, want) in pending.iter() {
            let published = self.look_up(&mut round, name)?;
            if &published.entry == want {
                done.push(name.clone());
            } else {
                self.published.insert(name.clone(), published);
            }
        }
        for name in done {
            pending.remove(&name);
            self.published.remove(&name);
        }
        // Only now: a failed read above (a file mid-rename) must be retried next time.
        self.last_timestamp = bytes;
        let progress = Progress {
            timestamp_version: round.timestamp_version,
            done: before - pending.len(),
        };
        self.last_set = Some(round.set);
        Ok(progress)
    }

    /// What the published metadata shows of `name`: its entry in the bin its hash names, at
    /// the version the snapshot lists, the bin verified as a client verifies it (once per
    /// version).
    fn look_up(&mut self, round: &mut Round, name: &str) -> Result<Published> {
        let (_, bins, delegated) = self.top.as_ref().expect("set by check");
        let bin = bins.name(bins.index_of(name));
        // The bin a client would look in: the delegation must cover the name's hash.
        if !delegated.get(&bin).is_some_and(|r| r.matches(name)) {
            return Err(Error::Verify(format!(
                "targets does not delegate {name} to {bin}, the bin its hash names"
            )));
        }
        let key = (bin.clone(), round.version_of(&bin)?, round.top_version);
        if !self.bins_cache.contains_key(&key) {
            round.trust_top(&self.layout)?;
            let verified =
                trust_published_targets(&mut round.set, &self.layout, &bin, Role::Targets.name())?
                    .clone();
            // One version per bin is kept: a wait over a busy repository stays small.
            self.bins_cache.retain(|(b, _, _), _| *b != bin);
            self.bins_cache.insert(key.clone(), verified);
        }
        let entry = self.bins_cache[&key].targets.get(name).map(|t| {
            (
                t.length,
                t.hashes.get("sha256").cloned().unwrap_or_default(),
            )
        });
        Ok(Published {
            bin,
            bin_version: key.1,
            entry,
        })
    }
}

/// One check's view of the published metadata: the trusted set, from the pinned root through
/// the timestamp just read and its snapshot; top-level targets is added to it when a bin must
/// be verified (or its delegations read), at most once.
struct Round {
    set: TrustedSet,
    timestamp_version: u64,
    top_version: u64,
}

impl Round {
    /// The round for `timestamp`, taking `earlier`'s top-level targets if it is unchanged.
    fn start(
        layout: &Layout,
        pin: &Pin,
        timestamp: &[u8],
        earlier: Option<TrustedSet>,
    ) -> Result<Round> {
        let mut set = trusted_chain(layout, pin)?;
        trust_published_snapshot(&mut set, layout, timestamp)?;
        if let Some(earlier) = earlier {
            set.carry_top_level_targets(earlier);
        }
        let timestamp_version = set.timestamp().expect("trusted").version.get();
        let mut round = Round {
            set,
            timestamp_version,
            top_version: 0,
        };
        round.top_version = round.version_of(Role::Targets.name())?;
        Ok(round)
    }

    /// The version of `role`'s file the trusted snapshot lists.
    fn version_of(&self, role: &str) -> Result<u64> {
        let snapshot = self.set.snapshot().expect("trusted by start");
        snapshot
            .listed(role)
            .map(|m| m.version.get())
            .ok_or_else(|| {
                Error::Verify(format!(
                    "the snapshot lists no {}",
                    crate::schema::listed_name(role)
                ))
            })
    }

    /// Trusts the top-level targets the snapshot lists, once a round: a bin can only be
    /// verified after it. Returns it.
    fn trust_top(&mut self, layout: &Layout) -> Result<&Targets> {
        if self.set.targets(Role::Targets.name()).is_none() {
            trust_published_targets(
                &mut self.set,
                layout,
                Role::Targets.name(),
                Role::Root.name(),
            )?;
        }
        Ok(self.set.targets(Role::Targets.name()).expect("trusted"))
    }
}

/// Top-level targets' delegations, by bin name.
fn delegations_of(top: &Targets) -> HashMap<String, DelegatedRole> {
    top.delegations
        .iter()
        .flat_map(|d| d.roles.iter())
        .map(|r| (r.name.clone(), r.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::init::{init, InitOptions};

    /// A removal is "covered" by a freshly initialised repository (no bin lists the name);
    /// once timestamp.json no longer verifies (its signature bytes changed), nothing is
    /// reported covered and the check says why.
    #[test]
    fn coverage_is_reported_only_from_metadata_that_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions::new(dir.path().join("repo"), dir.path().join("keys"), 16);
        init(&opts, |_, _| {}).unwrap();
        let layout = Layout::new(opts.repo.clone());
        let pin = Pin::new(opts.keys.join(crate::pin::PIN_FILE));
        let removed = || Expected::from([("drupal/gone/1.0.0.0".to_string(), None)]);

        let mut pending = removed();
        let progress = Coverage::new(layout.clone(), pin.clone())
            .check(&mut pending)
            .unwrap();
        assert_eq!((progress.timestamp_version, progress.done), (1, 1));

        let path = layout.timestamp();
        let text = std::fs::read_to_string(&path).unwrap();
        let at = text.find("\"sig\":\"").unwrap() + 7;
        let flipped = if &text[at..at + 1] == "0" { "1" } else { "0" };
        std::fs::write(
            &path,
            format!("{}{flipped}{}", &text[..at], &text[at + 1..]),
        )
        .unwrap();
        let mut pending = removed();
        let e = Coverage::new(layout, pin).check(&mut pending).unwrap_err();
        assert!(e.to_string().contains("valid signature"), "{e}");
        assert_eq!(pending.len(), 1);
    }
}
