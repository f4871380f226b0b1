//! A TCP proxy in front of the test broker that the broker advertises as its own address, so
//! every Kafka connection of the operator (bootstrap and broker connections alike) passes
//! through it. It forwards bytes unchanged and records each CreateTopics and DeleteTopics
//! request: its topics, when it was sent and when its response came back (or its connection
//! ended), and every (api key, version) seen, from which the negotiated versions show.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::wire::{self, Topics};

/// One CreateTopics or DeleteTopics request.
#[derive(Debug, Clone)]
pub struct AdminCall {
    pub topics: Topics,
    pub version: i16,
    pub sent: Instant,
    /// When its response arrived, or its connection ended; `None` while in flight.
    pub done: Option<Instant>,
}

#[derive(Default)]
pub struct Log {
    pub calls: Vec<AdminCall>,
    pub versions: BTreeSet<(i16, i16)>,
    /// Frames the decoder could not read (a failure of the test, reported at the end).
    pub undecodable: Vec<String>,
    pub connections: usize,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
}

impl Proxy {
    /// Listens on `listener`; connects each client to `upstream`.
    pub fn start(listener: std::net::TcpListener, upstream: SocketAddr) -> Proxy {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        tokio::spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                shared.lock().unwrap().connections += 1;
                tokio::spawn(connection(client, upstream, shared.clone()));
            }
        });
        Proxy { addr, log }
    }
}

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.ok()?;
    let n = i32::from_be_bytes(len);
    let mut frame = vec![0u8; 4 + n.max(0) as usize];
    frame[..4].copy_from_slice(&len);
    r.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

async fn connection(client: TcpStream, upstream: SocketAddr, log: Arc<Mutex<Log>>) {
    // The broker is down: the client sees its connection closed, as with a dead broker.
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client_r, mut client_w) = client.into_split();
    let (mut server_r, mut server_w) = server.into_split();
    // Correlation id -> index in `log.calls`, for the calls of this connection in flight.
    let pending: Arc<Mutex<HashMap<i32, usize>>> = Arc::default();
    let requests = async {
        while let Some(frame) = read_frame(&mut client_r).await {
            match wire::decode(&frame[4..]) {
                Ok((header, topics)) => {
                    let mut log = log.lock().unwrap();
                    log.versions.insert((header.api_key, header.api_version));
                    if let Some(topics) = topics {
                        log.calls.push(AdminCall {
                            topics,
                            version: header.api_version,
                            sent: Instant::now(),
                            done: None,
                        });
                        let index = log.calls.len() - 1;
                        pending.lock().unwrap().insert(header.correlation_id, index);
                    }
                }
                Err(e) => log.lock().unwrap().undecodable.push(e),
            }
            if server_w.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let responses = async {
        while let Some(frame) = read_frame(&mut server_r).await {
            if frame.len() >= 8 {
                let correlation = i32::from_be_bytes(frame[4..8].try_into().unwrap());
                if let Some(i) = pending.lock().unwrap().remove(&correlation) {
                    log.lock().unwrap().calls[i].done = Some(Instant::now());
                }
            }
            if client_w.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = requests => {}
        _ = responses => {}
    }
    let now = Instant::now();
    let mut log = log.lock().unwrap();
    for (_, i) in pending.lock().unwrap().drain() {
        log.calls[i].done.get_or_insert(now);
    }
}
