//! The StreamTopology controller: reconciles a topology when its spec or metadata change (never
//! on its own status writes) and when any child it owns changes, status included (its status
//! aggregates theirs).

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::runtime::Controller;

use super::reconcile::Children;
use crate::api::{KafkaConsumer, KafkaProducer, KafkaTopic, StreamTopology};
use crate::runtime::{run_controller, spec_trigger, Context, Kind, Shutdown, Watches};

/// The registration of StreamTopology with the operator.
pub const KIND: Kind = Kind {
    name: "StreamTopology",
    controller,
};

fn controller(watches: &Watches, ctx: Arc<Context>, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let topologies = watches.objects::<StreamTopology>();
    let producers = watches.objects::<KafkaProducer>();
    let consumers = watches.objects::<KafkaConsumer>();
    let children = Children {
        producers: producers.store(),
        consumers: consumers.store(),
    };
    let controller =
        Controller::for_shared_stream(topologies.changes(spec_trigger), topologies.store())
            .owns_shared_stream(watches.objects::<KafkaTopic>().subscribe())
            .owns_shared_stream(producers.subscribe())
            .owns_shared_stream(consumers.subscribe());
    let reconcile = move |topology, ctx| super::reconcile(topology, ctx, children.clone());
    run_controller(KIND.name, controller, reconcile, ctx, shutdown)
}
