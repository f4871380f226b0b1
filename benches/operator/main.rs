//! The operator at scale: 2,000 KafkaTopics created at once in the in-process Kubernetes
//! API-server emulator (crates/kube-emulator), reconciled by `tributary operator` (the
//! release binary, as a separate process) against a real Kafka-protocol broker.
//!
//! Printed (figures and targets; nothing is asserted on speed):
//!
//!   * time from the first create sent until every KafkaTopic has `Ready=True` (target < 30 s
//!     on a 2-core machine; Strimzi publishes 9.2 s for 250 topics), checked afterwards on the
//!     broker (one Metadata + DescribeConfigs snapshot: every topic, its partitions and config);
//!   * broker admin requests made until then, from the operator's JSON log lines "broker round
//!     trip" (`total_requests` of the last one; target <= topics / 100 + 10, i.e. batched),
//!     and the number of round trips;
//!   * the operator's peak RSS (VmHWM of /proc/PID/status; target < 150 MiB);
//!   * the cost of resyncing every topic: once all are Ready, the operator resyncs every topic
//!     each `--resync-seconds`; the round trips logged from then until every topic was
//!     resynced once give the broker requests (target: batched as above) and
//!     milliseconds (the sum of the round trips, and the wall span from the first one's start
//!     to the last one's end), and no KafkaTopic may change state (its status, condition
//!     messages aside; status writes are counted apart). The first resync after creation is
//!     reported apart from the next ones (steady state).
//!
//! Setup: the broker is `TRIBUTARY_TEST_BOOTSTRAP` if set, else a Tansu started here (see
//! tests/support/broker.rs). The operator binary is `TRIBUTARY_BIN`, else
//! `target/release/tributary` (built with `cargo build --release --bin tributary` first). It
//! runs with `operator --kubeconfig FILE --namespace bench --log-format json --resync-seconds R
//! --batch-window-ms W --probe-seconds 3600` and `TRIBUTARY_LOG=info` (the long probe interval
//! keeps the cluster probe's Metadata requests out of the counts, after the first one).
//!
//! Environment: `TRIBUTARY_BENCH_OPERATOR_TOPICS` (2000), `TRIBUTARY_BENCH_OPERATOR_RESYNC`
//! (resync seconds, 60; must exceed the time to Ready), `TRIBUTARY_BENCH_OPERATOR_WINDOW_MS`
//! (batch window, 100, the operator's default), `TRIBUTARY_BENCH_OPERATOR_IN_FLIGHT` (creates
//! in flight, 64), `TRIBUTARY_BENCH_OPERATOR_TIMEOUT` (seconds to wait for Ready, 300),
//! `TRIBUTARY_BENCH_OPERATOR_RESYNCS` (resyncs measured, 2), `TRIBUTARY_BENCH_OPERATOR_POLL`
//! (`list`, the default: list every KafkaTopic every 250 ms; `watch`: follow a watch instead,
//! which the emulator may deliver late under load),
//! `TRIBUTARY_BENCH_OPERATOR_LOG` (keep the operator's log at this path),
//! `TRIBUTARY_BENCH_KEEP_TOPICS` (leave the topics on a broker given by
//! `TRIBUTARY_TEST_BOOTSTRAP`; they are deleted otherwise).
//!
//! Also printed, to tell where the time goes: when the operator wrote the last Ready (the
//! conditions' `lastTransitionTime`), how long one API-server write takes with the store empty
//! and full (20 ConfigMap creates), and the API requests served until all were Ready, by kind.
//! Run with `scripts/bench.sh`, or `cargo bench --bench operator`.
//!
//! The modules: setup.rs (the bench's settings, the operator binary), process.rs (the operator
//! process), operator_log.rs (its log: the broker round trips), kubernetes.rs (the KafkaCluster
//! and KafkaTopics, and the broker check), measure.rs (the run, what it measures), report.rs
//! (the table's rows).

#[path = "../../tests/support/broker.rs"]
mod broker;
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
use measure::{run, Results};
use operator_log::Log;
use process::{cpu_seconds, proc_status_kib, stop, Guard};
use report::{ms, row, verdict};
use setup::{env_u64, tributary_bin};

const NAMESPACE: &str = "bench";
const CLUSTER: &str = "bench";
const RSS_TARGET_MIB: f64 = 150.0;
const READY_TARGET: Duration = Duration::from_secs(30);
/// The "small constant" of the request target: the cluster probe and a few stragglers.
const REQUEST_SLACK: u64 = 10;
const POLL: Duration = Duration::from_millis(250);

fn main() {
    let count = env_u64("TRIBUTARY_BENCH_OPERATOR_TOPICS", 2000) as usize;
    let resync = Duration::from_secs(env_u64("TRIBUTARY_BENCH_OPERATOR_RESYNC", 60));
    let window_ms = env_u64("TRIBUTARY_BENCH_OPERATOR_WINDOW_MS", 100);
    let in_flight = env_u64("TRIBUTARY_BENCH_OPERATOR_IN_FLIGHT", 64) as usize;
    let timeout = Duration::from_secs(env_u64("TRIBUTARY_BENCH_OPERATOR_TIMEOUT", 300));
    let resyncs = env_u64("TRIBUTARY_BENCH_OPERATOR_RESYNCS", 2) as usize;
    let list_poll =
        !std::env::var("TRIBUTARY_BENCH_OPERATOR_POLL").is_ok_and(|v| v.trim() == "watch");
    let bin = tributary_bin();
    let b = broker::broker();
    let bootstrap = b.bootstrap.clone();
    let broker_label = if b.is_tansu {
        format!(
            "Tansu {} (memory storage, started by the bench)",
            broker::tansu_binary().display()
        )
    } else {
        "TRIBUTARY_TEST_BOOTSTRAP".to_owned()
    };

    let api = kube_emulator::ApiServer::start_blocking(kube_emulator::Options {
        // Room for every write of the run (create, finalizer, status, Events) in the watch
        // history, so no watch of the operator is sent back to relist.
        history_limit: (count * 10).max(10_000),
        ..Default::default()
    });
    api.register_crds(&crds::all());
    api.create_namespace(NAMESPACE);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)
        .expect("writing the kubeconfig");
    let log_path = std::env::var_os("TRIBUTARY_BENCH_OPERATOR_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("operator.log"));
    let stderr = std::fs::File::create(&log_path).expect("creating the operator's log");

    let tag = format!("op{}", std::process::id());
    let names: Vec<String> = (0..count).map(|i| format!("{tag}-t{i:04}")).collect();

    println!("operator: {count} KafkaTopics created at once ({in_flight} creates in flight; 1-3 partitions, retention.ms each)");
    println!("broker: {bootstrap} ({broker_label})");
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

    let child = Command::new(&bin)
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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
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
    if !b.is_tansu && std::env::var_os("TRIBUTARY_BENCH_KEEP_TOPICS").is_none() {
        runtime.block_on(cleanup_broker(&bootstrap, &names));
    }

    // --- The table.
    let n = count as u64;
    let request_target = n / 100 + REQUEST_SLACK;
    let mut rows = Vec::new();
    match results.ready {
        Some(t) => rows.push(row(
            format!("time until all {count} Ready"),
            format!("{:.2} s", t.as_secs_f64()),
            format!("< {} s", READY_TARGET.as_secs()),
            verdict(t < READY_TARGET),
        )),
        None => rows.push(row(
            format!("time until all {count} Ready"),
            format!("> {} s ({} Ready)", timeout.as_secs(), results.ready_count),
            format!("< {} s", READY_TARGET.as_secs()),
            "MISS",
        )),
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
    rows.push(match peak_rss {
        Some(mib) => row(
            "operator peak RSS (VmHWM)",
            format!("{mib:.1} MiB"),
            format!("< {RSS_TARGET_MIB:.0} MiB"),
            verdict(mib < RSS_TARGET_MIB),
        ),
        None => row(
            "operator peak RSS (VmHWM)",
            "unknown",
            format!("< {RSS_TARGET_MIB:.0} MiB"),
            "MISS",
        ),
    });
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
            format!("{label}: topics changed / rewritten"),
            format!(
                "{} / {} ({} Ready)",
                r.state_changed, r.rewritten, r.still_ready
            ),
            format!("0 / - ({count} Ready)"),
            verdict(r.state_changed == 0 && r.still_ready == count),
        ));
    }
    if let Some(cpu) = cpu {
        rows.push(row(
            "operator CPU time (user + system)",
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
    println!("(requests: `total_requests` of the operator's last \"broker round trip\" log line before all were Ready, i.e. every counted request of its admin client: Metadata, DescribeConfigs, CreateTopics, ... and the cluster probe's Metadata; resync: the round trips logged after all were Ready (or after the previous resync) until every topic was resynced once; changed: status other than condition messages; rewritten: new resourceVersion)");
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
}
