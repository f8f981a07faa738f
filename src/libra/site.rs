//! What a Libra UPDATE describes, with Libra's own rules: one HTTP and/or one TCP load balancer
//! per device, on distinct ports of one bind address, each with its nodes and an optional
//! monitor. [`Site`] is checked by its constructor and turned into the shared HAProxy model
//! ([`Site::balancer`]) that the admin API feeds too: frontends `http-in`/`tcp-in`, backends
//! `http-servers`/`tcp-servers`, HTTP with forwarded-for and an inserted `SERVERID` cookie, TCP
//! with a source-address stick table (Libra's real worker did the same).
//!
//! Pure: no I/O. Every error message names the offending value and the reason, because it becomes
//! the job's `hpcs_error`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use crate::haproxy::model::{
    Balance, Balancer, CheckKind, ExpectedCodes, Expiry, Host, HttpCheck, HttpMethod, HttpPath,
    Listener, Member, Mode, ModelError, Monitor as Check, Name, Persistence, Pool, StickKey,
    TableSize,
};

/// The weights Libra accepts for a node.
pub const WEIGHTS: std::ops::RangeInclusive<u16> = 1..=256;
/// The health-check intervals accepted, in seconds (Libra's API limits).
pub const MONITOR_DELAYS: std::ops::RangeInclusive<u32> = 1..=3600;
/// The health-check timeouts accepted, in seconds.
pub const MONITOR_TIMEOUTS: std::ops::RangeInclusive<u32> = 1..=3600;
/// The consecutive check results accepted before a node changes state (Libra's API limits).
pub const MONITOR_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=10;
/// The HTTP persistence cookie (Libra's).
pub const COOKIE: &str = "SERVERID";
/// The TCP load balancer's source-address stick table: entries and idle expiry.
pub const STICK_SIZE: &str = "200k";
/// See [`STICK_SIZE`].
pub const STICK_EXPIRE: &str = "30m";

/// What is wrong with an UPDATE's load balancers. Its display is the `hpcs_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    /// A value that is not valid.
    #[error(transparent)]
    Value(#[from] ModelError),
    /// Not one or two load balancers.
    #[error("a device serves one or two load balancers (one HTTP, one TCP), got {0}")]
    LoadBalancerCount(usize),
    /// Two load balancers with the same protocol.
    #[error("two {0} load balancers: a device serves at most one HTTP and one TCP load balancer")]
    DuplicateProtocol(Protocol),
    /// Two load balancers on the same port.
    #[error("the HTTP and TCP load balancers both use port {0}")]
    DuplicatePort(u16),
    /// A load balancer on port 0.
    #[error("{0} load balancer: port 0 is not a valid port (1-65535)")]
    ZeroPort(Protocol),
    /// A load balancer without nodes.
    #[error("{0} load balancer has no nodes")]
    NoNodes(Protocol),
    /// Something wrong with one node of a load balancer.
    #[error("{protocol} load balancer, node {number} ({node}): {reason}")]
    Node {
        /// The load balancer's protocol.
        protocol: Protocol,
        /// The node's position in the message, from 1.
        number: usize,
        /// The node's address and port, or its id.
        node: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Something wrong with a load balancer's health monitor.
    #[error("{protocol} load balancer health monitor: {reason}")]
    Monitor {
        /// The load balancer's protocol.
        protocol: Protocol,
        /// What is wrong with it.
        reason: String,
    },
}

/// The protocol of a load balancer; a device has at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// HTTP: HAProxy parses requests (forwarded-for, cookie persistence).
    Http,
    /// TCP: HAProxy forwards bytes (source-IP persistence).
    Tcp,
}

impl Protocol {
    /// The lower-case name used in HAProxy proxy names: `http` or `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Tcp => "tcp",
        }
    }

    /// The name of this load balancer's frontend: `http-in` or `tcp-in`.
    pub fn frontend(self) -> String {
        format!("{}-in", self.as_str())
    }

    /// The name of this load balancer's backend: `http-servers` or `tcp-servers`.
    pub fn backend(self) -> String {
        format!("{}-servers", self.as_str())
    }

    fn mode(self) -> Mode {
        match self {
            Protocol::Http => Mode::Http,
            Protocol::Tcp => Mode::Tcp,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Http => "HTTP",
            Protocol::Tcp => "TCP",
        })
    }
}

/// How a load balancer picks a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Each node in turn, by weight.
    RoundRobin,
    /// The node with the fewest connections.
    LeastConnections,
}

/// Whether a node takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The node takes traffic.
    Enabled,
    /// The node is configured but takes no traffic (HAProxy maintenance).
    Disabled,
}

/// Checks a node id from a message, which names the node's HAProxy server and persistence
/// cookie: 1-64 characters from `A-Z a-z 0-9 _ . -`. [`Site::new`] checks every id again.
pub fn validate_node_id(id: &str) -> Result<(), ModelError> {
    Name::new("node id", id).map(drop)
}

/// One backend node of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's id from the message, if any; names the HAProxy server (else `node-N`).
    /// Checked by [`validate_node_id`] and again by [`Site::new`].
    pub id: Option<String>,
    /// Where the node listens.
    pub address: Host,
    /// The node's port, 1-65535 (checked by [`Site::new`]).
    pub port: u16,
    /// The node's weight, 1-256 (checked by [`Site::new`]).
    pub weight: u16,
    /// Takes traffic only when no non-backup node is up.
    pub backup: bool,
    /// Whether the node takes traffic.
    pub condition: Condition,
}

/// What a health monitor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorKind {
    /// A TCP connect.
    Connect,
    /// An HTTP `GET` of the monitor's path, expecting status 200.
    Http,
}

/// A load balancer's health monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    /// What a check does.
    pub kind: MonitorKind,
    /// Seconds between checks, 1-3600 (checked by [`Site::new`]).
    pub delay_s: u32,
    /// Seconds a check may take, 1-3600 (checked by [`Site::new`]).
    pub timeout_s: u32,
    /// Consecutive results before a node goes up or down, 1-10 (checked by [`Site::new`]).
    pub attempts: u32,
    /// The path an HTTP monitor gets (`/` when absent); a CONNECT monitor has none.
    pub path: Option<HttpPath>,
}

/// One load balancer: a frontend on the site's address and a pool of nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    /// HTTP or TCP.
    pub protocol: Protocol,
    /// The port the load balancer listens on, 1-65535 (checked by [`Site::new`]).
    pub port: u16,
    /// How a node is picked.
    pub algorithm: Algorithm,
    /// The nodes; at least one (checked by [`Site::new`]).
    pub nodes: Vec<Node>,
    /// The health monitor, if any; without one nodes are not checked.
    pub monitor: Option<Monitor>,
}

impl LoadBalancer {
    /// The HAProxy server name of each node, in order: its id, or `node-N` (N from 1).
    pub fn server_names(&self) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| match &node.id {
                Some(id) => id.clone(),
                None => generated_name(i),
            })
            .collect()
    }
}

/// The generated server name of the node at `index`.
fn generated_name(index: usize) -> String {
    format!("node-{}", index + 1)
}

/// What the worker serves: one HTTP and/or one TCP load balancer, on distinct ports of one bind
/// address. Only [`Site::new`] builds one, so a `Site` is always valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    bind: IpAddr,
    load_balancers: Vec<LoadBalancer>,
}

impl Site {
    /// Checks Libra's rules (one or two load balancers, at most one per protocol, distinct
    /// ports) and every load balancer's ports, nodes, weights, server names and monitor. The load
    /// balancers are kept in protocol order (HTTP first), so the rendered file does not depend on
    /// the message's order.
    pub fn new(bind: IpAddr, mut load_balancers: Vec<LoadBalancer>) -> Result<Site, SiteError> {
        if !(1..=2).contains(&load_balancers.len()) {
            return Err(SiteError::LoadBalancerCount(load_balancers.len()));
        }
        load_balancers.sort_by_key(|lb| lb.protocol);
        if let [a, b] = load_balancers.as_slice() {
            if a.protocol == b.protocol {
                return Err(SiteError::DuplicateProtocol(a.protocol));
            }
            if a.port == b.port {
                return Err(SiteError::DuplicatePort(a.port));
            }
        }
        load_balancers.iter().try_for_each(check_load_balancer)?;
        Ok(Site {
            bind,
            load_balancers,
        })
    }

    /// The address every load balancer listens on.
    pub fn bind(&self) -> IpAddr {
        self.bind
    }

    /// The load balancers, HTTP first.
    pub fn load_balancers(&self) -> &[LoadBalancer] {
        &self.load_balancers
    }

    /// The shared HAProxy model of this site (see the module documentation).
    pub fn balancer(&self) -> Balancer {
        let (listeners, pools) = self
            .load_balancers
            .iter()
            .map(|lb| (listener(self.bind, lb), pool(self.bind, lb)))
            .unzip();
        // Site::new checked everything Balancer::new checks, more strictly.
        Balancer::new(listeners, pools, None)
            .unwrap_or_else(|e| unreachable!("a valid Libra site is a valid balancer: {e}"))
    }
}

/// A name Libra makes itself (`http-in`, `node-3`), or a node id Site::new checked.
fn name(value: &str) -> Name {
    Name::new("name", value).unwrap_or_else(|e| unreachable!("{e}"))
}

fn listener(bind: IpAddr, lb: &LoadBalancer) -> Listener {
    Listener {
        name: name(&lb.protocol.frontend()),
        enabled: true,
        mode: lb.protocol.mode(),
        address: bind,
        port: lb.port,
        max_connections: None,
        tls: None,
        default_pool: Some(name(&lb.protocol.backend())),
    }
}

fn pool(bind: IpAddr, lb: &LoadBalancer) -> Pool {
    let persistence = match lb.protocol {
        Protocol::Http => Persistence::HttpCookie {
            cookie: name(COOKIE),
        },
        Protocol::Tcp => Persistence::SourceIp {
            key: if bind.is_ipv6() {
                StickKey::Ipv6
            } else {
                StickKey::Ipv4
            },
            size: TableSize::new(STICK_SIZE).unwrap_or_else(|e| unreachable!("{e}")),
            expire: Expiry::new(STICK_EXPIRE).unwrap_or_else(|e| unreachable!("{e}")),
            peers: false,
        },
    };
    let members = lb
        .server_names()
        .iter()
        .zip(&lb.nodes)
        .map(|(server, node)| Member {
            name: name(server),
            address: node.address.clone(),
            port: node.port,
            weight: node.weight,
            enabled: node.condition == Condition::Enabled,
            backup: node.backup,
        })
        .collect();
    Pool {
        name: name(&lb.protocol.backend()),
        enabled: true,
        mode: lb.protocol.mode(),
        balance: match lb.algorithm {
            Algorithm::RoundRobin => Balance::RoundRobin,
            Algorithm::LeastConnections => Balance::LeastConnections,
        },
        persistence: Some(persistence),
        monitor: lb.monitor.as_ref().map(check),
        members,
    }
}

fn check(monitor: &Monitor) -> Check {
    let kind = match monitor.kind {
        MonitorKind::Connect => CheckKind::Tcp,
        MonitorKind::Http => CheckKind::Http(HttpCheck {
            method: HttpMethod::Get,
            path: monitor
                .path
                .clone()
                .unwrap_or_else(|| HttpPath::new("/").unwrap_or_else(|e| unreachable!("{e}"))),
            expect: ExpectedCodes::one(200),
        }),
    };
    Check {
        kind,
        interval_s: monitor.delay_s,
        timeout_s: monitor.timeout_s,
        rise: monitor.attempts,
        fall: monitor.attempts,
    }
}

fn check_load_balancer(lb: &LoadBalancer) -> Result<(), SiteError> {
    if lb.port == 0 {
        return Err(SiteError::ZeroPort(lb.protocol));
    }
    if lb.nodes.is_empty() {
        return Err(SiteError::NoNodes(lb.protocol));
    }
    for (i, node) in lb.nodes.iter().enumerate() {
        if let Some(reason) = node_problem(node) {
            return Err(node_error(lb.protocol, i, node, reason));
        }
    }
    check_server_names(lb)?;
    match &lb.monitor {
        Some(monitor) => check_monitor(lb.protocol, monitor),
        None => Ok(()),
    }
}

/// Why a node's port or weight is not acceptable, or `None`.
fn node_problem(node: &Node) -> Option<String> {
    let id_problem = node
        .id
        .as_deref()
        .and_then(|id| validate_node_id(id).err().map(|e| e.to_string()));
    if id_problem.is_some() {
        id_problem
    } else if node.port == 0 {
        Some("port 0 is not a valid port (1-65535)".into())
    } else if !WEIGHTS.contains(&node.weight) {
        Some(format!(
            "weight {} is out of range {}-{}",
            node.weight,
            WEIGHTS.start(),
            WEIGHTS.end()
        ))
    } else {
        None
    }
}

fn node_error(protocol: Protocol, index: usize, node: &Node, reason: String) -> SiteError {
    SiteError::Node {
        protocol,
        number: index + 1,
        node: format!("{}:{}", node.address, node.port),
        reason,
    }
}

/// Server names must be unique: two nodes with one id, or an id equal to another node's
/// generated name, would make two HAProxy servers with one name.
fn check_server_names(lb: &LoadBalancer) -> Result<(), SiteError> {
    let mut seen = BTreeSet::new();
    for (i, name) in lb.server_names().into_iter().enumerate() {
        if seen.contains(&name) {
            let reason = format!(
                "server name `{name}` is already used by another node (ids must be unique and \
                 must not be the `node-N` name of another node without an id)"
            );
            return Err(node_error(lb.protocol, i, &lb.nodes[i], reason));
        }
        seen.insert(name);
    }
    Ok(())
}

fn check_monitor(protocol: Protocol, monitor: &Monitor) -> Result<(), SiteError> {
    let problem = out_of_range("delay", monitor.delay_s, &MONITOR_DELAYS, "s")
        .or_else(|| out_of_range("timeout", monitor.timeout_s, &MONITOR_TIMEOUTS, "s"))
        .or_else(|| out_of_range("attempts", monitor.attempts, &MONITOR_ATTEMPTS, ""))
        .or_else(|| {
            (monitor.kind == MonitorKind::Connect && monitor.path.is_some())
                .then(|| "a CONNECT monitor takes no path".to_owned())
        });
    match problem {
        Some(reason) => Err(SiteError::Monitor { protocol, reason }),
        None => Ok(()),
    }
}

fn out_of_range(
    what: &str,
    value: u32,
    range: &std::ops::RangeInclusive<u32>,
    unit: &str,
) -> Option<String> {
    (!range.contains(&value)).then(|| {
        format!(
            "{what} {value}{unit} is out of range {}-{}{unit}",
            range.start(),
            range.end()
        )
    })
}

/// An enabled node of weight 1 at `address:port`: the unit tests' fixture.
#[cfg(test)]
pub(crate) fn node_for_tests(address: &str, port: u16) -> Node {
    Node {
        id: None,
        address: address.parse().expect("valid host"),
        port,
        weight: 1,
        backup: false,
        condition: Condition::Enabled,
    }
}

#[cfg(test)]
mod tests;
