//! Objects that bypass the CRD schema (a CRD installed by an older version, an
//! `x-kubernetes-preserve-unknown-fields` gap): the API server here serves Tributary's kinds
//! with a spec that takes anything, and the operator must refuse each bad object with
//! `InvalidSpec` naming its fields — never crash, never stop serving the good objects of the
//! same kind, never print a value.

use super::*;

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;
use tributary::api::{KafkaTopic, StreamTopology};

use crate::support::broker::unique;
use crate::support::scenarios::spec;

/// Tributary's CRDs with a spec that takes anything.
fn loose_crds(
) -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    crds::all()
        .into_iter()
        .map(|crd| {
            let mut value = serde_json::to_value(&crd).unwrap();
            for version in value["spec"]["versions"].as_array_mut().unwrap() {
                let root = &mut version["schema"]["openAPIV3Schema"];
                root["properties"]["spec"] =
                    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
                root.as_object_mut()
                    .unwrap()
                    .remove("x-kubernetes-validations");
            }
            serde_json::from_value(value).unwrap()
        })
        .collect()
}

async fn create_raw<K: kube::Resource<DynamicType = ()>>(env: &Env, name: &str, spec: Value) {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), NAMESPACE, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": resource.api_version, "kind": resource.kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .expect("the loose CRD stores a spec of any shape");
}

/// `(status, reason, message)` of the object's Ready condition, read untyped.
async fn ready_raw<K: kube::Resource<DynamicType = ()>>(
    env: &Env,
    name: &str,
) -> Option<(String, String, String)> {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), NAMESPACE, &resource);
    let object = api.get_opt(name).await.ok()??;
    let conditions = object.data["status"]["conditions"].as_array()?.clone();
    let ready = conditions.iter().find(|c| c["type"] == "Ready")?;
    let text = |k: &str| ready[k].as_str().unwrap_or_default().to_owned();
    Some((text("status"), text("reason"), text("message")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_that_bypass_the_schema_get_invalid_spec_and_break_nothing() {
    let r = start_with_crds(&loose_crds()).await;
    let env = &r.env;
    let secret = "hunter2-in-the-wrong-place";

    // Wrong types inside spec, and a credential-like value where a number goes.
    let wrong = unique("wrong-types");
    create_raw::<KafkaTopic>(
        env,
        &wrong,
        json!({"clusterRef": 7, "partitions": secret, "deletionPolicy": "Purge",
               "config": {"retention.ms": 604800000}}),
    )
    .await;
    // A huge config map.
    let huge = unique("huge-config");
    let config: serde_json::Map<String, Value> = (0..20_000)
        .map(|i| (format!("x.key.{i}"), json!(i)))
        .collect();
    create_raw::<KafkaTopic>(
        env,
        &huge,
        json!({"clusterRef": "local", "partitions": 1, "config": config}),
    )
    .await;
    // A topology of 10,000 entries.
    let wide = unique("wide");
    let topics: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("t{i}"), "partitions": 1}))
        .collect();
    create_raw::<StreamTopology>(env, &wide, json!({"clusterRef": "local", "topics": topics}))
        .await;
    // A good topic of the same kind, created after them: the KafkaTopic watch still serves it.
    let good = unique("good");
    env.create_topic(&good, spec("local", 1, &[])).await;

    env.eventually(
        "the wrongly typed topic is refused field by field",
        || async {
            ready_raw::<KafkaTopic>(env, &wrong)
                .await
                .is_some_and(|(status, reason, message)| {
                    status == "False"
                        && reason == "InvalidSpec"
                        && message.contains("spec.clusterRef: must be a string, got an integer")
                        && message.contains("spec.partitions: must be an integer")
                        && message.contains("spec.deletionPolicy: must be one of Retain, Delete")
                        && message.contains("spec.config.retention.ms: must be a string")
                        && !message.contains(secret)
                })
        },
    )
    .await;
    env.eventually(
        "the huge config map is refused with a bounded message",
        || async {
            ready_raw::<KafkaTopic>(env, &huge)
                .await
                .is_some_and(|(_, reason, message)| {
                    reason == "InvalidSpec"
                        && message.len() < 5_000
                        && message.contains("more problem")
                })
        },
    )
    .await;
    env.eventually("the 10,000-entry topology is refused", || async {
        ready_raw::<StreamTopology>(env, &wide)
            .await
            .is_some_and(|(_, reason, message)| {
                reason == "InvalidSpec"
                    && message.contains("spec.topics: has 10000 entries; at most 1000")
            })
    })
    .await;
    env.eventually("the good topic is Ready beside them", || async {
        matches!(env.ready(&good).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    assert!(
        !r.operator.as_ref().unwrap().is_finished(),
        "the operator still runs"
    );
    r.stop().await;
}
