//! Harness for the BGP announcer end-to-end tests: a [`BgpLab`] is two network namespaces joined
//! by a veth pair (`bgp0` 198.51.100.1 in the node, `bgp1` 198.51.100.2 in the router). The
//! router runs FRR's zebra and bgpd as the upstream peer (AS 65000); the node runs its own zebra
//! and bgpd (AS 65001, started with update debugging only) configured by the real keepserver, which
//! is MASTER while the VIP is on `ksv0`. Each FRR instance has its own pathspace
//! (`/var/run/frr/<pathspace>/`: vty sockets, zserv socket, pid files, configs, logs) and no TCP
//! vty (see tests/frr/). Guards remove it all on Drop, also on panic: keepserver, every process in
//! both namespaces, the namespaces, the pathspace directories and the workspace.
#![allow(dead_code)] // every test file uses a different part of the harness

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::*;
pub use crate::frr::*;

/// The VIP whose presence on `ksv0` makes the node MASTER.
pub const VIP: &str = "192.0.2.10";
/// The VIP as added to `ksv0`.
pub const VIP_CIDR: &str = "192.0.2.10/24";
/// What keepserver announces by default: the VIP as a host prefix.
pub const PREFIX: &str = "192.0.2.10/32";
/// The node's end of the BGP link.
pub const NODE_ADDR: &str = "198.51.100.1";
/// The router's end of the BGP link.
pub const ROUTER_ADDR: &str = "198.51.100.2";
/// The node's AS.
pub const NODE_AS: u32 = 65001;
/// The router's AS.
pub const ROUTER_AS: u32 = 65000;

// ---------------------------------------------------------------------------------------------
// The lab

/// How a lab is set up.
#[derive(Debug, Clone, Default)]
pub struct LabSpec {
    /// The workspace hook script as `keepstart.is-running`.
    pub is_running: bool,
    /// `bgp.require-running: true` (needs `is_running`).
    pub require_running: bool,
    /// Extra lines for the `bgp` section (two-space indented).
    pub extra_bgp: String,
}

/// One test's world. Field order is drop order: keepserver, the FRR instances, the namespaces
/// (and every process left in them), then the files.
pub struct BgpLab {
    /// Every keepserver started (a killed one's guard is kept: dropping it would clear the
    /// namespace), the running one last.
    daemons: Vec<Daemon>,
    /// The node's FRR, driven by keepserver.
    pub node_frr: Frr,
    /// The router's FRR, the BGP peer.
    pub router_frr: Frr,
    /// The node namespace: `ksv0` (the VIP's NIC), `lo` (the announced prefixes), `bgp0`.
    pub node: Netns,
    /// The router namespace: `bgp1`.
    router: Netns,
    /// keepserver's workspace.
    pub ws: Workspace,
}

impl BgpLab {
    /// Namespaces, both FRR instances, config and keepserver (SLAVE: no VIP yet); returns once
    /// the BGP session is up. `None` where the tests cannot run (after a SKIP line).
    pub fn start(test: &str, spec: LabSpec) -> Option<BgpLab> {
        let mut lab = Self::prepare(test, &spec)?;
        lab.start_keepserver();
        lab.wait_session();
        Some(lab)
    }

    /// Everything but keepserver: the namespaces, both FRR instances and the config.
    pub fn prepare(test: &str, spec: &LabSpec) -> Option<BgpLab> {
        if !bgp_available(test) {
            return None;
        }
        let node = Netns::new(test)?;
        let router = Netns::bare(test)?;
        let link = run(
            Command::new("ip").args([
                "link",
                "add",
                "bgp0",
                "netns",
                node.name(),
                "type",
                "veth",
                "peer",
                "name",
                "bgp1",
                "netns",
                router.name(),
            ]),
            COMMAND_TIMEOUT,
        );
        assert!(link.ok(), "cannot create the BGP link:\n{link}");
        node.ip(&["addr", "add", &format!("{NODE_ADDR}/24"), "dev", "bgp0"]);
        router.ip(&["addr", "add", &format!("{ROUTER_ADDR}/24"), "dev", "bgp1"]);
        node.ip(&["link", "set", "bgp0", "up"]);
        router.ip(&["link", "set", "bgp1", "up"]);
        let router_conf = format!(
            "hostname router\nrouter bgp {ROUTER_AS}\n bgp router-id {ROUTER_ADDR}\n \
             no bgp ebgp-requires-policy\n neighbor {NODE_ADDR} remote-as {NODE_AS}\n \
             neighbor {NODE_ADDR} timers connect 1\n neighbor {NODE_ADDR} advertisement-interval 0\n"
        );
        let router_frr = Frr::start(&router, "r", &router_conf);
        // Update and nexthop debugging: the node's bgpd.log then tells why a route did (not) go out.
        let node_frr = Frr::start(&node, "n", NODE_DEBUG);
        let ws = Workspace::with_config_text(|_| String::new(), false, "server.pid");
        let lab = BgpLab {
            daemons: Vec::new(),
            node_frr,
            router_frr,
            node,
            router,
            ws,
        };
        lab.write_config(spec);
        Some(lab)
    }

    /// Writes config.yaml for `spec`.
    pub fn write_config(&self, spec: &LabSpec) {
        let mut keepstart = ConfigSpec::new(VIP).force_test_cycle(5);
        if spec.is_running {
            keepstart = keepstart.with_is_running();
        }
        let mut text = keepstart.render(self.ws.dir());
        let _ = write!(
            text,
            "bgp:\n  enabled: true\n  local-as: {NODE_AS}\n  router-id: {NODE_ADDR}\n  \
             neighbors:\n    - {{address: {ROUTER_ADDR}, remote-as: {ROUTER_AS}}}\n  \
             hostname: node\n  password: e2e-secret\n  vtysh: {VTYSH}\n  pathspace: {}\n  \
             log-file: {}\n  require-running: {}\n{}",
            self.node_frr.pathspace,
            self.node_frr.path("bgpd.log").display(),
            spec.require_running,
            spec.extra_bgp
        );
        self.ws.write("config.yaml", &text);
    }

    /// Starts keepserver in the node namespace and waits until it answers `status`.
    pub fn start_keepserver(&mut self) {
        self.daemons.push(Daemon::start(&self.node, &self.ws));
    }

    /// The keepserver started last.
    pub fn daemon(&mut self) -> &mut Daemon {
        self.daemons.last_mut().expect("keepserver was started")
    }

    /// Waits until the router has the session with the node up.
    pub fn wait_session(&self) {
        self.wait("the BGP session is established", SESSION_DEADLINE, || {
            self.router_frr.session_state(NODE_ADDR) == "Established"
        });
    }

    /// Puts the VIP on `ksv0` (MASTER).
    pub fn add_vip(&self) {
        self.node.add_addr(VIP_CIDR);
    }

    /// Takes the VIP off `ksv0` (SLAVE).
    pub fn del_vip(&self) {
        self.node.del_addr(VIP_CIDR);
    }

    /// Whether the router has received `prefix`.
    pub fn router_has(&self, prefix: &str) -> bool {
        self.router_frr.has_route(prefix)
    }

    /// Whether `prefix` is on the node's loopback.
    pub fn on_loopback(&self, prefix: &str) -> bool {
        let out = self.node.try_ip(&["-o", "addr", "show", "dev", "lo"]);
        out.stdout.split_whitespace().any(|w| w == prefix)
    }

    /// The bgpd.conf keepserver owns.
    pub fn bgpd_conf(&self) -> PathBuf {
        self.ws.path("bgpd.conf")
    }

    /// keepserver's log (its foreground output).
    pub fn log(&self) -> String {
        self.ws.read("daemon.out")
    }

    /// How many times keepserver has applied a configuration to bgpd.
    pub fn applies(&self) -> usize {
        self.log().matches("bgp configuration applied").count()
    }

    /// Polls `cond` until `deadline`; panics with everything the lab holds.
    pub fn wait(&self, what: &str, deadline: Duration, cond: impl FnMut() -> bool) {
        if !wait_for(cond, deadline) {
            panic!(
                "timed out after {deadline:?} waiting for: {what}\n{}",
                self.report()
            );
        }
    }

    /// Polls `cond` until it has held at every poll for `window`, within `deadline` (the flaps'
    /// last effects may still be on their way when it first holds).
    pub fn wait_stable(
        &self,
        what: &str,
        deadline: Duration,
        window: Duration,
        mut cond: impl FnMut() -> bool,
    ) {
        let mut since: Option<std::time::Instant> = None;
        self.wait(what, deadline + window, || {
            if !cond() {
                since = None;
                return false;
            }
            since.get_or_insert_with(std::time::Instant::now).elapsed() >= window
        });
    }

    /// Asserts `cond` holds at every poll for `period`.
    pub fn holds(&self, what: &str, period: Duration, mut cond: impl FnMut() -> bool) {
        let end = std::time::Instant::now() + period;
        while std::time::Instant::now() < end {
            assert!(
                cond(),
                "expected to hold for {period:?}: {what}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// keepserver's workspace report, both FRR instances' and the router's kernel routes.
    pub fn report(&self) -> String {
        format!(
            "{}\n=== bgpd.conf ===\n{}\n{}{}=== router kernel routes ===\n{}",
            self.ws.report(),
            self.ws.read("bgpd.conf"),
            self.node_frr.report(),
            self.router_frr.report(),
            self.router.try_ip(&["route", "show"]).stdout
        )
    }
}
