//! Server-side apply

use super::*;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tributary::api::{ConditionStatus, KafkaTopic};

#[tokio::test]
async fn server_side_apply_creates_tracks_owners_and_conflicts() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);

    let created = topics
        .patch(
            "t",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied_topic(3, &[("retention.ms", "1000")])),
        )
        .await
        .unwrap();
    assert_eq!(created.spec.partitions, 3);
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        managers(&created),
        vec![("alice".into(), "Apply".into(), "".into())]
    );
    assert!(owned_fields(&created, "alice").contains("\"f:partitions\""));
    assert!(owned_fields(&created, "alice").contains("\"f:retention.ms\""));

    // Bob sets alice's field to another value: 409 with the real message format.
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::apply("bob"),
                &Patch::Apply(applied_topic(5, &[])),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"alice\" using tributary.io/v1alpha1: .spec.partitions"
    );
    let causes = s.details.unwrap().causes;
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.partitions");

    // The same value is shared ownership, not a conflict.
    let shared = topics
        .patch(
            "t",
            &PatchParams::apply("bob"),
            &Patch::Apply(applied_topic(3, &[])),
        )
        .await
        .unwrap();
    assert!(owned_fields(&shared, "bob").contains("\"f:partitions\""));

    // Forced: bob takes the field.
    let forced = topics
        .patch(
            "t",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(applied_topic(5, &[])),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.partitions, 5);
    assert_eq!(forced.metadata.generation, Some(2));
    assert!(!owned_fields(&forced, "alice").contains("\"f:partitions\""));
    assert!(owned_fields(&forced, "bob").contains("\"f:partitions\""));

    // An Update (merge patch) manager conflicts with an applier too.
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicationFactor": 2}})),
        )
        .await
        .unwrap();
    let mut with_rf = applied_topic(5, &[]);
    with_rf["spec"]["replicationFactor"] = json!(3);
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::apply("carol"),
                &Patch::Apply(with_rf.clone()),
            )
            .await,
    );
    assert_eq!(s.code, 409);
    assert!(
        s.message.contains("conflict with \"unknown\""),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn server_side_apply_removes_fields_a_manager_stops_applying() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .patch(
            "t",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied_topic(3, &[("a", "1"), ("b", "2"), ("c", "3")])),
        )
        .await
        .unwrap();
    // Bob also applies c with the same value: c is shared.
    let mut bob = applied_topic(3, &[("c", "3")]);
    bob["spec"].as_object_mut().unwrap().remove("partitions");
    topics
        .patch("t", &PatchParams::apply("bob"), &Patch::Apply(bob))
        .await
        .unwrap();

    // Alice drops b and c: b goes (only alice owned it), c stays (bob owns it too).
    let after = topics
        .patch(
            "t",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied_topic(3, &[("a", "1")])),
        )
        .await
        .unwrap();
    let keys: Vec<&str> = after.spec.config.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["a", "c"]);

    // Dropping a whole optional field removes it.
    let mut with_rf = applied_topic(3, &[("a", "1")]);
    with_rf["spec"]["replicationFactor"] = json!(2);
    let t = topics
        .patch("t", &PatchParams::apply("alice"), &Patch::Apply(with_rf))
        .await
        .unwrap();
    assert_eq!(t.spec.replication_factor, Some(2));
    let t = topics
        .patch(
            "t",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied_topic(3, &[("a", "1")])),
        )
        .await
        .unwrap();
    assert_eq!(t.spec.replication_factor, None);
    assert_eq!(t.metadata.generation, Some(4));

    // What the schema forbids stays forbidden: topicName cannot be added later (CEL).
    let mut with_name = applied_topic(3, &[("a", "1")]);
    with_name["spec"]["topicName"] = json!("orders.v1");
    let s = status_of(
        topics
            .patch("t", &PatchParams::apply("alice"), &Patch::Apply(with_name))
            .await,
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message.contains("spec.topicName is immutable"),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn server_side_apply_merges_list_maps_by_key() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 3))
        .await
        .unwrap();
    let condition = |ty: &str, status: &str| json!({"type": ty, "status": status, "reason": "Test", "message": ""});
    let status_apply = |conditions: Vec<Value>| {
        Patch::Apply(json!({
            "apiVersion": "tributary.io/v1alpha1",
            "kind": "KafkaTopic",
            "metadata": {"name": "t"},
            "status": {"conditions": conditions},
        }))
    };
    let conditions = |t: &KafkaTopic| -> Vec<(String, ConditionStatus)> {
        t.status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status))
            .collect()
    };

    topics
        .patch_status(
            "t",
            &PatchParams::apply("ready-ctl"),
            &status_apply(vec![condition("Ready", "True")]),
        )
        .await
        .unwrap();
    let both = topics
        .patch_status(
            "t",
            &PatchParams::apply("sync-ctl"),
            &status_apply(vec![condition("Synced", "True")]),
        )
        .await
        .unwrap();
    assert_eq!(
        conditions(&both),
        vec![
            ("Ready".into(), ConditionStatus::True),
            ("Synced".into(), ConditionStatus::True)
        ]
    );
    assert!(managers(&both).contains(&("ready-ctl".into(), "Apply".into(), "status".into())));
    assert!(owned_fields(&both, "ready-ctl").contains("k:{\\\"type\\\":\\\"Ready\\\"}"));

    let flipped = topics
        .patch_status(
            "t",
            &PatchParams::apply("ready-ctl"),
            &status_apply(vec![condition("Ready", "False")]),
        )
        .await
        .unwrap();
    assert_eq!(
        conditions(&flipped),
        vec![
            ("Ready".into(), ConditionStatus::False),
            ("Synced".into(), ConditionStatus::True)
        ]
    );
    let dropped = topics
        .patch_status("t", &PatchParams::apply("ready-ctl"), &status_apply(vec![]))
        .await
        .unwrap();
    assert_eq!(
        conditions(&dropped),
        vec![("Synced".into(), ConditionStatus::True)]
    );
    assert_eq!(dropped.spec.partitions, 3);
    assert_eq!(dropped.metadata.generation, Some(1));
}

#[tokio::test]
async fn apply_with_strict_validation_refuses_unknown_fields() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    let mut applied = applied_topic(3, &[]);
    applied["spec"]["bogus"] = json!(true);
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::apply("alice").validation_strict(),
                &Patch::Apply(applied.clone()),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert!(s.message.contains("spec.bogus"), "{}", s.message);
    // Without Strict the unknown field is pruned silently.
    let t = topics
        .patch("t", &PatchParams::apply("alice"), &Patch::Apply(applied))
        .await
        .unwrap();
    assert_eq!(t.spec.partitions, 3);
}
