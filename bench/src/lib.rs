//! # splitbench: measure what splitting the shop into microservices costs and buys
//!
//! Layers, kept apart as in oha and criterion:
//! - [`launch`]: start and stop the system under test as real processes (release binaries,
//!   free ports, fresh databases, CPU pinning, logs, cleanup on every exit path);
//! - [`drive`]: the load (open-loop schedule, closed loop, the request mix);
//! - [`record`]: HdrHistograms per endpoint and per second;
//! - [`analyse`]: percentiles, the sweep's verdicts, thresholds;
//! - [`report`]: raw data, `report.md`, SVG plots; [`experiment`] ties a run together and
//!   [`cli`] maps flags to it.
//!
//! [`faults`] runs fault scenarios (crash, hang) against both architectures and reports what
//! users saw.
//! [`check`] audits the shop's books in its databases after a run (and as `splitbench check`).
//! [`topology`] starts an architecture inside this process instead (tests, criterion
//! benches, the demo). The binary (`src/main.rs`) only parses flags and calls [`cli::run`].

pub mod analyse;
pub mod check;
pub mod cli;
pub mod criterion_report;
pub mod demo;
pub mod deployment;
pub mod drive;
pub mod experiment;
pub mod faults;
pub mod fingerprint;
pub mod launch;
pub mod record;
pub mod report;
pub mod scale;
pub mod topology;

pub use topology::{Architecture, Backend, RunningShop};
