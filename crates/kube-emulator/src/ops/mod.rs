//! What each request does to the store, with the API server's semantics: create, get, list,
//! update, the patch types, server-side apply, delete (finalizers, propagation), the status
//! subresource, generation, managedFields, validation, CRD registration and garbage
//! collection (owner references, namespaces).
//!
//! One file per operation (`create`, `read`, `update` with the patches, `apply`, `delete`,
//! `gc`), each an `impl State` block, over what they share: the checks every write goes
//! through (`checks`), the object helpers (`object`), the parameters and the error.

mod apply;
mod checks;
mod create;
mod delete;
mod error;
mod gc;
mod object;
mod params;
mod read;
mod update;

pub use error::ApiError;
pub use object::present;
pub use params::{DeleteOptions, FieldValidation, PatchType, Reply, Target, WriteParams};

type Result<T> = std::result::Result<T, ApiError>;
