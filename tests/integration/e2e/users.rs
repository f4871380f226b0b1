//! KafkaUser end to end: the real controllers against the emulator, the test broker for the
//! cluster, and the in-memory identity admin for ACLs and SCRAM credentials: a user gets its
//! Secret, its ACLs and `Ready`; drift is repaired; deletion removes its ACLs and credentials
//! and releases the finalizer; the newer of two claimants gets `ResourceConflict`; a broker
//! without DeleteAcls gets the `BrokerUnsupported` refusal naming it, the rest still done.

use super::*;

use crate::support::broker::broker;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use tributary::api::{KafkaUser, KafkaUserStatus};
use tributary::kafka::identity::memory::MemoryIdentity;
use tributary::kafka::identity::{
    user_principal, AclBinding, AclOperation, AclResourceType, ScramMechanism,
};

/// Emulator + operator whose clusters' identity admin is `identity`.
async fn start_with_identity(identity: Arc<MemoryIdentity>) -> Running {
    let inner = runtime::rdkafka_connect();
    let connect: runtime::ConnectFn = Arc::new(move |settings| {
        let mut clients = inner(settings)?;
        clients.identity = identity.clone();
        Ok(clients)
    });
    start_connected(&crds::all(), options(), connect).await
}

fn user(name: &str, user_name: Option<&str>, topics: &[&str]) -> KafkaUser {
    let mut spec = json!({
        "clusterRef": "local",
        "authentication": {"type": "scram-sha-512"},
        "authorization": {"acls": [
            {"resource": {"type": "topic", "name": topics[0]}, "operations": ["Write", "Describe"]},
            {"resource": {"type": "group", "name": format!("{name}-group")}, "operations": ["Read"]}
        ]}
    });
    if let Some(n) = user_name {
        spec["userName"] = n.into();
    }
    serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaUser",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec
    }))
    .unwrap()
}

fn users(env: &Env) -> Api<KafkaUser> {
    Api::namespaced(env.client.clone(), NAMESPACE)
}

async fn status(env: &Env, name: &str) -> Option<KafkaUserStatus> {
    users(env)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|u| u.status)
}

async fn wait_reason(env: &Env, name: &str, reason: &str) -> KafkaUserStatus {
    let deadline = tokio::time::Instant::now() + env.patience;
    loop {
        let s = status(env, name).await;
        if let Some(s) = &s {
            if ready_reason(&s.conditions).is_some_and(|(_, r)| r == reason) {
                return s.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for KafkaUser {name} to report {reason}; its status: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn binding(user: &str, op: AclOperation, t: AclResourceType, name: &str) -> AclBinding {
    AclBinding::allow(user_principal(user), op, t, name)
}

fn secret_value(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_gets_its_secret_acls_and_ready_and_drift_is_repaired() {
    let identity = Arc::new(MemoryIdentity::new());
    let r = start_with_identity(identity.clone()).await;
    users(&r.env)
        .create(&PostParams::default(), &user("orders", None, &["orders"]))
        .await
        .unwrap();
    let s = wait_reason(&r.env, "orders", "InSync").await;
    assert_eq!(s.principal.as_deref(), Some("User:orders"));
    assert_eq!(s.secret_name.as_deref(), Some("orders-kafka"));
    assert_eq!(
        s.acls,
        vec![
            "User:orders WRITE topic orders",
            "User:orders DESCRIBE topic orders",
            "User:orders READ group orders-group",
        ]
    );
    let wanted = vec![
        binding(
            "orders",
            AclOperation::Write,
            AclResourceType::Topic,
            "orders",
        ),
        binding(
            "orders",
            AclOperation::Describe,
            AclResourceType::Topic,
            "orders",
        ),
        binding(
            "orders",
            AclOperation::Read,
            AclResourceType::Group,
            "orders-group",
        ),
    ];
    let mut on_broker = identity.acls();
    on_broker.sort();
    let mut sorted = wanted.clone();
    sorted.sort();
    assert_eq!(on_broker, sorted);

    let secrets: Api<Secret> = Api::namespaced(r.env.client.clone(), NAMESPACE);
    let secret = secrets.get("orders-kafka").await.unwrap();
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("KafkaUser", "orders")
    );
    assert_eq!(secret_value(&secret, "username"), "orders");
    let password = secret_value(&secret, "password");
    assert_eq!(password.len(), 64);
    assert!(secret_value(&secret, "sasl.jaas.config").contains("username=\"orders\""));
    assert!(
        identity.authenticates("orders", ScramMechanism::Sha512, &password),
        "the broker takes the Secret's password"
    );

    // Drift by hand: one granted ACL removed, one extra added for the principal, one of another
    // principal added. At the next resync the first two are repaired, the third is left alone.
    let stranger = binding(
        "stranger",
        AclOperation::Read,
        AclResourceType::Topic,
        "orders",
    );
    let extra = binding(
        "orders",
        AclOperation::Read,
        AclResourceType::Topic,
        "payments",
    );
    identity.remove_by_hand(&wanted[0]);
    identity.add_by_hand(extra.clone());
    identity.add_by_hand(stranger.clone());
    r.env
        .eventually("the drift is repaired", || async {
            let acls = identity.acls();
            acls.contains(&wanted[0]) && !acls.contains(&extra)
        })
        .await;
    assert!(
        identity.acls().contains(&stranger),
        "never another principal's"
    );
    r.env
        .eventually("a DriftRepaired Event", || async {
            !drift_notes(&r.env, "orders").await.is_empty()
        })
        .await;

    // Re-applying is a no-op: the password stays.
    let again = secrets.get("orders-kafka").await.unwrap();
    assert_eq!(secret_value(&again, "password"), password);

    // A password changed in the Secret by hand is set on the broker at the next resync.
    let rotated = "a-new-password-set-by-hand";
    secrets
        .patch(
            "orders-kafka",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"data": {
                "password": k8s_openapi::ByteString(rotated.as_bytes().to_vec())
            }})),
        )
        .await
        .unwrap();
    r.env
        .eventually("the rotated password is set on the broker", || async {
            identity.authenticates("orders", ScramMechanism::Sha512, rotated)
        })
        .await;
    let secret = secrets.get("orders-kafka").await.unwrap();
    assert!(
        secret_value(&secret, "sasl.jaas.config").contains(rotated),
        "the JAAS line follows the password"
    );
    r.stop().await;
}

async fn drift_notes(env: &Env, object: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), NAMESPACE);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
        .filter(|e| e.reason.as_deref() == Some("DriftRepaired"))
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_removes_its_acls_and_credentials_and_releases_the_finalizer() {
    let identity = Arc::new(MemoryIdentity::new());
    let r = start_with_identity(identity.clone()).await;
    for name in ["orders", "payments"] {
        users(&r.env)
            .create(&PostParams::default(), &user(name, None, &[name]))
            .await
            .unwrap();
        wait_reason(&r.env, name, "InSync").await;
    }
    assert_eq!(identity.acls().len(), 6);
    users(&r.env)
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    r.env
        .eventually("the KafkaUser is gone", || async {
            users(&r.env)
                .get_opt("orders")
                .await
                .ok()
                .flatten()
                .is_none()
        })
        .await;
    let left = identity.acls();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().all(|b| b.principal == "User:payments"));
    assert!(identity.credentials("orders").is_empty());
    assert_eq!(identity.credentials("payments").len(), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newer_of_two_claimants_of_a_principal_gets_resource_conflict() {
    let identity = Arc::new(MemoryIdentity::new());
    let r = start_with_identity(identity.clone()).await;
    users(&r.env)
        .create(&PostParams::default(), &user("orders", None, &["orders"]))
        .await
        .unwrap();
    wait_reason(&r.env, "orders", "InSync").await;
    // Creation times have a resolution of a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    users(&r.env)
        .create(
            &PostParams::default(),
            &user("orders-too", Some("orders"), &["payments"]),
        )
        .await
        .unwrap();
    let s = wait_reason(&r.env, "orders-too", "ResourceConflict").await;
    let message = &s
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(message.contains("KafkaUser 'orders' is older"), "{message}");
    // The broker holds only what the older one grants.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(identity
        .acls()
        .iter()
        .all(|b| b.resource_name != "payments"));
    assert_eq!(
        wait_reason(&r.env, "orders", "InSync").await.acls.len(),
        3,
        "the older one is untouched"
    );

    // The older one goes: nothing of the principal is removed, and the newer one takes over.
    let calls_before = identity.calls().len();
    users(&r.env)
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    let s = wait_reason(&r.env, "orders-too", "InSync").await;
    assert_eq!(s.acls.len(), 3, "{:?}", s.acls);
    assert!(identity
        .acls()
        .iter()
        .any(|b| b.resource_name == "payments"));
    assert!(!identity.acls().iter().any(|b| b.resource_name == "orders"));
    assert_eq!(identity.credentials("orders").len(), 1);
    let alters: Vec<_> = identity.calls()[calls_before..]
        .iter()
        .filter(|(api, _)| *api == "AlterUserScramCredentials")
        .cloned()
        .collect();
    assert_eq!(
        alters,
        [("AlterUserScramCredentials", 1)],
        "the credential was not deleted by the leaving owner, only set by the new one"
    );
    let secrets: Api<Secret> = Api::namespaced(r.env.client.clone(), NAMESPACE);
    let password = secret_value(&secrets.get("orders-too-kafka").await.unwrap(), "password");
    assert!(
        identity.authenticates("orders", ScramMechanism::Sha512, &password),
        "the new owner's password is the principal's now"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_delete_acls_is_refused_by_name_and_the_rest_goes_ahead() {
    let identity = Arc::new(MemoryIdentity::like_tansu());
    let extra = binding(
        "orders",
        AclOperation::Read,
        AclResourceType::Topic,
        "payments",
    );
    identity.add_by_hand(extra.clone());
    let r = start_with_identity(identity.clone()).await;
    users(&r.env)
        .create(&PostParams::default(), &user("orders", None, &["orders"]))
        .await
        .unwrap();
    let s = wait_reason(&r.env, "orders", "BrokerUnsupported").await;
    let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::False);
    assert!(ready.message.contains("DeleteAcls"), "{}", ready.message);
    let stalled = s.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.status, ConditionStatus::True);
    // The creations and the credential went ahead; the extra ACL is still in force, and said so.
    let acls = identity.acls();
    assert!(acls.contains(&binding(
        "orders",
        AclOperation::Write,
        AclResourceType::Topic,
        "orders"
    )));
    assert!(acls.contains(&extra));
    assert!(s
        .acls
        .contains(&"User:orders READ topic payments".to_string()));
    assert_eq!(identity.credentials("orders").len(), 1);

    // Idle is silent: the refusal stays, and the resyncs (every 2 s) write no Event about it.
    let events = || async {
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(r.env.client.clone(), NAMESPACE);
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("orders"))
            .map(|e| (e.reason, e.series.map(|s| s.count)))
            .collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = events().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        events().await,
        before,
        "no Event repeated while nothing changes"
    );
    r.stop().await;
}

/// Against the test broker itself (the operator's own librdkafka identity admin). Tansu 0.6
/// answers CreateAcls without keeping anything and has no DeleteAcls: the user reports
/// `BrokerUnsupported` naming the API, and its SCRAM credential is still set. Another broker:
/// the ACLs are set and described back, and a rule taken out of the spec is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_broker_acls_and_credentials_are_set_or_refused_by_name() {
    let r = start().await;
    let name = crate::support::broker::unique("orders");
    let topic = crate::support::broker::unique("orders-topic");
    let mut u = user(&name, None, &[&topic]);
    users(&r.env)
        .create(&PostParams::default(), &u)
        .await
        .unwrap();
    if broker().is_tansu {
        let s = wait_reason(&r.env, &name, "BrokerUnsupported").await;
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert!(ready.message.contains("CreateAcls"), "{}", ready.message);
        assert_eq!(
            ready.message.matches("CreateAcls:").count(),
            1,
            "one refusal told once: {}",
            ready.message
        );
        assert!(
            s.credential_version.is_some(),
            "the credential went ahead: {s:#?}"
        );
        r.stop().await;
        return;
    }
    let s = wait_reason(&r.env, &name, "InSync").await;
    assert_eq!(
        s.acls,
        vec![
            format!("User:{name} WRITE topic {topic}"),
            format!("User:{name} DESCRIBE topic {topic}"),
            format!("User:{name} READ group {name}-group"),
        ]
    );
    // The group rule leaves the spec.
    u.spec.authorization.as_mut().unwrap().acls.truncate(1);
    let mut current = users(&r.env).get(&name).await.unwrap();
    current.spec = u.spec.clone();
    users(&r.env)
        .replace(&name, &PostParams::default(), &current)
        .await
        .unwrap();
    r.env
        .eventually("the group ACL is removed", || async {
            status(&r.env, &name)
                .await
                .is_some_and(|s| s.acls.len() == 2)
        })
        .await;
    r.stop().await;
}

/// `tributary.io/paused: "true"`: nothing is written (no Secret, nothing on the broker), the
/// status lists what would be done; unpaused, it is done; deleted while paused, what it made
/// stays on the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_user_changes_nothing_and_shows_what_it_would_do() {
    let identity = Arc::new(MemoryIdentity::new());
    let r = start_with_identity(identity.clone()).await;
    let mut u = user("orders", None, &["orders"]);
    u.metadata.annotations = Some([("tributary.io/paused".to_owned(), "true".to_owned())].into());
    users(&r.env)
        .create(&PostParams::default(), &u)
        .await
        .unwrap();
    let s = wait_reason(&r.env, "orders", "Paused").await;
    assert_eq!(
        s.pending_actions,
        vec![
            "+ acl User:orders WRITE topic orders",
            "+ acl User:orders DESCRIBE topic orders",
            "+ acl User:orders READ group orders-group",
        ]
    );
    assert!(identity.acls().is_empty() && identity.credentials("orders").is_empty());
    let secrets: Api<Secret> = Api::namespaced(r.env.client.clone(), NAMESPACE);
    assert!(secrets.get_opt("orders-kafka").await.unwrap().is_none());

    let patch = json!({"metadata": {"annotations": {"tributary.io/paused": null}}});
    users(&r.env)
        .patch(
            "orders",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .unwrap();
    let s = wait_reason(&r.env, "orders", "InSync").await;
    assert!(s.pending_actions.is_empty());
    assert_eq!(identity.acls().len(), 3);

    let patch = json!({"metadata": {"annotations": {"tributary.io/paused": "true"}}});
    users(&r.env)
        .patch(
            "orders",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .unwrap();
    wait_reason(&r.env, "orders", "Paused").await;
    users(&r.env)
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    r.env
        .eventually("the KafkaUser is gone", || async {
            users(&r.env)
                .get_opt("orders")
                .await
                .ok()
                .flatten()
                .is_none()
        })
        .await;
    assert_eq!(identity.acls().len(), 3, "a paused user's ACLs stay");
    r.stop().await;
}
