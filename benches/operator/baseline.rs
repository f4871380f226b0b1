//! The broker's own time: on a fresh broker, the same topics created by raw batched
//! CreateTopics requests (rdkafka's admin API, not Tributary's code) in the batch sizes the
//! operator's round trips had, one request after the other; then one DescribeConfigs of all of
//! them (what a resync of every topic cannot beat).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use crate::kubernetes::topic_spec;

pub(crate) struct Baseline {
    /// The sum of the CreateTopics requests' times.
    pub(crate) create: Duration,
    pub(crate) requests: usize,
    /// One DescribeConfigs of every topic.
    pub(crate) describe: Option<Duration>,
    pub(crate) failed: usize,
}

/// `sizes` are the operator's round trips' sizes; the topics are cut into batches of those
/// sizes in turn (the last size repeats if they do not cover every topic).
pub(crate) async fn measure(
    bootstrap: &str,
    names: &[String],
    sizes: &[usize],
) -> Result<Baseline, String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let timeout = Duration::from_secs(600);
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let mut sizes = sizes.iter().copied().filter(|n| *n > 0);
    let mut last = 1000;
    let (mut at, mut create, mut requests, mut failed) = (0, Duration::ZERO, 0, 0);
    while at < names.len() {
        let size = sizes.next().unwrap_or(last);
        last = size;
        let end = (at + size).min(names.len());
        let specs: Vec<_> = (at..end).map(|i| (i, topic_spec(i))).collect();
        let configs: Vec<(String, String)> = specs
            .iter()
            .map(|(_, s)| {
                let (k, v) = s.config.iter().next().expect("one config key");
                (k.clone(), v.clone())
            })
            .collect();
        let topics: Vec<NewTopic<'_>> = specs
            .iter()
            .zip(&configs)
            .map(|((i, s), (k, v))| {
                NewTopic::new(&names[*i], s.partitions, TopicReplication::Fixed(1)).set(k, v)
            })
            .collect();
        let start = Instant::now();
        let results = admin
            .create_topics(&topics, &options)
            .await
            .map_err(|e| format!("CreateTopics: {e}"))?;
        create += start.elapsed();
        requests += 1;
        failed += results.iter().filter(|r| r.is_err()).count();
        at = end;
    }
    let specs: Vec<ResourceSpecifier<'_>> =
        names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
    let start = Instant::now();
    let describe = match admin.describe_configs(&specs, &options).await {
        Ok(_) => Some(start.elapsed()),
        Err(e) => {
            eprintln!("note: the baseline's DescribeConfigs failed: {e}");
            None
        }
    };
    Ok(Baseline {
        create,
        requests,
        describe,
        failed,
    })
}
