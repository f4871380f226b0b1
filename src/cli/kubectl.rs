//! `tributary kubectl …`, also installed as the kubectl plugin `kubectl-tributary` (a link to
//! the binary: `main` reads its own name): the objects the operator manages, read from the
//! cluster of the current kubeconfig.
//!
//! * `status [-n NS] [NAME]`: a tree — KafkaClusters, then each StreamTopology with its topics,
//!   producers and consumers and their Deployments, then the objects no topology owns — with
//!   readiness, reason (and message when not Ready), replicas and lag;
//! * `pause` / `resume KIND/NAME`, `dry-run on|off KIND/NAME`: set or remove the annotations
//!   the operator honours ([`PAUSED_ANNOTATION`], [`DRY_RUN_ANNOTATION`]) on the kinds that
//!   honour them;
//! * `graph st/NAME`: the topology's graph from its children in the cluster (the drawing of
//!   `tributary graph`);
//! * `lag kcon/NAME`: the consumer's lag per topic from its status, or per partition from the
//!   broker (`--broker`).
//!
//! Kinds are one table, [`KINDS`]: a new kind is one entry. What is printed is computed by pure
//! functions of the objects read ([`status_tree`], [`lag_table`]), tested without a cluster.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Subcommand;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::{json, Value};

use crate::api::{KafkaCluster, KafkaConsumer, KafkaProducer, KafkaTopic};
use crate::kafka::lag::{GroupQuery, LagObserver, OffsetReset, RdKafkaLagObserver};
use crate::kafka::{ClientSettings, KubeSecrets};
use crate::runtime::{DRY_RUN_ANNOTATION, PAUSED_ANNOTATION};
use crate::topologies::graph::{graph_of, Format};
use crate::topologies::TOPOLOGY_LABEL;

/// One kind the plugin knows.
#[derive(Debug)]
pub struct KindInfo {
    pub kind: &'static str,
    pub plural: &'static str,
    /// Names a `KIND/NAME` argument may use besides the kind and the plural (any case).
    pub short: &'static [&'static str],
    /// Whether the operator honours `tributary.io/paused` / `tributary.io/dry-run` on it.
    pub pause: bool,
    pub dry_run: bool,
    /// What `status` prints after the readiness, from the object's status.
    pub details: fn(&Value) -> Vec<String>,
}

/// Every kind, in the order `status` lists them.
pub const KINDS: &[KindInfo] = &[
    KindInfo {
        kind: "KafkaCluster",
        plural: "kafkaclusters",
        short: &["kc"],
        pause: false,
        dry_run: false,
        details: cluster_details,
    },
    KindInfo {
        kind: "StreamTopology",
        plural: "streamtopologies",
        short: &["st"],
        pause: true,
        dry_run: false,
        details: topology_details,
    },
    KindInfo {
        kind: "KafkaTopic",
        plural: "kafkatopics",
        short: &["kt"],
        pause: true,
        dry_run: true,
        details: topic_details,
    },
    KindInfo {
        kind: "KafkaProducer",
        plural: "kafkaproducers",
        short: &["kprod"],
        pause: false,
        dry_run: false,
        details: workload_details,
    },
    KindInfo {
        kind: "KafkaConsumer",
        plural: "kafkaconsumers",
        short: &["kcon"],
        pause: false,
        dry_run: false,
        details: workload_details,
    },
    KindInfo {
        kind: "KafkaUser",
        plural: "kafkausers",
        short: &["kuser"],
        pause: true,
        dry_run: false,
        details: user_details,
    },
    KindInfo {
        kind: "KafkaOffsetReset",
        plural: "kafkaoffsetresets",
        short: &["kor"],
        pause: false,
        dry_run: false,
        details: reset_details,
    },
];

fn number(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn cluster_details(o: &Value) -> Vec<String> {
    let s = &o["status"];
    let mut out = Vec::new();
    if let Some(n) = number(&s["brokers"]) {
        out.push(format!("brokers {n}"));
    }
    if let Some(apis) = s["unsupportedApis"].as_array().filter(|a| !a.is_empty()) {
        let apis: Vec<&str> = apis.iter().filter_map(Value::as_str).collect();
        out.push(format!("unsupported {}", apis.join(",")));
    }
    out
}

fn topology_details(o: &Value) -> Vec<String> {
    let s = &o["status"];
    let mut out = Vec::new();
    if let Some(c) = s["readyChildren"].as_str() {
        out.push(format!("children {c}"));
    }
    if let Some(lag) = number(&s["totalLag"]) {
        out.push(format!("lag {lag}"));
    }
    out
}

fn topic_details(o: &Value) -> Vec<String> {
    let s = &o["status"];
    let mut out = Vec::new();
    if let Some(name) = s["topicName"].as_str() {
        out.push(format!("topic {name}"));
    }
    match (number(&s["partitions"]), number(&o["spec"]["partitions"])) {
        (Some(seen), Some(want)) if seen != want => {
            out.push(format!("partitions {seen} (spec {want})"))
        }
        (Some(seen), _) => out.push(format!("partitions {seen}")),
        _ => {}
    }
    if let Some(pending) = s["pendingActions"].as_array().filter(|a| !a.is_empty()) {
        out.push(format!("{} pending action(s)", pending.len()));
    }
    out
}

fn user_details(o: &Value) -> Vec<String> {
    let s = &o["status"];
    let mut out = Vec::new();
    if let Some(principal) = s["principal"].as_str() {
        out.push(principal.to_owned());
    }
    if let Some(acls) = s["acls"].as_array() {
        out.push(format!("{} ACL(s)", acls.len()));
    }
    if let Some(secret) = s["secretName"].as_str() {
        out.push(format!("secret {secret}"));
    }
    if let Some(pending) = s["pendingActions"].as_array().filter(|a| !a.is_empty()) {
        out.push(format!("{} pending action(s)", pending.len()));
    }
    out
}

fn reset_details(o: &Value) -> Vec<String> {
    let s = &o["status"];
    let mut out = Vec::new();
    if let Some(phase) = s["phase"].as_str() {
        out.push(format!("phase {phase}"));
    }
    if let Some(group) = s["group"].as_str() {
        out.push(format!("group {group}"));
    }
    if let Some(n) = number(&s["messagesReRead"]).filter(|n| *n > 0) {
        out.push(format!("{n} to re-read"));
    }
    if let Some(n) = number(&s["messagesSkipped"]).filter(|n| *n > 0) {
        out.push(format!("{n} skipped"));
    }
    out
}

fn workload_details(o: &Value) -> Vec<String> {
    let s = &o["status"];
    let mut out = Vec::new();
    if let Some(replicas) = number(&s["replicas"]) {
        let ready = number(&s["readyReplicas"]).unwrap_or(0);
        out.push(format!("replicas {ready}/{replicas}"));
    }
    if let Some(p) = number(&s["partitions"]) {
        out.push(format!("partitions {p}"));
    }
    if let Some(lag) = number(&s["totalLag"]) {
        out.push(format!("lag {lag}"));
    }
    if let Some(waiting) = s["waitingForTopics"].as_array().filter(|a| !a.is_empty()) {
        let names: Vec<&str> = waiting.iter().filter_map(Value::as_str).collect();
        out.push(format!("waiting for {}", names.join(",")));
    }
    out
}

/// The kind a `KIND/NAME` argument names: its kind, plural or short name, in any case.
pub fn kind_named(word: &str) -> Option<&'static KindInfo> {
    let word = word.to_ascii_lowercase();
    KINDS.iter().find(|k| {
        k.kind.eq_ignore_ascii_case(&word)
            || k.plural == word
            || k.short.contains(&word.as_str())
            // `kafkatopic.tributary.io`, as kubectl accepts.
            || word
                .strip_suffix(".tributary.io")
                .is_some_and(|w| k.kind.eq_ignore_ascii_case(w) || k.plural == w)
    })
}

/// Parses `KIND/NAME`.
pub fn target(arg: &str) -> Result<(&'static KindInfo, String)> {
    let kinds = || {
        KINDS
            .iter()
            .map(|k| format!("{} ({})", k.short[0], k.kind))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some((kind, name)) = arg.split_once('/') else {
        bail!(
            "'{arg}': expected KIND/NAME, e.g. kt/orders; kinds: {}",
            kinds()
        );
    };
    let info = kind_named(kind)
        .ok_or_else(|| anyhow!("'{arg}': unknown kind '{kind}'; kinds: {}", kinds()))?;
    if name.is_empty() || name.contains('/') {
        bail!("'{arg}': expected KIND/NAME with one name after the '/'");
    }
    Ok((info, name.to_owned()))
}

/// `st/NAME` for `graph`.
fn topology_target(arg: &str) -> Result<String> {
    let (kind, name) = target(arg)?;
    if kind.kind != "StreamTopology" {
        bail!(
            "'{arg}': graph draws a StreamTopology (st/NAME), not a {}",
            kind.kind
        );
    }
    Ok(name)
}

/// `kcon/NAME` for `lag`.
fn consumer_target(arg: &str) -> Result<String> {
    let (kind, name) = target(arg)?;
    if kind.kind != "KafkaConsumer" {
        bail!(
            "'{arg}': lag is a KafkaConsumer's (kcon/NAME), not a {}'s",
            kind.kind
        );
    }
    Ok(name)
}

/// `a`, `a and b`, `a, b and c`.
fn listed(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `KIND/NAME` of a kind that honours `hold`'s annotation.
fn held_target(arg: &str, hold: Hold) -> Result<(&'static KindInfo, String)> {
    let (kind, name) = target(arg)?;
    let (annotation, honoured, verb) = hold.annotation(kind);
    if !honoured {
        let honouring: Vec<&str> = KINDS
            .iter()
            .filter(|k| hold.annotation(k).1)
            .map(|k| k.kind)
            .collect();
        bail!(
            "'{arg}': the operator does not honour {annotation} on a {}; {verb} applies to {}",
            kind.kind,
            listed(&honouring)
        );
    }
    Ok((kind, name))
}

/// Refuses a command whose arguments are wrong before anything is contacted.
pub fn check(command: &KubectlCommand) -> Result<()> {
    match command {
        KubectlCommand::Status { .. } => Ok(()),
        KubectlCommand::Pause { target } | KubectlCommand::Resume { target } => {
            held_target(target, Hold::Pause).map(drop)
        }
        KubectlCommand::DryRun { target, .. } => held_target(target, Hold::DryRun).map(drop),
        KubectlCommand::Graph { target, .. } => topology_target(target).map(drop),
        KubectlCommand::Lag { target, .. } => consumer_target(target).map(drop),
    }
}

/// `on` or `off`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

#[derive(Subcommand, Debug)]
pub enum KubectlCommand {
    /// A tree of the namespace's (or one StreamTopology's) objects: readiness, reasons,
    /// replicas and lag, with the Deployments of producers and consumers.
    Status {
        /// A StreamTopology: only its tree.
        name: Option<String>,
    },
    /// Stop all changes to a KafkaTopic or StreamTopology (annotation tributary.io/paused).
    Pause {
        /// KIND/NAME, e.g. kt/orders or st/shop.
        target: String,
    },
    /// Lift `pause`.
    Resume {
        /// KIND/NAME, e.g. kt/orders or st/shop.
        target: String,
    },
    /// Plan without executing on a KafkaTopic: the plan goes to status.pendingActions
    /// (annotation tributary.io/dry-run).
    DryRun {
        /// on or off.
        #[arg(value_enum)]
        switch: Switch,
        /// KIND/NAME, e.g. kt/orders.
        target: String,
    },
    /// A StreamTopology's graph (producers → topics → consumer groups), from its children in
    /// the cluster.
    Graph {
        /// st/NAME.
        target: String,
        /// `mermaid`, `dot` or `svg`.
        #[arg(long, default_value = "mermaid")]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// A KafkaConsumer's lag: per topic from its status, or per partition from the broker.
    Lag {
        /// kcon/NAME.
        target: String,
        /// Ask the broker for every partition's offsets (connecting as the operator does,
        /// with the KafkaCluster's settings and Secrets).
        #[arg(long)]
        broker: bool,
    },
}

/// `tributary kubectl` / `kubectl tributary`.
#[derive(clap::Args, Debug)]
pub struct KubectlArgs {
    /// The namespace; default: the kubeconfig context's.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    #[command(subcommand)]
    pub command: KubectlCommand,
}

fn api_resource(kind: &KindInfo) -> ApiResource {
    ApiResource {
        group: "tributary.io".into(),
        version: "v1alpha1".into(),
        api_version: "tributary.io/v1alpha1".into(),
        kind: kind.kind.into(),
        plural: kind.plural.into(),
    }
}

fn dynamic(client: &Client, namespace: &str, kind: &KindInfo) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &api_resource(kind))
}

async fn list(client: &Client, namespace: &str, kind: &KindInfo) -> Result<Vec<Value>> {
    let objects = dynamic(client, namespace, kind)
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing {} in namespace {namespace}", kind.plural))?;
    Ok(objects
        .items
        .into_iter()
        .map(|o| {
            let mut v = serde_json::to_value(o).unwrap_or_default();
            v["kind"] = json!(kind.kind);
            v
        })
        .collect())
}

/// Runs one plugin command, printing to standard output.
pub async fn run(args: KubectlArgs) -> Result<()> {
    check(&args.command)?;
    let client = Client::try_default()
        .await
        .context("reading the kubeconfig (KUBECONFIG, ~/.kube/config, or in-cluster)")?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let out = execute(&client, &namespace, args.command).await?;
    print!("{out}");
    Ok(())
}

/// Runs one plugin command against `client`: what it prints.
pub async fn execute(client: &Client, namespace: &str, command: KubectlCommand) -> Result<String> {
    match command {
        KubectlCommand::Status { name } => {
            let mut objects = Vec::new();
            for kind in KINDS {
                objects.extend(list(client, namespace, kind).await?);
            }
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            let deployments: Vec<Value> = deployments
                .list(&ListParams::default())
                .await
                .with_context(|| format!("listing deployments in namespace {namespace}"))?
                .items
                .into_iter()
                .map(|d| serde_json::to_value(d).unwrap_or_default())
                .collect();
            status_tree(namespace, name.as_deref(), &objects, &deployments)
        }
        KubectlCommand::Pause { target: t } => {
            annotate(client, namespace, &t, Hold::Pause, true).await
        }
        KubectlCommand::Resume { target: t } => {
            annotate(client, namespace, &t, Hold::Pause, false).await
        }
        KubectlCommand::DryRun { switch, target: t } => {
            annotate(client, namespace, &t, Hold::DryRun, switch == Switch::On).await
        }
        KubectlCommand::Graph {
            target: t,
            format,
            output,
        } => {
            let name = topology_target(&t)?;
            let kind = kind_named("StreamTopology").expect("in KINDS");
            dynamic(client, namespace, kind)
                .get_opt(&name)
                .await?
                .ok_or_else(|| anyhow!("StreamTopology {namespace}/{name} not found"))?;
            let children = ListParams::default().labels(&format!("{TOPOLOGY_LABEL}={name}"));
            let topics = Api::<KafkaTopic>::namespaced(client.clone(), namespace)
                .list(&children)
                .await?;
            let producers = Api::<KafkaProducer>::namespaced(client.clone(), namespace)
                .list(&children)
                .await?;
            let consumers = Api::<KafkaConsumer>::namespaced(client.clone(), namespace)
                .list(&children)
                .await?;
            let text =
                graph_of(&name, &topics.items, &producers.items, &consumers.items).render(format);
            match output {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    Ok(format!("wrote {}\n", path.display()))
                }
                None => Ok(text),
            }
        }
        KubectlCommand::Lag { target: t, broker } => {
            let name = consumer_target(&t)?;
            let consumer = Api::<KafkaConsumer>::namespaced(client.clone(), namespace)
                .get_opt(&name)
                .await?
                .ok_or_else(|| anyhow!("KafkaConsumer {namespace}/{name} not found"))?;
            if !broker {
                return Ok(lag_table(&serde_json::to_value(&consumer)?));
            }
            partition_lag(client, namespace, &consumer).await
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    Pause,
    DryRun,
}

impl Hold {
    /// The annotation, whether `kind` honours it, and the command's name.
    fn annotation(self, kind: &KindInfo) -> (&'static str, bool, &'static str) {
        match self {
            Hold::Pause => (PAUSED_ANNOTATION, kind.pause, "pause"),
            Hold::DryRun => (DRY_RUN_ANNOTATION, kind.dry_run, "dry-run"),
        }
    }
}

async fn annotate(
    client: &Client,
    namespace: &str,
    arg: &str,
    hold: Hold,
    on: bool,
) -> Result<String> {
    let (kind, name) = held_target(arg, hold)?;
    let annotation = hold.annotation(kind).0;
    let value = if on { json!("true") } else { Value::Null };
    let patch = json!({"metadata": {"annotations": {annotation: value}}});
    dynamic(client, namespace, kind)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 => {
                anyhow!("{} {namespace}/{name} not found", kind.kind)
            }
            e => anyhow!(e).context(format!("annotating {} {namespace}/{name}", kind.kind)),
        })?;
    Ok(format!(
        "{} {namespace}/{name}: {annotation} {}\n",
        kind.kind,
        if on { "set to \"true\"" } else { "removed" }
    ))
}

/// `Ready (Reason)` or `Not ready (Reason): message`, from the object's Ready condition.
fn readiness(o: &Value) -> String {
    let conditions = o["status"]["conditions"].as_array();
    let ready = conditions.and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    let Some(ready) = ready else {
        return "no status yet".into();
    };
    let reason = ready["reason"].as_str().unwrap_or("");
    let current = o["status"]["observedGeneration"] == o["metadata"]["generation"];
    let stale = if current {
        ""
    } else {
        " [status of an older generation]"
    };
    match ready["status"].as_str() {
        Some("True") => format!("Ready ({reason}){stale}"),
        _ => {
            let message = ready["message"].as_str().unwrap_or("");
            let stalled = conditions.is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Stalled" && c["status"] == "True")
            });
            let word = if stalled { "Stalled" } else { "Not ready" };
            if message.is_empty() {
                format!("{word} ({reason}){stale}")
            } else {
                format!("{word} ({reason}): {message}{stale}")
            }
        }
    }
}

fn line(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("");
    let name = o["metadata"]["name"].as_str().unwrap_or("");
    let details = KINDS
        .iter()
        .find(|k| k.kind == kind)
        .map(|k| (k.details)(o))
        .unwrap_or_default();
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(", {}", details.join(", "))
    };
    format!("{kind} {name}: {}{details}", readiness(o))
}

fn deployment_line(d: &Value) -> String {
    let name = d["metadata"]["name"].as_str().unwrap_or("");
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let ready = d["status"]["readyReplicas"].as_i64().unwrap_or(0);
    let state = if ready >= want {
        "available"
    } else {
        "rolling out"
    };
    format!("Deployment {name}: {ready}/{want} ready, {state}")
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

fn owned_by<'a>(objects: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    let owner = uid(owner);
    objects
        .iter()
        .filter(|o| {
            !owner.is_empty()
                && o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner))
        })
        .collect()
}

/// Appends `o` (and its Deployments) as a tree node.
fn node(out: &mut String, prefix: &str, last: bool, o: &Value, deployments: &[Value]) {
    let (branch, rest) = if last {
        ("└── ", "    ")
    } else {
        ("├── ", "│   ")
    };
    out.push_str(&format!("{prefix}{branch}{}\n", line(o)));
    let owned = owned_by(deployments, o);
    for (i, d) in owned.iter().enumerate() {
        let branch = if i + 1 == owned.len() {
            "└── "
        } else {
            "├── "
        };
        out.push_str(&format!("{prefix}{rest}{branch}{}\n", deployment_line(d)));
    }
}

/// The `status` tree of `objects` (any of [`KINDS`], each with its `kind`) and `deployments`;
/// only StreamTopology `only` and its children when given.
pub fn status_tree(
    namespace: &str,
    only: Option<&str>,
    objects: &[Value],
    deployments: &[Value],
) -> Result<String> {
    let of_kind = |kind: &str| -> Vec<&Value> {
        let mut v: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
        v.sort_by_key(|o| o["metadata"]["name"].as_str().unwrap_or("").to_owned());
        v
    };
    let topologies: Vec<&Value> = of_kind("StreamTopology")
        .into_iter()
        .filter(|t| only.is_none_or(|n| t["metadata"]["name"] == n))
        .collect();
    if let Some(name) = only {
        if topologies.is_empty() {
            bail!("StreamTopology {namespace}/{name} not found");
        }
    }
    let mut out = String::new();
    let mut shown: BTreeSet<String> = BTreeSet::new();
    if only.is_none() {
        out.push_str(&format!("Namespace {namespace}\n"));
        for cluster in of_kind("KafkaCluster") {
            out.push_str(&format!("{}\n", line(cluster)));
        }
    }
    let children_kinds = ["KafkaTopic", "KafkaProducer", "KafkaConsumer"];
    for topology in &topologies {
        out.push_str(&format!("{}\n", line(topology)));
        let name = topology["metadata"]["name"].as_str().unwrap_or("");
        let children: Vec<&Value> = children_kinds
            .iter()
            .flat_map(|k| of_kind(k))
            .filter(|c| {
                c["metadata"]["labels"][TOPOLOGY_LABEL] == name
                    || owned_by(std::slice::from_ref(*c), topology).len() == 1
            })
            .collect();
        for (i, child) in children.iter().enumerate() {
            shown.insert(uid(child).to_owned());
            node(&mut out, "", i + 1 == children.len(), child, deployments);
        }
    }
    if only.is_none() {
        let standalone: Vec<&Value> = children_kinds
            .iter()
            .flat_map(|k| of_kind(k))
            .filter(|o| !shown.contains(uid(o)))
            .collect();
        if !standalone.is_empty() {
            out.push_str("Not in a StreamTopology\n");
            for (i, o) in standalone.iter().enumerate() {
                node(&mut out, "", i + 1 == standalone.len(), o, deployments);
            }
        }
        if objects.is_empty() {
            out.push_str("(no Tributary object)\n");
        }
    }
    Ok(out)
}

/// A consumer's lag per topic, from its status.
pub fn lag_table(consumer: &Value) -> String {
    let s = &consumer["status"];
    let name = consumer["metadata"]["name"].as_str().unwrap_or("");
    let group = s["groupId"].as_str().unwrap_or(name);
    let mut out = format!(
        "KafkaConsumer {name} (group {group}): {}\n",
        match s["totalLag"].as_i64() {
            Some(lag) => format!("lag {lag}"),
            None => "lag unknown".into(),
        }
    );
    let topics = s["topics"].as_array().cloned().unwrap_or_default();
    if topics.is_empty() {
        out.push_str("no lag observed yet\n");
        return out;
    }
    let rows: Vec<[String; 4]> = topics
        .iter()
        .map(|t| {
            let cell = |v: &Value| v.as_i64().map_or("-".into(), |n| n.to_string());
            [
                t["name"].as_str().unwrap_or("").to_owned(),
                cell(&t["partitions"]),
                cell(&t["partitionsWithLag"]),
                cell(&t["lag"]),
            ]
        })
        .collect();
    out.push_str(&table(
        &["TOPIC", "PARTITIONS", "WITH LAG", "LAG"],
        &rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
    ));
    out
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut push = |cells: Vec<&str>| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push(header.to_vec());
    for row in rows {
        push(row.iter().map(String::as_str).collect());
    }
    out
}

/// A consumer's lag per partition, from the broker.
async fn partition_lag(
    client: &Client,
    namespace: &str,
    consumer: &KafkaConsumer,
) -> Result<String> {
    let name = consumer.metadata.name.clone().unwrap_or_default();
    let cluster = Api::<KafkaCluster>::namespaced(client.clone(), namespace)
        .get_opt(&consumer.spec.cluster_ref)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "KafkaConsumer {namespace}/{name}: its clusterRef '{}' names no KafkaCluster",
                consumer.spec.cluster_ref
            )
        })?;
    // The broker topic names the operator resolved (status), else the spec's as written.
    let topics: Vec<String> = consumer
        .status
        .as_ref()
        .map(|s| s.topics.iter().map(|t| t.name.clone()).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| consumer.spec.topics.clone());
    let group = consumer.group_id().unwrap_or(&name).to_owned();
    let reset = match consumer
        .spec
        .autoscaling
        .as_ref()
        .map(|a| a.offset_reset_policy)
    {
        Some(crate::api::OffsetResetPolicy::Earliest) => OffsetReset::Earliest,
        _ => OffsetReset::Latest,
    };
    let settings = ClientSettings::for_cluster(&cluster, &KubeSecrets(client.clone()))
        .await
        .with_context(|| {
            format!(
                "the settings of KafkaCluster {namespace}/{}",
                consumer.spec.cluster_ref
            )
        })?;
    let observer = RdKafkaLagObserver::connect(&settings)?;
    let query = GroupQuery {
        group_id: group.clone(),
        topics,
        reset,
    };
    let lag = observer
        .observe(std::slice::from_ref(&query))
        .await
        .with_context(|| format!("observing group {group} on {}", settings.bootstrap_servers))?
        .pop()
        .ok_or_else(|| anyhow!("the broker returned nothing for group {group}"))?;
    let lag = lag
        .result
        .map_err(|e| anyhow!("the broker refused group {group}'s offsets: {e}"))?;
    let rows: Vec<Vec<String>> = lag
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                p.log_start.to_string(),
                p.log_end.to_string(),
                p.committed.map_or("-".into(), |c| c.to_string()),
                p.lag.to_string(),
            ]
        })
        .collect();
    let mut out = format!(
        "KafkaConsumer {name} (group {group}) on {}: lag {}\n",
        settings.bootstrap_servers, lag.total
    );
    for t in lag.topics.iter().filter(|t| !t.exists) {
        out.push_str(&format!("topic {} does not exist on the broker\n", t.topic));
    }
    out.push_str(&table(
        &[
            "TOPIC",
            "PARTITION",
            "LOG-START",
            "LOG-END",
            "COMMITTED",
            "LAG",
        ],
        &rows,
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(status: &str, reason: &str, message: &str) -> Value {
        json!([
            {"type": "Ready", "status": status, "reason": reason, "message": message},
            {"type": "Stalled", "status": if reason == "ResourceConflict" { "True" } else { "False" }, "reason": reason},
        ])
    }

    fn object(kind: &str, name: &str, uid: &str, labels: Value, status: Value) -> Value {
        json!({
            "kind": kind,
            "metadata": {"name": name, "uid": uid, "generation": 1, "labels": labels},
            "spec": {"partitions": 2},
            "status": status,
        })
    }

    #[test]
    fn a_target_is_kind_slash_name_by_any_of_the_kinds_names() {
        for arg in [
            "kt/orders",
            "KafkaTopic/orders",
            "kafkatopics/orders",
            "kafkatopic.tributary.io/orders",
        ] {
            let (kind, name) = target(arg).unwrap();
            assert_eq!(
                (kind.kind, name.as_str()),
                ("KafkaTopic", "orders"),
                "{arg}"
            );
        }
        assert_eq!(target("st/shop").unwrap().0.kind, "StreamTopology");
        assert_eq!(target("kcon/billing").unwrap().0.kind, "KafkaConsumer");
        let e = target("orders").unwrap_err().to_string();
        assert!(
            e.contains("expected KIND/NAME") && e.contains("kt (KafkaTopic)"),
            "{e}"
        );
        let e = target("deploy/orders").unwrap_err().to_string();
        assert!(e.contains("unknown kind 'deploy'"), "{e}");
        assert!(target("kt/").is_err() && target("kt/a/b").is_err());
    }

    #[test]
    fn wrong_arguments_are_refused_before_anything_is_contacted() {
        let refused = |c: KubectlCommand| check(&c).unwrap_err().to_string();
        assert_eq!(
            refused(KubectlCommand::Lag {
                target: "kt/orders".into(),
                broker: false
            }),
            "'kt/orders': lag is a KafkaConsumer's (kcon/NAME), not a KafkaTopic's"
        );
        assert_eq!(
            refused(KubectlCommand::Graph {
                target: "kcon/x".into(),
                format: Format::Mermaid,
                output: None
            }),
            "'kcon/x': graph draws a StreamTopology (st/NAME), not a KafkaConsumer"
        );
        assert_eq!(
            refused(KubectlCommand::Pause { target: "kc/main".into() }),
            "'kc/main': the operator does not honour tributary.io/paused on a KafkaCluster; pause applies to StreamTopology, KafkaTopic and KafkaUser"
        );
        assert_eq!(
            refused(KubectlCommand::DryRun { switch: Switch::On, target: "st/shop".into() }),
            "'st/shop': the operator does not honour tributary.io/dry-run on a StreamTopology; dry-run applies to KafkaTopic"
        );
        assert!(check(&KubectlCommand::Resume {
            target: "st/shop".into()
        })
        .is_ok());
        assert!(check(&KubectlCommand::Lag {
            target: "kcon/billing".into(),
            broker: true
        })
        .is_ok());
    }

    #[test]
    fn every_kind_of_the_crds_is_in_the_table() {
        let table: BTreeSet<&str> = KINDS.iter().map(|k| k.kind).collect();
        for crd in crate::api::crds::all() {
            let k = KINDS
                .iter()
                .find(|k| k.kind == crd.spec.names.kind)
                .unwrap_or_else(|| {
                    panic!("{} is missing from kubectl::KINDS", crd.spec.names.kind)
                });
            assert_eq!(k.plural, crd.spec.names.plural);
            let short = crd.spec.names.short_names.unwrap_or_default();
            assert!(
                short.iter().any(|s| s == k.short[0]),
                "{}: {short:?}",
                k.kind
            );
        }
        assert_eq!(table.len(), KINDS.len());
    }

    #[test]
    fn run_as_kubectl_tributary_it_is_the_kubectl_subcommand() {
        let argv = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            crate::cli::args(argv(&[
                "/usr/local/bin/kubectl-tributary",
                "status",
                "-n",
                "shop"
            ])),
            argv(&["tributary", "kubectl", "status", "-n", "shop"])
        );
        assert_eq!(
            crate::cli::args(argv(&["tributary", "validate"])),
            argv(&["tributary", "validate"])
        );
    }

    #[test]
    fn status_is_a_tree_of_topologies_children_and_deployments() {
        let topology = object(
            "StreamTopology",
            "shop",
            "t1",
            json!({}),
            json!({"observedGeneration": 1, "readyChildren": "2/3", "totalLag": 42,
                   "conditions": condition("False", "ChildrenNotReady", "KafkaConsumer shop-audit: Progressing")}),
        );
        let child = |kind: &str, name: &str, uid: &str, status: Value| {
            let mut o = object(kind, name, uid, json!({TOPOLOGY_LABEL: "shop"}), status);
            o["metadata"]["ownerReferences"] = json!([{"uid": "t1"}]);
            o
        };
        let objects = vec![
            object(
                "KafkaCluster",
                "local",
                "c1",
                json!({}),
                json!({"observedGeneration": 1, "brokers": 1, "conditions": condition("True", "Connected", "")}),
            ),
            topology,
            child(
                "KafkaTopic",
                "shop-events",
                "k1",
                json!({"observedGeneration": 1, "topicName": "events", "partitions": 2, "conditions": condition("True", "InSync", "")}),
            ),
            child(
                "KafkaConsumer",
                "shop-audit",
                "w1",
                json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "totalLag": 42,
                         "conditions": condition("False", "Progressing", "1 of 2 replicas ready")}),
            ),
            object(
                "KafkaTopic",
                "orders-copy",
                "k2",
                json!({}),
                json!({"observedGeneration": 1, "conditions": condition("False", "ResourceConflict", "orders is managed by KafkaTopic orders")}),
            ),
        ];
        let deployments = vec![json!({
            "metadata": {"name": "shop-audit", "ownerReferences": [{"uid": "w1"}]},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 1},
        })];
        let tree = status_tree("booking", None, &objects, &deployments).unwrap();
        assert_eq!(
            tree,
            "Namespace booking\n\
             KafkaCluster local: Ready (Connected), brokers 1\n\
             StreamTopology shop: Not ready (ChildrenNotReady): KafkaConsumer shop-audit: Progressing, children 2/3, lag 42\n\
             ├── KafkaTopic shop-events: Ready (InSync), topic events, partitions 2\n\
             └── KafkaConsumer shop-audit: Not ready (Progressing): 1 of 2 replicas ready, replicas 1/2, lag 42\n\
             \x20   └── Deployment shop-audit: 1/2 ready, rolling out\n\
             Not in a StreamTopology\n\
             └── KafkaTopic orders-copy: Stalled (ResourceConflict): orders is managed by KafkaTopic orders\n"
        );
        let one = status_tree("booking", Some("shop"), &objects, &deployments).unwrap();
        assert!(
            one.starts_with("StreamTopology shop:") && !one.contains("orders-copy"),
            "{one}"
        );
        let e = status_tree("booking", Some("nope"), &objects, &deployments).unwrap_err();
        assert_eq!(e.to_string(), "StreamTopology booking/nope not found");
    }

    #[test]
    fn a_status_of_an_older_generation_is_marked() {
        let mut o = object(
            "KafkaTopic",
            "orders",
            "k",
            json!({}),
            json!({"observedGeneration": 1, "conditions": condition("True", "InSync", "")}),
        );
        o["metadata"]["generation"] = json!(2);
        assert_eq!(
            line(&o),
            "KafkaTopic orders: Ready (InSync) [status of an older generation]"
        );
        o.as_object_mut().unwrap().remove("status");
        assert_eq!(line(&o), "KafkaTopic orders: no status yet");
    }

    #[test]
    fn lag_per_topic_from_the_status() {
        let consumer = json!({
            "metadata": {"name": "billing"},
            "status": {"groupId": "billing-v2", "totalLag": 1200, "topics": [
                {"name": "orders", "partitions": 6, "partitionsWithLag": 2, "lag": 1200},
                {"name": "refunds", "partitions": 3, "partitionsWithLag": 0, "lag": 0},
            ]},
        });
        assert_eq!(
            lag_table(&consumer),
            "KafkaConsumer billing (group billing-v2): lag 1200\n\
             TOPIC    PARTITIONS  WITH LAG  LAG\n\
             orders   6           2         1200\n\
             refunds  3           0         0\n"
        );
        assert_eq!(
            lag_table(&json!({"metadata": {"name": "new"}})),
            "KafkaConsumer new (group new): lag unknown\nno lag observed yet\n"
        );
    }
}
