//! The Prometheus alert rules (monitoring/prometheus/) and the Grafana dashboard
//! (monitoring/grafana/) against the operator's real metrics and Prometheus' own tools:
//! `promtool check rules`, `promtool test rules` (a firing and a silent case per alert), and
//! every metric and label they name is one `/metrics` serves. (tests/operability.rs evaluates
//! them all in a real Prometheus scraping the running operator.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;
use tributary::runtime::metrics::{Metrics, ObjectGauges, TOPIC_QUEUE};

use crate::support::tools::{alerts, panel_queries, root, rules_path, tool};

/// Sample name → its label names, from a registry with one sample of everything.
fn served() -> BTreeMap<String, BTreeSet<String>> {
    let m = Metrics::default();
    m.reconciled("KafkaTopic", "success", Duration::from_millis(1));
    m.broker_requests("Metadata", "ok", 1);
    m.conflict("KafkaTopic");
    let _queued = m.queue(TOPIC_QUEUE).pending();
    let _gauges = m.collect_from(Box::new(|g: &mut ObjectGauges| {
        let key = ("ns".to_owned(), "c".to_owned(), "g".to_owned());
        g.managed_topics
            .insert(("ns".into(), "main".into(), true), 1);
        g.consumer_lag.insert(key.clone(), 1);
        g.consumer_lag_unknown.insert(key.clone());
        g.consumer_replicas.insert(key.clone(), 1);
        g.consumer_partitions.insert(key.clone(), 1);
        g.consumer_lag_threshold.insert(key, 1);
        g.not_ready.insert(
            ("KafkaTopic".into(), "ns".into(), "t".into()),
            ("InSync".into(), false),
        );
        g.watches_up
            .insert(("KafkaTopic".into(), "ns".into()), true);
    }));
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let label = Regex::new(r#"([a-z_]+)="#).unwrap();
    for line in m.render().lines().filter(|l| !l.starts_with('#')) {
        let series = line.rsplit_once(' ').unwrap().0;
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let set = out.entry(name.to_owned()).or_default();
        set.extend(label.captures_iter(labels).map(|c| c[1].to_owned()));
    }
    out
}

/// Every `metric{label…}` selector of `expr` names a served metric and its labels; aggregation
/// labels (`by (…)`, `on (…)`) are labels of some metric the expression reads.
fn check_expr(what: &str, expr: &str, served: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    let selector = Regex::new(r"\b(tributary_[a-z_]+)\s*(\{([^}]*)\})?").unwrap();
    let matcher = Regex::new(r#"([a-zA-Z_]+)\s*(=~|!~|!=|=)"#).unwrap();
    let mut read_labels: BTreeSet<String> = ["job", "instance", "le"].map(String::from).into();
    for c in selector.captures_iter(expr) {
        let name = &c[1];
        let Some(labels) = served.get(name) else {
            problems.push(format!("{what}: `{name}` is no metric /metrics serves"));
            continue;
        };
        read_labels.extend(labels.iter().cloned());
        if let Some(m) = c.get(3) {
            for l in matcher.captures_iter(m.as_str()) {
                if !labels.contains(&l[1]) && !["job", "instance"].contains(&&l[1]) {
                    problems.push(format!("{what}: `{name}` has no label `{}`", &l[1]));
                }
            }
        }
    }
    let grouping = Regex::new(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)").unwrap();
    for g in grouping.captures_iter(expr) {
        for l in g[1].split(',').map(str::trim).filter(|l| !l.is_empty()) {
            if !read_labels.contains(l) {
                problems.push(format!(
                    "{what}: groups by `{l}`, which no metric it reads has"
                ));
            }
        }
    }
    problems
}

#[test]
fn alerts_and_panels_read_only_metrics_and_labels_the_operator_serves() {
    let served = served();
    let mut problems = Vec::new();
    for (alert, rule) in alerts() {
        problems.extend(check_expr(&alert, rule["expr"].as_str().unwrap(), &served));
    }
    let queries = panel_queries();
    assert!(!queries.is_empty());
    for (title, expr) in &queries {
        problems.extend(check_expr(title, expr, &served));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And the check can tell: a misspelt metric or label is caught.
    assert!(!check_expr("x", "tributary_watch_upp == 0", &served).is_empty());
    assert!(!check_expr("x", r#"tributary_watch_up{kindd="A"}"#, &served).is_empty());
    assert!(!check_expr("x", "sum by (kindd) (tributary_watch_up)", &served).is_empty());
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_has_a_summary_a_description_naming_its_object_and_a_runbook_in_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let all = alerts();
    assert!(all.len() >= 10, "{} alerts", all.len());
    for (alert, rule) in all {
        let a = &rule["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                a[key].as_str().is_some_and(|s| !s.is_empty()),
                "{alert}: annotation {key}"
            );
        }
        let url = a["runbook_url"].as_str().unwrap();
        let (page, fragment) = url.split_once('#').unwrap_or((url, ""));
        assert!(page.ends_with("/README.md"), "{alert}: {url}");
        assert!(
            anchors.contains(fragment),
            "{alert}: runbook #{fragment} is no heading of README.md"
        );
        assert_eq!(fragment, alert.to_lowercase(), "{alert}: its own runbook");
        assert!(
            rule["labels"]["severity"]
                .as_str()
                .is_some_and(|s| ["critical", "warning"].contains(&s)),
            "{alert}: severity"
        );
        // An alert about objects names the object: its description uses the labels that name it.
        let expr = rule["expr"].as_str().unwrap();
        let description = a["description"].as_str().unwrap();
        if expr.contains("tributary_object_not_ready") || expr.contains("tributary_consumer_") {
            assert!(
                description.contains("{{ $labels.namespace }}/{{ $labels.name }}"),
                "{alert}: the description names the object: {description}"
            );
        }
    }
}

fn promtool(test: &str) -> Option<PathBuf> {
    tool("promtool", "prometheus", test)
}

#[test]
fn promtool_checks_the_rules() {
    let Some(promtool) = promtool("promtool_checks_the_rules") else {
        return;
    };
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(rules_path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool check rules:\n{text}");
    assert!(
        text.contains(&format!("SUCCESS: {} rules found", alerts().len())),
        "{text}"
    );
}

#[test]
fn promtool_unit_tests_fire_every_alert_on_one_case_and_not_on_another() {
    let Some(promtool) =
        promtool("promtool_unit_tests_fire_every_alert_on_one_case_and_not_on_another")
    else {
        return;
    };
    let tests_path = root().join("monitoring/prometheus/tributary-rules.test.yaml");
    let tests: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&tests_path).unwrap()).unwrap();
    let (mut firing, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for case in tests["tests"].as_array().unwrap() {
        for t in case["alert_rule_test"].as_array().into_iter().flatten() {
            let name = t["alertname"].as_str().unwrap().to_owned();
            match t["exp_alerts"].as_array() {
                Some(alerts) if !alerts.is_empty() => firing.insert(name),
                _ => silent.insert(name),
            };
        }
    }
    for (alert, _) in alerts() {
        assert!(
            firing.contains(&alert),
            "{alert} has no firing case in {}",
            tests_path.display()
        );
        assert!(
            silent.contains(&alert),
            "{alert} has no silent case in {}",
            tests_path.display()
        );
    }
    let out = Command::new(promtool)
        .args(["test", "rules"])
        .arg(&tests_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
