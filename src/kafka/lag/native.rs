//! [`LagObserver`] over librdkafka's admin C API (`DescribeTopics`, `ListOffsets`, and on the
//! per-group path `ListConsumerGroupOffsets`, `DescribeConsumerGroups`), which rdkafka 0.39
//! has no safe wrapper for, with the consumer-group requests batched on connections of our own
//! where the broker allows ([`super::batched`]): the observer (this file), the blocking rounds
//! that submit librdkafka's requests and await them together ([`pass`]), and the decoding of
//! their results ([`results`]).
//!
//! Safety: every librdkafka object created by a pass is owned by a guard of
//! [`crate::kafka::ffi`]; the client handle outlives every pass because the blocking task holds
//! the client for its whole duration.

pub(in crate::kafka) mod pass;
pub(in crate::kafka) mod results;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::batched::{GroupRequests, Path};
use super::{assemble, group_ids, group_partitions, GroupLag, GroupQuery, LagObserver};
use crate::kafka::ffi::Client;
use crate::kafka::{BrokerError, ClientSettings, RequestTally};

/// Lag of consumer groups on one cluster, through librdkafka.
pub struct RdKafkaLagObserver {
    client: Arc<Client>,
    groups: Arc<GroupRequests>,
    members: bool,
}

impl RdKafkaLagObserver {
    /// Builds a client of its own from the same settings as
    /// [`crate::kafka::RdKafkaAdmin::connect`] (to share the admin's client instead, see
    /// [`crate::kafka::RdKafkaAdmin::lag_observer`]). Nothing is contacted until the first pass.
    pub fn connect(settings: &ClientSettings) -> Result<Self, BrokerError> {
        Ok(Self::with_client(
            Client::connect(settings, "tributary-lag")?,
            Arc::new(GroupRequests::new(settings)),
        ))
    }

    pub(in crate::kafka) fn with_client(client: Arc<Client>, groups: Arc<GroupRequests>) -> Self {
        Self {
            client,
            groups,
            members: false,
        }
    }

    /// How this cluster's committed offsets are fetched: batched per coordinator broker, or
    /// (when the broker lacks FindCoordinator v4 / OffsetFetch v8, or the connection settings
    /// need what only librdkafka implements) one request per group. Decided at the first pass
    /// (asked here before one, it connects to decide).
    pub async fn path(&self) -> Result<Path, BrokerError> {
        self.groups.path().await
    }

    /// Also report each group's member count and state ([`super::Lag::members`]). Off by
    /// default. On the batched path one DescribeGroups per coordinator broker; on the per-group
    /// path librdkafka sends one per group (in the same round trip as the offsets, so it costs
    /// requests, not wall time).
    pub fn describe_members(mut self, yes: bool) -> Self {
        self.members = yes;
        self
    }

    /// Requests librdkafka itself counted on the wire, by Kafka API name, summed over brokers
    /// (connection set-up — ApiVersions, SASL — excluded), from its latest statistics. `None`
    /// unless the client was configured with `statistics.interval.ms` (a `ClientSettings`
    /// property) and an interval has elapsed. Unlike the [`RequestTally`] of a pass this
    /// includes what librdkafka sends on its own (metadata refreshes, and on a client shared
    /// with an admin, the admin's requests); it lacks the batched group requests, which go on
    /// Tributary's own connections, and on the per-group path OffsetFetch (librdkafka leaves
    /// consumer requests out of the statistics of admin clients). For benchmarks and
    /// diagnostics.
    pub fn wire_requests(&self) -> Option<BTreeMap<String, u64>> {
        let stats = self.client.stats()?;
        let json: serde_json::Value = serde_json::from_str(&stats).ok()?;
        let mut out = BTreeMap::new();
        for broker in json.get("brokers")?.as_object()?.values() {
            let Some(req) = broker.get("req").and_then(|r| r.as_object()) else {
                continue;
            };
            for (api, n) in req {
                let n = n.as_u64().unwrap_or(0);
                if n == 0
                    || matches!(
                        api.as_str(),
                        "ApiVersion" | "ApiVersions" | "SaslHandshake" | "SaslAuthenticate"
                    )
                {
                    continue;
                }
                *out.entry(api.clone()).or_insert(0) += n;
            }
        }
        Some(out)
    }
}

impl LagObserver for RdKafkaLagObserver {
    fn observe_tallied<'a>(
        &'a self,
        groups: &'a [GroupQuery],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<GroupLag>, BrokerError>> {
        async move {
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            let per_group = matches!(self.groups.path().await?, Path::PerGroup(_));
            self.client.drain();
            let queries = Arc::new(groups.to_vec());
            let members = self.members;
            let pass = queries.clone();
            let (round_one, tally) = self
                .client
                .blocking("lag observation", move |c| {
                    let mut tally = RequestTally::default();
                    let out = pass::round_one(c.handle(), c.timeout(), &pass, &mut tally);
                    tally.finish(out.as_ref().map(|_| ()));
                    (out, tally)
                })
                .await?;
            requests.merge(&tally);
            let (facts, leaders) = round_one.map_err(|e| self.client.explain(e))?;
            // Round two: librdkafka's offsets and our group requests, concurrently.
            let partitions = group_partitions(&queries, &facts.topics);
            let ids = group_ids(&queries);
            let groups_here = if per_group {
                pass::Groups::PerGroup { members }
            } else {
                pass::Groups::Elsewhere
            };
            let pass = queries.clone();
            let librdkafka = self.client.blocking("lag observation", move |c| {
                let mut tally = RequestTally::default();
                let out = pass::round_two(
                    c.handle(),
                    c.timeout(),
                    &pass,
                    (facts, leaders),
                    groups_here,
                    &mut tally,
                );
                // Labelled as the pass ended (a timeout is `timeout`), reported as
                // unreachable.
                tally.finish(out.as_ref().map(|_| ()));
                (out, tally)
            });
            let mut group_tally = RequestTally::default();
            let batched = async {
                if per_group {
                    return Ok(None);
                }
                let out = self
                    .groups
                    .fetch(&partitions, &ids, members, &mut group_tally)
                    .await;
                group_tally.finish(out.as_ref().map(|_| ()));
                out.map(Some)
            };
            let (round_two, batched) = futures::join!(librdkafka, batched);
            let (facts, tally) = round_two?;
            requests.merge(&tally);
            requests.merge(&group_tally);
            let mut facts = facts.map_err(|e| self.client.explain(e))?;
            if let Some(groups) = batched? {
                facts.commits = groups.commits;
                facts.members = groups.members;
            }
            self.client.drain();
            Ok(groups
                .iter()
                .map(|q| assemble(q, &facts, self.members))
                .collect())
        }
        .boxed()
    }
}
