//! [`LagObserver`] over librdkafka's admin C API (`DescribeTopics`, `ListOffsets`,
//! `ListConsumerGroupOffsets`, `DescribeConsumerGroups`), which rdkafka 0.39 has no safe
//! wrapper for: the observer (this file), the blocking pass that submits the requests and
//! awaits them together ([`pass`]), and the decoding of their results ([`results`]).
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

use super::{assemble, GroupLag, GroupQuery, LagObserver};
use crate::kafka::ffi::Client;
use crate::kafka::{BrokerError, ClientSettings, RequestTally};

/// Lag of consumer groups on one cluster, through librdkafka.
pub struct RdKafkaLagObserver {
    client: Arc<Client>,
    members: bool,
}

impl RdKafkaLagObserver {
    /// Builds a client of its own from the same settings as
    /// [`crate::kafka::RdKafkaAdmin::connect`] (to share the admin's client instead, see
    /// [`crate::kafka::RdKafkaAdmin::lag_observer`]). Nothing is contacted until the first pass.
    pub fn connect(settings: &ClientSettings) -> Result<Self, BrokerError> {
        Ok(Self::with_client(Client::connect(
            settings,
            "tributary-lag",
        )?))
    }

    pub(in crate::kafka) fn with_client(client: Arc<Client>) -> Self {
        Self {
            client,
            members: false,
        }
    }

    /// Also report each group's member count and state ([`super::Lag::members`]). Off by
    /// default: librdkafka sends one DescribeGroups request per group (in the same round trip
    /// as the offsets, so it costs requests, not wall time).
    pub fn describe_members(mut self, yes: bool) -> Self {
        self.members = yes;
        self
    }

    /// Requests librdkafka itself counted on the wire, by Kafka API name, summed over brokers
    /// (connection set-up — ApiVersions, SASL — excluded), from its latest statistics. `None`
    /// unless the client was configured with `statistics.interval.ms` (a `ClientSettings`
    /// property) and an interval has elapsed. Unlike the [`RequestTally`] of a pass this
    /// includes what librdkafka sends on its own: FindCoordinator lookups and metadata
    /// refreshes (and, on a client shared with an admin, the admin's requests). It lacks
    /// OffsetFetch: librdkafka leaves consumer requests out of the statistics of admin
    /// (producer-type) clients; there is exactly one per group and pass. For benchmarks and
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
            self.client.drain();
            let queries = groups.to_vec();
            let members = self.members;
            let (facts, tally) = self
                .client
                .blocking("lag observation", move |c| {
                    let mut tally = RequestTally::default();
                    let out = pass::gather(c.handle(), c.timeout(), &queries, members, &mut tally);
                    // Labelled as the pass ended (a timeout is `timeout`), reported as
                    // unreachable.
                    tally.finish(out.as_ref().map(|_| ()));
                    (out, tally)
                })
                .await?;
            requests.merge(&tally);
            let facts = facts.map_err(|e| self.client.explain(e))?;
            self.client.drain();
            Ok(groups
                .iter()
                .map(|q| assemble(q, &facts, self.members))
                .collect())
        }
        .boxed()
    }
}
