//! What a request brings to an operation (write parameters, the patch type, delete options,
//! main resource or `/status`) and the successful answer.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// What every write carries from the query string and headers.
#[derive(Clone, Debug)]
pub struct WriteParams {
    /// `fieldManager`, else the User-Agent's product name.
    pub manager: String,
    pub explicit_manager: bool,
    pub dry_run: bool,
    pub force: bool,
    pub field_validation: FieldValidation,
}

/// A successful answer.
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

impl Reply {
    pub(super) fn ok(code: u16, body: Value) -> Self {
        Reply {
            code,
            body,
            warnings: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// `DeleteOptions` as far as they matter here.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn from_body(body: &Value) -> Self {
        let mut o = DeleteOptions {
            propagation: body
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned),
            precondition_uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            precondition_rv: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            dry_run: body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()),
        };
        if o.propagation.is_none() {
            if let Some(orphan) = body.get("orphanDependents").and_then(Value::as_bool) {
                o.propagation = Some(if orphan { "Orphan" } else { "Background" }.into());
            }
        }
        o
    }
}

/// The request's view of the object for the status subresource or the main resource.
pub enum Target {
    Main,
    Status,
}

impl Target {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Target::Main => "",
            Target::Status => "status",
        }
    }
}
