//! Kubernetes side: the KafkaCluster and the KafkaTopics (and the topics on the broker).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::Value;
use tributary::api::{ConditionStatus, DeletionPolicy, KafkaCluster, KafkaTopic, KafkaTopicSpec};
use tributary::kafka::{BrokerAdmin, ClientSettings, RdKafkaAdmin};

use crate::CLUSTER;

/// The `index`-th topic: 1 to 3 partitions and one config key.
pub(crate) fn topic_spec(index: usize) -> KafkaTopicSpec {
    KafkaTopicSpec {
        cluster_ref: CLUSTER.into(),
        topic_name: None,
        partitions: (index % 3) as i32 + 1,
        replication_factor: None,
        config: BTreeMap::from([("retention.ms".to_owned(), retention(index))]),
        deletion_policy: DeletionPolicy::Retain,
    }
}

fn retention(index: usize) -> String {
    (3_600_000 * (1 + index % 168)).to_string()
}

pub(crate) fn is_ready(conditions: &[tributary::api::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
}

/// Every KafkaTopic of the namespace: name -> (ready, resourceVersion, status JSON).
pub(crate) async fn list_topics(
    api: &Api<KafkaTopic>,
) -> kube::Result<HashMap<String, (bool, String, Value)>> {
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .map(|t| {
            let ready = t.status.as_ref().is_some_and(|s| is_ready(&s.conditions));
            let rv = t.resource_version().unwrap_or_default();
            let status = serde_json::to_value(&t.status).unwrap_or(Value::Null);
            (t.name_any(), (ready, rv, status))
        })
        .collect())
}

/// When the Ready condition (True) of a status last changed.
pub(crate) fn ready_since(status: &Value) -> Option<Timestamp> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")?["lastTransitionTime"]
        .as_str()
        .and_then(|t| Timestamp::from_str(t).ok())
}

/// A summary of why topics are not Ready: reason -> count.
pub(crate) fn not_ready_reasons(
    topics: &HashMap<String, (bool, String, Value)>,
) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, _, status) in topics.values().filter(|t| !t.0) {
        let reason = status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| {
                format!(
                    "{}: {}",
                    c["reason"].as_str().unwrap_or("?"),
                    c["message"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_else(|| "no Ready condition yet".into());
        *out.entry(reason).or_insert(0) += 1;
    }
    out
}

pub(crate) async fn wait_cluster_ready(
    api: &Api<KafkaCluster>,
    limit: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        match api.get_opt(CLUSTER).await {
            Ok(Some(c)) if c.status.as_ref().is_some_and(|s| is_ready(&s.conditions)) => {
                return Ok(start.elapsed())
            }
            Ok(c) if start.elapsed() > limit => {
                return Err(format!(
                    "KafkaCluster {CLUSTER} not Ready after {limit:?}: {:?}",
                    c.and_then(|c| c.status)
                ))
            }
            Err(e) if start.elapsed() > limit => {
                return Err(format!("reading the KafkaCluster: {e}"))
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Creates every topic, `in_flight` at a time (each retried twice on an error).
pub(crate) async fn create_all(
    api: Api<KafkaTopic>,
    names: Vec<String>,
    in_flight: usize,
) -> Result<(), String> {
    let results: Vec<Result<(), String>> = futures::stream::iter(names.into_iter().enumerate())
        .map(move |(i, name)| {
            let api = api.clone();
            async move {
                let topic = KafkaTopic::new(&name, topic_spec(i));
                let mut last = String::new();
                for _ in 0..3 {
                    match api.create(&PostParams::default(), &topic).await {
                        Ok(_) => return Ok(()),
                        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
                        Err(e) => last = e.to_string(),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(format!("creating KafkaTopic {name}: {last}"))
            }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(format!("{} creates failed; first: {first}", errors.len())),
    }
}

/// What the broker has of the bench's topics: (present with the right partition count,
/// present with the config value, missing or wrong examples).
pub(crate) async fn verify_broker(
    bootstrap: &str,
    names: &[String],
) -> Result<(usize, usize, Vec<String>), String> {
    let admin = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        bootstrap,
        Duration::from_secs(60),
    ))
    .map_err(|e| e.to_string())?;
    let snapshot = admin.snapshot(names).await.map_err(|e| e.to_string())?;
    let (mut partitions_ok, mut config_ok, mut wrong) = (0, 0, Vec::new());
    for (i, name) in names.iter().enumerate() {
        let want = topic_spec(i);
        match snapshot.topics.get(name) {
            None => wrong.push(format!("{name}: missing")),
            Some(t) => {
                if t.partitions == want.partitions {
                    partitions_ok += 1;
                } else {
                    wrong.push(format!(
                        "{name}: {} partitions, want {}",
                        t.partitions, want.partitions
                    ));
                }
                let value = t.configs.get("retention.ms").and_then(|c| c.value.clone());
                if value.as_deref() == Some(retention(i).as_str()) {
                    config_ok += 1;
                } else {
                    wrong.push(format!(
                        "{name}: retention.ms {value:?}, want {}",
                        retention(i)
                    ));
                }
            }
        }
    }
    Ok((partitions_ok, config_ok, wrong))
}

/// Deletes the bench's topics from a broker the bench did not start (untimed).
pub(crate) async fn cleanup_broker(bootstrap: &str, names: &[String]) {
    let Ok(admin) = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        bootstrap,
        Duration::from_secs(60),
    )) else {
        return;
    };
    if let Err(e) = admin.delete_topics(names).await {
        eprintln!("note: deleting the bench's topics from the broker failed: {e}");
    }
}
