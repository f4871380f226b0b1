//! An in-memory broker of identities for tests of everything above the broker layer: it keeps
//! ACL bindings and SCRAM credentials, answers each batched call as a broker would, counts
//! requests, and can be made unreachable, lacking an API (as Tansu lacks DeleteAcls), or
//! refusing chosen bindings or users one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{
    AclBinding, AclListing, AclOutcome, IdentityAdmin, ScramCredentialInfo, ScramDeletion,
    ScramMechanism, ScramUpsert, UserOutcome, UserScramCredentials, SCRAM_MAX_ITERATIONS,
    SCRAM_MIN_ITERATIONS,
};
use crate::kafka::{BrokerError, Rejection, RequestTally};

/// The Kafka APIs the identity calls make, by the name [`BrokerError::Unsupported`] gives.
pub const IDENTITY_APIS: [&str; 5] = [
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeUserScramCredentials",
    "AlterUserScramCredentials",
];

/// ACLs and SCRAM credentials of a single-broker Kafka held in memory.
#[derive(Default)]
pub struct MemoryIdentity {
    acls: Mutex<BTreeSet<AclBinding>>,
    credentials: Mutex<BTreeMap<String, Credentials>>,
    requests: AtomicU64,
    down: AtomicBool,
    faults: Mutex<Faults>,
    calls: Mutex<Vec<(&'static str, usize)>>,
}

/// One user's credentials: mechanism → (iterations, password).
type Credentials = BTreeMap<ScramMechanism, (i32, String)>;

#[derive(Default)]
struct Faults {
    unsupported: BTreeSet<&'static str>,
    /// binding → (error code, message) the broker answers for it.
    refused_bindings: BTreeMap<AclBinding, (String, String)>,
    /// user → (error code, message) the broker answers for the user's credential changes.
    refused_users: BTreeMap<String, (String, String)>,
}

impl MemoryIdentity {
    pub fn new() -> Self {
        Self::default()
    }

    /// A broker without DeleteAcls, as Tansu is.
    pub fn like_tansu() -> Self {
        let broker = Self::new();
        broker.set_unsupported("DeleteAcls");
        broker
    }

    /// Every call fails as if the broker were unreachable, until set back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Calls of `api` (one of [`IDENTITY_APIS`]) are refused as unsupported, as librdkafka
    /// refuses an API the broker does not list.
    pub fn set_unsupported(&self, api: &'static str) {
        assert!(IDENTITY_APIS.contains(&api), "{api} is no identity API");
        self.faults.lock().unwrap().unsupported.insert(api);
    }

    /// The broker refuses to create or delete `binding`, with `code` (e.g.
    /// `SecurityDisabled`, `InvalidRequest`); the rest of the batch goes ahead.
    pub fn refuse_binding(&self, binding: &AclBinding, code: &str, message: &str) {
        self.faults
            .lock()
            .unwrap()
            .refused_bindings
            .insert(binding.clone(), (code.into(), message.into()));
    }

    /// The broker refuses every credential change of `user`, with `code`.
    pub fn refuse_user(&self, user: &str, code: &str, message: &str) {
        self.faults
            .lock()
            .unwrap()
            .refused_users
            .insert(user.into(), (code.into(), message.into()));
    }

    /// The bindings as they are now, sorted.
    pub fn acls(&self) -> Vec<AclBinding> {
        self.acls.lock().unwrap().iter().cloned().collect()
    }

    /// Adds a binding behind the operator's back.
    pub fn add_by_hand(&self, binding: AclBinding) {
        self.acls.lock().unwrap().insert(binding);
    }

    /// Removes a binding behind the operator's back.
    pub fn remove_by_hand(&self, binding: &AclBinding) {
        self.acls.lock().unwrap().remove(binding);
    }

    /// `user`'s credentials now, by mechanism.
    pub fn credentials(&self, user: &str) -> Vec<ScramCredentialInfo> {
        self.credentials
            .lock()
            .unwrap()
            .get(user)
            .into_iter()
            .flatten()
            .map(|(m, (iterations, _))| ScramCredentialInfo {
                mechanism: *m,
                iterations: *iterations,
            })
            .collect()
    }

    /// Whether `user` would authenticate with `password` over `mechanism`.
    pub fn authenticates(&self, user: &str, mechanism: ScramMechanism, password: &str) -> bool {
        self.credentials
            .lock()
            .unwrap()
            .get(user)
            .and_then(|c| c.get(&mechanism))
            .is_some_and(|(_, p)| p == password)
    }

    /// Broker requests made so far.
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// `(api, items in the call)` of every call so far, in order.
    pub fn calls(&self) -> Vec<(&'static str, usize)> {
        self.calls.lock().unwrap().clone()
    }

    /// One request of `api` about `items` items, tallied: fails if the broker is down or
    /// lacks the API.
    fn enter(
        &self,
        api: &'static str,
        items: usize,
        requests: &mut RequestTally,
    ) -> Result<(), BrokerError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.calls.lock().unwrap().push((api, items));
        let result = if self.down.load(Ordering::SeqCst) {
            Err(BrokerError::Unreachable("memory broker is down".into()))
        } else if self.faults.lock().unwrap().unsupported.contains(api) {
            Err(BrokerError::Unsupported {
                api,
                message: format!("{api} not supported by broker"),
            })
        } else {
            Ok(())
        };
        requests.request(api, result.as_ref().map(|_| ()));
        result
    }

    fn refused_binding(&self, binding: &AclBinding) -> Option<Rejection> {
        self.faults
            .lock()
            .unwrap()
            .refused_bindings
            .get(binding)
            .map(|(code, message)| reject(code, message.clone()))
    }

    fn acl_batch(
        &self,
        api: &'static str,
        bindings: &[AclBinding],
        requests: &mut RequestTally,
        apply: impl Fn(&mut BTreeSet<AclBinding>, &AclBinding),
    ) -> Result<Vec<AclOutcome>, BrokerError> {
        if bindings.is_empty() {
            return Ok(Vec::new());
        }
        self.enter(api, bindings.len(), requests)?;
        let mut acls = self.acls.lock().unwrap();
        Ok(bindings
            .iter()
            .map(|b| {
                let result = match (self.refused_binding(b), invalid(b)) {
                    (Some(r), _) | (None, Some(r)) => Err(r),
                    (None, None) => {
                        apply(&mut acls, b);
                        Ok(())
                    }
                };
                AclOutcome {
                    binding: b.clone(),
                    result,
                }
            })
            .collect())
    }
}

fn reject(code: &str, message: String) -> Rejection {
    Rejection {
        code: code.into(),
        message,
        unsupported: false,
    }
}

/// What a Kafka broker refuses in a binding, as it answers.
fn invalid(b: &AclBinding) -> Option<Rejection> {
    if b.resource_name.is_empty() {
        return Some(reject(
            "InvalidRequest",
            "Resource name must not be empty".into(),
        ));
    }
    match b.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => None,
        _ => Some(reject(
            "InvalidRequest",
            format!("Could not parse principal from `{}`", b.principal),
        )),
    }
}

impl IdentityAdmin for MemoryIdentity {
    fn describe_acls_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<AclListing, BrokerError>> {
        let result = self
            .enter("DescribeAcls", 0, requests)
            .map(|()| AclListing {
                bindings: self.acls(),
                unrecognised: Vec::new(),
            });
        async move { result }.boxed()
    }

    fn create_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        let result = self.acl_batch("CreateAcls", bindings, requests, |acls, b| {
            acls.insert(b.clone());
        });
        async move { result }.boxed()
    }

    fn delete_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        let result = self.acl_batch("DeleteAcls", bindings, requests, |acls, b| {
            acls.remove(b);
        });
        async move { result }.boxed()
    }

    fn describe_scram_tallied<'a>(
        &'a self,
        users: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserScramCredentials>, BrokerError>> {
        let result = if users.is_empty() {
            Ok(Vec::new())
        } else {
            let distinct: BTreeSet<&String> = users.iter().collect();
            self.enter("DescribeUserScramCredentials", distinct.len(), requests)
                .map(|()| {
                    distinct
                        .into_iter()
                        .map(|u| UserScramCredentials {
                            user: u.clone(),
                            result: Ok(self.credentials(u)),
                        })
                        .collect()
                })
        };
        async move { result }.boxed()
    }

    fn alter_scram_tallied<'a>(
        &'a self,
        upserts: &'a [ScramUpsert],
        deletions: &'a [ScramDeletion],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserOutcome>, BrokerError>> {
        let result = (|| {
            if upserts.is_empty() && deletions.is_empty() {
                return Ok(Vec::new());
            }
            self.enter(
                "AlterUserScramCredentials",
                upserts.len() + deletions.len(),
                requests,
            )?;
            // Kafka answers once per user, and refuses every change of a user whose changes
            // include a bad one (or two for one mechanism).
            let mut users: BTreeMap<String, Option<Rejection>> = BTreeMap::new();
            let mut seen = BTreeSet::new();
            let mut verdict = |user: &str, mechanism: ScramMechanism, bad: Option<Rejection>| {
                let bad = bad.or_else(|| {
                    (!seen.insert((user.to_owned(), mechanism))).then(|| {
                        reject(
                            "DuplicateResource",
                            format!("A user credential cannot be altered twice in the same request: {user}"),
                        )
                    })
                });
                let entry = users.entry(user.to_owned()).or_default();
                if entry.is_none() {
                    *entry = bad;
                }
            };
            for u in upserts {
                let bad = if u.user.is_empty() {
                    Some(reject(
                        "UnacceptableCredential",
                        "Username must not be empty".into(),
                    ))
                } else if u.password.expose().is_empty() {
                    Some(reject(
                        "UnacceptableCredential",
                        "Password must not be empty".into(),
                    ))
                } else if !(SCRAM_MIN_ITERATIONS..=SCRAM_MAX_ITERATIONS).contains(&u.iterations) {
                    Some(reject(
                        "UnacceptableCredential",
                        format!(
                            "Iterations {} not in [{SCRAM_MIN_ITERATIONS}, {SCRAM_MAX_ITERATIONS}]",
                            u.iterations
                        ),
                    ))
                } else {
                    None
                };
                verdict(&u.user, u.mechanism, bad);
            }
            let credentials = self.credentials.lock().unwrap();
            for d in deletions {
                let exists = credentials
                    .get(&d.user)
                    .is_some_and(|c| c.contains_key(&d.mechanism));
                let bad = (!exists).then(|| {
                    reject(
                        "ResourceNotFound",
                        format!(
                            "Attempt to delete a user credential that does not exist: {}",
                            d.user
                        ),
                    )
                });
                verdict(&d.user, d.mechanism, bad);
            }
            drop(credentials);
            let refused = self.faults.lock().unwrap().refused_users.clone();
            let mut credentials = self.credentials.lock().unwrap();
            let mut outcomes = Vec::new();
            for (user, bad) in users {
                let bad = bad.or_else(|| refused.get(&user).map(|(c, m)| reject(c, m.clone())));
                if bad.is_none() {
                    for u in upserts.iter().filter(|u| u.user == user) {
                        credentials
                            .entry(user.clone())
                            .or_default()
                            .insert(u.mechanism, (u.iterations, u.password.expose().to_owned()));
                    }
                    for d in deletions.iter().filter(|d| d.user == user) {
                        if let Some(c) = credentials.get_mut(&user) {
                            c.remove(&d.mechanism);
                            if c.is_empty() {
                                credentials.remove(&user);
                            }
                        }
                    }
                }
                outcomes.push(UserOutcome {
                    user,
                    result: bad.map_or(Ok(()), Err),
                });
            }
            Ok(outcomes)
        })();
        async move { result }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::identity::{user_principal, AclOperation, AclResourceType};
    use crate::kafka::Sensitive;

    fn write(user: &str, topic: &str) -> AclBinding {
        AclBinding::allow(
            user_principal(user),
            AclOperation::Write,
            AclResourceType::Topic,
            topic,
        )
    }

    fn upsert(user: &str, password: &str, iterations: i32) -> ScramUpsert {
        ScramUpsert {
            user: user.into(),
            mechanism: ScramMechanism::Sha512,
            iterations,
            password: Sensitive::new(password),
        }
    }

    #[tokio::test]
    async fn acls_are_created_listed_and_deleted_one_request_per_call() {
        let broker = MemoryIdentity::new();
        let (a, b) = (write("a", "orders"), write("b", "orders"));
        let mut tally = RequestTally::default();
        let out = broker
            .create_acls_tallied(&[a.clone(), b.clone(), a.clone()], &mut tally)
            .await
            .unwrap();
        assert!(out.iter().all(|o| o.result.is_ok()));
        assert_eq!(
            broker.describe_acls().await.unwrap().bindings,
            [a.clone(), b.clone()]
        );
        let out = broker.delete_acls(std::slice::from_ref(&a)).await.unwrap();
        assert_eq!(out[0].binding, a);
        assert_eq!(broker.acls(), [b]);
        assert_eq!(tally.total(), 1);
        assert_eq!(broker.requests_made(), 3);
        broker.create_acls(&[]).await.unwrap();
        assert_eq!(broker.requests_made(), 3, "an empty batch makes no request");
    }

    #[tokio::test]
    async fn an_unsupported_api_is_refused_whole_and_named() {
        let broker = MemoryIdentity::like_tansu();
        broker.create_acls(&[write("a", "t")]).await.unwrap();
        let err = broker.delete_acls(&[write("a", "t")]).await.unwrap_err();
        assert_eq!(
            err,
            BrokerError::Unsupported {
                api: "DeleteAcls",
                message: "DeleteAcls not supported by broker".into()
            }
        );
        assert_eq!(broker.acls().len(), 1, "nothing deleted");
    }

    #[tokio::test]
    async fn a_refused_binding_fails_alone() {
        let broker = MemoryIdentity::new();
        let (good, bad, empty) = (write("a", "t"), write("b", "t"), write("c", ""));
        broker.refuse_binding(&bad, "PolicyViolation", "no");
        let out = broker
            .create_acls(&[good.clone(), bad.clone(), empty])
            .await
            .unwrap();
        assert!(out[0].result.is_ok());
        assert_eq!(out[1].result.as_ref().unwrap_err().code, "PolicyViolation");
        assert_eq!(out[2].result.as_ref().unwrap_err().code, "InvalidRequest");
        assert_eq!(broker.acls(), [good]);
        broker.set_down(true);
        assert!(matches!(
            broker.describe_acls().await,
            Err(BrokerError::Unreachable(_))
        ));
    }

    #[tokio::test]
    async fn credentials_are_upserted_described_and_deleted_per_user() {
        let broker = MemoryIdentity::new();
        let out = broker
            .alter_scram(
                &[
                    upsert("a", "pw-a", 8192),
                    upsert("b", "pw-b", 100),
                    upsert("c", "x", 4096),
                ],
                &[ScramDeletion {
                    user: "d".into(),
                    mechanism: ScramMechanism::Sha256,
                }],
            )
            .await
            .unwrap();
        let codes: Vec<_> = out
            .iter()
            .map(|o| {
                (
                    o.user.as_str(),
                    o.result.as_ref().err().map(|r| r.code.as_str()),
                )
            })
            .collect();
        assert_eq!(
            codes,
            [
                ("a", None),
                ("b", Some("UnacceptableCredential")),
                ("c", None),
                ("d", Some("ResourceNotFound"))
            ]
        );
        assert!(broker.authenticates("a", ScramMechanism::Sha512, "pw-a"));
        assert!(!broker.authenticates("b", ScramMechanism::Sha512, "pw-b"));
        broker.refuse_user("c", "ClusterAuthorizationFailed", "no");
        let out = broker
            .alter_scram(
                &[upsert("c", "y", 4096)],
                &[ScramDeletion {
                    user: "a".into(),
                    mechanism: ScramMechanism::Sha512,
                }],
            )
            .await
            .unwrap();
        assert!(out[0].result.is_ok(), "a's deletion");
        assert_eq!(
            out[1].result.as_ref().unwrap_err().code,
            "ClusterAuthorizationFailed"
        );
        assert!(
            broker.authenticates("c", ScramMechanism::Sha512, "x"),
            "c unchanged"
        );
        let described = broker
            .describe_scram(&["c".into(), "a".into(), "c".into()])
            .await
            .unwrap();
        assert_eq!(described.len(), 2, "one entry per distinct user, sorted");
        assert_eq!(described[0].result, Ok(vec![]));
        assert_eq!(
            described[1].result,
            Ok(vec![ScramCredentialInfo {
                mechanism: ScramMechanism::Sha512,
                iterations: 4096
            }])
        );
    }
}
