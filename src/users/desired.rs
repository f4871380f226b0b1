//! From a `KafkaUser` spec to what should be on the broker: the principal, the SCRAM
//! credential (where its password comes from) and the ACL bindings, one per operation of each
//! rule, sorted and without duplicates.

use crate::api::{self, AuthenticationType, KafkaUser, SecretKeySelector};
use crate::kafka::identity::{
    user_principal, AclBinding, AclPattern, AclPermission, ScramMechanism, CLUSTER_RESOURCE_NAME,
};
use crate::model::FieldError;

use super::validate::{operation, resource_type, validate_user};

/// A user as it should be on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredUser {
    /// `User:<userName>` for SCRAM, `User:<subject>` for TLS.
    pub principal: String,
    /// SCRAM only.
    pub credential: Option<DesiredCredential>,
    /// Sorted, each once.
    pub bindings: Vec<AclBinding>,
}

/// A SCRAM credential and where its password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCredential {
    /// The SCRAM user name.
    pub user: String,
    pub mechanism: ScramMechanism,
    /// The Secret the operator writes and owns (`username`, `password`, `sasl.jaas.config`).
    pub secret_name: String,
    /// The password's source; `None`: generated into `secret_name`.
    pub password_from: Option<SecretKeySelector>,
}

/// The principal `user` claims, as its spec reads (valid or not): `User:<subject>` for TLS,
/// else `User:<userName or metadata.name>`.
pub fn claimed_principal(user: &KafkaUser) -> Option<String> {
    let spec = &user.spec;
    let name = match spec.authentication.type_ {
        AuthenticationType::Tls => spec.authentication.subject.as_deref()?,
        _ => spec
            .user_name
            .as_deref()
            .or(user.metadata.name.as_deref())?,
    };
    Some(user_principal(name))
}

/// Validates `user` and resolves what it asks for; every problem is reported.
pub fn desired_user(user: &KafkaUser) -> Result<DesiredUser, Vec<FieldError>> {
    let errors = validate_user(user);
    if !errors.is_empty() {
        return Err(errors);
    }
    let spec = &user.spec;
    let auth = &spec.authentication;
    let (principal, credential) = match auth.type_ {
        AuthenticationType::Tls => (
            user_principal(auth.subject.as_deref().unwrap_or_default()),
            None,
        ),
        AuthenticationType::ScramSha256 | AuthenticationType::ScramSha512 => {
            let name = spec
                .user_name
                .clone()
                .or_else(|| user.metadata.name.clone())
                .unwrap_or_default();
            let mechanism = if auth.type_ == AuthenticationType::ScramSha256 {
                ScramMechanism::Sha256
            } else {
                ScramMechanism::Sha512
            };
            (
                user_principal(&name),
                Some(DesiredCredential {
                    user: name,
                    mechanism,
                    secret_name: user.secret_name().unwrap_or_default(),
                    password_from: auth
                        .password_from
                        .as_ref()
                        .map(|p| p.secret_key_ref.clone()),
                }),
            )
        }
    };
    let mut bindings: Vec<AclBinding> = spec
        .authorization
        .iter()
        .flat_map(|a| &a.acls)
        .flat_map(|rule| {
            let principal = &principal;
            rule.operations.iter().map(move |op| AclBinding {
                resource_type: resource_type(rule.resource.type_),
                resource_name: match rule.resource.type_ {
                    api::AclResourceType::Cluster => CLUSTER_RESOURCE_NAME.to_owned(),
                    _ => rule.resource.name.clone().unwrap_or_default(),
                },
                pattern: match rule.resource.pattern_type {
                    api::AclPatternType::Literal => AclPattern::Literal,
                    api::AclPatternType::Prefixed => AclPattern::Prefixed,
                },
                principal: principal.clone(),
                host: rule.host.clone(),
                operation: operation(*op),
                permission: match rule.type_ {
                    api::AclPermission::Allow => AclPermission::Allow,
                    api::AclPermission::Deny => AclPermission::Deny,
                },
            })
        })
        .collect();
    bindings.sort();
    bindings.dedup();
    Ok(DesiredUser {
        principal,
        credential,
        bindings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        AclResource, AclRule, KafkaUserSpec, PasswordSource, UserAuthentication, UserAuthorization,
    };

    fn user(type_: AuthenticationType, acls: Vec<AclRule>) -> KafkaUser {
        let mut u = KafkaUser::new(
            "orders",
            KafkaUserSpec {
                cluster_ref: "prod".into(),
                user_name: None,
                authentication: UserAuthentication {
                    type_,
                    secret_name: None,
                    password_from: None,
                    subject: (type_ == AuthenticationType::Tls).then(|| "CN=orders,O=acme".into()),
                    password: None,
                },
                authorization: Some(UserAuthorization { acls }),
            },
        );
        u.metadata.namespace = Some("shop".into());
        u
    }

    fn rule(t: api::AclResourceType, name: Option<&str>, ops: &[api::AclOperation]) -> AclRule {
        AclRule {
            resource: AclResource {
                type_: t,
                name: name.map(Into::into),
                pattern_type: api::AclPatternType::Literal,
            },
            operations: ops.to_vec(),
            host: "*".into(),
            type_: api::AclPermission::Allow,
        }
    }

    #[test]
    fn every_operation_of_every_rule_is_one_binding_sorted_and_once() {
        let u = user(
            AuthenticationType::ScramSha512,
            vec![
                rule(
                    api::AclResourceType::Topic,
                    Some("orders"),
                    &[api::AclOperation::Write, api::AclOperation::Describe],
                ),
                rule(
                    api::AclResourceType::Topic,
                    Some("orders"),
                    &[api::AclOperation::Write],
                ),
                rule(
                    api::AclResourceType::Cluster,
                    None,
                    &[api::AclOperation::IdempotentWrite],
                ),
            ],
        );
        let d = desired_user(&u).unwrap();
        assert_eq!(d.principal, "User:orders");
        let lines: Vec<String> = d.bindings.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "User:orders WRITE topic orders",
                "User:orders DESCRIBE topic orders",
                "User:orders IDEMPOTENT_WRITE cluster kafka-cluster",
            ]
        );
        assert_eq!(
            d.credential,
            Some(DesiredCredential {
                user: "orders".into(),
                mechanism: ScramMechanism::Sha512,
                secret_name: "orders-kafka".into(),
                password_from: None,
            })
        );
    }

    #[test]
    fn scram_names_tls_subjects_and_password_sources() {
        let mut u = user(AuthenticationType::ScramSha256, vec![]);
        u.spec.user_name = Some("orders-service".into());
        u.spec.authentication.secret_name = Some("orders-creds".into());
        u.spec.authentication.password_from = Some(PasswordSource {
            secret_key_ref: SecretKeySelector {
                name: "vault-orders".into(),
                key: "pw".into(),
            },
        });
        let d = desired_user(&u).unwrap();
        assert_eq!(d.principal, "User:orders-service");
        let c = d.credential.unwrap();
        assert_eq!(
            (c.user.as_str(), c.mechanism),
            ("orders-service", ScramMechanism::Sha256)
        );
        assert_eq!(c.secret_name, "orders-creds");
        assert_eq!(c.password_from.unwrap().name, "vault-orders");

        let tls = desired_user(&user(AuthenticationType::Tls, vec![])).unwrap();
        assert_eq!(tls.principal, "User:CN=orders,O=acme");
        assert_eq!(tls.credential, None);
    }

    #[test]
    fn an_invalid_spec_resolves_to_its_problems() {
        let u = user(
            AuthenticationType::ScramSha512,
            vec![rule(
                api::AclResourceType::Group,
                Some("g"),
                &[api::AclOperation::Write],
            )],
        );
        let errors = desired_user(&u).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "spec.authorization.acls[0].operations[0]");
    }

    #[test]
    fn the_manifest_and_the_broker_name_the_same_operations() {
        for op in api::AclOperation::ALL {
            assert_eq!(
                operation(*op).as_str().replace('_', ""),
                op.as_str().to_uppercase()
            );
        }
    }

    fn any_rule() -> impl proptest::strategy::Strategy<Value = AclRule> {
        use proptest::prelude::*;
        let kinds = [
            api::AclResourceType::Topic,
            api::AclResourceType::Group,
            api::AclResourceType::TransactionalId,
            api::AclResourceType::Cluster,
        ];
        (
            0..4usize,
            0..3usize,
            proptest::collection::vec(0..api::AclOperation::ALL.len(), 1..5),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(move |(kind, name, ops, prefixed, deny)| {
                let type_ = kinds[kind];
                let allowed = crate::users::validate::operations_of(type_);
                AclRule {
                    resource: AclResource {
                        type_,
                        name: (type_ != api::AclResourceType::Cluster)
                            .then(|| ["orders", "payments", "*"][name].to_owned()),
                        pattern_type: if prefixed
                            && name != 2
                            && type_ != api::AclResourceType::Cluster
                        {
                            api::AclPatternType::Prefixed
                        } else {
                            api::AclPatternType::Literal
                        },
                    },
                    operations: ops.iter().map(|i| allowed[i % allowed.len()]).collect(),
                    host: "*".into(),
                    type_: if deny {
                        api::AclPermission::Deny
                    } else {
                        api::AclPermission::Allow
                    },
                }
            })
    }

    proptest::proptest! {
        /// Whatever valid rules say: one binding per distinct operation of a resource, each of
        /// the user's principal, sorted and without duplicates, each operation one Kafka checks
        /// on its resource type; and the same rules in another order give the same bindings.
        #[test]
        fn bindings_are_the_rules_operations_once_each_and_in_order(
            rules in proptest::collection::vec(any_rule(), 0..8),
        ) {
            let d = desired_user(&user(AuthenticationType::ScramSha512, rules.clone())).unwrap();
            let mut sorted = d.bindings.clone();
            sorted.sort();
            sorted.dedup();
            proptest::prop_assert_eq!(&sorted, &d.bindings);
            let mut distinct = std::collections::HashSet::new();
            for r in &rules {
                for op in &r.operations {
                    distinct.insert((r.resource.type_.as_str(), r.resource.name.clone(), r.resource.pattern_type, *op, r.type_));
                }
            }
            proptest::prop_assert_eq!(d.bindings.len(), distinct.len());
            for b in &d.bindings {
                proptest::prop_assert_eq!(b.principal.as_str(), "User:orders");
                proptest::prop_assert!(b.operation.applies_to(b.resource_type));
            }
            let mut reversed = rules;
            reversed.reverse();
            let again = desired_user(&user(AuthenticationType::ScramSha512, reversed)).unwrap();
            proptest::prop_assert_eq!(again.bindings, d.bindings);
        }
    }
}
