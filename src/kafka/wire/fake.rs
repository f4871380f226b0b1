//! A scripted Kafka broker for the tests of this client (test builds only): it decodes each
//! request with the `kafka-protocol` crate's broker half (a dev-dependency feature) and answers
//! what the test's handler says, so error paths a real broker rarely takes (a coordinator that
//! moved, a connection that breaks, SASL refused) can be exercised on the wire.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One decoded request.
pub struct Request {
    pub key: ApiKey,
    pub version: i16,
    pub body: Bytes,
    /// Which connection of this broker it came on (0, 1, ...).
    pub connection: usize,
}

impl Request {
    pub fn decode<T: Decodable>(&self) -> T {
        T::decode(&mut self.body.clone(), self.version).unwrap()
    }
}

/// What the broker does with a request.
pub enum Reply {
    /// Answer with this response body (encoded for the request's version).
    Body(Vec<u8>),
    /// Close the connection without answering.
    Close,
}

/// `response` encoded for `version`.
pub fn body<T: Encodable>(response: &T, version: i16) -> Reply {
    let mut buf = BytesMut::new();
    response.encode(&mut buf, version).unwrap();
    Reply::Body(buf.to_vec())
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub struct FakeBroker {
    pub address: String,
    /// (api, version) of every request received, in order.
    pub seen: Arc<Mutex<Vec<(ApiKey, i16)>>>,
}

impl FakeBroker {
    /// A broker serving `versions` (ApiVersions is answered here) and answering every other
    /// request with `handler`.
    pub async fn start(
        versions: Vec<(ApiKey, (i16, i16))>,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let versions = Arc::new(versions);
        let log = seen.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(
                    stream,
                    n,
                    versions.clone(),
                    handler.clone(),
                    log.clone(),
                ));
                n += 1;
            }
        });
        Self { address, seen }
    }

    /// How many requests of `key` it received.
    pub fn count(&self, key: ApiKey) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == key)
            .count()
    }
}

/// The versions a Kafka 3.x broker serves of the APIs this client uses.
pub fn modern() -> Vec<(ApiKey, (i16, i16))> {
    Vec::from([
        (ApiKey::ApiVersions, (0, 3)),
        (ApiKey::FindCoordinator, (0, 4)),
        (ApiKey::OffsetFetch, (0, 8)),
        (ApiKey::DescribeGroups, (0, 5)),
        (ApiKey::SaslHandshake, (0, 1)),
        (ApiKey::SaslAuthenticate, (0, 2)),
    ])
}

async fn serve(
    mut stream: TcpStream,
    connection: usize,
    versions: Arc<Vec<(ApiKey, (i16, i16))>>,
    handler: Handler,
    log: Arc<Mutex<Vec<(ApiKey, i16)>>>,
) {
    loop {
        let Ok(size) = stream.read_i32().await else {
            return;
        };
        let mut frame = vec![0u8; size as usize];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let mut buf = Bytes::from(frame);
        let key = ApiKey::try_from(i16::from_be_bytes([buf[0], buf[1]])).unwrap();
        let version = i16::from_be_bytes([buf[2], buf[3]]);
        let header = RequestHeader::decode(&mut buf, key.request_header_version(version)).unwrap();
        log.lock().unwrap().push((key, version));
        let request = Request {
            key,
            version,
            body: buf,
            connection,
        };
        let reply = if key == ApiKey::ApiVersions {
            let keys = versions
                .iter()
                .map(|(k, (min, max))| {
                    ApiVersion::default()
                        .with_api_key(*k as i16)
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect();
            body(&ApiVersionsResponse::default().with_api_keys(keys), version)
        } else {
            handler(&request)
        };
        let Reply::Body(body) = reply else {
            return;
        };
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, key.response_header_version(version))
            .unwrap();
        out.extend_from_slice(&body);
        let mut framed = (out.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&out);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
