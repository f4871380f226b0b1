//! Watch streams: newline-delimited JSON watch events over a chunked response, from a
//! resourceVersion (replayed from the history), from "now" with synthetic `ADDED` events for
//! what exists, or as a streaming list (`sendInitialEvents`); bookmarks; `timeoutSeconds`;
//! `410 Gone` as an `ERROR` event; and dropping by the test ([`crate::ApiServer::drop_watches`]).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ops::{present, ApiError};
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Change, ChangeType};
use crate::Shared;

pub struct WatchRequest {
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub metadata_only: bool,
}

pub type Body = BoxBody<Bytes, io::Error>;

fn line(v: &Value) -> Frame<Bytes> {
    let mut s = serde_json::to_vec(v).unwrap_or_default();
    s.push(b'\n');
    Frame::data(Bytes::from(s))
}

/// The object as the watch shows it.
pub fn shown(rt: &ResourceType, v: &Value, metadata_only: bool) -> Value {
    let v = present(rt, v.clone());
    if metadata_only {
        json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": v.get("metadata").cloned().unwrap_or(json!({})),
        })
    } else {
        v
    }
}

impl WatchRequest {
    fn selected(&self, v: &Value) -> bool {
        self.labels.matches(v) && self.fields.matches(v)
    }

    /// The event a change becomes for this watch, if any (namespace, label and field
    /// selectors, with the transitions the API server makes: an object that starts matching
    /// is `ADDED`, one that stops matching is `DELETED`).
    fn event(&self, c: &Change) -> Option<Value> {
        if let Some(ns) = &self.namespace {
            if self.rt.namespaced && c.key.namespace != *ns {
                return None;
            }
        }
        let now = self.selected(&c.object);
        let before = c.prev.as_ref().map(|p| self.selected(p)).unwrap_or(false);
        let typ = match c.typ {
            ChangeType::Added => now.then_some("ADDED")?,
            ChangeType::Modified => match (before, now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            },
            ChangeType::Deleted => (now || before).then_some("DELETED")?,
        };
        Some(json!({"type": typ, "object": shown(&self.rt, &c.object, self.metadata_only)}))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({
            "type": "BOOKMARK",
            "object": {"apiVersion": self.rt.api_version(), "kind": self.rt.kind, "metadata": meta},
        })
    }
}

/// Start a watch: register its queue and collect what it replays, under the store lock, then
/// stream from a task. Errors (bad parameters) are answered before the stream starts.
pub fn start(shared: &Arc<Shared>, req: WatchRequest) -> Result<Body, ApiError> {
    let (tx, rx) = mpsc::unbounded_channel::<Arc<Change>>();
    let mut gone: Option<ApiError> = None;
    let mut initial: Vec<Arc<Change>> = Vec::new();
    let mut initial_end: Option<u64> = None;
    {
        let mut state = shared.state.lock().unwrap();
        let rt = &req.rt;
        let from = req
            .resource_version
            .as_deref()
            .filter(|r| !r.is_empty() && *r != "0");
        let synthetic = |state: &crate::store::State| -> Vec<Arc<Change>> {
            state
                .objects
                .iter()
                .filter(|(k, _)| k.group == rt.group && k.resource == rt.plural)
                .map(|(k, s)| {
                    Arc::new(Change {
                        rv: 0,
                        typ: ChangeType::Added,
                        key: k.clone(),
                        object: s.value.clone(),
                        prev: None,
                    })
                })
                .collect()
        };
        if req.send_initial_events {
            initial = synthetic(&state);
            initial_end = Some(state.rv);
        } else {
            match from {
                None => initial = synthetic(&state),
                Some(rv) => match rv.parse::<u64>() {
                    Err(_) => {
                        return Err(ApiError::bad_request(format!(
                            "invalid resource version {rv:?}"
                        )))
                    }
                    Ok(n) if n < state.compacted => {
                        gone = Some(ApiError::gone(format!(
                            "too old resource version: {n} ({})",
                            state.compacted + 1
                        )));
                    }
                    Ok(n) => {
                        initial = state
                            .history
                            .iter()
                            .filter(|c| {
                                c.rv > n && c.key.group == rt.group && c.key.resource == rt.plural
                            })
                            .cloned()
                            .collect();
                    }
                },
            }
        }
        if gone.is_none() {
            state.watchers.push(crate::store::WatchSink {
                group: rt.group.clone(),
                resource: rt.plural.clone(),
                tx,
            });
        }
    }

    let (body_tx, body_rx) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(64);
    let stream =
        futures::stream::unfold(
            body_rx,
            |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
        );
    let body = StreamBody::new(stream).boxed();

    if let Some(err) = gone {
        // The way the API server answers a watch from a compacted version: 200, then one
        // ERROR event carrying a 410 Status, then the end of the stream.
        let _ = body_tx.try_send(Ok(line(&json!({"type": "ERROR", "object": err.status()}))));
        return Ok(body);
    }

    let shared = shared.clone();
    tokio::spawn(async move {
        shared.open_watches.fetch_add(1, Ordering::SeqCst);
        run(&shared, &req, initial, initial_end, rx, &body_tx).await;
        shared.open_watches.fetch_sub(1, Ordering::SeqCst);
    });
    Ok(body)
}

async fn run(
    shared: &Arc<Shared>,
    req: &WatchRequest,
    initial: Vec<Arc<Change>>,
    initial_end: Option<u64>,
    mut rx: mpsc::UnboundedReceiver<Arc<Change>>,
    tx: &mpsc::Sender<Result<Frame<Bytes>, io::Error>>,
) {
    let mut dropped = shared.drop_watches.subscribe();
    dropped.mark_unchanged();
    let deadline = req.timeout.map(|t| Instant::now() + t);
    for c in &initial {
        if let Some(ev) = req.event(c) {
            if tx.send(Ok(line(&ev))).await.is_err() {
                return;
            }
        }
    }
    if let Some(rv) = initial_end {
        if tx.send(Ok(line(&req.bookmark(rv, true)))).await.is_err() {
            return;
        }
    }
    let interval = shared.bookmark_interval;
    let mut next_bookmark = Instant::now() + interval;
    loop {
        let sleep_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = dropped.changed() => return,
            _ = tx.closed() => return,
            change = rx.recv() => match change {
                Some(c) => {
                    if let Some(ev) = req.event(&c) {
                        if tx.send(Ok(line(&ev))).await.is_err() {
                            return;
                        }
                    }
                }
                None => return,
            },
            _ = sleep_deadline => {
                if req.bookmarks {
                    send_bookmark(shared, req, &mut rx, tx).await;
                }
                return;
            }
            _ = tokio::time::sleep_until(next_bookmark), if req.bookmarks => {
                if !send_bookmark(shared, req, &mut rx, tx).await {
                    return;
                }
                next_bookmark = Instant::now() + interval;
            }
        }
    }
}

/// Send everything queued, then a bookmark at the current version (every change up to it has
/// been queued, since changes are queued under the same lock that hands out versions).
async fn send_bookmark(
    shared: &Arc<Shared>,
    req: &WatchRequest,
    rx: &mut mpsc::UnboundedReceiver<Arc<Change>>,
    tx: &mpsc::Sender<Result<Frame<Bytes>, io::Error>>,
) -> bool {
    let mut rv = shared.state.lock().unwrap().rv;
    while let Ok(c) = rx.try_recv() {
        // Changes queued after the read are in order too: everything up to them was queued.
        rv = rv.max(c.rv);
        if let Some(ev) = req.event(&c) {
            if tx.send(Ok(line(&ev))).await.is_err() {
                return false;
            }
        }
    }
    tx.send(Ok(line(&req.bookmark(rv, false)))).await.is_ok()
}
