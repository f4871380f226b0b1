//! `tributary operator` as a process: the controllers of every kind, registered here, the HTTP
//! endpoint (metrics, health), leader election and shutdown.

pub mod http;
pub mod leader;
pub mod process;
pub mod rbac;

use std::sync::Arc;

use futures::FutureExt;
use kube::Client;

use crate::api::{
    KafkaCluster, KafkaConsumer, KafkaOffsetReset, KafkaProducer, KafkaTopic, KafkaUser,
    StreamTopology,
};
use crate::runtime::metrics::Collector;
use crate::runtime::{telemetry, ClusterConnections, ConnectFn, Context, Kind, Options, Watches};
use crate::{clusters, offsets, topics, topologies, users, workloads};

/// Every kind the operator reconciles. A new kind is a room of its own plus one line here.
pub const KINDS: &[Kind] = &[
    clusters::KIND,
    topics::KIND,
    users::KIND,
    workloads::PRODUCERS,
    workloads::CONSUMERS,
    topologies::KIND,
    offsets::KIND,
];

/// `tributary_object_not_ready` of every kind, from one scope's caches (a new kind: one line).
fn not_ready_gauges(watches: &Watches) -> Vec<Collector> {
    vec![
        telemetry::not_ready(watches.objects::<KafkaCluster>().store()),
        telemetry::not_ready(watches.objects::<KafkaTopic>().store()),
        telemetry::not_ready(watches.objects::<KafkaProducer>().store()),
        telemetry::not_ready(watches.objects::<KafkaConsumer>().store()),
        telemetry::not_ready(watches.objects::<StreamTopology>().store()),
        telemetry::not_ready(watches.objects::<KafkaUser>().store()),
        telemetry::not_ready(watches.objects::<KafkaOffsetReset>().store()),
    ]
}

/// Runs every controller until `shutdown` resolves; in-flight reconciles are allowed to finish.
///
/// Per watched scope (each namespace of [`Options::namespaces`], or the whole cluster), every
/// kind's controller is built on one set of [`Watches`]: each kind is watched once, however
/// many controllers read it.
pub async fn run_controllers(
    client: Client,
    options: Options,
    connect: ConnectFn,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = shutdown.boxed().shared();
    let connections = Arc::new(ClusterConnections::new(connect, options.metrics.clone()));
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let mut tasks = Vec::new();
    // For readiness (every cache filled) and the gauges read from the caches at each scrape.
    let (mut filled, mut topic_stores, mut consumer_stores) = (Vec::new(), Vec::new(), Vec::new());
    let mut not_ready = Vec::new();
    for scope in scopes {
        let watches = Watches::new(client.clone(), scope, options.watch_health.clone());
        let ctx = Arc::new(Context::new(
            client.clone(),
            options.clone(),
            connections.clone(),
            watches.objects::<KafkaCluster>().store(),
            watches.objects::<KafkaTopic>().store(),
        ));
        for kind in KINDS {
            tasks.push(tokio::spawn((kind.controller)(
                &watches,
                ctx.clone(),
                shutdown.clone(),
            )));
        }
        topic_stores.push(watches.objects::<KafkaTopic>().store());
        consumer_stores.push(watches.objects::<KafkaConsumer>().store());
        not_ready.extend(not_ready_gauges(&watches));
        tracing::debug!(namespace = ?watches.namespace(), kinds = ?watches.kinds(), "watching");
        filled.extend(watches.filled());
        // Last, once every controller has subscribed to the changes it needs.
        tasks.extend(watches.start(shutdown.clone()));
    }
    let _gauges = options.metrics.collect_from(telemetry::gauges(
        topic_stores,
        consumer_stores,
        options.watch_health.clone(),
    ));
    let _not_ready: Vec<_> = not_ready
        .into_iter()
        .map(|c| options.metrics.collect_from(c))
        .collect();
    let synced = tokio::spawn(telemetry::wait_synced(filled, options.synced.clone()));
    for task in tasks {
        let _ = task.await;
    }
    synced.abort();
    tracing::info!("controllers stopped");
}
