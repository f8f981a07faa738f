//! Fuzzes the config loader: any text gives a config or errors, never a panic, and every error
//! and warning formats. A `logging:` mapping (a Python dictConfig or an inline log4rs config) in
//! an accepted config is then translated to a log4rs config as the daemon does.
//!
//! Translating opens (and creates) the log files the mapping names, so it runs only where that
//! cannot touch anything outside a scratch directory: the workspace is a directory of its own
//! under the temporary directory (`scripts/fuzz` points `TMPDIR` at its scratch space), emptied
//! after each translation, and a mapping is translated only when none of its strings (keys or
//! values) is an absolute path, has a `..` component or holds a `$` (log4rs expands `$ENV{..}`
//! in paths). A file path in `logging:` (a separate YAML or INI file) is not followed.

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use keepserver::config;
use keepserver::logging::{self, LoggingContext};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/nonexistent/keepserver-fuzz/config.yaml");
    match config::parse(text, file) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                let _ = warning.to_string();
            }
            if let Some(mapping @ Value::Object(_)) = &loaded.config.logging
                && confined(mapping)
            {
                translate(mapping, file);
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
});

fn translate(mapping: &Value, file: &Path) {
    let workspace = workspace();
    let ctx = LoggingContext {
        config_file: file,
        workspace,
    };
    match logging::translate(Some(mapping), &ctx) {
        Ok(translated) => {
            for warning in &translated.warnings {
                assert!(!warning.is_empty());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    empty(workspace);
}

/// Whether no string in `v` could name a file outside the workspace.
fn confined(v: &Value) -> bool {
    let ok = |s: &str| {
        let path = Path::new(s);
        !s.contains('$')
            && path.is_relative()
            && !path.components().any(|c| c == Component::ParentDir)
    };
    match v {
        Value::String(s) => ok(s),
        Value::Array(items) => items.iter().all(confined),
        Value::Object(map) => map.iter().all(|(k, v)| ok(k) && confined(v)),
        _ => true,
    }
}

/// This process's scratch workspace, created on first use.
fn workspace() -> &'static Path {
    static WORKSPACE: OnceLock<PathBuf> = OnceLock::new();
    WORKSPACE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("keepserver-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch workspace");
        dir
    })
}

/// Removes whatever a translation created in the workspace.
fn empty(workspace: &Path) {
    let entries = std::fs::read_dir(workspace).expect("the scratch workspace");
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.expect("a file the translation created");
    }
}
