//! A SCRAM user's Secret: the operator writes (and owns) `<secretName>` with the keys
//! `username`, `password` and `sasl.jaas.config`, for the application's pods. The password is
//! generated once ([`generate_password`], `ring`'s system random source) and kept: the Secret's
//! `password` is the truth from then on, so a password edited there by hand is set on the broker
//! at the next reconcile. With `passwordFrom`, the password is read from that Secret and copied.
//!
//! The password never reaches a log, an Event or a status: it travels as [`Sensitive`], and the
//! credential's version is the `resourceVersion` of the Secret it was read from.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use super::desired::DesiredCredential;
use crate::api::KafkaUser;
use crate::kafka::Sensitive;
use crate::runtime::FIELD_MANAGER;

/// The key of the SCRAM user name.
pub const USERNAME_KEY: &str = "username";
/// The key of the password.
pub const PASSWORD_KEY: &str = "password";
/// The key of a ready-made JAAS line for Java clients.
pub const JAAS_KEY: &str = "sasl.jaas.config";
/// Bytes of randomness in a generated password (hex-encoded: 64 characters, 256 bits).
const PASSWORD_BYTES: usize = 32;

/// A new password from the system's secure random source: 64 hex digits, safe in a JAAS line.
pub fn generate_password() -> Result<Sensitive, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; PASSWORD_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system's random source failed".to_owned())?;
    Ok(Sensitive::new(
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    ))
}

/// The `sasl.jaas.config` line of a SCRAM client (Java): `"` and `\` in the password escaped.
pub fn jaas_config(user: &str, password: &str) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
        escape(user),
        escape(password)
    )
}

/// The password a user's credential is set with, and the version of the Secret it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub password: Sensitive,
    /// `<secret>@<resourceVersion>` of the Secret the password was read from.
    pub version: String,
}

/// Why a user's credential cannot be had; nothing is changed on the broker then.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `passwordFrom` names a Secret or key that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The Secret the user's credentials go to exists and belongs to something else.
    #[error("Secret '{0}' exists and is not owned by this KafkaUser; it is never taken over: set spec.authentication.secretName to another name, or delete that Secret")]
    Taken(String),
    #[error("{0}")]
    Random(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// The value of `key` in `secret`, from `data` or `stringData`.
fn value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
        })
}

fn version(secret: &Secret) -> String {
    format!(
        "{}@{}",
        secret.name_any(),
        secret.resource_version().unwrap_or_default()
    )
}

/// Whether `secret` is owned by `user` (an owner reference with its uid).
fn owned_by(secret: &Secret, user: &KafkaUser) -> bool {
    let uid = user.metadata.uid.as_deref();
    uid.is_some()
        && secret
            .owner_references()
            .iter()
            .any(|r| Some(r.uid.as_str()) == uid)
}

/// The data the owned Secret should hold.
fn data(credential: &DesiredCredential, password: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (USERNAME_KEY.to_owned(), credential.user.clone()),
        (PASSWORD_KEY.to_owned(), password.to_owned()),
        (JAAS_KEY.to_owned(), jaas_config(&credential.user, password)),
    ])
}

/// The owned Secret with `password` (pure: what is applied).
pub fn render(user: &KafkaUser, credential: &DesiredCredential, password: &str) -> Option<Secret> {
    let owner = user.controller_owner_ref(&())?;
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(credential.secret_name.clone()),
            namespace: user.namespace(),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_owned(),
                    "tributary".to_owned(),
                ),
                ("tributary.io/kafka-user".to_owned(), user.name_any()),
            ])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            data(credential, password)
                .into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    })
}

/// The credential of `user`: the password from `passwordFrom`, else the one in its owned Secret,
/// else a new one; the owned Secret is written (server-side apply) only when missing or when
/// its data is not what it should be. Reads at most two Secrets, writes at most one.
pub async fn credential(
    client: &kube::Client,
    user: &KafkaUser,
    desired: &DesiredCredential,
) -> Result<Credential, SecretError> {
    let namespace = user.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let held = api.get_opt(&desired.secret_name).await?;
    if let Some(secret) = &held {
        if !owned_by(secret, user) {
            return Err(SecretError::Taken(desired.secret_name.clone()));
        }
    }
    let source = match &desired.password_from {
        None => None,
        Some(selector) => {
            let Some(from) = api.get_opt(&selector.name).await? else {
                return Err(SecretError::NotFound(format!(
                    "Secret {namespace}/{} (spec.authentication.passwordFrom) does not exist",
                    selector.name
                )));
            };
            let Some(password) = value(&from, &selector.key).filter(|p| !p.is_empty()) else {
                return Err(SecretError::NotFound(format!(
                    "Secret {namespace}/{} has no key '{}' (spec.authentication.passwordFrom), or it is empty",
                    selector.name, selector.key
                )));
            };
            Some((Sensitive::new(password), version(&from)))
        }
    };
    let password = match (&source, &held) {
        (Some((password, _)), _) => password.clone(),
        (None, Some(secret)) => match value(secret, PASSWORD_KEY).filter(|p| !p.is_empty()) {
            Some(p) => Sensitive::new(p),
            None => generate_password().map_err(SecretError::Random)?,
        },
        (None, None) => generate_password().map_err(SecretError::Random)?,
    };
    let wanted = data(desired, password.expose());
    let current: BTreeMap<String, String> = held
        .as_ref()
        .map(|s| {
            wanted
                .keys()
                .filter_map(|k| value(s, k).map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    let written = match held {
        Some(secret) if current == wanted => secret,
        _ => {
            let secret = render(user, desired, password.expose()).ok_or_else(|| {
                SecretError::NotFound("the KafkaUser has no uid yet to own its Secret".into())
            })?;
            let mut patch = serde_json::to_value(&secret).unwrap_or_default();
            patch["apiVersion"] = "v1".into();
            patch["kind"] = "Secret".into();
            let applied = api
                .patch(
                    &desired.secret_name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await?;
            tracing::info!(secret = %desired.secret_name, namespace = %namespace, "user Secret written");
            applied
        }
    };
    let version = match source {
        Some((_, v)) => v,
        None => version(&written),
    };
    Ok(Credential { password, version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AuthenticationType, KafkaUserSpec, UserAuthentication};
    use crate::kafka::identity::ScramMechanism;

    #[test]
    fn generated_passwords_are_long_hex_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(a.expose()), "never in Debug");
    }

    #[test]
    fn the_jaas_line_quotes_what_it_must() {
        assert_eq!(
            jaas_config("orders", "p\"w\\"),
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"orders\" password=\"p\\\"w\\\\\";"
        );
    }

    #[test]
    fn the_secret_is_owned_by_its_user_and_holds_the_three_keys() {
        let mut user = KafkaUser::new(
            "orders",
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
        let credential = DesiredCredential {
            user: "orders".into(),
            mechanism: ScramMechanism::Sha512,
            secret_name: "orders-kafka".into(),
            password_from: None,
        };
        assert!(
            render(&user, &credential, "pw").is_none(),
            "no uid, no owner"
        );
        user.metadata.uid = Some("u-1".into());
        let secret = render(&user, &credential, "pw").unwrap();
        assert_eq!(secret.metadata.name.as_deref(), Some("orders-kafka"));
        assert!(owned_by(&secret, &user));
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("KafkaUser", Some(true))
        );
        assert_eq!(value(&secret, USERNAME_KEY).as_deref(), Some("orders"));
        assert_eq!(value(&secret, PASSWORD_KEY).as_deref(), Some("pw"));
        assert!(value(&secret, JAAS_KEY)
            .unwrap()
            .contains("username=\"orders\""));
    }
}
