//! The `tributary` command line: `crds`, `validate`, `plan`, `apply`, `delete`.
//! `anyhow` lives here, at the edge; everything below reports typed errors.

mod output;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};

use crate::api::{crds, KafkaCluster};
use crate::kafka::{
    BrokerAdmin, ClientSettings, FileSecrets, KubeSecrets, RdKafkaAdmin, SecretReader,
    DEFAULT_TIMEOUT,
};
use crate::manifest::{self, ManifestError, Resource, TopicTarget, ValidatedSet};
use crate::runtime::instrumented::counted;
use crate::topics::execute::{execute, Outcome, Report};
use crate::topics::plan::{self, Action, Plan, Removal};

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
    /// Print the objects the operator would create for the manifests' StreamTopologies (their
    /// KafkaTopics, KafkaProducers and KafkaConsumers), like `helm template`; offline.
    Render {
        /// Files or directories of YAML manifests.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Show what `apply` would change on the live broker, changing nothing.
    Plan {
        #[command(flatten)]
        target: TargetArgs,
        /// Exit 2 when there are changes to make (0: none, 1: errors or refusals).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Make the broker match the manifests.
    Apply {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove the topics the manifests declare: those with `deletionPolicy: Delete` are
    /// deleted from the broker, those with `Retain` (the default) are kept.
    Delete {
        #[command(flatten)]
        target: TargetArgs,
    },
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
}

/// Runs the CLI; the exit code says whether everything succeeded.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Operator(args) => operator_command(args).await,
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
            println!(
                "valid: {} KafkaCluster(s), {} KafkaTopic(s), {} KafkaConsumer(s), {} KafkaProducer(s){topologies}",
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
        Command::Render { files } => {
            let set = match load_valid(&files, None) {
                Ok(set) => set,
                Err(code) => return Ok(code),
            };
            print_warnings(&set);
            if set.topologies.is_empty() {
                eprintln!("no StreamTopology among the manifests: nothing to render");
            }
            print!("{}", output::render_yaml(&set));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            target,
            detailed_exitcode,
        } => run_target(&target, Mode::Plan { detailed_exitcode }).await,
        Command::Apply { target } => run_target(&target, Mode::Apply).await,
        Command::Delete { target } => run_target(&target, Mode::Delete).await,
    }
}

async fn operator_command(args: OperatorArgs) -> Result<ExitCode> {
    let client = match &args.kubeconfig {
        None => kube::Client::try_default()
            .await
            .context("connecting to Kubernetes")?,
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("using {}", path.display()))?;
            kube::Client::try_from(config).context("connecting to Kubernetes")?
        }
    };
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
                identity: crate::operator::leader::identity(),
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
    let report = |errors: Vec<ManifestError>| {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!(
            "{} error(s); nothing was contacted or changed",
            errors.len()
        );
        ExitCode::FAILURE
    };
    let (docs, mut errors) = manifest::load_paths(files);
    match manifest::validate(docs, fallback) {
        Ok(set) if errors.is_empty() => Ok(set),
        Ok(_) => Err(report(errors)),
        Err(more) => {
            errors.extend(more);
            errors.sort_by(|a, b| (&a.file, a.document).cmp(&(&b.file, b.document)));
            Err(report(errors))
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plan { detailed_exitcode: bool },
    Apply,
    Delete,
}

/// One broker connection and the topics it serves.
struct Target<'a> {
    label: String,
    settings: ClientSettings,
    topics: Vec<&'a TopicTarget>,
}

async fn run_target(args: &TargetArgs, mode: Mode) -> Result<ExitCode> {
    let fallback = match &args.cluster {
        None => None,
        Some(path) => Some(load_cluster_file(path)?),
    };
    let set = match load_valid(&args.files, fallback.as_ref()) {
        Ok(set) => set,
        Err(code) => return Ok(code),
    };
    print_warnings(&set);
    if set.topics.is_empty() {
        println!("no KafkaTopic in the given manifests; nothing to do");
        return Ok(ExitCode::SUCCESS);
    }
    let secrets: Box<dyn SecretReader> = if args.kube_secrets {
        let client = kube::Client::try_default()
            .await
            .context("connecting to Kubernetes for --kube-secrets")?;
        Box::new(KubeSecrets(client))
    } else {
        Box::new(FileSecrets)
    };
    let targets = resolve_targets(args, &set, fallback.as_ref(), secrets.as_ref()).await?;

    let mut ok = true;
    let mut changes = false;
    for target in targets {
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
        let describe: Vec<String> = target
            .topics
            .iter()
            .map(|t| t.desired.name.to_string())
            .collect();
        let snapshot = admin
            .snapshot(&describe)
            .await
            .with_context(|| format!("observing {}", target.label))?;
        let plan = plan::plan(&desired, &removals, &snapshot);
        changes |= plan
            .actions
            .iter()
            .any(|a| !matches!(a, Action::Refuse { .. }));
        ok &= plan.refusals().next().is_none();
        if matches!(mode, Mode::Plan { .. }) || plan.is_empty() {
            print_plan(&target.label, &plan);
        } else {
            let report = execute(&plan, &admin).await;
            print_report(&target.label, &plan, &report);
            ok &= report.succeeded();
        }
        tracing::debug!(cluster = %target.label, requests = admin.requests_made(), "broker requests");
    }
    Ok(match (ok, mode) {
        (false, _) => ExitCode::FAILURE,
        (
            true,
            Mode::Plan {
                detailed_exitcode: true,
            },
        ) if changes => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
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

async fn resolve_targets<'a>(
    args: &TargetArgs,
    set: &'a ValidatedSet,
    fallback: Option<&KafkaCluster>,
    secrets: &dyn SecretReader,
) -> Result<Vec<Target<'a>>> {
    let timeout = args.timeout.map(Duration::from_secs);
    if let Some(bootstrap) = &args.bootstrap {
        return Ok(vec![Target {
            label: bootstrap.clone(),
            settings: ClientSettings::plaintext(bootstrap, timeout.unwrap_or(DEFAULT_TIMEOUT)),
            topics: set.topics.iter().collect(),
        }]);
    }
    let mut groups: BTreeMap<(Option<String>, String), Vec<&TopicTarget>> = BTreeMap::new();
    for t in &set.topics {
        groups
            .entry((t.namespace.clone(), t.cluster_ref.clone()))
            .or_default()
            .push(t);
    }
    let mut targets = Vec::new();
    for ((_, cluster_ref), topics) in groups {
        let cluster = set.cluster_for(topics[0]).or(fallback).ok_or_else(|| {
            anyhow!(
                "{} spec.clusterRef: KafkaCluster '{cluster_ref}' is not among the given manifests; add it, or pass --cluster FILE or --bootstrap HOST:PORT",
                topics[0].source
            )
        })?;
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
        targets.push(Target {
            label: format!(
                "{} ({})",
                cluster.metadata.name.as_deref().unwrap_or_default(),
                settings.bootstrap_servers
            ),
            settings,
            topics,
        });
    }
    Ok(targets)
}

fn print_plan(label: &str, plan: &Plan) {
    let count = |f: fn(&Action) -> bool| plan.actions.iter().filter(|a| f(a)).count();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "cluster {label}:");
    for action in &plan.actions {
        let _ = writeln!(out, "{action}");
    }
    print_retained(&mut out, plan);
    if plan.is_empty() {
        let _ = writeln!(out, "No changes: the broker matches the manifests.");
        return;
    }
    let _ = writeln!(
        out,
        "Plan: {} to create, {} to grow, {} to reconfigure, {} to delete, {} refused.",
        count(|a| matches!(a, Action::Create { .. })),
        count(|a| matches!(a, Action::IncreasePartitions { .. })),
        count(|a| matches!(a, Action::AlterConfigs { .. })),
        count(|a| matches!(a, Action::Delete { .. })),
        count(|a| matches!(a, Action::Refuse { .. })),
    );
}

fn print_retained(out: &mut impl Write, plan: &Plan) {
    for name in &plan.retained {
        let _ = writeln!(out, "= keep {name}: deletionPolicy is Retain");
    }
}

fn print_report(label: &str, plan: &Plan, report: &Report) {
    let count = |f: fn(&Outcome) -> bool| report.results.iter().filter(|r| f(&r.outcome)).count();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "cluster {label}:");
    for r in &report.results {
        let _ = writeln!(out, "{r}");
    }
    print_retained(&mut out, plan);
    let _ = writeln!(
        out,
        "Applied: {} done, {} failed, {} refused.",
        count(|o| *o == Outcome::Done),
        count(|o| matches!(o, Outcome::Failed { .. })),
        count(|o| matches!(o, Outcome::Refused(_))),
    );
}
