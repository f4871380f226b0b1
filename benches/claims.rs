//! Conflict lookups at scale: the question every KafkaTopic reconcile asks — does an older
//! KafkaTopic claim my broker topic on my cluster? — answered the old way (copy the KafkaTopic
//! cache with `Store::state` and scan it with `topics::conflict_owner`) and by the claims index
//! (`topics::Claims`, kept in step with the watch), at 2,000, 10,000 and 50,000 KafkaTopics.
//!
//! The topics are spread over 20 namespaces and two clusters; every hundredth claims the
//! broker topic of an older one of its namespace and cluster (a conflict); names and uids look
//! real. Printed
//! side by side: the time of one lookup each way (the scan over a sample of the topics, the
//! index over all of them, best of a few rounds), what a burst of one lookup per topic costs
//! each way (n lookups: n² work for the scan), the time the index takes per watch event, and
//! the heap the index holds per topic (bytes requested from the allocator, counted here; the
//! allocator's own overhead is not included). Both ways must give the same answers; nothing is
//! asserted on speed. `TRIBUTARY_BENCH_CLAIMS_TOPICS` (comma-separated) changes the sizes.
//! Run with `cargo bench --bench claims`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use tributary::api::{DeletionPolicy, KafkaTopic, KafkaTopicSpec};
use tributary::runtime::Index;
use tributary::topics::{conflict_owner, Claims};

/// The heap in use, as requested from the system allocator.
static IN_USE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is passed on unchanged to the system allocator; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: [usize; 3] = [2_000, 10_000, 50_000];
/// Topics whose lookup the scan times (spread evenly over all of them).
const SCAN_SAMPLE: usize = 200;
const ROUNDS: usize = 3;

fn topics(n: usize) -> Vec<KafkaTopic> {
    (0..n)
        .map(|i| {
            let name = format!("svc{}.zone-{}.events-{i:05}", i % 40, i % 17);
            let mut t = KafkaTopic::new(
                &name,
                KafkaTopicSpec {
                    cluster_ref: ["prod", "analytics"][i % 2].into(),
                    // Every hundredth claims the broker topic of the one two before it: same
                    // namespace (a block of 100), same cluster (same parity).
                    topic_name: (i % 100 == 99).then(|| {
                        format!(
                            "svc{}.zone-{}.events-{:05}",
                            (i - 2) % 40,
                            (i - 2) % 17,
                            i - 2
                        )
                    }),
                    partitions: 6,
                    replication_factor: Some(3),
                    config: BTreeMap::from([
                        ("retention.ms".to_owned(), "604800000".to_owned()),
                        ("cleanup.policy".to_owned(), "delete".to_owned()),
                    ]),
                    deletion_policy: DeletionPolicy::Retain,
                },
            );
            t.metadata.namespace = Some(format!("team-{:02}", (i / 100) % 20));
            t.metadata.uid = Some(format!("{:08x}-7a1b-4c2d-9e3f-{:012x}", i, i * 7919));
            t.metadata.creation_timestamp = Some(Time(
                Timestamp::from_second(1_700_000_000 + i as i64).unwrap(),
            ));
            t.metadata.generation = Some(1);
            t.metadata.resource_version = Some((1000 + i).to_string());
            t
        })
        .collect()
}

/// The best of `ROUNDS` runs of `f` over `items`, per item.
fn per_item<T>(items: &[T], mut f: impl FnMut(&T)) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for item in items {
                f(item);
            }
            start.elapsed() / items.len().max(1) as u32
        })
        .min()
        .unwrap_or_default()
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.2} µs", s * 1e6)
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("TRIBUTARY_BENCH_CLAIMS_TOPICS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| SIZES.to_vec());
    println!(
        "conflict lookups (one per KafkaTopic reconcile): old scan of the cache vs the claims index"
    );
    println!(
        "{:>8} {:>9} | {:>12} {:>12} {:>9} | {:>14} {:>14} | {:>11} {:>11}",
        "topics",
        "conflicts",
        "scan/lookup",
        "index/lookup",
        "speed-up",
        "burst: scan",
        "burst: index",
        "index/event",
        "index heap"
    );
    for n in sizes {
        let topics = topics(n);
        let events: Vec<Event<KafkaTopic>> = topics.iter().cloned().map(Event::Apply).collect();

        let mut writer: Writer<KafkaTopic> = Writer::default();
        let store = writer.as_reader();
        for e in &events {
            writer.apply_watcher_event(e);
        }

        let before = IN_USE.load(Ordering::SeqCst);
        let claims = Claims::default();
        let start = Instant::now();
        for e in &events {
            claims.observe(e);
        }
        let per_event = start.elapsed() / n as u32;
        let heap = IN_USE.load(Ordering::SeqCst) - before;

        let asks: Vec<(Arc<KafkaTopic>, String)> = store
            .state()
            .into_iter()
            .map(|t| {
                let name = t.broker_topic_name().unwrap().to_owned();
                (t, name)
            })
            .collect();
        let sample: Vec<&(Arc<KafkaTopic>, String)> =
            asks.iter().step_by((n / SCAN_SAMPLE).max(1)).collect();

        // The same answers both ways (over the sample), and the conflicts seeded are found.
        for (t, name) in &sample {
            assert_eq!(
                conflict_owner(t, name, &store.state()),
                claims.owner(t, name),
                "{name}"
            );
        }
        let conflicts = asks
            .iter()
            .filter(|(t, name)| claims.owner(t, name).is_some())
            .count();
        assert_eq!(conflicts, n / 100, "one conflict in a hundred");

        let scan = per_item(&sample, |(t, name)| {
            black_box(conflict_owner(t, name, &store.state()));
        });
        let index = per_item(&asks, |(t, name)| {
            black_box(claims.owner(t, name));
        });
        println!(
            "{:>8} {:>9} | {:>12} {:>12} {:>8.0}x | {:>14} {:>14} | {:>11} {:>9} B",
            n,
            conflicts,
            human(scan),
            human(index),
            scan.as_secs_f64() / index.as_secs_f64().max(1e-12),
            human(scan * n as u32),
            human(index * n as u32),
            human(per_event),
            heap / n as isize,
        );
    }
    println!(
        "scan/lookup includes copying the cache (Store::state), as every reconcile did; burst = \
         one lookup per topic (n lookups); index heap = bytes the index holds per topic"
    );
}
