//! The day-2 tools the monitoring tests run for real, from Debian's packages: `promtool` and
//! `prometheus` (package `prometheus`), `lua5.4` (package `lua5.4`). `.ci/run` installs them.
//!
//! A test whose tool is missing skips with a loud message, unless `CI=true` or
//! `TRIBUTARY_TEST_REQUIRE_TOOLS=1` (set by `.ci/run`): there a missing tool is a failure.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;

/// Whether a missing tool fails the test rather than skipping it.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("TRIBUTARY_TEST_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// `name` on the `PATH`, or `None` (after a loud message) when it is missing and not required.
/// `package` is the Debian package that brings it, `test` names the caller.
pub fn tool(name: &str, package: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !required(),
            "{test}: `{name}` is missing and CI=true / TRIBUTARY_TEST_REQUIRE_TOOLS=1: \
             apt-get install -y {package}"
        );
        // Straight to the process's stderr: the harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {test}: `{name}` is missing; apt-get install -y {package} to run it ***\n"
        );
    }
    found
}

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn rules_path() -> PathBuf {
    root().join("monitoring/prometheus/tributary-rules.yaml")
}

pub fn dashboard_path() -> PathBuf {
    root().join("monitoring/grafana/tributary.json")
}

/// `(alert, rule)` of every alert rule.
pub fn alerts() -> Vec<(String, Value)> {
    let rules: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(rules_path()).unwrap()).unwrap();
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| (r["alert"].as_str().unwrap().to_owned(), r))
        .collect()
}

/// `(title, PromQL)` of every dashboard panel's queries.
pub fn panel_queries() -> Vec<(String, String)> {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(dashboard_path()).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// The metric names a PromQL expression reads (every `tributary_…` word).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    Regex::new(r"\btributary_[a-z_]+\b")
        .unwrap()
        .find_iter(expr)
        .map(|m| m.as_str().to_owned())
        .collect()
}
