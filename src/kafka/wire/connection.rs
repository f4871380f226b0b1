//! One broker connection of our own: TCP, then TLS when the cluster has `spec.tls`, then
//! ApiVersions (v0, which every broker answers), then SASL when the cluster has `spec.sasl`
//! (SaslHandshake v1, SaslAuthenticate up to v2). After that, [`BrokerConnection::call`] sends
//! one request and awaits its response, one at a time, each bounded by the cluster's request
//! timeout. Messages are encoded and decoded by the `kafka-protocol` crate.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, OffsetFetchRequest, OffsetFetchResponse,
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::sasl::{random_nonce, Exchange, Step};
use super::settings::WireSettings;
use super::tls;
use crate::kafka::BrokerError;

/// The largest response accepted (a batched OffsetFetch of thousands of partitions is a few
/// MiB).
const MAX_RESPONSE: i32 = 256 << 20;

const CLIENT_ID: &str = "tributary-lag";

/// A request this client sends, with its API key and its response. (kafka-protocol's own
/// `Request` trait needs its broker half, which is not built.)
pub trait Request: Encodable + HeaderVersion {
    const KEY: ApiKey;
    type Response: Decodable + HeaderVersion;
}

macro_rules! requests {
    ($($request:ty => $response:ty, $key:expr;)*) => {
        $(impl Request for $request {
            const KEY: ApiKey = $key;
            type Response = $response;
        })*
    };
}

requests! {
    ApiVersionsRequest => ApiVersionsResponse, ApiKey::ApiVersions;
    SaslHandshakeRequest => SaslHandshakeResponse, ApiKey::SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, ApiKey::SaslAuthenticate;
    FindCoordinatorRequest => FindCoordinatorResponse, ApiKey::FindCoordinator;
    OffsetFetchRequest => OffsetFetchResponse, ApiKey::OffsetFetch;
    DescribeGroupsRequest => DescribeGroupsResponse, ApiKey::DescribeGroups;
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// An open, authenticated connection to one broker.
pub struct BrokerConnection {
    address: String,
    stream: Box<dyn Stream>,
    correlation: i32,
    timeout: Duration,
    /// api key → (min, max) version the broker serves.
    versions: BTreeMap<i16, (i16, i16)>,
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl BrokerConnection {
    /// Connects to `address` (`host:port`) as `settings` say, within their timeout.
    pub async fn open(address: &str, settings: &WireSettings) -> Result<Self, BrokerError> {
        tokio::time::timeout(settings.timeout, Self::open_unbounded(address, settings))
            .await
            .map_err(|_| {
                BrokerError::Unreachable(format!(
                    "{address}: no connection within {:?}",
                    settings.timeout
                ))
            })?
    }

    async fn open_unbounded(address: &str, settings: &WireSettings) -> Result<Self, BrokerError> {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| BrokerError::Unreachable(format!("{address}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &settings.tls {
            None => Box::new(tcp),
            Some(t) => {
                let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
                let tls = tls::connector(t)?
                    .connect(tls::server_name(host)?, tcp)
                    .await
                    .map_err(|e| BrokerError::Tls(format!("{address}: {}", tls::explain(&e))))?;
                Box::new(tls)
            }
        };
        let mut conn = Self {
            address: address.to_owned(),
            stream,
            correlation: 0,
            timeout: settings.timeout,
            versions: BTreeMap::new(),
        };
        let answer = conn
            .call("ApiVersions", &ApiVersionsRequest::default(), 0)
            .await?;
        if answer.error_code != 0 {
            return Err(BrokerError::Rejected {
                api: "ApiVersions",
                code: error_name(answer.error_code),
                message: format!("{address} refused ApiVersions v0"),
            });
        }
        conn.versions = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(sasl) = &settings.sasl {
            conn.authenticate(sasl).await?;
        }
        Ok(conn)
    }

    /// The broker this connects to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The highest version of `key` the broker serves, if it serves it.
    pub fn max_version(&self, key: ApiKey) -> Option<i16> {
        self.versions.get(&(key as i16)).map(|(_, max)| *max)
    }

    /// api key → (min, max) version, as the broker announced them.
    pub fn versions(&self) -> &BTreeMap<i16, (i16, i16)> {
        &self.versions
    }

    async fn authenticate(&mut self, sasl: &super::settings::Sasl) -> Result<(), BrokerError> {
        let handshake = self.max_version(ApiKey::SaslHandshake).unwrap_or(-1);
        let authenticate = self.max_version(ApiKey::SaslAuthenticate).unwrap_or(-1);
        if handshake < 1 || authenticate < 0 {
            return Err(BrokerError::Unsupported {
                api: "SaslAuthenticate",
                message: format!(
                    "{} does not serve SaslHandshake v1 and SaslAuthenticate",
                    self.address
                ),
            });
        }
        let mechanism = sasl.mechanism.name();
        let answer = self
            .call(
                "SaslHandshake",
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism)),
                1,
            )
            .await?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(BrokerError::Rejected {
                api: "SaslHandshake",
                code: error_name(answer.error_code),
                message: format!(
                    "{} does not accept SASL mechanism {mechanism} (spec.sasl.mechanism); it offers {offered:?}",
                    self.address
                ),
            });
        }
        let nonce = random_nonce().map_err(BrokerError::Client)?;
        let mut exchange = Exchange::new(sasl, nonce);
        let version = authenticate.min(2);
        let mut answer = Vec::new();
        let refused = |message: String| BrokerError::Rejected {
            api: "SaslAuthenticate",
            code: "SaslAuthenticationFailed".into(),
            message,
        };
        loop {
            match exchange.next(&answer).map_err(|e| refused(e.to_string()))? {
                Step::Done => return Ok(()),
                Step::Send(bytes) => {
                    let reply = self
                        .call(
                            "SaslAuthenticate",
                            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)),
                            version,
                        )
                        .await?;
                    if reply.error_code != 0 {
                        let text = reply
                            .error_message
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| error_name(reply.error_code));
                        return Err(refused(format!(
                            "{} refused user {} with {mechanism}: {text}",
                            self.address, sasl.username
                        )));
                    }
                    answer = reply.auth_bytes.to_vec();
                }
            }
        }
    }

    /// Sends `request` as `version` of API `api` and awaits its response, within the timeout.
    /// A broken connection is [`BrokerError::Unreachable`]; the connection is then unusable.
    pub async fn call<R: Request>(
        &mut self,
        api: &'static str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, BrokerError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.exchange(api, request, version))
            .await
            .map_err(|_| BrokerError::Timeout {
                api,
                after: timeout,
            })?
    }

    async fn exchange<R: Request>(
        &mut self,
        api: &'static str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, BrokerError> {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let frame = encode_request(request, version, correlation)
            .map_err(|e| BrokerError::Client(format!("{api} v{version}: {e}")))?;
        // A TLS alert after the handshake (TLS 1.3 refuses a missing client certificate
        // there) is a TLS failure, explained; anything else a broken connection.
        let io = |e: std::io::Error| {
            if tls::alert(&e) {
                BrokerError::Tls(format!("{}: {}", self.address, tls::explain(&e)))
            } else {
                BrokerError::Unreachable(format!("{}: {api}: {e}", self.address))
            }
        };
        self.stream.write_all(&frame).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;
        let size = self.stream.read_i32().await.map_err(io)?;
        if !(4..=MAX_RESPONSE).contains(&size) {
            return Err(invalid(api, format!("response size {size}")));
        }
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body).await.map_err(io)?;
        decode_response::<R>(Bytes::from(body), version, correlation).map_err(|e| invalid(api, e))
    }
}

fn invalid(api: &'static str, message: String) -> BrokerError {
    BrokerError::Rejected {
        api,
        code: "InvalidResponse".into(),
        message,
    }
}

/// A request frame: the length prefix, the request header (the version the API's version
/// calls for), the body.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation: i32,
) -> Result<Vec<u8>, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut buf, version)
        .map_err(|e| e.to_string())?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.to_vec())
}

/// A response body (after the length prefix): its header, checked against `correlation`, then
/// the response.
pub fn decode_response<R: Request>(
    mut body: Bytes,
    version: i16,
    correlation: i32,
) -> Result<R::Response, String> {
    let header = ResponseHeader::decode(
        &mut body,
        <R::Response as HeaderVersion>::header_version(version),
    )
    .map_err(|e| e.to_string())?;
    if header.correlation_id != correlation {
        return Err(format!(
            "correlation id {} where {correlation} was expected",
            header.correlation_id
        ));
    }
    R::Response::decode(&mut body, version).map_err(|e| e.to_string())
}

/// The name of a Kafka error code, as librdkafka's names read (`NotCoordinator`).
pub fn error_name(code: i16) -> String {
    use kafka_protocol::error::ParseResponseErrorCode;
    match code.err() {
        None => "NoError".into(),
        Some(e) => format!("{e:?}"),
    }
}
