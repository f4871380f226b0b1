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
