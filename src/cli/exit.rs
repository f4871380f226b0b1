//! The exit codes of `tributary`, one meaning each, so a pipeline can branch on them:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; with `plan --detailed-exitcode`, no changes pending |
//! | 1 | an error: invalid manifests, an unreachable broker, anything refused or failed |
//! | 2 | `plan --detailed-exitcode` only: the plan is valid and has changes to make |
//! | 64 | a usage error: an unknown flag or subcommand, a missing `-f`, a bad flag value (EX_USAGE of sysexits.h) |
//!
//! clap's own usage errors exit 2, which a `--detailed-exitcode` pipeline would read as
//! "changes pending"; the binary maps them to [`USAGE`].

/// Success; for `plan --detailed-exitcode`, nothing to change.
pub const SUCCESS: u8 = 0;
/// An error, a refusal or a failure.
pub const FAILURE: u8 = 1;
/// `plan --detailed-exitcode`: changes are pending.
pub const CHANGES: u8 = 2;
/// The command line itself is wrong (sysexits.h `EX_USAGE`).
pub const USAGE: u8 = 64;
