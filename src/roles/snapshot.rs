//! The snapshot signer: folds every waiting targets job into one new snapshot version.

use std::collections::{BTreeMap, HashSet};

use crate::schema::{role_of_listed, Snapshot};
use tough::schema::RoleType;

use super::stage::{Applied, Core, Stage};
use super::{check_version, load_state, read_verified, voucher_of, vouches, RoleSettings};
use crate::bins::HashBins;
use crate::canonical::write_string;
use crate::jobs::{check_meta, SnapshotJob, TimestampJob, Vouching};
use crate::keys;
use crate::keys::RoleKeys;
use crate::repository::signed::sign_canonical;
use crate::repository::{MetaEntry, SPEC_VERSION};
use crate::role::Role;
use crate::schema::{Delegations, Header};
use crate::trusted::RootChain;
use crate::verify::verify_delegated;
use crate::{Error, Result};
use tough::schema::key::Key;

/// The snapshot signer's state: the snapshot as last signed and what it lists.
#[derive(Debug)]
pub struct SnapshotRole {
    core: Core,
    version: u64,
    expires: jiff::Timestamp,
    meta: BTreeMap<String, MetaEntry>,
    own: MetaEntry,
    /// The roots, to check top-level targets against.
    chain: RootChain,
    /// The newest top-level targets verified so far, `(version, delegations)`: what the bins
    /// a job names are checked against.
    delegations: Option<(u64, Delegations)>,
    /// The bins a job's signer alone may sign, under a top-level targets version: worked out
    /// once per version and key (16,384 names at 16,384 bins), not once a job.
    vouched: Option<(u64, Option<Key>, HashSet<String>)>,
}

impl SnapshotRole {
    /// Loads the signer's state from the repository, verified against the root chain from the pin.
    pub fn load(settings: RoleSettings, keys: RoleKeys) -> Result<SnapshotRole> {
        let layout = &settings.layout.clone();
        let chain = RootChain::load(layout, &settings.pin)?;
        let versions = layout.scan_versions()?;
        let all = versions
            .get(Role::Snapshot.name())
            .cloned()
            .unwrap_or_default();
        let version = *all.last().ok_or_else(|| Error::Repository {
            path: layout.metadata_dir(),
            reason: "no N.snapshot.json on disk; the repository is incomplete".into(),
        })?;
        let path = layout.versioned(Role::Snapshot, version);
        let (snapshot, own) = load_state::<Snapshot>(&chain, &path, Role::Snapshot, Some(version))?;
        let mut meta = BTreeMap::new();
        for (name, m) in &snapshot.signed.meta {
            let entry = MetaEntry::from_metafile(m).ok_or_else(|| Error::Repository {
                path: path.clone(),
                reason: format!("{name} has no length or sha256; this signer always writes both"),
            })?;
            crate::repository::signed::check_ceiling(entry.version, &path)?;
            meta.insert(name.clone(), entry);
        }
        let on_disk: Vec<u64> = all.iter().copied().filter(|v| *v <= version).collect();
        let mut core = Core::new(settings, Role::Snapshot, keys, &chain)?;
        core.check_loaded(Role::Snapshot.name(), version, &path)?;
        core.pruner.adopt(layout, Role::Snapshot, &on_disk);
        // Its gzip copy, if it has none yet (a start after a stop, or an upgrade).
        layout.copy_later([path.clone()]);
        core.check_signed_by_key(&snapshot, Role::Snapshot);
        Ok(SnapshotRole {
            core,
            chain,
            delegations: None,
            vouched: None,
            version,
            expires: snapshot.signed.expires,
            meta,
            own,
        })
    }
}

impl Stage for SnapshotRole {
    fn published(&self) -> Vec<(&'static str, u64, jiff::Timestamp)> {
        vec![(Role::Snapshot.name(), self.version, self.expires)]
    }

    const ROLE: Role = Role::Snapshot;
    type Job = SnapshotJob;
    type Next = TimestampJob;

    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    /// Whether another replica has written a newer snapshot than the one held here.
    fn is_stale(&self) -> Result<bool> {
        Ok(self
            .layout()
            .newest(Role::Snapshot)?
            .is_some_and(|v| v > self.version))
    }

    /// A job may only name targets.json and hashed bins (of any bin count: a change of the
    /// count brings new names). Its entries are hints: each file newer than the one listed
    /// is read and verified (top-level targets against the root's targets keys, a bin against
    /// the keys the newest top-level targets delegates it to), and its version, length and
    /// sha256 are taken from the bytes. A file that does not verify, or was never written,
    /// refuses the whole job (see [`read_named`]).
    ///
    /// The targets signer signs its jobs. When one of those keys signed the job and alone
    /// meets the threshold for a file, its signature vouches for the sha256 listed: the
    /// file's bytes must hash to it, and its own signature is not checked again (a thousand
    /// bins cost one signature check, not a thousand). Otherwise each file's signatures are.
    fn check(&mut self, mut job: SnapshotJob) -> Result<SnapshotJob> {
        check_names(&job)?;
        self.chain.refresh(&self.core.settings.layout)?;
        // Before anything is taken out of the job: the signature covers all of it.
        let voucher = self.voucher(&job)?;
        // What is not newer than what is listed changes nothing (a redelivery, a resync).
        job.meta
            .retain(|name, hint| self.meta.get(name).is_none_or(|m| hint.version > m.version));
        // Top-level targets first: the bins are checked against its delegations.
        self.check_top_level(&mut job, voucher.as_ref())?;
        self.check_bins(&mut job, voucher.as_ref())?;
        Ok(job)
    }

    /// The timestamp job for the current snapshot, signed with the snapshot key: it vouches
    /// for the snapshot's hash (see `TimestampRole::check`).
    fn resync(&self) -> Result<Option<TimestampJob>> {
        let job = TimestampJob {
            snapshot: Some(self.own.clone()),
            ..Default::default()
        };
        job.signed_with(&self.core.key).map(Some)
    }

    /// Takes every newer version the jobs carry; writes one snapshot if anything moved.
    /// Always hands on the timestamp job for the current snapshot (a redelivered batch,
    /// signed before a crash, still reaches the timestamp).
    fn apply(&mut self, jobs: &[SnapshotJob]) -> Result<Applied<TimestampJob>> {
        let mut changed = false;
        for job in jobs {
            for (name, entry) in &job.meta {
                // Files are never dropped: clients refuse a snapshot that lists fewer files
                // than the last (§5.5.5), so bins of an earlier bin count stay listed.
                match self.meta.get_mut(name) {
                    None => {
                        self.meta.insert(name.clone(), entry.clone());
                        changed = true;
                    }
                    Some(current) if entry.version > current.version => {
                        *current = entry.clone();
                        changed = true;
                    }
                    Some(current) if entry.version == current.version && entry != current => {
                        tracing::warn!(file = %name, version = entry.version,
                            "two different files claim the same version; keeping the first");
                    }
                    Some(current) if entry.version < current.version => {
                        // Normal for a redelivered job; worth a look when it persists.
                        tracing::debug!(file = %name, offered = entry.version, listed = current.version,
                            "older version than the one listed; ignored");
                    }
                    Some(_) => {}
                }
            }
        }
        let force = jobs.iter().any(|j| j.refresh_expiry);
        let expiring = self
            .core
            .expiring(self.expires, self.core.settings.expiries.snapshot);
        if changed || force || expiring {
            self.sign_new_version()?;
        }
        Ok(Applied::new(usize::from(changed), self.resync()?))
    }
}

impl SnapshotRole {
    /// The newer top-level targets the job names, if any, read and verified against the
    /// root's targets keys (or vouched for by `voucher`); its entry is taken from its bytes,
    /// and its delegations become those the bins are checked against.
    fn check_top_level(&mut self, job: &mut SnapshotJob, voucher: Option<&Key>) -> Result<()> {
        let Some(hint) = job.meta.get(Role::Targets.file()).cloned() else {
            return Ok(());
        };
        let root = &self.chain.current;
        let vouched = voucher
            .filter(|k| {
                vouches(
                    root.threshold_of(RoleType::Targets),
                    &root.keys_of(RoleType::Targets),
                    k,
                )
            })
            .map(|_| &hint);
        // Parsed even when vouched for: its delegations are what the bins are checked against.
        let entry = read_verified(
            &self.core.settings.layout,
            (Role::Targets, hint.version),
            (vouched, true),
            |bytes, path| self.chain.verify_role(bytes, path, RoleType::Targets),
        )?;
        let Some((header, entry)) = entry else {
            job.meta.remove(Role::Targets.file());
            return Ok(());
        };
        // Bins are signed with the same key: a bin planted as N.targets.json would verify,
        // and clients would find no delegations and so no targets.
        let Some(d) = header.delegations.filter(|d| !d.roles.is_empty()) else {
            return Err(Error::InvalidJob(format!(
                "targets.json version {}: delegates to no bin",
                hint.version
            )));
        };
        if self
            .delegations
            .as_ref()
            .is_none_or(|(v, _)| *v < hint.version)
        {
            self.delegations = Some((hint.version, d));
        }
        job.meta.insert(Role::Targets.file().into(), entry);
        Ok(())
    }

    /// The newer bins the job names, read and verified (in parallel) against the keys the
    /// newest top-level targets delegates them to, or vouched for by `voucher`; each entry
    /// is taken from the file's bytes.
    fn check_bins(&mut self, job: &mut SnapshotJob, voucher: Option<&Key>) -> Result<()> {
        let bins: Vec<(String, MetaEntry)> = job
            .meta
            .iter()
            .filter(|(name, _)| *name != Role::Targets.file())
            .map(|(name, hint)| (name.clone(), hint.clone()))
            .collect();
        if bins.is_empty() {
            return Ok(());
        }
        let layout = self.core.settings.layout.clone();
        self.delegations()?;
        let (version, delegations) = self.delegations.as_ref().expect("set above");
        let same = |k: &Option<Key>| match (k, voucher) {
            (Some(a), Some(b)) => keys::same_key(a, b),
            (None, None) => true,
            _ => false,
        };
        if !self
            .vouched
            .as_ref()
            .is_some_and(|(v, k, _)| v == version && same(k))
        {
            let names = vouched_bins(delegations, voucher);
            self.vouched = Some((*version, voucher.cloned(), names));
        }
        let vouched_for = &self.vouched.as_ref().expect("set above").2;
        let checked = in_parallel(&bins, |(name, hint)| {
            let role = role_of_listed(name).unwrap_or(name);
            let vouched = vouched_for.contains(role).then_some(hint);
            read_verified(
                &layout,
                (role, hint.version),
                (vouched, false),
                |bytes, path| verify_delegated(bytes, path, delegations, role),
            )
        });
        for ((name, _), entry) in bins.into_iter().zip(checked) {
            match entry? {
                Some((_, entry)) => job.meta.insert(name, entry),
                None => job.meta.remove(&name),
            };
        }
        Ok(())
    }

    /// The key that signed `job`, if it is one of the root's targets keys or of the keys the
    /// bins are delegated to: it vouches for the hashes the job lists. `None` for an unsigned
    /// job (its files' own signatures are checked); a signature no such key made refuses it.
    fn voucher(&mut self, job: &SnapshotJob) -> Result<Option<Key>> {
        let mut candidates: Vec<Key> = self
            .chain
            .current
            .keys_of(RoleType::Targets)
            .into_iter()
            .cloned()
            .collect();
        candidates.extend(self.delegations()?.keys.values().cloned());
        voucher_of(
            job,
            candidates,
            "the targets role or of the bins' delegations",
        )
    }

    /// The delegations of the newest top-level targets verified. The first time: of the
    /// listed one, or, if it was pruned while this signer was down, the newest on disk.
    fn delegations(&mut self) -> Result<&Delegations> {
        if self.delegations.is_none() {
            let layout = &self.core.settings.layout;
            let listed = self.meta.get(Role::Targets.file()).map(|m| m.version);
            let version = match listed.filter(|v| layout.versioned(Role::Targets, *v).is_file()) {
                Some(v) => v,
                None => layout
                    .newest(Role::Targets)?
                    .ok_or_else(|| Error::Repository {
                        path: layout.metadata_dir(),
                        reason: "no N.targets.json on disk; the repository is incomplete".into(),
                    })?,
            };
            let path = layout.versioned(Role::Targets, version);
            let bytes = std::fs::read(&path).map_err(Error::io("cannot read metadata", &path))?;
            let top: Header = self.chain.verify_role(&bytes, &path, RoleType::Targets)?;
            check_version(&path, top.version.get(), version)?;
            self.delegations = Some((version, top.delegations.unwrap_or_default()));
        }
        Ok(&self.delegations.as_ref().expect("set above").1)
    }

    fn sign_new_version(&mut self) -> Result<()> {
        let name = Role::Snapshot.name();
        let layout = &self.core.settings.layout;
        self.version =
            self.core
                .next_version(name, self.version, &layout.versioned(name, self.version))?;
        self.expires = crate::repository::expiry::expires_in(self.core.settings.expiries.snapshot);
        let file = sign_canonical(
            &self.encode(&crate::schema::expiry_string(self.expires)),
            self.version,
            &self.core.top_level_keys(),
        )?;
        let layout = &self.core.settings.layout;
        let path = layout.versioned(Role::Snapshot, self.version);
        layout
            .staging()?
            .write_version_durably(&path, &file.bytes)?;
        layout.copy_later([path]);
        self.core.high_water.record([(name, self.version)])?;
        self.own = file.meta;
        self.core.new_key = false;
        self.core
            .pruner
            .superseded(layout, Role::Snapshot, self.version - 1);
        Ok(())
    }

    /// Canonical JSON of the `signed` object, written directly (it is rewritten every batch).
    fn encode(&self, expires: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.meta.len() * 160);
        out.extend_from_slice(b"{\"_type\":\"snapshot\",\"expires\":");
        write_string(expires, &mut out);
        out.extend_from_slice(b",\"meta\":{");
        for (i, (name, m)) in self.meta.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(name, &mut out);
            out.extend_from_slice(b":{\"hashes\":{\"sha256\":\"");
            out.extend_from_slice(m.sha256.as_bytes());
            out.extend_from_slice(b"\"},\"length\":");
            out.extend_from_slice(m.length.to_string().as_bytes());
            out.extend_from_slice(b",\"version\":");
            out.extend_from_slice(m.version.to_string().as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"},\"spec_version\":");
        write_string(SPEC_VERSION, &mut out);
        out.extend_from_slice(b",\"version\":");
        out.extend_from_slice(self.version.to_string().as_bytes());
        out.push(b'}');
        out
    }
}

/// A job names only targets.json and hashed bins (of any bin count: a change of the count
/// brings new names), each entry well formed, and at least one file unless it asks for an
/// expiry check or refresh.
fn check_names(job: &SnapshotJob) -> Result<()> {
    if job.meta.is_empty() && !job.refresh_expiry && !job.check_expiry {
        return Err(Error::InvalidJob("the job names no metadata file".into()));
    }
    for (name, entry) in &job.meta {
        let known =
            name == Role::Targets.file() || role_of_listed(name).is_some_and(HashBins::is_bin_name);
        if !known {
            return Err(Error::InvalidJob(format!(
                "{name}: unknown role; the snapshot lists targets.json and hashed bins only"
            )));
        }
        check_meta(name, entry)?;
    }
    Ok(())
}

/// The bins `voucher` (the job's signer) alone may sign: decided once, not once a bin.
fn vouched_bins(delegations: &Delegations, voucher: Option<&Key>) -> HashSet<String> {
    let Some(key) = voucher else {
        return Default::default();
    };
    delegations
        .roles
        .iter()
        .filter(|r| {
            let keys: Vec<&Key> = r
                .keyids
                .iter()
                .filter_map(|id| delegations.keys.get(id))
                .collect();
            vouches(r.threshold.get(), &keys, key)
        })
        .map(|r| r.name.clone())
        .collect()
}

/// `f` over `items` on every core, results in order: a batch of a thousand bins is a
/// thousand signature checks.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(items.len().div_ceil(64));
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a verification thread panicked"))
            .collect()
    })
}
