//! `KafkaUser`: an application's Kafka identity, kept equal to its spec on the broker. The
//! pipeline, in data-flow order: [`validate`] (the spec checked offline; the CLI and the
//! controller call the same function) → [`desired`] (spec → principal, SCRAM credential, ACL
//! bindings) → [`secret`] (the owned Secret: a generated password, or one copied from
//! `passwordFrom`) → [`acl_plan`] (pure: desired bindings of the managed principals × the
//! broker's → create, delete) inside [`batcher`] (the reconciles of one cluster → one pass: one
//! request per kind of change) → [`status`] (pure: outcome → kstatus conditions) →
//! [`reconcile`] (finalizer, conflicts, events) → [`controller`]; [`claims`] (who claims which
//! principal: an index of the KafkaUser watch).

pub mod acl_plan;
pub mod batcher;
mod claims;
mod controller;
pub mod desired;
mod reconcile;
pub mod secret;
pub mod status;
pub mod validate;

pub use claims::Claims;
pub use controller::KIND;
pub use desired::{desired_user, DesiredUser};
pub use reconcile::{reconcile, trigger_hash, USER_FINALIZER};
pub use validate::validate_user;
