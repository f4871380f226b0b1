//! [`IdentityAdmin`] over a cluster's librdkafka client (the one its [`crate::kafka::RdKafkaAdmin`]
//! and lag observer use: one set of connections per cluster).
//!
//! Two guards stand between the caller and librdkafka's ACL calls:
//!
//! - librdkafka 2.12.1 aborts the whole process (a failed `rd_assert` in
//!   `rd_kafka_admin_response_parse`) when a CreateAcls answer does not hold one result per
//!   binding, as Tansu 0.6's does (it answers CreateAcls with no results and stores nothing).
//!   Before the first CreateAcls of a client, the broker's ApiVersions are read
//!   ([`crate::kafka::api_versions::probe`], where the connection is not TLS); a broker that
//!   lists CreateAcls without DeleteAcls — Kafka brings the ACL APIs together (KIP-140), only a
//!   stub lists one alone — gets CreateAcls refused as unsupported, never sent. Over TLS the
//!   probe cannot be made, and librdkafka is trusted.
//! - Answers are normalised to the trait's promises: one outcome per user of a credential
//!   change (Tansu answers one per alteration; the first refusal of a user wins), and an entry
//!   for every user described (Tansu leaves out a user without credentials, Kafka answers
//!   `ResourceNotFound`: both are a user with none).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::native;
use super::{
    AclBinding, AclListing, AclOutcome, IdentityAdmin, ScramDeletion, ScramUpsert, UserOutcome,
    UserScramCredentials,
};
use crate::kafka::api_versions;
use crate::kafka::ffi::{Client, Handle};
use crate::kafka::{BrokerError, RequestTally};

/// Kafka's API keys of CreateAcls and DeleteAcls.
const CREATE_ACLS: i16 = 30;
const DELETE_ACLS: i16 = 31;

/// Whether CreateAcls may be sent to a broker that lists `apis`: not when it lists CreateAcls
/// without DeleteAcls (see the module doc).
pub(crate) fn create_acls_conforms(apis: &BTreeMap<i16, (i16, i16)>) -> Result<(), BrokerError> {
    if apis.contains_key(&CREATE_ACLS) && !apis.contains_key(&DELETE_ACLS) {
        return Err(BrokerError::Unsupported {
            api: "CreateAcls",
            message: "the broker lists CreateAcls without DeleteAcls, as a stub does (Tansu 0.6 \
                      answers CreateAcls without a result per binding and keeps no ACL); not sent"
                .into(),
        });
    }
    Ok(())
}

/// ACLs and SCRAM credentials of one cluster through librdkafka.
pub struct RdKafkaIdentityAdmin {
    client: Arc<Client>,
    /// Where ApiVersions can be asked without TLS (the first bootstrap server), if anywhere.
    probe: Option<String>,
    /// The verdict of [`create_acls_conforms`] once the broker answered ApiVersions.
    create_acls: Mutex<Option<Result<(), BrokerError>>>,
}

impl RdKafkaIdentityAdmin {
    /// `probe`: the address ApiVersions may be asked at (none over TLS).
    pub(in crate::kafka) fn with_client(client: Arc<Client>, probe: Option<String>) -> Self {
        Self {
            client,
            probe,
            create_acls: Mutex::new(None),
        }
    }

    /// Whether CreateAcls may be sent: asked of the broker once (one ApiVersions request),
    /// then remembered; a probe that fails is not remembered.
    async fn create_acls_allowed(
        &self,
        requests: &mut RequestTally,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let Some(address) = &self.probe else {
            return Ok(());
        };
        if let Some(verdict) = self.create_acls.lock().unwrap().clone() {
            return verdict;
        }
        let apis = api_versions::probe(address, timeout).await;
        requests.request("ApiVersions", apis.as_ref().map(|_| ()));
        let verdict = create_acls_conforms(&apis?);
        *self.create_acls.lock().unwrap() = Some(verdict.clone());
        verdict
    }

    /// One native request of `api`, off the async runtime, tallied; a lost connection or a
    /// timeout is reported with librdkafka's last error.
    async fn call<T: Send + 'static>(
        &self,
        api: &'static str,
        requests: &mut RequestTally,
        f: impl FnOnce(Handle, Duration) -> Result<T, BrokerError> + Send + 'static,
    ) -> Result<T, BrokerError> {
        self.client.drain();
        requests.sent(api, 1);
        let result = self
            .client
            .blocking("identity admin call", move |c| f(c.handle(), c.timeout()))
            .await?;
        requests.answered(api, 1, result.as_ref().map(|_| ()));
        result.map_err(|e| self.client.explain(e))
    }
}

impl IdentityAdmin for RdKafkaIdentityAdmin {
    fn describe_acls_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<AclListing, BrokerError>> {
        self.call("DescribeAcls", requests, native::describe_acls)
            .boxed()
    }

    fn create_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        async move {
            if bindings.is_empty() {
                return Ok(Vec::new());
            }
            self.create_acls_allowed(requests, self.client.timeout())
                .await?;
            let bindings = bindings.to_vec();
            self.call("CreateAcls", requests, move |h, t| {
                native::create_acls(h, t, &bindings)
            })
            .await
        }
        .boxed()
    }

    fn delete_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        async move {
            if bindings.is_empty() {
                return Ok(Vec::new());
            }
            let bindings = bindings.to_vec();
            self.call("DeleteAcls", requests, move |h, t| {
                native::delete_acls(h, t, &bindings)
            })
            .await
        }
        .boxed()
    }

    fn describe_scram_tallied<'a>(
        &'a self,
        users: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserScramCredentials>, BrokerError>> {
        async move {
            // librdkafka refuses a user named twice; an empty list would describe every user.
            let users: Vec<String> = users
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if users.is_empty() {
                return Ok(Vec::new());
            }
            let asked = users.clone();
            let described = self
                .call("DescribeUserScramCredentials", requests, move |h, t| {
                    native::describe_scram(h, t, &users)
                })
                .await?;
            Ok(every_user_described(&asked, described))
        }
        .boxed()
    }

    fn alter_scram_tallied<'a>(
        &'a self,
        upserts: &'a [ScramUpsert],
        deletions: &'a [ScramDeletion],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserOutcome>, BrokerError>> {
        async move {
            if upserts.is_empty() && deletions.is_empty() {
                return Ok(Vec::new());
            }
            let (upserts, deletions) = (upserts.to_vec(), deletions.to_vec());
            let outcomes = self
                .call("AlterUserScramCredentials", requests, move |h, t| {
                    native::alter_scram(h, t, &upserts, &deletions)
                })
                .await?;
            Ok(one_outcome_per_user(outcomes))
        }
        .boxed()
    }
}

/// An entry for each of `asked` (sorted, distinct), in that order: the broker's, or none for a
/// user the broker left out.
fn every_user_described(
    asked: &[String],
    described: Vec<UserScramCredentials>,
) -> Vec<UserScramCredentials> {
    let mut by_user: BTreeMap<String, UserScramCredentials> = BTreeMap::new();
    for d in described {
        by_user.entry(d.user.clone()).or_insert(d);
    }
    asked
        .iter()
        .map(|user| {
            by_user
                .remove(user)
                .unwrap_or_else(|| UserScramCredentials {
                    user: user.clone(),
                    result: Ok(Vec::new()),
                })
        })
        .collect()
}

/// One outcome per user, in the order users first appear; a user with any refusal takes the
/// first.
fn one_outcome_per_user(outcomes: Vec<UserOutcome>) -> Vec<UserOutcome> {
    let mut merged: Vec<UserOutcome> = Vec::new();
    for o in outcomes {
        match merged.iter_mut().find(|m| m.user == o.user) {
            Some(m) => {
                if m.result.is_ok() {
                    m.result = o.result;
                }
            }
            None => merged.push(o),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::identity::{ScramCredentialInfo, ScramMechanism};
    use crate::kafka::Rejection;

    #[test]
    fn create_acls_is_refused_where_the_broker_lists_it_without_delete_acls() {
        let apis = |keys: &[i16]| keys.iter().map(|k| (*k, (0, 3))).collect();
        let err = create_acls_conforms(&apis(&[3, 29, 30])).unwrap_err();
        assert!(matches!(
            err,
            BrokerError::Unsupported {
                api: "CreateAcls",
                ..
            }
        ));
        assert!(err.to_string().contains("without DeleteAcls"), "{err}");
        assert_eq!(create_acls_conforms(&apis(&[3, 29, 30, 31])), Ok(()));
        // Neither listed: librdkafka refuses it itself, before sending.
        assert_eq!(create_acls_conforms(&apis(&[3])), Ok(()));
    }

    fn outcome(user: &str, code: Option<&str>) -> UserOutcome {
        UserOutcome {
            user: user.into(),
            result: code.map_or(Ok(()), |c| {
                Err(Rejection {
                    code: c.into(),
                    message: c.into(),
                    unsupported: false,
                })
            }),
        }
    }

    #[test]
    fn credential_outcomes_are_merged_per_user_the_first_refusal_winning() {
        let merged = one_outcome_per_user(vec![
            outcome("b", None),
            outcome("a", None),
            outcome("b", Some("UnacceptableCredential")),
            outcome("b", Some("Other")),
            outcome("a", None),
        ]);
        assert_eq!(
            merged,
            [
                outcome("b", Some("UnacceptableCredential")),
                outcome("a", None)
            ]
        );
    }

    #[test]
    fn a_user_left_out_of_the_answer_has_no_credentials() {
        let info = ScramCredentialInfo {
            mechanism: ScramMechanism::Sha512,
            iterations: 4096,
        };
        let described = every_user_described(
            &["a".into(), "b".into()],
            vec![UserScramCredentials {
                user: "b".into(),
                result: Ok(vec![info]),
            }],
        );
        assert_eq!(
            described,
            [
                UserScramCredentials {
                    user: "a".into(),
                    result: Ok(vec![])
                },
                UserScramCredentials {
                    user: "b".into(),
                    result: Ok(vec![info])
                }
            ]
        );
    }
}
