//! `tuf-client dead-letters`: the jobs the signers refused, with why, for an operator to
//! read, replay (once what made them fail is fixed) or drop.
//!
//! Each letter is named by its id, [`crate::submission::id_of`] its bytes: for a targets
//! submission the same id its receipt and the submitter's `--wait` use. Over RabbitMQ the
//! letters are taken from the dead-letter queue unacknowledged, so that those not replayed
//! or dropped stay there; in the embedded mode they are the files the signer moved to
//! `INBOX/dead-letter/` (each with its `.reason`).

use std::path::{Path, PathBuf};

use crate::broker::amqp::{AmqpConfig, AmqpEndpoint, DeadLetter};
use crate::broker::inbox::submit_to_inbox;
use crate::broker::Queue;
use crate::repository::layout::sync_dir;
use crate::submission::id_of;
use crate::{Error, Result};

/// What to do with the letters chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Show each letter: id, the queue it was refused from, what it holds, and why.
    List,
    /// Send each chosen letter's job to the queue it came from again, then remove it.
    Replay,
    /// Remove each chosen letter for good.
    Drop,
}

/// Which letters: those whose id starts with one of `ids`, or all.
#[derive(Debug, Clone)]
pub struct Choice {
    pub ids: Vec<String>,
    pub all: bool,
}

impl Choice {
    fn picks(&self, id: &str) -> bool {
        self.all || self.ids.iter().any(|p| id.starts_with(p.as_str()))
    }
}

/// The most letters looked at in one run.
const MAX_LETTERS: usize = 100_000;

/// One line about a letter: `ID  QUEUE  WHAT  reason`.
fn describe(id: &str, from: Queue, body: &[u8], reason: &str) -> String {
    format!("{id}  {:<9}  {}  {reason}", from.stage(), summary(body))
}

/// What a job holds, in a few words: for a submission, when it was issued and how many
/// names it adds and removes.
fn summary(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return format!("{} bytes, not JSON", body.len());
    };
    let job = value.pointer("/signed/job").unwrap_or(&value);
    let count = |field: &str| {
        job.get(field)
            .and_then(|v| v.as_array())
            .map_or(0, Vec::len)
    };
    let issued = value
        .pointer("/signed/issued")
        .and_then(|v| v.as_str())
        .map(|t| format!("issued {t}, "))
        .unwrap_or_default();
    format!("{issued}add {}, remove {}", count("add"), count("remove"))
}

/// `tuf-client dead-letters`: runs `action` on the letters the inbox or the broker holds, a line each, then
/// says how many were listed; replaying or dropping none is an error (a mistyped id).
pub async fn run(
    inbox: Option<PathBuf>,
    broker: &crate::cli::BrokerArgs,
    action: Action,
    choice: &Choice,
) -> Result<()> {
    use crate::broker::Via;
    if action != Action::List && choice.ids.is_empty() && !choice.all {
        return Err(Error::Usage(
            "which letters? give their ids (as `dead-letters` lists them) or --all".into(),
        ));
    }
    let done = match Via::choose(inbox, broker.config()?)? {
        Via::Inbox(dir) => in_inbox(&dir, action, choice)?,
        Via::Broker(config) => over_broker(&config, action, choice).await?,
    };
    if action == Action::List {
        eprintln!("{done} dead letter(s)");
    } else if done == 0 {
        return Err(Error::Usage("no dead letter has such an id".into()));
    }
    Ok(())
}

/// Runs `action` on the dead-letter queue; returns how many letters it acted on (listed,
/// replayed or dropped). Prints one line per letter.
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
    done
}

async fn act(
    endpoint: &AmqpEndpoint,
    action: Action,
    choice: &Choice,
    letters: &[DeadLetter],
) -> Result<usize> {
    let mut done = 0;
    for letter in letters {
        let id = id_of(&letter.body);
        let from = letter.from.unwrap_or(Queue::Targets);
        match action {
            Action::List => println!("{}", describe(&id, from, &letter.body, &letter.reason)),
            _ if !choice.picks(&id) => continue,
            Action::Replay => {
                endpoint.replay(letter).await?;
                endpoint.settle(letter).await?;
                println!("replayed {id} to {}", from.stage());
            }
            Action::Drop => {
                endpoint.settle(letter).await?;
                println!("dropped {id}");
            }
        }
        done += 1;
    }
    Ok(done)
}

/// The same for the embedded mode's `INBOX/dead-letter/`: a replayed job goes back into the
/// inbox.
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
    let mut done = 0;
    for (seq, file) in files.iter().enumerate() {
        let body = std::fs::read(file).map_err(Error::io("cannot read", file))?;
        let reason_file = file.with_extension("reason");
        let reason = std::fs::read_to_string(&reason_file).unwrap_or_default();
        let id = id_of(&body);
        match action {
            Action::List => println!("{}", describe(&id, Queue::Targets, &body, &reason)),
            _ if !choice.picks(&id) => continue,
            Action::Replay => {
                submit_to_inbox(inbox, &body, seq)?;
                remove(file, &reason_file)?;
                println!("replayed {id} to targets");
            }
            Action::Drop => {
                remove(file, &reason_file)?;
                println!("dropped {id}");
            }
        }
        done += 1;
    }
    sync_dir(&dir).or_else(|e| if dir.exists() { Err(e) } else { Ok(()) })?;
    Ok(done)
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
