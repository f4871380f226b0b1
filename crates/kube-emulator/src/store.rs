//! Objects, the global resourceVersion counter, the bounded change history and the open
//! watches' queues. Everything lives in one [`State`] behind one mutex.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::registry::Registry;
use crate::ssa::ManagedEntry;

/// Where an object lives. `namespace` is empty for cluster-scoped kinds. Objects of every
/// version of a kind share one key space (`group` + plural `resource`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

/// A stored object: its JSON (with `metadata.managedFields` rendered) and the field sets.
#[derive(Clone, Debug)]
pub struct Stored {
    pub value: Value,
    pub managed: Vec<ManagedEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One committed change, as kept in the history and sent to watches.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub typ: ChangeType,
    pub key: ObjKey,
    /// The object after the change (for `Deleted`: its last state, at the deletion's version).
    pub object: Value,
    /// The object before the change (for label-selector transitions and point-in-time lists).
    pub prev: Option<Value>,
}

/// A watch's queue: every change of its resource is pushed; the watch task filters.
pub struct WatchSink {
    pub group: String,
    pub resource: String,
    pub tx: UnboundedSender<Arc<Change>>,
}

pub struct State {
    pub registry: Registry,
    pub objects: BTreeMap<ObjKey, Stored>,
    /// The last resourceVersion handed out.
    pub rv: u64,
    pub history: VecDeque<Arc<Change>>,
    pub history_limit: usize,
    /// Changes up to and including this version are no longer in the history: a watch or an
    /// exact list from an older version gets `410 Gone`.
    pub compacted: u64,
    pub watchers: Vec<WatchSink>,
    /// Whether a change since the last garbage collection could give the collector work: an
    /// object deleted, owner references written, an object being deleted. Other writes (status
    /// updates, most of them) cannot, so the collector skips its walk of the store for them.
    pub gc_pending: bool,
}

impl State {
    pub fn new(history_limit: usize) -> Self {
        State {
            registry: Registry::with_builtins(),
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            watchers: Vec::new(),
            gc_pending: false,
        }
    }

    /// Store a change: hand out the next resourceVersion, write it into the object, keep the
    /// change in the history and send it to the watches. Returns the object as stored.
    pub fn commit(
        &mut self,
        key: ObjKey,
        typ: ChangeType,
        mut stored: Stored,
        prev: Option<Value>,
    ) -> Value {
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = stored
            .value
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let object = stored.value.clone();
        self.gc_pending |= gc_relevant(typ, &key, &object, prev.as_ref());
        match typ {
            ChangeType::Deleted => {
                self.objects.remove(&key);
            }
            _ => {
                self.objects.insert(key.clone(), stored);
            }
        }
        let change = Arc::new(Change {
            rv,
            typ,
            key,
            object: object.clone(),
            prev,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        self.watchers.retain(|w| {
            if w.group == change.key.group && w.resource == change.key.resource {
                w.tx.send(change.clone()).is_ok()
            } else {
                !w.tx.is_closed()
            }
        });
        object
    }

    /// Forget the whole history: every version before now is gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// The objects of `group/resource` as they were at version `at` (`None` when the history
    /// no longer reaches back that far).
    pub fn snapshot(
        &self,
        group: &str,
        resource: &str,
        at: u64,
    ) -> Option<BTreeMap<ObjKey, Value>> {
        if at < self.compacted {
            return None;
        }
        let mut objects: BTreeMap<ObjKey, Value> = self
            .objects
            .iter()
            .filter(|(k, _)| k.group == group && k.resource == resource)
            .map(|(k, s)| (k.clone(), s.value.clone()))
            .collect();
        for change in self.history.iter().rev() {
            if change.rv <= at {
                break;
            }
            if change.key.group != group || change.key.resource != resource {
                continue;
            }
            match (&change.typ, &change.prev) {
                (ChangeType::Added, _) | (_, None) => {
                    objects.remove(&change.key);
                }
                (_, Some(prev)) => {
                    objects.insert(change.key.clone(), prev.clone());
                }
            }
        }
        Some(objects)
    }

    /// The uids of every stored object.
    pub fn uids(&self) -> std::collections::HashSet<String> {
        self.objects
            .values()
            .filter_map(|s| {
                s.value
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// Whether a change can matter to the garbage collector: what it acts on is the set of objects,
/// their owner references, and objects being deleted (their finalizers, terminating
/// namespaces).
fn gc_relevant(typ: ChangeType, key: &ObjKey, object: &Value, prev: Option<&Value>) -> bool {
    let owners = |v: &Value| v.pointer("/metadata/ownerReferences").cloned();
    let deleting = |v: &Value| v.pointer("/metadata/deletionTimestamp").is_some();
    match typ {
        ChangeType::Deleted => true,
        ChangeType::Added => {
            owners(object).is_some() || deleting(object) || key.resource == "namespaces"
        }
        ChangeType::Modified => {
            deleting(object) || prev.is_none_or(|p| owners(p) != owners(object) || deleting(p))
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as metav1.Time serializes.
pub fn now() -> String {
    k8s_openapi::jiff::fmt::strtime::format(
        "%Y-%m-%dT%H:%M:%SZ",
        k8s_openapi::jiff::Timestamp::now(),
    )
    .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
    }
    // splitmix64
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    STATE.store(x, Ordering::Relaxed);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random version-4 UUID.
pub fn new_uid() -> String {
    let a = next_random();
    let b = next_random();
    let bytes: Vec<u8> = a.to_be_bytes().into_iter().chain(b.to_be_bytes()).collect();
    let mut bytes: [u8; 16] = bytes.try_into().unwrap();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The 5-character suffix `generateName` gets.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[(next_random() % ALPHABET.len() as u64) as usize] as char)
        .collect()
}
