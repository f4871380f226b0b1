//! An in-process Kubernetes API server for tests.
//!
//! The real `kube::Client` and kube-runtime (`Controller`, `watcher`, reflectors, the
//! finalizer helper, `Recorder`) talk to it over plain HTTP/1.1 on `127.0.0.1` (a free port),
//! unchanged. It runs on its own thread with its own Tokio runtime, so it keeps answering
//! whatever the test's runtime does (blocking waits included), and stops when the
//! [`ApiServer`] is dropped.
//!
//! ```ignore
//! let api = ApiServer::start().await;
//! api.register_crds(&tributary::api::crds::all());
//! let client = api.client();                       // default namespace "default"
//! let topics: Api<KafkaTopic> = Api::namespaced(client, "default");
//! api.write_kubeconfig(&path)?;                    // for a `tributary operator` child process
//! api.fail_next(("PATCH", "/kafkatopics/"), 500, 1);
//! api.set_delay(("GET", "/kafkaclusters"), Duration::from_millis(300));
//! api.drop_watches();
//! ```
//!
//! # What it implements
//!
//! * **Kinds.** Built-in, stored without schema validation: core/v1 `Namespace`, `Secret`,
//!   `ConfigMap`, `Event`, `Service`, `Pod`; apps/v1 `Deployment`; events.k8s.io/v1 `Event`
//!   (what kube-runtime's `Recorder` writes); coordination.k8s.io/v1 `Lease`;
//!   apiextensions.k8s.io/v1 `CustomResourceDefinition`. Creating (or applying, replacing) a
//!   CRD serves its kind at every served version (`/apis/G/V[/namespaces/NS]/PLURAL`), with
//!   the version's `openAPIV3Schema` used for validation, its `status` subresource and
//!   `selectableFields`; the CRD gets `Established` / `NamesAccepted` conditions at once.
//!   Deleting the CRD deletes its objects. [`ApiServer::register_crds`] does the same without
//!   HTTP. Namespaces `default`, `kube-system`, `kube-public` and `kube-node-lease` exist from
//!   the start; namespaced objects can only be created in an existing namespace (404
//!   otherwise, 403 while it terminates), as on a real cluster.
//! * **Discovery.** `/api`, `/api/v1`, `/apis`, `/apis/G`, `/apis/G/V` (`APIVersions`,
//!   `APIGroupList`, `APIGroup`, `APIResourceList` with name, singularName, namespaced, kind,
//!   verbs, shortNames, categories, and `PLURAL/status`), the aggregated `apidiscovery.k8s.io/v2`
//!   form when asked for by `Accept` (kube's `Discovery::run_aggregated`), `/version`,
//!   `/healthz`, `/livez`, `/readyz`.
//! * **CRUD.** create (`generateName` too), get, list, update (`PUT`), delete, deletecollection;
//!   `Status` errors as the API server words them: 404 `NotFound`, 409 `AlreadyExists`,
//!   409 `Conflict` for a stale `resourceVersion` (custom resources also refuse a `PUT`
//!   without one, with 422, like the real server), 400 `BadRequest`, 422 `Invalid`, 415.
//!   Every object gets `uid`, `resourceVersion` (one global increasing counter),
//!   `creationTimestamp`, `namespace` for namespaced kinds, `generation` for custom resources,
//!   Deployments, Pods and CRDs. `dryRun=All` is honoured. `PartialObjectMetadata` responses
//!   (kube's `*_metadata` calls and metadata watchers) are served.
//! * **Lists.** `{apiVersion, kind: KindList, metadata: {resourceVersion}, items}` with
//!   `apiVersion` / `kind` on every item; `limit` + `continue` pagination (consistent: pages
//!   are cut from the state at the first page's version, rebuilt from the history, `410
//!   Expired` once that is compacted away); `resourceVersion` + `resourceVersionMatch=Exact`
//!   (point-in-time list from the history) or the current state otherwise.
//! * **Selectors.** Label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`, `>`, `<`)
//!   and field selectors (`=`, `==`, `!=`) on `metadata.name`, `metadata.namespace`, a CRD's
//!   `selectableFields` and the usual fields of the built-ins (e.g. `involvedObject.*` of
//!   core Events, `regarding.*` of events.k8s.io Events, Secret `type`), on list, watch and
//!   deletecollection. Others are refused with 400 as the real server does.
//! * **Watch.** `?watch=true|1` (and the legacy `/watch/` paths) stream newline-delimited JSON
//!   events over a chunked response: from a `resourceVersion` (replayed from a bounded
//!   history, [`Options::history_limit`]), from "now" with synthetic `ADDED` events for what
//!   exists (no or `"0"` resourceVersion), or as a streaming list (`sendInitialEvents=true`,
//!   ending with the `k8s.io/initial-events-end` bookmark). Label-selector transitions turn into
//!   `ADDED` / `DELETED` like on the real server. `BOOKMARK` events (only `apiVersion`, `kind`,
//!   `metadata.resourceVersion`) every [`Options::bookmark_interval`] and before a
//!   `timeoutSeconds` end, when the client sets `allowWatchBookmarks`. A watch from a version
//!   older than the history gets HTTP 200 and one `ERROR` event whose object is a `Status` with
//!   code 410 / reason `Expired`, then the end of the stream — what kube's watcher relists on.
//!   [`ApiServer::compact`] forgets the history at once.
//! * **Server-side apply** (`application/apply-patch+yaml`, JSON or YAML body, `fieldManager`
//!   required, `force=true`): creates a missing object, merges the applied fields, records
//!   `metadata.managedFields` per manager / operation / subresource (`Apply` and `Update`
//!   entries, `FieldsV1`), removes fields a manager stops applying when no other manager owns
//!   them, answers 409 `Conflict` (with `FieldManagerConflict` causes, in the real message
//!   format) when another manager — `Apply` or `Update` — owns a field with a different value,
//!   and takes ownership with `force`. Lists with `x-kubernetes-list-type: map` are merged by
//!   their `x-kubernetes-list-map-keys` (e.g. `status.conditions` by `type`), `set` lists by
//!   value, other lists and `x-kubernetes-map-type: atomic` maps are replaced whole.
//!   `metadata.labels` / `annotations` are granular maps, `finalizers` a set, `ownerReferences`
//!   a map keyed by `uid`. Other writes (create, `PUT`, patches) take ownership of the fields
//!   they change, as `Update` entries. Incoming `managedFields` are ignored.
//! * **Patches.** JSON merge patch (`application/merge-patch+json`), JSON patch
//!   (`application/json-patch+json`, all six operations), and for built-ins an approximation of
//!   strategic merge patch (merge patch, plus list-map merge for the few lists this server knows
//!   the keys of, and `$patch: delete|replace`); custom resources refuse strategic merge with
//!   415 like the real server. A patch carrying `metadata.resourceVersion` is a precondition.
//! * **Status subresource.** With a `status` subresource, writes to the main resource keep the
//!   stored `.status` (a created object's `.status` is dropped) and writes to `/status` change
//!   only `.status`. `metadata.generation` starts at 1 and bumps only when something outside
//!   `metadata` and (subresource) `status` changes. A write that changes nothing (including
//!   ownership) gets no new resourceVersion and no watch event, so a controller that applies
//!   the same status each time does not wake itself up.
//! * **Deletion.** An object with finalizers gets `deletionTimestamp` (and a generation bump)
//!   and stays until an update or patch removes the last finalizer, which deletes it: that
//!   write is not stored, the object goes as it was (one `DELETED` event carrying the last
//!   stored state, finalizers included, at a new resourceVersion — etcd's previous value, as on a
//!   real server); finalizers cannot be added while it is being deleted (422). DELETE
//!   honours `preconditions` (uid, resourceVersion) and `propagationPolicy`: `Background`
//!   (default: once an owner is gone, every object whose `ownerReferences` name only gone
//!   owners is deleted, through its own finalizers), `Foreground` (the `foregroundDeletion`
//!   finalizer, dependents first) and `Orphan` (the `orphan` finalizer; dependents lose the
//!   owner reference). Deleting a namespace marks it `Terminating`, deletes its content and
//!   then the namespace. Garbage collection runs synchronously right after each write.
//! * **Validation of custom resources** against the CRD schema, as the real server does on
//!   every write: unknown fields are pruned silently (kept under
//!   `x-kubernetes-preserve-unknown-fields`; `fieldValidation=Strict` refuses them with 400,
//!   `Warn` — the default — adds a `Warning` header), `default`s are filled in, then `type`,
//!   `nullable`, `required`, `minimum` / `maximum` (and exclusive), `multipleOf`, `minLength` /
//!   `maxLength`, `pattern`, `enum`, `minItems` / `maxItems`, `uniqueItems`, `minProperties` /
//!   `maxProperties`, `additionalProperties`, `x-kubernetes-int-or-string`, duplicate keys of
//!   list-maps and sets, `allOf` / `anyOf` / `oneOf` / `not`; then, when those pass, the CEL
//!   `x-kubernetes-validations` rules with `kube::core::cel` (transition rules with `oldSelf` on
//!   updates only; `reason`, `fieldPath`, `messageExpression`). Failures are 422 `Invalid`
//!   `Status`es: `message` like `KafkaTopic.tributary.io "t" is invalid: spec.partitions:
//!   Invalid value: ...`, `details.causes[]` with `field`, `reason`, `message`. `metadata.name`
//!   must be a DNS subdomain (namespaces: a DNS label). A CRD whose CEL rules do not compile is
//!   refused.
//! * **Fault injection.** [`ApiServer::drop_watches`] ends every open watch stream (cleanly, as
//!   on an API server restart or a watch timeout; clients rewatch from their last version);
//!   [`ApiServer::fail_next`] answers the next `count` requests matching a [`Matcher`] (method +
//!   path-and-query substring) with an error `Status` of the given code (409, 429, 500, ...;
//!   note kube's client itself retries 429, 503 and 504), and
//!   [`ApiServer::fail_next_retry_after`] adds a `Retry-After` header; [`ApiServer::set_delay`] holds
//!   matching requests back before they are handled (a delayed write lands late, a delayed watch
//!   starts late); [`ApiServer::requests`] lists every request served (with its arrival time
//!   and `User-Agent`);
//!   [`ApiServer::open_watches`] / [`ApiServer::wait_for_watches`] tell when clients watch.
//!
//! # What it does not implement
//!
//! * Authentication, authorization (RBAC), admission webhooks, validating admission policies,
//!   API priority and fairness, audit, TLS, HTTP/2, protobuf and CBOR, `Table` output
//!   (`kubectl get` still works with plain JSON), `kubectl`'s OpenAPI endpoints (`/openapi/*`),
//!   field selectors beyond those listed above.
//! * Controllers: nothing schedules or runs Pods, Deployments do not create ReplicaSets,
//!   Services get no cluster IP, Leases are plain storage, Events are not deduplicated, and the
//!   two Event APIs (core/v1 and events.k8s.io/v1) are stored separately, not as two versions
//!   of one resource. No subresources besides `status` (no `scale`, `log`, `exec`, `eviction`,
//!   namespace `finalize`).
//! * Version conversion: every served version of a CRD reads and writes the same objects with
//!   only `apiVersion` changed (the `None` conversion strategy); conversion webhooks are ignored.
//! * Validation fine print: no ratcheting (an unchanged invalid field still fails), CEL cost
//!   limits are not enforced, CEL runs only when the OpenAPI validations passed, `oldSelf` of
//!   list items is matched by index (not by list-map key), `format` is not checked, built-in
//!   kinds are not validated at all (beyond `metadata.name`). Label keys/values in objects are
//!   not validated.
//! * Server-side apply fine print: the field sets follow structured-merge-diff closely but not
//!   exactly (no `i:` paths, granular maps under `x-kubernetes-preserve-unknown-fields`, no
//!   limit on `Update` entries, no `managedFields` reset through a request); list-map elements
//!   missing a key field are treated as atomic instead of refused.
//! * Deletion fine print: grace periods are ignored (everything is deleted at once, with
//!   `deletionGracePeriodSeconds: 0`), garbage collection is synchronous, an owner reference to
//!   an object that never existed makes the dependent collectable right away, a deleted CRD
//!   deletes its objects without waiting for their finalizers.
//! * Watch fine print: a watch from a version newer than the server's is accepted and gets
//!   every later change (the real server waits and then answers 504), there is no watch cache
//!   delay, `DELETE` of a collection is not transactional, and [`ApiServer::drop_watches`] ends
//!   streams cleanly rather than resetting connections.
//! * Creating an object that carries `metadata.resourceVersion` fails with 500, as the real
//!   storage layer does; clear it before re-creating a fetched object.
mod http;
mod ops;
mod patch;
mod registry;
mod schema;
mod selectors;
mod ssa;
mod store;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{json, Value};

use ops::{FieldValidation, PatchType, Target, WriteParams};
use store::State;

/// How a server is set up; [`Default`] is what [`ApiServer::start`] uses.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many changes (of all kinds together) the watch history keeps. A watch from a
    /// version older than the oldest kept change gets `410 Gone`. Default 10 000.
    pub history_limit: usize,
    /// How often a watch that allows bookmarks gets one. Default 1 s.
    pub bookmark_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

/// Which requests a fault or a delay applies to: the method (`None`: any) and a substring of
/// the path and query (e.g. `"/kafkatopics/"`, `"/status"`, `"watch=true"`; `""`: any).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matcher {
    pub method: Option<String>,
    pub path_contains: String,
}

impl Matcher {
    /// `method` is `"GET"`, `"PATCH"`, ... or `"*"` / `""` for any.
    pub fn new(method: &str, path_contains: &str) -> Self {
        Matcher {
            method: match method {
                "" | "*" => None,
                m => Some(m.to_ascii_uppercase()),
            },
            path_contains: path_contains.to_owned(),
        }
    }

    /// Every request.
    pub fn any() -> Self {
        Matcher::default()
    }

    pub fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path_and_query.contains(&self.path_contains)
    }
}

impl From<(&str, &str)> for Matcher {
    fn from((method, path): (&str, &str)) -> Self {
        Matcher::new(method, path)
    }
}

/// A path substring, any method.
impl From<&str> for Matcher {
    fn from(path: &str) -> Self {
        Matcher::new("*", path)
    }
}

/// One request the server answered.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub status: u16,
    /// Answered by [`ApiServer::fail_next`] (or [`ApiServer::fail_next_retry_after`]).
    pub injected: bool,
    /// When the request arrived (before any [`ApiServer::set_delay`]).
    pub at: std::time::Instant,
    /// The request's `User-Agent` header (`""` when it sent none), to tell clients apart.
    pub user_agent: String,
    /// When the answer was ready (for a write: once it had taken effect).
    pub answered: std::time::Instant,
}

struct Fault {
    matcher: Matcher,
    status: u16,
    remaining: usize,
    retry_after: Option<u64>,
}

/// An injected error: its status code and the `Retry-After` seconds it carries, if any.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct InjectedFault {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
}

/// What the HTTP side shares with the handle.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) addr: SocketAddr,
    pub(crate) bookmark_interval: Duration,
    pub(crate) drop_watches: tokio::sync::watch::Sender<u64>,
    pub(crate) open_watches: AtomicUsize,
    faults: Mutex<Vec<Fault>>,
    delays: Mutex<Vec<(Matcher, Duration)>>,
    requests: Mutex<Vec<RequestRecord>>,
}

impl Shared {
    pub(crate) fn take_fault(&self, method: &str, path: &str) -> Option<InjectedFault> {
        let mut faults = self.faults.lock().unwrap();
        let f = faults
            .iter_mut()
            .find(|f| f.remaining > 0 && f.matcher.matches(method, path))?;
        f.remaining -= 1;
        let fault = InjectedFault {
            status: f.status,
            retry_after: f.retry_after,
        };
        faults.retain(|f| f.remaining > 0);
        Some(fault)
    }

    pub(crate) fn delay_for(&self, method: &str, path: &str) -> Option<Duration> {
        self.delays
            .lock()
            .unwrap()
            .iter()
            .find(|(m, _)| m.matches(method, path))
            .map(|(_, d)| *d)
    }

    pub(crate) fn record(&self, r: RequestRecord) {
        self.requests.lock().unwrap().push(r);
    }
}

/// A running server. Dropping it stops it (and ends every connection).
pub struct ApiServer {
    shared: Arc<Shared>,
    url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn internal_params() -> WriteParams {
    WriteParams {
        manager: "tributary-apiserver".into(),
        explicit_manager: true,
        dry_run: false,
        force: true,
        field_validation: FieldValidation::Ignore,
    }
}

fn ensure_namespace(state: &mut State, name: &str) {
    let rt = state
        .registry
        .find("", "v1", "namespaces")
        .expect("namespaces are built in");
    if state.get(&rt, None, name).is_ok() {
        return;
    }
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if let Err(e) = state.create(&rt, None, body, &internal_params()) {
        panic!("namespace {name} refused: {}", e.message);
    }
}

impl ApiServer {
    /// Start a server with the default [`Options`] on a free port of 127.0.0.1.
    pub async fn start() -> ApiServer {
        Self::start_blocking(Options::default())
    }

    /// Start a server with `options`.
    pub async fn start_with(options: Options) -> ApiServer {
        Self::start_blocking(options)
    }

    /// Start a server from synchronous code (it runs on its own thread either way).
    pub fn start_blocking(options: Options) -> ApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("the listener's address");
        let (drop_tx, _) = tokio::sync::watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(options.history_limit)),
            addr,
            bookmark_interval: options.bookmark_interval,
            drop_watches: drop_tx,
            open_watches: AtomicUsize::new(0),
            faults: Mutex::new(Vec::new()),
            delays: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        {
            let mut state = shared.state.lock().unwrap();
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                ensure_namespace(&mut state, ns);
            }
        }
        let handle = shared.clone();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("apiserver-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the API server's runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a Tokio listener");
                    tokio::select! {
                        _ = http::serve(listener, shared) => {}
                        _ = shutdown_rx => {}
                    }
                });
            })
            .expect("the API server's thread");
        ApiServer {
            shared: handle,
            url: format!("http://{addr}"),
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kube `Config` for this server (no auth, default namespace `default`).
    pub fn config(&self) -> kube::Config {
        let mut config = kube::Config::new(self.url.parse().expect("a valid URL"));
        config.default_namespace = "default".into();
        config
    }

    /// A kube client for this server.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("a kube client for the test API server")
    }

    /// Write a kubeconfig pointing at this server (context `tributary-test`, namespace
    /// `default`), for a process started with `KUBECONFIG=path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: tributary-test\n  cluster:\n    server: {url}\ncontexts:\n- name: tributary-test\n  context:\n    cluster: tributary-test\n    user: tributary-test\n    namespace: default\ncurrent-context: tributary-test\nusers:\n- name: tributary-test\n  user: {{}}\npreferences: {{}}\n",
            url = self.url
        );
        std::fs::write(path, yaml)
    }

    /// Create (or replace) CRDs, as `kubectl apply` of their YAML would; their kinds are
    /// served as soon as this returns. Panics when the server refuses one.
    pub fn register_crds(&self, crds: &[CustomResourceDefinition]) {
        let mut state = self.shared.state.lock().unwrap();
        let rt = state
            .registry
            .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("the CRD kind is built in");
        for crd in crds {
            let mut body = serde_json::to_value(crd).expect("a CRD serializes");
            body["apiVersion"] = json!("apiextensions.k8s.io/v1");
            body["kind"] = json!("CustomResourceDefinition");
            let name = body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let exists = state.get(&rt, None, &name).is_ok();
            let result = if exists {
                state.patch(
                    &rt,
                    None,
                    &name,
                    PatchType::Merge,
                    json!({"spec": body["spec"].clone()}),
                    Target::Main,
                    &internal_params(),
                )
            } else {
                state.create(&rt, None, body, &internal_params())
            };
            if let Err(e) = result {
                panic!("CRD {name} refused: {}", e.message);
            }
        }
    }

    /// Create a namespace (no-op when it exists).
    pub fn create_namespace(&self, name: &str) {
        ensure_namespace(&mut self.shared.state.lock().unwrap(), name);
    }

    /// End every open watch stream now. Clients see their stream end (as after a watch
    /// timeout or an API server restart) and watch again from their last version.
    pub fn drop_watches(&self) {
        self.shared.drop_watches.send_modify(|n| *n += 1);
    }

    /// How many watch streams are open.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// Wait until at least `n` watch streams are open (panics after 10 s).
    pub async fn wait_for_watches(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.open_watches() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "waited 10 s for {n} open watches, have {}",
                self.open_watches()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Answer the next `count` requests matching `matcher` with an error `Status` of code
    /// `status` (reason `Conflict` for 409, `TooManyRequests` for 429, `InternalError` for 500,
    /// ...), without touching the store.
    pub fn fail_next(&self, matcher: impl Into<Matcher>, status: u16, count: usize) {
        self.shared.faults.lock().unwrap().push(Fault {
            matcher: matcher.into(),
            status,
            remaining: count,
            retry_after: None,
        });
    }

    /// As [`ApiServer::fail_next`], with a `Retry-After: seconds` header on each answer and
    /// `details.retryAfterSeconds` in its `Status`, as the real server sends with 429 (API
    /// priority and fairness) and some 5xx.
    pub fn fail_next_retry_after(
        &self,
        matcher: impl Into<Matcher>,
        status: u16,
        count: usize,
        seconds: u64,
    ) {
        self.shared.faults.lock().unwrap().push(Fault {
            matcher: matcher.into(),
            status,
            remaining: count,
            retry_after: Some(seconds),
        });
    }

    /// Delay every request matching `matcher` by `delay` before it is handled (until
    /// [`ApiServer::clear_faults`]). The first matching delay applies.
    pub fn set_delay(&self, matcher: impl Into<Matcher>, delay: Duration) {
        self.shared
            .delays
            .lock()
            .unwrap()
            .push((matcher.into(), delay));
    }

    /// Forget every pending fault and delay.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
        self.shared.delays.lock().unwrap().clear();
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Forget the whole watch history: a watch or exact list from any earlier version now gets
    /// `410 Gone`.
    pub fn compact(&self) {
        self.shared.state.lock().unwrap().compact();
    }

    /// The last resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.state.lock().unwrap().rv
    }

    /// The stored JSON of an object, without going through HTTP (`group` is `""` for core
    /// kinds, `resource` the plural, `namespace` `""` for cluster-scoped kinds).
    pub fn stored(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let state = self.shared.state.lock().unwrap();
        let key = store::ObjKey {
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        state.objects.get(&key).map(|s| s.value.clone())
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
