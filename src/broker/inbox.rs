//! The embedded mode's transport: in-process channels between the three roles, fed from an
//! inbox folder. A submission is a file in the inbox; it is deleted only once the targets
//! signer has durably signed it and handed it on, so a restart loses nothing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::{Delivery, Handle, Queue};
use crate::durable::{create_dir, sync_dir, write_durably};
use crate::{Error, Result};

struct Message {
    body: Vec<u8>,
    source: Option<PathBuf>,
}

type Receiver = Arc<tokio::sync::Mutex<UnboundedReceiver<Message>>>;

/// The embedded mode's in-process queues, one channel per role, and the inbox files being
/// processed.
pub struct Inbox {
    senders: HashMap<Queue, UnboundedSender<Message>>,
    receivers: HashMap<Queue, Receiver>,
    in_flight: Mutex<HashSet<PathBuf>>,
}

/// A role's end of the in-process queues. Dropped with jobs unacknowledged (the role failed
/// and reconnects), it hands their inbox files back to the feeder, as a broker would
/// redeliver them.
pub struct InboxEndpoint {
    broker: Arc<Inbox>,
    rx: Option<Receiver>,
    unacked: Mutex<HashSet<PathBuf>>,
}

impl Drop for InboxEndpoint {
    fn drop(&mut self) {
        let unacked = std::mem::take(&mut *self.unacked.lock().expect("lock"));
        let mut in_flight = self.broker.in_flight.lock().expect("lock");
        for path in unacked {
            in_flight.remove(&path);
        }
    }
}

impl Inbox {
    /// Empty queues for the targets, snapshot and timestamp roles.
    pub fn new() -> Arc<Inbox> {
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for q in [Queue::Targets, Queue::Snapshot, Queue::Timestamp] {
            let (tx, rx) = unbounded_channel();
            senders.insert(q, tx);
            receivers.insert(q, Arc::new(tokio::sync::Mutex::new(rx)));
        }
        Arc::new(Inbox {
            senders,
            receivers,
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    /// An endpoint that consumes `queue` (each queue has one consumer in this mode).
    pub fn endpoint(self: &Arc<Self>, consume: Option<Queue>) -> InboxEndpoint {
        InboxEndpoint {
            broker: self.clone(),
            rx: consume.and_then(|q| self.receivers.get(&q).cloned()),
            unacked: Mutex::new(HashSet::new()),
        }
    }

    /// Feeds the targets queue from `inbox`, oldest file first, until the process ends.
    pub async fn feed_from_inbox(self: Arc<Self>, inbox: PathBuf) -> Result<()> {
        create_dir(&inbox)?;
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&inbox)
                .map_err(Error::io("cannot list inbox", &inbox))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_job_file(p))
                .collect();
            files.sort();
            for path in files {
                if !self.in_flight.lock().expect("lock").insert(path.clone()) {
                    continue;
                }
                match std::fs::read(&path) {
                    Ok(body) => {
                        let _ = self.senders[&Queue::Targets].send(Message {
                            body,
                            source: Some(path),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot read inbox file");
                        self.in_flight.lock().expect("lock").remove(&path);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn is_job_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && name.ends_with(".json") && p.is_file()
}

/// Drops a job into an inbox folder (the client's side of the embedded mode).
pub fn submit_to_inbox(inbox: &Path, body: &[u8], seq: usize) -> Result<PathBuf> {
    create_dir(inbox)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = inbox.join(format!("{nanos:024}-{}-{seq:06}.json", std::process::id()));
    write_durably(&path, body)?;
    Ok(path)
}

impl InboxEndpoint {
    pub(super) async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>> {
        let mut rx = self.rx.as_ref().expect("a consuming endpoint").lock().await;
        let first = rx
            .recv()
            .await
            .ok_or_else(|| Error::BrokerRefused("the in-process queue closed".into()))?;
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut unacked = self.unacked.lock().expect("lock");
        unacked.extend(batch.iter().filter_map(|m| m.source.clone()));
        Ok(batch.into_iter().map(to_delivery).collect())
    }

    pub(super) fn publish(&self, queue: Queue, body: &[u8]) -> Result<()> {
        self.broker.senders[&queue]
            .send(Message {
                body: body.to_vec(),
                source: None,
            })
            .map_err(|_| Error::BrokerRefused(format!("the in-process {queue:?} queue is closed")))
    }

    /// Moves the inbox file to `inbox/dead-letter/`, with the reason beside it.
    pub(super) fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        let Handle::Inbox(Some(source)) = &delivery.handle else {
            tracing::error!(
                reason,
                "dropped an in-process job that could not be processed"
            );
            return Ok(());
        };
        let dir = source
            .parent()
            .unwrap_or(Path::new("."))
            .join("dead-letter");
        create_dir(&dir)?;
        let name = source.file_name().expect("inbox files have names");
        write_durably(&dir.join(name).with_extension("reason"), reason.as_bytes())?;
        std::fs::rename(source, dir.join(name))
            .map_err(Error::io("cannot move to dead-letter", source))?;
        sync_dir(&dir)?;
        self.unacked.lock().expect("lock").remove(source);
        self.broker.in_flight.lock().expect("lock").remove(source);
        Ok(())
    }

    pub(super) fn ack(&self, batch: &[Delivery]) -> Result<()> {
        let mut dirs = HashSet::new();
        for d in batch {
            if let Handle::Inbox(Some(source)) = &d.handle {
                match std::fs::remove_file(source) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("cannot remove a done inbox file", source)(e)),
                }
                self.unacked.lock().expect("lock").remove(source);
                self.broker.in_flight.lock().expect("lock").remove(source);
                dirs.insert(source.parent().unwrap_or(Path::new(".")).to_path_buf());
            }
        }
        dirs.iter().try_for_each(|d| sync_dir(d))
    }
}

fn to_delivery(m: Message) -> Delivery {
    Delivery {
        body: m.body,
        redelivered: false,
        handle: Handle::Inbox(m.source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unacknowledged_inbox_job_is_fed_again_and_removed_once_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("inbox");
        let path = submit_to_inbox(&inbox, b"{\"remove\":[\"a/b\"]}", 0).unwrap();
        let broker = Inbox::new();
        tokio::spawn(broker.clone().feed_from_inbox(inbox.clone()));

        let mut first = broker.endpoint(Some(Queue::Targets));
        let batch = first.next_batch(10).await.unwrap();
        assert_eq!(batch.len(), 1);
        drop(batch);
        drop(first); // the role failed before acknowledging

        let mut second = broker.endpoint(Some(Queue::Targets));
        let batch = tokio::time::timeout(Duration::from_secs(5), second.next_batch(10))
            .await
            .expect("the job comes back")
            .unwrap();
        assert_eq!(batch[0].body, b"{\"remove\":[\"a/b\"]}");
        assert!(path.exists(), "kept until acknowledged");
        second.ack(&batch).unwrap();
        assert!(!path.exists());
    }
}
