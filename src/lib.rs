//! logdedup: streaming, windowed, exact deduplication of log records.
//!
//! ```text
//! stdin ─▶ framing ─▶ key extraction ─▶ window ─▶ local tier ─▶ exact tier ─▶ verdict ─▶ sink (stdout)
//!           Bytes       int | str          w       roaring/bloom   memory|redis   new|dup     + rejects, stats
//! ```
//!
//! # Guarantees
//!
//! - **Nothing is lost.** Every record read is written, or counted as a duplicate,
//!   as dropped by a policy the user chose, or as rejected:
//!   `records_in = emitted + suppressed + dropped + rejected`, checked every run.
//! - **Exact.** A record is a duplicate iff an earlier record with the same ID fell
//!   in a retained window up to its own. Integer IDs are held exactly (roaring);
//!   string IDs by 128-bit keyed fingerprints, behind an optional bloom filter
//!   whose *maybe* is always confirmed (except under `--exact none`).
//! - **Flat memory.** Windows rotate; the oldest generation is dropped whole.
//! - **Byte for byte.** Output records are the input records, in input order.
//!
//! # Layout
//!
//! One module per stage: [`framing`], [`key`], [`hash`], [`time`], [`window`],
//! [`local`], [`exact`], [`verdict`], [`sink`]; plus [`state`] (snapshots) with
//! [`settings`] (the flags a snapshot is bound to), [`stats`] (counters),
//! [`progress`] (the progress line), [`metrics`] (the Prometheus endpoint),
//! [`periodic`] (reports while a run goes on) and [`pipeline`], the only module
//! that knows their order.
//! [`config`] holds the validated configuration, [`error`] the error types.
//!
//! # Example
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use logdedup::{Config, KeySpec, KeyType, Pipeline};
//!
//! #[derive(Clone, Default)]
//! struct Out(Arc<Mutex<Vec<u8>>>);
//! impl std::io::Write for Out {
//!     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
//!     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! }
//!
//! let mut config = Config::default();
//! config.key = KeySpec::parse(&[".id".to_string()], None, KeyType::Auto).unwrap();
//! let input = &b"{\"id\":1}\n{\"id\":\"1\"}\n{\"id\":\"a\"}\n"[..];
//! let out = Out::default();
//! let stats = Pipeline::new(config).run(input, Box::new(out.clone())).unwrap();
//! assert_eq!(out.0.lock().unwrap().as_slice(), b"{\"id\":1}\n{\"id\":\"a\"}\n");
//! assert_eq!((stats.emitted, stats.duplicates), (2, 1));
//! ```

#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod exact;
pub mod framing;
pub mod hash;
pub mod key;
pub mod local;
pub mod metrics;
pub mod periodic;
pub mod pipeline;
pub mod progress;
pub mod settings;
pub mod sink;
pub mod state;
pub mod stats;
pub mod time;
pub mod verdict;
pub mod window;

pub use config::Config;
pub use error::{ConfigError, Error, Result};
pub use key::{KeySpec, KeyType};
pub use pipeline::{Outcome, Pipeline};
pub use stats::Stats;
