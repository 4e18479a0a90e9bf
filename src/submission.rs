//! Signed submissions: the packaging pipeline signs every targets job with its submitter key,
//! and the targets signer applies only jobs signed by a submitter key it is configured with,
//! and of each job only what is newer than what it already applied.
//!
//! On the wire a submission is signed the way TUF metadata is (the signature covers the
//! canonical JSON of `signed`):
//!
//! ```text
//! {"signatures":[{"keyid":"…","sig":"…"}],
//!  "signed":{"_type":"submission","issued":"2026-11-29T12:00:00.123456789Z","job":{"add":[…]}}}
//! ```
//!
//! The replay rule, so that a captured job replayed later can neither undo a later change
//! nor force endless full re-signs:
//! 1. A job issued more than `--max-job-age` ago (24 hours by default), or more than
//!    [`MAX_AHEAD`] ahead of the signer's clock, is refused (dead-lettered, with the reason).
//! 2. Every target name, and each of the kinds `bins` and `refresh_expiry`, remembers the
//!    issue time of the newest job applied to it. The part of a job issued at or before that
//!    time is skipped as superseded: a replay, an older job overtaken by a newer one, or a
//!    batch redelivered after a crash (already applied).
//! 3. The jobs of one batch are applied in the order they were issued.
//!
//! What rule 2 remembers is kept in the [`Ledger`], a file the targets signer appends to once
//! a batch's files are durable; entries older than the maximum age are dropped (rule 1
//! covers them). The one unsigned job the targets signer takes is its own expiry reminder
//! (`{"check_expiry":true}`), which re-signs only what is about to expire.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::durable::write_durably;
use crate::jobs::{ExpiryCheck, TargetsJob};
use crate::keys::{key_id, load_public_keys, KeyIdRule, SigningKey};
use crate::repository::signed::{hex_decoded, sign_canonical};
use crate::schema::KeyMap;
use crate::verify::{verify_raw, Authority};
use crate::{canonical, Error, Result};

/// The submitter public keys the targets signer trusts, written beside the targets key.
pub const SUBMITTERS_FILE: &str = "submitters.pub";

/// How far ahead of the signer's clock a job may say it was issued (clock skew).
pub const MAX_AHEAD: Duration = Duration::from_secs(300);

/// The `_type` of a submission.
const KIND: &str = "submission";

/// What a submitter signs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(rename = "_type")]
    kind: String,
    issued: Timestamp,
    job: TargetsJob,
}

/// Signs `job` as issued now: the bytes to send to the targets queue or inbox.
pub fn sign(job: &TargetsJob, key: &SigningKey) -> Result<Vec<u8>> {
    sign_issued(job, key, Timestamp::now())
}

/// A submission's id: the first 128 bits of the SHA-256 of its bytes, in hex. The
/// submitter and the targets signer both compute it, so a receipt can name the submission
/// without the submission naming itself.
pub fn id_of(body: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    hex::encode(&digest.as_ref()[..16])
}

/// Which target names may be signed again with other content: what Composer rewrites
/// (`packages.json`, the `p2/` metadata, dev versions). Every other name, once signed, is
/// immutable: a submission giving it other bytes is refused unless it says `--replace`.
/// Patterns match as delegation paths do (`*` within one folder level).
#[derive(Debug, Clone)]
pub struct Mutable {
    patterns: Vec<String>,
}

impl Mutable {
    /// `packages.json`, `p2/*/*` (`p2/vendor/name.json` and `~dev.json`), and the dev
    /// versions of releases (`vendor/name/dev-main`, `vendor/name/1.x-dev` normalised to
    /// `1.9999999.9999999.9999999-dev`).
    pub const DEFAULT: &'static str = "packages.json,p2/*/*,*/*/dev-*,*/*/*-dev";

    /// Comma-separated patterns; `none` for none.
    pub fn parse(text: &str) -> Mutable {
        Mutable {
            patterns: text
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty() && *p != "none")
                .map(str::to_string)
                .collect(),
        }
    }

    /// Whether target `name` matches one of the patterns.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| crate::updater::delegation::path_matches(p, name))
    }
}

impl Default for Mutable {
    fn default() -> Self {
        Mutable::parse(Mutable::DEFAULT)
    }
}

/// Signs `job` as issued at `issued`.
pub fn sign_issued(job: &TargetsJob, key: &SigningKey, issued: Timestamp) -> Result<Vec<u8>> {
    let body = Body {
        kind: KIND.into(),
        issued,
        job: job.clone(),
    };
    let signed = canonical::to_vec(&body, "submission")?;
    Ok(sign_canonical(&signed, 0, &[key])?.bytes)
}

/// The submitter keys the targets signer trusts, how old a job it still takes, and which
/// names may change.
#[derive(Debug, Clone)]
pub struct Policy {
    submitters: Arc<KeyMap>,
    /// Each submitter key alone, by its id: a submission is checked against one at a time, so
    /// that the key that signed it is known (the ids its signatures are labelled with are
    /// anyone's to write).
    each: Arc<Vec<(String, KeyMap)>>,
    /// A job issued longer ago than this is refused (`--max-job-age`); the ledger remembers
    /// this long.
    pub max_age: Duration,
    /// Where the [`Ledger`] is kept.
    pub ledger: PathBuf,
    /// Names that may be signed again with other content.
    pub mutable: Mutable,
}

impl Policy {
    /// Reads the submitter public keys (one or more PEM `PUBLIC KEY` blocks) from `file`.
    pub fn load(file: &Path, max_age: Duration, ledger: PathBuf) -> Result<Policy> {
        let mut keys = KeyMap::new();
        for key in load_public_keys(file)? {
            keys.insert(hex_decoded(&key_id(&key, KeyIdRule::PhpTuf)?)?, key);
        }
        let each = keys
            .iter()
            .map(|(id, key)| {
                (
                    hex::encode(id),
                    [(id.clone(), key.clone())].into_iter().collect(),
                )
            })
            .collect();
        Ok(Policy {
            each: Arc::new(each),
            submitters: Arc::new(keys),
            max_age,
            ledger,
            mutable: Mutable::default(),
        })
    }

    /// Decodes a message from the targets queue: a submission signed by a trusted submitter
    /// key, issued within the allowed age, or the signer's own unsigned expiry reminder.
    /// Anything else is an [`Error::InvalidJob`] saying why.
    pub fn open(&self, body: &[u8]) -> Result<TargetsJob> {
        let body_bytes = body;
        /// Whether a message is signed at all, without parsing the job (one scan).
        #[derive(Deserialize)]
        struct Probe<'a> {
            #[serde(borrow)]
            signed: Option<&'a serde_json::value::RawValue>,
        }
        let not_a_job = |e: serde_json::Error| Error::InvalidJob(format!("not a targets job: {e}"));
        let probe: Probe = serde_json::from_slice(body).map_err(not_a_job)?;
        if probe.signed.is_none() {
            let job: TargetsJob = serde_json::from_slice(body).map_err(not_a_job)?;
            if job == TargetsJob::expiry_check() {
                return Ok(job);
            }
            return Err(Error::InvalidJob(
                "unsigned: the targets signer applies only jobs signed by a submitter key \
                 (tuf-client --submitter-key; tuf-signer init wrote KEYS/submitter.pem)"
                    .into(),
            ));
        }
        let verified = self.each.iter().find_map(|(id, one)| {
            let signed = verify_raw(body, "submission", &Authority::any_of(one)).ok()?;
            Some((signed, id.clone()))
        });
        let Some((signed, submitter)) = verified else {
            // Said against every key at once, for the reason.
            let why = verify_raw(body, "submission", &Authority::any_of(&self.submitters))
                .err()
                .map_or_else(|| "no key's signature verifies".into(), |e| e.to_string());
            return Err(Error::InvalidJob(format!(
                "not signed by a submitter key this signer trusts ({why})"
            )));
        };
        let body: Body = serde_json::from_slice(signed).map_err(not_a_job)?;
        if body.kind != KIND {
            return Err(Error::InvalidJob(format!(
                "a {:?}, not a submission",
                body.kind
            )));
        }
        self.check_age(body.issued)?;
        let mut job = body.job;
        job.issued = Some(body.issued);
        job.id = Some(id_of(body_bytes));
        job.submitter = Some(submitter);
        Ok(job)
    }

    /// Rule 1: refuses a job issued too long ago or too far ahead.
    fn check_age(&self, issued: Timestamp) -> Result<()> {
        let now = Timestamp::now();
        let age = now.duration_since(issued);
        if issued < horizon(self.max_age) {
            return Err(Error::InvalidJob(format!(
                "stale: issued at {issued}, more than {} ago (--max-job-age); submit it again",
                crate::repository::expiry::show_duration(self.max_age)
            )));
        }
        if -age > jiff::SignedDuration::try_from(MAX_AHEAD).expect("small") {
            return Err(Error::InvalidJob(format!(
                "issued at {issued}, ahead of this signer's clock ({now}) by more than {}; check \
                 the clocks",
                crate::repository::expiry::show_duration(MAX_AHEAD)
            )));
        }
        Ok(())
    }
}

/// The ledger's whole lines, read a line at a time: a torn last line (see [`Ledger`]) is cut
/// off the file first, so that the next line appended starts on a line of its own.
fn whole_lines(mut file: std::fs::File, path: &Path) -> Result<impl BufRead> {
    use std::io::Seek;
    let len = file
        .metadata()
        .map_err(Error::io("cannot read the submission ledger", path))?
        .len();
    let whole = crate::durable::cut_torn_line(&mut file)
        .map_err(Error::io("cannot repair the submission ledger", path))?;
    if whole < len {
        tracing::warn!(ledger = %path.display(), "cut off a torn last line");
    }
    file.rewind()
        .map_err(Error::io("cannot read the submission ledger", path))?;
    Ok(std::io::BufReader::with_capacity(1 << 20, file.take(whole)))
}

/// Where the ledger remembers `key` (a target name, `#bins` or `#refresh_expiry`) in memory:
/// the first 128 bits of its SHA-256, 16 bytes whatever the name's length (as [`id_of`] names
/// a submission). Two names sharing a slot would take a search of about 2^64 names to find; the
/// file keeps the names themselves.
fn slot(key: &str) -> [u64; 2] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let half = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest.as_ref()[i * 8..i * 8 + 8]);
        u64::from_le_bytes(bytes)
    };
    [half(0), half(1)]
}

/// An issue time as the ledger keeps it in memory: nanoseconds since 1970, 8 bytes (enough
/// until 2262; a job from further ahead is refused before it gets here).
fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

/// The issue time [`nanos`] kept.
fn from_nanos(n: i64) -> Timestamp {
    Timestamp::from_nanosecond(n.into()).expect("an i64 of nanoseconds is a timestamp")
}

/// Now less `max_age`: rule 1 refuses what was issued before it.
fn horizon(max_age: Duration) -> Timestamp {
    let age = jiff::SignedDuration::try_from(max_age).unwrap_or(jiff::SignedDuration::MAX);
    Timestamp::now().checked_sub(age).unwrap_or(Timestamp::MIN)
}

/// What rule 2 remembers: for each target name (and `#bins`, `#refresh_expiry`), the issue
/// time of the newest job applied to it. One JSON line per applied batch, appended and
/// flushed after the batch's files are durable; a torn last line (a crash mid-append) is
/// ignored, which loses nothing: that batch is redelivered and its files are already there.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    max_age: Duration,
    /// Jobs issued before this are refused: the ledger knows nothing older. It began then,
    /// or it forgot what was older (the age window of the day): a `--max-job-age` raised
    /// later cannot reach back past it, so a change it forgot is never replayed.
    since: Timestamp,
    /// By [`slot`], in [`nanos`]: one 24-byte entry a name changed within the age window, which
    /// is every name after a bulk import (6 million names: about 200 MB with the table's
    /// slack).
    last: HashMap<[u64; 2], i64>,
    /// Admitted by [`Ledger::newer`] in the batch under way: merged into `last` only once
    /// [`Ledger::commit`] has written them, so a batch that fails is not remembered as
    /// applied.
    admitted: HashMap<String, Timestamp>,
    lines: usize,
    /// Commits since `last` was last cut back to the age window.
    commits: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<K> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issued: Option<Timestamp>,
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    keys: Vec<K>,
}

const BINS: &str = "#bins";
const REFRESH: &str = "#refresh_expiry";

impl Ledger {
    /// Starts an empty ledger at `path` (by `tuf-signer init`).
    pub fn create(path: &Path) -> Result<()> {
        let line: Line<&str> = Line {
            since: Some(Timestamp::now()),
            issued: None,
            keys: Vec::new(),
        };
        write_durably(path, &encode_line(&line))
    }

    /// Reads the ledger. A missing one is started afresh: then nothing issued before now is
    /// taken (it might be a replay the lost ledger would have caught), which the signer logs.
    pub fn open(policy: &Policy) -> Result<Ledger> {
        let path = &policy.ledger;
        let mut ledger = Ledger {
            path: path.clone(),
            max_age: policy.max_age,
            since: Timestamp::now(),
            last: HashMap::new(),
            admitted: HashMap::new(),
            lines: 0,
            commits: 0,
        };
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(ledger = %path.display(),
                    "no submission ledger: starting one; jobs issued before now are refused \
                     as possible replays (submit them again)");
                Ledger::create(path)?;
                return Ok(ledger);
            }
            Err(e) => return Err(Error::io("cannot read the submission ledger", path)(e)),
        };
        let horizon = ledger.horizon();
        let since = ledger.replay(whole_lines(file, path)?, horizon)?;
        let began = since.ok_or_else(|| Error::Repository {
            path: path.clone(),
            reason: "the submission ledger has no start line; move it away and restart the \
                     targets signer (it starts a new one)"
                .into(),
        })?;
        // What was older than the window was just left out: the ledger's memory starts at
        // the window now (kept at its next compaction).
        ledger.since = began.max(horizon);
        if horizon < began {
            tracing::warn!(ledger = %path.display(), remembers_since = %began,
                "--max-job-age reaches back before what the submission ledger remembers: jobs \
                 issued before then are refused as possible replays");
        }
        Ok(ledger)
    }

    /// Takes in the ledger's lines: for each name, the newest issue time at or after
    /// `horizon`. Returns the earliest start line's time, if there is one.
    fn replay(&mut self, lines: impl BufRead, horizon: Timestamp) -> Result<Option<Timestamp>> {
        let mut since = None;
        for (n, line) in lines.lines().enumerate() {
            let line = self.parse(n, line)?;
            self.lines += 1;
            if let Some(s) = line.since {
                since = Some(since.map_or(s, |old: Timestamp| old.min(s)));
            }
            let Some(issued) = line.issued.filter(|t| *t >= horizon) else {
                continue;
            };
            let issued = nanos(issued);
            for key in line.keys {
                let newest = self.last.entry(slot(&key)).or_insert(issued);
                *newest = (*newest).max(issued);
            }
        }
        Ok(since)
    }

    /// Line `n` (from 0) of the ledger, parsed.
    fn parse(&self, n: usize, line: std::io::Result<String>) -> Result<Line<String>> {
        let line = line.map_err(Error::io("cannot read the submission ledger", &self.path))?;
        serde_json::from_str(&line).map_err(|_| Error::Repository {
            path: self.path.clone(),
            reason: format!(
                "line {} does not parse; move the ledger away and restart the targets signer \
                 (it starts a new one, refusing jobs issued before)",
                n + 1
            ),
        })
    }

    /// Jobs issued before this are covered by rule 1, not remembered.
    fn horizon(&self) -> Timestamp {
        horizon(self.max_age)
    }

    /// Starts a batch: forgets admissions of a batch that never reached [`Ledger::commit`].
    pub fn begin(&mut self) {
        self.admitted.clear();
    }

    /// Rule 2: the part of `job` issued later than the last change applied to each name or
    /// kind it touches (all of it for the signer's own reminder), to be remembered as applied
    /// at [`Ledger::commit`]. Every name is judged against the changes before this job, so a
    /// job that names one twice keeps its own meaning. Returns `None` when nothing is left,
    /// the job itself when all of it is (the usual case: nothing copied); what was skipped
    /// is logged.
    pub fn newer<'j>(&mut self, job: &'j TargetsJob) -> Option<Cow<'j, TargetsJob>> {
        let Some(issued) = job.issued else {
            return Some(Cow::Borrowed(job));
        };
        if issued < self.since {
            tracing::warn!(%issued, since = %self.since,
                "issued before what the submission ledger remembers: skipped");
            return None;
        }
        let kept = self.keep_newer(job, issued);
        for key in keys_of(&kept) {
            self.admitted.insert(key.to_string(), issued);
        }
        let empty = changes(&kept) == 0 && !kept.check_expiry;
        (!empty).then_some(kept)
    }

    /// The part of `job` (issued at `issued`) newer than the last change to each name or kind
    /// it touches, in this batch or before; what it leaves out is logged.
    fn keep_newer<'j>(&self, job: &'j TargetsJob, issued: Timestamp) -> Cow<'j, TargetsJob> {
        let is_newer = |key: &str| self.last_change(key).is_none_or(|t| issued > t);
        if keys_of(job).all(is_newer) {
            return Cow::Borrowed(job);
        }
        let out = TargetsJob {
            issued: job.issued,
            check_expiry: job.check_expiry,
            add: job
                .add
                .iter()
                .filter(|t| is_newer(&t.name))
                .cloned()
                .collect(),
            remove: job.remove.iter().filter(|n| is_newer(n)).cloned().collect(),
            bins: job.bins.filter(|_| is_newer(BINS)),
            refresh_expiry: job.refresh_expiry && is_newer(REFRESH),
            replace: job.replace,
            id: job.id.clone(),
            submitter: job.submitter.clone(),
        };
        tracing::warn!(%issued, skipped = changes(job) - changes(&out),
            "superseded: a job issued later already changed these names (a replay, a \
             redelivery, or submitters whose clocks disagree)");
        Cow::Owned(out)
    }

    /// When the newest change applied to `key` (in this batch or before) was issued.
    pub fn last_change(&self, key: &str) -> Option<Timestamp> {
        self.admitted
            .get(key)
            .copied()
            .or_else(|| self.last.get(&slot(key)).map(|&n| from_nanos(n)))
    }

    /// Takes back what [`Ledger::newer`] admitted for `key` in the batch under way: that
    /// change was refused, so it is not remembered as applied.
    pub fn forget(&mut self, key: &str) {
        self.admitted.remove(key);
    }

    /// Refuses a job issued before the ledger began: the ledger cannot tell whether it is a
    /// replay of a change it has forgotten.
    pub fn check_since(&self, job: &TargetsJob) -> Result<()> {
        match job.issued {
            Some(issued) if issued < self.since => Err(Error::InvalidJob(format!(
                "issued at {issued}, before what the submission ledger remembers (changes \
                 issued since {}: it began then, or forgot older ones), so it may be a replay; \
                 submit it again",
                self.since
            ))),
            _ => Ok(()),
        }
    }

    /// Writes what [`Ledger::newer`] admitted, once the batch's files are durable, and
    /// remembers it: one line per issue time.
    pub fn commit(&mut self) -> Result<()> {
        if self.admitted.is_empty() {
            return Ok(());
        }
        let mut by_time: BTreeMap<Timestamp, Vec<&str>> = BTreeMap::new();
        for (key, t) in &self.admitted {
            by_time.entry(*t).or_default().push(key);
        }
        let mut bytes = Vec::new();
        for (issued, keys) in by_time {
            bytes.extend(encode_line(&Line {
                since: None,
                issued: Some(issued),
                keys,
            }));
            self.lines += 1;
        }
        self.last
            .extend(self.admitted.drain().map(|(key, t)| (slot(&key), nanos(t))));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(Error::io("cannot open the submission ledger", &self.path))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_data())
            .map_err(Error::io(
                "cannot append to the submission ledger",
                &self.path,
            ))?;
        self.commits += 1;
        if self.commits >= 1_000 {
            // Forget what rule 1 covers now, so that memory and file stay bounded.
            self.commits = 0;
            let horizon = self.horizon();
            let oldest = nanos(horizon);
            self.last.retain(|_, t| *t >= oldest);
            self.since = self.since.max(horizon);
            if self.lines > 10_000 && self.lines > 4 * self.last.len() {
                return self.compact();
            }
        }
        Ok(())
    }

    /// Rewrites the ledger with only what is still remembered: of each line, the names whose
    /// newest change it records (memory holds their slots, not the names, so the names are
    /// read back from the file a line at a time).
    fn compact(&mut self) -> Result<()> {
        let mut bytes = encode_line::<&str>(&Line {
            since: Some(self.since),
            issued: None,
            keys: Vec::new(),
        });
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(Error::io("cannot read the submission ledger", &self.path))?;
        let mut lines = 1;
        for (n, line) in whole_lines(file, &self.path)?.lines().enumerate() {
            let line = self.parse(n, line)?;
            let Some(issued) = line.issued else { continue };
            let newest = Some(nanos(issued));
            let keys: Vec<String> = line
                .keys
                .into_iter()
                .filter(|key| self.last.get(&slot(key)).copied() == newest)
                .collect();
            if !keys.is_empty() {
                bytes.extend(encode_line(&Line {
                    since: None,
                    issued: Some(issued),
                    keys,
                }));
                lines += 1;
            }
        }
        write_durably(&self.path, &bytes)?;
        self.lines = lines;
        Ok(())
    }
}

fn encode_line<K: Serialize>(line: &Line<K>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(line).expect("ledger lines serialise");
    bytes.push(b'\n');
    bytes
}

/// The names and kinds (`bins`, `refresh_expiry`) a job changes, each once per mention.
fn keys_of(job: &TargetsJob) -> impl Iterator<Item = &str> {
    job.add
        .iter()
        .map(|t| t.name.as_str())
        .chain(job.remove.iter().map(String::as_str))
        .chain(job.bins.map(|_| BINS))
        .chain(job.refresh_expiry.then_some(REFRESH))
}

/// How many changes a job asks for: one per name added or removed, and one per kind.
fn changes(job: &TargetsJob) -> usize {
    keys_of(job).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{NewTarget, TargetHashes};

    fn add(name: &str) -> TargetsJob {
        TargetsJob {
            add: vec![NewTarget {
                name: name.into(),
                length: 1,
                hashes: TargetHashes {
                    sha256: "a".repeat(64),
                    sha512: "b".repeat(128),
                },
            }],
            ..Default::default()
        }
    }

    fn remove(name: &str) -> TargetsJob {
        TargetsJob {
            remove: vec![name.into()],
            ..Default::default()
        }
    }

    /// A policy trusting a new key, its ledger in a temporary folder.
    fn setup() -> (tempfile::TempDir, SigningKey, Policy) {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = SigningKey::generate().unwrap();
        let pem = crate::keys::public_pem(key.public()).unwrap();
        std::fs::write(dir.path().join("submitters.pub"), pem).unwrap();
        let policy = Policy::load(
            &dir.path().join("submitters.pub"),
            Duration::from_secs(3600),
            dir.path().join("ledger.jsonl"),
        )
        .unwrap();
        // A ledger begun an hour ago, so that jobs issued in the last minutes count.
        let since = Timestamp::now() - jiff::SignedDuration::from_hours(1);
        std::fs::write(&policy.ledger, format!("{{\"since\":\"{since}\"}}\n")).unwrap();
        (dir, key, policy)
    }

    fn issued_in(job: TargetsJob, secs: i64) -> TargetsJob {
        TargetsJob {
            issued: Some(Timestamp::now() + jiff::SignedDuration::from_secs(secs)),
            ..job
        }
    }

    #[test]
    fn only_fresh_jobs_signed_by_a_trusted_key_open() {
        let (_dir, key, policy) = setup();
        let job = add("drupal/x/1.0.0.0");
        let opened = policy.open(&sign(&job, &key).unwrap()).unwrap();
        assert_eq!(opened.add, job.add);
        assert!(opened.issued.is_some());
        let (stranger, _) = SigningKey::generate().unwrap();
        let refusals = [
            (serde_json::to_vec(&job).unwrap(), "unsigned"),
            (
                sign(&job, &stranger).unwrap(),
                "not signed by a submitter key",
            ),
            (
                sign_issued(
                    &job,
                    &key,
                    Timestamp::now() - jiff::SignedDuration::from_hours(2),
                )
                .unwrap(),
                "stale",
            ),
            (
                sign_issued(
                    &job,
                    &key,
                    Timestamp::now() + jiff::SignedDuration::from_hours(1),
                )
                .unwrap(),
                "ahead of this signer's clock",
            ),
        ];
        for (body, why) in refusals {
            let err = policy.open(&body).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        // The signer's own reminder is the one unsigned job.
        let reminder = serde_json::to_vec(&TargetsJob::expiry_check()).unwrap();
        assert!(policy.open(&reminder).unwrap().check_expiry);
    }

    #[test]
    fn a_replay_changes_nothing_a_later_job_changed() {
        let (_dir, _key, policy) = setup();
        let mut ledger = Ledger::open(&policy).unwrap();
        let old_add = issued_in(add("a/b"), -20);
        let later_remove = issued_in(remove("a/b"), -10);
        ledger.begin();
        assert!(ledger.newer(&old_add).is_some());
        ledger.commit().unwrap();
        ledger.begin();
        assert!(ledger.newer(&later_remove).is_some());
        ledger.commit().unwrap();
        // Replayed, and after a restart (read back from the file): skipped.
        ledger.begin();
        assert!(ledger.newer(&old_add).is_none());
        let mut reopened = Ledger::open(&policy).unwrap();
        reopened.begin();
        assert!(reopened.newer(&old_add).is_none());
        assert!(reopened.newer(&later_remove).is_none());
        // A job naming one name twice keeps its own meaning.
        let both = issued_in(
            TargetsJob {
                add: add("c/d").add,
                remove: vec!["c/d".into()],
                ..Default::default()
            },
            -5,
        );
        let kept = reopened.newer(&both).unwrap();
        assert_eq!((kept.add.len(), kept.remove.len()), (1, 1));
    }

    #[test]
    fn a_batch_that_never_committed_is_not_remembered() {
        let (_dir, _key, policy) = setup();
        let mut ledger = Ledger::open(&policy).unwrap();
        let job = issued_in(add("a/b"), -1);
        ledger.begin();
        assert!(ledger.newer(&job).is_some());
        // The write failed: the batch comes back and must still apply.
        ledger.begin();
        assert!(ledger.newer(&job).is_some());
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_the_next_append_reads_back() {
        let (_dir, _key, policy) = setup();
        let mut ledger = Ledger::open(&policy).unwrap();
        let first = issued_in(add("a/b"), -20);
        ledger.begin();
        ledger.newer(&first);
        ledger.commit().unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&policy.ledger)
            .unwrap();
        file.write_all(br#"{"issued":"2026-"#).unwrap();
        drop(file);
        let mut ledger = Ledger::open(&policy).unwrap();
        let second = issued_in(remove("c/d"), -10);
        ledger.begin();
        ledger.newer(&second);
        ledger.commit().unwrap();
        let mut reopened = Ledger::open(&policy).unwrap();
        reopened.begin();
        assert!(reopened.newer(&first).is_none());
        assert!(reopened.newer(&second).is_none());
    }

    /// Issue 22: a ledger that forgot what was older than its window (`--max-job-age` 1 h)
    /// keeps refusing it when the window is raised (to 7 days): a change it forgot could
    /// otherwise be replayed.
    #[test]
    fn a_wider_window_does_not_reach_past_what_the_ledger_forgot() {
        let (_dir, _key, policy) = setup();
        let began = Timestamp::now() - jiff::SignedDuration::from_hours(72);
        let two_days_ago = Timestamp::now() - jiff::SignedDuration::from_hours(48);
        std::fs::write(
            &policy.ledger,
            format!(
                "{{\"since\":\"{began}\"}}\n{{\"issued\":\"{two_days_ago}\",\"keys\":[\"a/b\"]}}\n"
            ),
        )
        .unwrap();
        let mut ledger = Ledger::open(&policy).unwrap();
        ledger.compact().unwrap();
        let wider = Policy {
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..policy.clone()
        };
        let replay = TargetsJob {
            issued: Some(two_days_ago - jiff::SignedDuration::from_hours(1)),
            ..remove("a/b")
        };
        let reopened = Ledger::open(&wider).unwrap();
        let err = reopened.check_since(&replay).unwrap_err().to_string();
        assert!(
            err.contains("before what the submission ledger remembers"),
            "{err}"
        );
    }

    /// Memory keeps each name's slot, not the name: compaction reads the names back from
    /// the file and keeps, of each, only the line of its newest change within the window.
    #[test]
    fn compaction_keeps_each_names_newest_change_only() {
        let (_dir, _key, policy) = setup();
        let ago = |minutes| Timestamp::now() - jiff::SignedDuration::from_mins(minutes);
        let began = ago(180);
        let (old, older, newer, expired) = (ago(30), ago(25), ago(20), ago(120));
        std::fs::write(
            &policy.ledger,
            format!(
                "{{\"since\":\"{began}\"}}\n\
                 {{\"issued\":\"{expired}\",\"keys\":[\"e/f\"]}}\n\
                 {{\"issued\":\"{old}\",\"keys\":[\"a/b\",\"g/h\"]}}\n\
                 {{\"issued\":\"{older}\",\"keys\":[\"c/d\"]}}\n\
                 {{\"issued\":\"{newer}\",\"keys\":[\"a/b\"]}}\n"
            ),
        )
        .unwrap();
        let mut ledger = Ledger::open(&policy).unwrap();
        ledger.compact().unwrap();
        let text = std::fs::read_to_string(&policy.ledger).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(!text.contains("e/f"), "outside the window: {text}");
        assert_eq!(text.matches("a/b").count(), 1, "{text}");
        assert!(
            lines[1].contains("g/h") && !lines[1].contains("a/b"),
            "{text}"
        );
        assert!(lines[3].contains("a/b"), "{text}");
        let mut reopened = Ledger::open(&policy).unwrap();
        reopened.begin();
        let at = |job, t| TargetsJob {
            issued: Some(t),
            ..job
        };
        assert!(reopened.newer(&at(remove("a/b"), ago(22))).is_none());
        assert!(reopened.newer(&at(remove("c/d"), ago(26))).is_none());
        assert!(reopened.newer(&at(remove("g/h"), ago(31))).is_none());
        assert!(reopened.newer(&at(remove("a/b"), ago(10))).is_some());
        assert!(reopened.newer(&at(remove("c/d"), ago(24))).is_some());
    }
}
