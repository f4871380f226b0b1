//! The consumer-group requests of a lag pass, batched on connections of our own
//! ([`crate::kafka::wire`]): FindCoordinator v4 for every group whose coordinator is not
//! cached, in one request; then per coordinator broker one OffsetFetch v8 for all its groups
//! (and, when members are asked for, one DescribeGroups for all of them). So a warm pass makes
//! one OffsetFetch (and one DescribeGroups) per coordinator broker, whatever the number of
//! groups. A group whose coordinator moved (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
//! COORDINATOR_LOAD_IN_PROGRESS) or whose coordinator's connection failed is looked up again and
//! asked again once in the same pass; what still fails is that group's rejection.
//!
//! Which path a cluster takes is decided once, by the bootstrap broker's ApiVersions
//! ([`decide`]): without FindCoordinator v4 and OffsetFetch v8, with connection settings this
//! client cannot honour, or when its connection fails for a reason other than an unreachable
//! cluster (TLS, SASL: where librdkafka's might not), the pass keeps to librdkafka's one
//! request per group — logged once per cluster, and its requests tallied under their own API
//! labels ([`PER_GROUP_OFFSET_FETCH`], [`PER_GROUP_DESCRIBE_GROUPS`]). An unreachable cluster
//! decides nothing: the pass fails, and the next one asks again.
//!
//! Connections stay open between passes; one the broker closed meanwhile costs one failed
//! request, which is sent again on a new connection in the same pass.

mod coordinators;

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsResponse, GroupId, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

pub use coordinators::{moves_coordinator, Coordinator, CoordinatorCache};

use crate::kafka::ffi::rejection;
use crate::kafka::lag::{Commits, Members};
use crate::kafka::wire::connection::error_name;
use crate::kafka::wire::{BrokerConnection, WireSettings};
use crate::kafka::{BrokerError, ClientSettings, Rejection, RequestTally};

/// The API label of librdkafka's one-OffsetFetch-per-group requests (the fallback path).
pub const PER_GROUP_OFFSET_FETCH: &str = "OffsetFetch(per-group)";
/// The API label of librdkafka's one-DescribeGroups-per-group requests (the fallback path).
pub const PER_GROUP_DESCRIBE_GROUPS: &str = "DescribeGroups(per-group)";

/// FindCoordinator key type of a consumer group.
const GROUP_KEY: i8 = 0;
/// Kafka's UNSUPPORTED_VERSION.
const UNSUPPORTED_VERSION: i16 = 35;
/// Kafka's GROUP_ID_NOT_FOUND.
const GROUP_ID_NOT_FOUND: i16 = 69;

/// How a cluster's committed offsets (and members) are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// On our own connections: one request per coordinator broker.
    Batched,
    /// Through librdkafka, one request per group, for this reason.
    PerGroup(String),
}

/// The path for a broker serving `versions` (api key → (min, max)).
pub fn decide(versions: &BTreeMap<i16, (i16, i16)>) -> Path {
    let max = |key: ApiKey| versions.get(&(key as i16)).map(|(_, max)| *max);
    let find = max(ApiKey::FindCoordinator);
    let fetch = max(ApiKey::OffsetFetch);
    if find >= Some(4) && fetch >= Some(8) {
        return Path::Batched;
    }
    let shown = |v: Option<i16>| v.map_or("not at all".to_owned(), |v| format!("up to v{v}"));
    Path::PerGroup(format!(
        "the broker serves FindCoordinator {} and OffsetFetch {}; one request for many groups needs FindCoordinator v4 and OffsetFetch v8",
        shown(find),
        shown(fetch)
    ))
}

/// The committed offsets and members of the groups of a pass.
#[derive(Debug, Default)]
pub struct GroupFacts {
    pub commits: BTreeMap<String, Commits>,
    pub members: Members,
}

/// The batched group requests of one cluster: its connections, its coordinator cache, its path.
pub struct GroupRequests {
    /// The cluster, for logs.
    bootstrap: String,
    settings: Result<WireSettings, String>,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    path: Option<Path>,
    /// Open connections by `host:port`.
    connections: BTreeMap<String, BrokerConnection>,
    cache: CoordinatorCache,
}

/// What one coordinator broker answered.
struct Answer {
    coordinator: Coordinator,
    groups: Vec<String>,
    connection: Option<BrokerConnection>,
    tally: RequestTally,
    result: Result<(Option<OffsetFetchResponse>, Option<DescribeGroupsResponse>), BrokerError>,
}

impl GroupRequests {
    /// For the cluster `settings` describe. Nothing is contacted until the first pass.
    pub fn new(settings: &ClientSettings) -> Self {
        Self {
            bootstrap: settings.bootstrap_servers.clone(),
            settings: WireSettings::from_client(settings),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The cluster's path: decided at the first call, from the bootstrap broker's ApiVersions
    /// (a connection the batched path then keeps). Connection setup is not tallied.
    pub async fn path(&self) -> Result<Path, BrokerError> {
        let mut state = self.state.lock().await;
        if let Some(path) = &state.path {
            return Ok(path.clone());
        }
        let path = match &self.settings {
            Err(reason) => Path::PerGroup(reason.clone()),
            Ok(settings) => match open_any(settings, &settings.bootstrap).await {
                Ok(connection) => {
                    let path = decide(connection.versions());
                    state
                        .connections
                        .insert(connection.address().to_owned(), connection);
                    path
                }
                // The cluster is down: librdkafka would not get through either; decide later.
                Err(e @ (BrokerError::Unreachable(_) | BrokerError::Timeout { .. })) => {
                    return Err(e)
                }
                // Our connection fails where librdkafka's may not (a certificate rustls
                // refuses and OpenSSL accepts, e.g. one naming the broker in its CN only): the
                // pass keeps to librdkafka, which reports its own error if it has one.
                Err(e) => Path::PerGroup(format!("Tributary's own connection failed: {e}")),
            },
        };
        match &path {
            Path::Batched => tracing::debug!(
                cluster = %self.bootstrap,
                "lag: committed offsets batched per coordinator broker"
            ),
            Path::PerGroup(reason) => tracing::warn!(
                cluster = %self.bootstrap,
                reason = %reason,
                "lag: committed offsets are fetched one group at a time through librdkafka"
            ),
        }
        state.path = Some(path.clone());
        Ok(path)
    }

    /// Groups whose coordinator is cached now.
    pub async fn cached_coordinators(&self) -> usize {
        self.state.lock().await.cache.len()
    }

    /// The committed offsets of `partitions` (group → its partitions; a group with none is not
    /// asked) and, with `members`, the members of every group of `ids`.
    pub async fn fetch(
        &self,
        partitions: &BTreeMap<String, Vec<(String, i32)>>,
        ids: &[String],
        members: bool,
        tally: &mut RequestTally,
    ) -> Result<GroupFacts, BrokerError> {
        let settings = self
            .settings
            .as_ref()
            .map_err(|reason| BrokerError::Client(reason.clone()))?;
        let mut state = self.state.lock().await;
        let want_offsets: BTreeSet<String> = ids
            .iter()
            .filter(|g| partitions.get(*g).is_some_and(|p| !p.is_empty()))
            .cloned()
            .collect();
        let want_members: BTreeSet<String> = if members {
            ids.iter().cloned().collect()
        } else {
            BTreeSet::new()
        };
        let mut facts = GroupFacts::default();
        let mut pending: BTreeSet<String> = want_offsets.union(&want_members).cloned().collect();
        let fail = |facts: &mut GroupFacts, group: &str, why: Rejection| {
            if want_offsets.contains(group) {
                facts.commits.insert(group.to_owned(), Err(why.clone()));
            }
            if want_members.contains(group) {
                facts.members.insert(group.to_owned(), Err(why));
            }
        };
        for attempt in 0..2 {
            if pending.is_empty() {
                break;
            }
            let last = attempt == 1;
            let missing = state.cache.uncached(&pending);
            if !missing.is_empty() {
                let found = find_coordinators(&mut state, settings, &missing, tally).await?;
                for (group, why) in found {
                    pending.remove(&group);
                    fail(&mut facts, &group, why);
                }
            }
            let plan = state.cache.by_coordinator(&pending);
            let jobs = plan.into_iter().map(|(coordinator, groups)| {
                let connection = state.connections.remove(&coordinator.address);
                let offsets: Vec<&String> = groups
                    .iter()
                    .filter(|g| want_offsets.contains(*g))
                    .collect();
                let described: Vec<&String> = groups
                    .iter()
                    .filter(|g| want_members.contains(*g))
                    .collect();
                let offsets = offset_fetch(&offsets, partitions);
                let described = (!described.is_empty()).then(|| describe_groups(&described));
                ask(
                    settings,
                    coordinator,
                    groups,
                    connection,
                    offsets,
                    described,
                )
            });
            let answers = join_all(jobs).await;
            let mut retry = BTreeSet::new();
            for answer in answers {
                tally.merge(&answer.tally);
                if let Some(c) = answer.connection {
                    state.connections.insert(c.address().to_owned(), c);
                }
                let (offsets, described) = match answer.result {
                    Ok(r) => r,
                    Err(e @ BrokerError::Unsupported { .. }) => return Err(e),
                    Err(e) => {
                        // The connection failed or the answer was unreadable: its groups are
                        // looked up again (once).
                        state.cache.invalidate_broker(&answer.coordinator.address);
                        for g in answer.groups {
                            if last {
                                fail(&mut facts, &g, rejection_of(&e));
                            } else {
                                retry.insert(g);
                            }
                        }
                        continue;
                    }
                };
                let mut moved = BTreeSet::new();
                if let Some(r) = offsets {
                    read_offsets(r, &mut facts.commits, &mut moved)?;
                }
                if let Some(r) = described {
                    read_members(r, &mut facts.members, &mut moved)?;
                }
                for g in moved {
                    state.cache.invalidate(&g);
                    if last {
                        let why = Rejection {
                            code: "NotCoordinator".into(),
                            message: format!(
                                "the coordinator of group {g} moved twice within one pass"
                            ),
                            unsupported: false,
                        };
                        fail(&mut facts, &g, why);
                    } else {
                        facts.commits.remove(&g);
                        facts.members.remove(&g);
                        retry.insert(g);
                    }
                }
                for g in answer.groups {
                    let missing = Rejection {
                        code: "Missing".into(),
                        message: format!("the broker's answer left group {g} out"),
                        unsupported: false,
                    };
                    if want_offsets.contains(&g)
                        && !facts.commits.contains_key(&g)
                        && !retry.contains(&g)
                    {
                        facts.commits.insert(g.clone(), Err(missing.clone()));
                    }
                    if want_members.contains(&g)
                        && !facts.members.contains_key(&g)
                        && !retry.contains(&g)
                    {
                        facts.members.insert(g.clone(), Err(missing));
                    }
                }
            }
            pending = retry;
        }
        Ok(facts)
    }
}

/// A connection to the first of `addresses` that answers.
async fn open_any(
    settings: &WireSettings,
    addresses: &[String],
) -> Result<BrokerConnection, BrokerError> {
    let mut last = None;
    for address in addresses {
        match BrokerConnection::open(address, settings).await {
            Ok(c) => return Ok(c),
            Err(e @ (BrokerError::Unreachable(_) | BrokerError::Timeout { .. })) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| BrokerError::Client("bootstrap.servers is empty".into())))
}

/// One FindCoordinator v4 for `groups`, on any open connection (else a new one to a bootstrap
/// broker); the found coordinators go to the cache. Returns the groups it could not find, with
/// why.
async fn find_coordinators(
    state: &mut State,
    settings: &WireSettings,
    groups: &[String],
    tally: &mut RequestTally,
) -> Result<Vec<(String, Rejection)>, BrokerError> {
    const API: &str = "FindCoordinator";
    let request = FindCoordinatorRequest::default()
        .with_key_type(GROUP_KEY)
        .with_coordinator_keys(
            groups
                .iter()
                .map(|g| StrBytes::from_string(g.clone()))
                .collect(),
        );
    // Any open connection will do; one the broker closed meanwhile (idle, restarted) is
    // dropped and the request sent again on a new one.
    let mut reused = state.connections.pop_first().map(|(_, c)| c);
    let (connection, answer) = loop {
        let fresh = reused.is_none();
        let mut connection = match reused.take() {
            Some(c) => c,
            None => open_any(settings, &settings.bootstrap).await?,
        };
        tally.sent(API, 1);
        let answer = connection.call(API, &request, 4).await;
        tally.answered(API, 1, answer.as_ref().map(|_| ()));
        match answer {
            Err(BrokerError::Unreachable(_)) if !fresh => continue,
            answer => break (connection, answer?),
        }
    };
    state
        .connections
        .insert(connection.address().to_owned(), connection);
    let mut failed = Vec::new();
    let mut seen = BTreeSet::new();
    for c in answer.coordinators {
        let group = c.key.to_string();
        seen.insert(group.clone());
        match c.error_code {
            0 => state.cache.insert(
                group,
                Coordinator {
                    node_id: c.node_id.0,
                    address: format!("{}:{}", c.host.as_str(), c.port),
                },
            ),
            UNSUPPORTED_VERSION => {
                return Err(BrokerError::Unsupported {
                    api: API,
                    message: broker_text(c.error_code, c.error_message.as_ref()),
                })
            }
            code => failed.push((
                group,
                group_rejection(code, c.error_message.as_ref(), "FindCoordinator"),
            )),
        }
    }
    for g in groups.iter().filter(|g| !seen.contains(*g)) {
        failed.push((
            g.clone(),
            Rejection {
                code: "Missing".into(),
                message: format!("FindCoordinator left group {g} out of its answer"),
                unsupported: false,
            },
        ));
    }
    Ok(failed)
}

/// The OffsetFetch v8 request for `groups`, or `None` when there are none.
fn offset_fetch(
    groups: &[&String],
    partitions: &BTreeMap<String, Vec<(String, i32)>>,
) -> Option<OffsetFetchRequest> {
    if groups.is_empty() {
        return None;
    }
    let groups = groups
        .iter()
        .map(|g| {
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in partitions.get(*g).into_iter().flatten() {
                topics.entry(t.as_str()).or_default().push(*p);
            }
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_string((*g).clone())))
                .with_topics(Some(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(TopicName(StrBytes::from_string(t.to_owned())))
                                .with_partition_indexes(ps)
                        })
                        .collect(),
                ))
        })
        .collect();
    Some(
        OffsetFetchRequest::default()
            .with_groups(groups)
            .with_require_stable(false),
    )
}

fn describe_groups(groups: &[&String]) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default().with_groups(
        groups
            .iter()
            .map(|g| GroupId(StrBytes::from_string((*g).clone())))
            .collect(),
    )
}

/// Sends one coordinator its requests, on `connection` or a new one.
async fn ask(
    settings: &WireSettings,
    coordinator: Coordinator,
    groups: Vec<String>,
    connection: Option<BrokerConnection>,
    offsets: Option<OffsetFetchRequest>,
    described: Option<DescribeGroupsRequest>,
) -> Answer {
    let mut tally = RequestTally::default();
    let mut connection = match connection {
        Some(c) => c,
        None => match BrokerConnection::open(&coordinator.address, settings).await {
            Ok(c) => c,
            Err(e) => {
                return Answer {
                    coordinator,
                    groups,
                    connection: None,
                    tally,
                    result: Err(e),
                }
            }
        },
    };
    let result = async {
        let mut out = (None, None);
        if let Some(request) = offsets {
            const API: &str = "OffsetFetch";
            if connection.max_version(ApiKey::OffsetFetch) < Some(8) {
                return Err(BrokerError::Unsupported {
                    api: API,
                    message: format!(
                        "the coordinator {} does not serve OffsetFetch v8 (one request for many groups)",
                        connection.address()
                    ),
                });
            }
            tally.sent(API, 1);
            let answer = connection.call(API, &request, 8).await;
            tally.answered(API, 1, answer.as_ref().map(|_| ()));
            out.0 = Some(answer?);
        }
        if let Some(request) = described {
            const API: &str = "DescribeGroups";
            let Some(version) = connection.max_version(ApiKey::DescribeGroups) else {
                return Err(BrokerError::Unsupported {
                    api: API,
                    message: format!(
                        "the coordinator {} does not serve DescribeGroups",
                        connection.address()
                    ),
                });
            };
            tally.sent(API, 1);
            let answer = connection.call(API, &request, version.min(5)).await;
            tally.answered(API, 1, answer.as_ref().map(|_| ()));
            out.1 = Some(answer?);
        }
        Ok(out)
    }
    .await;
    let healthy = !matches!(
        result,
        Err(BrokerError::Unreachable(_)
            | BrokerError::Timeout { .. }
            | BrokerError::Rejected { .. })
    );
    Answer {
        coordinator,
        groups,
        connection: healthy.then_some(connection),
        tally,
        result,
    }
}

/// The groups of an OffsetFetch v8 answer into `commits`; groups whose coordinator moved go to
/// `moved`.
fn read_offsets(
    answer: OffsetFetchResponse,
    commits: &mut BTreeMap<String, Commits>,
    moved: &mut BTreeSet<String>,
) -> Result<(), BrokerError> {
    for g in answer.groups {
        let id = g.group_id.0.to_string();
        if moves_coordinator(g.error_code) {
            moved.insert(id);
            continue;
        }
        if g.error_code == UNSUPPORTED_VERSION {
            return Err(BrokerError::Unsupported {
                api: "OffsetFetch",
                message: format!("group {id}: {}", broker_text(g.error_code, None)),
            });
        }
        if g.error_code != 0 {
            commits.insert(id, Err(group_rejection(g.error_code, None, "OffsetFetch")));
            continue;
        }
        let mut offsets = BTreeMap::new();
        for t in g.topics {
            let topic = t.name.0.to_string();
            for p in t.partitions {
                let value = match p.error_code {
                    0 => Ok((p.committed_offset >= 0).then_some(p.committed_offset)),
                    UNSUPPORTED_VERSION => {
                        return Err(BrokerError::Unsupported {
                            api: "OffsetFetch",
                            message: format!(
                                "{topic}/{}: {}",
                                p.partition_index,
                                broker_text(p.error_code, None)
                            ),
                        })
                    }
                    code => Err(group_rejection(code, None, "OffsetFetch")),
                };
                offsets.insert((topic.clone(), p.partition_index), value);
            }
        }
        commits.insert(id, Ok(offsets));
    }
    Ok(())
}

/// The groups of a DescribeGroups answer into `members`; groups whose coordinator moved go
/// to `moved`. A group the broker does not know has no members (`Dead`), as librdkafka reports
/// it.
fn read_members(
    answer: DescribeGroupsResponse,
    members: &mut Members,
    moved: &mut BTreeSet<String>,
) -> Result<(), BrokerError> {
    for g in answer.groups {
        let id = g.group_id.0.to_string();
        let value = match g.error_code {
            0 => Ok((
                i32::try_from(g.members.len()).unwrap_or(i32::MAX),
                g.group_state.to_string(),
            )),
            GROUP_ID_NOT_FOUND => Ok((0, "Dead".to_owned())),
            code if moves_coordinator(code) => {
                moved.insert(id);
                continue;
            }
            UNSUPPORTED_VERSION => {
                return Err(BrokerError::Unsupported {
                    api: "DescribeGroups",
                    message: format!(
                        "group {id}: {}",
                        broker_text(g.error_code, g.error_message.as_ref())
                    ),
                })
            }
            code => Err(group_rejection(
                code,
                g.error_message.as_ref(),
                "DescribeGroups",
            )),
        };
        members.insert(id, value);
    }
    Ok(())
}

/// The broker's text for `code`: its own message, else librdkafka's words for the code.
fn broker_text(code: i16, message: Option<&StrBytes>) -> String {
    match message.map(|m| m.to_string()).filter(|m| !m.is_empty()) {
        Some(m) => m,
        None => match librdkafka_code(code) {
            Some(c) => c.to_string(),
            None => error_name(code),
        },
    }
}

fn librdkafka_code(code: i16) -> Option<RDKafkaErrorCode> {
    RDKafkaRespErr::try_from(i32::from(code))
        .ok()
        .map(RDKafkaErrorCode::from)
}

/// A group's (or partition's) error as its rejection, named as librdkafka names it.
fn group_rejection(code: i16, message: Option<&StrBytes>, api: &str) -> Rejection {
    let text = format!("{api}: {}", broker_text(code, message));
    match librdkafka_code(code) {
        Some(c) => rejection(c, text),
        None => Rejection {
            code: error_name(code),
            message: text,
            unsupported: false,
        },
    }
}

/// A whole-request failure, as the rejection of each group it concerned.
fn rejection_of(e: &BrokerError) -> Rejection {
    Rejection {
        code: e.reason().to_string(),
        message: e.to_string(),
        unsupported: false,
    }
}

#[cfg(test)]
mod tests;
