//! Lag passes counted on the wire: a counting proxy (`support::kafka_proxy`) between every
//! client and a Tansu of the test's own, which advertises the proxy (or, for TLS, stunnel in
//! front of the proxy) as its address, so every connection — librdkafka's and the batched
//! group requests' own — passes through it. What it counts is what the broker received.
//!
//! These brokers are always Tansu started here, never `TRIBUTARY_TEST_BOOTSTRAP`: the proxy
//! only sees everything when the broker advertises it, and the harness cannot choose an
//! external broker's advertised address (the lag tests in `lag.rs` run the same batched path
//! against `TRIBUTARY_TEST_BOOTSTRAP`).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tributary::kafka::lag::batched::Path;
use tributary::kafka::lag::{GroupQuery, LagObserver, OffsetReset, RdKafkaLagObserver};
use tributary::kafka::wire::settings::Tls;
use tributary::kafka::wire::{BrokerConnection, WireSettings};
use tributary::kafka::{
    BrokerAdmin, ClientSettings, NewTopic, RdKafkaAdmin, RequestTally, Sensitive,
};

use crate::support::broker::{free_port, spawn_guarded_tansu_at, stop_guarded, wait_for};
use crate::support::kafka_proxy::CountingProxy;
use crate::support::tls::{certs, start_via, tls_broker, Certs, Mode};

/// Tansu behind a counting proxy that it advertises.
fn proxied_tansu() -> (CountingProxy, impl Drop) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tansu_port = free_port();
    let proxy = CountingProxy::start(listener, format!("127.0.0.1:{tansu_port}").parse().unwrap());
    let guard = spawn_guarded_tansu_at(tansu_port, &proxy.addr.to_string());
    wait_for(
        format!("127.0.0.1:{tansu_port}").parse().unwrap(),
        Duration::from_secs(20),
    );
    (proxy, Stop(Some(guard)))
}

struct Stop(Option<(std::process::Child, std::process::ChildStdin)>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            stop_guarded(g);
        }
    }
}

/// librdkafka properties of a client of `settings` (for the producer and the committer).
fn rdkafka_config(settings: &ClientSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.bootstrap_servers);
    for (k, v) in &settings.properties {
        config.set(k, v);
    }
    for (k, v) in &settings.secret_properties {
        config.set(k, v.expose());
    }
    config
}

/// Creates `topic` with 4 partitions, produces 10 records to each (one per batch: Tansu's end
/// offsets are exact then), and commits offset `3 * (i + 1)` on every partition for each of
/// `committed` groups.
async fn prepare(settings: &ClientSettings, topic: &str, committed: &[String]) {
    let admin = RdKafkaAdmin::connect(settings).unwrap();
    let outcomes = admin
        .create_topics(&[NewTopic {
            name: topic.to_owned(),
            partitions: 4,
            replication_factor: Some(1),
            config: Vec::new(),
        }])
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    let producer: BaseProducer = rdkafka_config(settings)
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    for p in 0..4 {
        for i in 0..10 {
            let payload = format!("record {i}");
            producer
                .send(
                    BaseRecord::to(topic)
                        .partition(p)
                        .key("k")
                        .payload(&payload),
                )
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    for (i, group) in committed.iter().enumerate() {
        let consumer: BaseConsumer = rdkafka_config(settings)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..4 {
            tpl.add_partition_offset(topic, p, Offset::Offset(3 * (i as i64 + 1)))
                .unwrap();
        }
        consumer.commit(&tpl, CommitMode::Sync).unwrap();
    }
}

fn queries(prefix: &str, n: usize, topic: &str) -> Vec<GroupQuery> {
    (0..n)
        .map(|i| GroupQuery::new(format!("{prefix}-{i}"), &[topic], OffsetReset::Earliest))
        .collect()
}

/// One pass, checked; returns what the proxy counted during it, by API.
async fn counted_pass(
    proxy: &CountingProxy,
    observer: &RdKafkaLagObserver,
    groups: &[GroupQuery],
    committed: usize,
) -> (BTreeMap<String, u64>, RequestTally) {
    let before = proxy.counts();
    let mut tally = RequestTally::default();
    let seen = observer.observe_tallied(groups, &mut tally).await.unwrap();
    // The proxy counts a request before it forwards it: all of the pass's are counted.
    let wire = proxy.counts().since(&before);
    for (i, g) in seen.iter().enumerate() {
        let lag = g
            .result
            .as_ref()
            .unwrap_or_else(|r| panic!("{}: {r}", g.group_id));
        let expected = if i < committed {
            4 * (10 - 3 * (i as u64 + 1))
        } else {
            40
        };
        assert_eq!(lag.total, expected, "group {} ({i})", g.group_id);
        assert_eq!(lag.has_committed, i < committed, "group {}", g.group_id);
    }
    (wire, tally)
}

/// 20 groups, then 200: each cold pass looks the new groups' coordinators up in one request;
/// each warm pass makes the same requests whatever the number of groups — one Metadata, two
/// ListOffsets, one OffsetFetch (one coordinator broker) — and no FindCoordinator.
async fn warm_passes_are_constant(proxy: &CountingProxy, settings: &ClientSettings) {
    let topic = format!("lag-wire-{}", std::process::id());
    let small = queries("small", 20, &topic);
    let large = queries("large", 200, &topic);
    let committed: Vec<String> = small.iter().take(3).map(|q| q.group_id.clone()).collect();
    prepare(settings, &topic, &committed).await;
    let observer = RdKafkaLagObserver::connect(settings).unwrap();
    assert_eq!(
        observer.path().await.unwrap(),
        Path::Batched,
        "Tansu serves v4 and v8"
    );

    let (cold_small, _) = counted_pass(proxy, &observer, &small, 3).await;
    let (warm_small, tally_small) = counted_pass(proxy, &observer, &small, 3).await;
    let (cold_large, _) = counted_pass(proxy, &observer, &large, 0).await;
    let started = Instant::now();
    let (warm_large, tally_large) = counted_pass(proxy, &observer, &large, 0).await;
    eprintln!(
        "on the wire: cold 20 groups {cold_small:?}; warm 20 {warm_small:?}; cold 200 {cold_large:?}; warm 200 {warm_large:?} ({:?})",
        started.elapsed()
    );
    assert_eq!(
        cold_small.get("FindCoordinator"),
        Some(&1),
        "{cold_small:?}"
    );
    assert_eq!(
        cold_large.get("FindCoordinator"),
        Some(&1),
        "{cold_large:?}"
    );
    let constant = BTreeMap::from([
        ("ListOffsets".to_owned(), 2),
        ("Metadata".to_owned(), 1),
        ("OffsetFetch".to_owned(), 1),
    ]);
    assert_eq!(warm_small, constant, "warm pass over 20 groups");
    assert_eq!(warm_large, constant, "warm pass over 200 groups");
    assert_eq!(tally_small.total(), 4, "{tally_small:?}");
    assert_eq!(tally_large.total(), 4, "{tally_large:?}");
}

#[tokio::test]
async fn a_warm_pass_makes_a_constant_number_of_requests_on_the_wire() {
    let (proxy, _tansu) = proxied_tansu();
    let settings = ClientSettings::plaintext(&proxy.addr.to_string(), Duration::from_secs(10));
    warm_passes_are_constant(&proxy, &settings).await;
}

/// The same over TLS with a client certificate: stunnel (mutual TLS) → proxy → Tansu, which
/// advertises stunnel. The batched requests' own connection honours the cluster's TLS settings
/// (CA, client certificate and key) as librdkafka's does.
#[tokio::test]
async fn over_tls_too() {
    if tls_broker(Mode::Mutual, "lag_wire::over_tls_too").is_none() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tansu_port = free_port();
    let proxy = CountingProxy::start(listener, format!("127.0.0.1:{tansu_port}").parse().unwrap());
    let broker = start_via(Mode::Mutual, tansu_port, proxy.addr.port());
    let certs = certs();
    let mut settings = ClientSettings::plaintext(&broker.bootstrap, Duration::from_secs(10));
    settings
        .properties
        .insert("security.protocol".into(), "ssl".into());
    settings
        .properties
        .insert("ssl.ca.pem".into(), Certs::read(&certs.ca));
    settings.properties.insert(
        "ssl.certificate.pem".into(),
        Certs::read(&certs.client_cert),
    );
    settings.secret_properties.insert(
        "ssl.key.pem".into(),
        Sensitive::new(Certs::read(&certs.client_key)),
    );
    warm_passes_are_constant(&proxy, &settings).await;
}

/// Tributary's own connection checks the broker's certificate against `spec.tls.caCert` and
/// presents the client certificate, as librdkafka's does: against stunnel requiring a client
/// certificate.
#[tokio::test]
async fn our_connection_verifies_the_broker_and_presents_the_client_certificate() {
    let Some(broker) = tls_broker(Mode::Mutual, "lag_wire::our_connection_verifies") else {
        return;
    };
    let certs = certs();
    let settings = |ca: &std::path::Path, client: bool| WireSettings {
        bootstrap: vec![broker.bootstrap.clone()],
        timeout: Duration::from_secs(5),
        tls: Some(Tls {
            ca_pem: Some(Certs::read(ca)),
            client_cert_pem: client.then(|| Certs::read(&certs.client_cert)),
            client_key_pem: client.then(|| Sensitive::new(Certs::read(&certs.client_key))),
        }),
        sasl: None,
    };
    let ok = BrokerConnection::open(&broker.bootstrap, &settings(&certs.ca, true))
        .await
        .unwrap();
    assert!(
        ok.versions().contains_key(&9),
        "ApiVersions answered over TLS"
    );

    let err = BrokerConnection::open(&broker.bootstrap, &settings(&certs.wrong_ca, true))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "TlsHandshakeFailed", "{err:?}");
    assert!(
        err.to_string().contains("not signed by spec.tls.caCert"),
        "{err}"
    );

    let err = BrokerConnection::open(&broker.bootstrap, &settings(&certs.ca, false))
        .await
        .unwrap_err();
    eprintln!("{err:?}");
    assert_eq!(err.reason(), "TlsHandshakeFailed", "{err:?}");
    assert!(
        err.to_string().contains("requires a client certificate"),
        "{err}"
    );
}
