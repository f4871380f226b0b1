//! The KafkaCluster reconciler: connect, probe (cluster id, brokers, controller), status.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use crate::api::KafkaCluster;
use crate::api::Reason;
use crate::clusters::validate_cluster;
use crate::kafka::api_versions;
use crate::runtime::status::{apply_verdict, Verdict};
use crate::runtime::{write_status, Context, Error};

pub async fn reconcile(cluster: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let id = crate::runtime::object_key(&*cluster);
    let generation = cluster.metadata.generation;
    let now = crate::runtime::status::now();
    let mut status = cluster.status.clone().unwrap_or_default();
    status.observed_generation = generation;

    let errors = validate_cluster(&cluster);
    let (verdict, requeue) = if !errors.is_empty() {
        let message = crate::model::FieldError::join(&errors);
        (
            Verdict {
                ready: false,
                reconciling: false,
                stalled: true,
                reason: Reason::InvalidSpec,
                message,
            },
            None,
        )
    } else {
        let probe = match ctx.connections.connection(&cluster, &ctx.client).await {
            Ok(connection) => connection.admin.cluster_info().await,
            Err(e) => Err(e),
        };
        match probe {
            Ok(info) => {
                status.cluster_id = info.cluster_id;
                status.brokers = Some(info.brokers.len() as i32);
                status.controller = info.controller;
                ctx.backoff.reset(&id);
                let mut message = format!("{} broker(s) reachable", info.brokers.len());
                if cluster.spec.tls.is_none() {
                    let timeout = Duration::from_secs(
                        cluster.spec.request_timeout_seconds.unwrap_or(10).max(1) as u64,
                    );
                    match api_versions::probe(&cluster.spec.bootstrap_servers[0], timeout).await {
                        Ok(apis) => {
                            status.unsupported_apis = api_versions::missing_admin_apis(&apis)
                        }
                        Err(e) => tracing::debug!(cluster = %id, error = %e, "ApiVersions probe"),
                    }
                    if !status.unsupported_apis.is_empty() {
                        message.push_str(&format!(
                            "; the broker does not serve {}",
                            status.unsupported_apis.join(", ")
                        ));
                    }
                }
                (
                    Verdict {
                        ready: true,
                        reconciling: false,
                        stalled: false,
                        reason: Reason::Connected,
                        message,
                    },
                    Some(ctx.options.probe_interval),
                )
            }
            Err(e) => {
                let stalled = e.needs_a_fix();
                let delay = ctx.backoff.next(&id).min(ctx.options.probe_interval);
                (
                    Verdict {
                        ready: false,
                        reconciling: !stalled,
                        stalled,
                        reason: e.reason(),
                        message: e.to_string(),
                    },
                    Some(delay),
                )
            }
        }
    };
    apply_verdict(&mut status.conditions, &verdict, generation, &now);
    let api: Api<KafkaCluster> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    write_status(&api, &cluster, cluster.status.as_ref(), &status).await?;
    Ok(requeue
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}
