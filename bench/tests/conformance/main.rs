//! The conformance suite: one set of scenarios, run against both architectures.
//!
//! Every scenario runs against the monolith and against the microservices, each started for
//! real (servers on free loopback ports, real databases): on SQLite always, and on PostgreSQL
//! as well when `SPLITBENCH_TEST_POSTGRES` holds a server URL. Each scenario asserts the
//! behaviour it is about; afterwards [`helpers::conformance`] compares the two architectures'
//! responses field by field (ids and timestamps aside), so any difference in the public API
//! fails the test. `microservices_only` covers what exists only when the shop is split;
//! `consistency` covers checkouts under concurrency, crashes and deadlines, each ending with the
//! consistency checker (`splitbench check`) finding the books clean.

mod helpers;

mod accounts;
mod bad_input;
mod catalog;
mod consistency;
mod microservices_only;
mod operations;
mod orders;
mod reviews;
mod seam_faults;
