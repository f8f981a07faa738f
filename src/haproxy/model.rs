//! The load-balancer model the HAProxy configuration is rendered from: validated types for every
//! value that comes from a Libra message, and [`Site`], the only way to hand a model to the
//! renderer, whose constructor enforces the rules that span several values.
//!
//! Pure: no I/O. Every error message names the offending value and the reason, because it becomes
//! the job's `hpcs_error`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The longest DNS hostname accepted, in characters (RFC 1035 without the trailing dot).
pub const MAX_HOSTNAME_LEN: usize = 253;
/// The longest DNS label accepted.
pub const MAX_LABEL_LEN: usize = 63;
/// The longest HTTP health-check path accepted.
pub const MAX_PATH_LEN: usize = 1024;
/// The longest node id accepted.
pub const MAX_NODE_ID_LEN: usize = 64;
/// The weights HAProxy accepts for a server.
pub const WEIGHTS: std::ops::RangeInclusive<u16> = 1..=256;
/// The health-check intervals accepted, in seconds (Libra's API limits).
pub const MONITOR_DELAYS: std::ops::RangeInclusive<u32> = 1..=3600;
/// The health-check timeouts accepted, in seconds.
pub const MONITOR_TIMEOUTS: std::ops::RangeInclusive<u32> = 1..=3600;
/// The consecutive check results accepted before a node changes state (Libra's API limits).
pub const MONITOR_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=10;
/// How many characters of an offending value an error message quotes.
const QUOTED_CHARS: usize = 80;

/// A value of the model that is not valid, with the reason. Its display is the `hpcs_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A node address that is neither an IP address nor a DNS hostname.
    #[error("node address `{value}` is not an IP address or hostname: {reason}")]
    Host {
        /// The address as given (quoted, shortened).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP health-check path that cannot be sent or rendered.
    #[error("health monitor path `{value}` is not valid: {reason}")]
    Path {
        /// The path as given (quoted, shortened).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A node id that cannot be used as an HAProxy server name.
    #[error("node id `{value}` is not valid: {reason}")]
    NodeId {
        /// The id as given (quoted, shortened).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
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

/// A node address: an IP address or a DNS hostname (letters, digits, `-` and `.`, labels of 1-63
/// characters that neither start nor end with `-`, at most 253 characters, last label not all
/// digits). Built with [`str::parse`] or from an [`IpAddr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host(HostKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKind {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    /// The IP address, if the host is one (a hostname is resolved by HAProxy when it starts).
    pub fn ip(&self) -> Option<IpAddr> {
        match &self.0 {
            HostKind::Ip(ip) => Some(*ip),
            HostKind::Name(_) => None,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        Host(HostKind::Ip(ip))
    }
}

impl FromStr for Host {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Host(HostKind::Ip(ip)));
        }
        match hostname_problem(s) {
            None => Ok(Host(HostKind::Name(s.to_owned()))),
            Some(reason) => Err(ModelError::Host {
                value: quote(s),
                reason,
            }),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            HostKind::Ip(ip) => ip.fmt(f),
            HostKind::Name(name) => f.write_str(name),
        }
    }
}

/// Why `s` is not an acceptable hostname, or `None` if it is one.
fn hostname_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".into());
    }
    let len = s.chars().count();
    if len > MAX_HOSTNAME_LEN {
        return Some(format!(
            "it has {len} characters, more than {MAX_HOSTNAME_LEN}"
        ));
    }
    if let Some((at, c)) = s
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Some(format!(
            "{} at position {} is not a letter, digit, `-` or `.`",
            shown_char(c),
            at + 1
        ));
    }
    let labels: Vec<&str> = s.split('.').collect();
    if let Some(problem) = labels.iter().find_map(|label| label_problem(label)) {
        return Some(problem);
    }
    let last = labels.last().copied().unwrap_or_default();
    if last.chars().all(|c| c.is_ascii_digit()) {
        return Some(
            "its last label is all digits, so it is neither a valid IPv4 address nor a hostname"
                .into(),
        );
    }
    None
}

/// Why one dot-separated label is not acceptable, or `None`.
fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        Some("it has an empty label (`..`, or a leading or trailing `.`)".into())
    } else if label.len() > MAX_LABEL_LEN {
        Some(format!(
            "label `{}` has {} characters, more than {MAX_LABEL_LEN}",
            quote(label),
            label.len()
        ))
    } else if label.starts_with('-') || label.ends_with('-') {
        Some(format!("label `{label}` starts or ends with `-`"))
    } else {
        None
    }
}

/// An HTTP health-check path: starts with `/`, visible ASCII only (no spaces or control
/// characters), at most 1024 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPath(String);

impl HttpPath {
    /// Validates `path`.
    pub fn new(path: &str) -> Result<Self, ModelError> {
        match path_problem(path) {
            None => Ok(HttpPath(path.to_owned())),
            Some(reason) => Err(ModelError::Path {
                value: quote(path),
                reason,
            }),
        }
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HttpPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why `path` is not an acceptable health-check path, or `None`.
fn path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("it must start with `/`".into());
    }
    let len = path.chars().count();
    if len > MAX_PATH_LEN {
        return Some(format!("it has {len} characters, more than {MAX_PATH_LEN}"));
    }
    path.chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_graphic())
        .map(|(at, c)| {
            format!(
                "{} at position {} is not visible ASCII (no spaces or control characters)",
                shown_char(c),
                at + 1
            )
        })
}

/// Checks a node id from a message, which names the node's HAProxy server and persistence
/// cookie: 1-64 characters from `A-Z a-z 0-9 _ . -`. [`Site::new`] checks every id again.
pub fn validate_node_id(id: &str) -> Result<(), ModelError> {
    match node_id_problem(id) {
        None => Ok(()),
        Some(reason) => Err(ModelError::NodeId {
            value: quote(id),
            reason,
        }),
    }
}

/// Why `id` is not an acceptable node id, or `None`.
fn node_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("it is empty".into());
    }
    let len = id.chars().count();
    if len > MAX_NODE_ID_LEN {
        return Some(format!(
            "it has {len} characters, more than {MAX_NODE_ID_LEN}"
        ));
    }
    id.chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .map(|(at, c)| {
            format!(
                "{} at position {} is not a letter, digit, `_`, `.` or `-`",
                shown_char(c),
                at + 1
            )
        })
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
    pub fn new(bind: IpAddr, mut load_balancers: Vec<LoadBalancer>) -> Result<Site, ModelError> {
        if !(1..=2).contains(&load_balancers.len()) {
            return Err(ModelError::LoadBalancerCount(load_balancers.len()));
        }
        load_balancers.sort_by_key(|lb| lb.protocol);
        if let [a, b] = load_balancers.as_slice() {
            if a.protocol == b.protocol {
                return Err(ModelError::DuplicateProtocol(a.protocol));
            }
            if a.port == b.port {
                return Err(ModelError::DuplicatePort(a.port));
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
}

fn check_load_balancer(lb: &LoadBalancer) -> Result<(), ModelError> {
    if lb.port == 0 {
        return Err(ModelError::ZeroPort(lb.protocol));
    }
    if lb.nodes.is_empty() {
        return Err(ModelError::NoNodes(lb.protocol));
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
    let id_problem = node.id.as_deref().and_then(|id| {
        node_id_problem(id).map(|reason| format!("node id `{}` is not valid: {reason}", quote(id)))
    });
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

fn node_error(protocol: Protocol, index: usize, node: &Node, reason: String) -> ModelError {
    ModelError::Node {
        protocol,
        number: index + 1,
        node: format!("{}:{}", node.address, node.port),
        reason,
    }
}

/// Server names must be unique: two nodes with one id, or an id equal to another node's
/// generated name, would make two HAProxy servers with one name.
fn check_server_names(lb: &LoadBalancer) -> Result<(), ModelError> {
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

fn check_monitor(protocol: Protocol, monitor: &Monitor) -> Result<(), ModelError> {
    let problem = out_of_range("delay", monitor.delay_s, &MONITOR_DELAYS, "s")
        .or_else(|| out_of_range("timeout", monitor.timeout_s, &MONITOR_TIMEOUTS, "s"))
        .or_else(|| out_of_range("attempts", monitor.attempts, &MONITOR_ATTEMPTS, ""))
        .or_else(|| {
            (monitor.kind == MonitorKind::Connect && monitor.path.is_some())
                .then(|| "a CONNECT monitor takes no path".to_owned())
        });
    match problem {
        Some(reason) => Err(ModelError::Monitor { protocol, reason }),
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

/// One offending character as an error message names it: `a space`, or the character quoted.
fn shown_char(c: char) -> String {
    if c == ' ' {
        "a space".to_owned()
    } else {
        format!("`{}`", c.escape_debug())
    }
}

/// An offending value as an error message shows it: control characters escaped, at most
/// [`QUOTED_CHARS`] characters.
fn quote(value: &str) -> String {
    let mut shown: String = value
        .chars()
        .take(QUOTED_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > QUOTED_CHARS {
        shown.push('…');
    }
    shown
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
