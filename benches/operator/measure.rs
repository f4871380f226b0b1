//! The run: create every KafkaTopic, follow them until Ready, check the broker, then measure
//! the resyncs.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use tributary::api::{KafkaCluster, KafkaClusterSpec, KafkaTopic, TopicDefaults};

use crate::kubernetes::{
    create_all, is_ready, list_topics, not_ready_reasons, ready_since, verify_broker,
    wait_cluster_ready,
};
use crate::operator_log::{totals, Log, Trips};
use crate::process::{proc_status_kib, CpuMark};
use crate::{CLUSTER, NAMESPACE, POLL};

/// How the bench follows the KafkaTopics until all are Ready.
enum Tracker {
    Watch {
        stream: futures::stream::BoxStream<'static, watcher::Result<watcher::Event<KafkaTopic>>>,
        ready: HashMap<String, bool>,
    },
    List,
}

/// The median and largest time of `n` ConfigMap creates (then deleted), one after the other:
/// what one write costs the API server now (the operator does not watch ConfigMaps).
async fn write_latency(
    client: &Client,
    tag: &str,
    n: usize,
) -> Result<(Duration, Duration), String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(format!("latency-{tag}-{i}"));
        let start = Instant::now();
        api.create(&PostParams::default(), &cm)
            .await
            .map_err(|e| format!("creating a ConfigMap: {e}"))?;
        took.push(start.elapsed());
    }
    for i in 0..n {
        let _ = api
            .delete(&format!("latency-{tag}-{i}"), &DeleteParams::default())
            .await;
    }
    took.sort();
    Ok((took[took.len() / 2], took[took.len() - 1]))
}

/// `METHOD resource[/subresource][ list| watch]` of a request path.
fn classify(method: &str, path: &str) -> String {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let base = match segs.first() {
        Some(&"api") => 2,
        Some(&"apis") => 3,
        _ => return format!("{method} {path}"),
    };
    let mut rest = segs.get(base..).unwrap_or(&[]);
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        rest = &rest[2..];
    }
    let Some(resource) = rest.first() else {
        return format!("{method} {path}");
    };
    let sub = rest.get(2).map(|s| format!("/{s}")).unwrap_or_default();
    let kind = if query
        .split('&')
        .any(|q| q == "watch=true" || q == "watch=1")
    {
        " watch"
    } else if method == "GET" && rest.len() == 1 {
        " list"
    } else {
        ""
    };
    format!("{method} {resource}{sub}{kind}")
}

/// One resync of every topic.
pub(crate) struct Resync {
    pub(crate) trips: Trips,
    /// Every topic was resynced (the round trips carried as many intents as there are topics).
    pub(crate) complete: bool,
    pub(crate) wait: Duration,
    /// KafkaTopics whose status changed beyond condition messages.
    pub(crate) state_changed: usize,
    /// KafkaTopics written (new resourceVersion).
    pub(crate) rewritten: usize,
    pub(crate) still_ready: usize,
    /// One changed KafkaTopic, before and after.
    pub(crate) example: Option<String>,
    /// KafkaTopic status writes and Events the API server took during the resync.
    pub(crate) status_writes: usize,
    pub(crate) events: usize,
}

/// KafkaTopic status writes and Events (created or updated) among API requests, by kind (see
/// [`classify`]).
pub(crate) fn writes_and_events(requests: &BTreeMap<String, (usize, usize)>) -> (usize, usize) {
    let n = |k: &str| requests.get(k).map_or(0, |v| v.0 - v.1);
    (
        n("PATCH kafkatopics/status") + n("PUT kafkatopics/status"),
        n("POST events") + n("PATCH events") + n("PUT events"),
    )
}

fn requests_by_kind(api: &kube_emulator::ApiServer) -> BTreeMap<String, (usize, usize)> {
    let mut out = BTreeMap::new();
    for r in api.requests() {
        let e = out.entry(classify(&r.method, &r.path)).or_insert((0, 0));
        e.0 += 1;
        if r.status >= 400 {
            e.1 += 1;
        }
    }
    out
}

/// A topic's state: its status without the conditions' human-readable messages.
fn state_of(status: &Value) -> Value {
    let mut status = status.clone();
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions {
            if let Some(c) = c.as_object_mut() {
                c.remove("message");
            }
        }
    }
    status
}

/// What the run found; printed at the end whatever happened.
#[derive(Default)]
pub(crate) struct Results {
    pub(crate) cluster_ready: Option<Duration>,
    pub(crate) created: Option<Duration>,
    pub(crate) ready: Option<Duration>,
    pub(crate) ready_count: usize,
    pub(crate) not_ready: BTreeMap<String, usize>,
    pub(crate) broker_partitions_ok: Option<usize>,
    pub(crate) broker_config_ok: Option<usize>,
    pub(crate) broker_wrong: Vec<String>,
    pub(crate) until_ready: Option<Trips>,
    pub(crate) resyncs: Vec<Resync>,
    /// Topics a list saw Ready and a later list saw not Ready (name and status).
    pub(crate) flaps: Vec<String>,
    /// How long each of the bench's lists of every KafkaTopic took (list polling).
    pub(crate) list_times: Vec<Duration>,
    /// From the first create to the latest Ready lastTransitionTime (+0.5 s: whole seconds).
    pub(crate) last_ready_transition: Option<Duration>,
    /// ConfigMap create latency (median, max) with the store empty and with every topic.
    pub(crate) write_latency_empty: Option<(Duration, Duration)>,
    pub(crate) write_latency_full: Option<(Duration, Duration)>,
    /// API requests served from the first create until all were Ready, by kind.
    pub(crate) api_requests: BTreeMap<String, (usize, usize)>,
    /// The operator's RSS once its KafkaCluster was Ready, before any KafkaTopic (KiB).
    pub(crate) rss_base_kib: Option<u64>,
    /// CPU spent from the first create until all were Ready.
    pub(crate) cpu_until_ready: Option<CpuMark>,
    pub(crate) error: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    api: &kube_emulator::ApiServer,
    client: Client,
    bootstrap: String,
    names: Vec<String>,
    in_flight: usize,
    resync: Duration,
    resyncs: usize,
    timeout: Duration,
    list_poll: bool,
    log: &mut Log,
    operator_pid: u32,
    emulator_thread: &str,
    out: &mut Results,
) -> Result<(), String> {
    let count = names.len();
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NAMESPACE);
    let topics: Api<KafkaTopic> = Api::namespaced(client.clone(), NAMESPACE);

    let cluster = KafkaCluster::new(
        CLUSTER,
        KafkaClusterSpec {
            bootstrap_servers: vec![bootstrap.clone()],
            tls: None,
            sasl: None,
            client_config: BTreeMap::new(),
            request_timeout_seconds: Some(30),
            topic_defaults: Some(TopicDefaults {
                replication_factor: Some(1),
                config: BTreeMap::new(),
            }),
        },
    );
    clusters
        .patch(
            CLUSTER,
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&cluster),
        )
        .await
        .map_err(|e| format!("creating the KafkaCluster: {e}"))?;
    // The operator connects and probes first, so its cluster status write (which wakes every
    // topic of the cluster) happens before the topics exist.
    out.cluster_ready = Some(wait_cluster_ready(&clusters, Duration::from_secs(60)).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    log.poll();
    let trips_before = log.trips.len();

    let mut tracker = if list_poll {
        Tracker::List
    } else {
        Tracker::Watch {
            stream: watcher(topics.clone(), watcher::Config::default())
                .default_backoff()
                .boxed(),
            ready: HashMap::new(),
        }
    };
    let write_empty = write_latency(&client, "empty", 20).await?;
    out.write_latency_empty = Some(write_empty);
    out.rss_base_kib = proc_status_kib(operator_pid, "VmRSS:");
    api.clear_requests();
    let cpu_start = CpuMark::now(operator_pid, emulator_thread);

    // The clock starts as the first create is sent.
    let start = Instant::now();
    let start_wall = Timestamp::now();
    let creating = {
        let topics = topics.clone();
        let names = names.clone();
        tokio::spawn(async move {
            let r = create_all(topics, names, in_flight).await;
            (r, start.elapsed())
        })
    };
    let mut creating = Some(creating);
    let mut last_report = Instant::now();
    let mut last_list = Instant::now();
    // Topics seen Ready by a list, and the list that found all of them Ready.
    let mut seen_ready: std::collections::HashSet<String> = Default::default();
    let mut last_state: Option<HashMap<String, (bool, String, Value)>> = None;
    let mut created: usize;
    loop {
        // Either a watch of the namespace's KafkaTopics (the default: the bench's own cost
        // stays small), or (TRIBUTARY_BENCH_OPERATOR_POLL=list) a list of them every 250 ms.
        let ready = match &mut tracker {
            Tracker::Watch { stream, ready } => {
                match tokio::time::timeout(POLL, stream.next()).await {
                    Ok(Some(Ok(event))) => match event {
                        watcher::Event::Apply(t) | watcher::Event::InitApply(t) => {
                            let r = t.status.as_ref().is_some_and(|s| is_ready(&s.conditions));
                            let was = ready.insert(t.name_any(), r);
                            if was == Some(true) && !r {
                                out.flaps.push(format!(
                                    "{}: {}",
                                    t.name_any(),
                                    serde_json::to_value(&t.status).unwrap_or(Value::Null)
                                ));
                            }
                        }
                        watcher::Event::Delete(t) => {
                            ready.remove(&t.name_any());
                        }
                        watcher::Event::Init | watcher::Event::InitDone => {}
                    },
                    Ok(Some(Err(e))) => eprintln!("  note: the bench's watch: {e}"),
                    Ok(None) => return Err("the bench's watch ended".into()),
                    Err(_) => {}
                }
                created = ready.len();
                ready.values().filter(|r| **r).count()
            }
            Tracker::List => {
                // One every 250 ms (back to back when a list takes longer).
                tokio::time::sleep(POLL.saturating_sub(last_list.elapsed())).await;
                last_list = Instant::now();
                let listed = list_topics(&topics).await;
                out.list_times.push(last_list.elapsed());
                match listed {
                    Ok(state) => {
                        created = state.len();
                        for (name, t) in &state {
                            if t.0 {
                                seen_ready.insert(name.clone());
                            } else if seen_ready.remove(name) {
                                out.flaps.push(format!("{name}: {}", t.2));
                            }
                        }
                        let ready = state.values().filter(|t| t.0).count();
                        last_state = Some(state);
                        ready
                    }
                    Err(e) => {
                        eprintln!("  note: listing KafkaTopics failed: {e}");
                        continue;
                    }
                }
            }
        };
        if creating.as_ref().is_some_and(|c| c.is_finished()) {
            let (r, took) = creating.take().unwrap().await.map_err(|e| e.to_string())?;
            r?;
            out.created = Some(took);
        }
        out.ready_count = ready;
        if creating.is_none() && created == count && ready == count {
            out.ready = Some(start.elapsed());
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            log.poll();
            println!(
                "  {:>5.1} s: {created} created, {ready} Ready, {} round trips",
                start.elapsed().as_secs_f64(),
                log.trips.len() - trips_before
            );
        }
        if start.elapsed() > timeout {
            if let Ok(state) = list_topics(&topics).await {
                out.not_ready = not_ready_reasons(&state);
            }
            log.poll();
            out.until_ready = Some(totals(&log.trips[trips_before..]));
            return Err(format!(
                "only {ready} of {count} KafkaTopics Ready after {timeout:?}"
            ));
        }
    }
    out.cpu_until_ready = Some(CpuMark::now(operator_pid, emulator_thread).since(&cpu_start));
    drop(tracker);
    out.api_requests = requests_by_kind(api);
    let ready_at = out.ready.unwrap();
    log.poll();
    let trips_at_ready = log.trips.len();
    out.until_ready = Some(totals(&log.trips[trips_before..trips_at_ready]));
    println!(
        "  {:>5.1} s: all {count} Ready ({} round trips); checking the broker",
        ready_at.as_secs_f64(),
        trips_at_ready - trips_before
    );
    out.write_latency_full = Some(write_latency(&client, "full", 20).await?);
    if ready_at >= resync {
        eprintln!("note: Ready took longer than the resync period ({resync:?}): resyncs already ran while topics were being created (in the figures until Ready), and the first resync below may be mixed with them");
    }

    match verify_broker(&bootstrap, &names).await {
        Ok((p, c, wrong)) => {
            out.broker_partitions_ok = Some(p);
            out.broker_config_ok = Some(c);
            out.broker_wrong = wrong;
        }
        Err(e) => out.broker_wrong = vec![format!("snapshot failed: {e}")],
    }

    // Steady state: the topics' requeues fire `resync` after their last reconcile. The first
    // resync after creation and the next ones are measured apart (the first may still rewrite
    // statuses whose wording depended on what creation did).
    let mut before = list_topics(&topics)
        .await
        .map_err(|e| format!("listing: {e}"))?;
    // When the operator wrote the last Ready (the conditions' lastTransitionTime, whole
    // seconds), in the list that found every topic Ready.
    let at_ready = match &last_state {
        Some(state) => state,
        None => &before,
    };
    out.last_ready_transition = at_ready
        .values()
        .filter_map(|t| ready_since(&t.2))
        .max()
        .map(|last| {
            let d = last.duration_since(start_wall).as_secs_f64() + 0.5;
            Duration::from_secs_f64(d.max(0.0))
        });
    let mut mark = trips_at_ready;
    for round in 1..=resyncs {
        println!(
            "  waiting for resync {round} (resync period {:.0} s; operator RSS now {:.1} MiB)",
            resync.as_secs_f64(),
            proc_status_kib(operator_pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0
        );
        let wait_start = Instant::now();
        api.clear_requests();
        let wait_limit = resync + ready_at + Duration::from_secs(120);
        let mut quiet_since = Instant::now();
        let mut seen = log.trips.len();
        let mut complete = false;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            log.poll();
            if log.trips.len() != seen {
                seen = log.trips.len();
                quiet_since = Instant::now();
            }
            let intents: u64 = log.trips[mark..].iter().map(|t| t.intents).sum();
            // Every topic resynced once; the quiet period lets a round trip whose intents were
            // gathered but not yet logged land (when the resync is spread wider than the
            // resync period, round trips never stop: then the count alone decides).
            if intents >= count as u64
                && (quiet_since.elapsed() >= Duration::from_secs(3)
                    || ready_at + Duration::from_secs(3) >= resync)
            {
                complete = true;
                break;
            }
            if wait_start.elapsed() > wait_limit {
                break;
            }
        }
        let trips = totals(&log.trips[mark..]);
        mark = log.trips.len();
        let (status_writes, events) = writes_and_events(&requests_by_kind(api));
        let after = list_topics(&topics)
            .await
            .map_err(|e| format!("listing: {e}"))?;
        let differs = |n: &String, f: &dyn Fn(&(bool, String, Value)) -> Value| match (
            before.get(n),
            after.get(n),
        ) {
            (Some(b), Some(a)) => f(b) != f(a),
            _ => true,
        };
        let state_changed: Vec<&String> = names
            .iter()
            .filter(|n| differs(n, &|t| state_of(&t.2)))
            .collect();
        let rewritten = names
            .iter()
            .filter(|n| differs(n, &|t| Value::String(t.1.clone())))
            .count();
        let example = state_changed
            .first()
            .copied()
            .or_else(|| {
                names
                    .iter()
                    .find(|n| differs(n, &|t| Value::String(t.1.clone())))
            })
            .map(|name| {
                let show = |t: Option<&(bool, String, Value)>| {
                    t.map(|t| format!("resourceVersion {}, status {}", t.1, t.2))
                        .unwrap_or_else(|| "missing".into())
                };
                format!(
                    "{name}\n    before: {}\n    after:  {}",
                    show(before.get(name)),
                    show(after.get(name))
                )
            });
        out.resyncs.push(Resync {
            trips,
            complete,
            wait: wait_start.elapsed(),
            state_changed: state_changed.len(),
            rewritten,
            still_ready: after.values().filter(|t| t.0).count(),
            example,
            status_writes,
            events,
        });
        before = after;
    }
    Ok(())
}
