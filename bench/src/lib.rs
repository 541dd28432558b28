//! # splitbench: measure what splitting the shop into microservices costs and buys
//!
//! Layers, kept apart as in oha and criterion:
//! - [`topology`]: start and stop an architecture (in-process servers on free loopback ports,
//!   fresh databases, SQLite files or PostgreSQL databases created and dropped per run);
//! - [`demo`]: the main job until the load harness lands: start both architectures and show a
//!   product page answered by each.
//!
//! The binary (`src/main.rs`) only parses flags and calls into this library, so tests and
//! benchmarks run the same code.

pub mod demo;
pub mod topology;

pub use topology::{Architecture, Backend, RunningShop};
