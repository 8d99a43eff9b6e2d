//! The one integration test binary: every test runs the real `logdedup`
//! executable (or the library's pipeline) and checks bytes, counters and exit codes.

// Tests build a default `Config` and change the one field a case is about; that
// reads better than a struct literal per case. Fixture tables are tuples.
#![allow(clippy::field_reassign_with_default, clippy::type_complexity)]

mod daemon;
mod util;

mod cli;
mod datasets;
mod exact_redis;
mod generate;
mod hay;
mod metrics;
mod model;
mod progress;
mod redis;
mod regression;
mod rsyslog;
mod semantics;
mod state;
mod streaming;
