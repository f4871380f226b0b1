//! What a reset asks the broker before it plans, and the `show` view of a group: the group's
//! description, its committed offsets, the partitions of its topics and their offsets by
//! spec — each one request through [`GroupAdmin`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;

use super::plan::{self, PartitionOffsets, Plan, Selection};
use super::target::Target;
use super::ResetError;
use crate::kafka::offsets::{GroupAdmin, GroupDescription, OffsetSpec, TopicPartition};
use crate::kafka::RequestTally;

/// A reset to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub group: String,
    pub selection: Selection,
    pub target: Target,
    /// Refuse a group the broker does not know (a raw group id, where a typo is likely); a
    /// declared consumer's group may be positioned before it first runs.
    pub must_exist: bool,
}

/// A planned reset and the group as it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub group: GroupDescription,
    pub plan: Plan,
}

/// Observes and plans `request`; the group's members are the caller's to judge
/// ([`plan::check_empty`]). A timestamp in the future is refused before any request.
pub async fn prepare(
    admin: &dyn GroupAdmin,
    request: &Request,
    now: Timestamp,
    requests: &mut RequestTally,
) -> Result<Prepared, ResetError> {
    plan::check_target(&request.target, now).map_err(|e| ResetError::Refused(vec![e]))?;
    let group = admin.describe_group(&request.group, requests).await?;
    let committed = admin.committed(&request.group, None, requests).await?;
    // Nothing committed and no consumer: for a raw group id, most likely a typo (a broker may
    // describe any id as `Empty`: Tansu 0.6 does).
    let known = !group.is_empty() || !committed.is_empty();
    plan::check_known(&request.group, known, request.must_exist)
        .map_err(|e| ResetError::Refused(vec![e]))?;
    let committed_on: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
    let topics = plan::topics_of(
        &request.group,
        &request.selection,
        &request.target,
        &committed_on,
    )
    .map_err(|e| ResetError::Refused(vec![e]))?;
    let live = admin.topic_partitions(&topics, requests).await?;
    let partitions = plan::select(&topics, &request.selection, &request.target, &live)
        .map_err(ResetError::Refused)?;
    let offsets = offsets(admin, &partitions, &committed, &request.target, requests).await?;
    let plan =
        plan::plan(&request.target, &partitions, &offsets, now).map_err(ResetError::Refused)?;
    Ok(Prepared { group, plan })
}

/// The start, end (and for a timestamp target, the offset at it) of each partition, with the
/// group's committed offset.
async fn offsets(
    admin: &dyn GroupAdmin,
    partitions: &[TopicPartition],
    committed: &BTreeMap<TopicPartition, i64>,
    target: &Target,
    requests: &mut RequestTally,
) -> Result<BTreeMap<TopicPartition, PartitionOffsets>, ResetError> {
    let starts = admin
        .list_offsets(partitions, OffsetSpec::Earliest, requests)
        .await?;
    let ends = admin
        .list_offsets(partitions, OffsetSpec::Latest, requests)
        .await?;
    let at = match target {
        Target::Timestamp(t) => {
            admin
                .list_offsets(
                    partitions,
                    OffsetSpec::Timestamp(t.as_millisecond()),
                    requests,
                )
                .await?
        }
        _ => BTreeMap::new(),
    };
    Ok(partitions
        .iter()
        .filter_map(|tp| {
            let start = starts.get(tp).copied().flatten()?;
            let end = ends.get(tp).copied().flatten()?;
            Some((
                tp.clone(),
                PartitionOffsets {
                    start,
                    end,
                    committed: committed.get(tp).copied(),
                    at_timestamp: at.get(tp).copied().flatten(),
                },
            ))
        })
        .collect())
}

/// One row of `show`: a partition of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub start: i64,
    pub end: i64,
    /// The member the partition is assigned to: `(member id, host, client id)`.
    pub member: Option<(String, String, String)>,
}

impl Row {
    /// `end - committed`; `None` when the group never committed here.
    pub fn lag(&self) -> Option<i64> {
        self.committed
            .map(|c| (self.end - c.max(self.start)).max(0))
    }
}

/// A group as `show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub group: GroupDescription,
    pub rows: Vec<Row>,
}

/// The group's partitions — those it committed on, those assigned to its members, and every
/// partition of `topics` — with their offsets and members.
pub async fn show(
    admin: &dyn GroupAdmin,
    group: &str,
    topics: &[String],
    requests: &mut RequestTally,
) -> Result<View, ResetError> {
    let description = admin.describe_group(group, requests).await?;
    let committed = admin.committed(group, None, requests).await?;
    let mut partitions: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
    let mut assigned = BTreeMap::new();
    for m in &description.members {
        for tp in &m.assignment {
            partitions.insert(tp.clone());
            assigned.insert(
                tp.clone(),
                (m.member_id.clone(), m.host.clone(), m.client_id.clone()),
            );
        }
    }
    if !topics.is_empty() {
        let live = admin.topic_partitions(topics, requests).await?;
        let missing: Vec<_> = topics
            .iter()
            .filter(|t| !matches!(live.get(*t), Some(Some(_))))
            .map(|t| plan::PlanError::UnknownTopic { topic: t.clone() })
            .collect();
        if !missing.is_empty() {
            return Err(ResetError::Refused(missing));
        }
        for (t, ps) in live {
            partitions.extend(ps.unwrap_or_default().into_iter().map(|p| (t.clone(), p)));
        }
    }
    let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
    let offsets = offsets(admin, &partitions, &committed, &Target::Latest, requests).await?;
    let rows = partitions
        .iter()
        .filter_map(|tp| {
            let o = offsets.get(tp)?;
            Some(Row {
                topic: tp.0.clone(),
                partition: tp.1,
                committed: o.committed,
                start: o.start,
                end: o.end,
                member: assigned.get(tp).cloned(),
            })
        })
        .collect();
    Ok(View {
        group: description,
        rows,
    })
}
