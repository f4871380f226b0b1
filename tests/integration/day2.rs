//! The day-2 kit checked with the real tools: Argo CD's Lua health checks (deploy/argocd/) run
//! by `lua5.4` against the statuses the operator writes (tests/fixtures/status, captured and
//! kept current by `e2e::day2`), and those statuses against the kstatus rules Flux reads.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use tributary::api::crds;

use crate::e2e::day2::{fixtures, CASES};
use crate::support::tools::{root, tool};

fn argocd() -> PathBuf {
    root().join("deploy/argocd")
}

/// Every kind the CRDs serve: each gets the one health check, `health.lua`.
fn kinds() -> Vec<String> {
    crds::all().into_iter().map(|c| c.spec.names.kind).collect()
}

/// The argocd-cm snippet: one key per kind, each holding `health.lua`.
fn argocd_cm() -> String {
    let mut out = String::from(
        "# Argo CD health checks for Tributary's kinds: merge into the argocd-cm ConfigMap (namespace\n\
         # argocd), e.g. `kubectl -n argocd patch configmap argocd-cm --patch-file deploy/argocd/argocd-cm.yaml`.\n\
         # Generated from deploy/argocd/health.lua, one key per kind, by tests/integration/day2.rs\n\
         # (TRIBUTARY_UPDATE_FIXTURES=1 rewrites it); do not edit.\n\
         data:\n",
    );
    let script = std::fs::read_to_string(argocd().join("health.lua")).unwrap();
    for kind in kinds() {
        out.push_str(&format!(
            "  resource.customizations.health.tributary.io_{kind}: |\n"
        ));
        for line in script.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}

#[test]
fn every_kind_has_its_health_check_and_the_argocd_cm_snippet_installs_them_all() {
    let expected = argocd_cm();
    let path = argocd().join("argocd-cm.yaml");
    if std::env::var("TRIBUTARY_UPDATE_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &expected).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        expected,
        "deploy/argocd/argocd-cm.yaml is not current: rerun with TRIBUTARY_UPDATE_FIXTURES=1"
    );
    let cm: Value = serde_saphyr::from_str(&expected).unwrap();
    assert_eq!(cm["data"].as_object().unwrap().len(), kinds().len());
}

/// `value` as a Lua expression (JSON null: nil, so the key is absent as in Argo CD's `obj`).
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for byte in s.bytes() {
                match byte {
                    b'"' | b'\\' => {
                        out.push('\\');
                        out.push(byte as char);
                    }
                    0x20..=0x7e => out.push(byte as char),
                    _ => out.push_str(&format!("\\{byte:03}")),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua(&json!(k)), lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs `script` the way Argo CD does (the object as the global `obj`): `(status, message)`.
fn health(lua_bin: &Path, script: &Path, object: &Value) -> (String, String) {
    let program = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua(object),
        lua(&json!(script.to_str().unwrap()))
    );
    let mut child = Command::new(lua_bin)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_owned(), message.to_owned())
}

fn fixture(case: &str) -> Value {
    let path = fixtures().join(format!("{case}.json"));
    serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} is missing (e2e::day2 writes it)", path.display())),
    )
    .unwrap()
}

/// What Argo CD shows for each captured state.
const ARGO: &[(&str, &str)] = &[
    ("cluster-connected", "Healthy"),
    ("cluster-unreachable", "Progressing"),
    ("topic-in-sync", "Healthy"),
    ("topic-paused", "Suspended"),
    ("topic-dry-run", "Suspended"),
    ("topic-conflict", "Degraded"),
    ("topic-cluster-not-found", "Progressing"),
    ("topic-unreachable", "Progressing"),
    ("consumer-available", "Healthy"),
    ("consumer-topic-not-ready", "Progressing"),
    ("consumer-rolling-out", "Progressing"),
    ("producer-available", "Healthy"),
    ("producer-waiting-for-topics", "Progressing"),
    ("topology-children-not-ready", "Progressing"),
    ("topology-all-children-ready", "Healthy"),
];

#[test]
fn argocd_health_checks_map_the_operators_statuses() {
    let Some(lua_bin) = tool(
        "lua5.4",
        "lua5.4",
        "argocd_health_checks_map_the_operators_statuses",
    ) else {
        return;
    };
    assert_eq!(
        ARGO.iter().map(|c| c.0).collect::<Vec<_>>(),
        CASES.iter().map(|c| c.0).collect::<Vec<_>>(),
        "one expectation per captured case"
    );
    let mut wrong = Vec::new();
    for &(case, expected) in ARGO {
        let object = fixture(case);
        let script = argocd().join("health.lua");
        let (status, message) = health(&lua_bin, &script, &object);
        if status != expected {
            wrong.push(format!("{case}: {status} ({message}), expected {expected}"));
        }
        let ready = object["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        if expected != "Progressing" {
            assert!(
                message.starts_with(ready["reason"].as_str().unwrap()),
                "{case}: the message starts with the reason: {message}"
            );
        }

        // The same object before the operator has seen its latest generation, or before its
        // first status: Progressing whatever the old status said.
        let mut newer = object.clone();
        newer["metadata"]["generation"] =
            json!(object["metadata"]["generation"].as_i64().unwrap() + 1);
        let (status, message) = health(&lua_bin, &script, &newer);
        assert_eq!(
            (status.as_str(), message.as_str()),
            (
                "Progressing",
                "Waiting for the operator to observe generation 2"
            ),
            "{case} with a newer generation"
        );
        let mut fresh = object.clone();
        fresh.as_object_mut().unwrap().remove("status");
        assert_eq!(
            health(&lua_bin, &script, &fresh).0,
            "Progressing",
            "{case} without status"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// kstatus (what Flux's health checks compute) for one object, by its rules for resources that
/// follow the conventions: an `observedGeneration` behind `generation` is InProgress;
/// `Reconciling=True` InProgress; `Stalled=True` Failed; otherwise Current.
fn kstatus(object: &Value) -> &'static str {
    let status = &object["status"];
    if status["observedGeneration"] != object["metadata"]["generation"] {
        return "InProgress";
    }
    let is_true = |type_: &str| {
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    };
    if is_true("Reconciling") {
        "InProgress"
    } else if is_true("Stalled") {
        "Failed"
    } else {
        "Current"
    }
}

#[test]
fn the_operators_statuses_satisfy_kstatus() {
    let expected: BTreeMap<&str, &str> = [
        ("cluster-connected", "Current"),
        ("cluster-unreachable", "InProgress"),
        ("topic-in-sync", "Current"),
        // Paused and dry-run: nothing is being worked on and nothing is stuck.
        ("topic-paused", "Current"),
        ("topic-dry-run", "Current"),
        ("topic-conflict", "Failed"),
        ("topic-cluster-not-found", "InProgress"),
        ("topic-unreachable", "InProgress"),
        ("consumer-available", "Current"),
        ("consumer-topic-not-ready", "InProgress"),
        ("consumer-rolling-out", "InProgress"),
        ("producer-available", "Current"),
        ("producer-waiting-for-topics", "InProgress"),
        ("topology-children-not-ready", "InProgress"),
        ("topology-all-children-ready", "Current"),
    ]
    .into();
    assert_eq!(expected.len(), CASES.len());
    for &(case, _, ready_status, reason) in CASES {
        let object = fixture(case);
        let generation = &object["metadata"]["generation"];
        assert!(generation.is_i64(), "{case}: metadata.generation");
        assert_eq!(
            &object["status"]["observedGeneration"], generation,
            "{case}: observedGeneration is current"
        );
        let conditions = object["status"]["conditions"].as_array().unwrap();
        let get = |type_: &str| {
            conditions
                .iter()
                .find(|c| c["type"] == type_)
                .unwrap_or_else(|| panic!("{case}: no {type_} condition"))
        };
        let (ready, reconciling, stalled) = (get("Ready"), get("Reconciling"), get("Stalled"));
        for c in [ready, reconciling, stalled] {
            assert_eq!(&c["observedGeneration"], generation, "{case}: {c}");
            assert!(
                ["True", "False", "Unknown"].contains(&c["status"].as_str().unwrap()),
                "{case}: {c}"
            );
            assert!(
                c["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{case}: {c}"
            );
            assert!(c["lastTransitionTime"].is_string(), "{case}: {c}");
        }
        assert_eq!(
            (
                ready["status"].as_str().unwrap(),
                ready["reason"].as_str().unwrap()
            ),
            (ready_status, reason)
        );
        // kstatus' abnormal-true conditions: never both, and never beside Ready=True.
        assert!(
            !(reconciling["status"] == "True" && stalled["status"] == "True"),
            "{case}: Reconciling and Stalled both True"
        );
        if ready["status"] == "True" {
            assert!(
                reconciling["status"] == "False" && stalled["status"] == "False",
                "{case}: Ready beside Reconciling/Stalled"
            );
        }
        // Not Ready says why in kstatus terms: being worked on, stuck, or deliberately held.
        if ready["status"] == "False" && !["Paused", "DryRun"].contains(&reason) {
            assert!(
                reconciling["status"] == "True" || stalled["status"] == "True",
                "{case}: Ready=False ({reason}) with neither Reconciling nor Stalled: kstatus would call it Current"
            );
        }
        assert_eq!(kstatus(&object), expected[case], "{case}");
    }
}
