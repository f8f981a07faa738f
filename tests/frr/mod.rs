//! FRR for end-to-end tests: the prerequisite check (installing Debian's `frr` and
//! `frr-pythontools` when missing) and [`Frr`], one zebra + bgpd instance in a network namespace
//! with its own pathspace (`/var/run/frr/<pathspace>/`: vty sockets, zserv socket, pid files,
//! configs, logs) and no TCP vty, killed and removed on Drop, also on panic; either daemon can
//! be killed and started again on its own (the fault tests). Used by the BGP lab (tests/bgp/)
//! and the two-node keepalived lab (tests/keepalived/).
#![allow(dead_code)] // every test file uses a different part of the harness

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// What the issue allows between a change and its effect at the peer.
pub const WITHIN: Duration = Duration::from_secs(5);
/// How long a BGP session may take to come up.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(30);
/// FRR's daemons.
const FRR_DIR: &str = "/usr/lib/frr";
/// vtysh.
pub const VTYSH: &str = "/usr/bin/vtysh";
/// Where FRR keeps a pathspace's sockets and pid files.
const FRR_RUN: &str = "/var/run/frr";
/// A keepserver-driven bgpd's startup configuration: debugging only; keepserver configures the
/// rest.
pub const NODE_DEBUG: &str = "debug bgp updates\ndebug bgp zebra\ndebug bgp nht\n";
/// Longest a vtysh or setup command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Prerequisites

/// Whether the e2e tests that run FRR (BGP, and the keepalived lab) can run here: root and `ip netns` (as every e2e test), plus FRR
/// (Debian `frr` and `frr-pythontools`, installed with apt-get when missing). Where tests must
/// run (`CI`, `KEEPSERVER_E2E_REQUIRED`) a missing prerequisite fails the test; elsewhere it
/// prints a SKIP line.
pub fn bgp_available(test: &str) -> bool {
    if !e2e_available(test) {
        return false;
    }
    static TOOLS: OnceLock<Result<(), String>> = OnceLock::new();
    prerequisite(
        test,
        TOOLS.get_or_init(ensure_frr).as_ref().map_err(Clone::clone),
    )
}

fn frr_present() -> bool {
    Path::new(&format!("{FRR_DIR}/bgpd")).exists()
        && Path::new(&format!("{FRR_DIR}/zebra")).exists()
        && Path::new(VTYSH).exists()
        && Path::new(&format!("{FRR_DIR}/frr-reload.py")).exists()
}

/// Installs FRR when missing; an error says what could not be had.
fn ensure_frr() -> Result<(), String> {
    if !frr_present() {
        let installed = apt_install(&["frr", "frr-pythontools"]);
        if !frr_present() {
            return Err(installed
                .err()
                .unwrap_or_else(|| "apt-get installed frr, but its daemons are missing".into()));
        }
    }
    let id = run(Command::new("id").arg("frr"), COMMAND_TIMEOUT);
    if !id.ok() {
        return Err(format!("FRR's user `frr` is missing:\n{id}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// FRR instances

static PATHSPACES: AtomicUsize = AtomicUsize::new(0);

/// One FRR instance (zebra + bgpd) in a namespace, in its own pathspace. Drop kills both (by
/// pid, while they still run in the namespace) and removes the pathspace directory.
pub struct Frr {
    /// The pathspace (`-N`).
    pub pathspace: String,
    /// `/var/run/frr/<pathspace>`: sockets, pid files, configs and logs.
    pub dir: PathBuf,
    ns: String,
    /// zebra and bgpd by name, restarted ones after the killed ones (`ip netns exec` execs
    /// into them, so these are the daemons).
    children: Vec<(String, Child)>,
}

impl Frr {
    /// Starts zebra and bgpd in `ns` with `bgpd_conf` as bgpd's startup configuration and waits
    /// until both answer on their vty sockets.
    pub fn start(ns: &Netns, role: &str, bgpd_conf: &str) -> Frr {
        sweep_stale_pathspaces();
        let n = PATHSPACES.fetch_add(1, Ordering::SeqCst);
        let pathspace = format!("ks{}-{n}{role}", std::process::id());
        let dir = PathBuf::from(FRR_RUN).join(&pathspace);
        let mut frr = Frr {
            pathspace,
            dir: dir.clone(),
            ns: ns.name().to_string(),
            children: Vec::new(),
        };
        fs::create_dir_all(&dir).expect("create the pathspace directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod pathspace");
        frr.write("zebra.conf", &format!("hostname {role}\n"));
        frr.write("bgpd.conf", bgpd_conf);
        let chown = run(
            Command::new("chown").args(["-R", "frr:frr"]).arg(&dir),
            COMMAND_TIMEOUT,
        );
        assert!(chown.ok(), "cannot hand the pathspace to frr:\n{chown}");
        for daemon in ["zebra", "bgpd"] {
            frr.launch(ns, daemon);
        }
        frr
    }

    /// Starts `daemon` (`zebra` or `bgpd`) on its startup configuration in the pathspace and
    /// waits until it has made its vty socket (a new one, not the one a killed predecessor left).
    fn launch(&mut self, ns: &Netns, daemon: &str) {
        let binary = format!("{FRR_DIR}/{daemon}");
        let conf = self.path(&format!("{daemon}.conf"));
        let pid = self.path(&format!("{daemon}.pid"));
        let log = format!(
            "file:{}",
            self.path(&format!("{daemon}-startup.log")).display()
        );
        let args = [
            binary.as_str(),
            "-N",
            &self.pathspace,
            "-f",
            &conf.display().to_string(),
            "-i",
            &pid.display().to_string(),
            "-P",
            "0",
            "--log",
            &log,
        ];
        let before = self.vty_identity(daemon);
        let child = ns.spawn(&args, &self.path(&format!("{daemon}.out")));
        self.children.push((daemon.to_string(), child));
        let ready = wait_for(
            || {
                self.vty_identity(daemon)
                    .is_some_and(|now| Some(now) != before)
            },
            Duration::from_secs(20),
        );
        assert!(
            ready,
            "{daemon} did not open a new {}:\n{}",
            self.path(&format!("{daemon}.vty")).display(),
            self.report()
        );
    }

    /// The vty socket of `daemon`: inode and change time, `None` when there is none.
    fn vty_identity(&self, daemon: &str) -> Option<(u64, i64, i64)> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(self.path(&format!("{daemon}.vty"))).ok()?;
        Some((m.ino(), m.ctime(), m.ctime_nsec()))
    }

    /// The pid of the running `daemon`.
    pub fn pid(&self, daemon: &str) -> i32 {
        self.children
            .iter()
            .rev()
            .find(|(name, _)| name == daemon)
            .map(|(_, child)| child.id() as i32)
            .unwrap_or_else(|| panic!("{daemon} was never started"))
    }

    /// SIGKILLs `daemon` (`zebra` or `bgpd`) and waits until it is gone; its sockets and pid
    /// file stay behind, as after a crash.
    pub fn kill(&mut self, daemon: &str) {
        let Some((_, child)) = self.children.iter_mut().rev().find(|(n, _)| n == daemon) else {
            panic!("{daemon} was never started");
        };
        signal(child.id() as i32, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    }

    /// Starts `daemon` again in the same pathspace, with `conf` as its new startup
    /// configuration (`None`: the one it had), and waits until it has made its vty socket.
    pub fn restart(&mut self, ns: &Netns, daemon: &str, conf: Option<&str>) {
        if let Some(text) = conf {
            let name = format!("{daemon}.conf");
            self.write(&name, text);
            let chown = run(
                Command::new("chown").arg("frr:frr").arg(self.path(&name)),
                COMMAND_TIMEOUT,
            );
            assert!(chown.ok(), "cannot hand {name} to frr:\n{chown}");
        }
        self.launch(ns, daemon);
    }

    /// A file in the pathspace directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    }

    /// `vtysh -N PATHSPACE -c COMMAND` inside the namespace.
    pub fn vtysh(&self, command: &str) -> CmdOutput {
        run(
            Command::new("ip").args([
                "netns",
                "exec",
                &self.ns,
                VTYSH,
                "-N",
                &self.pathspace,
                "-c",
                command,
            ]),
            COMMAND_TIMEOUT,
        )
    }

    /// The IPv4 unicast routes bgpd holds (`show ip bgp json`), by prefix.
    pub fn routes(&self) -> Value {
        let out = self.vtysh("show ip bgp json");
        let json: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        json["routes"].clone()
    }

    /// Whether bgpd holds a route for `prefix`.
    pub fn has_route(&self, prefix: &str) -> bool {
        self.routes().get(prefix).is_some()
    }

    /// The next hops of every path bgpd holds for `prefix`, sorted, each once; empty when it
    /// holds none.
    pub fn next_hops(&self, prefix: &str) -> Vec<String> {
        let routes = self.routes();
        let mut hops: Vec<String> = routes[prefix]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|path| path["nexthops"].as_array().into_iter().flatten())
            .filter_map(|hop| hop["ip"].as_str().map(str::to_string))
            .collect();
        hops.sort();
        hops.dedup();
        hops
    }

    /// The state of the session with `neighbor` (`Established` when up).
    pub fn session_state(&self, neighbor: &str) -> String {
        let out = self.vtysh(&format!("show bgp neighbors {neighbor} json"));
        let json: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        json[neighbor]["bgpState"]
            .as_str()
            .unwrap_or("none")
            .to_string()
    }

    /// How often the session with `neighbor` has been established.
    pub fn established_count(&self, neighbor: &str) -> u64 {
        let out = self.vtysh(&format!("show bgp neighbors {neighbor} json"));
        let json: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        json[neighbor]["connectionsEstablished"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The instance's logs and running configuration, for failure messages.
    pub fn report(&self) -> String {
        let mut r = String::new();
        for name in [
            "zebra.out",
            "bgpd.out",
            "zebra-startup.log",
            "bgpd-startup.log",
            "bgpd.log",
        ] {
            let text = fs::read_to_string(self.path(name)).unwrap_or_default();
            if !text.is_empty() {
                let _ = writeln!(r, "=== {} {name} ===\n{}", self.pathspace, tail(&text, 30));
            }
        }
        if self.path("bgpd.vty").exists() {
            for command in ["show running-config", "show ip bgp", "show bgp neighbors"] {
                let _ = writeln!(
                    r,
                    "=== {} {command} ===\n{}",
                    self.pathspace,
                    self.vtysh(command).stdout
                );
            }
        }
        r
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes pathspaces left by earlier test processes that were killed before their guards ran
/// (their daemons died with their namespaces' sweep).
fn sweep_stale_pathspaces() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| remove_stale_dirs(Path::new(FRR_RUN), "ks"));
}
