//! Validation: the OpenAPI schema and CEL rules

use super::*;

use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tributary::api::KafkaCluster;

async fn invalid(
    result: Result<DynamicObject, kube::Error>,
) -> (String, Vec<(String, String, String)>) {
    let s = status_of(result);
    assert_eq!(
        (s.code, s.reason.as_str(), s.status.is_some()),
        (422, "Invalid", true),
        "{s:?}"
    );
    let d = s.details.expect("details");
    assert_eq!(
        (d.group.as_str(), d.kind.as_str()),
        ("tributary.io", "KafkaTopic")
    );
    let causes = d
        .causes
        .into_iter()
        .map(|c| (c.field, c.reason, c.message))
        .collect();
    (s.message, causes)
}

#[tokio::test]
async fn schema_validation_refuses_invalid_objects_with_422() {
    let (api, client) = setup().await;
    let raw = dynamic_topics(&client);
    let pp = PostParams::default();

    let (message, causes) = invalid(
        raw.create(
            &pp,
            &raw_topic("t", json!({"clusterRef": "main", "partitions": "three"})),
        )
        .await,
    )
    .await;
    assert!(
        message.starts_with(
            "KafkaTopic.tributary.io \"t\" is invalid: spec.partitions: Invalid value: \"string\""
        ),
        "{message}"
    );
    assert!(
        message.contains("spec.partitions in body must be of type integer: \"string\""),
        "{message}"
    );
    assert_eq!(causes[0].0, "spec.partitions");
    assert_eq!(causes[0].1, "FieldValueInvalid");

    let (message, causes) = invalid(
        raw.create(&pp, &raw_topic("t", json!({"partitions": 3})))
            .await,
    )
    .await;
    assert_eq!(
        message,
        "KafkaTopic.tributary.io \"t\" is invalid: spec.clusterRef: Required value"
    );
    assert_eq!(
        causes,
        vec![(
            "spec.clusterRef".into(),
            "FieldValueRequired".into(),
            "Required value".into()
        )]
    );

    let (message, _) = invalid(
        raw.create(
            &pp,
            &raw_topic("t", json!({"clusterRef": "main", "partitions": 0})),
        )
        .await,
    )
    .await;
    assert!(message.ends_with("spec.partitions: Invalid value: 0: spec.partitions in body should be greater than or equal to 1"), "{message}");

    let (message, causes) = invalid(
        raw.create(
            &pp,
            &raw_topic(
                "t",
                json!({"clusterRef": "main", "partitions": 1, "deletionPolicy": "Destroy"}),
            ),
        )
        .await,
    )
    .await;
    assert!(message.contains("spec.deletionPolicy: Unsupported value: \"Destroy\": supported values: \"Retain\", \"Delete\""), "{message}");
    assert_eq!(causes[0].1, "FieldValueNotSupported");

    let (message, _) = invalid(
        raw.create(
            &pp,
            &raw_topic(
                "t",
                json!({"clusterRef": "main", "partitions": 1, "topicName": "no spaces"}),
            ),
        )
        .await,
    )
    .await;
    assert!(
        message.contains("spec.topicName in body should match '^[a-zA-Z0-9._-]+$'"),
        "{message}"
    );

    let (message, causes) = invalid(
        raw.create(
            &pp,
            &raw_topic("t", json!({"clusterRef": "", "partitions": 0})),
        )
        .await,
    )
    .await;
    assert!(message.contains("[") && causes.len() == 2, "{message}");

    // Nothing was stored.
    assert!(raw
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());

    // Unknown fields are pruned silently; defaults are filled in.
    let pruned = raw
        .create(
            &pp,
            &raw_topic(
                "t",
                json!({"clusterRef": "main", "partitions": 3, "bogus": {"x": 1}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        pruned.data["spec"],
        json!({"clusterRef": "main", "partitions": 3, "deletionPolicy": "Retain"})
    );
    let stored = api
        .stored("tributary.io", "kafkatopics", "default", "t")
        .unwrap();
    assert!(stored["spec"].get("bogus").is_none());
}

#[tokio::test]
async fn cel_rules_are_enforced_with_transition_rules_on_update() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 3))
        .await
        .unwrap();

    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"partitions": 2}})),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message.contains("spec.partitions cannot decrease"),
        "{}",
        s.message
    );
    assert_eq!(
        s.message,
        "KafkaTopic.tributary.io \"t\" is invalid: spec.partitions: Invalid value: \"integer\": spec.partitions cannot decrease: Kafka cannot remove partitions"
    );
    let cause = &s.details.unwrap().causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("spec.partitions", "FieldValueInvalid")
    );

    // The same rule through SSA and PUT.
    let mut smaller = topics.get("t").await.unwrap();
    smaller.spec.partitions = 1;
    assert_eq!(
        status_of(topics.replace("t", &PostParams::default(), &smaller).await).code,
        422
    );
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::apply("alice").force(),
                &Patch::Apply(applied_topic(2, &[])),
            )
            .await,
    );
    assert!(
        s.message.contains("spec.partitions cannot decrease"),
        "{}",
        s.message
    );

    // Another transition rule; and growing is fine.
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"clusterRef": "other"}})),
            )
            .await,
    );
    assert!(
        s.message.contains("spec.clusterRef is immutable"),
        "{}",
        s.message
    );
    assert_eq!(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"partitions": 5}}))
            )
            .await
            .unwrap()
            .spec
            .partitions,
        5
    );

    // A creation rule on another kind: an inline SASL password.
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<KafkaCluster>(&()),
    );
    let c: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {"name": "c"},
        "spec": {
            "bootstrapServers": ["k:9092"],
            "sasl": {"mechanism": "PLAIN", "username": {"value": "u"}, "password": {"value": "p"}},
        },
    }))
    .unwrap();
    let s = status_of(clusters.create(&PostParams::default(), &c).await);
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .contains("sasl.password must come from secretKeyRef or file"),
        "{}",
        s.message
    );
    assert_eq!(s.details.unwrap().causes[0].field, "spec.sasl.password");
}
