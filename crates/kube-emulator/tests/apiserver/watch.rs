//! Watch

use super::*;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher;
use kube::ResourceExt;
use kube_emulator::{ApiServer, Options};
use serde_json::json;
use tributary::api::{crds, KafkaTopic};

#[tokio::test]
async fn watch_from_a_resource_version_gets_later_changes() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    let a = topics
        .create(&PostParams::default(), &topic("a", 1))
        .await
        .unwrap();
    let from = a.resource_version().unwrap();
    topics
        .create(&PostParams::default(), &topic("b", 1))
        .await
        .unwrap();
    topics
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 2}})),
        )
        .await
        .unwrap();

    let mut stream = topics
        .watch(&WatchParams::default().disable_bookmarks(), &from)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Added(t) => assert_eq!(t.name_any(), "b"),
        other => panic!("{other:?}"),
    }
    match next_event(&mut stream).await {
        WatchEvent::Modified(t) => assert_eq!((t.name_any().as_str(), t.spec.partitions), ("a", 2)),
        other => panic!("{other:?}"),
    }
    topics.delete("b", &DeleteParams::default()).await.unwrap();
    match next_event(&mut stream).await {
        WatchEvent::Deleted(t) => {
            assert_eq!(t.name_any(), "b");
            assert!(
                t.resource_version().unwrap().parse::<u64>().unwrap()
                    > from.parse::<u64>().unwrap()
            );
        }
        other => panic!("{other:?}"),
    }

    // A watch of one object by name (kube-runtime's single-object watches).
    let mut one = topics
        .watch(
            &WatchParams::default()
                .fields("metadata.name=a")
                .disable_bookmarks(),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    match next_event(&mut one).await {
        WatchEvent::Added(t) => assert_eq!(t.name_any(), "a"),
        other => panic!("{other:?}"),
    }
    topics
        .create(&PostParams::default(), &topic("c", 1))
        .await
        .unwrap();
    topics
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 3}})),
        )
        .await
        .unwrap();
    match next_event(&mut one).await {
        WatchEvent::Modified(t) => assert_eq!((t.name_any().as_str(), t.spec.partitions), ("a", 3)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn watch_label_selector_transitions() {
    let (_api, client) = setup().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &configmap("x", &[("app", "a")]))
        .await
        .unwrap();
    let mut stream = cms
        .watch(
            &WatchParams::default().labels("app=a").disable_bookmarks(),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        next_event(&mut stream).await,
        WatchEvent::Added(_)
    ));
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "b"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Deleted(c) if c.name_any() == "x"));
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "a"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Added(c) if c.name_any() == "x"));
}

#[tokio::test]
async fn bookmarks_only_when_asked_for() {
    let api = ApiServer::start_with(Options {
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    api.register_crds(&crds::all());
    let topics = topics_api(&api.client());
    let t = topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();
    let rv = t.resource_version().unwrap();

    let mut with = topics
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut with).await {
        WatchEvent::Bookmark(b) => {
            assert_eq!(b.types.kind, "KafkaTopic");
            assert!(
                b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap()
            );
        }
        other => panic!("{other:?}"),
    }

    let mut without = topics
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let quiet = tokio::time::timeout(Duration::from_millis(400), without.next()).await;
    assert!(quiet.is_err(), "no event expected, got {quiet:?}");
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 2}})),
        )
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut without).await,
        WatchEvent::Modified(_)
    ));

    // The streaming list: initial ADDED events, then the initial-events-end bookmark.
    let mut streaming = topics
        .watch(&WatchParams::default().initial_events(), "0")
        .await
        .unwrap()
        .boxed();
    assert!(
        matches!(next_event(&mut streaming).await, WatchEvent::Added(t) if t.name_any() == "t")
    );
    match next_event(&mut streaming).await {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("{other:?}"),
    }

    // timeoutSeconds ends the stream.
    let started = Instant::now();
    let mut short = topics
        .watch(&WatchParams::default().disable_bookmarks().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    let mut ended = false;
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(5), short.next()).await {
        if next.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended && started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn expired_resource_versions_get_410() {
    let api = ApiServer::start_with(Options {
        history_limit: 3,
        ..Default::default()
    })
    .await;
    api.register_crds(&crds::all());
    let topics = topics_api(&api.client());
    let t = topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();
    let old = t.resource_version().unwrap();
    for p in 2..6 {
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"partitions": p}})),
            )
            .await
            .unwrap();
    }
    // A watch: HTTP 200, then an ERROR event with a 410 Status.
    let mut stream = topics
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(s) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
            assert!(
                s.message.starts_with("too old resource version"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .is_none());
    // An exact list at that version.
    let s = status_of(
        topics
            .list(&ListParams::default().at(&old).matching(VersionMatch::Exact))
            .await,
    );
    assert_eq!(s.code, 410);
    // Within the history, an exact list is the past state.
    let current = topics.get("t").await.unwrap();
    let rv: u64 = current.resource_version().unwrap().parse().unwrap();
    let past = topics
        .list(
            &ListParams::default()
                .at(&(rv - 1).to_string())
                .matching(VersionMatch::Exact),
        )
        .await
        .unwrap();
    assert_eq!(past.items[0].spec.partitions, 4);

    // compact() forgets everything.
    api.compact();
    let mut stream = topics
        .watch(&WatchParams::default(), &(rv - 1).to_string())
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Error(s) if s.code == 410));
    let mut ok = topics
        .watch(&WatchParams::default().disable_bookmarks(), &rv.to_string())
        .await
        .unwrap()
        .boxed();
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 9}})),
        )
        .await
        .unwrap();
    assert!(matches!(next_event(&mut ok).await, WatchEvent::Modified(_)));
}

async fn until_init_done(
    stream: &mut (impl futures::Stream<Item = Result<watcher::Event<KafkaTopic>, watcher::Error>>
              + Unpin),
) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, stream.try_next())
            .await
            .expect("watcher event in time")
        {
            Ok(Some(watcher::Event::InitApply(t))) => names.push(t.name_any()),
            Ok(Some(watcher::Event::InitDone)) => return names,
            Ok(Some(_)) => {}
            Ok(None) => panic!("watcher ended"),
            Err(e) => panic!("watcher error {e}"),
        }
    }
}

#[tokio::test]
async fn a_watcher_survives_dropped_watches() {
    let (api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();
    // The watcher only watches while polled: poll it from a task.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        let mut stream = watcher(topics_api(&client), watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    let mut stream = Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (e, rx))
    }));
    assert_eq!(until_init_done(&mut stream).await, vec!["t"]);
    api.wait_for_watches(1).await;

    // Drop every watch and hold new ones back while a change is made.
    api.set_delay(("GET", "watch=true"), Duration::from_millis(500));
    api.drop_watches();
    eventually("the watch to close", || async { api.open_watches() == 0 }).await;
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 4}})),
        )
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, stream.try_next())
            .await
            .expect("watcher event in time")
        {
            Ok(Some(watcher::Event::Apply(t))) if t.spec.partitions == 4 => break,
            Ok(Some(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    api.clear_faults();
    assert!(
        api.requests()
            .iter()
            .filter(|r| r.path.contains("watch=true"))
            .count()
            >= 2
    );

    // A change while dropped, then a compaction: the rewatch gets 410 and the watcher relists.
    api.wait_for_watches(1).await;
    api.set_delay(("GET", "watch=true"), Duration::from_millis(500));
    api.drop_watches();
    eventually("the watch to close", || async { api.open_watches() == 0 }).await;
    topics
        .create(&PostParams::default(), &topic("u", 1))
        .await
        .unwrap();
    api.compact();
    let mut saw_gone = false;
    loop {
        match tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("watcher event in time")
        {
            Some(Err(watcher::Error::WatchError(s))) if s.code == 410 => saw_gone = true,
            Some(Ok(watcher::Event::InitDone)) if saw_gone => break,
            Some(Ok(watcher::Event::Apply(t))) => panic!("{} seen without a relist", t.name_any()),
            Some(_) => {}
            None => panic!("watcher ended"),
        }
    }
    api.clear_faults();
    let listed = topics.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    pump.abort();
}
