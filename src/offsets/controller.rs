//! The KafkaOffsetReset controller: reconciles a reset when its spec, metadata or checkpoints
//! change ([`super::reconcile::trigger`]), and again when a step asks (the waiting phases poll).

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::runtime::Controller;

use super::reconcile::{trigger, Stores};
use crate::api::{KafkaConsumer, KafkaOffsetReset};
use crate::runtime::{run_controller, Context, Kind, Shutdown, Watches};

/// The registration of KafkaOffsetReset with the operator.
pub const KIND: Kind = Kind {
    name: "KafkaOffsetReset",
    controller,
};

fn controller(watches: &Watches, ctx: Arc<Context>, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let resets = watches.objects::<KafkaOffsetReset>();
    let stores = Arc::new(Stores {
        resets: resets.store(),
        consumers: watches.objects::<KafkaConsumer>().store(),
    });
    let controller = Controller::for_shared_stream(resets.changes(trigger), resets.store());
    let reconcile = move |reset, ctx| super::reconcile::reconcile(reset, ctx, stores.clone());
    run_controller(KIND.name, controller, reconcile, ctx, shutdown)
}
