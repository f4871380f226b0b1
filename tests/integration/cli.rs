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
    let out = tributary(&["render", "-f", "examples/ride-hailing", "--depth", "1"]);
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

/// Issue 13, defect 6: a usage error (an unknown flag, a missing `-f`, a bad value, an
/// unknown subcommand) exits 64, never 2, which `plan --detailed-exitcode` means "changes
/// pending"; `--help` and `--version` succeed.
#[test]
fn usage_errors_exit_64_and_never_2() {
    for args in [
        &["plan", "--detailed-exitcod", "-f", "examples"][..],
        &["plan", "--detailed-exitcode"],
        &["apply"],
        &["graph", "-f", "examples", "--format", "png"],
        &["plna", "-f", "examples"],
        &["plan", "-f", "examples", "--timeout", "soon"],
    ] {
        let out = tributary(args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
    }
    let out = tributary(&[]);
    assert_eq!(out.status.code(), Some(64), "no subcommand");
    assert!(text(&out).1.contains("Usage:"), "{}", text(&out).1);
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["operator", "--log-level", "info,=nonsense["])
        .env_remove("TRIBUTARY_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", text(&out).1);
    for args in [&["--help"][..], &["plan", "--help"], &["--version"]] {
        let out = tributary(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out).1);
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

/// Issue 13, defect 9: standard error carries no ANSI colour when it is not a terminal (a
/// pipe here, as in CI), logs included.
#[test]
fn no_colour_on_stderr_when_it_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "t.yaml", &topic_doc("orders", 1, ""));
    let bootstrap = format!("127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "plan",
            "-f",
            file.to_str().unwrap(),
            "--bootstrap",
            &bootstrap,
        ])
        .args(["--timeout", "1"])
        .env("TRIBUTARY_LOG", "debug")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(stderr.contains("DEBUG"), "logs were written: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escape on a pipe: {stderr:?}"
    );
    let out = tributary(&["plan", "--no-such-flag"]);
    assert!(!text(&out).1.contains('\u{1b}'), "{:?}", text(&out).1);
}

/// Issue 13, defect 9: a topic whose namespace has no KafkaCluster of its `clusterRef`, while
/// the manifests declare one in another namespace, is told both namespaces (by `validate` as a
/// warning, by `plan` as the error), not that the cluster is missing.
#[test]
fn a_cluster_in_another_namespace_is_named_with_both_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "t.yaml",
        &format!(
            "apiVersion: tributary.io/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: local, namespace: kafka}}\nspec: {{bootstrapServers: [\"127.0.0.1:9092\"]}}\n{}",
            topic_doc("meter-readings", 3, "").replace("  name: meter-readings\n", "  name: meter-readings\n  namespace: grid\n")
        ),
    );
    let f = file.to_str().unwrap();
    let expected =
        "t.yaml#2 spec.clusterRef: KafkaCluster 'local' is declared in namespace 'kafka' (";
    let out = tributary(&["validate", "-f", f]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("warning: {}", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains(expected), "{stderr}");
    assert!(stderr.contains("not in namespace 'grid'"), "{stderr}");
    let out = tributary(&["plan", "-f", f]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(
        !stderr.contains("is not among the given manifests"),
        "{stderr}"
    );
}

/// Issue 13, defect 9: an empty file, a file of empty documents and a directory without
/// manifests are warned about instead of validating silently as "valid: 0 …".
#[test]
fn empty_input_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let empty_dir = dir.path().join("nothing-here");
    std::fs::create_dir(&empty_dir).unwrap();
    write(&empty_dir, "notes.txt", "not a manifest");
    let empty_file = write(dir.path(), "empty.yaml", "");
    let blank_docs = write(dir.path(), "blank.yaml", "---\n# a comment\n---\n");
    for path in [&empty_dir, &empty_file, &blank_docs] {
        let out = tributary(&["validate", "-f", path.to_str().unwrap()]);
        let (_, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("warning: {}: holds no manifest", path.display())),
            "{}: {stderr}",
            path.display()
        );
    }
    let good = write(dir.path(), "t.yaml", &topic_doc("orders", 1, ""));
    let out = tributary(&[
        "validate",
        "-f",
        good.to_str().unwrap(),
        empty_file.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("empty.yaml: holds no manifest"), "{stderr}");
    assert!(!stderr.contains("t.yaml"), "{stderr}");
}

/// Issue 13, defect 9: `delete` of topics the broker does not have says so, keeps nothing, and
/// does not claim that the broker matches the manifests.
#[tokio::test]
async fn delete_of_topics_the_broker_lacks_says_what_is_true() {
    let dir = tempfile::tempdir().unwrap();
    let (retained, deleted) = (unique("never-created"), unique("never-created-delete"));
    let file = write(
        dir.path(),
        "t.yaml",
        &format!(
            "{}{}",
            topic_doc(&retained, 1, ""),
            topic_doc(&deleted, 1, "  deletionPolicy: Delete\n")
        ),
    );
    let out = tributary(&[
        "delete",
        "-f",
        file.to_str().unwrap(),
        "--bootstrap",
        &broker().bootstrap,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("keep"), "{stdout}");
    assert!(
        !stdout.contains("the broker matches the manifests"),
        "{stdout}"
    );
    for name in [&retained, &deleted] {
        assert!(
            stdout.contains(&format!("  {name}: not on the broker, nothing to delete")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("Nothing to delete: 0 kept (deletionPolicy Retain), 2 not on the broker."),
        "{stdout}"
    );
}

/// Issue 13: `plan --output json` and `apply --output json` print one JSON document (schema
/// version 1, README.md "JSON output"), and the exit codes still follow --detailed-exitcode.
#[tokio::test]
async fn plan_and_apply_print_a_versioned_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (unique("json-orders"), unique("json-refunds"));
    let file = write(
        dir.path(),
        "t.yaml",
        &format!(
            "{}{}",
            topic_doc(&a, 3, "  config:\n    retention.ms: \"604800000\"\n"),
            topic_doc(&b, 2, "")
        ),
    );
    let f = file.to_str().unwrap();
    let bootstrap = broker().bootstrap.as_str();
    let json = |out: &Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out).0))
    };

    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--output",
        "json",
        "--detailed-exitcode",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    let doc = json(&out);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["command"], "plan");
    assert_eq!(
        (doc["changes"].as_bool(), doc["ok"].as_bool()),
        (Some(true), Some(true))
    );
    let cluster = &doc["clusters"][0];
    assert_eq!(
        cluster["cluster"],
        serde_json::Value::Null,
        "--bootstrap names no KafkaCluster"
    );
    assert_eq!(cluster["bootstrap"], bootstrap);
    let create = cluster["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["topic"] == a.as_str())
        .unwrap();
    assert_eq!(create["action"], "create");
    assert_eq!(create["partitions"], 3);
    assert_eq!(create["replicationFactor"], serde_json::Value::Null);
    assert_eq!(create["config"]["retention.ms"], "604800000");
    assert!(create.get("outcome").is_none(), "plan executes nothing");
    assert_eq!(cluster["summary"]["create"], 2);

    let out = tributary(&["apply", "-f", f, "--bootstrap", bootstrap, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let doc = json(&out);
    assert_eq!(doc["command"], "apply");
    for action in doc["clusters"][0]["actions"].as_array().unwrap() {
        assert_eq!(action["outcome"]["status"], "done", "{action}");
    }
    assert_eq!(doc["clusters"][0]["summary"]["done"], 2);

    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "-o",
        "json",
        "--detailed-exitcode",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let doc = json(&out);
    assert_eq!(doc["changes"], false);
    assert_eq!(doc["clusters"][0]["actions"], serde_json::json!([]));

    // A refusal and a config change: exit 1, the reason as the operator would report it.
    std::fs::write(
        &file,
        format!(
            "{}{}",
            topic_doc(&a, 2, "  config:\n    retention.ms: \"86400000\"\n"),
            topic_doc(&b, 2, "  config:\n    retention.ms: \"86400000\"\n")
        ),
    )
    .unwrap();
    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "-o",
        "json",
        "--detailed-exitcode",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let doc = json(&out);
    assert_eq!(doc["ok"], false);
    let actions = doc["clusters"][0]["actions"].as_array().unwrap();
    let refuse = actions.iter().find(|x| x["action"] == "refuse").unwrap();
    assert_eq!(refuse["topic"], a.as_str());
    assert_eq!(refuse["reasons"][0]["reason"], "PartitionDecrease");
    let configure = actions.iter().find(|x| x["action"] == "configure").unwrap();
    assert_eq!(
        configure["changes"],
        serde_json::json!([{"key": "retention.ms", "from": null, "to": "86400000"}])
    );

    // Invalid manifests: still one document, with every error, and exit 1.
    let bad = write(dir.path(), "bad.yaml", &topic_doc(&a, 0, ""));
    let out = tributary(&[
        "plan",
        "-f",
        bad.to_str().unwrap(),
        "--bootstrap",
        bootstrap,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("bad.yaml#1 spec.partitions: must be >= 1, got 0"),
        "{doc}"
    );
    assert_eq!(doc["clusters"], serde_json::json!([]));

    // An unreachable broker: still one document, the error on its cluster (the other
    // clusters of a run would still be planned), and exit 1.
    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        &format!("127.0.0.1:{}", free_port()),
        "--timeout",
        "1",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert!(
        doc["clusters"][0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the Kafka cluster"),
        "{doc}"
    );
    assert_eq!(doc["clusters"][0]["actions"], serde_json::json!([]));
    assert_eq!(doc["ok"], false);
}

/// Issue 13: progress is for a terminal only; through a pipe, `apply` and `delete` of many
/// topics print exactly their report and nothing on standard error.
#[tokio::test]
async fn apply_and_delete_of_many_topics_print_no_progress_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("many");
    let names: Vec<String> = (0..12).map(|i| format!("{prefix}-{i:02}")).collect();
    let docs: String = names
        .iter()
        .map(|n| topic_doc(n, 1, "  deletionPolicy: Delete\n"))
        .collect();
    let file = write(dir.path(), "t.yaml", &docs);
    let f = file.to_str().unwrap();
    for (command, summary) in [
        ("apply", "Applied: 12 done, 0 failed, 0 refused."),
        ("delete", "Applied: 12 done, 0 failed, 0 refused."),
    ] {
        let out = tributary(&[command, "-f", f, "--bootstrap", &broker().bootstrap]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{command}: {stdout}{stderr}");
        assert_eq!(
            stderr, "",
            "{command}: nothing on a stderr that is not a terminal"
        );
        assert!(
            !stdout.contains('\r') && !stdout.contains('\u{1b}'),
            "{command}: {stdout:?}"
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1 + 12 * 2 + 1,
            "{command}: header, two lines a topic, summary: {stdout}"
        );
        assert_eq!(lines.last(), Some(&summary), "{command}");
    }
}

/// Issue 13, defect 9: topics of topologies that collide in Kafka (`a.b` and `a_b`) give one
/// error each, at the topology entry (`spec.topics[i].name`), never at a child's field
/// (`spec.topicName`) or naming a child; so do the problems of a topic child found with its
/// cluster's defaults.
#[test]
fn topology_topics_are_reported_at_their_entry() {
    let dir = tempfile::tempdir().unwrap();
    let topology = |name: &str, topics: &str| {
        format!("---\napiVersion: tributary.io/v1alpha1\nkind: StreamTopology\nmetadata: {{name: {name}}}\nspec:\n  clusterRef: local\n  topics: [{topics}]\n  consumers:\n    - {{name: tv, topics: [a.b], template: {{image: ghcr.io/acme/tv:1}}, replicas: 1}}\n")
    };
    let one = write(
        dir.path(),
        "one.yaml",
        &topology(
            "news",
            "{name: a.b, partitions: 3}, {name: a_b, partitions: 3}",
        ),
    );
    let two = write(
        dir.path(),
        "two.yaml",
        &format!(
            "{}{}",
            topology(
                "news",
                "{name: x, partitions: 1}, {name: a.b, partitions: 3}"
            ),
            topology("radio", "{name: a.b, partitions: 3}").replace("a.b", "a_b")
        ),
    );
    let cluster = write(
        dir.path(),
        "three.yaml",
        &format!(
            "apiVersion: tributary.io/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: local}}\nspec:\n  bootstrapServers: [\"127.0.0.1:9092\"]\n  topicDefaults: {{replicationFactor: 1, config: {{min.insync.replicas: \"2\"}}}}\n{}",
            topology("news", "{name: a.b, partitions: 3}")
        ),
    );
    for (file, expected) in [
        (&one, "one.yaml#1 spec.topics[1].name: topic 'a_b' collides with 'a.b' (spec.topics[0])"),
        (&two, "two.yaml#2 spec.topics[0].name: topic 'a_b' collides with 'a.b' ("),
        (&cluster, "three.yaml#2 spec.topics[0].replicationFactor: min.insync.replicas 2 exceeds the replication factor 1"),
    ] {
        let out = tributary(&["validate", "-f", file.to_str().unwrap()]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains("\n1 error(s)"), "one error, no follow-on: {stderr}");
        for internal in ["spec.topicName", "news-a", "radio-a", "spec.replicationFactor"] {
            assert!(!stderr.contains(internal), "{internal}: {stderr}");
        }
    }
}

/// Issue 13, defect 9: `graph` of manifests from two namespaces (or clusters) gets a neutral
/// title and a frame per cluster, and one topic name on two clusters is two nodes.
#[test]
fn graph_of_two_clusters_groups_by_cluster_under_a_neutral_title() {
    let dir = tempfile::tempdir().unwrap();
    let topology = |name: &str, namespace: &str, cluster: &str| {
        format!("---\napiVersion: tributary.io/v1alpha1\nkind: StreamTopology\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  clusterRef: {cluster}\n  topics: [{{name: alarms, partitions: 3}}]\n  producers:\n    - {{name: monitor, topics: [alarms], template: {{image: ghcr.io/acme/m:1}}}}\n  consumers:\n    - {{name: pager, topics: [alarms], template: {{image: ghcr.io/acme/p:1}}, replicas: 1}}\n")
    };
    let file = write(
        dir.path(),
        "t.yaml",
        &format!(
            "{}{}",
            topology("ward", "hospital", "local"),
            topology("grid", "energy", "edge")
        ),
    );
    let f = file.to_str().unwrap();
    let out = tributary(&["graph", "-f", f]);
    let (mermaid, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        mermaid.starts_with("---\ntitle: \"tributary: 2 clusters\"\n---\nflowchart LR\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("subgraph g0 [\"cluster edge · namespace energy\"]"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("subgraph g1 [\"cluster local · namespace hospital\"]"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("g0_t_alarms") && mermaid.contains("g1_t_alarms"),
        "{mermaid}"
    );
    assert!(
        !mermaid.contains("title: \"ward\"") && !mermaid.contains("title: \"grid\""),
        "{mermaid}"
    );
    let out = tributary(&["graph", "-f", f, "--format", "dot"]);
    let (dot, _) = text(&out);
    assert!(
        dot.starts_with("digraph \"tributary: 2 clusters\" {"),
        "{dot}"
    );
    for frame in ["subgraph cluster_g0 {", "subgraph cluster_g1 {"] {
        assert_eq!(dot.matches(frame).count(), 1, "{dot}");
    }
    let out = tributary(&["graph", "-f", f, "--format", "svg"]);
    let (svg, _) = text(&out);
    assert!(
        svg.contains("<title>tributary: 2 clusters</title>"),
        "{svg}"
    );
    assert!(svg.contains("cluster local · namespace hospital"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
}

/// Issue 13: `render` goes down to what actually runs: after a topology's children, the
/// Deployments and Services its consumers and producers become, and those of standalone
/// consumers and producers, as the controllers render them (the same functions); `--depth 1`
/// stops at the children.
#[test]
fn render_shows_deployments_and_services() {
    let dir = tempfile::tempdir().unwrap();
    let standalone = write(
        dir.path(),
        "billing.yaml",
        "apiVersion: tributary.io/v1alpha1\nkind: KafkaConsumer\nmetadata: {name: billing, namespace: ride-hailing}\nspec:\n  clusterRef: local\n  topics: [ride-hailing-trip-events]\n  template: {image: ghcr.io/acme/billing:1}\n  autoscaling: {minReplicas: 2, maxReplicas: 6, lagThreshold: 100}\n",
    );
    let out = tributary(&[
        "render",
        "-f",
        "examples/ride-hailing",
        "-f",
        standalone.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "", "everything could be rendered");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout).unwrap();
    let count = |kind: &str| docs.iter().filter(|d| d["kind"] == kind).count();
    assert_eq!(
        (
            count("KafkaTopic"),
            count("KafkaProducer"),
            count("KafkaConsumer")
        ),
        (5, 3, 3)
    );
    assert_eq!(
        count("Deployment"),
        3 + 3 + 1,
        "every producer and consumer, the standalone one too"
    );
    assert_eq!(count("Service"), 3, "the producers' services");
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}: {stdout}"))
    };
    let dispatch = find("Deployment", "ride-hailing-dispatch");
    let env = dispatch["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        var("KAFKA_GROUP_ID"),
        Some("ride-hailing-dispatch".into()),
        "{dispatch}"
    );
    assert_eq!(
        var("KAFKA_TOPICS")
            .unwrap()
            .as_str()
            .unwrap()
            .split(',')
            .next(),
        Some("ride-requests"),
        "broker names, not KafkaTopic names"
    );
    assert!(
        dispatch["metadata"].get("ownerReferences").is_none(),
        "no uid to own it by yet"
    );
    let billing = find("Deployment", "billing");
    assert_eq!(
        billing["spec"]["replicas"], 2,
        "autoscaled: shown at minReplicas"
    );
    assert_eq!(
        find("Service", "ride-hailing-rider-app-api")["spec"]["ports"][0]["port"],
        80
    );

    // Without its KafkaCluster, a workload's Deployment cannot be rendered: said, not guessed.
    let out = tributary(&["render", "-f", "examples/ride-hailing/topology.yaml"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("kind: Deployment"), "{stdout}");
    assert!(
        stderr.contains("note: examples/ride-hailing/topology.yaml#1 KafkaConsumer 'ride-hailing-dispatch': KafkaCluster 'local' is not among the manifests, so its Deployment is not rendered"),
        "{stderr}"
    );
}

/// "The broker matches the manifest" means the same to the CLI as to the operator: a config
/// key removed from the manifest is reset to the broker's default, not left behind.
#[tokio::test]
async fn a_config_key_removed_from_the_manifest_is_reset() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("readings");
    let with = topic_doc(
        &name,
        1,
        "  config:\n    max.message.bytes: \"2097152\"\n    retention.ms: \"86400000\"\n",
    );
    let file = write(dir.path(), "topics.yaml", &with);
    let f = file.to_str().unwrap();
    let bootstrap = broker().bootstrap.as_str();
    let out = tributary(&["apply", "-f", f, "--bootstrap", bootstrap]);
    assert!(out.status.success(), "{:?}", text(&out));

    std::fs::write(
        &file,
        with.replace("    max.message.bytes: \"2097152\"\n", ""),
    )
    .unwrap();
    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--detailed-exitcode",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "~ configure {name}:\n    max.message.bytes: 2097152 -> (broker default)\n"
        )),
        "{stdout}"
    );
    let out = tributary(&["apply", "-f", f, "--bootstrap", bootstrap]);
    assert!(out.status.success(), "{:?}", text(&out));
    let seen = broker_topics(std::slice::from_ref(&name)).await;
    let configs = &seen.topics[&name].configs;
    assert!(
        configs.get("max.message.bytes").is_none_or(|c| !c.dynamic),
        "the override is gone: {configs:?}"
    );
    assert_eq!(
        configs["retention.ms"].value.as_deref(),
        Some("86400000"),
        "the declared key stays"
    );
    let out = tributary(&["plan", "-f", f, "--bootstrap", bootstrap]);
    assert!(text(&out).0.contains("No changes"), "{:?}", text(&out));
}

/// A loopback proxy in front of a broker that forwards every request and every answer except
/// the answer to the first CreateTopics: the broker does the work, the client never hears of it
/// (an answer lost as when a broker dies right after acting). Runs until the process ends.
fn proxy_losing_the_first_create_answer(listener: std::net::TcpListener, upstream: String) {
    use std::collections::VecDeque;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    const CREATE_TOPICS: i16 = 19;
    fn frame(from: &mut TcpStream) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        from.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        from.read_exact(&mut body).ok()?;
        Some([len.to_vec(), body].concat())
    }
    let lost = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                return;
            };
            let (mut client_w, mut server_r) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            // Kafka answers the requests of one connection in order: the api of each answer is
            // the api of the oldest request not yet answered.
            let pending = Arc::new(Mutex::new(VecDeque::new()));
            let (pending_w, lost) = (pending.clone(), lost.clone());
            std::thread::spawn(move || {
                while let Some(request) = frame(&mut client) {
                    let api = i16::from_be_bytes([request[4], request[5]]);
                    pending_w.lock().unwrap().push_back(api);
                    if server.write_all(&request).is_err() {
                        return;
                    }
                }
            });
            std::thread::spawn(move || {
                while let Some(answer) = frame(&mut server_r) {
                    let api = pending.lock().unwrap().pop_front();
                    if api == Some(CREATE_TOPICS) && !lost.swap(true, Ordering::SeqCst) {
                        continue;
                    }
                    if client_w.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// A CreateTopics whose answer never comes (the broker acted, then went silent on it) is not
/// reported as 40 failures: the broker is read again and shows every topic created.
#[test]
fn a_lost_answer_is_settled_by_reading_the_broker_again() {
    use crate::support::broker::{spawn_guarded_tansu_at, stop_guarded, wait_for};

    let (port, proxy) = (
        free_port(),
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let proxy_port = proxy.local_addr().unwrap().port();
    let tansu = spawn_guarded_tansu_at(port, &format!("127.0.0.1:{proxy_port}"));
    wait_for(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(20),
    );
    proxy_losing_the_first_create_answer(proxy, format!("127.0.0.1:{port}"));

    let dir = tempfile::tempdir().unwrap();
    let docs: String = (0..40)
        .map(|i| topic_doc(&format!("meter-{i:02}"), 1, ""))
        .collect();
    let f = write(dir.path(), "topics.yaml", &docs);
    let bootstrap = format!("127.0.0.1:{proxy_port}");
    let out = tributary(&[
        "apply",
        "-f",
        f.to_str().unwrap(),
        "--bootstrap",
        &bootstrap,
        "--timeout",
        "1",
    ]);
    stop_guarded(tansu);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("Applied: 40 done, 0 failed, 0 refused."),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("reading the broker again"),
        "the answer was indeed lost: {stderr}"
    );
}

/// One cluster whose broker does not answer does not stop the apply of the others.
#[tokio::test]
async fn an_unreachable_cluster_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = |name: &str, bootstrap: &str| {
        format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaCluster\nmetadata:\n  name: {name}\nspec:\n  bootstrapServers: [\"{bootstrap}\"]\n  requestTimeoutSeconds: 1\n")
    };
    let topic = |name: &str, cluster: &str| {
        format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata:\n  name: {name}\nspec:\n  clusterRef: {cluster}\n  partitions: 1\n")
    };
    let live = unique("substation");
    let docs = [
        cluster("a-dead", &format!("127.0.0.1:{}", free_port())),
        cluster("b-live", &broker().bootstrap),
        topic("feeder", "a-dead"),
        topic(&live, "b-live"),
    ]
    .concat();
    let f = write(dir.path(), "grid.yaml", &docs);
    let out = tributary(&["apply", "-f", f.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("observing a-dead (127.0.0.1:"), "{stderr}");
    assert!(stdout.contains(&format!("+ create {live}")), "{stdout}");
    assert!(broker_topics(std::slice::from_ref(&live))
        .await
        .topics
        .contains_key(&live));
}

/// Waits (up to 5 s) until the broker no longer has `name`; the snapshot of `names` then.
async fn topics_after_deleting(name: &str, names: &[String]) -> tributary::kafka::BrokerSnapshot {
    let mut seen = broker_topics(names).await;
    for _ in 0..50 {
        if !seen.topics.contains_key(name) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = broker_topics(names).await;
    }
    seen
}

#[tokio::test]
async fn apply_prune_deletes_only_the_stacks_undeclared_delete_topics() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = broker().bootstrap.as_str();
    let (stack, other_stack) = (unique("stack-s"), unique("stack-t"));
    let (a, b, gone) = (unique("prune-a"), unique("prune-b"), unique("prune-gone"));
    let (kept, theirs) = (unique("prune-retain"), unique("prune-theirs"));
    let delete = "  deletionPolicy: Delete\n";
    let mine = write(
        dir.path(),
        "mine.yaml",
        &[
            topic_doc(&a, 1, delete),
            topic_doc(&b, 1, delete),
            topic_doc(&gone, 1, delete),
            topic_doc(&kept, 1, "  deletionPolicy: Retain\n"),
        ]
        .concat(),
    );
    let others = write(dir.path(), "theirs.yaml", &topic_doc(&theirs, 1, delete));
    let (f, g) = (mine.to_str().unwrap(), others.to_str().unwrap());
    for (file, name) in [(f, &stack), (g, &other_stack)] {
        let out = tributary(&[
            "apply",
            "-f",
            file,
            "--bootstrap",
            bootstrap,
            "--stack",
            name,
        ]);
        assert!(out.status.success(), "{:?}", text(&out));
    }
    let all = [&a, &b, &gone, &kept, &theirs].map(|s| s.to_string());
    let seen = broker_topics(&all).await;
    assert!(all.iter().all(|t| seen.topics.contains_key(t)), "applied");
    assert!(
        broker_topics(&["__tributary_stacks".to_string()])
            .await
            .topics
            .contains_key("__tributary_stacks"),
        "the state topic is created on first use"
    );

    // `gone` and `kept` leave the manifests; `theirs` belongs to the other stack.
    std::fs::write(
        &mine,
        [topic_doc(&a, 1, delete), topic_doc(&b, 1, delete)].concat(),
    )
    .unwrap();
    let out = tributary(&["plan", "-f", f, "--bootstrap", bootstrap, "--stack", &stack]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("No changes"),
        "no prune without --prune: {stdout}"
    );

    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--stack",
        &stack,
        "--prune",
        "--detailed-exitcode",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("- delete {gone} (pruned)\n")),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&format!("delete {kept}")),
        "Retain is never pruned: {stdout}"
    );
    assert!(!stdout.contains(&theirs), "another stack's topic: {stdout}");
    assert!(
        stderr.contains(&format!(
            "'{kept}' is no longer declared but its deletionPolicy was Retain"
        )),
        "{stderr}"
    );
    assert!(
        stdout.contains("Plan: 0 to create, 0 to grow, 0 to reconfigure, 1 to delete, 0 refused."),
        "{stdout}"
    );

    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--stack",
        &stack,
        "--prune",
        "-o",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cluster = &doc["clusters"][0];
    assert_eq!(cluster["stack"], stack.as_str());
    assert_eq!(
        cluster["actions"],
        serde_json::json!([{"action": "delete", "topic": gone, "pruned": true}])
    );

    let out = tributary(&[
        "apply",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--stack",
        &stack,
        "--prune",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("- delete {gone} (pruned)\n  done")),
        "{stdout}"
    );
    let seen = topics_after_deleting(&gone, &all).await;
    assert!(!seen.topics.contains_key(&gone), "pruned on the broker");
    for t in [&a, &b, &kept, &theirs] {
        assert!(seen.topics.contains_key(t), "{t} is untouched");
    }

    // The state now holds what is left: a second prune has nothing to do.
    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--stack",
        &stack,
        "--prune",
    ]);
    assert!(text(&out).0.contains("No changes"), "{:?}", text(&out));

    // The other stack's every topic leaves its manifests: its cluster is still pruned, and only
    // its own topic.
    std::fs::write(&others, "# every topic removed\n").unwrap();
    let out = tributary(&[
        "plan",
        "-f",
        g,
        "--bootstrap",
        bootstrap,
        "--stack",
        &other_stack,
        "--prune",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains(&format!("- delete {theirs} (pruned)\n")) && stdout.contains("1 to delete"),
        "{stdout}{stderr}"
    );
    let out = tributary(&[
        "apply",
        "-f",
        g,
        "--bootstrap",
        bootstrap,
        "--stack",
        &other_stack,
        "--prune",
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let seen = topics_after_deleting(&theirs, &all).await;
    assert!(!seen.topics.contains_key(&theirs));
    for t in [&a, &b, &kept] {
        assert!(seen.topics.contains_key(t), "{t} is stack {stack}'s");
    }
}

#[tokio::test]
async fn a_renamed_topic_name_is_delete_and_create_under_prune_and_a_warning_without() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = broker().bootstrap.as_str();
    let stack = unique("stack-rename");
    let (resource, old, new) = (unique("orders"), unique("orders-v1"), unique("orders-v2"));
    let doc = |topic: &str| {
        format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata:\n  name: {resource}\nspec:\n  clusterRef: local\n  topicName: {topic}\n  partitions: 1\n  deletionPolicy: Delete\n")
    };
    let file = write(dir.path(), "t.yaml", &doc(&old));
    let f = file.to_str().unwrap();
    let out = tributary(&[
        "apply",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--stack",
        &stack,
    ]);
    assert!(out.status.success(), "{:?}", text(&out));

    std::fs::write(&file, doc(&new)).unwrap();
    let out = tributary(&["plan", "-f", f, "--bootstrap", bootstrap, "--stack", &stack]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("+ create {new}")), "{stdout}");
    assert!(!stdout.contains(&format!("delete {old}")), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "warning: KafkaTopic default/{resource}: its topic was renamed from '{old}' to '{new}'"
        )) && stderr.contains("`--prune` deletes it"),
        "{stderr}"
    );

    let out = tributary(&[
        "plan",
        "-f",
        f,
        "--bootstrap",
        bootstrap,
        "--stack",
        &stack,
        "--prune",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains(&format!("+ create {new}")), "{stdout}");
    assert!(
        stdout.contains(&format!("- delete {old} (pruned)")),
        "{stdout}{stderr}"
    );
}

fn user_doc(name: &str, topic: &str, auth: &str) -> String {
    format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaUser\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  clusterRef: local\n  authentication:\n    type: scram-sha-512\n{auth}  authorization:\n    acls:\n      - resource: {{type: topic, name: {topic}}}\n        operations: [Write, Describe]\n")
}

/// The broker's bindings of `principal`, sorted.
async fn acls_of(principal: &str) -> Vec<tributary::kafka::identity::AclBinding> {
    use tributary::kafka::identity::IdentityAdmin;
    let identity = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        &broker().bootstrap,
        Duration::from_secs(10),
    ))
    .unwrap()
    .identity_admin();
    let mut found: Vec<_> = identity
        .describe_acls()
        .await
        .unwrap()
        .bindings
        .into_iter()
        .filter(|b| b.principal == principal)
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn users_acls_are_planned_applied_and_deleted_and_other_principals_left_alone() {
    use tributary::kafka::identity::{
        user_principal, AclBinding, AclOperation, AclResourceType, IdentityAdmin,
    };
    let dir = tempfile::tempdir().unwrap();
    let user = unique("orders-service");
    let topic = unique("orders");
    let file = write(dir.path(), "u.yaml", &user_doc(&user, &topic, ""));
    let f = file.to_str().unwrap();
    let bootstrap = broker().bootstrap.as_str();
    let plan = || {
        tributary(&[
            "plan",
            "-f",
            f,
            "--bootstrap",
            bootstrap,
            "--detailed-exitcode",
        ])
    };

    let out = plan();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("+ acl User:{user} WRITE topic {topic}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("+ acl User:{user} DESCRIBE topic {topic}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("= KafkaUser shop/{user}: its password is generated by the operator into Secret shop/{user}-kafka")),
        "{stdout}"
    );
    let json = tributary(&["plan", "-f", f, "--bootstrap", bootstrap, "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let users = &doc["clusters"][0]["users"];
    assert_eq!(
        users["principals"],
        serde_json::json!([format!("User:{user}")])
    );
    assert_eq!(users["acls"][0]["action"], "create");
    assert_eq!(users["acls"][0]["operation"], "WRITE");
    assert_eq!(users["acls"][0]["resourceName"], topic.as_str());
    assert_eq!(doc["changes"], true);

    let out = tributary(&["apply", "-f", f, "--bootstrap", bootstrap]);
    let (stdout, stderr) = text(&out);
    if broker().is_tansu {
        // Tansu lists CreateAcls without DeleteAcls and keeps no ACL: refused by name, the
        // exit code of a partial failure, and the ACLs still planned.
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!(
                "! User:{user}: failed (BrokerUnsupported): the broker does not support CreateAcls"
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("+ acl User:{user} WRITE topic {topic}  (failed)")),
            "{stdout}"
        );
        assert_eq!(plan().status.code(), Some(2));
        let json = tributary(&["apply", "-f", f, "--bootstrap", bootstrap, "-o", "json"]);
        assert_eq!(json.status.code(), Some(1));
        let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let users = &doc["clusters"][0]["users"];
        assert_eq!(users["acls"][0]["outcome"], "failed");
        assert_eq!(users["failures"][0]["principal"], format!("User:{user}"));
        assert_eq!(users["failures"][0]["reason"], "BrokerUnsupported");
        assert!(
            users["failures"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("CreateAcls")),
            "{users}"
        );
        assert_eq!(doc["ok"], false);
        return;
    }
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("+ acl User:{user} WRITE topic {topic}  (done)")),
        "{stdout}"
    );
    let out = plan();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);
    assert_eq!(acls_of(&user_principal(&user)).await.len(), 2);

    // Drift: an ACL added by hand for the managed principal goes; another principal's stays.
    let identity = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        bootstrap,
        Duration::from_secs(10),
    ))
    .unwrap()
    .identity_admin();
    let extra = AclBinding::allow(
        user_principal(&user),
        AclOperation::Read,
        AclResourceType::Topic,
        &topic,
    );
    let other = unique("someone-else");
    let foreign = AclBinding::allow(
        user_principal(&other),
        AclOperation::Write,
        AclResourceType::Topic,
        &topic,
    );
    identity
        .create_acls(&[extra, foreign.clone()])
        .await
        .unwrap();
    let (stdout, _) = text(&plan());
    assert!(
        stdout.contains(&format!("- acl User:{user} READ topic {topic}\n")),
        "{stdout}"
    );
    assert!(!stdout.contains(&other), "{stdout}");

    let out = tributary(&["delete", "-f", f, "--bootstrap", bootstrap]);
    assert!(out.status.success(), "{}", text(&out).0);
    assert!(acls_of(&user_principal(&user)).await.is_empty());
    assert_eq!(
        acls_of(&user_principal(&other)).await,
        vec![foreign.clone()]
    );
    identity.delete_acls(&[foreign]).await.unwrap();
}

#[tokio::test]
async fn a_users_password_the_cli_cannot_read_is_refused_by_name_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let user = unique("billing");
    let auth = "    passwordFrom:\n      secretKeyRef: {name: billing-vault, key: password}\n";
    let file = write(
        dir.path(),
        "u.yaml",
        &user_doc(&user, &unique("invoices"), auth),
    );
    let out = tributary(&[
        "plan",
        "-f",
        file.to_str().unwrap(),
        "--bootstrap",
        &broker().bootstrap,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("! refused (CredentialsUnavailable): KafkaUser shop/{user}: its SCRAM-SHA-512 credential is not set")),
        "{stdout}"
    );
    assert!(stdout.contains("--kube-secrets"), "{stdout}");
    assert!(
        stdout.contains(&format!("+ acl User:{user} WRITE topic")),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_user_no_longer_declared_is_pruned_from_its_stack() {
    let dir = tempfile::tempdir().unwrap();
    let user = unique("reports");
    let stack = unique("team/reports");
    let file = write(dir.path(), "u.yaml", &user_doc(&user, &unique("daily"), ""));
    let bootstrap = broker().bootstrap.as_str();
    let run = |verb: &str, f: &Path, prune: bool| {
        let mut args = vec![
            verb,
            "-f",
            f.to_str().unwrap(),
            "--bootstrap",
            bootstrap,
            "--stack",
            &stack,
        ];
        if prune {
            args.push("--prune");
        }
        tributary(&args)
    };
    // Recorded in the stack by apply, whatever the broker does with its ACLs (Tansu refuses
    // CreateAcls).
    let out = run("apply", &file, false);
    assert!(
        out.status.code() == Some(0) || broker().is_tansu,
        "{:?}",
        text(&out)
    );
    // The stack now declares another user only, with nothing to change on the broker: the
    // prune alone is the run's change.
    let other = unique("weekly");
    let empty = write(
        dir.path(),
        "other.yaml",
        &format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaUser\nmetadata:\n  name: {other}\n  namespace: shop\nspec:\n  clusterRef: local\n  authentication:\n    type: scram-sha-512\n"),
    );
    let (_, stderr) = text(&run("plan", &empty, false));
    let warning = format!("User:{user} (KafkaUser shop/{user}) is no longer declared; `--prune` removes its ACLs and credentials");
    assert!(stderr.contains(&warning), "{stderr}");
    let out = run("apply", &empty, true);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success() || broker().is_tansu,
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "- user User:{user} (KafkaUser shop/{user}): every ACL and SCRAM credential of it"
        )),
        "{stdout}"
    );
    if !broker().is_tansu {
        assert!(
            stdout.contains(&format!("- acl User:{user} WRITE topic")),
            "{stdout}"
        );
        assert!(acls_of(&format!("User:{user}")).await.is_empty());
    }
    // Pruned: the stack no longer lists it.
    let (_, stderr) = text(&run("plan", &empty, false));
    assert!(!stderr.contains(&warning), "{stderr}");
}

/// `tributary validate` checks KafkaOffsetResets offline as the operator does: a valid one
/// passes; each wrong one is refused naming its field and the fix.
#[test]
fn validate_checks_offset_resets_offline() {
    let dir = tempfile::tempdir().unwrap();
    let reset = |name: &str, spec: &str| {
        format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaOffsetReset\nmetadata:\n  name: {name}\n  namespace: ride-hailing\nspec:\n{spec}")
    };
    let good = write(
        dir.path(),
        "good.yaml",
        &reset(
            "replay",
            "  consumerRef: ride-hailing-analytics\n  topics: [trip-events]\n  target: {timestamp: \"2026-12-07T08:00:00Z\"}\n",
        ),
    );
    let out = tributary(&["validate", "-f", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    let bad = write(
        dir.path(),
        "bad.yaml",
        &[
            reset(
                "both",
                "  consumerRef: a\n  group: g\n  clusterRef: local\n  target: {latest: true}\n",
            ),
            reset(
                "two-targets",
                "  consumerRef: a\n  target: {earliest: true, shiftBy: -10}\n",
            ),
            reset(
                "when",
                "  consumerRef: a\n  target: {timestamp: yesterday}\n",
            ),
            reset("no-cluster", "  group: g\n  target: {latest: true}\n"),
        ]
        .concat(),
    );
    let out = tributary(&["validate", "-f", bad.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let file = bad.display().to_string();
    for expected in [
        format!("{file}#1 spec"),
        "consumerRef and group".to_string(),
        format!("{file}#2 spec.target"),
        "exactly one of earliest, latest, timestamp, shiftBy and offsets".to_string(),
        format!("{file}#3 spec.target.timestamp: 'yesterday' is not an RFC 3339 date-time"),
        format!("{file}#4 spec"),
        "clusterRef".to_string(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
}
