//! The Debian package, end to end: scripts/build-deb packages the test's own (debug) binary,
//! `dpkg -i` installs it, the installed binary answers `--version` and passes `check` on the
//! shipped example config, the man page, completions, unit and logrotate snippet are where
//! Debian looks for them, and `dpkg -r` (then a purge, for the conffiles) removes it all again,
//! also when an assertion fails. Skipped where a keepserver package is installed already: an
//! operator's package is never touched.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const PACKAGE: &str = "keepserver";
const DPKG_TIMEOUT: Duration = Duration::from_secs(300);
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// The files the package must install.
const INSTALLED: [&str; 9] = [
    "/usr/bin/keepserver",
    "/lib/systemd/system/keepserver.service",
    "/etc/keepserver/config.yaml.example",
    "/etc/keepserver/logging.yaml.example",
    "/etc/logrotate.d/keepserver",
    "/usr/share/man/man1/keepserver.1.gz",
    "/usr/share/bash-completion/completions/keepserver",
    "/usr/share/zsh/vendor-completions/_keepserver",
    "/usr/share/fish/vendor_completions.d/keepserver.fish",
];

/// dpkg's status of the keepserver package, `None` when dpkg knows nothing of it.
fn package_status() -> Option<String> {
    let out = run(
        Command::new("dpkg-query").args(["-W", "-f=${db:Status-Abbrev}", PACKAGE]),
        DPKG_TIMEOUT,
    );
    (out.ok() && !out.stdout.trim().is_empty() && !out.stdout.starts_with("un"))
        .then(|| out.stdout.trim().to_string())
}

/// Purges the package this test installed, whatever happened to the test.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if package_status().is_some() {
            let out = run(Command::new("dpkg").args(["-P", PACKAGE]), DPKG_TIMEOUT);
            if !out.ok() {
                eprintln!("cleanup: {out}");
            }
        }
    }
}

fn ok(out: CmdOutput) -> CmdOutput {
    assert!(out.ok(), "{out}");
    out
}

#[test]
fn the_package_installs_runs_check_on_its_example_and_removes_cleanly() {
    let test = "package";
    let dpkg = run(Command::new("dpkg").arg("--version"), DPKG_TIMEOUT);
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let can = match (root, dpkg.ok()) {
        (true, true) => Ok(()),
        (false, _) => Err("needs root for dpkg -i".to_string()),
        (true, false) => Err("needs dpkg".to_string()),
    };
    if !prerequisite(test, can.as_ref().map_err(String::clone)) {
        return;
    }
    if let Some(status) = package_status() {
        // Never for CI to override: removing it would remove an operator's package.
        let line = format!(
            "SKIP {test}: a {PACKAGE} package is installed here already (dpkg status {status}); \
             this test would remove it\n"
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        return;
    }

    let out_dir = tempfile::tempdir().expect("tempdir");
    let repo = env!("CARGO_MANIFEST_DIR");
    ok(run(
        Command::new(format!("{repo}/scripts/build-deb"))
            .args(["--binary", env!("CARGO_BIN_EXE_keepserver"), "--output"])
            .arg(out_dir.path()),
        DPKG_TIMEOUT,
    ));
    let deb = std::fs::read_dir(out_dir.path())
        .expect("output dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb in the output dir");

    let installed = Installed;
    ok(run(Command::new("dpkg").arg("-i").arg(&deb), DPKG_TIMEOUT));
    for file in INSTALLED {
        assert!(Path::new(file).is_file(), "{file} not installed");
    }
    let version = ok(run(
        Command::new("/usr/bin/keepserver").arg("--version"),
        CLI_TIMEOUT,
    ));
    assert_eq!(
        version.stdout.trim(),
        format!("keepserver {}", env!("CARGO_PKG_VERSION"))
    );
    let check = ok(run(
        Command::new("/usr/bin/keepserver").args([
            "-c",
            "/etc/keepserver/config.yaml.example",
            "check",
        ]),
        CLI_TIMEOUT,
    ));
    assert!(check.stdout.contains("is valid"), "{check}");
    let unit = std::fs::read_to_string("/lib/systemd/system/keepserver.service").expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/bin/keepserver "),
        "the unit must start the packaged binary:\n{unit}"
    );
    let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/keepserver")
        .expect("bash completion");
    assert!(bash.contains("reload") && bash.contains("status"), "{bash}");
    if Path::new("/usr/sbin/logrotate").exists() {
        ok(run(
            Command::new("/usr/sbin/logrotate").args(["-d", "/etc/logrotate.d/keepserver"]),
            CLI_TIMEOUT,
        ));
    }
    let conffiles = ok(run(
        Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", PACKAGE]),
        DPKG_TIMEOUT,
    ));
    for file in [
        "/etc/keepserver/config.yaml.example",
        "/etc/keepserver/logging.yaml.example",
        "/etc/logrotate.d/keepserver",
    ] {
        assert!(conffiles.stdout.contains(file), "{file}: {conffiles}");
    }

    ok(run(
        Command::new("dpkg").args(["-r", PACKAGE]),
        DPKG_TIMEOUT,
    ));
    assert!(!Path::new("/usr/bin/keepserver").exists());
    // `dpkg -r` keeps the conffiles; the purge takes them and leaves the machine as it was.
    drop(installed);
    assert_eq!(package_status(), None);
    for file in INSTALLED {
        assert!(!Path::new(file).exists(), "{file} left behind");
    }
}
