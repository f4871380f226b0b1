//! A bound on the API requests the reconciles have in flight at once. A burst of reconciles
//! (a thousand topics answered by one broker round trip, each writing its status and an Event)
//! would otherwise open one HTTP connection per request in flight, and the client's pool keeps
//! them all, idle, with their buffers (the operator bench saw 2,600 sockets, and 12 KiB of peak
//! memory a topic, at 2,000 topics).
//! Bounded, the same burst is served over [`API_REQUESTS_AT_ONCE`] connections, one after the
//! other (each write takes a millisecond or so). Watches are long-lived and are never held back.

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::future::BoxFuture;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::{Request, Response};
use kube::client::Body;
use kube::Client;
use tokio::sync::Semaphore;

/// At most this many API requests of the reconciles are in flight at once.
pub const API_REQUESTS_AT_ONCE: usize = 64;

/// `client`, with at most `at_once` requests in flight (a response holds its slot until its
/// body is read or dropped); watch requests are not counted.
pub fn limited(client: Client, at_once: usize) -> Client {
    let namespace = client.default_namespace().to_owned();
    Client::new(
        Limited {
            client,
            slots: Arc::new(Semaphore::new(at_once.max(1))),
        },
        namespace,
    )
}

#[derive(Clone)]
struct Limited {
    client: Client,
    slots: Arc<Semaphore>,
}

fn is_watch<B>(request: &Request<B>) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type LimitedBody = UnsyncBoxBody<Bytes, BoxError>;

impl tower::Service<Request<Body>> for Limited {
    type Response = Response<LimitedBody>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<LimitedBody>, kube::Error>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let client = self.client.clone();
        let slots = self.slots.clone();
        Box::pin(async move {
            if is_watch(&request) {
                let response = client.send(request).await?;
                return Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()));
            }
            let slot = slots
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let response = client.send(request).await?;
            // The slot is given back once the body is read (or dropped): the connection is
            // busy until then.
            Ok(response.map(|body| {
                body.map_frame(move |frame| {
                    let _held = &slot;
                    frame
                })
                .map_err(BoxError::from)
                .boxed_unsync()
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn no_more_than_the_limit_are_in_flight_and_watches_pass() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = limited(Client::new(service, "default"), 3);
        for i in 0..10 {
            let client = client.clone();
            tokio::spawn(async move {
                let request = Request::get(format!("/api/v1/namespaces/ns/configmaps/c{i}"))
                    .body(Body::empty())
                    .unwrap();
                let _ = client.send(request).await;
            });
        }
        let watch = client.clone();
        tokio::spawn(async move {
            let request = Request::get("/api/v1/namespaces/ns/configmaps?watch=true")
                .body(Body::empty())
                .unwrap();
            let _ = watch.send(request).await;
        });
        // Four arrive (three requests and the watch) and no more while none is answered.
        let mut pending = Vec::new();
        for _ in 0..4 {
            pending.push(handle.next_request().await.expect("a request"));
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(100), handle.next_request())
                .await
                .is_err(),
            "a fifth request went out with three in flight"
        );
        assert!(pending
            .iter()
            .any(|(r, _)| r.uri().query() == Some("watch=true")));
        // Answering one lets exactly one more through.
        let at = pending
            .iter()
            .position(|(r, _)| r.uri().query().is_none())
            .unwrap();
        let (_, send) = pending.remove(at);
        send.send_response(Response::new(Body::empty()));
        // (Its answer is held: dropping it would fail the request and free its slot too.)
        let _next = handle.next_request().await.expect("the next request");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), handle.next_request())
                .await
                .is_err(),
            "two went out for one answered"
        );
    }
}
