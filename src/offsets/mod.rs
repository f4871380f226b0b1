//! Consumer-group offsets as declared operations: reset and replay. The pipeline, in data-flow
//! order: [`target`] (where to: earliest, latest, a timestamp, a shift, explicit offsets),
//! [`observe`] (the group, its committed offsets, its partitions' offsets, through
//! [`crate::kafka::offsets::GroupAdmin`]), [`plan`] (pure: target × observed → each partition's
//! new offset, before → after, records re-read or skipped; every refusal named) and [`write`]
//! (one `AlterConsumerGroupOffsets`, read back). The CLI's `tributary offsets show` and
//! `tributary offsets reset` run this pipeline directly. [`machine`] is the pure state machine
//! of a declared, resumable reset (hold the consumer at zero, wait for an empty group, plan and
//! record, write once, release); [`declared`] validates a `KafkaOffsetReset`'s spec and
//! records its plan in status; [`reconcile`] executes the machine one step per reconcile, the
//! status write its checkpoint; [`controller`] registers the kind ([`KIND`]).

pub mod controller;
pub mod declared;
pub mod machine;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod target;
pub mod write;

use thiserror::Error;

use crate::kafka::BrokerError;

pub use controller::KIND;
pub use observe::{prepare, show, Prepared, Request, Row, View};
pub use plan::{PartitionChange, Plan, PlanError, Selection};
pub use target::Target;
pub use write::write;

#[cfg(test)]
mod tests;

/// Why a reset (or a look at a group) did not go through.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResetError {
    /// The request itself is wrong; nothing was written.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<PlanError>),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The broker refused some partitions of the write, or holds other offsets than written.
    #[error("writing the offsets: {}", .0.join("; "))]
    Write(Vec<String>),
}
