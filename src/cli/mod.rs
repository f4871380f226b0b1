//! The `tributary` command line: `crds`, `validate`, `plan`, `apply`, `delete`, `offsets`.
//! `anyhow` lives here, at the edge; everything below reports typed errors.

pub mod exit;
mod inputs;
pub mod kubectl;
mod offsets;
mod output;
mod progress;
mod report;
mod stack;
mod stack_store;
mod summary;
mod users;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};

use crate::api::{crds, KafkaCluster};
use crate::kafka::{
    BrokerAdmin, BrokerSnapshot, ClientSettings, FileSecrets, KubeSecrets, RdKafkaAdmin,
    SecretReader, DEFAULT_TIMEOUT,
};
use crate::manifest::{self, ManifestError, Resource, TopicTarget, ValidatedSet};
use crate::runtime::instrumented::counted;
use crate::topics::execute::{execute, Outcome, Report};
use crate::topics::plan::{self, Action, Removal};
use report::{ClusterRun, OutputFormat, Verb};
use stack_store::StackStore;

#[derive(Parser, Debug)]
#[command(
    name = "tributary",
    version,
    about = "Manage Kafka streaming topology from Kubernetes manifests"
)]
pub struct Cli {
    /// Log format on standard error: `text` or `json` (filter with TRIBUTARY_LOG, e.g. `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator: reconcile KafkaClusters and KafkaTopics until SIGTERM / Ctrl-C.
    Operator(OperatorArgs),
    /// The kubectl plugin (`kubectl tributary …` when this binary is linked as
    /// `kubectl-tributary`): status tree, pause / resume, dry-run, graph and lag of the objects
    /// in the cluster of the current kubeconfig.
    Kubectl(kubectl::KubectlArgs),
    /// Print the Kubernetes RBAC rules the operator needs (what the Helm chart grants).
    Rbac {
        /// `yaml` (commented) or `json`.
        #[arg(long, short = 'o', value_enum, default_value_t = RbacOutput::Yaml)]
        output: RbacOutput,
    },
    /// Print every CustomResourceDefinition (or write one file each into a directory).
    Crds {
        /// Write `<name>.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Check manifests offline; nothing is contacted.
    Validate {
        /// Files or directories of YAML manifests.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Draw producers → topics → consumer groups of the manifests (topologies expanded).
    Graph {
        /// Files or directories of YAML manifests.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// `mermaid` (pastes into a README or a pull request), `dot` (Graphviz) or `svg`
        /// (self-contained, laid out without Graphviz).
        #[arg(long, default_value = "mermaid")]
        format: crate::topologies::graph::Format,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Print the objects the operator would create for the manifests, like `helm template`;
    /// offline: the StreamTopologies' KafkaTopics, KafkaProducers and KafkaConsumers, and the
    /// Deployments and Services of every consumer and producer.
    Render {
        /// Files or directories of YAML manifests.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// How many levels to follow: 1 stops at the topologies' children; 2 (the default)
        /// adds the Deployments and Services the consumer and producer controllers make.
        #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..))]
        depth: u8,
    },
    /// Show what `apply` would change on the live broker, changing nothing.
    Plan {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        stack: StackArgs,
        /// Exit 2 when there are changes to make (0: none, 1: errors or refusals).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Make the broker match the manifests (topics, users' ACLs and SCRAM credentials), and
    /// record the stack's topics and principals on the cluster.
    Apply {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Remove the topics the manifests declare: those with `deletionPolicy: Delete` are
    /// deleted from the broker, those with `Retain` (the default) are kept; and the ACLs and
    /// SCRAM credentials of the KafkaUsers they declare.
    Delete {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// A consumer group's offsets: `show` them, or `reset` them (earliest, latest, a
    /// date-time, a shift) while the group has no members.
    #[command(subcommand)]
    Offsets(offsets::OffsetsCommand),
}

#[derive(Args, Debug)]
pub struct OperatorArgs {
    /// Watch only this namespace (repeat for several); default: all namespaces.
    #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Seconds between resyncs of every topic with the broker (drift repair).
    #[arg(long, default_value_t = 300)]
    pub resync_seconds: u64,
    /// Seconds a Delete-policy topic waits for an unreachable or missing cluster before its
    /// finalizer is released and the broker topic is left in place.
    #[arg(long, default_value_t = 300)]
    pub orphan_grace_seconds: u64,
    /// Milliseconds topic reconciles are gathered into one broker round trip.
    #[arg(long, default_value_t = 100)]
    pub batch_window_ms: u64,
    /// Seconds between probes of each KafkaCluster.
    #[arg(long, default_value_t = 60)]
    pub probe_seconds: u64,
    /// Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Address of the HTTP server for /metrics, /healthz and /readyz (`:8080` means all
    /// interfaces).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080", value_parser = parse_http_address)]
    pub http_address: std::net::SocketAddr,
    /// Log level or filter directives (`info`, `debug`, `info,tributary=debug`); the
    /// TRIBUTARY_LOG environment variable, when set, takes precedence.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// Run the controllers only while holding a coordination.k8s.io/v1 Lease, so that of
    /// several replicas exactly one reconciles.
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease.
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "default"
    )]
    pub leader_election_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, value_name = "NAME", default_value = "tributary-operator")]
    pub leader_election_lease_name: String,
    /// Seconds a Lease stays valid without renewal: a dead leader is replaced within this
    /// long; the leader renews every fifth of it.
    #[arg(long, value_name = "N", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub leader_election_lease_seconds: u64,
    /// Seconds the operator has, after SIGTERM or Ctrl-C, to finish in-flight reconciles and
    /// release its Lease; then it exits with status 1 whatever the API server or the broker is
    /// doing. A second signal exits at once (status 1). Keep it below the pod's
    /// terminationGracePeriodSeconds.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_grace_seconds: u64,
}

/// `HOST:PORT`, or `:PORT` for every interface.
fn parse_http_address(value: &str) -> Result<std::net::SocketAddr, String> {
    let full = match value.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => value.to_owned(),
    };
    full.parse()
        .map_err(|e| format!("'{value}' is not an address such as 0.0.0.0:8080 ({e})"))
}

#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Files or directories of YAML manifests.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Talk to this broker (plaintext) for every topic, whatever its clusterRef says.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "cluster")]
    pub bootstrap: Option<String>,
    /// Take connection and topic defaults from this KafkaCluster manifest.
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// Seconds any broker request may take (default: the cluster's requestTimeoutSeconds, else 10).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Read `secretKeyRef` credentials from the Kubernetes cluster of the current kubeconfig.
    #[arg(long)]
    pub kube_secrets: bool,
    /// `text`, or `json`: one JSON document of every cluster's actions, refusals and (for
    /// `apply` / `delete`) outcomes, schema version 1 (README.md, "JSON output").
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The stack of `plan` and `apply` (README.md, "Pruning").
#[derive(Args, Debug, Default)]
pub struct StackArgs {
    /// Also delete the topics an earlier `apply` of this stack created or adopted that the
    /// manifests no longer declare, when their last declared deletionPolicy was Delete; and
    /// remove the ACLs and credentials of the stack's principals no longer declared.
    #[arg(long)]
    pub prune: bool,
    /// The stack whose topics `apply` records on the cluster (in the topic
    /// __tributary_stacks) and `--prune` prunes; default: the KafkaCluster's
    /// `namespace/name`, or with --bootstrap `bootstrap:HOST:PORT`.
    #[arg(long, value_name = "NAME", value_parser = parse_stack_name)]
    pub stack: Option<String>,
}

/// A stack name: 1 to 249 printable characters (it is a record key; no limit of Kafka's).
fn parse_stack_name(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > 249 || value.chars().any(char::is_control) {
        return Err(format!(
            "'{value}' is not a stack name: use 1 to 249 printable characters, such as team/orders"
        ));
    }
    Ok(value.to_owned())
}

/// The command line to parse: as given, but for the kubectl plugin — the binary run as
/// `kubectl-tributary` (kubectl runs `kubectl tributary ARGS` as `kubectl-tributary ARGS`) —
/// `tributary kubectl ARGS`.
pub fn args(argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let invoked = argv
        .first()
        .map(std::path::Path::new)
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str());
    match invoked {
        Some(PLUGIN) => {
            let mut out = vec!["tributary".into(), "kubectl".into()];
            out.extend(argv.into_iter().skip(1));
            out
        }
        _ => argv,
    }
}

/// The name the binary is installed under as a kubectl plugin.
pub const PLUGIN: &str = "kubectl-tributary";

/// Runs the CLI; the exit code says whether everything succeeded.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Operator(args) => operator_command(args).await,
        Command::Kubectl(args) => kubectl::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Crds { out_dir } => write_crds(out_dir),
        Command::Rbac { output } => Ok(print_rbac(output)),
        Command::Validate { files } => {
            let set = match load_valid(&files, None) {
                Ok(set) => set,
                Err(code) => return Ok(code),
            };
            print_warnings(&set);
            let topologies = if set.topologies.is_empty() {
                String::new()
            } else {
                format!(" ({} StreamTopology(s) expanded)", set.topologies.len())
            };
            let users = if set.users.is_empty() {
                String::new()
            } else {
                format!(", {} KafkaUser(s)", set.users.len())
            };
            println!(
                "valid: {} KafkaCluster(s), {} KafkaTopic(s), {} KafkaConsumer(s), {} KafkaProducer(s){users}{topologies}",
                set.clusters.len(),
                set.topics.len(),
                set.consumers.len(),
                set.producers.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph {
            files,
            format,
            output,
        } => {
            let set = match load_valid(&files, None) {
                Ok(set) => set,
                Err(code) => return Ok(code),
            };
            print_warnings(&set);
            let text = output::manifest_graph(&set).render(format);
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { files, depth } => {
            let set = match load_valid(&files, None) {
                Ok(set) => set,
                Err(code) => return Ok(code),
            };
            print_warnings(&set);
            let (yaml, notes) = output::render_yaml(&set, output::Depth::from_level(depth));
            for note in &notes {
                eprintln!("note: {note}");
            }
            if yaml.is_empty() {
                eprintln!("nothing to render: no StreamTopology, KafkaConsumer or KafkaProducer whose objects can be rendered at --depth {depth}");
            }
            print!("{yaml}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            target,
            stack,
            detailed_exitcode,
        } => run_target(&target, Some(&stack), Mode::Plan { detailed_exitcode }).await,
        Command::Apply { target, stack } => run_target(&target, Some(&stack), Mode::Apply).await,
        Command::Delete { target } => run_target(&target, None, Mode::Delete).await,
        Command::Offsets(command) => offsets::run(command).await,
    }
}

async fn operator_command(args: OperatorArgs) -> Result<ExitCode> {
    let identity = crate::operator::leader::identity();
    let mut config = match &args.kubeconfig {
        None => kube::Config::infer()
            .await
            .context("connecting to Kubernetes")?,
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("using {}", path.display()))?
        }
    };
    // Which replica made a request, in the API server's audit log.
    let agent = format!("tributary/{} ({identity})", env!("CARGO_PKG_VERSION"));
    if let Ok(agent) = hyper::header::HeaderValue::from_str(&agent) {
        config.headers.push((hyper::header::USER_AGENT, agent));
    }
    let client = kube::Client::try_from(config).context("connecting to Kubernetes")?;
    let options = crate::runtime::Options {
        namespaces: args.namespaces,
        resync: Duration::from_secs(args.resync_seconds.max(1)),
        orphan_grace: Duration::from_secs(args.orphan_grace_seconds),
        batch_window: Duration::from_millis(args.batch_window_ms),
        probe_interval: Duration::from_secs(args.probe_seconds.max(1)),
        ..Default::default()
    };
    let process = crate::operator::process::Process {
        http_address: args.http_address,
        election: args
            .leader_elect
            .then(|| crate::operator::process::Election {
                namespace: args.leader_election_namespace,
                lease_name: args.leader_election_lease_name,
                identity,
                lease_duration: Duration::from_secs(args.leader_election_lease_seconds),
            }),
    };
    tracing::info!(?options, ?process, "starting the operator");
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let signals = tokio::spawn(bounded_shutdown(stop, grace));
    let code = crate::operator::process::serve(
        client,
        options,
        crate::runtime::rdkafka_connect(),
        process,
        async move {
            let mut stopping = stopping;
            let _ = stopping.wait_for(|stop| *stop).await;
        },
    )
    .await;
    signals.abort();
    code
}

/// On the first SIGTERM (how Kubernetes stops a pod) or Ctrl-C, asks the operator to stop;
/// exits the process with status 1 if it has not stopped within `grace`, or at once on a
/// second signal — so shutdown is bounded whatever the API server or the broker is doing.
async fn bounded_shutdown(stop: tokio::sync::watch::Sender<bool>, grace: Duration) {
    let mut signals = Signals::new();
    signals.next().await;
    tracing::info!(
        ?grace,
        "shutdown requested: finishing in-flight reconciles (a second signal exits at once)"
    );
    let _ = stop.send(true);
    tokio::select! {
        _ = signals.next() => {
            tracing::warn!("second shutdown signal: exiting at once");
        }
        _ = tokio::time::sleep(grace) => {
            tracing::error!(?grace, "shutdown did not finish within its grace period: exiting");
        }
    }
    std::process::exit(1);
}

/// SIGTERM and SIGINT (Ctrl-C), as one stream of shutdown requests.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Self {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn next(&mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => {}
            _ = recv(&mut self.int) => {}
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RbacOutput {
    Yaml,
    Json,
}

fn print_rbac(output: RbacOutput) -> ExitCode {
    match output {
        RbacOutput::Yaml => print!("{}", crate::operator::rbac::to_yaml()),
        RbacOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&crate::operator::rbac::to_json()).unwrap_or_default()
        ),
    }
    ExitCode::SUCCESS
}

fn write_crds(out_dir: Option<PathBuf>) -> Result<ExitCode> {
    match out_dir {
        None => print!("{}", crds::all_yaml()),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in crds::all() {
                let path = dir.join(crds::file_name(&crd));
                std::fs::write(&path, crds::to_yaml(&crd))
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the warnings of a valid set on standard error.
fn print_warnings(set: &ValidatedSet) {
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
}

/// Loads and validates, printing every error; `Err` carries the exit code to return.
fn load_valid(
    files: &[PathBuf],
    fallback: Option<&KafkaCluster>,
) -> Result<ValidatedSet, ExitCode> {
    load_checked(files, fallback).map_err(|errors| {
        report_errors(&errors);
        ExitCode::FAILURE
    })
}

/// Prints every error of the input on standard error, and how many there were.
fn report_errors(errors: &[ManifestError]) {
    for e in errors {
        eprintln!("{e}");
    }
    eprintln!(
        "{} error(s); nothing was contacted or changed",
        errors.len()
    );
}

/// Loads and validates; the set (with the warnings about the input as a whole), or every
/// error, sorted by file and document.
fn load_checked(
    files: &[PathBuf],
    fallback: Option<&KafkaCluster>,
) -> Result<ValidatedSet, Vec<ManifestError>> {
    let (docs, mut errors) = manifest::load_paths(files);
    let empty = inputs::empty_paths(files, &docs);
    match manifest::validate(docs, fallback) {
        Ok(mut set) if errors.is_empty() => {
            set.warnings.extend(empty);
            set.warnings.extend(inputs::misplaced_cluster_refs(&set));
            Ok(set)
        }
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            errors.sort_by(|a, b| (&a.file, a.document).cmp(&(&b.file, b.document)));
            Err(errors)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plan { detailed_exitcode: bool },
    Apply,
    Delete,
}

impl Mode {
    fn verb(self) -> Verb {
        match self {
            Mode::Plan { .. } => Verb::Plan,
            Mode::Apply => Verb::Apply,
            Mode::Delete => Verb::Delete,
        }
    }
}

/// One broker connection and the topics it serves.
struct Target<'a> {
    /// The KafkaCluster's name and namespace; `None` with `--bootstrap`.
    cluster: Option<(String, Option<String>)>,
    settings: ClientSettings,
    topics: Vec<&'a TopicTarget>,
    /// The manifests' KafkaUsers of the cluster.
    users: Vec<&'a crate::api::KafkaUser>,
}

/// `stack`: `None` for `delete`, which neither reads nor records stacks.
async fn run_target(args: &TargetArgs, stack: Option<&StackArgs>, mode: Mode) -> Result<ExitCode> {
    let json = args.output == OutputFormat::Json;
    // With --output json, a run that stops before any cluster still prints its document.
    let stopped = |error: String| {
        if json {
            println!(
                "{}",
                report::Document::new(mode.verb(), &[], Some(error)).to_json()
            );
        }
    };
    let fallback = match &args.cluster {
        None => None,
        Some(path) => match load_cluster_file(path) {
            Ok(cluster) => Some(cluster),
            Err(e) => {
                stopped(format!("{e:#}"));
                return Err(e);
            }
        },
    };
    let set = match load_checked(&args.files, fallback.as_ref()) {
        Ok(set) => set,
        Err(errors) => {
            report_errors(&errors);
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            stopped(format!(
                "{} error(s) in the manifests; nothing was contacted or changed:\n{}",
                errors.len(),
                lines.join("\n")
            ));
            return Ok(ExitCode::FAILURE);
        }
    };
    print_warnings(&set);
    // With --prune, no topic may be the point: every topic of the stack left the manifests.
    let prune_target = stack.is_some_and(|s| s.prune)
        && (args.bootstrap.is_some() || fallback.is_some() || !set.clusters.is_empty());
    if set.topics.is_empty() && set.users.is_empty() && !prune_target {
        if json {
            println!(
                "{}",
                report::Document::new(mode.verb(), &[], None).to_json()
            );
        } else {
            let hint = if stack.is_some_and(|s| s.prune) {
                " (to prune a cluster, name it: --bootstrap, --cluster or a KafkaCluster manifest)"
            } else {
                ""
            };
            println!("no KafkaTopic or KafkaUser in the given manifests; nothing to do{hint}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut runs = Vec::new();
    let result = run_clusters(args, stack, mode, &set, fallback.as_ref(), &mut runs).await;
    if json {
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        println!(
            "{}",
            report::Document::new(mode.verb(), &runs, error).to_json()
        );
        if let Err(e) = result {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    } else {
        result?;
    }
    let ok = runs.iter().all(ClusterRun::ok);
    let changes = runs.iter().any(ClusterRun::has_changes);
    Ok(match (ok, mode) {
        (false, _) => ExitCode::FAILURE,
        (
            true,
            Mode::Plan {
                detailed_exitcode: true,
            },
        ) if changes => ExitCode::from(exit::CHANGES),
        _ => ExitCode::SUCCESS,
    })
}

/// Plans (and for `apply` / `delete`, executes) cluster by cluster, pushing each cluster's
/// result to `runs` as it is done (and printing it, as text); a cluster that cannot be read is
/// reported (its run carries the error) and the others still go ahead; stops at the first cluster that
/// cannot be reached.
async fn run_clusters(
    args: &TargetArgs,
    stack_args: Option<&StackArgs>,
    mode: Mode,
    set: &ValidatedSet,
    fallback: Option<&KafkaCluster>,
    runs: &mut Vec<ClusterRun>,
) -> Result<()> {
    let secrets: Box<dyn SecretReader> = if args.kube_secrets {
        let client = kube::Client::try_default()
            .await
            .context("connecting to Kubernetes for --kube-secrets")?;
        Box::new(KubeSecrets(client))
    } else {
        Box::new(FileSecrets)
    };
    let prune = stack_args.is_some_and(|s| s.prune);
    let targets = resolve_targets(args, set, fallback, secrets.as_ref(), prune).await?;
    for target in targets {
        let (cluster, namespace) = target.cluster.clone().unzip();
        let mut run = ClusterRun {
            cluster,
            namespace: namespace.flatten(),
            bootstrap: target.settings.bootstrap_servers.clone(),
            plan: Default::default(),
            report: None,
            absent: Vec::new(),
            error: None,
            stack: None,
            pruned: BTreeSet::new(),
            stack_error: None,
            users: None,
            topics: target.topics.len(),
        };
        // Counted for the debug log below (the CLI records no metrics).
        let admin = counted(RdKafkaAdmin::connect(&target.settings)?);
        let (desired, removals): (Vec<_>, Vec<_>) = if mode == Mode::Delete {
            let removals = target
                .topics
                .iter()
                .map(|t| Removal {
                    name: t.desired.name.clone(),
                    policy: t.desired.deletion_policy,
                })
                .collect();
            (Vec::new(), removals)
        } else {
            (
                target.topics.iter().map(|t| t.desired.clone()).collect(),
                Vec::new(),
            )
        };
        let mut describe: Vec<String> = target
            .topics
            .iter()
            .map(|t| t.desired.name.to_string())
            .collect();
        // One cluster that cannot be read does not stop the others.
        let mut snapshot = match admin.snapshot(&describe).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                let error = format!("observing {}: {e}; nothing was changed on it", run.label());
                eprintln!("Error: {error}");
                run.error = Some(error);
                runs.push(run);
                continue;
            }
        };
        // The stack: every stack's state on the cluster, what a prune removes.
        let declared = declared_topics(&target);
        let store = StackStore::new(&target.settings);
        let states = match stack_args {
            None => None,
            Some(stack_args) => {
                match read_stack(stack_args, mode, &target, &store, &declared, &mut run).await {
                    Ok(states) => states,
                    Err(error) => {
                        eprintln!("Error: {error}");
                        run.error = Some(error);
                        runs.push(run);
                        continue;
                    }
                }
            }
        };
        // A snapshot may leave out the topics it was not asked for: the pruned ones are read
        // too (one more round trip, only when pruning names topics the first one left out).
        if run
            .pruned
            .iter()
            .any(|name| !snapshot.topics.contains_key(name.as_str()))
        {
            describe.extend(run.pruned.iter().map(|name| name.to_string()));
            snapshot = match admin.snapshot(&describe).await {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    let error =
                        format!("observing {}: {e}; nothing was changed on it", run.label());
                    eprintln!("Error: {error}");
                    run.error = Some(error);
                    runs.push(run);
                    continue;
                }
            };
        }
        let removals: Vec<Removal> = removals
            .into_iter()
            .chain(run.pruned.iter().map(|name| Removal {
                name: name.clone(),
                policy: crate::api::DeletionPolicy::Delete,
            }))
            .collect();
        run.plan = plan::plan(&desired, &removals, &snapshot);
        if mode == Mode::Delete {
            // A topic the broker does not have is neither deleted nor kept: say so.
            let (kept, absent) = std::mem::take(&mut run.plan.retained)
                .into_iter()
                .chain(
                    removals
                        .iter()
                        .filter(|r| r.policy == crate::api::DeletionPolicy::Delete)
                        .map(|r| r.name.clone()),
                )
                .partition(|name| snapshot.topics.contains_key(name.as_str()));
            run.plan.retained = kept;
            run.plan
                .retained
                .retain(|name| !run.plan.actions.iter().any(|a| a.topic() == name));
            run.absent = absent;
            run.absent.sort();
        }
        if !matches!(mode, Mode::Plan { .. }) && !run.plan.is_empty() {
            let admin = progress::Progress::new(
                &admin,
                progress::bar(&run.label(), run.plan.actions.len()),
            );
            let report = execute(&run.plan, &admin).await;
            admin.finish();
            run.report = Some(report);
        }
        // The stack's principals the manifests no longer declare: removed under --prune.
        let principals = declared_principals(&target);
        let mut pruned_principals = Vec::new();
        if let (Some(states), Some(name), Some(stack_args)) = (&states, &run.stack, stack_args) {
            let keys = principals.keys().cloned().collect();
            let pruning = stack::plan_prune_principals(name, states, &keys);
            for warning in principal_warnings(name, &pruning, stack_args.prune) {
                eprintln!("warning: {warning}");
            }
            if stack_args.prune {
                pruned_principals = pruning
                    .prune
                    .into_iter()
                    .map(|(principal, p)| users::Leaving {
                        resource: p.resource,
                        principal,
                        scram_user: p.scram_user,
                    })
                    .collect();
            }
        }
        if !target.users.is_empty() || !pruned_principals.is_empty() {
            let leaving = pruned_principals.clone();
            run.users = Some(run_users(&admin, &target, mode, secrets.as_ref(), leaving).await);
        }
        if let (Mode::Apply, Some(states), Some(name)) = (mode, &states, &run.stack) {
            let previous = states.get(name);
            let mut next = stack::next_state(previous, &declared, |topic| {
                present_after(topic, &snapshot, run.report.as_ref())
            });
            // A pruned principal leaves the state once its removal went through.
            let removed: BTreeSet<String> = pruned_principals
                .iter()
                .filter(|l| {
                    run.users.as_ref().is_some_and(|u| match &u.report {
                        // Nothing was left on the broker to remove.
                        None => u.plan.refusals.is_empty() && !u.plan.has_changes(),
                        Some(r) => !r.failures.iter().any(|(p, _)| *p == l.principal),
                    })
                })
                .map(|l| l.principal.clone())
                .collect();
            next.principals = stack::next_principals(previous, &principals, &removed);
            let unchanged = match previous {
                Some(previous) => *previous == next,
                None => next.topics.is_empty() && next.principals.is_empty(),
            };
            if !unchanged {
                if let Err(e) = store.write(&admin, name, &next).await {
                    let error = format!("stack '{name}': {e}");
                    eprintln!("Error: recording the state of {error}");
                    run.stack_error = Some(error);
                }
            }
        }
        if args.output == OutputFormat::Text {
            let mut out = std::io::stdout().lock();
            run.write_text(mode.verb(), &mut out)
                .context("writing to standard output")?;
        }
        tracing::debug!(cluster = %run.label(), requests = admin.requests_made(), "broker requests");
        runs.push(run);
    }
    Ok(())
}

/// The users of a target: read, planned, and (for `apply` / `delete`, when something is to
/// change) executed in the users room's one pass on the cluster's client.
async fn run_users(
    admin: &crate::runtime::instrumented::Counted<RdKafkaAdmin>,
    target: &Target<'_>,
    mode: Mode,
    secrets: &dyn SecretReader,
    pruned: Vec<users::Leaving>,
) -> report::UsersRun {
    let identity = admin.inner().identity_admin();
    let entries = users::resolve(&target.users, secrets).await;
    let (ensure, leaving) = if mode == Mode::Delete {
        (Vec::new(), users::leaving(&entries))
    } else {
        (entries, pruned)
    };
    let observed = users::observe(&identity, &ensure, &leaving).await;
    let plan = users::plan_users(&ensure, &leaving, &observed);
    // Without the broker's ACLs nothing is planned: nothing is executed either.
    let execute = !matches!(mode, Mode::Plan { .. }) && plan.has_changes() && observed.acls.is_ok();
    let report = match execute {
        true => Some(users::execute(&identity, &ensure, &leaving).await),
        false => None,
    };
    report::UsersRun { plan, report }
}

/// Reads every stack's state on the target's cluster, sets `run.stack` and, under `--prune`,
/// `run.pruned`, and warns of renames and of what a prune leaves. `Err`: the state is needed
/// (`apply`, `--prune`) and could not be read. `Ok(None)`: a plan without `--prune` that could
/// not read it (a warning).
async fn read_stack(
    stack_args: &StackArgs,
    mode: Mode,
    target: &Target<'_>,
    store: &StackStore,
    declared: &[stack::Declared],
    run: &mut ClusterRun,
) -> Result<Option<BTreeMap<String, stack::StackState>>, String> {
    let name = stack_args
        .stack
        .clone()
        .unwrap_or_else(|| default_stack(target));
    match store.read().await {
        Ok(states) => {
            let pruning = stack::plan_prune(&name, &states, declared);
            for warning in prune_warnings(&name, &pruning, stack_args.prune) {
                eprintln!("warning: {warning}");
            }
            if stack_args.prune {
                run.pruned = pruning.prune.into_iter().collect();
            }
            run.stack = Some(name);
            Ok(Some(states))
        }
        // Apply records the state, and must know it; a plan without --prune does not.
        Err(e) if stack_args.prune || mode == Mode::Apply => Err(format!(
            "reading the state of stack '{name}' on {}: {e}; nothing was changed on it (README.md, \"Pruning\", lists the permissions)",
            run.label()
        )),
        Err(e) => {
            eprintln!("warning: stack '{name}': its state could not be read ({e}); renamed topics are not told");
            Ok(None)
        }
    }
}

/// The principals of a target's KafkaUsers, for its stack.
fn declared_principals(target: &Target<'_>) -> BTreeMap<String, stack::StackPrincipal> {
    target
        .users
        .iter()
        .filter_map(|u| {
            let desired = crate::users::desired_user(u).ok()?;
            let resource = format!(
                "{}/{}",
                u.metadata.namespace.as_deref().unwrap_or("default"),
                u.metadata.name.as_deref().unwrap_or_default()
            );
            Some((
                desired.principal,
                stack::StackPrincipal {
                    resource,
                    scram_user: desired.credential.map(|c| c.user),
                },
            ))
        })
        .collect()
}

/// What a stack's principals that the manifests no longer declare say.
fn principal_warnings(stack: &str, pruning: &stack::PrincipalPruning, prune: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !prune {
        for (principal, p) in &pruning.prune {
            out.push(format!(
                "stack '{stack}': {principal} (KafkaUser {}) is no longer declared; `--prune` removes its ACLs and credentials",
                p.resource
            ));
        }
    }
    for (principal, owner) in &pruning.shared {
        out.push(format!(
            "stack '{stack}': {principal} is no longer declared here but stack '{owner}' lists it: not pruned"
        ));
    }
    out
}

/// The topics a target declares, for its stack.
fn declared_topics(target: &Target<'_>) -> Vec<stack::Declared> {
    target
        .topics
        .iter()
        .map(|t| stack::Declared {
            name: t.desired.name.clone(),
            policy: t.desired.deletion_policy,
            resource: format!(
                "{}/{}",
                t.namespace.as_deref().unwrap_or("default"),
                t.resource
            ),
        })
        .collect()
}

/// The stack of a target without `--stack`: its KafkaCluster's `namespace/name`, or
/// `bootstrap:HOST:PORT` with `--bootstrap`.
fn default_stack(target: &Target<'_>) -> String {
    match &target.cluster {
        Some((name, namespace)) => {
            format!("{}/{name}", namespace.as_deref().unwrap_or("default"))
        }
        None => format!("bootstrap:{}", target.settings.bootstrap_servers),
    }
}

/// Whether `topic` is on the broker after the run: created, or there before and not deleted.
fn present_after(topic: &str, snapshot: &BrokerSnapshot, report: Option<&Report>) -> bool {
    let done = |f: fn(&Action) -> bool| {
        report.is_some_and(|r| {
            r.results.iter().any(|e| {
                e.outcome == Outcome::Done && e.action.topic().as_str() == topic && f(&e.action)
            })
        })
    };
    if done(|a| matches!(a, Action::Create { .. })) {
        return true;
    }
    if done(|a| matches!(a, Action::Delete { .. })) {
        return false;
    }
    snapshot.topics.contains_key(topic)
}

/// What a stack's renamed topics, and its undeclared topics a prune leaves, say.
fn prune_warnings(stack: &str, pruning: &stack::Pruning, prune: bool) -> Vec<String> {
    let mut out = Vec::new();
    for r in &pruning.renames {
        let fate = match (prune, r.policy) {
            (true, crate::api::DeletionPolicy::Delete) => "is deleted by this prune".to_owned(),
            (false, crate::api::DeletionPolicy::Delete) => {
                "stays on the broker; `--prune` deletes it (its deletionPolicy was Delete)"
                    .to_owned()
            }
            (_, crate::api::DeletionPolicy::Retain) => {
                "stays on the broker (its deletionPolicy was Retain)".to_owned()
            }
        };
        out.push(format!(
            "KafkaTopic {}: its topic was renamed from '{}' to '{}' since stack '{stack}' last applied; '{}' {fate}",
            r.resource, r.from, r.to, r.from
        ));
    }
    if prune {
        for topic in &pruning.retained {
            out.push(format!("stack '{stack}': '{topic}' is no longer declared but its deletionPolicy was Retain: not pruned"));
        }
        for (topic, owner) in &pruning.shared {
            out.push(format!("stack '{stack}': '{topic}' is no longer declared here but stack '{owner}' lists it: not pruned"));
        }
    }
    out
}

fn load_cluster_file(path: &PathBuf) -> Result<KafkaCluster> {
    let (docs, errors) = manifest::load_paths(std::slice::from_ref(path));
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        bail!("{}", lines.join("\n"));
    }
    let mut clusters = docs.into_iter().filter_map(|d| match d.resource {
        Resource::Cluster(c) => Some((d.source, c)),
        _ => None,
    });
    let (source, cluster) = clusters
        .next()
        .ok_or_else(|| anyhow!("--cluster {}: holds no KafkaCluster", path.display()))?;
    if clusters.next().is_some() {
        bail!(
            "--cluster {}: holds more than one KafkaCluster; name a file with one",
            path.display()
        );
    }
    let errors = crate::clusters::validate_cluster(&cluster);
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| format!("{source} {e}")).collect();
        bail!("{}", lines.join("\n"));
    }
    Ok(*cluster)
}

/// The broker connections of a run and their topics; under `prune`, also the clusters the
/// manifests (or --cluster) name that no topic refers to any more.
async fn resolve_targets<'a>(
    args: &TargetArgs,
    set: &'a ValidatedSet,
    fallback: Option<&KafkaCluster>,
    secrets: &dyn SecretReader,
    prune: bool,
) -> Result<Vec<Target<'a>>> {
    let timeout = args.timeout.map(Duration::from_secs);
    if let Some(bootstrap) = &args.bootstrap {
        return Ok(vec![Target {
            cluster: None,
            settings: ClientSettings::plaintext(bootstrap, timeout.unwrap_or(DEFAULT_TIMEOUT)),
            topics: set.topics.iter().collect(),
            users: set.users.iter().map(|(_, u)| u).collect(),
        }]);
    }
    // Topics and users by the cluster they name.
    type Group<'s> = (Vec<&'s TopicTarget>, Vec<&'s crate::api::KafkaUser>);
    let mut groups: BTreeMap<(Option<String>, String), Group<'a>> = BTreeMap::new();
    for t in &set.topics {
        groups
            .entry((t.namespace.clone(), t.cluster_ref.clone()))
            .or_default()
            .0
            .push(t);
    }
    for (_, u) in &set.users {
        groups
            .entry((u.metadata.namespace.clone(), u.spec.cluster_ref.clone()))
            .or_default()
            .1
            .push(u);
    }
    let mut targets = Vec::new();
    for ((namespace, cluster_ref), (topics, users)) in groups {
        let named = set.clusters.iter().map(|(_, c)| c).find(|c| {
            c.metadata.namespace == namespace
                && c.metadata.name.as_deref() == Some(cluster_ref.as_str())
        });
        let cluster = named.or(fallback).ok_or_else(|| {
            let source = match (topics.first(), users.first()) {
                (Some(t), _) => t.source.to_string(),
                (None, Some(u)) => set
                    .users
                    .iter()
                    .find(|(_, x)| std::ptr::eq(x, *u))
                    .map(|(s, _)| s.to_string())
                    .unwrap_or_default(),
                (None, None) => String::new(),
            };
            match inputs::elsewhere_text(set, namespace.as_deref(), &cluster_ref) {
                Some(why) => anyhow!(
                    "{source} spec.clusterRef: {why}; or pass --cluster FILE or --bootstrap HOST:PORT"
                ),
                None => anyhow!(
                    "{source} spec.clusterRef: KafkaCluster '{cluster_ref}' is not among the given manifests; add it, or pass --cluster FILE or --bootstrap HOST:PORT"
                ),
            }
        })?;
        let mut target = cluster_target(cluster, topics, timeout, secrets).await?;
        target.users = users;
        targets.push(target);
    }
    if prune {
        // A cluster whose topics all left the manifests is still pruned: every KafkaCluster
        // among the manifests, and the --cluster one, is a target.
        let clusters = set.clusters.iter().map(|(_, c)| c).chain(fallback);
        for cluster in clusters {
            let id = (
                cluster.metadata.name.clone().unwrap_or_default(),
                cluster.metadata.namespace.clone(),
            );
            if !targets.iter().any(|t| t.cluster.as_ref() == Some(&id)) {
                targets.push(cluster_target(cluster, Vec::new(), timeout, secrets).await?);
            }
        }
    }
    Ok(targets)
}

/// The target of one KafkaCluster, serving `topics`.
async fn cluster_target<'a>(
    cluster: &KafkaCluster,
    topics: Vec<&'a TopicTarget>,
    timeout: Option<Duration>,
    secrets: &dyn SecretReader,
) -> Result<Target<'a>> {
    let mut settings = ClientSettings::for_cluster(cluster, secrets)
        .await
        .with_context(|| {
            format!(
                "KafkaCluster '{}'",
                cluster.metadata.name.as_deref().unwrap_or_default()
            )
        })?;
    if let Some(t) = timeout {
        settings.timeout = t;
    }
    Ok(Target {
        cluster: Some((
            cluster.metadata.name.clone().unwrap_or_default(),
            cluster.metadata.namespace.clone(),
        )),
        settings,
        topics,
        users: Vec::new(),
    })
}
