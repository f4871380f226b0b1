//! A Kafka broker double that answers instantly, for measuring the operator's own cost where a
//! real broker's cost would hide it (50,000 topics). It is NOT a broker: it keeps topic names,
//! partition counts and configs in memory and speaks just enough of the Kafka wire protocol over
//! TCP for `tributary operator` (the real release binary, through librdkafka) to create and
//! observe topics: ApiVersions (v0-v3), Metadata (v4), CreateTopics (v2-v4), DescribeConfigs
//! (v1), CreatePartitions (v0-v1), IncrementalAlterConfigs (v0) and DeleteTopics (v1-v3). It
//! advertises only non-flexible versions of those (ApiVersions aside), so no request but
//! ApiVersions carries tagged fields. Any other request closes the connection.
//!
//! Hand-written rather than the `kafka-protocol` crate: eight message layouts at fixed versions
//! are a few hundred lines, while the crate (every message of every version, generated) would
//! add minutes of release compilation to every bench run for a test double.
//!
//! Each topic lists its set configs as DYNAMIC_TOPIC_CONFIG and a fixed set of defaults as
//! DEFAULT_CONFIG (as Apache Kafka lists every config), so the operator parses answers of a
//! realistic size. The double runs on its own thread (`kafka-double`), so its CPU is measured
//! apart from the bench's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The thread the double runs on (its CPU is read from /proc/self/task by this name).
pub(crate) const THREAD: &str = "kafka-double";

const NODE_ID: i32 = 1;

/// Topic configs a broker lists as defaults (a subset of Apache Kafka's; includes the keys the
/// operator recognises as a full listing).
const DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("delete.retention.ms", "86400000"),
    ("file.delete.delay.ms", "60000"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
    ("index.interval.bytes", "4096"),
    ("max.compaction.lag.ms", "9223372036854775807"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("min.cleanable.dirty.ratio", "0.5"),
    ("min.compaction.lag.ms", "0"),
    ("min.insync.replicas", "1"),
    ("preallocate", "false"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.index.bytes", "10485760"),
    ("segment.jitter.ms", "0"),
    ("segment.ms", "604800000"),
    ("unclean.leader.election.enable", "false"),
];

#[derive(Clone)]
struct Topic {
    partitions: i32,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    /// Requests served, by API key.
    requests: BTreeMap<i16, u64>,
}

/// A running double; it stops with the process.
pub(crate) struct BrokerDouble {
    pub(crate) bootstrap: String,
    state: Arc<Mutex<State>>,
}

impl BrokerDouble {
    /// Starts the double on a loopback port, on its own thread.
    pub(crate) fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::Builder::new()
            .name(THREAD.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the double's runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("listener");
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve(stream, port, shared.clone()));
                    }
                });
            })
            .expect("starting the double's thread");
        Self {
            bootstrap: format!("127.0.0.1:{port}"),
            state,
        }
    }

    /// Requests served so far: (API name, count).
    pub(crate) fn requests(&self) -> Vec<(&'static str, u64)> {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .map(|(k, n)| (api_name(*k), *n))
            .collect()
    }
}

fn api_name(key: i16) -> &'static str {
    match key {
        3 => "Metadata",
        18 => "ApiVersions",
        19 => "CreateTopics",
        20 => "DeleteTopics",
        32 => "DescribeConfigs",
        37 => "CreatePartitions",
        44 => "IncrementalAlterConfigs",
        _ => "other",
    }
}

/// (api key, min version, max version) advertised.
const APIS: &[(i16, i16, i16)] = &[
    (3, 4, 4),
    (18, 0, 3),
    (19, 2, 4),
    (20, 1, 3),
    (32, 1, 1),
    (37, 0, 1),
    (44, 0, 0),
];

async fn serve(mut stream: TcpStream, port: u16, state: Arc<Mutex<State>>) {
    loop {
        let Ok(size) = stream.read_i32().await else {
            return;
        };
        if !(8..=256 << 20).contains(&size) {
            return;
        }
        let mut frame = vec![0; size as usize];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let Some(body) = answer(&frame, port, &state) else {
            return;
        };
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&(body.len() as i32).to_be_bytes());
        out.extend_from_slice(&body);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// The response (header v0 and body) to one request frame; None closes the connection.
fn answer(frame: &[u8], port: u16, state: &Mutex<State>) -> Option<Vec<u8>> {
    let mut r = Reader { buf: frame, at: 0 };
    let key = r.i16()?;
    let version = r.i16()?;
    let correlation = r.i32()?;
    let _client_id = r.nullable_string()?;
    let (_, min, max) = APIS.iter().find(|(k, _, _)| *k == key)?;
    let mut w = Writer::default();
    w.i32(correlation);
    if key == 18 {
        // ApiVersions: an unsupported version is answered in v0 with the versions served.
        let supported = (*min..=*max).contains(&version);
        api_versions(&mut w, if supported { version } else { 0 }, supported);
        count(state, key);
        return Some(w.buf);
    }
    if !(*min..=*max).contains(&version) {
        return None;
    }
    let mut s = state.lock().unwrap();
    *s.requests.entry(key).or_insert(0) += 1;
    match key {
        3 => metadata(&mut r, &mut w, port, &s)?,
        19 => create_topics(&mut r, &mut w, &mut s)?,
        20 => delete_topics(&mut r, &mut w, &mut s)?,
        32 => describe_configs(&mut r, &mut w, &s)?,
        37 => create_partitions(&mut r, &mut w, &mut s)?,
        44 => alter_configs(&mut r, &mut w, &mut s)?,
        _ => return None,
    }
    Some(w.buf)
}

fn count(state: &Mutex<State>, key: i16) {
    *state.lock().unwrap().requests.entry(key).or_insert(0) += 1;
}

fn api_versions(w: &mut Writer, version: i16, supported: bool) {
    w.i16(if supported { 0 } else { 35 }); // UNSUPPORTED_VERSION
    if version >= 3 {
        w.uvarint(APIS.len() as u32 + 1);
        for (k, min, max) in APIS {
            w.i16(*k);
            w.i16(*min);
            w.i16(*max);
            w.uvarint(0);
        }
        w.i32(0);
        w.uvarint(0);
    } else {
        w.i32(APIS.len() as i32);
        for (k, min, max) in APIS {
            w.i16(*k);
            w.i16(*min);
            w.i16(*max);
        }
        if version >= 1 {
            w.i32(0);
        }
    }
}

/// Metadata v4: every topic (a null list) or the listed ones.
fn metadata(r: &mut Reader, w: &mut Writer, port: u16, s: &State) -> Option<()> {
    let wanted: Option<Vec<String>> = r.nullable_array(|r| r.string())?;
    w.i32(0); // throttle
    w.i32(1); // brokers
    w.i32(NODE_ID);
    w.string("127.0.0.1");
    w.i32(port as i32);
    w.nullable_string(None);
    w.nullable_string(Some("kafka-double"));
    w.i32(NODE_ID); // controller
    let topic = |w: &mut Writer, name: &str, t: Option<&Topic>| {
        match t {
            None => {
                w.i16(3); // UNKNOWN_TOPIC_OR_PARTITION
                w.string(name);
                w.bool(false);
                w.i32(0);
            }
            Some(t) => {
                w.i16(0);
                w.string(name);
                w.bool(false);
                w.i32(t.partitions);
                for p in 0..t.partitions {
                    w.i16(0);
                    w.i32(p);
                    w.i32(NODE_ID);
                    for _ in 0..2 {
                        w.i32(t.replication_factor.max(1) as i32);
                        for _ in 0..t.replication_factor.max(1) {
                            w.i32(NODE_ID);
                        }
                    }
                }
            }
        }
    };
    match wanted {
        None => {
            w.i32(s.topics.len() as i32);
            for (name, t) in &s.topics {
                topic(w, name, Some(t));
            }
        }
        Some(names) => {
            w.i32(names.len() as i32);
            for name in &names {
                topic(w, name, s.topics.get(name));
            }
        }
    }
    Some(())
}

/// CreateTopics v2-v4.
fn create_topics(r: &mut Reader, w: &mut Writer, s: &mut State) -> Option<()> {
    struct New {
        name: String,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    }
    let topics = r.array(|r| {
        let name = r.string()?;
        let partitions = r.i32()?;
        let replication_factor = r.i16()?;
        let assignments = r.array(|r| {
            r.i32()?;
            r.array(|r| r.i32())
        })?;
        let configs = r.array(|r| Some((r.string()?, r.nullable_string()?)))?;
        Some(New {
            name,
            partitions: if partitions < 0 {
                assignments.len().max(1) as i32
            } else {
                partitions
            },
            replication_factor: replication_factor.max(1),
            configs: configs
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect(),
        })
    })?;
    let _timeout = r.i32()?;
    let validate_only = r.bool()?;
    w.i32(0);
    w.i32(topics.len() as i32);
    for t in topics {
        w.string(&t.name);
        match s.topics.entry(t.name) {
            std::collections::hash_map::Entry::Occupied(_) => {
                w.i16(36); // TOPIC_ALREADY_EXISTS
                w.nullable_string(Some("Topic already exists."));
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                w.i16(0);
                w.nullable_string(None);
                if !validate_only {
                    slot.insert(Topic {
                        partitions: t.partitions,
                        replication_factor: t.replication_factor,
                        configs: t.configs,
                    });
                }
            }
        }
    }
    Some(())
}

/// DeleteTopics v1-v3.
fn delete_topics(r: &mut Reader, w: &mut Writer, s: &mut State) -> Option<()> {
    let names = r.array(|r| r.string())?;
    w.i32(0);
    w.i32(names.len() as i32);
    for name in names {
        let code = if s.topics.remove(&name).is_some() {
            0
        } else {
            3
        };
        w.string(&name);
        w.i16(code);
    }
    Some(())
}

/// DescribeConfigs v1 (topics only; synonyms are not listed).
fn describe_configs(r: &mut Reader, w: &mut Writer, s: &State) -> Option<()> {
    let resources = r.array(|r| {
        let kind = r.i8()?;
        let name = r.string()?;
        let _keys = r.nullable_array(|r| r.string())?;
        Some((kind, name))
    })?;
    let _synonyms = r.bool()?;
    w.i32(0);
    w.i32(resources.len() as i32);
    for (kind, name) in resources {
        let topic = (kind == 2).then(|| s.topics.get(&name)).flatten();
        match topic {
            None => {
                w.i16(3);
                w.nullable_string(Some("Unknown topic."));
                w.i8(kind);
                w.string(&name);
                w.i32(0);
            }
            Some(t) => {
                w.i16(0);
                w.nullable_string(None);
                w.i8(kind);
                w.string(&name);
                let defaults = DEFAULTS.iter().filter(|(k, _)| !t.configs.contains_key(*k));
                w.i32((t.configs.len() + defaults.clone().count()) as i32);
                for (k, v) in &t.configs {
                    config_entry(w, k, v, 1); // DYNAMIC_TOPIC_CONFIG
                }
                for (k, v) in defaults {
                    config_entry(w, k, v, 5); // DEFAULT_CONFIG
                }
            }
        }
    }
    Some(())
}

fn config_entry(w: &mut Writer, name: &str, value: &str, source: i8) {
    w.string(name);
    w.nullable_string(Some(value));
    w.bool(false);
    w.i8(source);
    w.bool(false);
    w.i32(0); // synonyms
}

/// CreatePartitions v0-v1.
fn create_partitions(r: &mut Reader, w: &mut Writer, s: &mut State) -> Option<()> {
    let topics = r.array(|r| {
        let name = r.string()?;
        let count = r.i32()?;
        let _assignments = r.nullable_array(|r| r.array(|r| r.i32()))?;
        Some((name, count))
    })?;
    let _timeout = r.i32()?;
    let validate_only = r.bool()?;
    w.i32(0);
    w.i32(topics.len() as i32);
    for (name, count) in topics {
        w.string(&name);
        match s.topics.get_mut(&name) {
            None => {
                w.i16(3);
                w.nullable_string(Some("Unknown topic."));
            }
            Some(t) if count <= t.partitions => {
                w.i16(37); // INVALID_PARTITIONS
                w.nullable_string(Some("The partition count can only grow."));
            }
            Some(t) => {
                if !validate_only {
                    t.partitions = count;
                }
                w.i16(0);
                w.nullable_string(None);
            }
        }
    }
    Some(())
}

/// IncrementalAlterConfigs v0 (SET and DELETE).
fn alter_configs(r: &mut Reader, w: &mut Writer, s: &mut State) -> Option<()> {
    let resources = r.array(|r| {
        let kind = r.i8()?;
        let name = r.string()?;
        let ops = r.array(|r| Some((r.string()?, r.i8()?, r.nullable_string()?)))?;
        Some((kind, name, ops))
    })?;
    let validate_only = r.bool()?;
    w.i32(0);
    w.i32(resources.len() as i32);
    for (kind, name, ops) in resources {
        let code = match s.topics.get_mut(&name) {
            Some(t) if kind == 2 => {
                if !validate_only {
                    for (key, op, value) in ops {
                        match (op, value) {
                            (0, Some(v)) => {
                                t.configs.insert(key, v);
                            }
                            _ => {
                                t.configs.remove(&key);
                            }
                        }
                    }
                }
                0
            }
            _ => 3,
        };
        w.i16(code);
        w.nullable_string(None);
        w.i8(kind);
        w.string(&name);
    }
    Some(())
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
    fn i8(&mut self) -> Option<i8> {
        Some(self.take(1)?[0] as i8)
    }
    fn bool(&mut self) -> Option<bool> {
        Some(self.i8()? != 0)
    }
    fn i16(&mut self) -> Option<i16> {
        let b = self.take(2)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        let b = self.take(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        let n = self.i16()?;
        if n < 0 {
            return Some(None);
        }
        let b = self.take(n as usize)?;
        Some(Some(String::from_utf8_lossy(b).into_owned()))
    }
    fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }
    fn nullable_array<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Option<Vec<T>>> {
        let n = self.i32()?;
        if n < 0 {
            return Some(None);
        }
        let mut out = Vec::with_capacity((n as usize).min(1 << 16));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Some(Some(out))
    }
    fn array<T>(&mut self, item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        Some(self.nullable_array(item)?.unwrap_or_default())
    }
}

#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    fn string(&mut self, s: &str) {
        self.i16(s.len() as i16);
        self.buf.extend_from_slice(s.as_bytes());
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            None => self.i16(-1),
            Some(s) => self.string(s),
        }
    }
}
