//! Records `git describe` as KEEPSERVER_RELEASE for DISCOVER's `release` field.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let described = Command::new("git")
        .args(["describe", "--tags", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(d) = described {
        let version = env!("CARGO_PKG_VERSION");
        println!("cargo:rustc-env=KEEPSERVER_RELEASE={version}-{d}");
    }
}
