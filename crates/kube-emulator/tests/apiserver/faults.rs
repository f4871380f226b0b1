//! Fault injection

use super::*;

use std::time::{Duration, Instant};

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn injected_faults_and_delays() {
    let (api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();

    api.fail_next(("GET", "/kafkatopics/t"), 500, 1);
    let s = status_of(topics.get("t").await);
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert!(topics.get("t").await.is_ok(), "only the next request fails");

    api.fail_next(("PATCH", "/kafkatopics/"), 409, 1);
    let s = status_of(
        topics
            .patch("t", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));

    // kube's client retries 429 by itself.
    api.clear_requests();
    api.fail_next("/kafkatopics", 429, 2);
    assert_eq!(
        topics
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let injected = api
        .requests()
        .iter()
        .filter(|r| r.injected && r.status == 429)
        .count();
    assert_eq!(injected, 2);

    api.set_delay(("GET", "/kafkatopics/t"), Duration::from_millis(300));
    let started = Instant::now();
    topics.get("t").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    api.clear_faults();
    let started = Instant::now();
    topics.get("t").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
}

/// A fault with `Retry-After`: the header and `details.retryAfterSeconds`, on exactly the
/// requests it was set for; every request is recorded with its arrival time and User-Agent.
#[tokio::test]
async fn injected_retry_after_and_request_records() {
    let (api, _client) = setup().await;
    let addr = api.url().trim_start_matches("http://").to_owned();
    let get = |path: &'static str| {
        let addr = addr.clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: faults-test/1\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        }
    };
    const PATH: &str = "/apis/tributary.io/v1alpha1/namespaces/default/kafkatopics";
    api.clear_requests();
    let before = Instant::now();
    api.fail_next_retry_after(("GET", "/kafkatopics"), 429, 1, 7);
    let response = get(PATH).await;
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case("retry-after: 7")),
        "{head}"
    );
    assert!(body.contains(r#""retryAfterSeconds":7"#), "{body}");
    assert!(body.contains(r#""reason":"TooManyRequests""#), "{body}");
    // The fault was for one request only; the next has no Retry-After.
    let response = get(PATH).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(!response.to_ascii_lowercase().contains("retry-after"));

    let records = api.requests();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records[0].injected && records[0].status == 429);
    assert!(!records[1].injected && records[1].status == 200);
    for r in &records {
        assert_eq!(r.user_agent, "faults-test/1");
        assert!(r.at >= before && r.at <= Instant::now());
    }
    assert!(records[0].at <= records[1].at);
}
