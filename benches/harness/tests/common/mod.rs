//! What the harness's integration tests share.

use std::path::PathBuf;

/// The logdedup binary of this workspace: `target/release/logdedup`, else
/// `target/debug/logdedup`; `None` when neither is built.
pub fn find_logdedup() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    ["release", "debug"].iter().map(|p| target.join(p).join("logdedup")).find(|p| p.is_file())
}
