//! One error type for the whole crate. Every variant says what failed and, where it helps,
//! what to do next, because these messages are what an operator reads at 3 a.m.

use std::path::PathBuf;

/// The crate's result: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail in the crate; its `Display` is what the operator reads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed: reading, writing, renaming, locking.
    #[error("{context}: {path}: {source}")]
    Io {
        /// What we were doing (`cannot read the draft`).
        context: &'static str,
        /// The file or folder it was done to.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A metadata file that is not JSON of the expected shape.
    #[error("{path}: not valid {what} metadata: {source}")]
    Parse {
        /// Which metadata was expected (`root`, `targets`...).
        what: &'static str,
        /// The file read.
        path: PathBuf,
        /// What the JSON parser said.
        source: serde_json::Error,
    },

    /// A value canonical JSON cannot encode (a float, say): nothing is signed.
    #[error("cannot encode {what} as canonical JSON: {reason}")]
    Canonical {
        /// What was being encoded.
        what: String,
        /// Why it cannot be.
        reason: String,
    },

    /// A key file that cannot be read, parsed or used, or a key the root does not list: the
    /// signer stops (see [`Error::restart_cannot_fix`]).
    #[error("key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The key's holder could not sign (a token unplugged or refusing): the batch fails
    /// before anything is written and is retried.
    #[error("cannot sign: {0} (the batch is retried; check the key's token or service)")]
    Signing(String),

    /// The repository on disk is not as expected: a staging area locked by another signer,
    /// a repository already there, a signer's version record that does not parse.
    #[error("repository {path}: {reason}")]
    Repository {
        /// The file or folder at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A job that is malformed, unsigned or names files its signer never wrote: it is
    /// dead-lettered and the batch goes on (see [`Error::is_job_fault`]).
    #[error("invalid job: {0}")]
    InvalidJob(String),

    /// The broker failed us; `unreachable` when it is out of reach (down, restarting, the
    /// connection cut) rather than refusing (decided where its client's error is known:
    /// `broker::amqp`).
    #[error("broker: {context}: {reason}")]
    Broker {
        /// What we asked the broker to do.
        context: String,
        /// What went wrong.
        reason: String,
        /// Whether the broker was out of reach rather than refusing (worth waiting out).
        unreachable: bool,
    },

    /// The broker refused us (our consumer cancelled, a queue closed, publisher confirms off),
    /// or was out of reach longer than `--broker-wait`: not worth retrying as is.
    #[error("broker: {0}")]
    BrokerRefused(String),

    /// The broker could not take a job this time (a publish nacked: a quorum queue between
    /// leaders, a resource alarm): sent again.
    #[error("broker: {0}")]
    BrokerBusy(String),

    /// A signature, threshold or meta check failed: the file is not trusted.
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
    Untrusted {
        /// The file at fault.
        path: PathBuf,
        /// Which check it failed.
        reason: String,
    },

    /// Fetching a file over HTTP failed or it was not as expected (too long, not found).
    #[error("download {url}: {reason}")]
    Download {
        /// The address fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },

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
        /// The published file that failed, in the repository folder.
        path: PathBuf,
        /// The check it failed.
        source: crate::updater::Error,
    },

    /// What the verifying updater found (typed: rollback, expiry, signatures, download...).
    #[error(transparent)]
    Update(#[from] crate::updater::Error),
}

impl Error {
    /// A `map_err` for an I/O failure: it names what was being done (`context`) and to which
    /// `path`.
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
