use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, GroupId, OffsetFetchRequest, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::connection::{encode_request, BrokerConnection};
use super::fake::{body, modern, FakeBroker, Reply};
use super::sasl::server::ScramServer;
use super::settings::{Mechanism, Sasl, WireSettings};
use crate::kafka::{BrokerError, Sensitive};

/// The request header v2 of these tests: api key, version, correlation id 7, client id
/// `tributary-lag` as a (non-compact) int16-length string, no tagged fields.
fn header(key: u8, version: u8) -> Vec<u8> {
    let mut h = vec![0, key, 0, version, 0, 0, 0, 7, 0, 13];
    h.extend_from_slice(b"tributary-lag");
    h.push(0);
    h
}

fn framed(mut bytes: Vec<u8>) -> Vec<u8> {
    let mut out = (bytes.len() as i32).to_be_bytes().to_vec();
    out.append(&mut bytes);
    out
}

/// FindCoordinator v4 (KIP-699; flexible since v3): KeyType int8, then CoordinatorKeys as a
/// compact array (length + 1 as an unsigned varint) of compact strings (length + 1, bytes),
/// then the empty tagged-field section.
#[test]
fn find_coordinator_v4_batches_the_keys_as_the_protocol_says() {
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![
            StrBytes::from_static_str("a"),
            StrBytes::from_static_str("bc"),
        ]);
    let mut expected = header(10, 4);
    expected.extend_from_slice(&[0, 3, 2, b'a', 3, b'b', b'c', 0]);
    assert_eq!(encode_request(&request, 4, 7).unwrap(), framed(expected));
}

/// OffsetFetch v8 (KIP-709): Groups, a compact array of {GroupId compact string, Topics
/// compact nullable array of {Name compact string, PartitionIndexes compact array of int32,
/// tagged fields}, tagged fields}, then RequireStable (bool) and tagged fields.
#[test]
fn offset_fetch_v8_carries_many_groups_as_the_protocol_says() {
    let group = |id: &'static str, topics: Option<Vec<(&'static str, Vec<i32>)>>| {
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str(id)))
            .with_topics(topics.map(|ts| {
                ts.into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopics::default()
                            .with_name(TopicName(StrBytes::from_static_str(t)))
                            .with_partition_indexes(ps)
                    })
                    .collect()
            }))
    };
    let request = OffsetFetchRequest::default().with_groups(vec![
        group("g", Some(vec![("t", vec![0, 1])])),
        group("h", None),
    ]);
    let mut expected = header(9, 8);
    expected.extend_from_slice(&[
        3, // two groups
        2, b'g', // "g"
        2,    // one topic
        2, b't', // "t"
        3, 0, 0, 0, 0, 0, 0, 0, 1, // partitions [0, 1]
        0, // topic tagged fields
        0, // group tagged fields
        2, b'h', // "h"
        0,    // topics: null (every topic)
        0,    // group tagged fields
        0,    // RequireStable false
        0,    // tagged fields
    ]);
    assert_eq!(encode_request(&request, 8, 7).unwrap(), framed(expected));
}

fn settings(address: &str, sasl: Option<Sasl>) -> WireSettings {
    WireSettings {
        bootstrap: vec![address.to_owned()],
        timeout: Duration::from_secs(5),
        tls: None,
        sasl,
    }
}

fn sasl(mechanism: Mechanism, password: &str) -> Sasl {
    Sasl {
        mechanism,
        username: "svc".into(),
        password: Sensitive::new(password),
    }
}

/// A broker that knows user `svc` with password `right` for SCRAM-SHA-512 only, and requires
/// authentication before anything else.
async fn scram_broker() -> FakeBroker {
    let servers: Arc<Mutex<Vec<Option<ScramServer>>>> = Arc::default();
    FakeBroker::start(modern(), move |r| {
        let mut servers = servers.lock().unwrap();
        if servers.len() <= r.connection {
            servers.resize_with(r.connection + 1, || None);
        }
        match r.key {
            ApiKey::SaslHandshake => {
                let h: SaslHandshakeRequest = r.decode();
                let ok = h.mechanism.as_str() == "SCRAM-SHA-512";
                body(
                    &SaslHandshakeResponse::default()
                        .with_error_code(if ok { 0 } else { 33 })
                        .with_mechanisms(vec![StrBytes::from_static_str("SCRAM-SHA-512")]),
                    r.version,
                )
            }
            ApiKey::SaslAuthenticate => {
                let a: SaslAuthenticateRequest = r.decode();
                let server = &mut servers[r.connection];
                let answer = match server {
                    None => {
                        let mut s = ScramServer::new(Mechanism::ScramSha512, "right");
                        let first = s.first(&a.auth_bytes);
                        *server = Some(s);
                        Ok(first)
                    }
                    Some(s) => s.last(&a.auth_bytes),
                };
                let response = match answer {
                    Ok(bytes) => SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
                    Err(()) => SaslAuthenticateResponse::default()
                        .with_error_code(58)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
                        ))),
                };
                body(&response, r.version)
            }
            _ => Reply::Close,
        }
    })
    .await
}

#[tokio::test]
async fn scram_sha_512_authenticates_and_a_wrong_password_is_refused_without_showing_it() {
    let broker = scram_broker().await;
    let connection = BrokerConnection::open(
        &broker.address,
        &settings(&broker.address, Some(sasl(Mechanism::ScramSha512, "right"))),
    )
    .await
    .unwrap();
    assert_eq!(connection.max_version(ApiKey::OffsetFetch), Some(8));
    assert_eq!(
        broker.seen.lock().unwrap().clone(),
        [
            (ApiKey::ApiVersions, 0),
            (ApiKey::SaslHandshake, 1),
            (ApiKey::SaslAuthenticate, 2),
            (ApiKey::SaslAuthenticate, 2)
        ]
    );

    let err = BrokerConnection::open(
        &broker.address,
        &settings(
            &broker.address,
            Some(sasl(Mechanism::ScramSha512, "hunter2")),
        ),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, BrokerError::Rejected { api: "SaslAuthenticate", code, .. } if code == "SaslAuthenticationFailed"),
        "{err:?}"
    );
    assert!(text.contains("invalid credentials"), "{text}");
    assert!(!text.contains("hunter2"), "never the password: {text}");

    let err = BrokerConnection::open(
        &broker.address,
        &settings(&broker.address, Some(sasl(Mechanism::ScramSha256, "right"))),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not accept SASL mechanism SCRAM-SHA-256"),
        "{err}"
    );
}

#[tokio::test]
async fn plain_sends_the_credentials_once() {
    let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let seen = got.clone();
    let broker = FakeBroker::start(modern(), move |r| match r.key {
        ApiKey::SaslHandshake => body(&SaslHandshakeResponse::default(), r.version),
        ApiKey::SaslAuthenticate => {
            let a: SaslAuthenticateRequest = r.decode();
            seen.lock().unwrap().push(a.auth_bytes.to_vec());
            body(&SaslAuthenticateResponse::default(), r.version)
        }
        _ => Reply::Close,
    })
    .await;
    BrokerConnection::open(
        &broker.address,
        &settings(&broker.address, Some(sasl(Mechanism::Plain, "pw"))),
    )
    .await
    .unwrap();
    assert_eq!(got.lock().unwrap().clone(), [b"\0svc\0pw".to_vec()]);
}

#[tokio::test]
async fn a_broker_that_does_not_answer_is_unreachable_within_the_timeout() {
    let broker = FakeBroker::start(modern(), |_| Reply::Close).await;
    let mut connection = BrokerConnection::open(&broker.address, &settings(&broker.address, None))
        .await
        .unwrap();
    let err = connection
        .call("FindCoordinator", &FindCoordinatorRequest::default(), 4)
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Unreachable(_)), "{err:?}");
    assert!(err.to_string().contains(&broker.address), "{err}");
}
