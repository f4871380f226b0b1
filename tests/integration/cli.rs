//! The `tributary` binary as users meet it: offline validation, and plan / apply / delete
//! against a real broker (Tansu from the harness, or `TRIBUTARY_TEST_BOOTSTRAP`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::broker::{broker, free_port, unique};
use tributary::kafka::{BrokerAdmin, ClientSettings, RdKafkaAdmin};

fn tributary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn topic_doc(name: &str, partitions: i32, extra: &str) -> String {
    format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata:\n  name: {name}\nspec:\n  clusterRef: local\n  partitions: {partitions}\n{extra}")
}

async fn broker_topics(names: &[String]) -> tributary::kafka::BrokerSnapshot {
    let admin = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        &broker().bootstrap,
        Duration::from_secs(10),
    ))
    .unwrap();
    admin.snapshot(names).await.unwrap()
}

#[test]
fn validate_accepts_the_examples() {
    let out = tributary(&["validate", "-f", "examples"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "5 KafkaCluster(s), 15 KafkaTopic(s), 12 KafkaConsumer(s), 13 KafkaProducer(s) (4 StreamTopology(s) expanded)"
        ),
        "{stdout}"
    );
    assert_eq!(stderr, "", "no warnings");
}

/// The one ```mermaid block of a README.
fn mermaid_block(readme: &str) -> Option<&str> {
    let mut blocks = readme.split("```mermaid\n").skip(1);
    let block = blocks.next()?.split("\n```").next()?;
    blocks.next().is_none().then_some(block)
}

/// Every example is a topology that `validate` accepts without a warning, and its README
/// draws it with exactly what `tributary graph` prints for its directory, so the drawing
/// cannot go stale.
#[test]
fn every_example_validates_without_warnings_and_its_readme_shows_its_graph() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut examples: Vec<String> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("topology.yaml").is_file() || p.join("README.md").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    examples.sort();
    assert_eq!(
        examples,
        ["bus-ticketing", "e-commerce", "live-news", "ride-hailing"]
    );
    for example in &examples {
        let dir = format!("examples/{example}");
        let out = tributary(&["validate", "-f", &dir]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{dir}: {stderr}");
        assert!(
            stdout.contains("(1 StreamTopology(s) expanded)"),
            "{dir}: {stdout}"
        );
        assert_eq!(stderr, "", "{dir}: validate warns");

        let out = tributary(&["graph", "-f", &dir]);
        let (graph, stderr) = text(&out);
        assert!(out.status.success(), "{dir}: {stderr}");
        let readme = std::fs::read_to_string(root.join(&dir).join("README.md"))
            .unwrap_or_else(|e| panic!("{dir}/README.md: {e}"));
        let drawn = mermaid_block(&readme)
            .unwrap_or_else(|| panic!("{dir}/README.md: no single ```mermaid block"));
        assert_eq!(
            drawn,
            graph.trim_end(),
            "{dir}/README.md draws an outdated graph: replace its ```mermaid block with the output of `tributary graph -f {dir}`"
        );
    }
}

#[test]
fn validate_reports_every_error_with_file_document_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let orders = write(
        dir.path(),
        "orders.yaml",
        &format!(
            "{}{}{}{}",
            topic_doc("orders", 3, ""),
            topic_doc("orders-dlq", 0, ""),
            topic_doc("bad topic", 1, ""),
            topic_doc(
                "payments",
                1,
                "  config:\n    retention.ms: \"7d\"\n    cleanup.polcy: delete\n"
            ),
        ),
    );
    write(
        dir.path(),
        "broken.yaml",
        "apiVersion: tributary.io/v1alpha1\nkind: [KafkaTopic\n",
    );
    let out = tributary(&["validate", "-f", dir.path().to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let file = orders.display().to_string();
    for expected in [
        format!("{file}#2 spec.partitions: must be >= 1, got 0"),
        format!("{file}#3 metadata.name: 'bad topic' contains ' '"),
        format!("{file}#4 spec.config.retention.ms: must be an integer, got '7d'"),
        format!("{file}#4 spec.config.cleanup.polcy: 'cleanup.polcy' is not a Kafka topic config; did you mean 'cleanup.policy'?"),
        format!("{}: document 1, line 2: YAML syntax error", dir.path().join("broken.yaml").display()),
        "error(s); nothing was contacted or changed".to_string(),
    ] {
        assert!(stderr.contains(&expected), "missing `{expected}` in:\n{stderr}");
    }
}

#[test]
fn crds_prints_every_crd() {
    let out = tributary(&["crds"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(stdout.contains("name: kafkaclusters.tributary.io"));
    assert!(stdout.contains("name: kafkatopics.tributary.io"));
}

#[tokio::test]
async fn plan_apply_converge_and_plan_again_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (unique("bookings"), unique("refunds"));
    let file = write(
        dir.path(),
        "topics.yaml",
        &format!(
            "{}{}",
            topic_doc(&a, 3, "  config:\n    retention.ms: \"604800000\"\n"),
            topic_doc(&b, 2, "")
        ),
    );
    let f = file.to_str().unwrap();
    let bootstrap = broker().bootstrap.as_str();

    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--detailed-exitcode",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "changes pending: {stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!("+ create {a}: partitions=3")),
        "{stdout}"
    );
    assert!(
        stdout.contains("Plan: 2 to create, 0 to grow, 0 to reconfigure, 0 to delete, 0 refused."),
        "{stdout}"
    );
    assert!(
        !broker_topics(std::slice::from_ref(&a))
            .await
            .topics
            .contains_key(&a),
        "plan changes nothing"
    );

    let out = tributary(&["apply", "-f", f, "--bootstrap", bootstrap]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("Applied: 2 done, 0 failed, 0 refused."),
        "{stdout}"
    );
    let seen = broker_topics(&[a.clone(), b.clone()]).await;
    assert_eq!(seen.topics[&a].partitions, 3);
    assert_eq!(
        seen.topics[&a].configs["retention.ms"].value.as_deref(),
        Some("604800000")
    );

    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--detailed-exitcode",
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("No changes"), "{stdout}");

    // A config edit is applied as exactly that key.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("604800000", "86400000"),
    )
    .unwrap();
    let out = tributary(&["apply", "-f", f, "--bootstrap", bootstrap]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "~ configure {a}:\n    retention.ms: 604800000 -> 86400000\n  done"
        )),
        "{stdout}"
    );
}

#[tokio::test]
async fn invalid_input_changes_nothing_on_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let good = unique("schedule-updates");
    let file = write(
        dir.path(),
        "t.yaml",
        &format!(
            "{}{}",
            topic_doc(&good, 3, ""),
            topic_doc("__consumer_offsets", 1, "")
        ),
    );
    let out = tributary(&[
        "apply",
        "-f",
        file.to_str().unwrap(),
        "--bootstrap",
        &broker().bootstrap,
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("#2 metadata.name: '__consumer_offsets' starts with '__'"),
        "{stderr}"
    );
    assert!(
        !broker_topics(std::slice::from_ref(&good))
            .await
            .topics
            .contains_key(&good),
        "the valid topic was not created either"
    );
}

#[tokio::test]
async fn refusals_exit_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("cancellations");
    let file = write(dir.path(), "t.yaml", &topic_doc(&name, 4, ""));
    let f = file.to_str().unwrap();
    let bootstrap = broker().bootstrap.as_str();
    assert!(tributary(&["apply", "-f", f, "--bootstrap", bootstrap])
        .status
        .success());
    std::fs::write(&file, topic_doc(&name, 2, "")).unwrap();
    let out = tributary(&["apply", "-f", f, "--bootstrap", bootstrap]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains(&format!(
            "! refuse {name}: partitions cannot decrease (4 on the broker, 2 desired)"
        )),
        "{stdout}"
    );
    assert_eq!(
        broker_topics(std::slice::from_ref(&name)).await.topics[&name].partitions,
        4
    );
}

#[tokio::test]
async fn delete_honours_each_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (keep, drop) = (unique("refunds"), unique("fraud-alerts"));
    let file = write(
        dir.path(),
        "t.yaml",
        &format!(
            "{}{}",
            topic_doc(&keep, 1, ""),
            topic_doc(&drop, 1, "  deletionPolicy: Delete\n")
        ),
    );
    let f = file.to_str().unwrap();
    let bootstrap = broker().bootstrap.as_str();
    assert!(tributary(&["apply", "-f", f, "--bootstrap", bootstrap])
        .status
        .success());
    let out = tributary(&["delete", "-f", f, "--bootstrap", bootstrap]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("- delete {drop}\n  done")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("= keep {keep}: deletionPolicy is Retain")),
        "{stdout}"
    );
    let mut seen = broker_topics(&[keep.clone(), drop.clone()]).await;
    for _ in 0..50 {
        if !seen.topics.contains_key(&drop) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = broker_topics(&[keep.clone(), drop.clone()]).await;
    }
    assert!(seen.topics.contains_key(&keep));
    assert!(!seen.topics.contains_key(&drop));
}

#[test]
fn an_unreachable_broker_fails_fast_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "t.yaml", &topic_doc("orders", 1, ""));
    let bootstrap = format!("127.0.0.1:{}", free_port());
    let start = Instant::now();
    let out = tributary(&[
        "plan",
        "-f",
        file.to_str().unwrap(),
        "--bootstrap",
        &bootstrap,
        "--timeout",
        "2",
    ]);
    let took = start.elapsed();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("cannot reach the Kafka cluster: {bootstrap}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("Connection refused"),
        "the reason is named: {stderr}"
    );
    assert!(
        took < Duration::from_secs(8),
        "bounded by --timeout 2, took {took:?}"
    );
}

#[test]
fn a_cluster_ref_without_a_cluster_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "t.yaml", &topic_doc("orders", 1, ""));
    let out = tributary(&["plan", "-f", file.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("spec.clusterRef: KafkaCluster 'local' is not among the given manifests"),
        "{stderr}"
    );
}

#[tokio::test]
async fn apply_uses_the_cluster_manifest_for_connection_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("bookings");
    let cluster = write(
        dir.path(),
        "cluster.yaml",
        &format!(
            "apiVersion: tributary.io/v1alpha1\nkind: KafkaCluster\nmetadata:\n  name: local\nspec:\n  bootstrapServers: [\"{}\"]\n  topicDefaults:\n    replicationFactor: 1\n    config:\n      retention.ms: \"3600000\"\n",
            broker().bootstrap
        ),
    );
    let topics = write(dir.path(), "topics.yaml", &topic_doc(&name, 2, ""));
    let out = tributary(&[
        "apply",
        "-f",
        topics.to_str().unwrap(),
        "--cluster",
        cluster.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "+ create {name}: partitions=2 replicationFactor=1\n    retention.ms = 3600000"
        )),
        "{stdout}"
    );
    assert_eq!(
        broker_topics(std::slice::from_ref(&name)).await.topics[&name].configs["retention.ms"]
            .value
            .as_deref(),
        Some("3600000")
    );
}

/// Issue 13, defect 5: what the operator derives from a topology (child names, label values,
/// annotations) is checked offline, so `validate` and `render` refuse what the API server
/// would refuse: here a topic name of 64 characters, the value of a label on its child.
#[test]
fn validate_and_render_refuse_a_derived_label_value_kubernetes_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let topic = format!("alerts.{}", "x".repeat(57));
    let topology = |topic: &str| {
        format!("apiVersion: tributary.io/v1alpha1\nkind: StreamTopology\nmetadata: {{name: news}}\nspec:\n  clusterRef: local\n  topics: [{{name: {topic}, partitions: 3}}]\n  consumers:\n    - {{name: tv, topics: [{topic}], template: {{image: ghcr.io/acme/tv:1}}, replicas: 1}}\n")
    };
    let long = write(dir.path(), "long.yaml", &topology(&topic));
    for command in ["validate", "render"] {
        let out = tributary(&[command, "-f", long.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {stdout}");
        assert!(
            stderr.contains(&format!("long.yaml#1 spec.topics[0].name: '{topic}' is 64 characters long; at most 63: it is the value of the label tributary.io/topology-entry on the KafkaTopic")),
            "{command}: {stderr}"
        );
    }
    let fits = write(dir.path(), "fits.yaml", &topology(&topic[1..]));
    let out = tributary(&["render", "-f", fits.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
}

/// `render` prints every child of a topology as a YAML stream, exactly what `validate`
/// counts; `graph` writes DOT and a self-contained SVG naming every node; an invalid topology
/// stops both with the entry's path.
#[test]
fn render_and_graph_a_topology() {
    let out = tributary(&["render", "-f", "examples/ride-hailing"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout).unwrap();
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds.len(),
        11,
        "5 topics, 3 producers, 3 consumers: {kinds:?}"
    );
    assert!(
        kinds.contains(&("KafkaTopic", "ride-hailing-ride-requests")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("KafkaConsumer", "ride-hailing-dispatch")),
        "{kinds:?}"
    );
    for d in &docs {
        assert_eq!(
            d["metadata"]["labels"]["tributary.io/topology"],
            "ride-hailing"
        );
        assert_eq!(d["metadata"]["namespace"], "ride-hailing");
    }

    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("ride-hailing.svg");
    let out = tributary(&[
        "graph",
        "-f",
        "examples/ride-hailing",
        "--format",
        "svg",
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    for node in [
        "ride-requests",
        "location-telemetry",
        "dispatch-service",
        "notifications",
    ] {
        assert!(svg.contains(node), "{node} missing from the SVG");
    }
    let out = tributary(&["graph", "-f", "examples/ride-hailing", "--format", "dot"]);
    let (dot, _) = text(&out);
    assert!(dot.starts_with("digraph \"ride-hailing\" {"), "{dot}");

    let broken = write(
        dir.path(),
        "broken.yaml",
        "apiVersion: tributary.io/v1alpha1\nkind: StreamTopology\nmetadata: {name: news}\nspec:\n  clusterRef: local\n  topics: [{name: alerts, partitions: 3}]\n  consumers:\n    - {name: tv, topics: [alert], template: {image: ghcr.io/acme/tv:1}, replicas: 1}\n",
    );
    for command in ["render", "graph"] {
        let out = tributary(&[command, "-f", broken.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {stdout}");
        assert!(stdout.is_empty(), "{command} prints nothing: {stdout}");
        assert!(
            stderr.contains("broken.yaml#1 spec.consumers[0].topics[0]: reads topic 'alert', which is not declared in spec.topics (declared: alerts)"),
            "{command}: {stderr}"
        );
    }
    let out = tributary(&["graph", "-f", "examples/ride-hailing", "--format", "png"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("png"), "{}", text(&out).1);
}
