//! A signer's health, as its container's health check asks it (`tuf-signer health`): the
//! record a running signer keeps in its state folder, `STATE/health.ROLE.json` (written whole
//! every [`HEARTBEAT`] by the worker, `src/worker/health.rs`), and the rules that judge it
//! together with the role's newest metadata in the repository.
//!
//! A signer is unhealthy when (one [`Finding`] each, saying what to do next):
//! - **alive**: there is no record, the signer stopped, or its heartbeat is older than
//!   [`Rules::stale_after`] (60 s by default; it beats every 5 s): it is dead or hung;
//! - **key**: its key's last attempt failed: the probe it signs every 30 s (a fixed message,
//!   checked against the key's public key, so that a key that cannot sign is seen while idle)
//!   or a batch that could not sign;
//! - **metadata**: it is not a standby (a hot standby waits; the active replica re-signs) and a
//!   file it keeps expires within half its refresh margin. A signer re-signs once less than
//!   `refresh_window` of the lifetime is left (half, by default); by half of that (a quarter of
//!   the lifetime: a 1-day timestamp with 6 hours left) it has failed to for a long while.
//!   This is the window `tuf-client validate` reports by. [`Rules::expires_within`]
//!   (`--expires-within`) sets one window for every file instead.
//!
//! The top-level files (`timestamp.json`, the newest `N.snapshot.json`, `N.targets.json`) are
//! read from the repository, whoever wrote them; the bins by the record (the first bin to
//! expire, as the targets signer last saw them: reading every bin each time would cost too
//! much).
//!
//! Invariant: judging only reads, and [`judge`] does no I/O at all. A health check is no trust
//! decision: expiries are read without checking signatures (clients and `validate` do that).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::repository::expiry::show_duration;
use crate::repository::Layout;
use crate::role::Role;
use crate::{Error, Result};

/// How often a running signer rewrites its record.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often a running signer signs [`PROBE`] with its key, by default (`run --key-probe`).
pub const KEY_PROBE: Duration = Duration::from_secs(30);
/// What the key probe signs: never a metadata file or a job (neither parses as this).
pub const PROBE: &[u8] = b"package-signing key probe: this signs nothing";

/// What a signer is doing, as its record says.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Activity {
    /// Loaded, not yet connected to its queue.
    Starting,
    /// Connected, but the broker gives its queue to another replica: a hot standby.
    Standby,
    /// Taking batches off its queue.
    Active,
    /// The pause switch is on (targets): jobs wait, its expiry refresh goes on.
    Paused,
    /// Its queue was lost (the broker, or a batch that failed): waiting to connect again.
    Reconnecting,
    /// Stopped (Ctrl-C, SIGTERM, or an error a restart cannot fix).
    Stopped,
}

impl Activity {
    /// Whether this signer is the one re-signing its role: every replica but a standby
    /// (and one not yet connected, which decides at once when it connects).
    pub fn signs(self) -> bool {
        !matches!(self, Activity::Standby | Activity::Starting)
    }

    fn name(self) -> &'static str {
        match self {
            Activity::Starting => "starting",
            Activity::Standby => "standby",
            Activity::Active => "active",
            Activity::Paused => "paused",
            Activity::Reconnecting => "reconnecting",
            Activity::Stopped => "stopped",
        }
    }
}

/// A file a signer keeps current: its version and expiry as the signer last saw them, and
/// the lifetime it signs it with.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Kept {
    /// `timestamp`, `snapshot`, `targets` or `bins` (the first bin to expire).
    pub what: String,
    /// Its version (`bins`: the newest bin's).
    pub version: u64,
    /// When it expires.
    pub expires: Timestamp,
    /// The lifetime this signer gives it, in seconds (`--expire-*`).
    pub lifetime_seconds: u64,
}

/// How the signer's key fared, last it was tried.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct KeyHealth {
    /// The key's id (never the key).
    pub key_id: String,
    /// When it last signed and the signature verified (a probe, or a batch that wrote).
    pub signed_at: Option<Timestamp>,
    /// When it last failed, and why.
    pub failed_at: Option<Timestamp>,
    /// Why it failed then (the holder's error: a token gone, a signature that does not verify).
    pub error: Option<String>,
}

impl KeyHealth {
    /// Whether the last attempt failed.
    pub fn fails(&self) -> bool {
        match (self.failed_at, self.signed_at) {
            (Some(failed), Some(signed)) => failed >= signed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// What a running signer says of itself, in `STATE/health.ROLE.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Record {
    /// The role it signs.
    pub role: String,
    /// Its process id.
    pub pid: u32,
    /// Its build ([`crate::provenance::BUILD`]).
    pub build: String,
    /// What it is doing.
    pub activity: Activity,
    /// When it last wrote this record: every [`HEARTBEAT`] while it runs.
    pub heartbeat: Timestamp,
    /// When it started.
    pub started: Timestamp,
    /// When it last wrote a file of its role.
    pub published_at: Option<Timestamp>,
    /// The files it keeps current.
    pub kept: Vec<Kept>,
    /// It re-signs a file once less than this fraction of its lifetime is left.
    pub refresh_window: f64,
    /// Its key.
    pub key: KeyHealth,
}

impl Record {
    /// A signer of `role` starting now, its key `key_id`.
    pub fn new(role: Role, key_id: &str, refresh_window: f64, now: Timestamp) -> Record {
        Record {
            role: role.name().to_string(),
            pid: std::process::id(),
            build: crate::provenance::BUILD.to_string(),
            activity: Activity::Starting,
            heartbeat: now,
            started: now,
            published_at: None,
            kept: Vec::new(),
            refresh_window,
            key: KeyHealth {
                key_id: key_id.to_string(),
                ..KeyHealth::default()
            },
        }
    }

    /// Where `role`'s record is in the state folder `state`.
    pub fn file(state: &Path, role: &str) -> PathBuf {
        state.join(format!("health.{role}.json"))
    }

    /// Writes it whole into the state folder `state` (no fsync: it is rewritten every few
    /// seconds, and means nothing after a restart).
    pub fn write(&self, state: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("a record serialises");
        crate::durable::write_whole(&Record::file(state, &self.role), &bytes)
    }

    /// The record at `path`; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Record>> {
        let bytes = match crate::durable::read_plain(path, 1 << 20) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read the health record", path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Parse {
                what: "health record",
                path: path.into(),
                source,
            })
    }
}

/// The thresholds of `tuf-signer health`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// A heartbeat older than this: the signer is dead or hung (`--stale-after`).
    pub stale_after: Duration,
    /// One window for every file (`--expires-within`); `None`: each file's own, half its
    /// refresh margin.
    pub expires_within: Option<Duration>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            stale_after: Duration::from_secs(60),
            expires_within: None,
        }
    }
}

/// One check's verdict: one line of `tuf-signer health`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Whether it passed.
    pub healthy: bool,
    /// What was found and, when it failed, what to do next.
    pub says: String,
}

impl Finding {
    fn ok(says: String) -> Finding {
        Finding {
            healthy: true,
            says,
        }
    }

    fn fail(says: String) -> Finding {
        Finding {
            healthy: false,
            says,
        }
    }
}

/// A file's newest version and expiry on disk, or why it could not be read.
pub type OnDisk = std::result::Result<(u64, Timestamp), String>;

/// Judges `record` at `now` by `rules`, with what the repository holds of the files it keeps
/// (`on_disk`, by [`Kept::what`]; a file not there is judged as the record last saw it).
pub fn judge(
    record: &Record,
    on_disk: &BTreeMap<String, OnDisk>,
    now: Timestamp,
    rules: &Rules,
) -> Vec<Finding> {
    let mut findings = vec![alive(record, now, rules)];
    if findings[0].healthy {
        findings.push(key(&record.key, now));
    }
    if !record.activity.signs() {
        findings.push(Finding::ok(format!(
            "metadata: not judged, this replica is {} (the active replica re-signs)",
            record.activity.name()
        )));
        return findings;
    }
    for kept in &record.kept {
        let seen = on_disk
            .get(&kept.what)
            .cloned()
            .unwrap_or(Ok((kept.version, kept.expires)));
        findings.push(match seen {
            Ok((version, expires)) => metadata(record, kept, version, expires, now, rules),
            Err(e) => Finding::fail(format!("{}: {e}", label(&kept.what))),
        });
    }
    findings
}

/// Whether the signer runs: a fresh heartbeat, and not stopped.
fn alive(record: &Record, now: Timestamp, rules: &Rules) -> Finding {
    let pid = record.pid;
    let ago = since(record.heartbeat, now);
    if record.activity == Activity::Stopped {
        return Finding::fail(format!(
            "alive: no, the signer (pid {pid}) stopped at {}: its log says why; start it again",
            whole(record.heartbeat)
        ));
    }
    if ago > rules.stale_after {
        return Finding::fail(format!(
            "alive: no heartbeat for {} (last at {}; more than --stale-after {}): the signer \
             (pid {pid}) is dead or hung; see its log, then restart it",
            show(ago),
            whole(record.heartbeat),
            show(rules.stale_after)
        ));
    }
    Finding::ok(format!(
        "alive: heartbeat {} ago (pid {pid}, {}, build {})",
        show(ago),
        record.activity.name(),
        record.build
    ))
}

/// Whether the key signed the last time it was tried.
fn key(key: &KeyHealth, now: Timestamp) -> Finding {
    let id = &key.key_id;
    if key.fails() {
        return Finding::fail(format!(
            "key {id}: cannot sign since {} ({}): nothing is signed and jobs wait in the queue \
             (the signer retries); check the key's token or service, then look for \"key can \
             sign again\" in the signer's log",
            key.failed_at
                .map_or_else(|| "?".into(), |t| whole(t).to_string()),
            key.error.as_deref().unwrap_or("no reason given")
        ));
    }
    Finding::ok(match key.signed_at {
        Some(at) => format!("key {id}: signed {} ago", show(since(at, now))),
        None => format!("key {id}: not probed yet"),
    })
}

/// Whether a file the signer keeps is far enough from expiring.
fn metadata(
    record: &Record,
    kept: &Kept,
    version: u64,
    expires: Timestamp,
    now: Timestamp,
    rules: &Rules,
) -> Finding {
    let lifetime = Duration::from_secs(kept.lifetime_seconds);
    let resign = lifetime.mul_f64(record.refresh_window.clamp(0.0, 1.0));
    let window = rules.expires_within.unwrap_or(resign / 2);
    let file = label(&kept.what);
    let left = expires.as_second() - now.as_second();
    let so = format!(
        "this {} signer re-signs it once {} are left and has not: see its log for failing \
         batches (key, disk, broker), or ask with `tuf-client refresh-expiry --role {}`",
        record.activity.name(),
        show(resign),
        record.role
    );
    if left <= 0 {
        return Finding::fail(format!(
            "{file} v{version}: expired {} ago (at {expires}): clients refuse the repository; {so}",
            show(Duration::from_secs(left.unsigned_abs()))
        ));
    }
    let left = Duration::from_secs(left.unsigned_abs());
    if left < window {
        return Finding::fail(format!(
            "{file} v{version}: expires in {} (at {expires}), within {}; {so}",
            show(left),
            show(window)
        ));
    }
    Finding::ok(format!(
        "{file} v{version}: expires in {} (re-signed with {} left; unhealthy within {})",
        show(left),
        show(resign),
        show(window)
    ))
}

/// `d` to the two largest units, as [`show_duration`] writes them: `6d 23h`, `59m 53s`.
fn show(d: Duration) -> String {
    let all = show_duration(d);
    all.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// `at` to the whole second, as the findings show times.
fn whole(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// A kept file as the findings name it.
fn label(what: &str) -> String {
    match what {
        "bins" => "bins (the first to expire)".into(),
        what => format!("{what}.json"),
    }
}

/// How long ago `at` was, at `now` (zero for a time to come), in whole seconds.
fn since(at: Timestamp, now: Timestamp) -> Duration {
    Duration::from_secs(u64::try_from(now.as_second() - at.as_second()).unwrap_or(0))
}

/// Reads the newest version of each top-level file `record` keeps from the repository in
/// `layout` (the bins are left to the record).
pub fn on_disk(record: &Record, layout: &Layout) -> BTreeMap<String, OnDisk> {
    record
        .kept
        .iter()
        .filter(|k| k.what != Role::Bins.name())
        .map(|k| (k.what.clone(), newest_on_disk(layout, &k.what, k.version)))
        .collect()
}

/// The version and expiry of the newest `what` in `layout`: `timestamp.json`, else the
/// highest `N.WHAT.json`, looked for upwards from `known` (a `stat` a version), or by a scan
/// of the folder when `known` is gone (pruned).
fn newest_on_disk(layout: &Layout, what: &str, known: u64) -> OnDisk {
    let path = if what == Role::Timestamp.name() {
        layout.timestamp()
    } else {
        let mut newest = known;
        if !layout.versioned(what, newest).is_file() {
            newest = layout
                .newest(what)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no version in {}", layout.metadata_dir().display()))?;
        }
        while layout.versioned(what, newest + 1).is_file() {
            newest += 1;
        }
        layout.versioned(what, newest)
    };
    #[derive(Deserialize)]
    struct Head {
        version: u64,
        expires: Timestamp,
    }
    #[derive(Deserialize)]
    struct Envelope {
        signed: Head,
    }
    let bytes = crate::durable::read_plain(&path, 1 << 28)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: Envelope = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not TUF metadata: {e}", path.display()))?;
    Ok((file.signed.version, file.signed.expires))
}

/// Each signer's findings in the state folder `state`: `role`'s alone, or every record
/// there (`run --all` keeps three), as `(role, findings)`. No record at all is one failed
/// finding, saying where it looked.
pub fn check(
    state: &Path,
    layout: &Layout,
    role: Option<Role>,
    rules: &Rules,
) -> Result<Vec<(String, Vec<Finding>)>> {
    let files = match role {
        Some(role) => vec![(role.name().to_string(), Record::file(state, role.name()))],
        None => records_in(state)?,
    };
    let now = Timestamp::now();
    let mut out = Vec::new();
    for (role, file) in files {
        let findings = match Record::read(&file)? {
            Some(record) => judge(&record, &on_disk(&record, layout), now, rules),
            None => vec![no_record(&file)],
        };
        out.push((role, findings));
    }
    if out.is_empty() {
        let pattern = Record::file(state, "ROLE");
        out.push(("signer".into(), vec![no_record(&pattern)]));
    }
    Ok(out)
}

fn no_record(file: &Path) -> Finding {
    Finding::fail(format!(
        "alive: no health record {}: the signer has not started, or runs with another state \
         folder (give this command the signer's --state or TUF_STATE, and its --role)",
        file.display()
    ))
}

/// The records in `state`, by role.
fn records_in(state: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(state) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("cannot list the state folder", state)(e)),
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            let role = name.strip_prefix("health.")?.strip_suffix(".json")?;
            Some((role.to_string(), entry.path()))
        })
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    /// An active timestamp signer at time 0, its 1-day timestamp expiring in `left` hours.
    fn timestamp_signer(left: i64) -> Record {
        let mut record = Record::new(Role::Timestamp, "7a3f", 0.5, at(-600));
        record.activity = Activity::Active;
        record.heartbeat = at(-2);
        record.key.signed_at = Some(at(-10));
        record.kept.push(Kept {
            what: "timestamp".into(),
            version: 12,
            expires: at(left * HOUR),
            lifetime_seconds: 24 * 3600,
        });
        record
    }

    fn verdict(record: &Record, disk: &BTreeMap<String, OnDisk>, rules: &Rules) -> Vec<bool> {
        judge(record, disk, at(0), rules)
            .iter()
            .map(|f| f.healthy)
            .collect()
    }

    fn failed(record: &Record, rules: &Rules) -> Vec<String> {
        judge(record, &BTreeMap::new(), at(0), rules)
            .into_iter()
            .filter(|f| !f.healthy)
            .map(|f| f.says)
            .collect()
    }

    #[test]
    fn a_fresh_active_signer_with_time_left_is_healthy() {
        let findings = judge(
            &timestamp_signer(20),
            &BTreeMap::new(),
            at(0),
            &Rules::default(),
        );
        assert!(findings.iter().all(|f| f.healthy), "{findings:?}");
        assert_eq!(findings.len(), 3, "alive, key, one file: {findings:?}");
        assert!(
            findings[2].says.contains("unhealthy within 6h"),
            "{findings:?}"
        );
    }

    #[test]
    fn a_stale_heartbeat_or_a_stop_is_unhealthy() {
        let mut record = timestamp_signer(20);
        record.heartbeat = at(-61);
        let says = failed(&record, &Rules::default());
        assert_eq!(says.len(), 1, "{says:?}");
        assert!(says[0].contains("no heartbeat for 1m 1s"), "{says:?}");
        assert!(says[0].contains("dead or hung"), "{says:?}");
        let patient = Rules {
            stale_after: Duration::from_secs(120),
            ..Rules::default()
        };
        assert!(failed(&record, &patient).is_empty());
        record.activity = Activity::Stopped;
        let says = failed(&record, &patient);
        assert!(says[0].contains("stopped at"), "{says:?}");
    }

    #[test]
    fn a_key_whose_last_attempt_failed_is_unhealthy_until_it_signs_again() {
        let mut record = timestamp_signer(20);
        record.key.failed_at = Some(at(-5));
        record.key.error = Some("token not present".into());
        let says = failed(&record, &Rules::default());
        assert_eq!(says.len(), 1, "{says:?}");
        assert!(says[0].contains("key 7a3f: cannot sign since"), "{says:?}");
        assert!(says[0].contains("token not present"), "{says:?}");
        record.key.signed_at = Some(at(-1));
        assert!(failed(&record, &Rules::default()).is_empty());
        // Never signed, failed once: failing.
        record.key.signed_at = None;
        assert!(record.key.fails());
    }

    #[test]
    fn metadata_is_overdue_within_half_the_refresh_margin() {
        // 1 day, re-signed at 12 h left: healthy down to 6 h, not below.
        assert!(failed(&timestamp_signer(7), &Rules::default()).is_empty());
        let says = failed(&timestamp_signer(5), &Rules::default());
        assert_eq!(says.len(), 1, "{says:?}");
        assert!(
            says[0].contains("timestamp.json v12: expires in 5h"),
            "{says:?}"
        );
        assert!(says[0].contains("within 6h"), "{says:?}");
        assert!(
            says[0].contains("re-signs it once 12h are left"),
            "{says:?}"
        );
        let says = failed(&timestamp_signer(-2), &Rules::default());
        assert!(says[0].contains("expired 2h ago"), "{says:?}");
        // A narrower refresh window moves the threshold with it.
        let mut record = timestamp_signer(5);
        record.refresh_window = 0.25;
        assert!(
            failed(&record, &Rules::default()).is_empty(),
            "3h is the window"
        );
        // --expires-within: one window for every file.
        let wide = Rules {
            expires_within: Some(Duration::from_secs(10 * 3600)),
            ..Rules::default()
        };
        assert_eq!(failed(&timestamp_signer(7), &wide).len(), 1);
    }

    #[test]
    fn a_standby_is_judged_by_its_heartbeat_and_key_only() {
        let mut record = timestamp_signer(-2);
        record.activity = Activity::Standby;
        let findings = judge(&record, &BTreeMap::new(), at(0), &Rules::default());
        assert!(findings.iter().all(|f| f.healthy), "{findings:?}");
        assert!(findings[2].says.contains("not judged"), "{findings:?}");
        record.key.failed_at = Some(at(-1));
        assert_eq!(failed(&record, &Rules::default()).len(), 1);
        // Paused or reconnecting: still the one that re-signs.
        for activity in [Activity::Paused, Activity::Reconnecting, Activity::Active] {
            record.activity = activity;
            record.key.failed_at = None;
            assert_eq!(failed(&record, &Rules::default()).len(), 1, "{activity:?}");
        }
    }

    #[test]
    fn the_repository_wins_over_the_record() {
        let record = timestamp_signer(5);
        // Another replica re-signed it: version 13 on disk has 20 h left.
        let disk = BTreeMap::from([("timestamp".to_string(), Ok((13, at(20 * HOUR))))]);
        assert_eq!(
            verdict(&record, &disk, &Rules::default()),
            [true, true, true]
        );
        let unreadable = BTreeMap::from([("timestamp".to_string(), Err("cannot read".into()))]);
        assert_eq!(
            verdict(&record, &unreadable, &Rules::default()),
            [true, true, false]
        );
    }

    #[test]
    fn a_record_reads_back_as_written_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = timestamp_signer(20);
        record.heartbeat = Timestamp::now();
        record.write(dir.path()).unwrap();
        let file = Record::file(dir.path(), "timestamp");
        assert_eq!(Record::read(&file).unwrap(), Some(record));
        assert_eq!(
            Record::read(&dir.path().join("health.snapshot.json")).unwrap(),
            None
        );
        let layout = Layout::new(dir.path().join("repo"));
        let found = check(dir.path(), &layout, None, &Rules::default()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "timestamp");
        assert!(!found[0].1[2].healthy, "no repository: {:?}", found[0].1);
        let none = check(dir.path(), &layout, Some(Role::Snapshot), &Rules::default()).unwrap();
        assert!(none[0].1[0].says.contains("no health record"), "{none:?}");
    }
}
