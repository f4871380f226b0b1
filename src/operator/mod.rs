//! `tributary operator` as a process: the controllers of every kind, registered here, the HTTP
//! endpoint (metrics, health), leader election and shutdown.

pub mod http;
pub mod leader;
pub mod process;
pub mod rbac;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::watcher;
use kube::runtime::Controller;
use kube::{Client, ResourceExt};

use crate::api::{KafkaCluster, KafkaConsumer, KafkaProducer, KafkaTopic, StreamTopology};
use crate::runtime::{
    changes, error_policy, referring, spawn_controller, spec_trigger, telemetry,
    ClusterConnections, ConnectFn, Context, Options, Scope,
};
use crate::{clusters, topics, topologies, workloads};

/// Runs every controller until `shutdown` resolves; in-flight reconciles are allowed to finish.
pub async fn run(
    client: Client,
    options: Options,
    connect: ConnectFn,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let connections = Arc::new(ClusterConnections::new(connect, options.metrics.clone()));
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let mut tasks = Vec::new();
    // For readiness (every cache filled) and the gauges read from the caches at each scrape.
    let (mut filled, mut topic_stores, mut consumer_stores) = (Vec::new(), Vec::new(), Vec::new());
    for scope in scopes {
        let scoped = Scope {
            client: &client,
            namespace: scope.as_deref(),
        };
        let config = watcher::Config::default;

        let cluster_controller = Controller::new(scoped.api::<KafkaCluster>(), config());
        let clusters = cluster_controller.store();
        filled.push(telemetry::filled(clusters.clone()));

        let (topics, trigger) = changes(scoped.api::<KafkaTopic>(), topics::trigger_hash);
        filled.push(telemetry::filled(topics.clone()));
        topic_stores.push(topics.clone());
        let topics_of_cluster = {
            let topics = topics.clone();
            move |cluster: KafkaCluster| {
                referring(&topics, &cluster, |t: &KafkaTopic| {
                    t.spec.cluster_ref == cluster.name_any()
                })
            }
        };
        // Resync: every topic of every cluster at once, so the periodic drift check is a few
        // large broker round trips instead of one per topic spread over the period.
        let resync = options.resync;
        let ticks = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(resync).await;
            Some(((), ()))
        });
        let topic_controller = Controller::for_stream(trigger, topics.clone())
            .watches(scoped.api::<KafkaCluster>(), config(), topics_of_cluster)
            .reconcile_all_on(ticks);

        // Producers, consumers and topologies reconcile on changes to their spec, metadata or
        // what they own or watch, never on their own status writes (a consumer's status changes
        // with every lag observation: reacting to it would observe again at once).
        let (producers, producer_trigger) = changes(scoped.api::<KafkaProducer>(), spec_trigger);
        let producer_controller = Controller::for_stream(producer_trigger, producers.clone());
        let producer_store = producers.clone();
        filled.push(telemetry::filled(producers.clone()));
        let producer_controller = producer_controller
            .owns(scoped.api::<Deployment>(), config())
            .owns(scoped.api::<Service>(), config())
            .watches(
                scoped.api::<KafkaTopic>(),
                config(),
                move |topic: KafkaTopic| {
                    referring(&producers, &topic, |p: &KafkaProducer| {
                        p.spec.topics.contains(&topic.name_any())
                    })
                },
            );

        let (consumers, consumer_trigger) = changes(scoped.api::<KafkaConsumer>(), spec_trigger);
        let consumer_controller = Controller::for_stream(consumer_trigger, consumers.clone());
        let consumer_store = consumers.clone();
        filled.push(telemetry::filled(consumers.clone()));
        consumer_stores.push(consumers.clone());
        let consumer_controller = consumer_controller
            .owns(scoped.api::<Deployment>(), config())
            .watches(
                scoped.api::<KafkaTopic>(),
                config(),
                move |topic: KafkaTopic| {
                    referring(&consumers, &topic, |c: &KafkaConsumer| {
                        c.spec.topics.contains(&topic.name_any())
                    })
                },
            );

        let ctx = Arc::new(Context::new(
            client.clone(),
            options.clone(),
            connections.clone(),
            clusters,
            topics,
        ));
        tasks.push(spawn_controller(
            "KafkaCluster",
            cluster_controller,
            clusters::reconcile,
            error_policy,
            ctx.clone(),
            shutdown.clone(),
        ));
        tasks.push(spawn_controller(
            "KafkaTopic",
            topic_controller,
            topics::reconcile,
            error_policy,
            ctx.clone(),
            shutdown.clone(),
        ));
        tasks.push(spawn_controller(
            "KafkaProducer",
            producer_controller,
            workloads::reconcile_producer,
            error_policy,
            ctx.clone(),
            shutdown.clone(),
        ));
        tasks.push(spawn_controller(
            "KafkaConsumer",
            consumer_controller,
            workloads::reconcile_consumer,
            error_policy,
            ctx.clone(),
            shutdown.clone(),
        ));
        // A topology reconciles when it or any child it owns changes.
        let (topologies, topology_trigger) = changes(scoped.api::<StreamTopology>(), spec_trigger);
        filled.push(telemetry::filled(topologies.clone()));
        let topology_controller = Controller::for_stream(topology_trigger, topologies)
            .owns(scoped.api::<KafkaTopic>(), config())
            .owns(scoped.api::<KafkaProducer>(), config())
            .owns(scoped.api::<KafkaConsumer>(), config());
        let children = topologies::Children {
            producers: producer_store,
            consumers: consumer_store,
        };
        tasks.push(spawn_controller(
            "StreamTopology",
            topology_controller,
            move |object, ctx| topologies::reconcile(object, ctx, children.clone()),
            error_policy,
            ctx,
            shutdown.clone(),
        ));
    }
    let _gauges = options
        .metrics
        .collect_from(telemetry::gauges(topic_stores, consumer_stores));
    let synced = tokio::spawn(telemetry::wait_synced(filled, options.synced.clone()));
    for task in tasks {
        let _ = task.await;
    }
    synced.abort();
    tracing::info!("controllers stopped");
}
