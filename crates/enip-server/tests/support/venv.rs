//! The Python the interop and chart tests drive: the workspace's `.venv` (which
//! `.ci/run` creates), or the one an environment variable names. Shared by the test
//! crates that need it, through `#[path]`.

use std::path::PathBuf;
use std::process::Command;

/// A Python that imports every one of `modules`: from `$env`, else `<workspace>/.venv`.
/// Without one a test skips, saying why; under `CI=true` that is a failure.
pub fn python_with(env: &str, modules: &[&str]) -> Option<PathBuf> {
    let p = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        // Every crate is `crates/<name>`: the workspace is two up.
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
    });
    let ok = Command::new(&p)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(p);
    }
    let why = format!(
        "no Python with {} at {} (run .ci/run, or set {env})",
        modules.join(", "),
        p.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("SKIPPED: {why}");
    None
}
