//! The KafkaProducer and KafkaConsumer controllers. Each reconciles on changes to its own spec
//! or metadata (never on its own status writes: a consumer's status changes with every lag
//! observation, and reacting to that would observe again at once), on any change of what it
//! owns (Deployment, and a producer's Service) and of the KafkaTopics it names (a producer
//! rolls out once its topics are Ready).

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::Controller;
use kube::ResourceExt;

use crate::api::{KafkaConsumer, KafkaProducer, KafkaTopic};
use crate::runtime::{referring, run_controller, spec_trigger, Context, Kind, Shutdown, Watches};

/// The registration of KafkaProducer with the operator.
pub const PRODUCERS: Kind = Kind {
    name: "KafkaProducer",
    controller: producers,
};

/// The registration of KafkaConsumer with the operator.
pub const CONSUMERS: Kind = Kind {
    name: "KafkaConsumer",
    controller: consumers,
};

fn producers(watches: &Watches, ctx: Arc<Context>, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let producers = watches.objects::<KafkaProducer>();
    let store = producers.store();
    let of_topic = move |topic: Arc<KafkaTopic>| {
        referring(&store, &*topic, |p: &KafkaProducer| {
            p.spec.topics.contains(&topic.name_any())
        })
    };
    let controller =
        Controller::for_shared_stream(producers.changes(spec_trigger), producers.store())
            .owns_shared_stream(watches.metadata::<Deployment>().subscribe())
            .owns_shared_stream(watches.metadata::<Service>().subscribe())
            .watches_shared_stream(watches.objects::<KafkaTopic>().subscribe(), of_topic);
    run_controller(
        PRODUCERS.name,
        controller,
        super::producer::reconcile,
        ctx,
        shutdown,
    )
}

fn consumers(watches: &Watches, ctx: Arc<Context>, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let consumers = watches.objects::<KafkaConsumer>();
    let store = consumers.store();
    let of_topic = move |topic: Arc<KafkaTopic>| {
        referring(&store, &*topic, |c: &KafkaConsumer| {
            c.spec.topics.contains(&topic.name_any())
        })
    };
    let controller =
        Controller::for_shared_stream(consumers.changes(spec_trigger), consumers.store())
            .owns_shared_stream(watches.metadata::<Deployment>().subscribe())
            .watches_shared_stream(watches.objects::<KafkaTopic>().subscribe(), of_topic);
    run_controller(
        CONSUMERS.name,
        controller,
        super::consumer::reconcile,
        ctx,
        shutdown,
    )
}
