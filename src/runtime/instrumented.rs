//! Broker calls, counted: [`Instrumented`] wraps a [`BrokerAdmin`], an [`IdentityAdmin`] or a
//! [`LagObserver`] and hands
//! the [`RequestTally`] of every call it forwards to a [`RequestSink`] — the metrics registry
//! ([`crate::runtime::metrics::Metrics`]: `tributary_broker_requests_total`), a
//! [`RequestCounter`] (the request counts of logs, benchmarks and tests), or both. The broker
//! layer itself knows no metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::kafka::identity::{
    AclBinding, AclListing, AclOutcome, IdentityAdmin, ScramDeletion, ScramUpsert, UserOutcome,
    UserScramCredentials,
};
use crate::kafka::lag::{GroupLag, GroupQuery, LagObserver};
use crate::kafka::{
    BrokerAdmin, BrokerError, BrokerSnapshot, ClusterInfo, ConfigChange, NewTopic, RequestTally,
    TopicOutcome,
};

/// Where the requests of each call go.
pub trait RequestSink: Send + Sync {
    fn record(&self, requests: &RequestTally);
}

impl<S: RequestSink + ?Sized> RequestSink for Arc<S> {
    fn record(&self, requests: &RequestTally) {
        (**self).record(requests)
    }
}

impl<S: RequestSink + ?Sized> RequestSink for &S {
    fn record(&self, requests: &RequestTally) {
        (**self).record(requests)
    }
}

impl<A: RequestSink, B: RequestSink> RequestSink for (A, B) {
    fn record(&self, requests: &RequestTally) {
        self.0.record(requests);
        self.1.record(requests);
    }
}

/// A running count of requests, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<AtomicU64>);

impl RequestCounter {
    /// Requests counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl RequestSink for RequestCounter {
    fn record(&self, requests: &RequestTally) {
        self.0.fetch_add(requests.total(), Ordering::Relaxed);
    }
}

/// A broker client whose every call's requests go to a [`RequestSink`].
pub struct Instrumented<T, S> {
    inner: T,
    sink: S,
}

/// A broker client that counts its requests ([`Counted::requests_made`]).
pub type Counted<T> = Instrumented<T, RequestCounter>;

/// `inner`, counting its requests.
pub fn counted<T>(inner: T) -> Counted<T> {
    Instrumented::new(inner, RequestCounter::default())
}

impl<T, S> Instrumented<T, S> {
    pub fn new(inner: T, sink: S) -> Self {
        Self { inner, sink }
    }

    /// The wrapped client.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T> Counted<T> {
    /// Broker requests made through this wrapper so far.
    pub fn requests_made(&self) -> u64 {
        self.sink.get()
    }

    /// The shared count ([`Counted::requests_made`]).
    pub fn counter(&self) -> RequestCounter {
        self.sink.clone()
    }
}

impl<T, S: RequestSink> Instrumented<T, S> {
    /// One call's requests are in `mine`: whatever is still unanswered takes the call's
    /// outcome; they go to the sink and are added to the caller's tally.
    fn done(
        &self,
        mut mine: RequestTally,
        requests: &mut RequestTally,
        result: Result<(), &BrokerError>,
    ) {
        mine.finish(result);
        self.sink.record(&mine);
        requests.merge(&mine);
    }
}

/// Forwards one tallied call to the wrapped client, then records its requests.
macro_rules! forward {
    ($self:ident, $requests:ident, $call:ident($($arg:expr),*)) => {
        async move {
            let mut mine = RequestTally::default();
            let result = $self.inner.$call($($arg,)* &mut mine).await;
            $self.done(mine, $requests, result.as_ref().map(|_| ()));
            result
        }
        .boxed()
    };
}

impl<T: BrokerAdmin, S: RequestSink> BrokerAdmin for Instrumented<T, S> {
    fn snapshot_tallied<'a>(
        &'a self,
        describe: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
        forward!(self, requests, snapshot_tallied(describe))
    }

    fn create_topics_tallied<'a>(
        &'a self,
        topics: &'a [NewTopic],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        forward!(self, requests, create_topics_tallied(topics))
    }

    fn create_partitions_tallied<'a>(
        &'a self,
        topics: &'a [(String, i32)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        forward!(self, requests, create_partitions_tallied(topics))
    }

    fn alter_configs_tallied<'a>(
        &'a self,
        topics: &'a [(String, Vec<ConfigChange>)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        forward!(self, requests, alter_configs_tallied(topics))
    }

    fn delete_topics_tallied<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        forward!(self, requests, delete_topics_tallied(topics))
    }

    fn cluster_info_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<ClusterInfo, BrokerError>> {
        forward!(self, requests, cluster_info_tallied())
    }
}

impl<T: IdentityAdmin, S: RequestSink> IdentityAdmin for Instrumented<T, S> {
    fn describe_acls_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<AclListing, BrokerError>> {
        forward!(self, requests, describe_acls_tallied())
    }

    fn create_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        forward!(self, requests, create_acls_tallied(bindings))
    }

    fn delete_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        forward!(self, requests, delete_acls_tallied(bindings))
    }

    fn describe_scram_tallied<'a>(
        &'a self,
        users: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserScramCredentials>, BrokerError>> {
        forward!(self, requests, describe_scram_tallied(users))
    }

    fn alter_scram_tallied<'a>(
        &'a self,
        upserts: &'a [ScramUpsert],
        deletions: &'a [ScramDeletion],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserOutcome>, BrokerError>> {
        forward!(self, requests, alter_scram_tallied(upserts, deletions))
    }
}

impl<T: LagObserver, S: RequestSink> LagObserver for Instrumented<T, S> {
    fn observe_tallied<'a>(
        &'a self,
        groups: &'a [GroupQuery],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<GroupLag>, BrokerError>> {
        forward!(self, requests, observe_tallied(groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::lag::{MemoryLagObserver, OffsetReset};
    use crate::kafka::memory::MemoryBroker;

    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<(&'static str, &'static str, u64)>>);

    impl RequestSink for Seen {
        fn record(&self, requests: &RequestTally) {
            self.0.lock().unwrap().extend(requests.counts());
        }
    }

    #[tokio::test]
    async fn every_call_reports_its_requests_by_api_and_outcome() {
        let broker = Arc::new(MemoryBroker::new());
        let seen = Arc::new(Seen::default());
        let admin = Instrumented::new(broker.clone(), (seen.clone(), RequestCounter::default()));
        let new = |name: &str| NewTopic {
            name: name.into(),
            partitions: 1,
            replication_factor: None,
            config: vec![],
        };
        admin.create_topics(&[new("a"), new("b")]).await.unwrap();
        let mut tally = RequestTally::default();
        admin
            .snapshot_tallied(&["a".into(), "gone".into()], &mut tally)
            .await
            .unwrap();
        assert_eq!(
            tally.total(),
            2,
            "the caller's tally gets the call's requests"
        );
        broker.set_down(true);
        assert!(admin.cluster_info().await.is_err());
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                ("CreateTopics", "ok", 1),
                ("DescribeConfigs", "ok", 1),
                ("Metadata", "ok", 1),
                ("Metadata", "unreachable", 1),
            ]
        );
        assert_eq!(admin.sink.1.get(), 4);
        assert_eq!(admin.sink.1.get(), broker.requests_made());
    }

    #[tokio::test]
    async fn identity_calls_report_their_requests_by_api_and_outcome() {
        use crate::kafka::identity::memory::MemoryIdentity;
        use crate::kafka::identity::{AclOperation, AclResourceType};
        let broker = Arc::new(MemoryIdentity::like_tansu());
        let seen = Arc::new(Seen::default());
        let admin = Instrumented::new(broker.clone(), (seen.clone(), RequestCounter::default()));
        let b = AclBinding::allow("User:a", AclOperation::Read, AclResourceType::Topic, "t");
        admin.create_acls(std::slice::from_ref(&b)).await.unwrap();
        let mut tally = RequestTally::default();
        admin.describe_acls_tallied(&mut tally).await.unwrap();
        assert_eq!(tally.total(), 1);
        assert!(admin.delete_acls(&[b]).await.is_err());
        admin.describe_scram(&["a".into()]).await.unwrap();
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                ("CreateAcls", "ok", 1),
                ("DescribeAcls", "ok", 1),
                ("DeleteAcls", "unsupported", 1),
                ("DescribeUserScramCredentials", "ok", 1),
            ]
        );
        assert_eq!(admin.sink.1.get(), broker.requests_made());
    }

    #[tokio::test]
    async fn lag_passes_are_counted_whole() {
        let fake = MemoryLagObserver::new().describe_members(true);
        fake.create_topic("orders", 2);
        let observer = counted(fake);
        let groups = [
            GroupQuery::new("a", &["orders"], OffsetReset::Latest),
            GroupQuery::new("b", &["orders"], OffsetReset::Latest),
        ];
        observer.observe(&groups).await.unwrap();
        // Metadata, ListOffsets end and start, one OffsetFetch and one DescribeGroups per group.
        assert_eq!(observer.requests_made(), 1 + 2 + 2 + 2);
        assert_eq!(observer.counter().get(), observer.requests_made());
    }
}
