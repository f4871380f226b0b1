//! The ApiVersions probe: which Kafka APIs (and versions) a broker serves. librdkafka does
//! not expose its own ApiVersions answer, so this sends the request itself — version 0, which
//! every broker answers before any authentication. Over TLS it is not sent (it would need the
//! handshake); the probe then reports nothing rather than guessing.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::BrokerError;

/// The admin APIs Tributary uses, by Kafka API key.
pub const ADMIN_APIS: &[(i16, &str)] = &[
    (3, "Metadata"),
    (19, "CreateTopics"),
    (20, "DeleteTopics"),
    (32, "DescribeConfigs"),
    (37, "CreatePartitions"),
    (44, "IncrementalAlterConfigs"),
];

/// `api key → (min version, max version)` as the broker at `address` reports them.
pub async fn probe(
    address: &str,
    timeout: Duration,
) -> Result<BTreeMap<i16, (i16, i16)>, BrokerError> {
    tokio::time::timeout(timeout, exchange(address))
        .await
        .map_err(|_| BrokerError::Timeout {
            api: "ApiVersions",
            after: timeout,
        })?
}

async fn exchange(address: &str) -> Result<BTreeMap<i16, (i16, i16)>, BrokerError> {
    let io = |e: std::io::Error| BrokerError::Unreachable(format!("ApiVersions to {address}: {e}"));
    let mut stream = TcpStream::connect(address).await.map_err(io)?;
    let client_id = b"tributary";
    let correlation_id: i32 = 1;
    let mut request = Vec::new();
    request.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    request.extend_from_slice(&0i16.to_be_bytes()); // version 0
    request.extend_from_slice(&correlation_id.to_be_bytes());
    request.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    request.extend_from_slice(client_id);
    stream
        .write_all(&(request.len() as i32).to_be_bytes())
        .await
        .map_err(io)?;
    stream.write_all(&request).await.map_err(io)?;

    let size = stream.read_i32().await.map_err(io)?;
    if !(4..=1 << 20).contains(&size) {
        return Err(BrokerError::Rejected {
            api: "ApiVersions",
            code: "InvalidResponse".into(),
            message: format!("response size {size}"),
        });
    }
    let mut body = vec![0; size as usize];
    stream.read_exact(&mut body).await.map_err(io)?;
    parse(&body, correlation_id)
}

fn parse(body: &[u8], correlation_id: i32) -> Result<BTreeMap<i16, (i16, i16)>, BrokerError> {
    let bad = |why: &str| BrokerError::Rejected {
        api: "ApiVersions",
        code: "InvalidResponse".into(),
        message: why.to_owned(),
    };
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], BrokerError> {
        let slice = body
            .get(at..at + n)
            .ok_or_else(|| bad("truncated response"))?;
        at += n;
        Ok(slice)
    };
    let i16_at = |b: &[u8]| i16::from_be_bytes([b[0], b[1]]);
    let i32_at = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if i32_at(take(4)?) != correlation_id {
        return Err(bad("correlation id mismatch"));
    }
    let error = i16_at(take(2)?);
    if error != 0 {
        return Err(BrokerError::Rejected {
            api: "ApiVersions",
            code: format!("error {error}"),
            message: "the broker refused ApiVersions".into(),
        });
    }
    let count = i32_at(take(4)?);
    let mut apis = BTreeMap::new();
    for _ in 0..count.max(0) {
        let key = i16_at(take(2)?);
        let min = i16_at(take(2)?);
        let max = i16_at(take(2)?);
        apis.insert(key, (min, max));
    }
    Ok(apis)
}

/// The admin APIs Tributary needs that `apis` lacks, by name.
pub fn missing_admin_apis(apis: &BTreeMap<i16, (i16, i16)>) -> Vec<String> {
    ADMIN_APIS
        .iter()
        .filter(|(key, _)| !apis.contains_key(key))
        .map(|(_, name)| (*name).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_version_0_response() {
        let mut body = Vec::new();
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&2i32.to_be_bytes());
        for (k, min, max) in [(19i16, 0i16, 7i16), (3, 0, 12)] {
            body.extend_from_slice(&k.to_be_bytes());
            body.extend_from_slice(&min.to_be_bytes());
            body.extend_from_slice(&max.to_be_bytes());
        }
        let apis = parse(&body, 1).unwrap();
        assert_eq!(apis[&19], (0, 7));
        assert_eq!(
            missing_admin_apis(&apis),
            [
                "DeleteTopics",
                "DescribeConfigs",
                "CreatePartitions",
                "IncrementalAlterConfigs"
            ]
        );
        assert!(parse(&body[..7], 1).is_err(), "truncated");
        assert!(parse(&body, 2).is_err(), "wrong correlation id");
    }
}
