//! One error type for the whole crate. Every variant says what failed and, where it helps,
//! what to do next, because these messages are what an operator reads at 3 a.m.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}: not valid {what} metadata: {source}")]
    Parse {
        what: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("cannot encode {what} as canonical JSON: {reason}")]
    Canonical { what: String, reason: String },

    #[error("key {path}: {reason}")]
    Key { path: PathBuf, reason: String },

    /// The key's holder could not sign (a token unplugged or refusing): the batch fails
    /// before anything is written and is retried.
    #[error("cannot sign: {0} (the batch is retried; check the key's token or service)")]
    Signing(String),

    #[error("repository {path}: {reason}")]
    Repository { path: PathBuf, reason: String },

    #[error("invalid job: {0}")]
    InvalidJob(String),

    /// The broker failed us; `unreachable` when it is out of reach (down, restarting, the
    /// connection cut) rather than refusing (decided where its client's error is known:
    /// `broker::amqp`).
    #[error("broker: {context}: {reason}")]
    Broker {
        context: String,
        reason: String,
        unreachable: bool,
    },

    #[error("broker: {0}")]
    BrokerRefused(String),

    /// The broker could not take a job this time (a publish nacked: a quorum queue between
    /// leaders, a resource alarm): sent again.
    #[error("broker: {0}")]
    BrokerBusy(String),

    #[error("verification failed: {0}")]
    Verify(String),

    /// A file a signer would adopt as its state does not verify: never re-signed, and no
    /// retry can fix it.
    #[error(
        "{path}: {reason}; this signer will not adopt or re-sign it. Find out who wrote it \
         (any agent that can write the volume could have), restore it from a copy you trust \
         or move it out of metadata/, and start the signer again (`tuf-client validate --root \
         ROOT` lists every such file)"
    )]
    Untrusted { path: PathBuf, reason: String },

    #[error("download {url}: {reason}")]
    Download { url: String, reason: String },

    /// A command's mistake: a flag missing, a value that does not parse, a choice that
    /// cannot be made. Nothing was done.
    #[error("{0}")]
    Usage(String),

    /// A `--wait` that gave up; what it waited for is still queued.
    #[error("{0}")]
    TimedOut(String),

    /// An understood request refused for the reason given (a root draft that cannot be
    /// published yet): the same request may succeed once that is mended.
    #[error("{0}")]
    Refused(String),

    /// A bug: a task that panicked.
    #[error("internal error: {0}")]
    Internal(String),

    /// A published file that fails the check a client makes of it (signatures, version,
    /// length and hashes, expiry), named by its path.
    #[error("{path}: {source}")]
    Published {
        path: PathBuf,
        source: crate::updater::Error,
    },

    /// What the verifying updater found (typed: rollback, expiry, signatures, download...).
    #[error(transparent)]
    Update(#[from] crate::updater::Error),
}

impl Error {
    pub fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            context,
            path,
            source,
        }
    }

    /// Whether the job is at fault (malformed, unsigned, naming files its signer never
    /// wrote): it goes to the dead-letter queue with this reason, and the batch goes on.
    pub fn is_job_fault(&self) -> bool {
        matches!(self, Error::InvalidJob(_))
    }

    /// What stops a signer rather than making it reconnect and retry: a key the root does not
    /// list, state that does not verify, or a configuration mistake (an AMQP URL that does
    /// not parse, say), which the operator must fix. Everything else (a lost broker, a failed
    /// write) is worth another try.
    pub fn restart_cannot_fix(&self) -> bool {
        matches!(
            self,
            Error::Key { .. } | Error::Untrusted { .. } | Error::Usage(_)
        )
    }

    /// Whether this is a write that failed for want of space (`ENOSPC`, or a quota):
    /// pruning superseded versions may let it through.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)))
    }

    /// Whether this is the broker being out of reach (down, restarting, the connection cut)
    /// rather than refusing us: the first is worth waiting out, the second is not.
    pub fn is_broker_unreachable(&self) -> bool {
        match self {
            Error::Broker { unreachable, .. } => *unreachable,
            Error::BrokerBusy(_) => true,
            _ => false,
        }
    }
}
