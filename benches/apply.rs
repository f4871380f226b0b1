//! End-to-end apply benchmark against a real Kafka-protocol broker: 1,000 new topics created by
//!
//!   a. `tributary apply -f FILE --bootstrap ADDR` (the release binary, as a subprocess: process
//!      start, YAML parsing, validation, snapshot, plan and the batched create);
//!   b. one hand-written batched CreateTopics with all 1,000 (rdkafka's own admin API, not
//!      Tributary's code): the broker's own limit;
//!   c. the same rdkafka API, one `create_topics` call per topic, one after the other.
//!
//! Each contender creates 1,000 NEW topics (its own name prefix) on the same broker and is timed
//! from start (process spawn / admin client creation) to all 1,000 created. The figures are
//! printed with the target (apply within 1.5x of the batched request) and the one-at-a-time
//! ratio as a plain figure (on loopback a request costs almost nothing and the broker's per-topic
//! work dominates, so that ratio says little about the batching); nothing is asserted on speed.
//!
//! Broker: `TRIBUTARY_TEST_BOOTSTRAP` if set, else a Tansu started here (see
//! tests/support/broker.rs). Binary: `TRIBUTARY_BIN`, else `target/release/tributary`, built
//! with `cargo build --release --bin tributary` first. `TRIBUTARY_BENCH_TOPICS` and
//! `TRIBUTARY_BENCH_ROUNDS` change the topic count (1000) and rounds of a and b (3).
//! Run with `scripts/bench.sh`, or `cargo bench --bench apply`.

#[path = "../tests/support/broker.rs"]
mod broker;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

const TIMEOUT: Duration = Duration::from_secs(60);
const RETENTION_MS: &str = "604800000";
const PARTITIONS: i32 = 3;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-t{i:04}")).collect()
}

/// The release binary: `TRIBUTARY_BIN`, else built (a no-op when fresh) into target/release.
fn tributary_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TRIBUTARY_BIN") {
        let p = PathBuf::from(p);
        let p = if p.is_relative() {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
        } else {
            p
        };
        assert!(
            p.exists(),
            "TRIBUTARY_BIN={} does not exist; run `cargo build --release --bin tributary`",
            p.display()
        );
        return p;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "tributary"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "cargo build --release --bin tributary failed"
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release/tributary")
}

fn admin_client(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "tributary-bench")
        .create()
        .expect("creating an rdkafka admin client")
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(TIMEOUT))
        .request_timeout(Some(TIMEOUT))
}

fn new_topic(name: &str) -> NewTopic<'_> {
    // Replication -1: the broker's default, as `tributary apply` sends for a topic without
    // spec.replicationFactor.
    NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(-1)).set("retention.ms", RETENTION_MS)
}

/// A result of one contender.
struct Run {
    took: Duration,
    /// Broker admin requests, where known.
    requests: Option<u64>,
}

/// a. `tributary apply` as a subprocess on a multi-document file of `count` KafkaTopics.
fn run_apply(bin: &Path, bootstrap: &str, dir: &Path, prefix: &str, count: usize) -> Run {
    let mut yaml = String::with_capacity(count * 200);
    for name in names(prefix, count) {
        let _ = write!(
            yaml,
            "---\napiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata:\n  name: {name}\nspec:\n  clusterRef: bench\n  partitions: {PARTITIONS}\n  config:\n    retention.ms: \"{RETENTION_MS}\"\n"
        );
    }
    let file = dir.join(format!("{prefix}.yaml"));
    std::fs::write(&file, yaml).expect("writing the manifest");

    let start = Instant::now();
    let out = Command::new(bin)
        .arg("apply")
        .arg("-f")
        .arg(&file)
        .arg("--bootstrap")
        .arg(bootstrap)
        .arg("--timeout")
        .arg(TIMEOUT.as_secs().to_string())
        .env("TRIBUTARY_LOG", "tributary=debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running tributary apply");
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stdout.lines().rev().take(10).collect();
        panic!(
            "tributary apply exited with {}\nstderr:\n{stderr}\nstdout (last lines, reversed):\n{}",
            out.status,
            tail.join("\n")
        );
    }
    let expected = format!("Applied: {count} done, 0 failed, 0 refused.");
    assert!(
        stdout.contains(&expected),
        "tributary apply did not report `{expected}`:\n{}",
        stdout.lines().last().unwrap_or_default()
    );
    Run {
        took,
        requests: requests_logged(&stderr),
    }
}

/// The `requests=N` that `tributary` logs at debug level, with any ANSI styling removed.
fn requests_logged(stderr: &str) -> Option<u64> {
    let mut plain = String::with_capacity(stderr.len());
    let mut chars = stderr.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip an escape sequence: ESC [ ... final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let total: u64 = plain
        .match_indices("requests=")
        .filter_map(|(i, m)| {
            let digits: String = plain[i + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().ok()
        })
        .sum();
    plain.contains("requests=").then_some(total)
}

fn check_results(results: Vec<rdkafka::admin::TopicResult>, expected: usize) {
    assert_eq!(results.len(), expected, "one result per topic");
    for r in results {
        if let Err((topic, code)) = r {
            panic!("CreateTopics refused {topic}: {code}");
        }
    }
}

/// b. One CreateTopics request with every topic.
async fn run_batched(bootstrap: &str, prefix: &str, count: usize) -> Run {
    let names = names(prefix, count);
    let start = Instant::now();
    let admin = admin_client(bootstrap);
    let topics: Vec<NewTopic<'_>> = names.iter().map(|n| new_topic(n)).collect();
    let results = admin
        .create_topics(&topics, &options())
        .await
        .expect("CreateTopics");
    check_results(results, count);
    Run {
        took: start.elapsed(),
        requests: Some(1),
    }
}

/// c. One CreateTopics request per topic, each awaited before the next.
async fn run_one_at_a_time(bootstrap: &str, prefix: &str, count: usize) -> Run {
    let names = names(prefix, count);
    let start = Instant::now();
    let admin = admin_client(bootstrap);
    let opts = options();
    for name in &names {
        let results = admin
            .create_topics(&[new_topic(name)], &opts)
            .await
            .expect("CreateTopics");
        check_results(results, 1);
    }
    Run {
        took: start.elapsed(),
        requests: Some(count as u64),
    }
}

/// How many topics of `prefix` with the expected partition count the broker lists.
fn listed(bootstrap: &str, prefix: &str) -> usize {
    let admin = admin_client(bootstrap);
    let metadata = admin
        .inner()
        .fetch_metadata(None, TIMEOUT)
        .expect("Metadata");
    let want = format!("{prefix}-t");
    metadata
        .topics()
        .iter()
        .filter(|t| t.name().starts_with(&want) && t.error().is_none())
        .filter(|t| t.partitions().len() == PARTITIONS as usize)
        .count()
}

/// Checks (untimed) that the broker lists every topic of `prefix`.
fn verify_created(bootstrap: &str, prefix: &str, count: usize) {
    let found = listed(bootstrap, prefix);
    assert_eq!(
        found, count,
        "the broker lists {found} of the {count} topics of {prefix} with {PARTITIONS} partitions"
    );
}

/// Removes a contender's topics (untimed), so every contender meets the same broker state.
async fn cleanup(bootstrap: &str, prefix: &str, count: usize) {
    let names = names(prefix, count);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let admin = admin_client(bootstrap);
    match admin.delete_topics(&refs, &options()).await {
        Ok(results) => {
            let failed = results.iter().filter(|r| r.is_err()).count();
            if failed > 0 {
                eprintln!("note: {failed} of {count} topics of {prefix} could not be deleted");
            }
        }
        Err(e) => eprintln!("note: deleting the topics of {prefix} failed: {e}"),
    }
    let left = listed(bootstrap, prefix);
    if left > 0 {
        eprintln!("note: {left} topics of {prefix} are still listed after deletion");
    }
}

fn median(runs: &[Run]) -> &Run {
    let mut idx: Vec<usize> = (0..runs.len()).collect();
    idx.sort_by_key(|i| runs[*i].took);
    &runs[idx[idx.len() / 2]]
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

fn main() {
    let count = env_usize("TRIBUTARY_BENCH_TOPICS", 1000);
    let rounds = env_usize("TRIBUTARY_BENCH_ROUNDS", 3);
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
    let keep = std::env::var_os("TRIBUTARY_BENCH_KEEP_TOPICS").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let tag = format!("bench{}", std::process::id());

    println!("apply: {count} new topics ({PARTITIONS} partitions, retention.ms) per contender");
    println!("broker: {bootstrap} ({broker_label})");
    println!("tributary: {}", bin.display());

    // Warm-up, untimed: the broker's first topics, the binary in the page cache, librdkafka.
    let warm = count.min(50);
    run_apply(&bin, &bootstrap, dir.path(), &format!("{tag}-warm-a"), warm);
    runtime.block_on(run_batched(&bootstrap, &format!("{tag}-warm-b"), warm));
    if !keep {
        runtime.block_on(cleanup(&bootstrap, &format!("{tag}-warm-a"), warm));
        runtime.block_on(cleanup(&bootstrap, &format!("{tag}-warm-b"), warm));
    }

    // a and b alternate, swapping which goes first each round.
    let mut applies = Vec::new();
    let mut batches = Vec::new();
    for round in 0..rounds {
        let pa = format!("{tag}-r{round}-apply");
        let pb = format!("{tag}-r{round}-batch");
        let do_a = || {
            let r = run_apply(&bin, &bootstrap, dir.path(), &pa, count);
            verify_created(&bootstrap, &pa, count);
            if !keep {
                runtime.block_on(cleanup(&bootstrap, &pa, count));
            }
            r
        };
        let a = if round % 2 == 0 { Some(do_a()) } else { None };
        let rb = runtime.block_on(run_batched(&bootstrap, &pb, count));
        verify_created(&bootstrap, &pb, count);
        if !keep {
            runtime.block_on(cleanup(&bootstrap, &pb, count));
        }
        let ra = a.unwrap_or_else(do_a);
        println!(
            "  round {}: apply {:>9.1} ms, batched {:>9.1} ms",
            round + 1,
            ms(ra.took),
            ms(rb.took)
        );
        applies.push(ra);
        batches.push(rb);
    }
    let pc = format!("{tag}-single");
    let single = runtime.block_on(run_one_at_a_time(&bootstrap, &pc, count));
    verify_created(&bootstrap, &pc, count);
    if !keep {
        runtime.block_on(cleanup(&bootstrap, &pc, count));
    }

    let a = median(&applies);
    let b_run = median(&batches);
    let requests = |r: &Run| {
        r.requests
            .map(|n| n.to_string())
            .unwrap_or_else(|| "n/a".into())
    };
    println!();
    println!(
        "{:<40} {:>12} {:>16}",
        "contender", "wall ms", "admin requests"
    );
    println!(
        "{:<40} {:>12.1} {:>16}",
        format!("a. tributary apply (median of {rounds})"),
        ms(a.took),
        requests(a)
    );
    println!(
        "{:<40} {:>12.1} {:>16}",
        format!("b. one batched CreateTopics (median of {rounds})"),
        ms(b_run.took),
        requests(b_run)
    );
    println!(
        "{:<40} {:>12.1} {:>16}",
        "c. one CreateTopics per topic",
        ms(single.took),
        requests(&single)
    );
    println!();
    let vs_batched = a.took.as_secs_f64() / b_run.took.as_secs_f64();
    let vs_single = single.took.as_secs_f64() / a.took.as_secs_f64();
    println!(
        "apply / batched        = {vs_batched:>6.2}x   target <= 1.5x: {}",
        verdict(vs_batched <= 1.5)
    );
    println!("one-at-a-time / apply  = {vs_single:>6.2}x   (figure only, no target)");
    println!("(admin requests for a: logged by tributary, Metadata + DescribeConfigs (only for existing topics) + CreateTopics; for b and c: CreateTopics calls made)");
}
