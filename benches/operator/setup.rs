//! The bench's settings and the operator binary it runs.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The release binary: `TRIBUTARY_BIN`, else built (a no-op when fresh) into target/release.
pub(crate) fn tributary_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TRIBUTARY_BIN") {
        let p = PathBuf::from(p);
        let p = if p.is_relative() {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
        } else {
            p
        };
        assert!(
            p.exists(),
            "TRIBUTARY_BIN={} does not exist; run `cargo build --release --bin tributary`",
            p.display()
        );
        return p;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "tributary"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "cargo build --release --bin tributary failed"
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release/tributary")
}
