//! `tributary offsets show` and `tributary offsets reset`: a consumer group's offsets, read and
//! reset from the command line through the offsets room's pipeline ([`crate::offsets`]).
//!
//! The group is named with `--group` (and the cluster with `--bootstrap` or `--cluster`), or
//! taken from the KafkaConsumers of `-f` manifests (their `groupId`, their topics and their
//! KafkaCluster). `reset` is refused while the group has members: stop its consumers first (a
//! `KafkaOffsetReset` does that itself).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};

use super::{load_cluster_file, load_valid, print_warnings};
use crate::api::KafkaCluster;
use crate::kafka::offsets::RdKafkaGroupAdmin;
use crate::kafka::DEFAULT_TIMEOUT;
use crate::kafka::{ClientSettings, FileSecrets, KubeSecrets, RequestTally, SecretReader};
use crate::offsets::{self, Plan, Request, ResetError, Selection, Target, View};
use crate::workloads::TopicNames;

#[derive(Subcommand, Debug)]
pub enum OffsetsCommand {
    /// Per partition: the group's committed offset, the log end offset, the lag and the member
    /// reading it (what `kafka-consumer-groups --describe` prints).
    Show {
        #[command(flatten)]
        group: GroupArgs,
    },
    /// Move the group's committed offsets (refused while the group has members).
    Reset {
        #[command(flatten)]
        group: GroupArgs,
        /// Only these partitions of each topic (repeat); default: all.
        #[arg(long = "partition", value_name = "N")]
        partitions: Vec<i32>,
        /// `earliest`, `latest`, an RFC 3339 date-time (the first record at or after it), or
        /// `shift:N` (N signed, clamped to each partition's range).
        #[arg(long, value_name = "TARGET", value_parser = parse_target)]
        to: Target,
        /// Print the new offsets, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args, Debug)]
pub struct GroupArgs {
    /// Manifests holding the KafkaConsumer(s) whose group to use (and their KafkaCluster).
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// The consumer group id (with -f: which of the manifests' consumers).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Only these topics (repeat); default: the consumer's topics with -f, else every topic
    /// the group has committed on.
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Talk to this broker (plaintext).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "cluster")]
    pub bootstrap: Option<String>,
    /// Take the connection from this KafkaCluster manifest.
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// Seconds any broker request may take (default: the cluster's, else 10).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Read `secretKeyRef` credentials from the Kubernetes cluster of the current kubeconfig.
    #[arg(long)]
    pub kube_secrets: bool,
}

fn parse_target(value: &str) -> Result<Target, String> {
    Target::parse(value).map_err(|e| e.to_string())
}

/// A group to act on: its id, topics and cluster connection.
struct Resolved {
    group: String,
    topics: Vec<String>,
    settings: ClientSettings,
    /// Named by a raw id (not a declared consumer): refuse it when the broker does not know it.
    raw: bool,
}

pub async fn run(command: OffsetsCommand) -> Result<ExitCode> {
    match command {
        OffsetsCommand::Show { group } => {
            let Some(targets) = resolve(&group).await? else {
                return Ok(ExitCode::FAILURE);
            };
            let mut ok = true;
            for t in targets {
                let admin = RdKafkaGroupAdmin::connect(&t.settings)?;
                let mut tally = RequestTally::default();
                match offsets::show(&admin, &t.group, &t.topics, &mut tally).await {
                    Ok(view) => print!("{}", show_table(&view)),
                    Err(e) => {
                        eprintln!("error: group '{}': {e}", t.group);
                        ok = false;
                    }
                }
                tracing::debug!(group = %t.group, requests = tally.total(), "offsets show");
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        OffsetsCommand::Reset {
            group,
            partitions,
            to,
            dry_run,
        } => {
            let Some(mut targets) = resolve(&group).await? else {
                return Ok(ExitCode::FAILURE);
            };
            if targets.len() != 1 {
                bail!(
                    "the manifests hold {} KafkaConsumers: name the one to reset with --group",
                    targets.len()
                );
            }
            let t = targets.remove(0);
            reset(t, partitions, to, dry_run).await
        }
    }
}

async fn reset(t: Resolved, partitions: Vec<i32>, to: Target, dry_run: bool) -> Result<ExitCode> {
    let admin = RdKafkaGroupAdmin::connect(&t.settings)?;
    let mut tally = RequestTally::default();
    let request = Request {
        group: t.group.clone(),
        selection: Selection {
            topics: t.topics.clone(),
            partitions,
        },
        target: to.clone(),
        must_exist: t.raw,
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let prepared = match offsets::prepare(&admin, &request, now, &mut tally).await {
        Ok(p) => p,
        Err(e) => return Ok(failed(&t.group, &e)),
    };
    if let Err(e) = offsets::plan::check_empty(&prepared.group) {
        eprintln!("error: {e}; nothing was written");
        return Ok(ExitCode::FAILURE);
    }
    let verb = if dry_run {
        "dry run, nothing written"
    } else {
        "writing"
    };
    println!("group '{}': reset to {to} ({verb})", t.group);
    print!("{}", plan_table(&prepared.plan));
    if dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    match offsets::write(&admin, &t.group, &prepared.plan, &mut tally).await {
        Ok(held) => {
            println!(
                "wrote {} partition(s) of group '{}'; read back: as written",
                held.len(),
                t.group
            );
            tracing::debug!(group = %t.group, requests = tally.total(), "offsets reset");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(failed(&t.group, &e)),
    }
}

fn failed(group: &str, e: &ResetError) -> ExitCode {
    let nothing = match e {
        ResetError::Refused(_) => "; nothing was written",
        _ => "",
    };
    eprintln!("error: group '{group}': {e}{nothing}");
    ExitCode::FAILURE
}

/// The groups the arguments name; `None` when the manifests were invalid (already reported).
async fn resolve(args: &GroupArgs) -> Result<Option<Vec<Resolved>>> {
    let fallback = args.cluster.as_ref().map(load_cluster_file).transpose()?;
    let secrets: Box<dyn SecretReader> = if args.kube_secrets {
        Box::new(KubeSecrets(kube::Client::try_default().await.map_err(
            |e| anyhow!("connecting to Kubernetes for --kube-secrets: {e}"),
        )?))
    } else {
        Box::new(FileSecrets)
    };
    if args.files.is_empty() {
        let Some(group) = &args.group else {
            bail!("name the group: --group GROUP, or -f manifests holding its KafkaConsumer");
        };
        return Ok(Some(vec![Resolved {
            group: group.clone(),
            topics: args.topics.clone(),
            settings: settings_for(args, secrets.as_ref(), fallback.as_ref()).await?,
            raw: true,
        }]));
    }
    let set = match load_valid(&args.files, fallback.as_ref()) {
        Ok(set) => set,
        Err(_) => return Ok(None),
    };
    print_warnings(&set);
    let mut out = Vec::new();
    for (_, consumer) in &set.consumers {
        if args.group.as_ref().is_some_and(|g| *g != consumer.group_id) {
            continue;
        }
        let namespace = consumer.owner.namespace.clone();
        let names: TopicNames = set
            .topics
            .iter()
            .filter(|t| t.namespace == namespace)
            .map(|t| (t.resource.clone(), t.desired.name.clone()))
            .collect();
        let topics = if args.topics.is_empty() {
            consumer
                .topics
                .iter()
                .map(|t| t.resolve(&names).to_string())
                .collect()
        } else {
            args.topics.clone()
        };
        let cluster = set
            .clusters
            .iter()
            .map(|(_, c)| c)
            .find(|c| {
                c.metadata.namespace == namespace
                    && c.metadata.name.as_deref() == Some(consumer.cluster_ref.as_str())
            })
            .or(fallback.as_ref());
        out.push(Resolved {
            group: consumer.group_id.clone(),
            topics,
            settings: settings_for(args, secrets.as_ref(), cluster).await?,
            raw: false,
        });
    }
    if out.is_empty() {
        match &args.group {
            Some(g) => bail!("no KafkaConsumer of group '{g}' in the given manifests"),
            None => bail!("the given manifests hold no KafkaConsumer"),
        }
    }
    Ok(Some(out))
}

/// The connection: `--bootstrap`, else the KafkaCluster's settings.
async fn settings_for(
    args: &GroupArgs,
    secrets: &dyn SecretReader,
    cluster: Option<&KafkaCluster>,
) -> Result<ClientSettings> {
    let timeout = args.timeout.map(Duration::from_secs);
    match (&args.bootstrap, cluster) {
        (Some(b), _) => Ok(ClientSettings::plaintext(
            b,
            timeout.unwrap_or(DEFAULT_TIMEOUT),
        )),
        (None, Some(c)) => {
            let mut s = ClientSettings::for_cluster(c, secrets).await.map_err(|e| {
                anyhow!(
                    "KafkaCluster '{}': {e}",
                    c.metadata.name.as_deref().unwrap_or_default()
                )
            })?;
            if let Some(t) = timeout {
                s.timeout = t;
            }
            Ok(s)
        }
        (None, None) => Err(anyhow!(
            "no cluster to talk to: pass --bootstrap HOST:PORT or --cluster FILE"
        )),
    }
}

/// Columns left-aligned to their widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

/// The `show` table: a header line for the group, then one row per partition.
pub(super) fn show_table(view: &View) -> String {
    let g = &view.group;
    let mut out = format!(
        "group '{}': state {}, {} member(s)\n",
        g.group_id,
        g.state,
        g.members.len()
    );
    if view.rows.is_empty() {
        out.push_str("no committed offsets and no assigned partitions\n");
        return out;
    }
    let mut rows = vec![[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    .map(String::from)
    .to_vec()];
    for r in &view.rows {
        let (id, host, client) = r.member.clone().unzip3();
        rows.push(vec![
            r.topic.clone(),
            r.partition.to_string(),
            or_dash(r.committed),
            r.end.to_string(),
            or_dash(r.lag()),
            or_dash(id),
            or_dash(host),
            or_dash(client),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

trait Unzip3<A, B, C> {
    fn unzip3(self) -> (Option<A>, Option<B>, Option<C>);
}

impl<A, B, C> Unzip3<A, B, C> for Option<(A, B, C)> {
    fn unzip3(self) -> (Option<A>, Option<B>, Option<C>) {
        match self {
            Some((a, b, c)) => (Some(a), Some(b), Some(c)),
            None => (None, None, None),
        }
    }
}

/// The `reset` table: before → after per partition, and the totals.
pub(super) fn plan_table(plan: &Plan) -> String {
    let mut rows = vec![[
        "TOPIC",
        "PARTITION",
        "LOG-START",
        "LOG-END",
        "BEFORE",
        "AFTER",
        "RE-READ",
        "SKIPPED",
        "NOTE",
    ]
    .map(String::from)
    .to_vec()];
    for c in &plan.changes {
        rows.push(vec![
            c.topic.clone(),
            c.partition.to_string(),
            c.start.to_string(),
            c.end.to_string(),
            or_dash(c.before),
            c.after.to_string(),
            c.reread().to_string(),
            c.skipped().to_string(),
            if c.clamped {
                "clamped to the partition's range".to_owned()
            } else {
                String::new()
            },
        ]);
    }
    let mut out = table(&rows);
    out.push_str(&format!(
        "{} partition(s): {} message(s) to re-read, {} to skip\n",
        plan.changes.len(),
        plan.reread(),
        plan.skipped()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::PartitionChange;

    #[test]
    fn the_reset_table_shows_before_after_and_the_totals() {
        let plan = Plan {
            changes: vec![
                PartitionChange {
                    topic: "trip-events".into(),
                    partition: 0,
                    start: 0,
                    end: 500,
                    before: Some(500),
                    after: 490,
                    clamped: false,
                },
                PartitionChange {
                    topic: "trip-events".into(),
                    partition: 1,
                    start: 5,
                    end: 9,
                    before: Some(6),
                    after: 5,
                    clamped: true,
                },
            ],
        };
        assert_eq!(
            plan_table(&plan),
            "TOPIC        PARTITION  LOG-START  LOG-END  BEFORE  AFTER  RE-READ  SKIPPED  NOTE\n\
             trip-events  0          0          500      500     490    10       0\n\
             trip-events  1          5          9        6       5      1        0        clamped to the partition's range\n\
             2 partition(s): 11 message(s) to re-read, 0 to skip\n"
        );
    }
}
