//! What can go wrong when updating from a repository, typed so that a caller can branch on it
//! (retry a download, alarm on a rollback, tell an operator the repository is frozen). The
//! messages say which file and why; the variant says what kind of failure it is.

use std::path::PathBuf;

/// A failed update step; which kind of failure is the variant.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Signatures missing, invalid or below the threshold of the keys that must sign.
    #[error("verification failed: {0}")]
    Unsigned(String),

    /// A version older than one already trusted (§5.3, §5.4, §5.5): an attacker may be
    /// replaying old metadata.
    #[error("verification failed: rollback: {0}")]
    Rollback(String),

    /// Metadata past its expiry at the update's reference time: the repository may be frozen
    /// by an attacker, or its signers are down.
    #[error(
        "verification failed: {role} expired at {expires}; the repository may be frozen by an \
         attacker, or its signers are down"
    )]
    Expired {
        /// The role that expired (`timestamp`, `bin-000-001`...).
        role: String,
        /// When it expired, as RFC 3339.
        expires: String,
    },

    /// A file whose length or hashes differ from what the metadata above it signed for it.
    #[error("verification failed: {0}")]
    LengthOrHash(String),

    /// Metadata that is not what the workflow expects at this step: unparsable, the wrong
    /// `_type`, a version other than the one named, a role the snapshot does not list.
    #[error("verification failed: {0}")]
    BadMetadata(String),

    /// The same version as the one already trusted: nothing to update (not a failure for the
    /// updater, which keeps what it trusts).
    #[error("{0}: same version as the one already trusted")]
    SameVersion(String),

    /// A step asked for out of the specification's order (a programming error).
    #[error("update workflow: {0}")]
    Order(&'static str),

    /// The file could not be fetched (network, HTTP status, too long, missing).
    #[error("download {url}: {reason}")]
    Download {
        /// The address fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// The local metadata or target folder could not be read or written.
    #[error("{context}: {path}: {source}")]
    Storage {
        /// What we were doing (`cannot write`).
        context: &'static str,
        /// The file or folder it was done to.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A request the caller made that cannot be met (no trusted root yet, a bad target name).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub(crate) fn storage(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Storage {
            context,
            path,
            source,
        }
    }

    /// The crate's checks ([`crate::verify`]) report signature and meta failures as
    /// `Error::Verify`; here they are signature failures unless they came from a meta check.
    pub(crate) fn unsigned(e: crate::Error) -> Error {
        match e {
            crate::Error::Verify(m) => Error::Unsigned(m),
            other => Error::BadMetadata(other.to_string()),
        }
    }
}

/// The updater's result: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;
