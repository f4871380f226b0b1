//! `kubectl tributary` (the binary linked as `kubectl-tributary`, run as kubectl runs a plugin)
//! against the emulator, with the objects the running operator wrote: the status tree, pause /
//! resume and dry-run annotations the operator then honours, the graph, and the lag per topic
//! (status) and per partition (broker).

use super::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::broker::unique;
use crate::support::scenarios::spec;
use kube::api::Api;
use tributary::api::{KafkaConsumer, KafkaTopic, StreamTopology};

/// Runs `kubectl-tributary ARGS` with `kubeconfig`: `(success, stdout, stderr)`.
async fn plugin(bin: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let (bin, kubeconfig) = (bin.to_owned(), kubeconfig.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(&bin)
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("TRIBUTARY_LOG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    })
    .await
    .unwrap()
}

/// The tributary binary linked as `kubectl-tributary` in `dir`.
fn linked(dir: &Path) -> PathBuf {
    let link = dir.join("kubectl-tributary");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tributary"), &link).unwrap();
    link
}

fn annotations(o: &impl kube::Resource) -> std::collections::BTreeMap<String, String> {
    o.meta().annotations.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_tributary_shows_and_steers_what_the_operator_manages() {
    let r = start().await;
    let env = &r.env;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    r.api.write_kubeconfig(&kubeconfig).unwrap();
    let bin = linked(dir.path());
    let ns = NAMESPACE;

    let events = unique("events");
    let topologies: Api<StreamTopology> = Api::namespaced(env.client.clone(), ns);
    let topology: StreamTopology = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
        "metadata": {"name": "shop", "namespace": ns},
        "spec": {
            "clusterRef": "local",
            "defaults": {"partitions": 2, "replicationFactor": 1},
            "topics": [{"name": events}],
            "producers": [{"name": "web", "topics": [events], "replicas": 1,
                           "template": {"image": "ghcr.io/example/web:1.0.0"}}],
            "consumers": [{"name": "audit", "topics": [events], "replicas": 1,
                           "template": {"image": "ghcr.io/example/audit:1.0.0"}}],
        }
    }))
    .unwrap();
    topologies
        .create(&Default::default(), &topology)
        .await
        .unwrap();
    let lost = unique("lost");
    env.create_topic(&lost, spec("missing", 1, &[])).await;
    env.eventually("the topology is Ready", || async {
        roll_out_all(env).await;
        topologies
            .get_opt("shop")
            .await
            .ok()
            .flatten()
            .and_then(|t| t.status)
            .is_some_and(|s| {
                ready_reason(&s.conditions)
                    == Some((ConditionStatus::True, "AllChildrenReady".into()))
            })
    })
    .await;
    let consumers: Api<KafkaConsumer> = Api::namespaced(env.client.clone(), ns);
    env.eventually("the consumer's lag is observed", || async {
        consumers
            .get_opt("shop-audit")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.status?.total_lag)
            .is_some()
    })
    .await;
    env.eventually("the lost topic says why", || async {
        matches!(env.ready(&lost).await, Some((ConditionStatus::False, r, _)) if r == "ClusterNotFound")
    })
    .await;

    // status: the tree.
    let (ok, out, err) = plugin(&bin, &kubeconfig, &["status", "-n", ns]).await;
    assert!(ok, "{err}");
    for expected in [
        "Namespace booking\n".to_owned(),
        "KafkaCluster local: Ready (Connected), brokers ".to_owned(),
        "StreamTopology shop: Ready (AllChildrenReady), children 3/3, lag 0\n".to_owned(),
        format!("├── KafkaTopic shop-{events}: Ready (InSync), topic {events}, partitions 2\n"),
        "├── KafkaProducer shop-web: Ready (Available), replicas 1/1\n".to_owned(),
        "│   └── Deployment shop-web: 1/1 ready, available\n".to_owned(),
        "└── KafkaConsumer shop-audit: Ready (Available), replicas 1/1, partitions 2, lag 0\n"
            .to_owned(),
        "    └── Deployment shop-audit: 1/1 ready, available\n".to_owned(),
        "Not in a StreamTopology\n".to_owned(),
        format!("└── KafkaTopic {lost}: Not ready (ClusterNotFound): "),
    ] {
        assert!(out.contains(&expected), "status lacks {expected:?}:\n{out}");
    }
    let (ok, one, _) = plugin(&bin, &kubeconfig, &["status", "-n", ns, "shop"]).await;
    assert!(
        ok && one.starts_with("StreamTopology shop:") && !one.contains(&lost),
        "{one}"
    );
    let (ok, _, err) = plugin(&bin, &kubeconfig, &["status", "-n", ns, "nope"]).await;
    assert!(
        !ok && err.contains("StreamTopology booking/nope not found"),
        "{err}"
    );

    // pause / resume: the annotation, which the operator honours.
    let (ok, out, err) = plugin(&bin, &kubeconfig, &["pause", "-n", ns, "st/shop"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "StreamTopology booking/shop: tributary.io/paused set to \"true\"\n"
    );
    env.eventually("the topology says Paused", || async {
        topologies
            .get_opt("shop")
            .await
            .ok()
            .flatten()
            .and_then(|t| t.status)
            .is_some_and(|s| ready_reason(&s.conditions).is_some_and(|(_, r)| r == "Paused"))
    })
    .await;
    let (ok, _, err) = plugin(&bin, &kubeconfig, &["resume", "-n", ns, "st/shop"]).await;
    assert!(ok, "{err}");
    assert!(
        !annotations(&topologies.get("shop").await.unwrap()).contains_key("tributary.io/paused")
    );
    env.eventually("the topology is Ready again", || async {
        topologies
            .get_opt("shop")
            .await
            .ok()
            .flatten()
            .and_then(|t| t.status)
            .is_some_and(|s| {
                ready_reason(&s.conditions)
                    == Some((ConditionStatus::True, "AllChildrenReady".into()))
            })
    })
    .await;

    // dry-run on a topic: the operator plans without executing.
    let topics: Api<KafkaTopic> = Api::namespaced(env.client.clone(), ns);
    let (ok, _, err) = plugin(
        &bin,
        &kubeconfig,
        &["dry-run", "on", "-n", ns, &format!("kt/{lost}")],
    )
    .await;
    assert!(ok, "{err}");
    env.eventually("the topic says DryRun", || async {
        matches!(env.ready(&lost).await, Some((ConditionStatus::False, r, _)) if r == "DryRun" || r == "ClusterNotFound")
            && annotations(&topics.get(&lost).await.unwrap()).get("tributary.io/dry-run").map(String::as_str) == Some("true")
    })
    .await;
    let (ok, _, err) = plugin(
        &bin,
        &kubeconfig,
        &["dry-run", "off", "-n", ns, &format!("kt/{lost}")],
    )
    .await;
    assert!(ok, "{err}");
    assert!(!annotations(&topics.get(&lost).await.unwrap()).contains_key("tributary.io/dry-run"));
    // Refused, and nothing changed: kinds that do not honour the annotation, unknown objects.
    let (ok, _, err) = plugin(&bin, &kubeconfig, &["pause", "-n", ns, "kcon/shop-audit"]).await;
    assert!(
        !ok && err.contains("does not honour tributary.io/paused on a KafkaConsumer"),
        "{err}"
    );
    assert!(!annotations(&consumers.get("shop-audit").await.unwrap())
        .contains_key("tributary.io/paused"));
    let (ok, _, err) = plugin(&bin, &kubeconfig, &["dry-run", "on", "-n", ns, "st/shop"]).await;
    assert!(
        !ok && err.contains("dry-run applies to KafkaTopic"),
        "{err}"
    );
    let (ok, _, err) = plugin(&bin, &kubeconfig, &["pause", "-n", ns, "kt/nope"]).await;
    assert!(
        !ok && err.contains("KafkaTopic booking/nope not found"),
        "{err}"
    );

    // graph: the topology's children drawn.
    let (ok, out, err) = plugin(&bin, &kubeconfig, &["graph", "-n", ns, "st/shop"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("flowchart LR")
            && out.contains(&events)
            && out.contains("audit")
            && out.contains("web"),
        "{out}"
    );
    let svg = dir.path().join("shop.svg");
    let (ok, _, err) = plugin(
        &bin,
        &kubeconfig,
        &[
            "graph",
            "-n",
            ns,
            "st/shop",
            "--format",
            "svg",
            "-o",
            svg.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("<svg") && svg.contains(&events), "{svg}");

    // lag: per topic from the status, per partition from the broker.
    let (ok, out, err) = plugin(&bin, &kubeconfig, &["lag", "-n", ns, "kcon/shop-audit"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("KafkaConsumer shop-audit (group shop-audit): lag 0\nTOPIC"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [events.as_str(), "2", "0", "0"]),
        "{out}"
    );
    let (ok, out, err) = plugin(
        &bin,
        &kubeconfig,
        &["lag", "-n", ns, "kcon/shop-audit", "--broker"],
    )
    .await;
    assert!(ok, "{err}");
    let partitions: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with(events.as_str()))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(partitions, ["0", "1"], "{out}");

    // The same binary under its own name: `tributary kubectl …`.
    let out = tokio::task::spawn_blocking({
        let kubeconfig = kubeconfig.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_tributary"))
                .args(["kubectl", "status", "-n", NAMESPACE, "shop"])
                .env("KUBECONFIG", kubeconfig)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("StreamTopology shop: Ready"));
    r.stop().await;
}
