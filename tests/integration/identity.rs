//! ACLs and SCRAM credentials through the real Kafka protocol (kafka::identity over librdkafka,
//! planned by users::acl_plan): against Tansu started by the harness, or any broker named by
//! `TRIBUTARY_TEST_BOOTSTRAP` (which must then run an authorizer, or CreateAcls is refused).
//! The broker is shared with the other tests: each test names its own principals and keeps to
//! them, as the operator keeps to the principals it manages.

use std::time::Duration;

use crate::support::broker::{broker, unique};
use tributary::kafka::identity::{
    user_principal, AclBinding, AclOperation, AclPattern, AclPermission, AclResourceType,
    IdentityAdmin, RdKafkaIdentityAdmin, ScramCredentialInfo, ScramDeletion, ScramMechanism,
    ScramUpsert, CLUSTER_RESOURCE_NAME,
};
use tributary::kafka::{BrokerError, ClientSettings, RdKafkaAdmin, RequestTally, Sensitive};
use tributary::users::acl_plan::{plan, DesiredAcls};

fn identity() -> RdKafkaIdentityAdmin {
    RdKafkaAdmin::connect(&ClientSettings::plaintext(
        &broker().bootstrap,
        Duration::from_secs(10),
    ))
    .unwrap()
    .identity_admin()
}

/// What the topology derives for a producer and a consumer of `topic`: 6 bindings.
fn least_privilege(producer: &str, consumer: &str, topic: &str, group: &str) -> Vec<AclBinding> {
    use AclOperation::*;
    use AclResourceType::*;
    let (p, c) = (user_principal(producer), user_principal(consumer));
    vec![
        AclBinding::allow(&p, Write, Topic, topic),
        AclBinding::allow(&p, Describe, Topic, topic),
        AclBinding::allow(&p, IdempotentWrite, Cluster, CLUSTER_RESOURCE_NAME),
        AclBinding::allow(&c, Read, Topic, topic),
        AclBinding::allow(&c, Describe, Topic, topic),
        AclBinding::allow(&c, Read, Group, group),
    ]
}

/// The broker's bindings of the principals `desired` manages, sorted.
async fn managed_on_broker(admin: &dyn IdentityAdmin, desired: &DesiredAcls) -> Vec<AclBinding> {
    let mut found: Vec<AclBinding> = admin
        .describe_acls()
        .await
        .unwrap()
        .bindings
        .into_iter()
        .filter(|b| desired.is_managed(&b.principal))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The principals of ten producer/consumer pairs and an auditor, 62 bindings in all.
fn many_principals() -> DesiredAcls {
    let mut desired = DesiredAcls::new();
    for i in 0..10 {
        for b in least_privilege(
            &unique(&format!("orders-producer{i}")),
            &unique(&format!("orders-consumer{i}")),
            &unique("orders"),
            &unique("billing"),
        ) {
            desired.grant(b);
        }
    }
    // A prefixed deny from one host, and a transactional id: every field travels.
    let auditor = user_principal(&unique("auditor"));
    desired.grant(AclBinding {
        pattern: AclPattern::Prefixed,
        permission: AclPermission::Deny,
        host: "10.1.2.3".into(),
        ..AclBinding::allow(
            &auditor,
            AclOperation::Write,
            AclResourceType::Topic,
            "audit-",
        )
    });
    desired.grant(AclBinding::allow(
        &auditor,
        AclOperation::Describe,
        AclResourceType::TransactionalId,
        unique("tx"),
    ));
    desired
}

/// Tansu 0.6 lists CreateAcls but answers it without a result per binding (and keeps no ACL):
/// librdkafka would abort the process on that answer, so the call is refused, explicitly and
/// before anything is sent. Against a broker with working ACLs (`TRIBUTARY_TEST_BOOTSTRAP`),
/// the bindings are created in one request, described back, and re-applying is a no-op.
#[tokio::test]
async fn acls_are_created_in_one_request_and_described_back_or_refused_explicitly() {
    let admin = identity();
    let desired = many_principals();
    let mut wanted: Vec<AclBinding> = desired.bindings().cloned().collect();
    wanted.sort();
    assert_eq!(wanted.len(), 62);

    let mut tally = RequestTally::default();
    let listing = admin.describe_acls_tallied(&mut tally).await.unwrap();
    let p = plan(&desired, &listing.bindings);
    assert_eq!(
        p.create, wanted,
        "none of these principals has a binding yet"
    );
    assert!(p.delete.is_empty());
    let created = admin.create_acls_tallied(&p.create, &mut tally).await;
    if broker().is_tansu {
        let err = created.unwrap_err();
        assert!(
            matches!(
                err,
                BrokerError::Unsupported {
                    api: "CreateAcls",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.reason(), "BrokerUnsupported");
        assert!(err.to_string().contains("CreateAcls"), "{err}");
        assert_eq!(
            tally.counts().collect::<Vec<_>>(),
            [("ApiVersions", "ok", 1), ("DescribeAcls", "ok", 1)],
            "CreateAcls is never sent"
        );
        // The verdict is remembered: no second ApiVersions.
        let mut again = RequestTally::default();
        assert!(admin
            .create_acls_tallied(&p.create, &mut again)
            .await
            .is_err());
        assert_eq!(again.total(), 0);
        return;
    }
    let outcomes = created.unwrap();
    assert_eq!(outcomes.len(), 62);
    for o in &outcomes {
        assert!(o.result.is_ok(), "{}: {:?}", o.binding, o.result);
    }
    let apis: Vec<(&str, u64)> = tally.counts().map(|(api, _, n)| (api, n)).collect();
    assert_eq!(
        apis,
        [("ApiVersions", 1), ("CreateAcls", 1), ("DescribeAcls", 1)],
        "one request per kind of call, whatever the number of principals"
    );
    assert_eq!(
        managed_on_broker(&admin, &desired).await,
        wanted,
        "described back"
    );
    let again = plan(&desired, &admin.describe_acls().await.unwrap().bindings);
    assert!(again.is_empty(), "re-applying is a no-op: {again:?}");
    // Creating what exists is not an error, and adds nothing.
    let outcomes = admin.create_acls(&wanted[..3]).await.unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    assert_eq!(managed_on_broker(&admin, &desired).await, wanted);
}

/// Tansu describes no ACL: the answer parses, and holds none of ours.
#[tokio::test]
async fn every_acl_is_described_in_one_request() {
    let admin = identity();
    let mut tally = RequestTally::default();
    let listing = admin.describe_acls_tallied(&mut tally).await.unwrap();
    assert_eq!(
        tally.counts().collect::<Vec<_>>(),
        [("DescribeAcls", "ok", 1)]
    );
    if broker().is_tansu {
        assert_eq!(listing, Default::default(), "Tansu 0.6 keeps no ACL");
    }
}

#[tokio::test]
async fn deleting_acls_is_done_or_refused_explicitly_naming_delete_acls() {
    let admin = identity();
    let user = unique("refunds");
    let keep = AclBinding::allow(
        user_principal(&user),
        AclOperation::Read,
        AclResourceType::Topic,
        unique("refunds"),
    );
    let gone = AclBinding::allow(
        user_principal(&user),
        AclOperation::Write,
        AclResourceType::Topic,
        unique("refunds"),
    );
    if broker().is_tansu {
        let mut tally = RequestTally::default();
        let err = admin
            .delete_acls_tallied(std::slice::from_ref(&gone), &mut tally)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                BrokerError::Unsupported {
                    api: "DeleteAcls",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.reason(), "BrokerUnsupported");
        assert!(err.to_string().contains("DeleteAcls"), "{err}");
        assert_eq!(
            tally.counts().collect::<Vec<_>>(),
            [("DeleteAcls", "unsupported", 1)]
        );
        return;
    }
    admin
        .create_acls(&[keep.clone(), gone.clone()])
        .await
        .unwrap();
    let desired: DesiredAcls = [keep.clone()].into_iter().collect();
    let p = plan(&desired, &admin.describe_acls().await.unwrap().bindings);
    assert_eq!(
        p.delete,
        std::slice::from_ref(&gone),
        "the binding no longer granted goes"
    );
    assert!(p.create.is_empty());
    let outcomes = admin.delete_acls(&p.delete).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].result.is_ok(), "{outcomes:?}");
    assert_eq!(managed_on_broker(&admin, &desired).await, [keep]);
    // A delete that matches nothing (already gone) is not an error.
    let outcomes = admin.delete_acls(&[gone]).await.unwrap();
    assert!(outcomes[0].result.is_ok(), "{outcomes:?}");
}

#[tokio::test]
async fn scram_credentials_are_upserted_described_and_deleted() {
    let admin = identity();
    let (a, b) = (unique("payments"), unique("ledger"));
    let upsert = |user: &str, mechanism, iterations| ScramUpsert {
        user: user.into(),
        mechanism,
        iterations,
        password: Sensitive::new(format!("secret-of-{user}")),
    };
    let mut tally = RequestTally::default();
    // Three alterations of two users: an outcome per user (Tansu answers one per alteration).
    let outcomes = admin
        .alter_scram_tallied(
            &[
                upsert(&a, ScramMechanism::Sha512, 8192),
                upsert(&a, ScramMechanism::Sha256, 4096),
                upsert(&b, ScramMechanism::Sha512, 4096),
            ],
            &[],
            &mut tally,
        )
        .await
        .unwrap();
    let mut users: Vec<&str> = outcomes.iter().map(|o| o.user.as_str()).collect();
    users.sort();
    let mut expected = vec![a.as_str(), b.as_str()];
    expected.sort();
    assert_eq!(users, expected, "an outcome per user");
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");

    let described = admin
        .describe_scram_tallied(&[a.clone(), b.clone(), a.clone()], &mut tally)
        .await
        .unwrap();
    assert_eq!(described.len(), 2, "one entry per distinct user");
    let of = |user: &str| {
        let mut infos = described
            .iter()
            .find(|d| d.user == user)
            .unwrap_or_else(|| panic!("{user} described: {described:?}"))
            .result
            .clone()
            .unwrap();
        infos.sort();
        infos
    };
    assert_eq!(
        tally.counts().collect::<Vec<_>>(),
        [
            ("AlterUserScramCredentials", "ok", 1),
            ("DescribeUserScramCredentials", "ok", 1)
        ]
    );
    if broker().is_tansu {
        // Tansu 0.6 with memory storage accepts credentials and keeps none (a Tansu built with
        // libsql keeps them): what is described back is checked against a real broker.
        assert_eq!(of(&a), []);
        assert_eq!(of(&b), []);
        return;
    }
    assert_eq!(
        of(&a),
        [
            ScramCredentialInfo {
                mechanism: ScramMechanism::Sha256,
                iterations: 4096
            },
            ScramCredentialInfo {
                mechanism: ScramMechanism::Sha512,
                iterations: 8192
            }
        ]
    );
    assert_eq!(
        of(&b),
        [ScramCredentialInfo {
            mechanism: ScramMechanism::Sha512,
            iterations: 4096
        }]
    );

    // A rotation (same mechanism, new password and iterations) and a deletion in one request.
    let outcomes = admin
        .alter_scram(
            &[upsert(&b, ScramMechanism::Sha512, 8192)],
            &[ScramDeletion {
                user: a.clone(),
                mechanism: ScramMechanism::Sha256,
            }],
        )
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    let described = admin.describe_scram(&[a.clone(), b.clone()]).await.unwrap();
    for d in &described {
        let infos = d.result.clone().unwrap();
        assert_eq!(infos.len(), 1, "{d:?}");
        assert_eq!(infos[0].iterations, 8192, "{d:?}");
        assert_eq!(infos[0].mechanism, ScramMechanism::Sha512, "{d:?}");
    }
}

#[tokio::test]
async fn a_user_without_credentials_has_none() {
    let admin = identity();
    let nobody = unique("nobody");
    let described = admin
        .describe_scram(std::slice::from_ref(&nobody))
        .await
        .unwrap();
    assert_eq!(described.len(), 1);
    assert_eq!(described[0].user, nobody);
    assert_eq!(described[0].result, Ok(vec![]));
    // Nothing to ask: no request.
    let mut tally = RequestTally::default();
    assert!(admin
        .describe_scram_tallied(&[], &mut tally)
        .await
        .unwrap()
        .is_empty());
    assert!(admin
        .alter_scram_tallied(&[], &[], &mut tally)
        .await
        .unwrap()
        .is_empty());
    assert!(admin
        .create_acls_tallied(&[], &mut tally)
        .await
        .unwrap()
        .is_empty());
    assert!(admin
        .delete_acls_tallied(&[], &mut tally)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(tally.total(), 0);
}
