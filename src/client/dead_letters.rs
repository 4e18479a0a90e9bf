//! `tuf-client dead-letters`: the jobs the signers refused, with why, for an operator to
//! read, replay (once what made them fail is fixed) or drop.
//!
//! Each letter is named by its id, [`crate::submission::id_of`] its bytes: for a targets
//! submission the same id its receipt and the submitter's `--wait` use. Over RabbitMQ the
//! letters are taken from the dead-letter queue unacknowledged, so that those not replayed
//! or dropped stay there; in the embedded mode they are the files the signer moved to
//! `INBOX/dead-letter/` (each with its `.reason`).
//!
//! A dead letter is the job's bytes and text beside them (the reason, the stage that refused
//! it), and anyone who may publish to the dead-letter exchange (every signer's broker user)
//! can write both. So two rules hold here:
//! - A letter is replayed to the stage its body is a job for ([`Kind::of`]: a signed
//!   submission to targets, a snapshot or timestamp job to its stage), never to the stage its
//!   `x-dead-letter-from` header names; a body that is no stage's job is not replayed, and a
//!   header that disagrees with the body is reported. Replaying grants nothing either way:
//!   the stage checks the job again as if it were new (see [`Kind::replay_to`]).
//! - Every text that came from a letter (reason, header, what the body holds) is printed
//!   through [`printable`], so that no escape sequence in a job reaches the operator's
//!   terminal as a command.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::broker::amqp::{AmqpConfig, AmqpEndpoint, DeadLetter};
use crate::broker::inbox::submit_to_inbox;
use crate::broker::Queue;
use crate::durable::sync_dir;
use crate::jobs::{SnapshotJob, TargetsJob, TimestampJob};
use crate::submission::id_of;
use crate::{Error, Result};

/// What to do with the letters chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Show each letter: id, the stage it says refused it, what its body holds, and why.
    List,
    /// Send each chosen letter's job to the stage its body is for (a signed submission to
    /// targets, a snapshot or timestamp job to its stage), then remove it; a letter whose
    /// body is no job stays.
    Replay,
    /// Remove each chosen letter for good.
    Drop,
}

/// Which letters: those whose id starts with one of `ids`, or all.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Prefixes of the letters' ids to act on.
    pub ids: Vec<String>,
    /// Act on every letter (`--all`), whatever `ids` says.
    pub all: bool,
}

impl Choice {
    fn picks(&self, id: &str) -> bool {
        self.all || self.ids.iter().any(|p| id.starts_with(p.as_str()))
    }
}

/// The most letters looked at in one run.
const MAX_LETTERS: usize = 100_000;

/// `text` with every control character (C0 and C1, so ESC, BEL, CSI, CR, newline, and DEL)
/// and every Unicode bidirectional control written as its escape (`\u{1b}`), the rest as it
/// is: what a job or a header says reaches the operator's terminal as text, never as a
/// command to it, and a letter stays on one line. A backslash is left as it is, so a
/// literal `\u{1b}` in a job reads the same as an escaped ESC: both are harmless text.
pub fn printable(text: &str) -> Cow<'_, str> {
    fn escaped(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escaped(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Prints a line of the report on stdout, through [`printable`].
fn say(line: &str) {
    println!("{}", printable(line));
}

/// Prints a note on stderr, through [`printable`].
fn warn(line: &str) {
    eprintln!("{}", printable(line));
}

/// What a letter's body is, decided from the body alone: the one classification both the
/// listing (what a letter holds) and replay (where it goes) use. Nothing here is verified;
/// it only says which stage would take the body, and that stage checks it.
#[derive(Debug)]
pub enum Kind {
    /// A signed targets submission ([`crate::submission`]), its signature unchecked.
    Submission {
        /// When the submitter signed it.
        issued: jiff::Timestamp,
        /// The targets job it carries.
        job: TargetsJob,
    },
    /// A snapshot job, from the targets signer.
    Snapshot(SnapshotJob),
    /// A timestamp job, from the snapshot signer.
    Timestamp(TimestampJob),
    /// No stage's job, and why.
    NotAJob(String),
}

/// Why a JSON object with none of the fields that tell the stages' jobs apart is no job.
fn no_stage(fields: &serde_json::Map<String, serde_json::Value>) -> &'static str {
    let expiry_flags_alone = !fields.is_empty()
        && fields
            .keys()
            .all(|k| k == "refresh_expiry" || k == "check_expiry");
    if expiry_flags_alone {
        "expiry flags alone, which every stage's job carries: nothing says which stage it is \
         for (ask one with `tuf-client refresh-expiry --role ROLE`)"
    } else {
        "JSON, but no stage's job (a signed submission, a snapshot job or a timestamp job)"
    }
}

/// A submission as it travels (see [`crate::submission`]), read without checking its
/// signature: enough to know it is one, and what it asks.
#[derive(Deserialize)]
struct Envelope {
    signatures: Vec<serde_json::Value>,
    signed: Submitted,
}

#[derive(Deserialize)]
struct Submitted {
    issued: jiff::Timestamp,
    job: TargetsJob,
}

impl Kind {
    /// Reads `body`. The job types' fields tell them apart: `meta` and `signature` only a
    /// snapshot job has, `snapshot` only a timestamp job, `signed` only a submission. A body
    /// of expiry flags alone (`{"refresh_expiry":true}`) fits every stage, so it names none.
    /// An unsigned targets job is no job: the targets signer takes only signed submissions.
    pub fn of(body: &[u8]) -> Kind {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Kind::NotAJob(format!("{} bytes, not JSON", body.len()));
        };
        let Some(fields) = value.as_object() else {
            return Kind::NotAJob("JSON, but not an object as every job is".into());
        };
        let has = |names: &[&str]| names.iter().any(|n| fields.contains_key(*n));
        if has(&["signed"]) {
            return Kind::submission(&value, body);
        }
        if has(&["meta", "signature"]) {
            return serde_json::from_slice(body)
                .map(Kind::Snapshot)
                .unwrap_or_else(|e| Kind::NotAJob(format!("not a snapshot job: {e}")));
        }
        if has(&["snapshot"]) {
            return serde_json::from_slice(body)
                .map(Kind::Timestamp)
                .unwrap_or_else(|e| Kind::NotAJob(format!("not a timestamp job: {e}")));
        }
        if has(&["add", "remove", "bins", "replace"]) {
            return Kind::NotAJob(match serde_json::from_slice::<TargetsJob>(body) {
                Ok(_) => "an unsigned targets job: the targets signer takes only submissions \
                          signed by a submitter key (send it again with tuf-client)"
                    .into(),
                Err(e) => format!("not a targets job: {e}"),
            });
        }
        Kind::NotAJob(no_stage(fields).into())
    }

    /// A body with a `signed` field (`value`, parsed from `body`): a submission if it says it
    /// is one, carries a signature and its job parses.
    fn submission(value: &serde_json::Value, body: &[u8]) -> Kind {
        let kind = value.pointer("/signed/_type").and_then(|t| t.as_str());
        if kind != Some("submission") {
            return Kind::NotAJob(format!(
                "signed, but a {:?}, not a submission",
                kind.unwrap_or("thing without _type")
            ));
        }
        match serde_json::from_slice::<Envelope>(body) {
            Ok(e) if e.signatures.is_empty() => {
                Kind::NotAJob("a submission without a signature".into())
            }
            Ok(e) => Kind::Submission {
                issued: e.signed.issued,
                job: e.signed.job,
            },
            Err(e) => Kind::NotAJob(format!("a submission whose job does not parse: {e}")),
        }
    }

    /// The stage the body is a job for.
    pub fn stage(&self) -> Option<Queue> {
        self.replay_to().ok()
    }

    /// Where a replay sends the letter: the stage its body is for, or why it is not replayed.
    ///
    /// Replaying bypasses none of the stage's checks, since the job is published like any other
    /// and checked again on receipt. The targets signer opens a submission with
    /// [`crate::submission::Policy::open`] (a submitter key this signer trusts, issued
    /// within `--max-job-age` and not ahead of its clock), then checks it against the ledger
    /// (`Ledger::check_since`) and applies only what is newer than the last change to each
    /// name (`Ledger::newer`): a replayed submission can neither undo a later change nor
    /// sneak an old one in. The snapshot and timestamp signers verify every file a job names
    /// (its signatures, or the hash a targets key vouched for) before signing over it.
    pub fn replay_to(&self) -> std::result::Result<Queue, String> {
        match self {
            Kind::Submission { .. } => Ok(Queue::Targets),
            Kind::Snapshot(_) => Ok(Queue::Snapshot),
            Kind::Timestamp(_) => Ok(Queue::Timestamp),
            Kind::NotAJob(why) => Err(format!("no stage takes it: {why}")),
        }
    }

    /// What the body holds, in a few words.
    pub fn summary(&self) -> String {
        let flags = |refresh: bool, check: bool| {
            let mut s = String::new();
            if refresh {
                s.push_str(", refresh expiry");
            }
            if check {
                s.push_str(", check expiry");
            }
            s
        };
        match self {
            Kind::Submission { issued, job } => {
                let mut s = format!(
                    "targets submission issued {issued}, add {}, remove {}",
                    job.add.len(),
                    job.remove.len()
                );
                if let Some(count) = job.bins {
                    s.push_str(&format!(", bins {count}"));
                }
                if job.replace {
                    s.push_str(", replace");
                }
                s + &flags(job.refresh_expiry, job.check_expiry)
            }
            Kind::Snapshot(job) => format!(
                "snapshot job, {} file(s){}{}",
                job.meta.len(),
                if job.signature.is_some() {
                    ", signed"
                } else {
                    ""
                },
                flags(job.refresh_expiry, job.check_expiry)
            ),
            Kind::Timestamp(job) => format!(
                "timestamp job, {}{}",
                job.snapshot.as_ref().map_or_else(
                    || "no snapshot".into(),
                    |s| format!("snapshot version {}", s.version)
                ),
                flags(job.refresh_expiry, job.check_expiry)
            ),
            Kind::NotAJob(why) => format!("not a job ({why})"),
        }
    }
}

/// When a letter's `x-dead-letter-from` names another stage than the one its body is for:
/// the note saying so (the body decides).
fn mismatch(id: &str, from: Option<&str>, kind: &Kind) -> Option<String> {
    let (from, to) = (from?, kind.stage()?);
    (from != to.stage()).then(|| {
        format!(
            "warning: dead letter {id}: its x-dead-letter-from header says {from:?}, but its body \
             is a {} job: replay sends it to {} (the body decides; anyone who may publish dead \
             letters can write the header)",
            to.stage(),
            to.stage()
        )
    })
}

/// One line about a letter: `ID  FROM  WHAT  reason`, FROM as the letter says it (`-` when
/// it does not); printed through [`printable`].
fn describe(id: &str, from: &str, kind: &Kind, reason: &str) -> String {
    format!("{id}  {from:<9}  {}  {reason}", kind.summary())
}

/// What a run did: how many letters it acted on, and the chosen letters it did not replay,
/// each with its id and why.
#[derive(Debug, Default)]
struct Tally {
    done: usize,
    refused: Vec<String>,
}

impl Tally {
    fn refuse(&mut self, id: &str, why: &str) {
        self.refused
            .push(format!("dead letter {id} not replayed: {why}"));
    }

    /// How many letters were acted on; an error naming each chosen letter not replayed.
    fn result(self) -> Result<usize> {
        if self.refused.is_empty() {
            return Ok(self.done);
        }
        Err(Error::Refused(
            printable(&format!(
                "{}. {} letter(s) left where they are ({} acted on): read them with `tuf-client \
                 dead-letters`, then drop them (`tuf-client dead-letters drop ID`), or fix the \
                 job and submit it again",
                self.refused.join("; "),
                self.refused.len(),
                self.done
            ))
            .into_owned(),
        ))
    }
}

/// `tuf-client dead-letters`: runs `action` on the letters the inbox or the broker holds, a line each, then
/// says how many were listed; replaying or dropping none is an error (a mistyped id), and so
/// is a chosen letter left unreplayed (its body is no job; the error names it and says why).
pub async fn run(
    inbox: Option<PathBuf>,
    broker: Option<crate::broker::amqp::AmqpConfig>,
    action: Action,
    choice: &Choice,
) -> Result<()> {
    use crate::broker::Via;
    if action != Action::List && choice.ids.is_empty() && !choice.all {
        return Err(Error::Usage(
            "which letters? give their ids (as `dead-letters` lists them) or --all".into(),
        ));
    }
    let done = match Via::choose(inbox, broker)? {
        Via::Inbox(dir) => in_inbox(&dir, action, choice)?,
        Via::Broker(config) => over_broker(&config, action, choice).await?,
    };
    if action == Action::List {
        eprintln!("{done} dead letter(s)");
    } else if done == 0 {
        return Err(Error::Usage(
            printable(&format!(
                "no dead letter has such an id ({}); `tuf-client dead-letters` lists them",
                choice.ids.join(", ")
            ))
            .into_owned(),
        ));
    }
    Ok(())
}

/// Runs `action` on the dead-letter queue; returns how many letters it acted on (listed,
/// replayed or dropped). Prints one line per letter. A chosen letter whose body is no job is
/// not replayed (it stays in the queue); the others are, and then that is the error.
pub async fn over_broker(config: &AmqpConfig, action: Action, choice: &Choice) -> Result<usize> {
    let endpoint =
        crate::broker::Waiting::retry(config, || AmqpEndpoint::connect(config, None, 1)).await?;
    let found = crate::broker::amqp::inspect_queues(config, &[Queue::DeadLetter]).await?;
    if found[0].1.is_none() {
        println!("no dead-letter queue yet: nothing was ever refused");
        endpoint.close().await;
        return Ok(0);
    }
    let letters = endpoint.take_dead_letters(MAX_LETTERS).await?;
    let done = act(&endpoint, action, choice, &letters).await;
    // Letters not settled go back to the queue, in their place.
    endpoint.close().await;
    done?.result()
}

async fn act(
    endpoint: &AmqpEndpoint,
    action: Action,
    choice: &Choice,
    letters: &[DeadLetter],
) -> Result<Tally> {
    let mut tally = Tally::default();
    for letter in letters {
        let id = id_of(&letter.body);
        let kind = Kind::of(&letter.body);
        let from = letter.from.as_deref();
        match action {
            Action::List => {
                say(&describe(&id, from.unwrap_or("-"), &kind, &letter.reason));
                if let Some(note) = mismatch(&id, from, &kind) {
                    warn(&note);
                }
            }
            _ if !choice.picks(&id) => continue,
            Action::Replay => {
                let to = match kind.replay_to() {
                    Ok(to) => to,
                    Err(why) => {
                        tally.refuse(&id, &why);
                        continue;
                    }
                };
                if let Some(note) = mismatch(&id, from, &kind) {
                    warn(&note);
                }
                endpoint.replay(letter, to).await?;
                endpoint.settle(letter).await?;
                say(&format!("replayed {id} to {}", to.stage()));
            }
            Action::Drop => {
                endpoint.settle(letter).await?;
                say(&format!("dropped {id}"));
            }
        }
        tally.done += 1;
    }
    Ok(tally)
}

/// The same for the embedded mode's `INBOX/dead-letter/`, where only the targets signer
/// dead-letters (the inbox feeds it alone): a replayed job goes back into the inbox, so only
/// a signed submission is replayed; any other body stays, and the error says why.
pub fn in_inbox(inbox: &Path, action: Action, choice: &Choice) -> Result<usize> {
    let dir = inbox.join("dead-letter");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("cannot list", &dir)(e)),
    };
    files.sort();
    let mut tally = Tally::default();
    for (seq, file) in files.iter().enumerate() {
        let body = std::fs::read(file).map_err(Error::io("cannot read", file))?;
        let reason_file = file.with_extension("reason");
        let reason = std::fs::read(&reason_file)
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .unwrap_or_default();
        let id = id_of(&body);
        let kind = Kind::of(&body);
        match action {
            Action::List => say(&describe(&id, Queue::Targets.stage(), &kind, &reason)),
            _ if !choice.picks(&id) => continue,
            Action::Replay => {
                match kind.replay_to() {
                    Ok(Queue::Targets) => {}
                    Ok(other) => {
                        tally.refuse(
                            &id,
                            &format!(
                                "a {} job, and the inbox feeds only the targets signer (the \
                                 embedded mode passes the later stages' jobs in-process, and \
                                 the targets signer hands its files on again when it starts)",
                                other.stage()
                            ),
                        );
                        continue;
                    }
                    Err(why) => {
                        tally.refuse(&id, &why);
                        continue;
                    }
                }
                submit_to_inbox(inbox, &body, seq)?;
                remove(file, &reason_file)?;
                say(&format!("replayed {id} to targets"));
            }
            Action::Drop => {
                remove(file, &reason_file)?;
                say(&format!("dropped {id}"));
            }
        }
        tally.done += 1;
    }
    sync_dir(&dir).or_else(|e| if dir.exists() { Err(e) } else { Ok(()) })?;
    tally.result()
}

fn remove(file: &Path, reason: &Path) -> Result<()> {
    std::fs::remove_file(file).map_err(Error::io("cannot remove", file))?;
    match std::fs::remove_file(reason) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("cannot remove", reason)(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobSignature, NewTarget, TargetHashes};
    use crate::repository::MetaEntry;
    use serde_json::json;

    const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J";

    fn submission() -> Vec<u8> {
        let (key, _) = crate::keys::SigningKey::generate().unwrap();
        let job = TargetsJob {
            add: vec![NewTarget {
                name: "drupal/token/1.9.0.0".into(),
                length: 3,
                hashes: TargetHashes {
                    sha256: "a".repeat(64),
                    sha512: "b".repeat(128),
                },
            }],
            ..Default::default()
        };
        crate::submission::sign(&job, &key).unwrap()
    }

    fn meta(version: u64) -> MetaEntry {
        MetaEntry {
            version,
            length: 10,
            sha256: "c".repeat(64),
        }
    }

    fn bytes(value: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let text = format!("reason {EVIL} end");
        let shown = printable(&text);
        assert_eq!(shown, "reason \\u{1b}]0;pwned\\u{7}\\u{1b}[2J end");
        for raw in [
            "\n", "\r", "\t", "\u{7f}", "\u{9b}", "\0", "\u{202e}", "\u{2066}",
        ] {
            let shown = printable(raw);
            assert!(shown.starts_with("\\u{"), "{raw:?} shown as {shown:?}");
            assert!(!shown.chars().any(char::is_control));
        }
        for kept in ["targets", "café/x", "日本語 ✓", "a\\u{1b}b", ""] {
            assert!(matches!(printable(kept), Cow::Borrowed(k) if k == kept));
        }
    }

    #[test]
    fn a_signed_submission_is_for_targets() {
        let kind = Kind::of(&submission());
        assert!(matches!(kind, Kind::Submission { .. }), "{kind:?}");
        assert_eq!(kind.replay_to(), Ok(Queue::Targets));
        let summary = kind.summary();
        assert!(
            summary.starts_with("targets submission issued ")
                && summary.ends_with("add 1, remove 0"),
            "{summary}"
        );
    }

    #[test]
    fn snapshot_and_timestamp_jobs_are_for_their_stages() {
        let snapshot = SnapshotJob {
            meta: [("bin-0-f.json".to_string(), meta(3))].into(),
            ..Default::default()
        };
        let kind = Kind::of(&serde_json::to_vec(&snapshot).unwrap());
        assert_eq!(kind.replay_to(), Ok(Queue::Snapshot));
        assert_eq!(kind.summary(), "snapshot job, 1 file(s)");
        let signed = SnapshotJob {
            signature: Some(JobSignature {
                keyid: "k".into(),
                sig: "s".into(),
            }),
            refresh_expiry: true,
            ..Default::default()
        };
        let kind = Kind::of(&serde_json::to_vec(&signed).unwrap());
        assert_eq!(kind.replay_to(), Ok(Queue::Snapshot));
        assert_eq!(
            kind.summary(),
            "snapshot job, 0 file(s), signed, refresh expiry"
        );
        let timestamp = TimestampJob {
            snapshot: Some(meta(7)),
            ..Default::default()
        };
        let kind = Kind::of(&serde_json::to_vec(&timestamp).unwrap());
        assert_eq!(kind.replay_to(), Ok(Queue::Timestamp));
        assert_eq!(kind.summary(), "timestamp job, snapshot version 7");
    }

    #[test]
    fn what_is_no_stages_job_is_not_replayed_and_says_why() {
        for (body, why) in [
            (b"garbage".to_vec(), "7 bytes, not JSON"),
            (bytes(json!([1, 2])), "not an object"),
            (bytes(json!({})), "no stage's job"),
            (bytes(json!({"frobnicate": 1})), "no stage's job"),
            (bytes(json!({"refresh_expiry": true})), "expiry flags alone"),
            (bytes(json!({"check_expiry": true})), "expiry flags alone"),
            (bytes(json!({"add": []})), "unsigned targets job"),
            (
                bytes(json!({"add": [], "frobnicate": 1})),
                "not a targets job",
            ),
            (
                bytes(json!({"meta": {}, "snapshot": {}})),
                "not a snapshot job",
            ),
            (
                bytes(json!({"snapshot": {"version": "x"}})),
                "not a timestamp job",
            ),
            (
                bytes(json!({"signed": {"_type": "root"}, "signatures": []})),
                "a \"root\", not a submission",
            ),
            (
                bytes(
                    json!({"signed": {"_type": "submission", "issued": "2026-01-01T00:00:00Z",
                    "job": {"add": []}}, "signatures": []}),
                ),
                "without a signature",
            ),
            (
                bytes(
                    json!({"signed": {"_type": "submission", "issued": "2026-01-01T00:00:00Z",
                    "job": {"frobnicate": 1}}, "signatures": [{}]}),
                ),
                "does not parse",
            ),
        ] {
            let kind = Kind::of(&body);
            let err = kind.replay_to().unwrap_err();
            assert!(
                err.contains(why),
                "{}: {err}",
                String::from_utf8_lossy(&body)
            );
            assert!(
                kind.summary().starts_with("not a job ("),
                "{}",
                kind.summary()
            );
        }
    }

    #[test]
    fn a_header_that_disagrees_with_the_body_is_reported_and_the_body_wins() {
        let kind = Kind::of(&submission());
        let note = mismatch("abc", Some("snapshot"), &kind).unwrap();
        assert!(
            note.contains("\"snapshot\"") && note.contains("replay sends it to targets"),
            "{note}"
        );
        assert!(mismatch("abc", Some("targets"), &kind).is_none());
        assert!(mismatch("abc", None, &kind).is_none());
        let garbage = Kind::of(b"garbage");
        assert!(mismatch("abc", Some("snapshot"), &garbage).is_none());
        // A forged header's own escapes are shown as text too.
        let note = mismatch("abc", Some(EVIL), &kind).unwrap();
        assert!(!printable(&note).contains(['\u{1b}', '\u{7}']), "{note}");
    }

    #[test]
    fn a_listed_line_holds_no_raw_control_character() {
        let line = describe("abc", EVIL, &Kind::of(EVIL.as_bytes()), EVIL);
        let shown = printable(&line);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(shown.contains("\\u{1b}]0;pwned\\u{7}"), "{shown}");
    }

    #[test]
    fn a_refused_replay_names_the_letter_and_why() {
        let mut tally = Tally::default();
        tally.refuse("0123abcd", &format!("no stage takes it: {EVIL}"));
        let err = tally.result().unwrap_err().to_string();
        assert!(
            err.contains("dead letter 0123abcd not replayed: no stage takes it"),
            "{err}"
        );
        assert!(!err.chars().any(char::is_control), "{err}");
    }

    #[test]
    fn inbox_letters_print_escaped_and_replay_only_submissions() {
        let dir = tempfile::tempdir().unwrap();
        let letters = dir.path().join("dead-letter");
        std::fs::create_dir(&letters).unwrap();
        let snapshot = bytes(json!({"meta": {"bin-0-f.json": {"version": 3, "length": 10,
            "sha256": "c".repeat(64)}}}));
        for (name, body) in [("1.json", submission()), ("2.json", snapshot.clone())] {
            std::fs::write(letters.join(name), &body).unwrap();
            std::fs::write(letters.join(name).with_extension("reason"), EVIL).unwrap();
        }
        let all = Choice {
            ids: Vec::new(),
            all: true,
        };
        assert_eq!(in_inbox(dir.path(), Action::List, &all).unwrap(), 2);
        let err = in_inbox(dir.path(), Action::Replay, &all)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "dead letter {} not replayed: a snapshot job",
                id_of(&snapshot)
            )),
            "{err}"
        );
        // The submission went back into the inbox; the snapshot job stayed.
        let inbox: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .collect();
        assert_eq!(inbox.len(), 1);
        assert!(letters.join("2.json").exists() && letters.join("2.reason").exists());
        assert!(!letters.join("1.json").exists() && !letters.join("1.reason").exists());
    }
}
