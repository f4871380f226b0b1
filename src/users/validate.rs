//! Offline validation of a `KafkaUser` spec: every problem, each naming its field and the fix.
//! The controllers and the CLI call the same function, and nothing is changed on the broker
//! or in Kubernetes while it reports a problem. The CRD's CEL rules say the same where they
//! can ([`crate::api::KafkaUser`]); this covers what CEL cannot (names as Kafka and Kubernetes
//! read them) and objects that never went through an API server (the CLI's manifests).

use crate::api::{
    AclOperation, AclPatternType, AclResourceType, AclRule, AuthenticationType, KafkaUser,
};
use crate::kafka::identity::{self, CLUSTER_RESOURCE_NAME};
use crate::model::{DataKey, DnsSubdomain, FieldError, TopicName};

/// Longest SCRAM user name Tributary sets on a broker (Kafka's own limit for topic names: user
/// names end up in the same ZooKeeper / metadata-log records and client ids).
pub const MAX_USER_NAME_LEN: usize = 249;

/// Longest topic prefix: a prefix longer than Kafka's longest topic name matches nothing.
const MAX_TOPIC_PREFIX_LEN: usize = 249;

/// The broker's resource type for the manifest's.
pub fn resource_type(t: AclResourceType) -> identity::AclResourceType {
    match t {
        AclResourceType::Topic => identity::AclResourceType::Topic,
        AclResourceType::Group => identity::AclResourceType::Group,
        AclResourceType::TransactionalId => identity::AclResourceType::TransactionalId,
        AclResourceType::Cluster => identity::AclResourceType::Cluster,
    }
}

/// The broker's operation for the manifest's.
pub fn operation(op: AclOperation) -> identity::AclOperation {
    use identity::AclOperation as Kafka;
    match op {
        AclOperation::All => Kafka::All,
        AclOperation::Read => Kafka::Read,
        AclOperation::Write => Kafka::Write,
        AclOperation::Create => Kafka::Create,
        AclOperation::Delete => Kafka::Delete,
        AclOperation::Alter => Kafka::Alter,
        AclOperation::Describe => Kafka::Describe,
        AclOperation::ClusterAction => Kafka::ClusterAction,
        AclOperation::DescribeConfigs => Kafka::DescribeConfigs,
        AclOperation::AlterConfigs => Kafka::AlterConfigs,
        AclOperation::IdempotentWrite => Kafka::IdempotentWrite,
    }
}

/// The operations (as manifests spell them) Kafka's authorizer checks on `resource`.
pub fn operations_of(resource: AclResourceType) -> Vec<AclOperation> {
    AclOperation::ALL
        .iter()
        .copied()
        .filter(|op| operation(*op).applies_to(resource_type(resource)))
        .collect()
}

/// Whether `name` is a SCRAM user name Kafka accepts and that is safe in a principal
/// (`User:<name>`) and a JAAS line: 1 to [`MAX_USER_NAME_LEN`] letters, digits, `.`, `_`, `-`
/// or `@`. Kafka refuses an empty name; `*` would be the wildcard principal (every user);
/// `"`, `\`, `,`, `=`, `:` and whitespace break the JAAS line, SCRAM's `saslname` or the
/// principal.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty: Kafka refuses an empty SCRAM user name".into());
    }
    if name.len() > MAX_USER_NAME_LEN {
        return Err(format!(
            "is {} characters long; at most {MAX_USER_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        let why = match bad {
            '*' => " ('*' is Kafka's wildcard principal: every user)",
            '"' | '\\' => " (it would break the sasl.jaas.config line)",
            ',' | '=' => " (SCRAM escapes it, so the broker would see another name)",
            ':' => " (the principal is 'User:<name>')",
            _ => "",
        };
        return Err(format!(
            "'{name}' contains {bad:?}{why}; Kafka user names here use only letters, digits, '.', '_', '-' and '@'"
        ));
    }
    Ok(())
}

/// Whether `subject` reads as a certificate subject the way Kafka's default principal builder
/// prints it (RFC 2253): comma-separated `attribute=value` parts, e.g. `CN=orders,O=acme`.
pub fn check_subject(subject: &str) -> Result<(), String> {
    if subject.trim().is_empty() {
        return Err(
            "must not be empty: give the client certificate's subject, e.g. 'CN=orders,O=acme'"
                .into(),
        );
    }
    if subject.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    // Split on commas that are not escaped with '\'.
    let mut parts = Vec::new();
    let (mut current, mut escaped) = (String::new(), false);
    for c in subject.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' => {
                current.push(c);
                escaped = true;
            }
            ',' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    for part in parts {
        let Some((attribute, value)) = part.split_once('=') else {
            return Err(format!(
                "'{part}' is not an 'attribute=value' part; a subject reads like 'CN=orders,O=acme'"
            ));
        };
        if attribute.trim().is_empty() || value.trim().is_empty() {
            return Err(format!(
                "'{part}' needs an attribute and a value; a subject reads like 'CN=orders,O=acme'"
            ));
        }
    }
    Ok(())
}

/// Every problem with `user`'s spec (empty: valid).
pub fn validate_user(user: &KafkaUser) -> Vec<FieldError> {
    let spec = &user.spec;
    let auth = &spec.authentication;
    let mut errors = Vec::new();
    if spec.cluster_ref.trim().is_empty() {
        errors.push(FieldError::new(
            "spec.clusterRef",
            "must name the KafkaCluster this user lives on",
        ));
    }
    if auth.password.is_some() {
        errors.push(FieldError::new(
            "spec.authentication.password",
            "an inline password is refused: put it in a Secret and name it in spec.authentication.passwordFrom.secretKeyRef (or leave both unset and the operator generates one)",
        ));
    }
    match auth.type_ {
        AuthenticationType::Tls => {
            match &auth.subject {
                None => errors.push(FieldError::new(
                    "spec.authentication.subject",
                    "is required with type tls: the client certificate's subject is the principal, e.g. 'CN=orders,O=acme'",
                )),
                Some(subject) => {
                    if let Err(why) = check_subject(subject) {
                        errors.push(FieldError::new("spec.authentication.subject", why));
                    }
                }
            }
            for (field, set) in [
                ("spec.authentication.secretName", auth.secret_name.is_some()),
                (
                    "spec.authentication.passwordFrom",
                    auth.password_from.is_some(),
                ),
                ("spec.userName", spec.user_name.is_some()),
            ] {
                if set {
                    errors.push(FieldError::new(
                        field,
                        "is for SCRAM users; with type tls the principal is the certificate's subject: remove it",
                    ));
                }
            }
        }
        AuthenticationType::ScramSha256 | AuthenticationType::ScramSha512 => {
            if auth.subject.is_some() {
                errors.push(FieldError::new(
                    "spec.authentication.subject",
                    "is for type tls only: remove it (a SCRAM user's name is spec.userName, or metadata.name)",
                ));
            }
            let (path, name) = match &spec.user_name {
                Some(n) => ("spec.userName", n.as_str()),
                None => ("metadata.name", user.metadata.name.as_deref().unwrap_or("")),
            };
            if let Err(why) = check_user_name(name) {
                errors.push(FieldError::new(path, why));
            }
            check_secrets(user, &mut errors);
        }
    }
    if let Some(authorization) = &spec.authorization {
        for (i, rule) in authorization.acls.iter().enumerate() {
            check_rule(&format!("spec.authorization.acls[{i}]"), rule, &mut errors);
        }
    }
    errors
}

/// The Secret the operator writes and the one the password comes from.
fn check_secrets(user: &KafkaUser, errors: &mut Vec<FieldError>) {
    let auth = &user.spec.authentication;
    let written = user.secret_name().unwrap_or_default();
    let path = if auth.secret_name.is_some() {
        "spec.authentication.secretName"
    } else {
        "metadata.name"
    };
    if let Err(why) = DnsSubdomain::parse(&written) {
        let fix = if auth.secret_name.is_some() {
            String::new()
        } else {
            "; set spec.authentication.secretName".into()
        };
        errors.push(FieldError::new(
            path,
            format!("the Secret name '{written}' {why}{fix}"),
        ));
    }
    if let Some(from) = &auth.password_from {
        let selector = &from.secret_key_ref;
        if let Err(why) = DnsSubdomain::parse(&selector.name) {
            errors.push(FieldError::new(
                "spec.authentication.passwordFrom.secretKeyRef.name",
                // Not repeated: in a credential's place it may be the password, pasted by mistake.
                format!("not a valid Secret name: {why}"),
            ));
        }
        if let Err(why) = DataKey::parse(&selector.key) {
            errors.push(FieldError::new(
                "spec.authentication.passwordFrom.secretKeyRef.key",
                format!("not a valid key of a Secret: {why}"),
            ));
        }
        if selector.name == written {
            errors.push(FieldError::new(
                "spec.authentication.passwordFrom.secretKeyRef.name",
                format!("'{written}' is the Secret the operator writes this user's credentials to; name another Secret, or set spec.authentication.secretName"),
            ));
        }
    }
}

fn check_rule(path: &str, rule: &AclRule, errors: &mut Vec<FieldError>) {
    let resource = &rule.resource;
    let kind = resource.type_;
    let name_path = format!("{path}.resource.name");
    match (kind, resource.name.as_deref()) {
        (AclResourceType::Cluster, None) | (AclResourceType::Cluster, Some(CLUSTER_RESOURCE_NAME)) => {}
        (AclResourceType::Cluster, Some(other)) => errors.push(FieldError::new(
            name_path,
            format!("'{other}': the cluster resource has no other name than '{CLUSTER_RESOURCE_NAME}'; leave it unset"),
        )),
        (_, None) => errors.push(FieldError::new(
            name_path,
            format!("is required for a {} resource (or '*' for every one)", kind.as_str()),
        )),
        (_, Some(name)) if name.trim().is_empty() => errors.push(FieldError::new(
            name_path,
            format!("must not be empty: name the {} (or '*' for every one)", kind.as_str()),
        )),
        (_, Some("*")) if resource.pattern_type == AclPatternType::Prefixed => {
            errors.push(FieldError::new(
                name_path,
                "'*' with patternType prefixed matches only names beginning with '*'; for every resource use '*' with patternType literal",
            ))
        }
        (_, Some(name)) if name.chars().any(|c| c.is_control() || c.is_whitespace()) => errors
            .push(FieldError::new(
                name_path,
                format!("'{}' contains whitespace or a control character", name.escape_debug()),
            )),
        (AclResourceType::Topic, Some(name)) if name != "*" => {
            let checked = match resource.pattern_type {
                AclPatternType::Literal => TopicName::parse(name).map(drop),
                // A prefix need not be a whole name, but only a legal name can match it.
                AclPatternType::Prefixed => TopicName::parse(name).map(drop).or_else(|why| {
                    if name.len() <= MAX_TOPIC_PREFIX_LEN
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    {
                        Ok(())
                    } else {
                        Err(why)
                    }
                }),
            };
            if let Err(why) = checked {
                errors.push(FieldError::new(name_path, why));
            }
        }
        _ => {}
    }
    if rule.operations.is_empty() {
        errors.push(FieldError::new(
            format!("{path}.operations"),
            "must name at least one operation",
        ));
    }
    let allowed = operations_of(kind);
    for (j, op) in rule.operations.iter().enumerate() {
        if !allowed.contains(op) {
            errors.push(FieldError::new(
                format!("{path}.operations[{j}]"),
                format!(
                    "{} does not apply to a {} resource; it takes {}",
                    op.as_str(),
                    kind.as_str(),
                    allowed
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let host = rule.host.as_str();
    if host.is_empty() || host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        errors.push(FieldError::new(
            format!("{path}.host"),
            format!(
                "'{}' is not a host: give an IP address, or '*' for every host",
                host.escape_debug()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        AclPermission, AclResource, KafkaUserSpec, PasswordSource, SecretKeySelector,
        UserAuthentication, UserAuthorization,
    };

    fn scram(name: &str) -> KafkaUser {
        let mut user = KafkaUser::new(
            name,
            KafkaUserSpec {
                cluster_ref: "prod".into(),
                user_name: None,
                authentication: UserAuthentication {
                    type_: AuthenticationType::ScramSha512,
                    secret_name: None,
                    password_from: None,
                    subject: None,
                    password: None,
                },
                authorization: None,
            },
        );
        user.metadata.namespace = Some("shop".into());
        user
    }

    fn rule(kind: AclResourceType, name: Option<&str>, ops: &[AclOperation]) -> AclRule {
        AclRule {
            resource: AclResource {
                type_: kind,
                name: name.map(Into::into),
                pattern_type: AclPatternType::Literal,
            },
            operations: ops.to_vec(),
            host: "*".into(),
            type_: AclPermission::Allow,
        }
    }

    fn with_acls(mut user: KafkaUser, acls: Vec<AclRule>) -> KafkaUser {
        user.spec.authorization = Some(UserAuthorization { acls });
        user
    }

    fn messages(user: &KafkaUser) -> Vec<String> {
        validate_user(user)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_plain_scram_user_with_sensible_acls_is_valid() {
        let user = with_acls(
            scram("orders"),
            vec![
                rule(
                    AclResourceType::Topic,
                    Some("orders"),
                    &[AclOperation::Write, AclOperation::Describe],
                ),
                rule(
                    AclResourceType::Group,
                    Some("billing"),
                    &[AclOperation::Read],
                ),
                rule(
                    AclResourceType::Cluster,
                    None,
                    &[AclOperation::IdempotentWrite],
                ),
                rule(
                    AclResourceType::TransactionalId,
                    Some("orders-tx"),
                    &[AclOperation::Write],
                ),
            ],
        );
        assert_eq!(messages(&user), Vec::<String>::new());
    }

    #[test]
    fn an_operation_that_does_not_apply_to_the_resource_is_named_with_what_does() {
        let user = with_acls(
            scram("orders"),
            vec![rule(
                AclResourceType::Group,
                Some("billing"),
                &[AclOperation::Read, AclOperation::Write],
            )],
        );
        assert_eq!(
            messages(&user),
            vec!["spec.authorization.acls[0].operations[1]: Write does not apply to a group resource; it takes All, Read, Delete, Describe"]
        );
        let cluster_read = with_acls(
            scram("orders"),
            vec![rule(AclResourceType::Cluster, None, &[AclOperation::Read])],
        );
        assert!(messages(&cluster_read)[0].contains("Read does not apply to a cluster resource"));
        let topic_idempotent = with_acls(
            scram("orders"),
            vec![rule(
                AclResourceType::Topic,
                Some("t"),
                &[AclOperation::IdempotentWrite],
            )],
        );
        assert!(messages(&topic_idempotent)[0].contains("IdempotentWrite does not apply"));
    }

    #[test]
    fn every_operation_applies_to_some_resource_and_all_applies_to_every_one() {
        for op in AclOperation::ALL {
            assert!(
                [
                    AclResourceType::Topic,
                    AclResourceType::Group,
                    AclResourceType::TransactionalId,
                    AclResourceType::Cluster
                ]
                .iter()
                .any(|r| operations_of(*r).contains(op)),
                "{op:?}"
            );
        }
        for r in [
            AclResourceType::Topic,
            AclResourceType::Group,
            AclResourceType::TransactionalId,
            AclResourceType::Cluster,
        ] {
            assert!(operations_of(r).contains(&AclOperation::All));
        }
    }

    #[test]
    fn empty_names_and_bad_topic_names_are_refused() {
        let user = with_acls(
            scram("orders"),
            vec![
                rule(AclResourceType::Topic, Some(""), &[AclOperation::Read]),
                rule(AclResourceType::Group, None, &[AclOperation::Read]),
                rule(AclResourceType::Topic, Some("a b"), &[AclOperation::Read]),
                rule(
                    AclResourceType::Topic,
                    Some("__consumer_offsets"),
                    &[AclOperation::Read],
                ),
                rule(
                    AclResourceType::Cluster,
                    Some("prod"),
                    &[AclOperation::Describe],
                ),
                rule(AclResourceType::Topic, Some("x"), &[]),
            ],
        );
        let m = messages(&user);
        assert_eq!(m.len(), 6, "{m:#?}");
        assert!(m[0].starts_with("spec.authorization.acls[0].resource.name: must not be empty"));
        assert!(
            m[1].starts_with("spec.authorization.acls[1].resource.name: is required for a group")
        );
        assert!(m[2].contains("acls[2].resource.name: 'a b' contains whitespace"));
        assert!(m[3].contains("acls[3].resource.name: '__consumer_offsets' starts with '__'"));
        assert!(m[4].contains("acls[4].resource.name: 'prod': the cluster resource"));
        assert!(m[5].contains("acls[5].operations: must name at least one operation"));
    }

    #[test]
    fn prefixes_and_wildcards() {
        let mut prefixed = rule(
            AclResourceType::Topic,
            Some("orders."),
            &[AclOperation::Read],
        );
        prefixed.resource.pattern_type = AclPatternType::Prefixed;
        let mut short_prefix = rule(AclResourceType::Topic, Some("__tx"), &[AclOperation::Read]);
        short_prefix.resource.pattern_type = AclPatternType::Prefixed;
        let every = rule(AclResourceType::Topic, Some("*"), &[AclOperation::Describe]);
        assert!(messages(&with_acls(scram("u"), vec![prefixed, short_prefix, every])).is_empty());
        let mut star_prefix = rule(AclResourceType::Group, Some("*"), &[AclOperation::Read]);
        star_prefix.resource.pattern_type = AclPatternType::Prefixed;
        assert!(messages(&with_acls(scram("u"), vec![star_prefix]))[0]
            .contains("use '*' with patternType literal"));
    }

    #[test]
    fn a_user_name_kafka_would_refuse_is_refused_with_the_reason() {
        for (name, why) in [
            ("*", "wildcard principal"),
            ("a\"b", "sasl.jaas.config"),
            ("a,b", "SCRAM escapes it"),
            ("a:b", "User:<name>"),
            ("a b", "contains ' '"),
        ] {
            let mut user = scram("ok");
            user.spec.user_name = Some(name.into());
            let m = messages(&user);
            assert_eq!(m.len(), 1, "{name}: {m:?}");
            assert!(m[0].starts_with("spec.userName: "), "{m:?}");
            assert!(m[0].contains(why), "{name}: {m:?}");
        }
        let mut empty = scram("ok");
        empty.spec.user_name = Some(String::new());
        assert!(messages(&empty)[0].contains("Kafka refuses an empty SCRAM user name"));
        let mut long = scram("ok");
        long.spec.user_name = Some("u".repeat(250));
        assert!(messages(&long)[0].contains("at most 249"));
        let mut email = scram("ok");
        email.spec.user_name = Some("orders@shop.example".into());
        assert!(messages(&email).is_empty());
    }

    #[test]
    fn an_inline_password_is_refused_naming_the_field_and_passwordfrom() {
        let mut user = scram("orders");
        user.spec.authentication.password = Some("hunter2".into());
        let m = messages(&user);
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("spec.authentication.password: an inline password is refused"));
        assert!(m[0].contains("passwordFrom.secretKeyRef"));
        assert!(!m[0].contains("hunter2"), "never the password itself");
    }

    #[test]
    fn tls_users_need_a_subject_and_nothing_of_scram() {
        let mut user = scram("orders");
        user.spec.authentication.type_ = AuthenticationType::Tls;
        assert!(messages(&user)[0].starts_with("spec.authentication.subject: is required"));
        user.spec.authentication.subject = Some("CN=orders,O=acme\\, inc".into());
        assert!(messages(&user).is_empty(), "{:?}", messages(&user));
        user.spec.authentication.subject = Some("orders".into());
        assert!(messages(&user)[0].contains("not an 'attribute=value' part"));
        user.spec.authentication.subject = Some("CN=orders".into());
        user.spec.authentication.secret_name = Some("s".into());
        user.spec.user_name = Some("orders".into());
        let m = messages(&user);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("spec.authentication.secretName: is for SCRAM users"));
        assert!(m[1].starts_with("spec.userName: is for SCRAM users"));
    }

    #[test]
    fn the_secrets_are_names_kubernetes_takes_and_not_the_same_one() {
        let long = "u".repeat(250);
        let m = messages(&scram(&long));
        assert!(
            m.iter()
                .any(|m| m.starts_with("metadata.name: the Secret name")
                    && m.contains("set spec.authentication.secretName")),
            "{m:?}"
        );
        let mut user = scram("orders");
        user.spec.authentication.password_from = Some(PasswordSource {
            secret_key_ref: SecretKeySelector {
                name: "orders-kafka".into(),
                key: "pass word".into(),
            },
        });
        let m = messages(&user);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with(
            "spec.authentication.passwordFrom.secretKeyRef.key: not a valid key of a Secret: contains ' '"
        ), "{m:?}");
        assert!(
            !m[0].contains("pass word"),
            "what was written is not repeated: {m:?}"
        );
        assert!(m[1].contains("is the Secret the operator writes"));
    }
}
