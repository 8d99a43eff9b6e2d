//! logdedup-bench: the benchmark harness of logdedup.
//!
//! It generates datasets with a truth file, runs logdedup and the tools a user
//! would otherwise pick on the same data, checks every tool's output against the
//! truth, and writes dated reports (Markdown, JSON, SVG).
//!
//! # Layout
//!
//! - [`spec`]: the generator's knobs, shared by flags and spec files;
//! - [`rng`]: seeded, self-contained random numbers (datasets are reproducible);
//! - [`gen`]: the record generator and the truth it is checked against.

#![deny(missing_docs)]

pub mod gen;
pub mod rng;
pub mod spec;
