//! The integration tests, one module per subject, in one test binary: built and linked once
//! instead of once per file. `cargo test --test integration MODULE::` runs one subject (e.g.
//! `e2e::`, `workload::`), `cargo test --test integration real_cluster` the opt-in suite
//! against a real cluster.
//!
//! They share one test broker (`support::broker`: Tansu, started on first use and stopped when
//! the binary exits, or `TRIBUTARY_TEST_BOOTSTRAP`); every test names its topics and groups
//! with `support::broker::unique`, so they can. The operator-process tests (`tests/operability.rs`)
//! time leader hand-overs and keep a binary of their own, so that nothing else competes with
//! them for the cores.

#[path = "../support/mod.rs"]
mod support;

mod broker;
mod cli;
mod crds;
mod day2;
mod e2e;
mod identity;
mod lag;
mod lag_wire;
mod layers;
mod monitoring;
mod offsets;
mod rbac;
mod real_cluster;
mod secrets;
mod tls;
mod workload;
