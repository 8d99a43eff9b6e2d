//! Errors: [`ConfigError`] for bad usage or configuration (exit 1) and [`Error`]
//! for failures at run time (exit 2).
//!
//! The hot path never builds an error: a record without a key or a late record is
//! a verdict, not an `Err`. Errors are for what stops or misconfigures the run.

use std::io;

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
    /// The state directory holds a snapshot that cannot be used.
    #[error("state: {0}")]
    State(String),
    /// The exact tier failed and the policy says to stop.
    #[error("exact tier: {0}")]
    Exact(String),
    /// A bug: a thread of the run stopped on a panic (its message is on stderr).
    #[error("internal error: {0}")]
    Internal(String),
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
