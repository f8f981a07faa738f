//! The two-node keepalived lab for end-to-end tests: a bridge namespace with a Linux bridge, and
//! two node namespaces each joined to it by a veth pair, each running the real keepalived (VRRP
//! v3, unicast peers, `advert_int 0.1`, `notify_fifo` and `notify` wired to keepserver) and the
//! real keepserver, whose embedded Libra worker takes jobs from a real gearmand on the bridge while
//! its node is MASTER, and whose BGP announcer drives the node's own FRR (zebra + bgpd, AS 65001),
//! peering over the bridge with a router FRR on the bridge (AS 65000) that learns the VIP /32
//! from the MASTER. VRRP, Gearman and BGP never leave the test's namespaces. Everything is removed
//! on Drop (the FRR instances and the namespaces' processes killed, the FRR pathspaces and the
//! namespaces deleted, the workspaces removed), also when the test panics.

use std::fmt::Write as _;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::common::*;
use super::frr::*;

/// The VIP keepalived moves.
pub const VIP: &str = "192.0.2.100";
/// The VRRP instance name.
pub const INSTANCE: &str = "VI_1";
/// The FIFO keepalived writes and keepserver reads, in each node's workspace.
pub const FIFO: &str = "keepalived.fifo";
/// keepalived's own notify_master script appends a line here (for comparison).
pub const NOTIFY_MASTER_LOG: &str = "notify-master.log";
/// gearmand's address, on the bridge.
pub const GEARMAND: &str = "192.0.2.254";
/// gearmand's port.
const GEARMAND_PORT: &str = "4730";
/// The Gearman function (`libra.queue`) both nodes' Libra workers register while MASTER.
pub const QUEUE: &str = "lbaas-ka-e2e";
/// What the MASTER's keepserver announces (the default: the VIP as a host prefix).
pub const PREFIX: &str = "192.0.2.100/32";
/// The router's bgpd: on the bridge, with gearmand's address.
pub const ROUTER: &str = GEARMAND;
/// The router's AS.
const ROUTER_AS: u32 = 65000;
/// Both nodes' AS.
const NODE_AS: u32 = 65001;

/// Whether keepalived, gearmand and gearadmin (Debian keepalived, gearman-job-server,
/// gearman-tools; scripts/test installs them) are here; prints a SKIP line when one is not, and
/// fails where e2e tests are required.
pub fn tools_available(test: &str) -> bool {
    let tools = [
        ("keepalived", "--version"),
        ("/usr/sbin/gearmand", "--version"),
        ("gearadmin", "--help"),
    ];
    prerequisite(test, tools_present(&tools, " (run scripts/test as root)"))
}

/// One node: its namespace, keepserver's workspace (which also holds keepalived's files), and
/// the two daemons.
pub struct Node {
    /// `a` or `b`, for messages.
    pub name: &'static str,
    /// The node's address on the bridge.
    pub addr: &'static str,
    /// VRRP priority.
    pub priority: u8,
    keepserver: Option<Daemon>,
    keepalived: Option<Child>,
    /// The node's FRR, configured by keepserver's BGP announcer.
    pub frr: Frr,
    /// The node's namespace; NIC `ksv0` is its leg to the bridge.
    pub ns: Netns,
    /// keepserver's workspace: config.yaml, hooks.log, daemon.out, keepalived's config and log.
    pub ws: Workspace,
}

impl Node {
    /// The node's namespace with its leg to `bridge` (NIC up, `addr` on it), FRR started after
    /// that (zebra then finds the NIC and its address in its first look at the kernel; started
    /// before, it once missed them and bgpd never opened the session), and the workspace.
    fn new(
        test: &str,
        name: &'static str,
        addr: &'static str,
        priority: u8,
        bridge: &Netns,
    ) -> Option<Node> {
        let ns = Netns::bare(&format!("{test}{name}"))?;
        let leg = format!("leg{name}");
        ns.ip(&[
            "link",
            "add",
            NIC,
            "type",
            "veth",
            "peer",
            "name",
            &leg,
            "netns",
            bridge.name(),
        ]);
        bridge.ip(&["link", "set", &leg, "master", "br0"]);
        bridge.ip(&["link", "set", &leg, "up"]);
        ns.ip(&["link", "set", NIC, "up"]);
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", NIC]);
        let frr = Frr::start(&ns, name, NODE_DEBUG);
        let spec = ConfigSpec::new(VIP);
        let ws = Workspace::new(&spec);
        let config = format!(
            "{}  keepalived-fifo: '{FIFO}'\nlibra:\n  enabled: true\n  servers: ['{GEARMAND}:{GEARMAND_PORT}']\n  queue: '{QUEUE}'\n\
             bgp:\n  enabled: true\n  local-as: {NODE_AS}\n  router-id: {addr}\n  \
             neighbors:\n    - {{address: {ROUTER}, remote-as: {ROUTER_AS}}}\n  hostname: {name}\n  \
             vtysh: {VTYSH}\n  pathspace: {}\n  log-file: {}\n",
            spec.render(ws.dir()),
            frr.pathspace,
            frr.path("bgpd.log").display(),
        );
        ws.write("config.yaml", &config);
        ws.write_script(
            "notify-master.sh",
            &format!(
                "#!/bin/sh\necho \"notify_master $(date +%s%N)\" >> '{}'\n",
                ws.path(NOTIFY_MASTER_LOG).display()
            ),
        );
        Some(Node {
            name,
            addr,
            priority,
            keepserver: None,
            keepalived: None,
            frr,
            ns,
            ws,
        })
    }

    /// keepalived.conf for this node, with `peer` as its unicast peer. Unlike the example in
    /// scripts/, without `enable_script_security`: that would refuse the keepserver binary under
    /// test whenever the checkout is writable by a non-root user.
    fn write_keepalived_conf(&self, peer: &str) {
        let ws = self.ws.dir().display().to_string();
        let conf = format!(
            r#"global_defs {{
    router_id keepserver_e2e_{name}
    vrrp_version 3
    notify_fifo {ws}/{FIFO}
    script_user root
}}

vrrp_instance {INSTANCE} {{
    state BACKUP
    interface {NIC}
    virtual_router_id 51
    priority {priority}
    advert_int 0.1
    unicast_src_ip {addr}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
    notify "{BIN} -c {ws}/config.yaml notify"
    notify_master "{ws}/notify-master.sh"
}}
"#,
            name = self.name,
            priority = self.priority,
            addr = self.addr,
        );
        self.ws.write("keepalived.conf", &conf);
    }

    /// Starts keepserver in the node's namespace and waits until it answers `status`.
    pub fn start_keepserver(&mut self) {
        self.keepserver = Some(Daemon::start(&self.ns, &self.ws));
    }

    /// Starts keepalived in the foreground (stale pid files removed first).
    pub fn start_keepalived(&mut self) {
        assert!(
            self.keepalived.is_none(),
            "keepalived already runs on {}",
            self.name
        );
        let pid_files = ["keepalived.pid", "vrrp.pid", "checkers.pid", "bfd.pid"];
        for f in pid_files {
            let _ = std::fs::remove_file(self.ws.path(f));
        }
        let path = |f: &str| self.ws.path(f).display().to_string();
        let args = [
            "keepalived".to_string(),
            "-n".into(),
            "-l".into(),
            "-D".into(),
            "-f".into(),
            path("keepalived.conf"),
            "-p".into(),
            path(pid_files[0]),
            "-r".into(),
            path(pid_files[1]),
            "-c".into(),
            path(pid_files[2]),
            "-b".into(),
            path(pid_files[3]),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.keepalived = Some(self.ns.spawn(&args, &self.ws.path("keepalived.out")));
    }

    /// SIGTERM to keepalived (it gives the VIP up, sending priority 0) and waits for it to exit.
    pub fn stop_keepalived(&mut self) {
        let mut child = self
            .keepalived
            .take()
            .unwrap_or_else(|| panic!("keepalived does not run on {}", self.name));
        signal(child.id() as i32, Signal::SIGTERM);
        let exited = wait_for(|| child.try_wait().ok().flatten().is_some(), DEADLINE);
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "keepalived on {} ignored SIGTERM for {DEADLINE:?}",
                self.name
            );
        }
    }

    /// True when the VIP is on this node's NIC.
    pub fn has_vip(&self) -> bool {
        self.ns.has_addr(VIP)
    }

    /// The states keepserver logged for keepalived events from `source` (`fifo` or `notify`),
    /// in log order.
    pub fn logged_states(&self, source: &str) -> Vec<String> {
        let marker = format!("keepalived notify source={source} ");
        self.ws
            .read("daemon.out")
            .lines()
            .filter(|l| l.contains(&marker))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("state="))
                    .map(str::to_string)
            })
            .collect()
    }

    /// How many times keepalived's own notify_master script ran.
    pub fn notify_master_runs(&self) -> usize {
        self.ws.read(NOTIFY_MASTER_LOG).lines().count()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.gearmand.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.keepalived.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bridge (with gearmand and the router's FRR on 192.0.2.254) and two nodes: `a` (192.0.2.1,
/// priority 150) and `b` (192.0.2.2, priority 100).
pub struct Lab {
    /// The higher-priority node.
    pub a: Node,
    /// The lower-priority node.
    pub b: Node,
    gearmand: Option<Child>,
    /// The router's FRR, both nodes' BGP peer.
    pub router: Frr,
    /// Declared last: dropped after the nodes, whose veth ends it holds.
    bridge: Netns,
}

impl Lab {
    /// Builds the topology and writes both keepalived configs; starts nothing. `None` (after a
    /// SKIP line) where the tests cannot run.
    pub fn new(test: &str) -> Option<Lab> {
        if !tools_available(test) || !bgp_available(test) {
            return None;
        }
        let bridge = Netns::bare(&format!("{test}br"))?;
        bridge.ip(&["link", "add", "br0", "type", "bridge"]);
        bridge.ip(&["link", "set", "br0", "up"]);
        bridge.ip(&["addr", "add", &format!("{GEARMAND}/24"), "dev", "br0"]);
        let a = Node::new(test, "a", "192.0.2.1", 150, &bridge)?;
        let b = Node::new(test, "b", "192.0.2.2", 100, &bridge)?;
        let mut router_conf = format!(
            "hostname router\nrouter bgp {ROUTER_AS}\n bgp router-id {ROUTER}\n \
             no bgp ebgp-requires-policy\n"
        );
        for node in [&a, &b] {
            let n = node.addr;
            let _ = write!(
                router_conf,
                " neighbor {n} remote-as {NODE_AS}\n neighbor {n} timers connect 1\n \
                 neighbor {n} advertisement-interval 0\n"
            );
        }
        let router = Frr::start(&bridge, "r", &router_conf);
        a.write_keepalived_conf(b.addr);
        b.write_keepalived_conf(a.addr);
        Some(Lab {
            a,
            b,
            gearmand: None,
            router,
            bridge,
        })
    }

    /// Starts gearmand on the bridge (files in node a's workspace) and waits until it answers.
    pub fn start_gearmand(&mut self) {
        let file = |name: &str| self.a.ws.path(name).display().to_string();
        let args = [
            "/usr/sbin/gearmand".to_string(),
            "--listen".into(),
            GEARMAND.into(),
            "--port".into(),
            GEARMAND_PORT.into(),
            "--log-file".into(),
            file("gearmand.log"),
            "--pid-file".into(),
            file("gearmand.pid"),
            "--threads".into(),
            "1".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.gearmand = Some(self.bridge.spawn(&args, &self.a.ws.path("gearmand.out")));
        self.wait_until("gearmand answers", DEADLINE, || self.workers().is_some());
    }

    /// The addresses that have Gearman workers registered for [`QUEUE`] (`gearadmin --workers`
    /// on the bridge), sorted, each once (a node opens several connections); `None` while gearmand
    /// does not answer.
    pub fn workers(&self) -> Option<Vec<String>> {
        let out = self.bridge.exec(&[
            "gearadmin",
            "-h",
            GEARMAND,
            "-p",
            GEARMAND_PORT,
            "--workers",
        ]);
        if !out.ok() {
            return None;
        }
        // Lines: `FD ADDRESS CLIENT_ID : FUNCTION...`, then `.`.
        let mut addrs: Vec<String> = out
            .stdout
            .lines()
            .filter_map(|l| {
                let (who, functions) = l.split_once(" : ")?;
                let addr = who.split_whitespace().nth(1)?;
                functions
                    .split_whitespace()
                    .any(|f| f == QUEUE)
                    .then(|| addr.to_string())
            })
            .collect();
        addrs.sort();
        addrs.dedup();
        Some(addrs)
    }

    /// Waits until the router has its BGP sessions with both nodes up.
    pub fn wait_sessions(&self) {
        for node in [&self.a, &self.b] {
            self.wait_until(
                &format!("the router's BGP session with {} is up", node.name),
                SESSION_DEADLINE,
                || self.router.session_state(node.addr) == "Established",
            );
        }
    }

    /// The next hops of the router's paths to [`PREFIX`] (each once, sorted): the nodes that
    /// announce the VIP.
    pub fn vip_next_hops(&self) -> Vec<String> {
        self.router.next_hops(PREFIX)
    }

    /// Waits, at most `deadline` after `since`, until the router reaches [`PREFIX`] only via
    /// `node`.
    pub fn wait_vip_route_via(&self, node: &Node, since: Instant, deadline: Duration) {
        let left = deadline.saturating_sub(since.elapsed());
        self.wait_until(
            &format!(
                "the router's only next hop for {PREFIX} is {} ({}), within {deadline:?}",
                node.name, node.addr
            ),
            left,
            || self.vip_next_hops() == [node.addr],
        );
    }

    /// Polls `cond` until `deadline`; panics with `what` and both nodes' files otherwise.
    pub fn wait_until(&self, what: &str, deadline: Duration, cond: impl FnMut() -> bool) {
        wait_or_report(what, deadline, cond, || self.report());
    }

    /// Both nodes' workspaces, keepalived output and addresses, for failure messages.
    pub fn report(&self) -> String {
        let mut r = String::new();
        for node in [&self.a, &self.b] {
            let _ = writeln!(r, "################ node {} ################", node.name);
            r.push_str(&node.ws.report());
            let ka = node.ws.read("keepalived.out");
            let _ = writeln!(r, "=== keepalived.out ===\n{}", tail(&ka, 40));
            let addrs = node.ns.try_ip(&["-o", "-4", "addr", "show"]);
            let _ = writeln!(r, "=== addresses ===\n{}", addrs.stdout);
            let _ = writeln!(r, "=== bgpd.conf ===\n{}", node.ws.read("bgpd.conf"));
            r.push_str(&node.frr.report());
        }
        let _ = writeln!(r, "################ router ################");
        r.push_str(&self.router.report());
        let _ = writeln!(
            r,
            "=== Gearman workers on {QUEUE} ===\n{:?}",
            self.workers()
        );
        r
    }
}
