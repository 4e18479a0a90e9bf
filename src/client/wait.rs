//! `add-targets --wait` and `remove-targets --wait`: what became of each name submitted.
//!
//! - **signed**: a `timestamp.json` covers it as submitted, checked as a client checks it
//!   ([`Coverage`]);
//! - **refused**: the targets signer's receipt for the submission says why (a release
//!   already signed with other content, see [`crate::submission::Mutable`]; or the whole
//!   submission, sent to the dead-letter queue: a signature it does not trust, say);
//! - **replaced**: the submission was applied, and a later one changed the name again
//!   (or had already: the ledger left it out as superseded), so what is published is
//!   someone else's, in a bin at least as new as the one this submission wrote.
//!
//! So a submission the signers applied never ends in a timeout: only one that was never
//! applied (signers stopped or paused, a broker that lost it) does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::coverage::{Coverage, Expected};
use crate::pin::Pin;
use crate::progress::{Progress, Show};
use crate::repository::receipts::{ReceiptReader, Receipts};
use crate::repository::Layout;
use crate::{Error, Result};

/// Calls `check` every `every` until it gives a value, or until `timeout` has passed since
/// `started` (then `None`): how every `--wait` waits.
pub async fn poll<T>(
    started: Instant,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if started.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// [`poll`], saying on stderr every 10 seconds that it still waits for `what`: a long wait
/// is not a silent one.
pub async fn poll_saying<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let started = Instant::now();
    let mut said = started;
    poll(started, timeout, every, || {
        let value = check();
        if value.is_none() && said.elapsed() >= SAY_EVERY {
            said = Instant::now();
            eprintln!(
                "waiting for {what}: {:.0} s of --timeout {:.0} s",
                started.elapsed().as_secs_f64(),
                timeout.as_secs_f64()
            );
        }
        value
    })
    .await
}

const SAY_EVERY: Duration = Duration::from_secs(10);

/// What became of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The published metadata shows the name as submitted.
    Signed,
    /// The targets signer refused it, for the reason given.
    Refused(String),
    /// Applied, then changed by a later submission: what is published is the later one.
    Replaced,
}

/// Follows one command's submissions to their outcome.
pub struct Wait {
    coverage: Coverage,
    receipts: ReceiptReader,
    /// Each submission's names.
    names_of: HashMap<String, Vec<String>>,
    /// Submissions without a receipt yet.
    unreceipted: HashSet<String>,
    /// For each applied name, the bins its batch wrote, at their versions after it.
    landed: HashMap<String, std::sync::Arc<BTreeMap<String, u64>>>,
    /// The names decided so far.
    pub outcomes: BTreeMap<String, Outcome>,
    /// How a wait for more than one name shows how many are decided.
    show: Show,
}

impl Wait {
    /// Starts following the receipts of `layout`'s repository: made before anything is
    /// sent, so that no receipt is missed.
    pub fn new(layout: Layout, pin: Pin) -> Wait {
        Wait {
            receipts: Receipts::new(&layout).follow(),
            coverage: Coverage::new(layout, pin),
            names_of: HashMap::new(),
            unreceipted: HashSet::new(),
            landed: HashMap::new(),
            outcomes: BTreeMap::new(),
            show: Show::Lines,
        }
    }

    /// The same, showing progress as `show` says (plain lines by default).
    pub fn showing(self, show: Show) -> Wait {
        Wait { show, ..self }
    }

    /// Submission `id` carried `names`.
    pub fn sent(&mut self, id: String, names: Vec<String>) {
        self.unreceipted.insert(id.clone());
        self.names_of.insert(id, names);
    }

    /// Decides what it can now; names decided leave `pending`. Fails only as [`Coverage`]
    /// does (published metadata that does not verify, or a read racing a rename).
    pub fn poll(&mut self, pending: &mut Expected) -> Result<u64> {
        let before: Vec<String> = pending.keys().cloned().collect();
        let progress = self.coverage.check(pending);
        for name in before {
            if !pending.contains_key(&name) {
                self.outcomes.insert(name, Outcome::Signed);
            }
        }
        let ids: HashSet<String> = self.names_of.keys().cloned().collect();
        for receipt in self.receipts.read_new(&ids) {
            for id in receipt.jobs.iter().filter(|id| ids.contains(*id)) {
                self.unreceipted.remove(id);
                if let Some(why) = receipt.dead_lettered.get(id) {
                    let why = format!(
                        "the targets signer refused the submission: {why} (it is in the \
                         dead-letter queue: tuf-client dead-letters)"
                    );
                    for name in &self.names_of[id].clone() {
                        self.decide(pending, name, Outcome::Refused(why.clone()));
                    }
                    continue;
                }
                let refused = receipt.refused.get(id);
                let superseded = receipt.superseded.get(id);
                let bins = std::sync::Arc::new(receipt.bins.clone());
                for name in &self.names_of[id].clone() {
                    if let Some(why) = refused.and_then(|r| r.get(name)) {
                        self.decide(pending, name, Outcome::Refused(why.clone()));
                    } else if superseded.is_some_and(|s| s.contains(name)) {
                        self.decide(pending, name, Outcome::Replaced);
                    } else {
                        self.landed.insert(name.clone(), bins.clone());
                    }
                }
            }
        }
        // Applied, then changed by a later submission: the published bin is at least as new
        // as the one this submission wrote, and shows other content.
        let replaced: Vec<String> = pending
            .keys()
            .filter(|name| {
                let (Some(bins), Some(published)) =
                    (self.landed.get(*name), self.coverage.published(name))
                else {
                    return false;
                };
                bins.get(&published.bin)
                    .is_some_and(|version| published.bin_version >= *version)
            })
            .cloned()
            .collect();
        for name in replaced {
            self.decide(pending, &name, Outcome::Replaced);
        }
        Ok(progress?.timestamp_version)
    }

    fn decide(&mut self, pending: &mut Expected, name: &str, outcome: Outcome) {
        if pending.remove(name).is_some() {
            self.outcomes.insert(name.to_string(), outcome);
        }
    }

    /// Polls until every name has an outcome or `timeout` has passed since `started`,
    /// saying on stderr how far it got; then reports refused and replaced names there.
    /// Fails when a name was refused, or on the timeout, saying why it waited in vain.
    pub async fn run(
        &mut self,
        mut pending: Expected,
        started: Instant,
        timeout: Duration,
    ) -> Result<()> {
        let total = pending.len();
        // One name is decided or not: no progress to show.
        let show = if total > 1 { self.show } else { Show::Hidden };
        let mut progress = Progress::new("done", " names", total as u64, show);
        // The last check that failed, said if the wait times out (a read can race with a
        // signer's rename, which the next poll gets past; a repository that does not verify
        // does not).
        let mut last_error: Option<Error> = None;
        let every = Duration::from_millis(20);
        let done = poll(started, timeout, every, || {
            match self.poll(&mut pending) {
                Err(e) => last_error = Some(e),
                Ok(_) => last_error = None,
            }
            progress.set((total - pending.len()) as u64);
            pending.is_empty().then_some(())
        })
        .await;
        progress.finish();
        if done.is_none() {
            return Err(self.timed_out(last_error.as_ref(), pending.len(), total, timeout));
        }
        self.report(total, started)
    }

    /// Why the wait for `left` of `total` names ran out of time, and what to look at.
    fn timed_out(
        &self,
        last_error: Option<&Error>,
        left: usize,
        total: usize,
        timeout: Duration,
    ) -> Error {
        let why = match last_error {
            Some(e) => format!("the published metadata does not verify: {e}"),
            None if !self.unreceipted.is_empty() => format!(
                "{} of {} job(s) neither applied nor refused by the targets signer \
                 yet (a refusal is reported at once): is it running, or paused? \
                 (tuf-client status --repo ...)",
                self.unreceipted.len(),
                self.names_of.len()
            ),
            None => "every job was applied; the snapshot and timestamp signers have \
                     not published it yet: are they running? (tuf-client status \
                     --repo ...)"
                .into(),
        };
        Error::Verify(format!(
            "timed out after {timeout:?}: {left} of {total} target(s) not yet covered by \
             timestamp.json; {why}"
        ))
    }

    /// Says what became of the names: refused and replaced ones by name, on stderr; the
    /// count on stdout. Refused names make it fail.
    fn report(&self, total: usize, started: Instant) -> Result<()> {
        let mut signed = 0;
        let mut refused = 0;
        let mut replaced = 0;
        for (name, outcome) in &self.outcomes {
            match outcome {
                Outcome::Signed => signed += 1,
                Outcome::Refused(why) => {
                    refused += 1;
                    eprintln!("refused: {name}: {why}");
                }
                Outcome::Replaced => {
                    replaced += 1;
                    eprintln!(
                        "replaced: {name}: a later submission changed it after this one was \
                         applied; what is published is the later one"
                    );
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        if signed == total {
            println!("{total} target(s) covered by timestamp.json in {secs:.3} s");
        } else {
            println!(
                "{total} target(s) in {secs:.3} s: {signed} signed (covered by \
                 timestamp.json), {refused} refused, {replaced} replaced by a later submission"
            );
        }
        if refused > 0 {
            return Err(Error::InvalidJob(format!(
                "{refused} of {total} target(s) refused (each named above, with why); the \
                 rest were applied"
            )));
        }
        Ok(())
    }
}
