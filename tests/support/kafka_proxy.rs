//! A counting TCP proxy for the Kafka protocol: it forwards bytes unchanged in both
//! directions and counts every request frame a client sends, by API key, from the request
//! header on the wire (the first 8 bytes of a frame: api key, api version, correlation id —
//! the same in every header version; `tests/chaos/wire.rs` decodes further for its own
//! purposes). Plain threads, so it keeps forwarding while a test blocks in a synchronous
//! client call.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Kafka API names by key, for the keys a lag pass and its set-up use.
pub fn api_name(key: i16) -> String {
    match key {
        0 => "Produce".into(),
        1 => "Fetch".into(),
        2 => "ListOffsets".into(),
        3 => "Metadata".into(),
        8 => "OffsetCommit".into(),
        9 => "OffsetFetch".into(),
        10 => "FindCoordinator".into(),
        11 => "JoinGroup".into(),
        12 => "Heartbeat".into(),
        15 => "DescribeGroups".into(),
        17 => "SaslHandshake".into(),
        18 => "ApiVersions".into(),
        19 => "CreateTopics".into(),
        36 => "SaslAuthenticate".into(),
        69 => "ConsumerGroupDescribe".into(),
        other => format!("api{other}"),
    }
}

#[derive(Default, Debug, Clone)]
pub struct Counts {
    /// api key → request frames.
    pub requests: BTreeMap<i16, u64>,
    pub connections: u64,
}

impl Counts {
    /// `self - before`, by API name, without zeroes.
    pub fn since(&self, before: &Counts) -> BTreeMap<String, u64> {
        self.requests
            .iter()
            .map(|(k, n)| {
                (
                    api_name(*k),
                    n - before.requests.get(k).copied().unwrap_or(0),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

pub struct CountingProxy {
    pub addr: SocketAddr,
    counts: Arc<Mutex<Counts>>,
}

impl CountingProxy {
    /// Listens on `listener`, forwarding each connection to `upstream`.
    pub fn start(listener: TcpListener, upstream: SocketAddr) -> Self {
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Mutex::new(Counts::default()));
        let shared = counts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                shared.lock().unwrap().connections += 1;
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counts = shared.clone();
                std::thread::spawn(move || requests(client, server, counts));
                std::thread::spawn(move || copy(s2, c2));
            }
        });
        Self { addr, counts }
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap().clone()
    }
}

/// Client → broker: frame by frame, counting each request's API key.
fn requests(mut client: TcpStream, mut server: TcpStream, counts: Arc<Mutex<Counts>>) {
    loop {
        let mut size = [0u8; 4];
        if client.read_exact(&mut size).is_err() {
            break;
        }
        let mut frame = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
        if client.read_exact(&mut frame).is_err() {
            break;
        }
        if frame.len() >= 2 {
            let key = i16::from_be_bytes([frame[0], frame[1]]);
            *counts.lock().unwrap().requests.entry(key).or_insert(0) += 1;
        }
        if server.write_all(&size).is_err() || server.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

/// Broker → client, unchanged.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
