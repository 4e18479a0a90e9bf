//! The embedded mode's transport: in-process channels between the three roles, fed from an
//! inbox folder. A submission is a file in the inbox; it is deleted only once the targets
//! signer has durably signed it and handed it on, so a restart loses nothing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::{Delivery, Handle, Queue};
use crate::repository::layout::{create_dir, sync_dir, write_durably};
use crate::{Error, Result};

struct Message {
    body: Vec<u8>,
    source: Option<PathBuf>,
}

pub struct MemoryBroker {
    senders: HashMap<Queue, UnboundedSender<Message>>,
    receivers: Mutex<HashMap<Queue, UnboundedReceiver<Message>>>,
    in_flight: Mutex<HashSet<PathBuf>>,
}

pub struct MemoryEndpoint {
    broker: Arc<MemoryBroker>,
    rx: Option<UnboundedReceiver<Message>>,
}

impl MemoryBroker {
    pub fn new() -> Arc<MemoryBroker> {
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for q in [Queue::Targets, Queue::Snapshot, Queue::Timestamp] {
            let (tx, rx) = unbounded_channel();
            senders.insert(q, tx);
            receivers.insert(q, rx);
        }
        Arc::new(MemoryBroker {
            senders,
            receivers: Mutex::new(receivers),
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    /// An endpoint that consumes `queue` (each queue has one consumer in this mode).
    pub fn endpoint(self: &Arc<Self>, consume: Option<Queue>) -> MemoryEndpoint {
        let rx = consume.and_then(|q| self.receivers.lock().expect("lock").remove(&q));
        MemoryEndpoint {
            broker: self.clone(),
            rx,
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

impl MemoryEndpoint {
    pub(super) async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>> {
        let rx = self.rx.as_mut().expect("a consuming endpoint");
        let first = rx
            .recv()
            .await
            .ok_or_else(|| Error::BrokerRefused("the in-process queue closed".into()))?;
        let mut batch = vec![to_delivery(first)];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(m) => batch.push(to_delivery(m)),
                Err(_) => break,
            }
        }
        Ok(batch)
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
        let Handle::Memory(Some(source)) = &delivery.handle else {
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
        self.broker.in_flight.lock().expect("lock").remove(source);
        Ok(())
    }

    pub(super) fn ack(&self, batch: &[Delivery]) -> Result<()> {
        let mut dirs = HashSet::new();
        for d in batch {
            if let Handle::Memory(Some(source)) = &d.handle {
                match std::fs::remove_file(source) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("cannot remove a done inbox file", source)(e)),
                }
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
        handle: Handle::Memory(m.source),
    }
}
