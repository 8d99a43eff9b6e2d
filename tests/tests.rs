//! The one integration test binary: every test runs the real `logdedup`
//! executable (or the library's pipeline) and checks bytes, counters and exit codes.

mod util;

mod cli;
mod datasets;
mod exact_redis;
mod hay;
mod model;
mod redis;
mod regression;
mod semantics;
mod state;
