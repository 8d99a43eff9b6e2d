//! logdedup-bench: the benchmark harness of logdedup.
//!
//! It generates datasets with a truth file, runs logdedup and the tools a user
//! would otherwise pick on the same data, checks every tool's output against the
//! truth, and writes dated reports (Markdown, JSON, SVG).
//!
//! # Layout
//!
//! - [`spec`]: the generator's knobs, shared by flags and spec files;
//! - [`error`]: what can go wrong, naming the flag, file or program;
//! - [`rng`]: seeded, self-contained random numbers (datasets are reproducible);
//! - [`gen`]: the record generator and the truth it is checked against;
//! - [`tools`]: the line-up (floor, peers, logdedup modes, Redis) as data;
//! - [`measure`]: one measured run, and the interleaved A B A B schedule;
//! - [`redis_server`]: a private Redis on a unix socket; [`setnx`]: its client;
//! - [`machine`]: what the run was measured on;
//! - [`report`]: the data model; [`export`]: Markdown, JSON and SVG writers;
//! - [`suite`]: the whole benchmark into a dated run folder; [`soak`]: the
//!   unbounded stream into logdedup's stdin.

#![deny(missing_docs)]

pub mod error;
pub mod export;
pub mod gen;
pub mod machine;
pub mod measure;
pub mod redis_server;
pub mod report;
pub mod rng;
pub mod setnx;
pub mod soak;
pub mod spec;
pub mod suite;
pub mod tools;
