//! Checks of a loaded config against the machine, which reading the file cannot make: is each
//! hook's program there and executable (a relative one is taken from the workspace, where hooks
//! run), is the NIC there in the network namespace the daemon runs in, and can the admin API's
//! secret and TLS files be used (`check` and `reload` refuse them as the start would). Each
//! finding names key, file and line like a load error.
//!
//! Whether a finding refuses the config or only warns depends on what it is for ([`Purpose`]):
//! `check` and `reload` refuse a plain hook (run directly, see [`crate::hooks`]) whose program is
//! missing or not executable; a shell command line whose first word is such a path is only
//! warned about (the shell may be meant to find it some other way). `reload` refuses a new NIC
//! that does not exist, since following it would make the node SLAVE and run `stop` on a live
//! service; `start` refuses nothing here (a NIC may appear later, a program be installed later).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::unistd::{AccessFlags, access};

use super::{Config, ConfigError, KeyProblem};
use crate::hooks::plain_words;
use crate::ifname::Ifname;

/// What the config is checked for; it sets how serious each finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// `start`: every finding is a warning for the log.
    Start,
    /// `check`: a plain hook that cannot run is an error; a missing NIC a warning.
    Check,
    /// `reload` (the command or SIGHUP) over a daemon watching `running_nic`: like `check`, and
    /// a NIC other than the running one that does not exist is an error.
    Reload {
        /// The NIC the daemon watches now (`None`: any NIC, or not known).
        running_nic: Option<&'a Ifname>,
    },
}

/// The findings, by severity.
#[derive(Debug, Default, PartialEq)]
pub struct HostReport {
    /// What refuses the config.
    pub errors: Vec<KeyProblem>,
    /// What is worth saying but not refusing.
    pub warnings: Vec<KeyProblem>,
}

impl HostReport {
    /// The warnings when there are no errors, else every error as one [`ConfigError`].
    pub fn into_result(self) -> Result<Vec<KeyProblem>, ConfigError> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(ConfigError::Invalid {
                problems: self.errors,
            })
        }
    }
}

/// Checks `config`'s hooks and NIC for `purpose`; `nic_exists` answers whether a NIC is there in
/// the network namespace that matters ([`nic_exists`], [`nic_exists_in_netns_of`]).
pub fn host_problems(
    config: &Config,
    purpose: Purpose<'_>,
    nic_exists: impl Fn(&Ifname) -> Result<bool, String>,
) -> HostReport {
    let mut report = HostReport::default();
    let ks = &config.keepstart;
    let hooks = [
        ("keepstart.start", Some(&ks.start)),
        ("keepstart.stop", Some(&ks.stop)),
        ("keepstart.is-running", ks.is_running.as_ref()),
    ];
    for (key, command) in hooks {
        let Some((problem, plain)) = command.and_then(|c| hook_problem(c, config)) else {
            continue;
        };
        let found = config.positions.problem(&config.file, key, problem);
        match purpose {
            Purpose::Check | Purpose::Reload { .. } if plain => report.errors.push(found),
            _ => report.warnings.push(found),
        }
    }
    if let Some(nic) = &ks.nic {
        nic_problem(config, nic, purpose, nic_exists(nic), &mut report);
    }
    if let Some(api) = &config.api {
        let found = api_problems(config, api);
        match purpose {
            Purpose::Start => report.warnings.extend(found),
            Purpose::Check | Purpose::Reload { .. } => report.errors.extend(found),
        }
    }
    if let Some(metrics) = &config.metrics {
        let found = auth_problem(config, "metrics", metrics.auth.as_ref());
        match purpose {
            Purpose::Start => report.warnings.extend(found),
            Purpose::Check | Purpose::Reload { .. } => report.errors.extend(found),
        }
    }
    report
}

/// What keeps the secret file of `section.auth` from being used: it cannot be read, is empty
/// or is readable by group or others.
fn auth_problem(
    config: &Config,
    section: &str,
    auth: Option<&super::api::Auth>,
) -> Option<KeyProblem> {
    let e = crate::api::auth::Gate::load(auth).err()?;
    let key = match auth {
        Some(super::api::Auth::Basic { .. }) => "auth.password-file",
        _ => "auth.token-file",
    };
    Some(
        config
            .positions
            .problem(&config.file, &format!("{section}.{key}"), e.to_string()),
    )
}

/// What keeps the admin API's front door from opening: a secret file that cannot be read, is
/// empty or is readable by group or others, a TLS file that is not the PEM it should be (the
/// daemon refuses to start without them).
fn api_problems(config: &Config, api: &super::Api) -> Vec<KeyProblem> {
    let mut found: Vec<KeyProblem> = auth_problem(config, "api", api.auth.as_ref())
        .into_iter()
        .collect();
    if let Some(tls) = &api.tls
        && let Err(e) = crate::api::tls::acceptor(tls)
    {
        let key = match &e {
            crate::api::tls::TlsError::File { what, .. } => format!("api.tls.{what}"),
            crate::api::tls::TlsError::Config(_) => "api.tls.key".to_string(),
        };
        found.push(config.positions.problem(&config.file, &key, e.to_string()));
    }
    found
}

/// What is wrong with the program of hook `command`, and whether the command is plain (run
/// directly) rather than a shell command line.
fn hook_problem(command: &str, config: &Config) -> Option<(String, bool)> {
    let workspace = &config.application.workspace;
    if let Some(words) = plain_words(command) {
        let problem = program_problem(words[0], workspace)?;
        return Some((
            format!("{problem}; the hook runs it directly and would fail"),
            true,
        ));
    }
    // The first word of a shell command line, when it is a path without anything the shell
    // would expand or interpret.
    let first = command.split_whitespace().next()?;
    let program = plain_words(first)?[0];
    let problem = program_problem(program, workspace)?;
    Some((
        format!("{problem}; the shell command would fail unless it appears before it runs"),
        false,
    ))
}

/// Why `program` (a path, relative ones from the workspace) cannot be run, if it cannot.
fn program_problem(program: &str, workspace: &Path) -> Option<String> {
    let path = workspace.join(program);
    let shown = if Path::new(program).is_relative() {
        format!("{} (from the workspace)", path.display())
    } else {
        program.to_string()
    };
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("program {shown} does not exist"))
        }
        Err(e) => Some(format!("program {shown} cannot be inspected: {e}")),
        Ok(m) if !m.is_file() => Some(format!("program {shown} is not a file")),
        Ok(m) => match access(&path, AccessFlags::X_OK) {
            Ok(()) => None,
            Err(e) => Some(format!(
                "program {shown} is not executable (mode {:o}: {e})",
                m.mode() & 0o7777
            )),
        },
    }
}

fn nic_problem(
    config: &Config,
    nic: &Ifname,
    purpose: Purpose<'_>,
    exists: Result<bool, String>,
    report: &mut HostReport,
) {
    let problem = |message| {
        config
            .positions
            .problem(&config.file, "keepstart.nic", message)
    };
    match (exists, purpose) {
        (Ok(true), _) | (_, Purpose::Start) => {}
        (Err(e), _) => report.warnings.push(problem(format!(
            "cannot check whether NIC `{nic}` exists: {e}"
        ))),
        (Ok(false), Purpose::Reload { running_nic }) if running_nic != Some(nic) => {
            report.errors.push(problem(format!(
                "NIC `{nic}` does not exist in the daemon's network namespace; following it \
                 would make this node SLAVE and run stop. Create the NIC first, or fix the name"
            )))
        }
        (Ok(false), Purpose::Reload { .. }) => report.warnings.push(problem(format!(
            "NIC `{nic}` (unchanged) does not exist in the daemon's network namespace"
        ))),
        (Ok(false), Purpose::Check) => report.warnings.push(problem(format!(
            "NIC `{nic}` does not exist in this network namespace; `start` waits for it \
             (SLAVE until it appears with the VIP), `reload` refuses to switch to it"
        ))),
    }
}

/// Whether NIC `name` exists in this process's network namespace (`if_nametoindex`, which asks
/// the kernel in the caller's namespace, unlike /sys, which shows the namespace it was mounted in).
pub fn nic_exists(name: &Ifname) -> Result<bool, String> {
    match nix::net::if_::if_nametoindex(name.as_str()) {
        Ok(_) => Ok(true),
        Err(Errno::ENODEV) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether NIC `name` exists in the network namespace of process `pid` (the running daemon,
/// which may have been started with `ip netns exec`). When that is another namespace than this
/// process's, the lookup runs on a short-lived thread that joins it (`setns`, which needs root),
/// so this process stays where it is.
pub fn nic_exists_in_netns_of(pid: i32, name: &Ifname) -> Result<bool, String> {
    let path = format!("/proc/{pid}/ns/net");
    let theirs = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let same = match (theirs.metadata(), std::fs::metadata("/proc/self/ns/net")) {
        (Ok(a), Ok(b)) => id(a) == id(b),
        _ => false,
    };
    if same {
        return nic_exists(name);
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(&theirs, CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("cannot enter the network namespace of pid {pid}: {e}"))?;
            nic_exists(name)
        })
        .join()
        .unwrap_or_else(|_| Err("the namespace lookup thread panicked".to_string()))
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::parse;

    /// A config in `dir` with these hooks and NIC.
    fn config(dir: &Path, start: &str, stop: &str, nic: &str) -> Config {
        let text = format!(
            "application:\n  workspace: {}\nkeepstart:\n  nic: {nic}\n  vip: 192.0.2.10\n  \
             start: '{start}'\n  stop: '{stop}'\n",
            dir.display()
        );
        parse(&text, &dir.join("config.yaml"))
            .expect("valid config")
            .config
    }

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        write("run.sh", 0o755);
        write("plain.txt", 0o644);
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
        dir
    }

    fn keys(problems: &[KeyProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    const PRESENT: fn(&Ifname) -> Result<bool, String> = |_| Ok(true);
    const ABSENT: fn(&Ifname) -> Result<bool, String> = |_| Ok(false);

    #[test]
    fn plain_hooks_that_cannot_run_are_errors_naming_key_and_line() {
        let dir = workspace();
        for (start, why) in [
            ("./missing.sh go", "does not exist"),
            ("/nonexistent/start.sh", "does not exist"),
            ("./plain.txt go", "is not executable"),
            ("./bin", "is not a file"),
        ] {
            let c = config(dir.path(), start, "./run.sh stop", "eth0");
            let r = host_problems(&c, Purpose::Check, PRESENT);
            assert_eq!(keys(&r.errors), ["keepstart.start"], "{start}: {r:?}");
            assert!(r.warnings.is_empty(), "{start}: {r:?}");
            let shown = r.errors[0].to_string();
            assert!(shown.contains(why), "{start}: {shown}");
            assert!(shown.contains("config.yaml:6:"), "{start}: {shown}");
            assert!(!shown.contains("line"), "the position once: {shown}");
        }
    }

    #[test]
    fn hooks_that_can_run_or_cannot_be_judged_pass() {
        let dir = workspace();
        for start in [
            "./run.sh start",
            "run.sh",
            "true",
            "cd /tmp && ./missing.sh",
            "\"./missing.sh\" start",
            "$HOME/missing.sh",
            "FOO=1 ./missing.sh",
        ] {
            let c = config(dir.path(), start, "/bin/true", "eth0");
            let r = host_problems(&c, Purpose::Check, PRESENT);
            assert_eq!(r, HostReport::default(), "{start}");
        }
    }

    #[test]
    fn a_shell_line_starting_with_a_missing_path_is_a_warning() {
        let dir = workspace();
        let c = config(
            dir.path(),
            "./run.sh",
            "./missing.sh >> stop.log 2>&1",
            "eth0",
        );
        let r = host_problems(&c, Purpose::Check, PRESENT);
        assert!(r.errors.is_empty(), "{r:?}");
        assert_eq!(keys(&r.warnings), ["keepstart.stop"]);
        assert!(r.warnings[0].to_string().contains("missing.sh"), "{r:?}");
    }

    #[test]
    fn start_only_warns() {
        let dir = workspace();
        let c = config(dir.path(), "./missing.sh", "./plain.txt", "eth0");
        let r = host_problems(&c, Purpose::Start, ABSENT);
        assert!(r.errors.is_empty(), "{r:?}");
        assert_eq!(keys(&r.warnings), ["keepstart.start", "keepstart.stop"]);
    }

    #[test]
    fn a_missing_nic_refuses_only_a_reload_that_switches_to_it() {
        let dir = workspace();
        let c = config(dir.path(), "./run.sh", "./run.sh", "ksv9");
        let other: Ifname = "eth0".parse().expect("valid");
        let same: Ifname = "ksv9".parse().expect("valid");
        let switch = host_problems(
            &c,
            Purpose::Reload {
                running_nic: Some(&other),
            },
            ABSENT,
        );
        assert_eq!(keys(&switch.errors), ["keepstart.nic"], "{switch:?}");
        assert!(
            switch.errors[0].to_string().contains("config.yaml:4:"),
            "{switch:?}"
        );
        let from_any = host_problems(&c, Purpose::Reload { running_nic: None }, ABSENT);
        assert_eq!(keys(&from_any.errors), ["keepstart.nic"]);
        let unchanged = host_problems(
            &c,
            Purpose::Reload {
                running_nic: Some(&same),
            },
            ABSENT,
        );
        assert!(unchanged.errors.is_empty(), "{unchanged:?}");
        assert_eq!(keys(&unchanged.warnings), ["keepstart.nic"]);
        let check = host_problems(&c, Purpose::Check, ABSENT);
        assert!(check.errors.is_empty());
        assert_eq!(keys(&check.warnings), ["keepstart.nic"]);
        let start = host_problems(&c, Purpose::Start, ABSENT);
        assert_eq!(start, HostReport::default());
        let present = host_problems(&c, Purpose::Reload { running_nic: None }, PRESENT);
        assert_eq!(present, HostReport::default());
        let unknown = host_problems(&c, Purpose::Reload { running_nic: None }, |_| {
            Err("EPERM".into())
        });
        assert!(unknown.errors.is_empty());
        assert_eq!(keys(&unknown.warnings), ["keepstart.nic"]);
    }

    #[test]
    fn loopback_exists_here_and_a_made_up_nic_does_not() {
        assert_eq!(nic_exists(&"lo".parse().expect("valid")), Ok(true));
        assert_eq!(nic_exists(&"ksnone9".parse().expect("valid")), Ok(false));
        let me = std::process::id() as i32;
        assert_eq!(
            nic_exists_in_netns_of(me, &"lo".parse().expect("valid")),
            Ok(true)
        );
    }
}
