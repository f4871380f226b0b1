//! The operator's HTTP endpoint: `/metrics` (Prometheus), `/healthz` (liveness) and `/readyz`
//! (readiness), on one address (`tributary operator --http-address`).
//!
//! * `/healthz` answers 200 as long as the process serves HTTP.
//! * `/readyz` answers 200 when this replica does what it should:
//!   - it runs the controllers (it is the leader, or leader election is off) and every
//!     controller's cache has been filled by its first list;
//!   - or it is a standby: it has read the leader-election Lease and waits to take it over.
//!     A standby is ready on purpose: it is a healthy replica, and a standby reported not-ready
//!     would stall every rolling update of a Deployment with more than one replica.
//!
//!   Otherwise (starting, a new leader whose caches are still filling, shutting down) it
//!   answers 503. The body says which, e.g. `ready: leader, caches synced` or
//!   `ready: standby, leader is tributary-7d9f-abc`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::runtime::metrics::{self, Metrics};
use crate::runtime::{Synced, WatchHealth};

/// What this replica is doing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Role {
    /// Leader election has not read the Lease yet.
    #[default]
    Starting,
    /// Another replica holds the Lease (`None`: nobody does right now).
    Standby { leader: Option<String> },
    /// This replica runs the controllers.
    Leader,
}

/// Readiness as shared between the operator and the HTTP server, with the metrics registry
/// the endpoint serves.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    role: Mutex<Role>,
    synced: Synced,
    watches: WatchHealth,
    stopping: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Health {
    /// Serving `metrics` (the registry the controllers record into:
    /// [`crate::runtime::Options::metrics`]).
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                role: Mutex::default(),
                synced: Synced::default(),
                watches: WatchHealth::default(),
                stopping: AtomicBool::default(),
                metrics,
            }),
        }
    }

    /// The registry `/metrics` serves.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The flag the controllers set once their caches are filled (pass it in
    /// [`crate::runtime::Options::synced`]).
    pub fn synced(&self) -> Synced {
        self.inner.synced.clone()
    }

    /// Where the controllers' watches report (pass it in
    /// [`crate::runtime::Options::watch_health`]).
    pub fn watch_health(&self) -> WatchHealth {
        self.inner.watches.clone()
    }

    pub fn role(&self) -> Role {
        self.inner
            .role
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the role; the `tributary_leader` gauge follows it.
    pub fn set_role(&self, role: Role) {
        self.inner.metrics.set_leader(role == Role::Leader);
        *self.inner.role.lock().unwrap_or_else(|e| e.into_inner()) = role;
    }

    /// Shutdown has begun: not ready any more.
    pub fn set_stopping(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// `(ready, explanation)` right now.
    pub fn readiness(&self) -> (bool, String) {
        let (ready, why) = readiness(
            &self.role(),
            self.inner.synced.is_set(),
            self.inner.stopping.load(Ordering::SeqCst),
        );
        if !ready || self.role() != Role::Leader {
            return (ready, why);
        }
        watches_readiness(&self.inner.watches.down_longer_than(WatchHealth::DOWN_BOUND))
            .unwrap_or((ready, why))
    }
}

/// A leader whose watches have been failing for longer than [`WatchHealth::DOWN_BOUND`] is not
/// ready: it would not see edits. `down` lists them (empty: no verdict).
pub fn watches_readiness(down: &[String]) -> Option<(bool, String)> {
    (!down.is_empty()).then(|| {
        (
            false,
            format!(
                "not ready: leader, watches failing for more than {} s: {}",
                WatchHealth::DOWN_BOUND.as_secs(),
                down.join(", ")
            ),
        )
    })
}

/// Whether a replica in `role` is ready, and why (the `/readyz` body).
pub fn readiness(role: &Role, synced: bool, stopping: bool) -> (bool, String) {
    match role {
        _ if stopping => (false, "not ready: shutting down".into()),
        Role::Starting => (
            false,
            "not ready: starting (leader election has not read the lease yet)".into(),
        ),
        Role::Standby { leader } => (
            true,
            match leader {
                Some(l) => format!("ready: standby, leader is {l}"),
                None => "ready: standby, the lease is free".into(),
            },
        ),
        Role::Leader if synced => (true, "ready: leader, caches synced".into()),
        Role::Leader => (false, "not ready: leader, caches not synced yet".into()),
    }
}

/// Binds the endpoint's address (so a taken port fails the start, not later).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener`, forever.
pub async fn serve(listener: TcpListener, health: Health) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let health = health.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<_>| {
                let response = respond(&health, request.method(), request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "HTTP connection");
            }
        });
    }
}

fn respond(health: &Health, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
    }
    match path {
        "/metrics" => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, metrics::CONTENT_TYPE)
            .body(Full::new(Bytes::from(health.metrics().render())))
            .expect("a valid response"),
        "/healthz" | "/livez" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => {
            let (ready, why) = health.readiness();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, format!("{why}\n"))
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_is_ready_once_synced_a_standby_once_it_has_read_the_lease() {
        let leader = Role::Leader;
        assert_eq!(
            readiness(&leader, false, false),
            (false, "not ready: leader, caches not synced yet".into())
        );
        assert_eq!(
            readiness(&leader, true, false),
            (true, "ready: leader, caches synced".into())
        );
        assert!(!readiness(&Role::Starting, true, false).0);
        assert_eq!(watches_readiness(&[]), None, "no watch down: no verdict");
        let (ready, why) =
            watches_readiness(&["KafkaTopic in namespace booking for 31 s".into()]).unwrap();
        assert!(!ready);
        assert_eq!(
            why,
            "not ready: leader, watches failing for more than 30 s: KafkaTopic in namespace booking for 31 s"
        );
        let standby = Role::Standby {
            leader: Some("tributary-0".into()),
        };
        assert_eq!(
            readiness(&standby, false, false),
            (true, "ready: standby, leader is tributary-0".into())
        );
        for role in [leader, standby, Role::Starting] {
            assert!(!readiness(&role, true, true).0, "{role:?} shutting down");
        }
    }

    #[test]
    fn routes() {
        let health = Health::new(Arc::default());
        let status = |m: Method, p: &str| respond(&health, &m, p).status();
        assert_eq!(status(Method::GET, "/healthz"), StatusCode::OK);
        assert_eq!(
            status(Method::GET, "/readyz"),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(Method::GET, "/metrics"), StatusCode::OK);
        assert_eq!(status(Method::GET, "/nope"), StatusCode::NOT_FOUND);
        assert_eq!(
            status(Method::POST, "/metrics"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        health.set_role(Role::Standby { leader: None });
        assert_eq!(status(Method::GET, "/readyz"), StatusCode::OK);
    }
}
