//! Tests of the harness as a user runs it: the `splitbench` binary, its results directory,
//! its exit codes, its promise to leave no process behind, and the consistency checker of the
//! shop's books. None asserts on timing.

mod accounting;
mod cleanup;
mod consistency;
mod environment;
mod faults;
mod generator_client;
mod plots;
mod report;
mod stand_ins;
mod sweep;
mod topologies;
