//! Rendered Deployments and Services, byte for byte: `tests/golden/*.yaml` hold the expected
//! output of the renderers serialized with serde-saphyr. After an intended change, rewrite
//! them with `UPDATE_GOLDEN=1 cargo test --test integration workload::` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;
use tributary::api::{KafkaCluster, KafkaConsumer, KafkaProducer, KafkaTopic};
use tributary::manifest::{self, Resource};
use tributary::workloads::{
    consumer_deployment, producer_deployment, producer_service, topic_names, validate_consumer,
    validate_producer, ConnectionFacts, Scaling,
};

use crate::support::broker;

const CLUSTER: &str = r#"
apiVersion: tributary.io/v1alpha1
kind: KafkaCluster
metadata: {name: production, namespace: e-commerce}
spec:
  bootstrapServers: ["kafka-0.kafka.svc:9093", "kafka-1.kafka.svc:9093"]
  tls:
    caCert: {secretKeyRef: {name: kafka-cluster-ca, key: ca.crt}}
  sasl:
    mechanism: SCRAM-SHA-512
    username: {value: shop}
    password: {secretKeyRef: {name: shop-kafka, key: password}}
"#;

const TOPIC: &str = r#"
apiVersion: tributary.io/v1alpha1
kind: KafkaTopic
metadata: {name: orders, namespace: e-commerce}
spec: {clusterRef: production, topicName: shop.orders, partitions: 6}
"#;

const CONSUMER: &str = r#"
apiVersion: tributary.io/v1alpha1
kind: KafkaConsumer
metadata:
  name: analytics
  namespace: e-commerce
  uid: 6f1c2d3e-0000-4000-8000-000000000001
spec:
  clusterRef: production
  topics: [clicks, orders]
  template:
    image: ghcr.io/example/analytics:4.1.0
    command: [/bin/analytics]
    args: ["--window", "1m"]
    env:
      - {name: LOG_LEVEL, value: info}
      - name: WAREHOUSE_PASSWORD
        valueFrom: {secretKeyRef: {name: warehouse, key: password}}
    envFrom:
      - configMapRef: {name: analytics-config}
    resources:
      requests: {cpu: 500m, memory: 1Gi}
      limits: {memory: 2Gi}
    labels: {app.kubernetes.io/part-of: e-commerce}
    annotations: {prometheus.io/scrape: "true"}
    serviceAccountName: analytics
    nodeSelector: {kubernetes.io/arch: amd64}
    tolerations:
      - {key: dedicated, operator: Equal, value: analytics, effect: NoSchedule}
  autoscaling: {minReplicas: 2, maxReplicas: 12, lagThreshold: 10000}
"#;

const PRODUCER: &str = r#"
apiVersion: tributary.io/v1alpha1
kind: KafkaProducer
metadata:
  name: order-service
  namespace: e-commerce
  uid: 6f1c2d3e-0000-4000-8000-000000000002
spec:
  clusterRef: production
  topics: [orders]
  replicas: 2
  template:
    image: ghcr.io/example/order-service:3.2.1
    env:
      - {name: ACKS, value: all}
    resources:
      requests: {cpu: 200m, memory: 256Mi}
  service:
    type: LoadBalancer
    ports:
      - {name: http, port: 80, targetPort: 8080}
      - {name: grpc, port: 9090}
"#;

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_saphyr::from_str(yaml).unwrap()
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `value`, as YAML, with `tests/golden/<name>` (or rewrites it with UPDATE_GOLDEN=1).
fn assert_golden(name: &str, value: &impl Serialize) {
    let rendered = serde_saphyr::to_string(value).unwrap();
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if rendered != expected {
        let first_difference = rendered
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| rendered.lines().count().min(expected.lines().count()));
        panic!(
            "{} differs from the rendered output at line {}; if the change is intended, run `UPDATE_GOLDEN=1 cargo test --test integration workload::` and review the diff\n--- rendered ---\n{rendered}",
            path.display(),
            first_difference + 1
        );
    }
}

fn facts() -> ConnectionFacts {
    ConnectionFacts::from_cluster(&parse::<KafkaCluster>(CLUSTER)).unwrap()
}

#[test]
fn consumer_deployment_golden() {
    let consumer = validate_consumer(&parse::<KafkaConsumer>(CONSUMER)).unwrap();
    let topics = topic_names([&parse::<KafkaTopic>(TOPIC)]);
    let deployment = consumer_deployment(&consumer, &facts(), &topics, 4).unwrap();
    assert_golden("consumer-deployment.yaml", &deployment);
}

#[test]
fn producer_deployment_and_service_golden() {
    let producer = validate_producer(&parse::<KafkaProducer>(PRODUCER)).unwrap();
    let topics = topic_names([&parse::<KafkaTopic>(TOPIC)]);
    let deployment = producer_deployment(&producer, &facts(), &topics, producer.replicas).unwrap();
    assert_golden("producer-deployment.yaml", &deployment);
    let service = producer_service(&producer).unwrap().unwrap();
    assert_golden("producer-service.yaml", &service);
}

#[test]
fn the_golden_files_parse_back_into_what_was_rendered() {
    // The checked-in YAML is what the API server will receive: it must read back unchanged.
    let consumer = validate_consumer(&parse::<KafkaConsumer>(CONSUMER)).unwrap();
    let topics = topic_names([&parse::<KafkaTopic>(TOPIC)]);
    let rendered = consumer_deployment(&consumer, &facts(), &topics, 4).unwrap();
    let on_disk = std::fs::read_to_string(golden_path("consumer-deployment.yaml")).unwrap();
    let parsed: k8s_openapi::api::apps::v1::Deployment = serde_saphyr::from_str(&on_disk).unwrap();
    assert_eq!(parsed, rendered);
}

/// Every consumer and producer in `dir` (children of a topology included), validated and
/// rendered against the directory's own cluster with its topics resolved through the
/// directory's KafkaTopics: (resource name, Deployment) each, and the producers given a Service.
fn render_workloads(dir: &str) -> (Vec<(String, Deployment)>, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let (docs, errors) = manifest::load_paths(&[dir]);
    assert!(errors.is_empty(), "{errors:?}");
    let set = manifest::validate(docs, None).unwrap();
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    let kafka_topics: Vec<&KafkaTopic> = set
        .documents
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::Topic(t) => Some(&**t),
            _ => None,
        })
        .collect();
    let names = topic_names(kafka_topics);
    let (_, cluster) = &set.clusters[0];
    let facts = ConnectionFacts::from_cluster(cluster).unwrap();

    let mut rendered = Vec::new();
    let mut services = Vec::new();
    for (_, consumer) in &set.consumers {
        let mut consumer = consumer.clone();
        consumer.owner.uid = Some(format!("uid-{}", consumer.owner.name));
        let replicas = match &consumer.scaling {
            Scaling::Fixed(n) => *n,
            Scaling::Autoscaled(policy) => policy.min_replicas,
        };
        let d = consumer_deployment(&consumer, &facts, &names, replicas).unwrap();
        rendered.push((consumer.owner.name.clone(), d));
    }
    for (_, producer) in &set.producers {
        let mut producer = producer.clone();
        producer.owner.uid = Some(format!("uid-{}", producer.owner.name));
        let d = producer_deployment(&producer, &facts, &names, producer.replicas).unwrap();
        rendered.push((producer.owner.name.clone(), d));
        if producer_service(&producer).unwrap().is_some() {
            services.push(producer.owner.name.clone());
        }
    }
    (rendered, services)
}

/// The e-commerce example is a StreamTopology: its children, named `e-commerce-<entry>`,
/// render against the example's cluster and read and write the broker topics (`clicks`, not
/// the `KafkaTopic` child `e-commerce-clicks`). The same system written as standalone
/// KafkaTopic / KafkaConsumer / KafkaProducer documents (tests/fixtures/standalone-workloads)
/// renders the same connection.
#[test]
fn the_e_commerce_example_renders() {
    for (dir, prefix) in [
        ("examples/e-commerce", "e-commerce-"),
        ("tests/fixtures/standalone-workloads", ""),
    ] {
        let (rendered, services) = render_workloads(dir);
        let name = |entry: &str| format!("{prefix}{entry}");
        let topics_of = |entry: &str| {
            let (_, d) = rendered
                .iter()
                .find(|(n, _)| *n == name(entry))
                .unwrap_or_else(|| panic!("{dir}: no workload {}", name(entry)));
            let env = d.spec.template.spec.as_ref().unwrap().containers[0]
                .env
                .clone()
                .unwrap();
            let get = |var: &str| {
                env.iter()
                    .find(|e| e.name == var)
                    .and_then(|e| e.value.clone())
            };
            assert_eq!(
                get("KAFKA_BOOTSTRAP_SERVERS").as_deref(),
                Some("127.0.0.1:9092"),
                "{dir}"
            );
            assert_eq!(
                get("KAFKA_SECURITY_PROTOCOL").as_deref(),
                Some("PLAINTEXT"),
                "{dir}"
            );
            get("KAFKA_TOPICS").unwrap()
        };
        assert_eq!(topics_of("analytics"), "clicks,orders", "{dir}");
        assert_eq!(topics_of("order-processing"), "orders", "{dir}");
        assert_eq!(
            topics_of("inventory-management"),
            "orders,inventory",
            "{dir}"
        );
        assert_eq!(topics_of("web-app"), "clicks", "{dir}");
        assert_eq!(topics_of("order-service"), "orders", "{dir}");
        assert_eq!(topics_of("inventory-service"), "inventory", "{dir}");
        assert_eq!(rendered.len(), 6, "{dir}");
        assert_eq!(services, [name("web-app"), name("order-service")], "{dir}");
    }
}

/// `apply` and `plan` act on the topics and pass over the consumers and producers (they are
/// the operator's), so the example is applicable as is — as a topology, and as standalone
/// documents declaring the same topics.
#[test]
fn the_e_commerce_example_applies_its_topics_only() {
    let bootstrap = &broker::broker().bootstrap;
    for dir in ["examples/e-commerce", "tests/fixtures/standalone-workloads"] {
        let run = |args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
                .args(args)
                .args(["-f", dir, "--bootstrap", bootstrap])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            (out.status.code(), stdout, stderr)
        };
        let (code, stdout, stderr) = run(&["apply"]);
        assert_eq!(code, Some(0), "{dir}: {stdout}{stderr}");
        for workload in ["analytics", "order-processing", "web-app", "order-service"] {
            assert!(
                !stdout.contains(workload),
                "{dir}: {workload} in the topic plan:\n{stdout}"
            );
        }
        let (code, stdout, stderr) = run(&["plan", "--detailed-exitcode"]);
        assert_eq!(
            code,
            Some(0),
            "{dir}: nothing left to do:\n{stdout}{stderr}"
        );
        assert!(stdout.contains("No changes"), "{dir}: {stdout}");
    }
}
