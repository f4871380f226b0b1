//! The operator at scale: N KafkaTopics created at once in the in-process Kubernetes API-server
//! emulator (crates/kube-emulator), reconciled by `tributary operator` (the release binary, as
//! a separate process) against a Kafka-protocol broker, for several N in one run, printed side
//! by side at the end.
//!
//! Runs: `TRIBUTARY_BENCH_OPERATOR_RUNS`, a comma-separated list of `BROKER:COUNT` where
//! BROKER is `broker` (a fresh Tansu per run, or `TRIBUTARY_TEST_BOOTSTRAP` if set, then shared)
//! or `double` (the in-process broker double of double.rs that answers instantly: it measures
//! the operator's own cost, not a broker's). Default `broker:2000,double:2000` (what
//! scripts/bench.sh runs); the scale table of README is
//! `broker:2000,broker:10000,double:2000,double:10000,double:50000` (`scripts/bench.sh --scale`).
//! `TRIBUTARY_BENCH_OPERATOR_TOPICS=N` alone means `broker:N`.
//!
//! Per run, printed (figures; the targets of issue 12 beside them; nothing is asserted):
//!
//!   * time from the first create sent until every KafkaTopic has `Ready=True`, followed with a
//!     watch (`TRIBUTARY_BENCH_OPERATOR_POLL=list` lists every 250 ms instead), then checked on
//!     the broker (one Metadata + DescribeConfigs snapshot);
//!   * the broker's own time beside it: on another fresh broker, raw batched CreateTopics of
//!     the same topics in the batch sizes of the operator's round trips (baseline.rs), and one
//!     DescribeConfigs of all of them;
//!   * the operator's CPU (user + system, from the first create until all Ready) and RSS (peak,
//!     VmHWM, and its growth over the RSS before the first topic), each per topic;
//!   * broker admin requests (`total_requests` of the operator's last "broker round trip" log
//!     line) and round trips; KafkaTopic status writes and Events, counted from the API
//!     server's own request log (`requests()`);
//!   * one resync of every topic once all are Ready (`--resync-seconds`, default the larger of
//!     60 and topics / 100, at most 300): its broker requests, time (sum of round trips and wall span),
//!     status writes (target 0) and topics that changed state;
//!   * the bench's own CPU and the API-server emulator's (threads of this process), and the
//!     double's when it serves, beside the operator's.
//!
//! The operator runs with `operator --kubeconfig FILE --namespace bench --log-format json
//! --resync-seconds R --batch-window-ms W --probe-seconds 3600` and `TRIBUTARY_LOG=info`.
//! The binary is `TRIBUTARY_BIN`, else `target/release/tributary` (built first).
//!
//! Environment: `TRIBUTARY_BENCH_OPERATOR_RESYNC` (resync seconds), `..._WINDOW_MS` (batch
//! window, 100), `..._IN_FLIGHT` (creates in flight, 64), `..._TIMEOUT` (seconds to wait for
//! Ready; default 300 + topics / 20), `..._RESYNCS` (resyncs measured, 1), `..._POLL`,
//! `..._LOG` (keep the operator's log at this path; the run's count is appended),
//! `TRIBUTARY_BENCH_KEEP_TOPICS` (leave the topics on a `TRIBUTARY_TEST_BOOTSTRAP` broker).
//!
//! The modules: setup.rs (settings, the binary), process.rs (the operator process, CPU and
//! memory), operator_log.rs (its log: the broker round trips), kubernetes.rs (the KafkaCluster
//! and KafkaTopics, the broker check), measure.rs (one run), baseline.rs (the broker's own
//! time), double.rs (the broker double), report.rs (the tables).

mod baseline;
#[path = "../../tests/support/broker.rs"]
mod broker;
mod double;
mod kubernetes;
mod measure;
mod operator_log;
mod process;
mod report;
mod setup;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tributary::api::crds;

use kubernetes::cleanup_broker;
use measure::{run, writes_and_events, Results};
use operator_log::Log;
use process::{cpu_seconds, proc_status_kib, stop, Guard};
use report::{ms, row, verdict, Summary};
use setup::{env_u64, tributary_bin};

const NAMESPACE: &str = "bench";
const CLUSTER: &str = "bench";
/// The "small constant" of the request target: the cluster probe and a few stragglers.
const REQUEST_SLACK: u64 = 10;
const POLL: Duration = Duration::from_millis(250);

/// Where a run's topics go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    /// A real Kafka-protocol broker: a fresh Tansu, or TRIBUTARY_TEST_BOOTSTRAP.
    Broker,
    /// The in-process double that answers instantly.
    Double,
}

fn runs() -> Vec<(Target, usize)> {
    let spec = match std::env::var("TRIBUTARY_BENCH_OPERATOR_RUNS") {
        Ok(s) if !s.trim().is_empty() => s,
        _ => match std::env::var("TRIBUTARY_BENCH_OPERATOR_TOPICS") {
            Ok(n) if !n.trim().is_empty() => format!("broker:{}", n.trim()),
            _ => "broker:2000,double:2000".to_owned(),
        },
    };
    spec.split(',')
        .map(|r| {
            let (target, count) = r.trim().split_once(':').unwrap_or_else(|| {
                panic!("TRIBUTARY_BENCH_OPERATOR_RUNS: '{r}' is not BROKER:COUNT (e.g. broker:2000 or double:50000)")
            });
            let target = match target {
                "broker" => Target::Broker,
                "double" => Target::Double,
                other => panic!("TRIBUTARY_BENCH_OPERATOR_RUNS: broker '{other}' is neither `broker` nor `double`"),
            };
            let count = count.parse().unwrap_or_else(|_| {
                panic!("TRIBUTARY_BENCH_OPERATOR_RUNS: '{count}' is not a topic count")
            });
            (target, count)
        })
        .collect()
}

/// A broker for one run: a fresh Tansu (stopped when dropped), the shared
/// TRIBUTARY_TEST_BOOTSTRAP, or a fresh double.
struct RunBroker {
    bootstrap: String,
    label: String,
    tansu: Option<(std::process::Child, std::process::ChildStdin)>,
    double: Option<double::BrokerDouble>,
    /// The bench started it for this run (so its topics need no cleanup).
    fresh: bool,
}

impl RunBroker {
    fn start(target: Target) -> Self {
        match target {
            Target::Double => {
                let d = double::BrokerDouble::start();
                Self {
                    bootstrap: d.bootstrap.clone(),
                    label: "BROKER DOUBLE (in-process, answers instantly; not a broker)".into(),
                    tansu: None,
                    double: Some(d),
                    fresh: true,
                }
            }
            Target::Broker => match std::env::var("TRIBUTARY_TEST_BOOTSTRAP") {
                Ok(b) if !b.trim().is_empty() => Self {
                    bootstrap: b.trim().to_owned(),
                    label: "TRIBUTARY_TEST_BOOTSTRAP (shared, not fresh)".into(),
                    tansu: None,
                    double: None,
                    fresh: false,
                },
                _ => {
                    let port = broker::free_port();
                    let guard = broker::spawn_guarded_tansu(port);
                    let addr = format!("127.0.0.1:{port}");
                    broker::wait_for(addr.parse().unwrap(), Duration::from_secs(20));
                    Self {
                        bootstrap: addr,
                        label: format!(
                            "Tansu {} (memory storage, fresh for this run)",
                            broker::tansu_binary().display()
                        ),
                        tansu: Some(guard),
                        double: None,
                        fresh: true,
                    }
                }
            },
        }
    }
}

impl Drop for RunBroker {
    fn drop(&mut self) {
        if let Some(guard) = self.tansu.take() {
            broker::stop_guarded(guard);
        }
    }
}

fn main() {
    let bin = tributary_bin();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut summaries = Vec::new();
    for (target, count) in runs() {
        println!();
        println!("=== {count} KafkaTopics, {target:?} ===");
        let summary = one_run(&runtime, &bin, target, count);
        summaries.push(summary);
    }
    report::print_summary(&summaries);
}

fn one_run(
    runtime: &tokio::runtime::Runtime,
    bin: &std::path::Path,
    target: Target,
    count: usize,
) -> Summary {
    let resync = Duration::from_secs(env_u64(
        "TRIBUTARY_BENCH_OPERATOR_RESYNC",
        (count as u64 / 100).clamp(60, 300),
    ));
    let window_ms = env_u64("TRIBUTARY_BENCH_OPERATOR_WINDOW_MS", 100);
    let in_flight = env_u64("TRIBUTARY_BENCH_OPERATOR_IN_FLIGHT", 64) as usize;
    let timeout = Duration::from_secs(env_u64(
        "TRIBUTARY_BENCH_OPERATOR_TIMEOUT",
        300 + count as u64 / 20,
    ));
    let resyncs = env_u64("TRIBUTARY_BENCH_OPERATOR_RESYNCS", 1) as usize;
    let list_poll =
        std::env::var("TRIBUTARY_BENCH_OPERATOR_POLL").is_ok_and(|v| v.trim() == "list");
    let b = RunBroker::start(target);
    let bootstrap = b.bootstrap.clone();

    let api = kube_emulator::ApiServer::start_blocking(kube_emulator::Options {
        // Room for every write of the run (create, finalizer, status, Events) in the watch
        // history, so no watch of the operator is sent back to relist.
        history_limit: (count * 10).max(10_000),
        ..Default::default()
    });
    let emulator_thread = format!(
        "apiserver-{}",
        api.url()
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
    );
    api.register_crds(&crds::all());
    api.create_namespace(NAMESPACE);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)
        .expect("writing the kubeconfig");
    let log_path = std::env::var_os("TRIBUTARY_BENCH_OPERATOR_LOG")
        .map(|p| PathBuf::from(format!("{}.{count}", PathBuf::from(p).display())))
        .unwrap_or_else(|| dir.path().join("operator.log"));
    let stderr = std::fs::File::create(&log_path).expect("creating the operator's log");

    let tag = format!("op{}x{count}", std::process::id());
    let names: Vec<String> = (0..count).map(|i| format!("{tag}-t{i:05}")).collect();

    println!("operator: {count} KafkaTopics created at once ({in_flight} creates in flight; 1-3 partitions, retention.ms each)");
    println!("broker: {bootstrap} ({})", b.label);
    println!(
        "API server: {} (crates/kube-emulator, in this process)",
        api.url()
    );
    println!(
        "tributary: {} operator --resync-seconds {} --batch-window-ms {window_ms}",
        bin.display(),
        resync.as_secs()
    );
    println!("operator log: {}", log_path.display());

    let child = Command::new(bin)
        .arg("operator")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", NAMESPACE, "--log-format", "json"])
        .args(["--resync-seconds", &resync.as_secs().to_string()])
        .args(["--batch-window-ms", &window_ms.to_string()])
        .args(["--probe-seconds", "3600"])
        .args(["--http-address", "127.0.0.1:0"])
        .env("TRIBUTARY_LOG", "info")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let pid = child.id();
    let mut guard = Guard(Some(child));

    let _entered = runtime.enter();
    let mut log = Log::new(log_path.clone());
    let mut results = Results::default();
    let outcome = runtime.block_on(run(
        &api,
        api.client(),
        bootstrap.clone(),
        names.clone(),
        in_flight,
        resync,
        resyncs,
        timeout,
        list_poll,
        &mut log,
        pid,
        &emulator_thread,
        &mut results,
    ));
    if let Err(e) = outcome {
        results.error = Some(e);
    }
    let mut child = guard.0.take().expect("the operator");
    let exited_early = child.try_wait().ok().flatten();
    let peak_rss = proc_status_kib(pid, "VmHWM:").map(|k| k as f64 / 1024.0);
    let rss_now = proc_status_kib(pid, "VmRSS:").map(|k| k as f64 / 1024.0);
    let cpu = cpu_seconds(pid);
    let (stop_took, exit) = stop(&mut child);
    log.poll();
    if !b.fresh && std::env::var_os("TRIBUTARY_BENCH_KEEP_TOPICS").is_none() {
        runtime.block_on(cleanup_broker(&bootstrap, &names));
    }
    let double_requests = b.double.as_ref().map(|d| d.requests());
    drop(b);

    // The broker's own time, on a fresh broker (or, shared, with other names).
    let sizes: Vec<usize> = results
        .until_ready
        .as_ref()
        .map(|u| u.sizes.clone())
        .unwrap_or_default();
    println!("  the broker's own time: raw batched CreateTopics on a fresh broker, then one DescribeConfigs of all");
    let base_broker = RunBroker::start(target);
    let base_names: Vec<String> = names.iter().map(|n| format!("{n}-raw")).collect();
    let baseline = runtime.block_on(baseline::measure(
        &base_broker.bootstrap,
        &base_names,
        &sizes,
    ));
    if !base_broker.fresh && std::env::var_os("TRIBUTARY_BENCH_KEEP_TOPICS").is_none() {
        runtime.block_on(cleanup_broker(&base_broker.bootstrap, &base_names));
    }
    drop(base_broker);
    let baseline = match baseline {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("note: the baseline failed: {e}");
            None
        }
    };

    // --- The table.
    let n = count as u64;
    let request_target = n / 100 + REQUEST_SLACK;
    let mut rows = Vec::new();
    let broker_time = baseline.as_ref().map(|b| b.create);
    match (results.ready, broker_time) {
        (Some(t), Some(raw)) => rows.push(row(
            format!("time until all {count} Ready"),
            format!(
                "{:.2} s (broker's own {:.2} s)",
                t.as_secs_f64(),
                raw.as_secs_f64()
            ),
            "<= 1.5x the broker's own",
            verdict(t.as_secs_f64() <= 1.5 * raw.as_secs_f64()),
        )),
        (Some(t), None) => rows.push(row(
            format!("time until all {count} Ready"),
            format!("{:.2} s", t.as_secs_f64()),
            "<= 1.5x the broker's own",
            "info",
        )),
        (None, _) => rows.push(row(
            format!("time until all {count} Ready"),
            format!("> {} s ({} Ready)", timeout.as_secs(), results.ready_count),
            "<= 1.5x the broker's own",
            "MISS",
        )),
    }
    if let Some(b) = &baseline {
        rows.push(row(
            "  broker's own: raw batched CreateTopics",
            format!(
                "{:.2} s in {} requests ({} failed)",
                b.create.as_secs_f64(),
                b.requests,
                b.failed
            ),
            "-",
            "info",
        ));
        if let Some(d) = b.describe {
            rows.push(row(
                "  broker's own: one DescribeConfigs of all",
                format!("{:.0} ms", ms(d)),
                "-",
                "info",
            ));
        }
    }
    if let Some(t) = results.last_ready_transition {
        rows.push(row(
            "  last Ready written (status lastTransitionTime)",
            format!("{:.1} s (+/- 0.5 s)", t.as_secs_f64()),
            "-",
            "info",
        ));
    }
    if let Some(t) = results.created {
        rows.push(row(
            "  of which: all creates answered",
            format!("{:.2} s", t.as_secs_f64()),
            "-",
            "info",
        ));
    }
    if let Some(u) = &results.until_ready {
        rows.push(row(
            "broker admin requests until Ready",
            format!("{} ({} in topic round trips)", u.last_total, u.requests),
            format!("<= {n} / 100 + {REQUEST_SLACK} = {request_target}"),
            verdict(results.ready.is_some() && u.last_total <= request_target),
        ));
        rows.push(row(
            "  broker round trips until Ready",
            format!(
                "{} (largest {} intents, {} failed)",
                u.count, u.max_intents, u.failed
            ),
            "-",
            "info",
        ));
        rows.push(row(
            "  intents / broker ms until Ready",
            format!("{} / {} ms", u.intents, u.elapsed_ms),
            "-",
            "info",
        ));
    }
    rows.push(
        match (results.broker_partitions_ok, results.broker_config_ok) {
            (Some(p), Some(c)) => row(
                "topics on the broker (partitions / config)",
                format!("{p} / {c} of {count}"),
                format!("{count} / {count}"),
                verdict(p == count && c == count),
            ),
            _ => row(
                "topics on the broker",
                "not checked",
                format!("{count}"),
                "MISS",
            ),
        },
    );
    let base_mib = results.rss_base_kib.map(|k| k as f64 / 1024.0);
    if let (Some(peak), Some(base)) = (peak_rss, base_mib) {
        let per_topic = (peak - base) * 1024.0 / n as f64;
        rows.push(row(
            "operator peak RSS (VmHWM) / over base",
            format!("{peak:.1} MiB / {per_topic:.1} KiB a topic (base {base:.1} MiB)"),
            "< 8 KiB a topic",
            verdict(per_topic < 8.0),
        ));
    }
    let (status_writes, events) = writes_and_events(&results.api_requests);
    rows.push(row(
        "KafkaTopic status writes until Ready",
        format!(
            "{status_writes} ({:.2} a topic)",
            status_writes as f64 / n as f64
        ),
        format!("<= {n} (one a real change)"),
        verdict(results.ready.is_some() && status_writes <= count),
    ));
    rows.push(row("Events until Ready", events.to_string(), "-", "info"));
    if let Some(c) = &results.cpu_until_ready {
        rows.push(row(
            "operator CPU until Ready",
            format!(
                "{:.2} s ({:.2} ms a topic)",
                c.operator,
                c.operator * 1000.0 / n as f64
            ),
            "-",
            "info",
        ));
        rows.push(row(
            "  beside it: bench / emulator / double CPU",
            format!("{:.2} s / {:.2} s / {:.2} s", c.bench, c.emulator, c.double),
            "-",
            "info",
        ));
    }
    for (i, r) in results.resyncs.iter().enumerate() {
        let label = match i {
            0 => "first resync".to_owned(),
            _ => format!("steady-state resync {i}"),
        };
        let t = &r.trips;
        let complete = if r.complete {
            String::new()
        } else {
            format!(" (INCOMPLETE: {} of {count} intents)", t.intents)
        };
        rows.push(row(
            format!("{label}: broker requests"),
            format!("{} in {} round trips{complete}", t.requests, t.count),
            format!("<= {request_target}"),
            verdict(r.complete && t.requests <= request_target && t.failed == 0),
        ));
        rows.push(row(
            format!("{label}: broker ms"),
            format!("{} ms (sum of round trips)", t.elapsed_ms),
            "-",
            "info",
        ));
        rows.push(row(
            format!("{label}: wall span"),
            format!("{:.0} ms (first start to last end)", ms(t.span)),
            "-",
            "info",
        ));
        rows.push(row(
            format!("{label}: topics changed / status writes / Events"),
            format!(
                "{} / {} / {} ({} Ready)",
                r.state_changed, r.status_writes, r.events, r.still_ready
            ),
            format!("0 / 0 / 0 ({count} Ready)"),
            verdict(r.state_changed == 0 && r.status_writes == 0 && r.still_ready == count),
        ));
        if let Some(d) = baseline.as_ref().and_then(|b| b.describe) {
            rows.push(row(
                format!("{label}: wall span / one DescribeConfigs"),
                format!("{:.2}x", t.span.as_secs_f64() / d.as_secs_f64()),
                "<= 1.5x",
                verdict(t.span.as_secs_f64() <= 1.5 * d.as_secs_f64()),
            ));
        }
    }
    if let Some(cpu) = cpu {
        rows.push(row(
            "operator CPU time in all (user + system)",
            format!("{cpu:.2} s"),
            "-",
            "info",
        ));
    }
    if let Some(mib) = rss_now {
        rows.push(row(
            "operator RSS at the end",
            format!("{mib:.1} MiB"),
            "-",
            "info",
        ));
    }
    rows.push(row(
        "operator shutdown on SIGTERM",
        format!("{:.0} ms ({exit})", ms(stop_took)),
        "-",
        "info",
    ));

    println!();
    println!(
        "{:<44} {:>44} {:>24} {:>6}",
        "metric", "value", "target", ""
    );
    for r in &rows {
        println!(
            "{:<44} {:>44} {:>24} {:>6}",
            r.metric, r.value, r.target, r.verdict
        );
    }
    println!();
    println!("(requests: `total_requests` of the operator's last \"broker round trip\" log line before all were Ready, i.e. every counted request of its admin client: Metadata, DescribeConfigs, CreateTopics, ... and the cluster probe's Metadata; resync: the round trips logged after all were Ready (or after the previous resync) until every topic was resynced once; changed: status other than condition messages; status writes and Events: counted from the API server's request log)");
    if let Some(status) = exited_early {
        println!("the operator had exited before the end: {status}");
    }
    for (i, r) in results.resyncs.iter().enumerate() {
        println!(
            "resync {}: waited {:.1} s for it; {} KafkaTopics changed state, {} got a status write",
            i + 1,
            r.wait.as_secs_f64(),
            r.state_changed,
            r.rewritten
        );
        if let Some(example) = &r.example {
            println!("  e.g. {example}");
        }
    }
    if !results.flaps.is_empty() {
        println!(
            "{} times a KafkaTopic seen Ready was later seen not Ready, e.g. {}",
            results.flaps.len(),
            results.flaps[0]
        );
    }
    if let Some(t) = results.cluster_ready {
        println!(
            "KafkaCluster Ready {:.0} ms after it was applied (operator start, connection, probe)",
            ms(t)
        );
    }
    if let Some(served) = &double_requests {
        println!("the broker double served: {served:?}");
    }
    if !results.list_times.is_empty() {
        let mut t = results.list_times.clone();
        t.sort();
        println!(
            "bench: {} lists of the KafkaTopics until all Ready, {:.1} ms median, {:.1} ms max each",
            t.len(),
            ms(t[t.len() / 2]),
            ms(t[t.len() - 1])
        );
    }
    if let (Some(empty), Some(full)) = (results.write_latency_empty, results.write_latency_full) {
        println!(
            "API server: one write (ConfigMap create) takes {:.1} ms median, {:.1} ms max with the store empty; {:.1} ms / {:.1} ms once every KafkaTopic exists",
            ms(empty.0),
            ms(empty.1),
            ms(full.0),
            ms(full.1)
        );
    }
    if !results.api_requests.is_empty() {
        let total: usize = results.api_requests.values().map(|v| v.0).sum();
        println!(
            "API requests from the first create until all Ready (operator and bench): {total}"
        );
        for (kind, (n, failed)) in &results.api_requests {
            let failed = if *failed > 0 {
                format!(" ({failed} answered >= 400)")
            } else {
                String::new()
            };
            println!("  {n:>7}  {kind}{failed}");
        }
    }
    if !results.not_ready.is_empty() {
        println!("not Ready, by reason:");
        for (reason, n) in &results.not_ready {
            println!("  {n:>6}  {reason}");
        }
    }
    if !results.broker_wrong.is_empty() {
        println!(
            "broker check ({} problems), first:",
            results.broker_wrong.len()
        );
        for w in results.broker_wrong.iter().take(5) {
            println!("  {w}");
        }
    }
    if !log.problems.is_empty() {
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for p in &log.problems {
            let key: String = p.chars().take(160).collect();
            *kinds.entry(key).or_insert(0) += 1;
        }
        println!(
            "operator warnings/errors: {} lines ({} distinct starts), most frequent:",
            log.problems.len(),
            kinds.len()
        );
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        for (k, n) in kinds.iter().take(8) {
            println!("  {n:>6}  {k}");
        }
    }
    println!(
        "operator log: {} lines ({} not JSON)",
        log.lines, log.unparsed
    );
    if let Some(e) = &results.error {
        println!("ERROR: {e}");
    }
    drop(api);
    let resync = results.resyncs.first();
    Summary {
        target: format!("{target:?}"),
        count,
        ready: results.ready,
        broker_time,
        describe_all: baseline.as_ref().and_then(|b| b.describe),
        cpu: results.cpu_until_ready,
        rss_peak_mib: peak_rss,
        rss_base_mib: base_mib,
        requests: results.until_ready.as_ref().map(|u| u.last_total),
        round_trips: results.until_ready.as_ref().map(|u| u.count),
        status_writes,
        events,
        resync: resync.map(|r| {
            (
                r.trips.requests,
                r.trips.span,
                r.status_writes,
                r.complete && r.state_changed == 0,
            )
        }),
        error: results.error.clone(),
    }
}
