//! Tests of the harness as a user runs it: the `splitbench` binary, its results directory,
//! its exit codes, and its promise to leave no process behind. None asserts on timing.

mod cleanup;
mod report;
