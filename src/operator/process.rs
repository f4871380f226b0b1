//! `tributary operator` as a process: the HTTP endpoint (metrics, health), leader election,
//! the controllers, and shutdown.
//!
//! Without leader election the controllers start at once. With it, the replica waits for the
//! Lease ([`crate::operator::leader`]), runs the controllers while it holds it, and on SIGTERM stops them
//! (in-flight reconciles finish), then releases the Lease so a standby takes over at once. A
//! replica that fails to renew the Lease, or sees it deleted, cleared or taken (it watches it),
//! exits with status 1 at once, dropping in-flight work, before any other replica may take the
//! Lease over.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};

use super::http::{self, Health, Role};
use super::leader::{Elector, Timing};
use crate::runtime::{ConnectFn, Options};

/// Leader-election settings.
#[derive(Debug, Clone)]
pub struct Election {
    /// Namespace and name of the Lease.
    pub namespace: String,
    pub lease_name: String,
    /// This replica's holder identity (unique per replica, e.g. the pod name).
    pub identity: String,
    pub lease_duration: Duration,
}

/// How the process runs, beyond the controllers' [`Options`].
#[derive(Debug, Clone)]
pub struct Process {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub http_address: SocketAddr,
    /// `None`: no leader election; this replica reconciles.
    pub election: Option<Election>,
}

/// Serves the operator process until `shutdown` resolves (SIGTERM): the HTTP endpoint, then
/// leader election (when configured), then [`super::run_controllers`] while leading.
pub async fn serve(
    client: Client,
    options: Options,
    connect: ConnectFn,
    process: Process,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ExitCode> {
    let health = Health::new(options.metrics.clone());
    let listener = http::bind(process.http_address)
        .await
        .with_context(|| format!("listening on --http-address {}", process.http_address))?;
    tracing::info!(
        address = %listener.local_addr().unwrap_or(process.http_address),
        "serving /metrics, /healthz and /readyz"
    );
    tokio::spawn(http::serve(listener, health.clone()));

    let stopping = {
        let health = health.clone();
        async move {
            shutdown.await;
            health.set_stopping();
        }
        .boxed()
        .shared()
    };
    let options = Options {
        synced: health.synced(),
        watch_health: health.watch_health(),
        ..options
    };
    let Some(election) = process.election else {
        health.set_role(Role::Leader);
        super::run_controllers(client, options, connect, stopping).await;
        return Ok(ExitCode::SUCCESS);
    };

    let api: Api<Lease> = Api::namespaced(client.clone(), &election.namespace);
    let mut elector = Elector::new(
        api,
        election.lease_name.clone(),
        election.identity.clone(),
        Timing::new(election.lease_duration),
    );
    tracing::info!(
        identity = %election.identity,
        lease = %format!("{}/{}", election.namespace, election.lease_name),
        duration = ?election.lease_duration,
        "leader election: waiting for the lease"
    );
    let mut last_holder = None;
    let acquired = tokio::select! {
        _ = elector.acquire(|holder| {
            let holder = holder.map(str::to_owned);
            if last_holder.as_ref() != Some(&holder) {
                tracing::info!(leader = ?holder, "standby");
                last_holder = Some(holder.clone());
            }
            health.set_role(Role::Standby { leader: holder });
        }) => true,
        _ = stopping.clone() => false,
    };
    if !acquired {
        return Ok(ExitCode::SUCCESS);
    }
    health.set_role(Role::Leader);
    tracing::info!(identity = %election.identity, "leading: starting the controllers");
    let watch = elector.watch();
    let lost = async {
        tokio::select! {
            lost = elector.hold() => lost,
            lost = watch => lost,
        }
    };
    tokio::select! {
        _ = super::run_controllers(client, options, connect, stopping) => {}
        lost = lost => {
            tracing::error!(reason = %lost, "lost the leader-election lease: exiting, so that only the new leader reconciles");
            std::process::exit(1);
        }
    }
    elector.release().await;
    Ok(ExitCode::SUCCESS)
}
