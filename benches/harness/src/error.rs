//! The harness's errors. Each names what it is about (the flag, file, program or
//! Redis command) and keeps the underlying error as its source.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a harness command, or one measured run, failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or a spec value is out of range.
    #[error("{flag}: {message}")]
    Usage {
        /// The flag (or spec field) at fault, as the user spells it.
        flag: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// What the file named by a flag caused (`--truth PATH: …`).
    #[error("{flag} {source}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// The error about its file.
        #[source]
        source: Box<Error>,
    },
    /// A dataset of a spec file is invalid.
    #[error("{}: dataset {dataset}: {source}", path.display())]
    Dataset {
        /// The spec file.
        path: PathBuf,
        /// The dataset's name.
        dataset: String,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },
    /// Reading or writing a file (or a folder) failed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A JSON file could not be read or written.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Reading stdin or writing stdout failed.
    #[error("{what}: {source}")]
    Stream {
        /// What was being read or written.
        what: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A program could not be started, read or waited for.
    #[error("{program}: {source}")]
    Program {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A measured command exited with a failure.
    #[error("exit {code}: {stderr}")]
    Exit {
        /// Its exit code.
        code: i32,
        /// The last lines of its stderr.
        stderr: String,
    },
    /// A Redis command failed.
    #[error("{what}: {source}")]
    Redis {
        /// The command or connection, e.g. `FLUSHALL` or `--redis URL`.
        what: String,
        /// Why.
        #[source]
        source: redis::RedisError,
    },
    /// The harness's Redis server did not answer in time.
    #[error("redis-server did not answer within {0:?}")]
    RedisStart(Duration),
    /// A Redis tool ran without the harness's Redis server.
    #[error("no Redis server")]
    NoRedis,
    /// A thread of the harness panicked (its message is on stderr).
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

impl Error {
    /// A failure on the file or folder `path`.
    pub fn file(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { path, source }
    }

    /// Names `flag` as the origin of an error about the file it gave.
    pub fn flag(flag: &'static str) -> impl FnOnce(Error) -> Error {
        move |e| Error::Flag { flag, source: Box::new(e) }
    }

    /// A failure of the program `program`.
    pub fn program(program: impl ToString) -> impl FnOnce(io::Error) -> Error {
        let program = program.to_string();
        move |source| Error::Program { program, source }
    }

    /// A failure of the Redis command or connection `what`.
    pub fn redis(what: impl ToString) -> impl FnOnce(redis::RedisError) -> Error {
        let what = what.to_string();
        move |source| Error::Redis { what, source }
    }
}

/// The result type of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;
