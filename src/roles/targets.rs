//! The targets signer: top-level targets and the hashed bins.
//!
//! A batch touches some bins; each touched bin is re-signed once, whatever the number of
//! jobs, and nothing else is: the cost of an add does not grow with the number of bins.
//! Bins are written straight to canonical JSON from a compact in-memory form (about 200
//! bytes a target), because serialisation, not signing, is what a batch costs.
//!
//! Memory does not grow with the repository: at most `--held-targets` targets are held
//! (least recently used let go of first, never a bin changed and not yet written); a bin not
//! held is read back when a job touches it, and its bytes must be those this signer recorded
//! writing or verifying ([`crate::high_water::Written`], in its own state folder). At start a
//! bin so recorded is not read at all: start-up does not grow with the repository either.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::role::Role;
use crate::schema::{listed_name, Delegations, TargetFile, Targets};

use super::stage::{Applied, Core, Refusal, Stage};
use super::{check_not_older, check_version, listed_versions, load_state, signed_by, RoleSettings};
use crate::bins::HashBins;
use crate::canonical::write_string;
use crate::high_water::Written;
use crate::jobs::{NewTarget, SnapshotJob, TargetsJob, Vouching};
use crate::keys::RoleKeys;
use crate::repository::composer_p2;
use crate::repository::receipts::{Receipt, Receipts};
use crate::repository::signed::{self, sign_canonical};
use crate::repository::tombstones::{Tombstone, Tombstones};
use crate::repository::{Layout, MetaEntry, SPEC_VERSION};
use crate::submission::{Ledger, Policy};
use crate::trusted::RootChain;
use crate::verify::verify_delegated;
use crate::{Error, Result};
use serde::de::IgnoredAny;

/// Bins encoded and written together, bounding a batch's memory.
const WRITE_SLICE: usize = 512;

/// One target as a bin holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    length: u64,
    sha256: [u8; 32],
    sha512: [u8; 64],
}

#[derive(Debug)]
struct Bin {
    name: String,
    version: u64,
    expires: jiff::Timestamp,
    meta: MetaEntry,
    /// Its targets while held in memory; `None`: on disk only, at `version`, with the bytes
    /// `meta` names (read back by [`TargetsRole::hold`]).
    targets: Option<BTreeMap<String, Entry>>,
    /// Changed since it was last written: held until it is.
    dirty: bool,
    /// The batch that last touched it: the least recently used are let go of first.
    used: u64,
}

impl Bin {
    /// What the signer's record keeps of the bin as last written or verified.
    fn written(&self, key_id: &str) -> Written {
        Written {
            meta: self.meta.clone(),
            expires: self.expires,
            key_id: key_id.to_string(),
        }
    }
}

/// The targets signer's state: top-level targets and every bin, as last signed and verified.
#[derive(Debug)]
pub struct TargetsRole {
    /// Its `new_key`: some file is not signed by this signer's key, or the delegations name
    /// another key (a key rotation): top-level targets and every bin are re-signed at once.
    core: Core,
    bins: HashBins,
    top: Targets,
    top_meta: MetaEntry,
    state: Vec<Bin>,
    /// Batches applied since start, and the parts of each (see `hold_part`), for the bins'
    /// `used`.
    batch: u64,
    /// What the replay rule remembers of the submissions applied.
    ledger: Ledger,
    /// What became of each submission, for the submitters' `--wait`.
    receipts: Receipts,
    /// The releases removed, and the bytes they had.
    tombstones: Tombstones,
}

/// What becomes of one add ([`TargetsRole::judge_add`]).
enum Add {
    /// The bin already holds it, as it is.
    Unchanged,
    /// Refused, with the reason the submitter is told.
    Refused(String),
    /// Put in its bin; `replaces` a release it held, or one removed.
    Put { replaces: bool },
}

/// What a batch has done to the bins so far.
#[derive(Debug, Default)]
struct Touched {
    /// Every bin a job named: the snapshot job lists each.
    named: BTreeSet<usize>,
    /// The bins changed and not written yet.
    changed: BTreeSet<usize>,
    /// The tombstones of the batch's removals, not buried yet.
    stones: Vec<Tombstone>,
    /// Bin files written by the parts before the last.
    written: usize,
}

/// What a batch did to names beyond adding new ones, each with its job's index in the batch.
#[derive(Debug, Default)]
struct Changes {
    refused: Vec<(usize, String, String)>,
    removed: Vec<(usize, String)>,
    replaced: Vec<(usize, String)>,
}

impl TargetsRole {
    /// Loads the signer's state from the repository, every file adopted verified against the
    /// root chain from the pin, with its keys and settings.
    pub fn load(settings: RoleSettings, keys: RoleKeys) -> Result<TargetsRole> {
        // Every file adopted as state must verify: top-level targets against the root's
        // targets keys, each bin against the keys top-level targets delegates it to. A file
        // that does not is never re-signed: a bin planted unsigned on the shared volume would
        // otherwise come out signed by the real targets key.
        let chain = RootChain::load(&settings.layout, &settings.pin)?;
        let policy = settings.submissions.as_ref().ok_or_else(|| {
            Error::Usage(
                "the targets signer needs the submitter keys it trusts (--submitters)".into(),
            )
        })?;
        let ledger = Ledger::open(policy)?;
        let tombstones = Tombstones::open(&policy.ledger)?;
        let mut core = Core::new(settings, Role::Targets, keys, &chain)?;
        let layout = &core.settings.layout.clone();
        let mut disk = OnDisk {
            layout,
            versions: layout.scan_versions()?,
            listed: BTreeMap::new(),
        };
        let (top, top_meta, top_path) = load_top(&mut core, &mut disk, &chain)?;
        let (delegations, bins) = delegated_bins(&top.signed, &top_path)?;
        let mut new_key = !delegates_to_this_key(&core, &top, delegations)?;
        let (state, all_by_key) = load_bins(&mut core, &disk, bins, delegations)?;
        new_key |= !all_by_key;
        if new_key {
            tracing::info!(
                key_id = core.key.key_id(),
                "targets metadata is not all signed by this key yet: re-signing every file now"
            );
        }
        core.new_key = new_key;
        // Gzip copies of the newest versions that have none yet (a start after a stop, or
        // an upgrade): the copying thread skips those that have one.
        layout.copy_later(
            std::iter::once(top_path)
                .chain(state.iter().map(|b| layout.versioned(&b.name, b.version))),
        );
        Ok(TargetsRole {
            batch: 0,
            ledger,
            receipts: Receipts::new(layout),
            tombstones,
            core,
            bins,
            top: top.signed,
            top_meta,
            state,
        })
    }

    /// How the targets are split into bins now.
    pub fn bins(&self) -> HashBins {
        self.bins
    }
}

impl Stage for TargetsRole {
    fn published(&self) -> Vec<(&'static str, u64, jiff::Timestamp)> {
        let mut out = vec![(
            Role::Targets.name(),
            self.top.version.get(),
            self.top.expires,
        )];
        let newest = self.state.iter().map(|b| b.version).max();
        let first_to_expire = self.state.iter().map(|b| b.expires).min();
        if let (Some(version), Some(expires)) = (newest, first_to_expire) {
            out.push((Role::Bins.name(), version, expires));
        }
        out
    }

    const ROLE: Role = Role::Targets;
    const PAUSABLE: bool = true;
    type Job = TargetsJob;
    type Next = SnapshotJob;

    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn dead_lettered(&self, body: &[u8], reason: &str) {
        let id = crate::submission::id_of(body);
        self.receipts.record(&Receipt {
            jobs: vec![id.clone()],
            dead_lettered: BTreeMap::from([(id, reason.to_string())]),
            signer: crate::provenance::describe(),
            ..Receipt::default()
        });
    }

    /// Only a submission signed by a trusted submitter key, within the allowed age (or the
    /// signer's own expiry reminder): see [`crate::submission`].
    fn decode(&self, body: &[u8]) -> Result<TargetsJob> {
        self.submissions().open(body)
    }

    fn lifetimes(&self) -> Vec<std::time::Duration> {
        let expiries = &self.core.settings.expiries;
        vec![expiries.bins, expiries.targets]
    }

    /// Whether a newer version of any of our files is on disk than the one held here.
    fn is_stale(&self) -> Result<bool> {
        let versions = self.layout().scan_versions()?;
        let newest = |role: &str| {
            versions
                .get(role)
                .and_then(|v| v.last())
                .copied()
                .unwrap_or(0)
        };
        Ok(newest(Role::Targets.name()) > self.top_meta.version
            || self.state.iter().any(|b| newest(&b.name) > b.version))
    }

    /// What the snapshot signer should hold now, sent once at start: after a crash between
    /// writing bins and handing them on, this is what hands them on.
    fn resync(&self) -> Result<Option<SnapshotJob>> {
        self.every_file().signed_with(&self.core.key).map(Some)
    }

    /// Applies a batch: every touched bin gets one new version, written durably before this
    /// returns. The snapshot job lists every bin the batch named, changed or not, so that a
    /// redelivered batch (already signed before a crash) still reaches the snapshot.
    ///
    /// Of each job only what is newer than the last change to the same name is applied, in
    /// the order the jobs were issued, and the ledger records it once the files are durable
    /// (see [`crate::submission`]).
    ///
    /// A release is immutable: an add giving a name already signed other content is refused
    /// (the rest of its job applies) unless the name is mutable
    /// ([`crate::submission::Mutable`]) or the job says `replace`. What became of each
    /// submission is written to the receipts. The snapshot job goes signed with the targets
    /// key: it vouches for the hashes it lists (see `SnapshotRole::check`).
    fn apply(&mut self, jobs: &[TargetsJob]) -> Result<Applied<SnapshotJob>> {
        self.batch += 1;
        self.ledger.begin();
        let mut receipt = Receipt {
            signer: crate::provenance::describe(),
            ..Receipt::default()
        };
        let newer = self.newer_parts(jobs, &mut receipt);
        let mut changes = Changes::default();
        let mut outcome = self.apply_newer(&newer, &mut changes)?;
        let refusals = changes.refused;
        for (i, name, _) in &refusals {
            // Not applied, so not remembered: replayed from the dead letters once the name
            // is free (removed), it applies.
            self.ledger.forget(name);
            if let Some(id) = &jobs[*i].id {
                let reasons = receipt.refused.entry(id.clone()).or_default();
                reasons.insert(name.clone(), refusals_reason(&refusals, *i, name));
            }
        }
        self.ledger.commit()?;
        for issued in jobs.iter().filter_map(|job| job.issued) {
            crate::metrics::submission_written(issued);
        }
        let by_id = |list: Vec<(usize, String)>| {
            let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (i, name) in list {
                if let Some(id) = &jobs[i].id {
                    map.entry(id.clone()).or_default().push(name);
                }
            }
            map
        };
        receipt.removed = by_id(changes.removed);
        receipt.replaced = by_id(changes.replaced);
        receipt.submitters = jobs
            .iter()
            .filter_map(|j| Some((j.id.clone()?, j.submitter.clone()?)))
            .collect();
        outcome.refused = summarise(&refusals);
        if let Some(job) = outcome.next.as_ref().filter(|_| !receipt.jobs.is_empty()) {
            receipt.set_bins(&job.meta);
        }
        self.receipts.record(&receipt);
        self.let_go();
        outcome.next = outcome
            .next
            .map(|job| job.signed_with(&self.core.key))
            .transpose()?;
        Ok(outcome)
    }

    /// Refuses what the ledger cannot vouch for (see [`Ledger::check_since`]).
    fn check(&mut self, job: TargetsJob) -> Result<TargetsJob> {
        job.check()?;
        self.ledger.check_since(&job)?;
        Ok(job)
    }
}

impl TargetsRole {
    /// The snapshot job listing every file of this role, unsigned.
    fn every_file(&self) -> SnapshotJob {
        let mut meta: BTreeMap<String, MetaEntry> = self
            .state
            .iter()
            .map(|b| (listed_name(&b.name), b.meta.clone()))
            .collect();
        meta.insert(Role::Targets.file().into(), self.top_meta.clone());
        SnapshotJob {
            meta,
            ..Default::default()
        }
    }

    /// The submission policy this signer was started with.
    pub fn submissions(&self) -> &Policy {
        self.core
            .settings
            .submissions
            .as_ref()
            .expect("load refuses to start without one")
    }

    /// What of each job is newer than the ledger's record, in the order the jobs were issued,
    /// each with its index in `jobs`; `receipt` gets each job's id and the names a later job
    /// superseded.
    fn newer_parts<'j>(
        &mut self,
        jobs: &'j [TargetsJob],
        receipt: &mut Receipt,
    ) -> Vec<(usize, Cow<'j, TargetsJob>)> {
        let mut ordered: Vec<(usize, &TargetsJob)> = jobs.iter().enumerate().collect();
        ordered.sort_by_key(|(_, j)| j.issued);
        let mut newer = Vec::with_capacity(jobs.len());
        for (i, job) in ordered {
            let kept = self.ledger.newer(job);
            if let Some(id) = &job.id {
                receipt.jobs.push(id.clone());
                // Left out because a later job changed them; not the same job delivered
                // again (a redelivery, or a submitter's re-send), which was applied.
                let mut left_out = superseded_names(job, kept.as_deref());
                left_out.retain(|name| self.ledger.last_change(name) > job.issued);
                if !left_out.is_empty() {
                    receipt.superseded.insert(id.clone(), left_out);
                }
            }
            newer.extend(kept.map(|k| (i, k)));
        }
        newer
    }

    /// Applies `jobs` (each with its index in the batch), adding to `changes` each name an
    /// add may not change (with why), each name removed and each replaced. A removal leaves a
    /// tombstone, durable before the bins are written; an add of a removed release's name
    /// with other bytes is refused as a change to a signed release is.
    ///
    /// The batch goes a part at a time: a part is the bins it touches in one range of the
    /// hash space, up to half of `--held-targets` targets (all of them, in the usual batch).
    /// Each part gets every job's changes to its bins, in the jobs' order (a name lives in
    /// one bin, so each name sees its changes in order), and all but the last are written
    /// before the next is read back. A bulk import touching every bin of a repository larger
    /// than memory holds thus writes each bin once, in bounded memory.
    fn apply_newer(
        &mut self,
        jobs: &[(usize, Cow<'_, TargetsJob>)],
        changes: &mut Changes,
    ) -> Result<Applied<SnapshotJob>> {
        let mutable = self.submissions().mutable.clone();
        let mut touched = Touched::default();
        let all: Vec<usize> = touched_bins(self.bins, jobs).into_iter().collect();
        let mut rest = all.as_slice();
        while let Some(&first) = rest.first() {
            let (part, after) = rest.split_at(self.hold_part(rest)?);
            let within = first..=part[part.len() - 1];
            for (index, job) in jobs {
                self.apply_adds(*index, job, &within, &mutable, &mut touched, changes)?;
                self.apply_removes(*index, job, &within, &mutable, &mut touched, changes);
            }
            if !after.is_empty() {
                self.write_part(&mut touched)?;
            }
            rest = after;
        }
        // Durable before any bin drops a name: a crash in between removes it again, and
        // writes its tombstone again.
        self.tombstones.bury(std::mem::take(&mut touched.stones))?;
        let written = touched.written;
        self.sign_batch(jobs, touched.named, touched.changed, written)
    }

    /// Holds the first bins of `bins` (sorted) up to half of `--held-targets` targets, and at
    /// least one; returns how many. Bins held from earlier parts and batches are let go of as
    /// needed, least recently used first, so that at most `--held-targets` are held.
    fn hold_part(&mut self, bins: &[usize]) -> Result<usize> {
        let limit = self.core.settings.held_targets;
        self.batch += 1;
        let mut held = self.held_count();
        let mut part = 0;
        for (n, &i) in bins.iter().enumerate() {
            if n > 0 && part >= limit / 2 {
                return Ok(n);
            }
            let before = self.state[i].targets.as_ref().map_or(0, BTreeMap::len);
            self.hold([i])?;
            let size = self.held(i).len();
            held += size - before;
            part += size;
            if held > limit {
                // An eighth of the limit's room at once, not a bin's at a time: a part
                // lets go at most four times.
                held = self.let_go_to(limit - limit / 8, self.batch);
            }
        }
        Ok(bins.len())
    }

    /// Puts `job`'s adds to bins `within` in their (held) bins, as [`Self::judge_add`] rules.
    fn apply_adds(
        &mut self,
        index: usize,
        job: &TargetsJob,
        within: &RangeInclusive<usize>,
        mutable: &crate::submission::Mutable,
        touched: &mut Touched,
        changes: &mut Changes,
    ) -> Result<()> {
        for t in &job.add {
            let i = self.bins.index_of(&t.name) as usize;
            if !within.contains(&i) {
                continue;
            }
            let entry = entry_of(t)?;
            let free = job.replace || mutable.matches(&t.name);
            match self.judge_add(t, &entry, job.replace, free, &touched.stones) {
                Add::Unchanged => {}
                Add::Refused(why) => {
                    changes.refused.push((index, t.name.clone(), why));
                    continue;
                }
                Add::Put { replaces } => {
                    if replaces {
                        changes.replaced.push((index, t.name.clone()));
                    }
                    self.held_mut(i).insert(t.name.clone(), entry);
                    touched.changed.insert(i);
                }
            }
            touched.named.insert(i);
        }
        Ok(())
    }

    /// Takes `job`'s removals from bins `within` out of their (held) bins, each with its
    /// tombstone.
    fn apply_removes(
        &mut self,
        index: usize,
        job: &TargetsJob,
        within: &RangeInclusive<usize>,
        mutable: &crate::submission::Mutable,
        touched: &mut Touched,
        changes: &mut Changes,
    ) {
        for name in &job.remove {
            let i = self.bins.index_of(name) as usize;
            if !within.contains(&i) {
                continue;
            }
            touched.named.insert(i);
            // Looked up first: a bin is marked changed only when it is.
            let held = self.held(i).contains_key(name);
            let Some(old) = held.then(|| self.held_mut(i).remove(name)).flatten() else {
                continue;
            };
            touched.changed.insert(i);
            changes.removed.push((index, name.clone()));
            if !mutable.matches(name) || composer_p2::is_release_metadata(name) {
                touched.stones.push(Tombstone {
                    name: name.clone(),
                    length: old.length,
                    sha256: hex::encode(old.sha256),
                    removed: job.issued.unwrap_or_else(jiff::Timestamp::now),
                    by: job.submitter.clone(),
                });
            }
        }
    }

    /// Writes what the batch changed so far, its tombstones first, and lets go of what it
    /// can.
    fn write_part(&mut self, touched: &mut Touched) -> Result<()> {
        self.tombstones.bury(std::mem::take(&mut touched.stones))?;
        let changed = std::mem::take(&mut touched.changed);
        touched.written += changed.len();
        self.sign_bins(changed.into_iter().collect())?;
        self.let_go();
        Ok(())
    }

    /// How many targets are held in memory now.
    fn held_count(&self) -> usize {
        self.state
            .iter()
            .filter_map(|b| b.targets.as_ref())
            .map(BTreeMap::len)
            .sum()
    }

    /// What the batch's jobs ask for beyond their adds and removes (a bin count, a refresh),
    /// then every changed bin signed once; the snapshot job lists every bin `named`.
    fn sign_batch(
        &mut self,
        jobs: &[(usize, Cow<'_, TargetsJob>)],
        named: BTreeSet<usize>,
        changed: BTreeSet<usize>,
        written: usize,
    ) -> Result<Applied<SnapshotJob>> {
        if let Some(count) = jobs.iter().filter_map(|(_, j)| j.bins).next_back() {
            if count != self.bins.count() {
                // The adds and removes above are in the targets the new bins are made of.
                let job = self.rebin(count)?;
                return Ok(Applied::new(count as usize, Some(job)));
            }
            tracing::info!(bins = count, "already {count} bins");
        }
        // (A replica that finished this change and died before handing it on: whoever
        // reloads its files announces them; see `worker::writer::Writer::apply_locked`.)
        let force = jobs.iter().any(|(_, j)| j.refresh_expiry);
        let mut refreshed = self.refresh_expiring(force)?;
        if named.is_empty() && refreshed.is_none() {
            return Ok(Applied::new(0, None));
        }
        self.sign_bins(changed.iter().copied().collect())?;
        let job = refreshed.get_or_insert_with(SnapshotJob::default);
        for &i in &named {
            let bin = &self.state[i];
            job.meta.insert(listed_name(&bin.name), bin.meta.clone());
        }
        Ok(Applied::new(written + changed.len(), refreshed))
    }

    /// What becomes of adding `t` as `entry`: nothing when the bin already holds it; refused
    /// when it would change a release (unless `free`: replaced on purpose, or a mutable
    /// name), bring back a removed one, or change what Composer's metadata says of a
    /// released version; otherwise put in its bin. `stones` are this batch's removals.
    fn judge_add(
        &self,
        t: &NewTarget,
        entry: &Entry,
        replace: bool,
        free: bool,
        stones: &[Tombstone],
    ) -> Add {
        let old = self.held(self.bins.index_of(&t.name) as usize).get(&t.name);
        match old {
            Some(old) if old == entry => return Add::Unchanged,
            Some(old) if !free => return Add::Refused(immutable_reason(old, entry)),
            _ => {}
        }
        // Removed earlier in this batch, or before it.
        let buried = stones
            .iter()
            .rev()
            .find(|s| s.name == t.name)
            .or_else(|| self.tombstones.of(&t.name))
            .filter(|s| !s.holds(entry));
        // Composer's metadata is mutable, but not in what it says of a version already
        // released: compared with the bytes it was last signed with, present or removed.
        let p2 = (!replace && composer_p2::is_release_metadata(&t.name))
            .then(|| old.map(|o| o.sha256).or_else(|| buried?.sha256_bytes()))
            .flatten();
        if let Some(before) = p2 {
            let targets = self.core.settings.layout.targets_dir();
            if let Some(why) =
                composer_p2::refused_change(&targets, &t.name, &before, &entry.sha256)
            {
                return Add::Refused(why);
            }
        }
        match buried {
            Some(stone) if old.is_none() && !free => Add::Refused(removed_reason(stone, entry)),
            _ => Add::Put {
                replaces: old.is_some() || buried.is_some(),
            },
        }
    }

    /// Re-signs, with a fresh expiry, top-level targets and every bin that expires within the
    /// refresh window (all of them with `force`); returns the snapshot job for what it wrote.
    pub fn refresh_expiring(&mut self, force: bool) -> Result<Option<SnapshotJob>> {
        let window = self.core.settings.refresh_window;
        let force = force || self.core.new_key;
        if self.core.new_key {
            self.delegate_to_own_key()?;
        }
        let due = |expires: jiff::Timestamp, lifetime| {
            force || super::expires_within(expires, lifetime, window)
        };
        let bins: Vec<usize> = (0..self.state.len())
            .filter(|&i| due(self.state[i].expires, self.core.settings.expiries.bins))
            .collect();
        let top = due(self.top.expires, self.core.settings.expiries.targets);
        if bins.is_empty() && !top {
            return Ok(None);
        }
        tracing::info!(
            bins = bins.len(),
            top_level = top,
            "re-signing targets metadata before it expires"
        );
        let mut job = SnapshotJob::default();
        if top {
            self.top.version = signed::non_zero(self.next_top_version()?)?;
            self.top.expires =
                crate::repository::expiry::expires_in(self.core.settings.expiries.targets);
            self.write_top()?;
            job.meta
                .insert(Role::Targets.file().into(), self.top_meta.clone());
        }
        self.sign_bins(bins.clone())?;
        self.core.new_key = false;
        for i in bins {
            let bin = &self.state[i];
            job.meta.insert(listed_name(&bin.name), bin.meta.clone());
        }
        Ok(Some(job))
    }

    /// Spreads every target over `count` new bins. The published repository verifies at every
    /// moment and a crash anywhere is finished by running the job again: the new bins are
    /// written first under names no delegation uses yet, then one new top-level targets
    /// switches to them, and the snapshot job naming them all comes last. The old bins stay
    /// listed in the snapshot (clients refuse a snapshot that drops a file) but are no
    /// longer delegated.
    ///
    /// Bins are contiguous ranges of the hash space, old and new alike: the new bins are
    /// filled and written a slice at a time from the old bins that overlap the slice, so
    /// memory stays bounded at any repository size.
    fn rebin(&mut self, count: u32) -> Result<SnapshotJob> {
        let bins = HashBins::new(count)?;
        tracing::info!(
            from = self.bins.count(),
            to = count,
            "changing the number of bins"
        );
        let empty = self.empty_bins(bins)?;
        let old = Old {
            bins: self.bins,
            state: std::mem::replace(&mut self.state, empty),
        };
        self.bins = bins;
        let (half, mut moved) = (count as usize / 2, 0);
        for (range, failpoint) in [
            (0..half, "rebin:half-the-bins-written"),
            (half..count as usize, "rebin:bins-written"),
        ] {
            for slice in range.collect::<Vec<usize>>().chunks(WRITE_SLICE) {
                moved += self.fill_from(&old, slice)?;
                self.sign_bins(slice.to_vec())?;
            }
            crate::failpoint::hit(failpoint);
        }

        let version = self.next_top_version()?;
        self.top = crate::repository::build::top_targets(
            bins,
            &self.core.key,
            version,
            self.core.settings.expiries,
        )?;
        self.write_top()?;
        self.core.new_key = false;
        crate::failpoint::hit("rebin:top-written");
        tracing::info!(
            bins = count,
            targets = moved,
            targets_version = version,
            "bins changed"
        );
        Ok(self.every_file())
    }

    /// An empty bin for each of `bins`, each at a version above any of its name on disk, in
    /// the newest snapshot or signed by this signer: the name may have been a bin before (a
    /// count used earlier, since pruned, or removed by hand) or half-written by an
    /// interrupted change.
    fn empty_bins(&self, bins: HashBins) -> Result<Vec<Bin>> {
        let layout = &self.core.settings.layout;
        let on_disk = layout.scan_versions()?;
        let listed = listed_versions(layout, &RootChain::load(layout, &self.core.settings.pin)?)?;
        let now = jiff::Timestamp::now();
        Ok(bins
            .names()
            .map(|name| Bin {
                version: on_disk
                    .get(&name)
                    .and_then(|v| v.last())
                    .copied()
                    .unwrap_or(0)
                    .max(listed.get(&name).copied().unwrap_or(0))
                    .max(self.core.high_water.highest(&name).unwrap_or(0)),
                name,
                expires: now,
                meta: MetaEntry::of(0, b""),
                targets: None,
                dirty: false,
                used: 0,
            })
            .collect())
    }

    /// The version top-level targets is signed at next: checked, and above any version of it
    /// this signer signed.
    fn next_top_version(&self) -> Result<u64> {
        let (name, current) = (Role::Targets.name(), self.top.version.get());
        let path = self.core.settings.layout.versioned(name, current);
        self.core.next_version(name, current, &path)
    }

    /// Signs the held top-level targets at the version it says, writes it durably, records
    /// the version signed, and lets the one before it be pruned.
    fn write_top(&mut self) -> Result<()> {
        let layout = &self.core.settings.layout;
        let (name, version) = (Role::Targets.name(), self.top.version.get());
        let file = signed::sign(&self.top, version, &self.core.top_level_keys(), name)?;
        let path = layout.versioned(name, version);
        layout
            .staging()?
            .write_version_durably(&path, &file.bytes)?;
        layout.copy_later([path]);
        self.core.high_water.record([(name, version)])?;
        self.top_meta = file.meta;
        self.core
            .pruner
            .superseded(layout, Role::Targets, version - 1);
        Ok(())
    }

    /// Makes the delegations name this signer's key, and only it, for every bin.
    fn delegate_to_own_key(&mut self) -> Result<()> {
        let id = signed::hex_decoded(self.core.key.key_id())?;
        let delegations = self.top.delegations.as_mut().expect("checked at load");
        delegations.keys.clear();
        delegations
            .keys
            .insert(id.clone(), self.core.key.public().clone());
        for role in &mut delegations.roles {
            role.keyids = vec![id.clone()];
        }
        Ok(())
    }

    /// Gives each listed bin a new version with a fresh expiry, written durably.
    fn sign_bins(&mut self, changed: Vec<usize>) -> Result<()> {
        let expires = crate::repository::expiry::expires_in(self.core.settings.expiries.bins);
        // Bins are encoded, signed and written a slice at a time: at a million targets a
        // batch that touches every bin would otherwise hold the whole repository in memory.
        for slice in changed.chunks(WRITE_SLICE) {
            self.hold(slice.iter().copied())?;
            let layout = &self.core.settings.layout;
            let mut files = Vec::with_capacity(slice.len());
            for &i in slice {
                let bin = &mut self.state[i];
                // Checked: a file planted under an absurd version (2^64-1) would otherwise wrap.
                bin.version = self.core.next_version(
                    &bin.name,
                    bin.version,
                    &layout.versioned(&bin.name, bin.version),
                )?;
                bin.expires = expires;
                let targets = bin.targets.as_ref().expect("held above");
                let file = sign_canonical(
                    &encode_bin(targets, expires, bin.version),
                    bin.version,
                    &[&self.core.key],
                )?;
                bin.meta = file.meta;
                bin.dirty = false;
                files.push((layout.versioned(&bin.name, bin.version), file.bytes));
            }
            let refs: Vec<(PathBuf, &[u8])> = files
                .iter()
                .map(|(p, b)| (p.clone(), b.as_slice()))
                .collect();
            layout
                .staging()?
                .write_all_durably(&layout.metadata_dir(), &refs)?;
            layout.copy_later(files.iter().map(|(path, _)| path.clone()));
            let written: Vec<(&str, Written)> = slice
                .iter()
                .map(|&i| {
                    (
                        self.state[i].name.as_str(),
                        self.state[i].written(self.core.key.key_id()),
                    )
                })
                .collect();
            self.core
                .high_water
                .record_written(written.iter().map(|(name, w)| (*name, w)))?;
            self.let_go();
        }
        let layout = &self.core.settings.layout;
        for &i in &changed {
            let bin = &self.state[i];
            if bin.version > 1 {
                self.core
                    .pruner
                    .superseded(layout, &bin.name, bin.version - 1);
            }
        }
        Ok(())
    }

    /// Holds each of `bins` in memory, reading back those not held (see [`read_back`]), and
    /// marks them used by this batch.
    fn hold(&mut self, bins: impl IntoIterator<Item = usize>) -> Result<()> {
        let layout = &self.core.settings.layout;
        for i in bins {
            let bin = &mut self.state[i];
            bin.used = self.batch;
            if bin.targets.is_none() {
                bin.targets = Some(read_back(layout, bin)?);
            }
        }
        Ok(())
    }

    /// The targets of bin `i`, which [`Self::hold`] holds for this batch.
    fn held(&self, i: usize) -> &BTreeMap<String, Entry> {
        self.state[i].targets.as_ref().expect("held for the batch")
    }

    /// The targets of bin `i`, to change: it is then held until written.
    fn held_mut(&mut self, i: usize) -> &mut BTreeMap<String, Entry> {
        let bin = &mut self.state[i];
        bin.dirty = true;
        bin.targets.as_mut().expect("held for the batch")
    }

    /// Lets go of the least recently used bins, none changed and not yet written, until at
    /// most `--held-targets` targets are held.
    fn let_go(&mut self) {
        self.let_go_to(self.core.settings.held_targets, u64::MAX);
    }

    /// Lets go of the least recently used bins, none changed and not yet written and none
    /// used since `keep` (the part under way), until at most `limit` targets are held, or
    /// none of those is left; returns how many are held then.
    fn let_go_to(&mut self, limit: usize, keep: u64) -> usize {
        let mut held = self.held_count();
        if held <= limit {
            return held;
        }
        let mut clean: Vec<usize> = (0..self.state.len())
            .filter(|&i| {
                let bin = &self.state[i];
                bin.targets.is_some() && !bin.dirty && bin.used < keep
            })
            .collect();
        clean.sort_by_key(|&i| self.state[i].used);
        for i in clean {
            if held <= limit {
                break;
            }
            held -= self.state[i].targets.take().map_or(0, |t| t.len());
        }
        held
    }

    /// Fills the new bins `slice` with the targets of the `old` bins that overlap them;
    /// returns how many it moved.
    fn fill_from(&mut self, old: &Old, slice: &[usize]) -> Result<usize> {
        let (first, end) = (slice[0], slice[slice.len() - 1] + 1);
        let (new_count, old_count) = (self.bins.count() as usize, old.bins.count() as usize);
        let old_range = first * old_count / new_count..(end * old_count).div_ceil(new_count);
        for &i in slice {
            self.state[i].targets = Some(BTreeMap::new());
            self.state[i].dirty = true;
        }
        let mut moved = 0;
        for k in old_range {
            let bin = &old.state[k];
            let read;
            let targets = match &bin.targets {
                Some(targets) => targets,
                None => {
                    read = read_back(&self.core.settings.layout, bin)?;
                    &read
                }
            };
            for (name, entry) in targets {
                let i = self.bins.index_of(name) as usize;
                if (first..end).contains(&i) {
                    self.held_mut(i).insert(name.clone(), entry.clone());
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }
}

/// The bins before a change of their number, which the new ones are filled from.
struct Old {
    bins: HashBins,
    state: Vec<Bin>,
}

/// Every bin a job of `jobs` adds to or removes from.
fn touched_bins(bins: HashBins, jobs: &[(usize, Cow<'_, TargetsJob>)]) -> BTreeSet<usize> {
    jobs.iter()
        .flat_map(|(_, job)| {
            let added = job.add.iter().map(|t| t.name.as_str());
            added.chain(job.remove.iter().map(String::as_str))
        })
        .map(|name| bins.index_of(name) as usize)
        .collect()
}

/// The targets of `bin`, read back from its file, whose bytes must be those its meta entry
/// names: written by this signer, or verified by it against the delegation when it loaded
/// them (trusted from its own record; see [`crate::high_water`]). Anything else was changed
/// on the shared volume behind the signer's back.
fn read_back(layout: &Layout, bin: &Bin) -> Result<BTreeMap<String, Entry>> {
    let path = layout.versioned(&bin.name, bin.version);
    let bytes = signed::read_own(&path)?;
    if MetaEntry::of(bin.version, &bytes) != bin.meta {
        return Err(Error::Untrusted {
            path,
            reason: format!(
                "is not the file this signer wrote or verified as version {} of {} ({} bytes, \
                 sha256 {}): it was replaced on the shared volume. Restore the original (from \
                 a backup or another replica's copy) and find who else can write the \
                 repository's metadata folder",
                bin.version, bin.name, bin.meta.length, bin.meta.sha256
            ),
        });
    }
    let file: tough::schema::Signed<Targets> =
        serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
            what: "bin",
            path: path.clone(),
            source,
        })?;
    let mut targets = BTreeMap::new();
    for (name, t) in file.signed.targets {
        let entry = Entry::of(&t, &path)?;
        targets.insert(name, entry);
    }
    Ok(targets)
}

/// Every bin of `bins`, each as this signer's record says it wrote it when that is still its
/// newest version on disk (not read now), else read and verified against `delegations` (and
/// recorded, so that the next start need not read it). Holds what it read while
/// `--held-targets` allows. Returns the bins and whether this signer's key signed them all.
fn load_bins(
    core: &mut Core,
    disk: &OnDisk,
    bins: HashBins,
    delegations: &Delegations,
) -> Result<(Vec<Bin>, bool)> {
    let layout = disk.layout;
    let mut state = Vec::with_capacity(bins.count() as usize);
    let (mut verified, mut read, mut held, mut all_by_key) = (Vec::new(), 0, 0, true);
    for (index, name) in bins.names().enumerate() {
        let (mut bin, by_key) = match recorded_bin(core, disk, &name)? {
            Some(recorded) => recorded,
            None => {
                read += 1;
                let (bin, by_key) = load_bin(core, disk, (&bins, index as u32), delegations, name)?;
                if by_key {
                    verified.push((bin.name.clone(), bin.written(core.key.key_id())));
                }
                (bin, by_key)
            }
        };
        let len = bin.targets.as_ref().map_or(0, BTreeMap::len);
        if held + len > core.settings.held_targets {
            bin.targets = None;
        } else {
            held += len;
        }
        all_by_key &= by_key;
        core.pruner
            .adopt(layout, &bin.name, &disk.up_to(&bin.name, bin.version));
        state.push(bin);
    }
    tracing::info!(
        bins = state.len(),
        read,
        held_targets = held,
        "targets state loaded: the bins not read are as this signer recorded writing them, \
         checked when a job first touches one"
    );
    core.high_water
        .record_written(verified.iter().map(|(name, w)| (name.as_str(), w)))?;
    Ok((state, all_by_key))
}

/// Bin `name` as this signer's record says it wrote or verified it, when its newest version
/// on disk is that one: not read now (its bytes are checked when a job first touches it).
/// Returns it and whether this signer's key signed it.
fn recorded_bin(core: &Core, disk: &OnDisk, name: &str) -> Result<Option<(Bin, bool)>> {
    let Some(written) = core.high_water.written(name) else {
        return Ok(None);
    };
    let version = disk.newest(name)?;
    if written.meta.version != version {
        return Ok(None);
    }
    let path = disk.layout.versioned(name, version);
    check_not_older(&path, version, disk.listed(name))?;
    core.check_loaded(name, version, &path)?;
    let bin = Bin {
        name: name.to_string(),
        version,
        expires: written.expires,
        meta: written.meta.clone(),
        targets: None,
        dirty: false,
        used: 0,
    };
    Ok(Some((bin, written.key_id == core.key.key_id())))
}

fn entry_of(t: &NewTarget) -> Result<Entry> {
    let decode =
        |s: &str| hex::decode(s).map_err(|_| Error::InvalidJob(format!("{}: bad hex", t.name)));
    Ok(Entry {
        length: t.length,
        sha256: decode(&t.hashes.sha256)?
            .try_into()
            .map_err(|_| Error::InvalidJob("sha256 length".into()))?,
        sha512: decode(&t.hashes.sha512)?
            .try_into()
            .map_err(|_| Error::InvalidJob("sha512 length".into()))?,
    })
}

/// The metadata versions on disk and those the newest snapshot lists, as the targets signer
/// finds them when it loads its state.
struct OnDisk<'a> {
    layout: &'a Layout,
    versions: std::collections::HashMap<String, Vec<u64>>,
    listed: BTreeMap<String, u64>,
}

impl OnDisk<'_> {
    /// The newest version of `role` on disk; every role has one in a complete repository.
    fn newest(&self, role: &str) -> Result<u64> {
        self.versions
            .get(role)
            .and_then(|v| v.last())
            .copied()
            .ok_or_else(|| Error::Repository {
                path: self.layout.metadata_dir(),
                reason: format!("no version of {role}.json on disk; the repository is incomplete"),
            })
    }

    /// The versions of `role` on disk up to `version`, which the pruner adopts.
    fn up_to(&self, role: &str, version: u64) -> Vec<u64> {
        self.versions
            .get(role)
            .into_iter()
            .flatten()
            .copied()
            .filter(|v| *v <= version)
            .collect()
    }

    /// The version of `role` the newest snapshot lists, if any.
    fn listed(&self, role: &str) -> Option<u64> {
        self.listed.get(role).copied()
    }
}

/// Top-level targets, its newest version on disk adopted as state: verified against the
/// root's targets keys, not older than the snapshot lists (read into `disk` here), not above
/// this signer's high water. Returns it, its meta entry and its path.
fn load_top(
    core: &mut Core,
    disk: &mut OnDisk,
    chain: &RootChain,
) -> Result<(tough::schema::Signed<Targets>, MetaEntry, PathBuf)> {
    let layout = disk.layout;
    let top_version = disk.newest(Role::Targets.name())?;
    core.pruner.adopt(
        layout,
        Role::Targets,
        &disk.up_to(Role::Targets.name(), top_version),
    );
    let top_path = layout.versioned(Role::Targets, top_version);
    let (top, top_meta) =
        load_state::<Targets>(chain, &top_path, Role::Targets, Some(top_version))?;
    core.check_loaded(Role::Targets.name(), top_version, &top_path)?;
    disk.listed = listed_versions(layout, chain)?;
    check_not_older(&top_path, top_version, disk.listed(Role::Targets.name()))?;
    Ok((top, top_meta, top_path))
}

/// The delegations of top-level targets (at `top_path`), which must be this signer's hashed
/// bins, in order, each with the hash prefixes of its range; and those bins.
fn delegated_bins<'t>(top: &'t Targets, top_path: &Path) -> Result<(&'t Delegations, HashBins)> {
    let delegations = top.delegations.as_ref().ok_or_else(|| Error::Repository {
        path: top_path.into(),
        reason: "top-level targets delegates to no bins".into(),
    })?;
    let bins = HashBins::new(delegations.roles.len() as u32)?;
    for (i, role) in delegations.roles.iter().enumerate() {
        let expected = bins.prefixes(i as u32);
        let matches = role.name == bins.name(i as u32)
            && role.paths.is_none()
            && role.path_hash_prefixes.as_ref() == Some(&expected);
        if !matches {
            return Err(Error::Repository {
                path: top_path.into(),
                reason: format!(
                    "delegation {} is not the hashed bin this signer expects",
                    role.name
                ),
            });
        }
    }
    Ok((delegations, bins))
}

/// Whether top-level targets is signed by this signer's top-level keys and delegates every
/// bin to its key alone; if not, the key was rotated and every file is re-signed.
fn delegates_to_this_key(
    core: &Core,
    top: &tough::schema::Signed<Targets>,
    delegations: &Delegations,
) -> Result<bool> {
    let our_id = signed::hex_decoded(core.key.key_id())?;
    Ok(core.top_level_keys().iter().all(|k| signed_by(top, k))
        && delegations.keys.len() == 1
        && delegations.keys.contains_key(&our_id)
        && delegations
            .roles
            .iter()
            .all(|r| r.keyids == [our_id.clone()]))
}

/// Bin `name` (the `index`th of `bins`), its newest version on disk adopted as state: verified against
/// the delegation to it, not older than the snapshot lists, not above this signer's high
/// water, and holding only targets of its own hash range. Returns it and whether this
/// signer's key signed it.
fn load_bin(
    core: &Core,
    disk: &OnDisk,
    (bins, index): (&HashBins, u32),
    delegations: &Delegations,
    name: String,
) -> Result<(Bin, bool)> {
    let version = disk.newest(&name)?;
    let path = disk.layout.versioned(&name, version);
    let (bin, meta) = signed::load_verified::<Targets>(&path, "bin", |bytes| {
        verify_delegated::<IgnoredAny>(bytes, &path, delegations, &name).map(drop)
    })?;
    check_version(&path, bin.signed.version.get(), version)?;
    check_not_older(&path, version, disk.listed(&name))?;
    core.check_loaded(&name, version, &path)?;
    // The same key signs every bin: one bin's file copied under another's name verifies,
    // but lists targets that are not this bin's.
    let foreign = bin.signed.delegations.is_some()
        || bin.signed.targets.keys().any(|t| bins.index_of(t) != index);
    if foreign {
        return Err(Error::Untrusted {
            path,
            reason: format!("is not {name}: it lists targets outside its hash range"),
        });
    }
    let signed_by_key = signed_by(&bin, &core.key);
    let mut targets = BTreeMap::new();
    for (target_name, t) in bin.signed.targets {
        targets.insert(target_name, Entry::of(&t, &path)?);
    }
    let bin = Bin {
        name,
        version,
        expires: bin.signed.expires,
        meta,
        targets: Some(targets),
        dirty: false,
        used: 0,
    };
    Ok((bin, signed_by_key))
}

impl Entry {
    /// The compact form of a signed target of the bin at `path` (binary hashes).
    fn of(t: &TargetFile, path: &Path) -> Result<Entry> {
        fn digest<const N: usize>(t: &TargetFile, algorithm: &str) -> Option<[u8; N]> {
            hex::decode(t.hashes.get(algorithm)?).ok()?.try_into().ok()
        }
        Ok(Entry {
            length: t.length,
            sha256: digest(t, "sha256").ok_or_else(|| bad_hash(path))?,
            sha512: digest(t, "sha512").ok_or_else(|| bad_hash(path))?,
        })
    }
}

fn bad_hash(path: &std::path::Path) -> Error {
    Error::Repository {
        path: path.into(),
        reason:
            "a target lacks a sha256 or sha512 hash this signer wrote; was the bin edited by hand?"
                .into(),
    }
}

/// The canonical JSON of a bin's `signed` object, written directly: keys in code-point order
/// (`_type` < `expires` < `spec_version` < `targets` < `version`; `hashes` < `length`).
fn encode_bin(
    targets: &BTreeMap<String, Entry>,
    expires: jiff::Timestamp,
    version: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + targets.len() * 300);
    out.extend_from_slice(b"{\"_type\":\"targets\",\"expires\":");
    write_string(&crate::schema::expiry_string(expires), &mut out);
    out.extend_from_slice(b",\"spec_version\":");
    write_string(SPEC_VERSION, &mut out);
    out.extend_from_slice(b",\"targets\":{");
    let mut hex256 = [0u8; 64];
    let mut hex512 = [0u8; 128];
    for (i, (name, e)) in targets.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(name, &mut out);
        out.extend_from_slice(b":{\"hashes\":{\"sha256\":\"");
        hex::encode_to_slice(e.sha256, &mut hex256).expect("sized");
        out.extend_from_slice(&hex256);
        out.extend_from_slice(b"\",\"sha512\":\"");
        hex::encode_to_slice(e.sha512, &mut hex512).expect("sized");
        out.extend_from_slice(&hex512);
        out.extend_from_slice(b"\"},\"length\":");
        out.extend_from_slice(e.length.to_string().as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"},\"version\":");
    out.extend_from_slice(version.to_string().as_bytes());
    out.push(b'}');
    out
}

/// Why an add of `name` is refused: it is signed already, with other content.
fn immutable_reason(old: &Entry, new: &Entry) -> String {
    format!(
        "already signed with other content (sha256 {}…, {} bytes; this submission: sha256 \
         {}…, {} bytes): a release, once signed, does not change. Remove it first \
         (tuf-client remove-targets) or submit it with --replace if replacing it is intended",
        &hex::encode(old.sha256)[..16],
        old.length,
        &hex::encode(new.sha256)[..16],
        new.length
    )
}

/// Why an add of `name`, removed since it was signed, is refused: it had other bytes.
fn removed_reason(stone: &Tombstone, new: &Entry) -> String {
    format!(
        "was signed with other content (sha256 {}…, {} bytes) and removed at {}{}; this \
         submission: sha256 {}…, {} bytes. A release keeps its bytes across removal: submit it \
         with --replace if publishing other bytes under this name is intended",
        stone.sha256.chars().take(16).collect::<String>(),
        stone.length,
        stone.removed,
        stone
            .by
            .as_deref()
            .map(|k| format!(
                " by submitter key {}…",
                k.chars().take(16).collect::<String>()
            ))
            .unwrap_or_default(),
        &hex::encode(new.sha256)[..16],
        new.length
    )
}

impl Tombstone {
    /// The sha256 of the bytes it holds.
    fn sha256_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.sha256).ok()?.try_into().ok()
    }

    /// Whether it holds `entry`'s bytes (length and sha256).
    fn holds(&self, entry: &Entry) -> bool {
        self.length == entry.length && self.sha256 == hex::encode(entry.sha256)
    }
}

/// The reason recorded for one refused name of job `index`.
fn refusals_reason(refused: &[(usize, String, String)], index: usize, name: &str) -> String {
    refused
        .iter()
        .find(|(i, n, _)| *i == index && n == name)
        .map(|(_, _, why)| why.clone())
        .unwrap_or_default()
}

/// One dead-letter reason per job with refused names: every name, and why.
fn summarise(refused: &[(usize, String, String)]) -> Vec<Refusal> {
    let mut by_job: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, name, why) in refused {
        by_job.entry(*i).or_default().push(format!("{name}: {why}"));
    }
    by_job
        .into_iter()
        .map(|(job, names)| Refusal {
            job,
            reason: format!(
                "{} target(s) refused, the rest of the job applied: {}",
                names.len(),
                names.join("; ")
            ),
        })
        .collect()
}

/// The names of `job` the ledger left out of `kept` (all of them when nothing was kept).
fn superseded_names(job: &TargetsJob, kept: Option<&TargetsJob>) -> Vec<String> {
    let names = |j: &TargetsJob| -> BTreeSet<String> {
        j.add
            .iter()
            .map(|t| t.name.clone())
            .chain(j.remove.iter().cloned())
            .collect()
    };
    match kept {
        Some(k) if std::ptr::eq(k, job) => Vec::new(),
        Some(k) => names(job).difference(&names(k)).cloned().collect(),
        None => names(job).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical;

    #[test]
    fn direct_bin_encoding_equals_generic_canonical_json() {
        let mut targets = BTreeMap::new();
        for name in ["pkgs/foo", "pkgs/foo bar", "caf\u{e9}/1.0.0.0", "q\"uote"] {
            targets.insert(
                name.to_string(),
                Entry {
                    length: 42,
                    sha256: [7; 32],
                    sha512: [9; 64],
                },
            );
        }
        let expires = "2030-01-01T00:00:00Z".parse().unwrap();
        let mut value = serde_json::json!({
            "_type": "targets", "expires": "2030-01-01T00:00:00Z", "spec_version": SPEC_VERSION,
            "version": 3, "targets": {}
        });
        for name in targets.keys() {
            value["targets"][name] = serde_json::json!({
                "length": 42,
                "hashes": {"sha256": hex::encode([7u8; 32]), "sha512": hex::encode([9u8; 64])}
            });
        }
        let encoded = encode_bin(&targets, expires, 3);
        assert_eq!(encoded, canonical::value_to_vec(&value, "t").unwrap());
        let parsed: Targets = serde_json::from_slice(&encoded).expect("the schema parses a bin");
        assert_eq!(parsed.targets.len(), 4);
    }
}
