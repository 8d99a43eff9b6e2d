//! Errors: [`ConfigError`] for bad usage or configuration (exit 1) and [`Error`]
//! for failures at run time (exit 2).
//!
//! The hot path never builds an error: a record without a key or a late record is
//! a verdict, not an `Err`. Errors are for what stops or misconfigures the run.

use std::io;
use std::path::PathBuf;

/// A flag or its value is wrong. The message always names the flag.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    /// The flag, as the user typed it (e.g. `--window`).
    pub flag: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A configuration error for `flag`.
    pub fn new(flag: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { flag: flag.into(), message: message.into() }
    }
}

/// A failure while running. Maps to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration, found only once the run starts (e.g. a state directory
    /// written with other settings).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading the input or writing the output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The state directory cannot be used.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// The exact tier failed and the policy says to stop.
    #[error("exact tier: {0}")]
    Exact(#[from] ExactError),
    /// A bug in logdedup: the run cannot be trusted.
    #[error("internal error (a bug in logdedup; please report it): {0}")]
    Internal(#[from] Bug),
}

/// Why a state directory (`--state-dir`) cannot be used. Each message names the
/// directory or file and says what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another process holds the directory's lock.
    #[error("--state-dir {} is in use by another logdedup process", dir.display())]
    InUse {
        /// The state directory.
        dir: PathBuf,
    },
    /// The snapshot cannot be read: a fresh start would re-emit everything, so
    /// the user must choose it.
    #[error(
        "{} is damaged or not a logdedup snapshot ({why}); move it away to start fresh \
         (this re-emits what was already emitted)",
        path.display()
    )]
    Damaged {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it (`bad magic`, `checksum mismatch`, `truncated`, …).
        why: String,
    },
    /// The snapshot was written by a newer (or unknown) format.
    #[error(
        "{} has snapshot version {found}; this logdedup reads versions 1 to {newest}",
        path.display()
    )]
    Version {
        /// The snapshot file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        newest: u32,
    },
    /// The snapshot was written under flags that make keys mean something else
    /// (the message names the flags that differ, as typed).
    #[error(
        "{} was written with other settings: {differ}; use another --state-dir or the same flags",
        path.display()
    )]
    Settings {
        /// The snapshot file.
        path: PathBuf,
        /// The settings it was written with.
        written: String,
        /// The settings of this run.
        run: String,
        /// Which flags differ, as a user types them (`settings::differences`):
        /// worked out where the error is made, so `error` depends on no module.
        differ: String,
    },
    /// The snapshot holds in-process fingerprints and this run keeps none, or the
    /// other way round.
    #[error(
        "{} holds {had} but this run {has}; use the --exact it was written with, or another \
         --state-dir",
        path.display()
    )]
    ExactChanged {
        /// The snapshot file.
        path: PathBuf,
        /// What the snapshot holds.
        had: &'static str,
        /// What this run keeps.
        has: &'static str,
    },
    /// The seed in the state directory is not the one the shared exact tier holds.
    #[error(
        "the seed in --state-dir differs from the seed in Redis (--exact {tier}, key {key}): \
         they belong to different deployments, and fingerprints made with one would not match \
         the other's; use a fresh --state-dir or another Redis database"
    )]
    SeedMismatch {
        /// The exact tier as shown to the user (secrets masked).
        tier: String,
        /// The key that holds the tier's seed.
        key: &'static str,
    },
    /// The shared exact tier lost its metadata and another deployment stored its
    /// own before this run could restore it.
    #[error(
        "--exact {tier}: the key {key} now holds '{found}', not this run's '{ours}': the server \
         lost it (a restart without persistence, or a flush) and another client stored its own \
         before this one could; stopping rather than mixing fingerprints of two seeds. Stop \
         every client, delete the prefix's keys (or use another database), and start them again"
    )]
    MetaReplaced {
        /// The exact tier as shown to the user (secrets masked).
        tier: String,
        /// The key that holds the tier's metadata.
        key: &'static str,
        /// What it holds now.
        found: String,
        /// What this run wrote there.
        ours: String,
    },
}

/// Why the exact tier stopped the run.
///
/// A tier wraps its own typed error as the `source` of [`ExactError::Failed`],
/// so the message keeps its cause and a caller can still downcast it.
#[derive(Debug, thiserror::Error)]
pub enum ExactError {
    /// Something the tier needs failed: connecting, recovering, …
    #[error("--exact {tier}: {what}: {source}")]
    Failed {
        /// The tier as shown to the user (secrets masked).
        tier: String,
        /// What was being done (`cannot connect`).
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The tier holds data in a layout this version cannot use.
    #[error("--exact {tier}: the key {key} holds '{found}', not a layout this version can use ({expected})")]
    Layout {
        /// The tier as shown to the user (secrets masked).
        tier: String,
        /// The key that holds the layout.
        key: &'static str,
        /// What it holds.
        found: String,
        /// What this version writes.
        expected: String,
    },
    /// A batch could not be confirmed and `--on-exact-error abort` says to stop.
    #[error("{reason} (--on-exact-error abort)")]
    Aborted {
        /// The tier's last error.
        reason: String,
    },
}

/// No answer came within a deadline (the cause of a [`ExactError::Failed`]).
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
pub struct NoAnswer(pub std::time::Duration);

/// A bug: what should not happen, happened. The run stops rather than go on with
/// output that may have lost or doubled a record.
#[derive(Debug, thiserror::Error)]
pub enum Bug {
    /// A thread of the run stopped on a panic (its message is on stderr).
    #[error("{0} panicked")]
    Panicked(&'static str),
    /// The counters do not add up: a record was lost or counted twice.
    #[error(transparent)]
    Conservation(#[from] ConservationError),
}

/// Conservation failed: `records_in` differs from the records counted by action
/// or by verdict ([`crate::Stats::check_conservation`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "conservation broken: records_in {records_in} but emitted {emitted} + suppressed \
     {suppressed} + dropped {dropped} + rejected {rejected} + unwritten {unwritten} + incomplete \
     {incomplete} = {by_action} and verdicts (with unwritten and incomplete) add up to {by_verdict}"
)]
pub struct ConservationError {
    /// Records read.
    pub records_in: u64,
    /// Records written.
    pub emitted: u64,
    /// Records not written because of `--emit`.
    pub suppressed: u64,
    /// Records dropped by a policy.
    pub dropped: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Records not decided nor written because the run stopped on an error.
    pub unwritten: u64,
    /// Records cut short by a stop.
    pub incomplete: u64,
    /// The sum of the above.
    pub by_action: u64,
    /// The sum of the verdict counters.
    pub by_verdict: u64,
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    /// Whether this is a closed output pipe (`| head`), which ends the run quietly.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
