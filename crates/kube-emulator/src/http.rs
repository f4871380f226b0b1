//! The HTTP side: hyper's HTTP/1.1 server on a loopback port, fault injection and delays,
//! routing of discovery and resource paths, query parameters, content types.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::ops::{ApiError, DeleteOptions, FieldValidation, PatchType, Reply, Target, WriteParams};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::watch::{self, Body, WatchRequest};
use crate::{RequestRecord, Shared};

/// Accept connections until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn json_response(code: u16, v: &Value, warnings: &[String]) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json");
    for w in warnings {
        builder = builder.header(
            "Warning",
            format!("299 - {}", serde_json::to_string(w).unwrap_or_default()),
        );
    }
    builder
        .body(full(serde_json::to_vec(v).unwrap_or_default()))
        .expect("a valid response")
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status(), &[])
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());

    let at = std::time::Instant::now();
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if let Some(delay) = shared.delay_for(method.as_str(), &target) {
        tokio::time::sleep(delay).await;
    }
    if let Some(fault) = shared.take_fault(method.as_str(), &target) {
        let code = fault.status;
        let err = ApiError::new(
            code,
            reason_for(code),
            format!("injected fault: {method} {target} answered {code}"),
        );
        shared.record(RequestRecord {
            method: method.to_string(),
            path: target,
            status: code,
            injected: true,
            at,
            user_agent,
            answered: std::time::Instant::now(),
        });
        let Some(seconds) = fault.retry_after else {
            return error_response(&err);
        };
        let mut status = err.status();
        status["details"]["retryAfterSeconds"] = json!(seconds);
        let mut response = json_response(code, &status, &[]);
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, seconds.into());
        return response;
    }

    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            )))
        }
    };
    let response = route(&shared, &method, &uri, &headers, body).await;
    shared.record(RequestRecord {
        method: method.to_string(),
        path: target,
        status: response.status().as_u16(),
        injected: false,
        at,
        user_agent,
        answered: std::time::Instant::now(),
    });
    response
}

fn accept(headers: &HeaderMap) -> String {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": "v1.34.0-tributary-apiserver",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let accept = accept(headers);
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let discovery = |v: Option<Value>| match v {
        Some(v) if method == Method::GET => json_response(200, &v, &[]),
        Some(_) => error_response(&ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
        None => error_response(&ApiError::no_route()),
    };
    match segs.as_slice() {
        [] => discovery(Some(
            json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}),
        )),
        ["version"] => discovery(Some(version_info())),
        ["healthz"] | ["livez"] | ["readyz"] => Response::builder()
            .status(200)
            .header("Content-Type", "text/plain")
            .body(full("ok"))
            .unwrap(),
        ["api"] => {
            let state = shared.state.lock().unwrap();
            if aggregated {
                discovery(Some(state.registry.aggregated(true)))
            } else {
                discovery(Some(state.registry.core_versions(&shared.addr.to_string())))
            }
        }
        ["apis"] => {
            let state = shared.state.lock().unwrap();
            if aggregated {
                discovery(Some(state.registry.aggregated(false)))
            } else {
                discovery(Some(state.registry.group_list()))
            }
        }
        ["api", "v1"] => discovery(
            shared
                .state
                .lock()
                .unwrap()
                .registry
                .resource_list("", "v1"),
        ),
        ["apis", group] => discovery(shared.state.lock().unwrap().registry.group(group)),
        ["apis", group, version] => discovery(
            shared
                .state
                .lock()
                .unwrap()
                .registry
                .resource_list(group, version),
        ),
        ["api", "v1", rest @ ..] => {
            resource(shared, "", "v1", rest, method, &query, headers, &body).await
        }
        ["apis", group, version, rest @ ..] => {
            resource(shared, group, version, rest, method, &query, headers, &body).await
        }
        _ => error_response(&ApiError::no_route()),
    }
}

fn write_params(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<WriteParams, ApiError> {
    let explicit = query.get("fieldManager").filter(|m| !m.is_empty()).cloned();
    let manager = explicit.clone().unwrap_or_else(|| {
        headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    });
    let field_validation = match query.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Ignore") => FieldValidation::Ignore,
        Some("Strict") => FieldValidation::Strict,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            )))
        }
    };
    Ok(WriteParams {
        manager,
        explicit_manager: explicit.is_some(),
        dry_run: query.get("dryRun").is_some_and(|d| d == "All"),
        force: query.get("force").is_some_and(|f| f == "true" || f == "1"),
        field_validation,
    })
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn parse_yaml_or_json(body: &Bytes) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn selectors(
    query: &HashMap<String, String>,
    extra: &[String],
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(
        query.get("fieldSelector").map(String::as_str).unwrap_or(""),
        extra,
    )
    .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn metadata_only(v: Value, accept: &str) -> Value {
    if accept.contains("as=PartialObjectMetadataList") {
        let items: Vec<Value> = v
            .get("items")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(|i| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": i.get("metadata")})).collect())
            .unwrap_or_default();
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": v.get("metadata"), "items": items})
    } else if accept.contains("as=PartialObjectMetadata")
        && v.get("kind").and_then(Value::as_str) != Some("Status")
    {
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": v.get("metadata")})
    } else {
        v
    }
}

fn reply(r: Result<Reply, ApiError>, accept: &str) -> Response<Body> {
    match r {
        Ok(r) => json_response(r.code, &metadata_only(r.body, accept), &r.warnings),
        Err(e) => error_response(&e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    shared: &Arc<Shared>,
    group: &str,
    version: &str,
    rest: &[&str],
    method: &Method,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response<Body> {
    let accept = accept(headers);
    let (rest, legacy_watch) = match rest.first() {
        Some(&"watch") => (&rest[1..], true),
        _ => (rest, false),
    };
    let (ns, rest) = if rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"))
    {
        (Some(rest[1].to_owned()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(*s)),
        _ => return error_response(&ApiError::no_route()),
    };
    let Some(rt) = shared
        .state
        .lock()
        .unwrap()
        .registry
        .find(group, version, plural)
    else {
        return error_response(&ApiError::no_route());
    };
    if (!rt.namespaced && ns.is_some()) || (rt.namespaced && ns.is_none() && name.is_some()) {
        return error_response(&ApiError::no_route());
    }
    let target = match sub {
        None => Target::Main,
        Some("status") if rt.status_subresource => Target::Status,
        Some(_) => return error_response(&ApiError::no_route()),
    };
    let ns = ns.as_deref();
    let is_watch = legacy_watch || query.get("watch").is_some_and(|w| w == "true" || w == "1");

    match (method.clone(), name.as_deref()) {
        (Method::GET, None) if is_watch => start_watch(shared, &rt, ns, None, query, &accept),
        (Method::GET, Some(name)) if is_watch && matches!(target, Target::Main) => {
            start_watch(shared, &rt, ns, Some(name), query, &accept)
        }
        (Method::GET, None) => {
            let (labels, fields) = match selectors(query, &rt.selectable_fields) {
                Ok(s) => s,
                Err(e) => return error_response(&e),
            };
            let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok());
            let exact = query
                .get("resourceVersionMatch")
                .is_some_and(|m| m == "Exact");
            let state = shared.state.lock().unwrap();
            let r = state.list(
                &rt,
                ns,
                &labels,
                &fields,
                limit,
                query.get("continue").map(String::as_str),
                query.get("resourceVersion").map(String::as_str),
                exact,
            );
            reply(
                r.map(|body| Reply {
                    code: 200,
                    body,
                    warnings: Vec::new(),
                }),
                &accept,
            )
        }
        (Method::GET, Some(name)) => {
            let r = shared.state.lock().unwrap().get(&rt, ns, name);
            reply(
                r.map(|body| Reply {
                    code: 200,
                    body,
                    warnings: Vec::new(),
                }),
                &accept,
            )
        }
        (Method::POST, None) => {
            let params = match write_params(query, headers) {
                Ok(p) => p,
                Err(e) => return error_response(&e),
            };
            let obj = match parse_json(body) {
                Ok(v) => v,
                Err(e) => return error_response(&e),
            };
            let r = shared.state.lock().unwrap().create(&rt, ns, obj, &params);
            reply(r, &accept)
        }
        (Method::PUT, Some(name)) => {
            let params = match write_params(query, headers) {
                Ok(p) => p,
                Err(e) => return error_response(&e),
            };
            let obj = match parse_json(body) {
                Ok(v) => v,
                Err(e) => return error_response(&e),
            };
            let r = shared
                .state
                .lock()
                .unwrap()
                .update(&rt, ns, name, obj, target, &params);
            reply(r, &accept)
        }
        (Method::PATCH, Some(name)) => {
            let params = match write_params(query, headers) {
                Ok(p) => p,
                Err(e) => return error_response(&e),
            };
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
            let patch_type = match content_type.as_str() {
                "application/merge-patch+json" => PatchType::Merge,
                "application/json-patch+json" => PatchType::Json,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" => PatchType::Apply,
                other => {
                    return error_response(&ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"),
                    ))
                }
            };
            let patch = if patch_type == PatchType::Apply {
                parse_yaml_or_json(body)
            } else {
                parse_json(body)
            };
            let patch = match patch {
                Ok(v) => v,
                Err(e) => return error_response(&e),
            };
            let r = shared
                .state
                .lock()
                .unwrap()
                .patch(&rt, ns, name, patch_type, patch, target, &params);
            reply(r, &accept)
        }
        (Method::DELETE, name) if matches!(target, Target::Main) => {
            let mut opts = if body.iter().all(|b| b.is_ascii_whitespace()) {
                DeleteOptions::default()
            } else {
                match parse_json(body) {
                    Ok(v) => DeleteOptions::from_body(&v),
                    Err(e) => return error_response(&e),
                }
            };
            if let Some(p) = query.get("propagationPolicy") {
                opts.propagation = Some(p.clone());
            }
            if query.get("dryRun").is_some_and(|d| d == "All") {
                opts.dry_run = true;
            }
            match name {
                Some(name) => {
                    let r = shared.state.lock().unwrap().delete(&rt, ns, name, &opts);
                    reply(r, &accept)
                }
                None => {
                    let (labels, fields) = match selectors(query, &rt.selectable_fields) {
                        Ok(s) => s,
                        Err(e) => return error_response(&e),
                    };
                    let r = shared
                        .state
                        .lock()
                        .unwrap()
                        .delete_collection(&rt, ns, &labels, &fields, &opts);
                    reply(r, &accept)
                }
            }
        }
        _ => error_response(&ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn start_watch(
    shared: &Arc<Shared>,
    rt: &Arc<crate::registry::ResourceType>,
    ns: Option<&str>,
    name: Option<&str>,
    query: &HashMap<String, String>,
    accept: &str,
) -> Response<Body> {
    let (labels, mut fields) = match selectors(query, &rt.selectable_fields) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    if let Some(name) = name {
        let combined = match query.get("fieldSelector").filter(|f| !f.is_empty()) {
            Some(f) => format!("metadata.name={name},{f}"),
            None => format!("metadata.name={name}"),
        };
        fields = match FieldSelector::parse(&combined, &rt.selectable_fields) {
            Ok(f) => f,
            Err(e) => return error_response(&ApiError::bad_request(e)),
        };
    }
    let send_initial_events = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    if send_initial_events && !bookmarks {
        return error_response(&ApiError::invalid(
            rt,
            "",
            &[crate::schema::FieldError::forbidden(
                "allowWatchBookmarks",
                "allowWatchBookmarks must be set to true when sendInitialEvents is set",
            )],
        ));
    }
    let req = WatchRequest {
        rt: rt.clone(),
        namespace: ns.map(str::to_owned),
        labels,
        fields,
        resource_version: query.get("resourceVersion").cloned(),
        send_initial_events,
        bookmarks,
        timeout: query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|t| *t > 0)
            .map(Duration::from_secs),
        metadata_only: accept.contains("as=PartialObjectMetadata"),
    };
    match watch::start(shared, req) {
        Ok(body) => Response::builder()
            .status(200)
            .header("Content-Type", "application/json")
            .body(body)
            .unwrap(),
        Err(e) => error_response(&e),
    }
}
