//! The load-balancer model the HAProxy configuration is rendered from, whichever front door
//! filled it (the Libra worker's UPDATE jobs, or the admin API's objects): validated types for
//! every value that comes from outside, and [`Balancer`], the only way to hand a model to the
//! renderer, whose constructor enforces the rules that span several values (names unique,
//! references resolved, modes matching, binds distinct).
//!
//! Pure: no I/O. Every error message names the offending value and the reason, because it becomes
//! a Libra job's `hpcs_error` or an API error's `reason`. Nothing can reach the rendered file as
//! free text: names are restricted to `A-Z a-z 0-9 _ . -`, addresses are parsed, paths are
//! visible ASCII and quoted by the renderer.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// The longest DNS hostname accepted, in characters (RFC 1035 without the trailing dot).
pub const MAX_HOSTNAME_LEN: usize = 253;
/// The longest DNS label accepted.
pub const MAX_LABEL_LEN: usize = 63;
/// The longest HTTP health-check path accepted.
pub const MAX_PATH_LEN: usize = 1024;
/// The longest name accepted (node ids, object ids, section and server names).
pub const MAX_NAME_LEN: usize = 64;
/// The weights HAProxy accepts for a server (0 takes no new traffic).
pub const WEIGHTS: std::ops::RangeInclusive<u16> = 0..=256;
/// The health-check intervals accepted, in seconds.
pub const CHECK_INTERVALS: std::ops::RangeInclusive<u32> = 1..=3600;
/// The health-check timeouts accepted, in seconds.
pub const CHECK_TIMEOUTS: std::ops::RangeInclusive<u32> = 1..=3600;
/// The consecutive check results accepted before a server changes state.
pub const CHECK_COUNTS: std::ops::RangeInclusive<u32> = 1..=10;
/// The connection limits accepted for a frontend.
pub const MAX_CONNECTIONS: std::ops::RangeInclusive<u32> = 1..=1_000_000;
/// How many characters of an offending value an error message quotes.
const QUOTED_CHARS: usize = 80;

/// A value of the model that is not valid, with the reason.
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
    /// A name (an id, a section or server name) that HAProxy could not carry safely.
    #[error("{what} `{value}` is not valid: {reason}")]
    Name {
        /// What the name names (`node id`, `pool id`, ...).
        what: &'static str,
        /// The name as given (quoted, shortened).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value out of its range.
    #[error("{what} {value} is out of range {range}")]
    Range {
        /// What the value is (`listener ... port`, `member ... weight`, ...).
        what: String,
        /// The value.
        value: String,
        /// The range, as `1-65535`.
        range: String,
    },
    /// Two objects of one kind with the same name, or a frontend and a backend.
    #[error("{what} `{name}` is used twice")]
    Duplicate {
        /// What kind of name.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A reference to something that does not exist.
    #[error("{from} refers to {what} `{name}`, which does not exist")]
    Missing {
        /// Who refers.
        from: String,
        /// What kind of thing it refers to.
        what: &'static str,
        /// The name it refers to.
        name: String,
    },
    /// A combination HAProxy refuses or that cannot work.
    #[error("{0}")]
    Conflict(String),
}

/// A name HAProxy sections, servers, peers and cookies can carry: 1-64 characters from
/// `A-Z a-z 0-9 _ . -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    /// Validates `value` as a name of `what` (for the message: `pool id`, `node id`, ...).
    pub fn new(what: &'static str, value: &str) -> Result<Name, ModelError> {
        match name_problem(value) {
            None => Ok(Name(value.to_owned())),
            Some(reason) => Err(ModelError::Name {
                what,
                value: quote(value),
                reason,
            }),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This name with `prefix` in front (`backend-` + a pool id), as long as the result is
    /// still a name.
    pub fn prefixed(&self, what: &'static str, prefix: &str) -> Result<Name, ModelError> {
        Name::new(what, &format!("{prefix}{}", self.0))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Name::new("name", &text).map_err(serde::de::Error::custom)
    }
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

/// Why `id` is not an acceptable name, or `None`.
fn name_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("it is empty".into());
    }
    let len = id.chars().count();
    if len > MAX_NAME_LEN {
        return Some(format!("it has {len} characters, more than {MAX_NAME_LEN}"));
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

/// How HAProxy treats a proxy's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// HAProxy parses HTTP (forwarded-for, cookie persistence, HTTP checks).
    Http,
    /// HAProxy forwards bytes.
    Tcp,
}

impl Mode {
    /// The word in haproxy.cfg: `http` or `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        }
    }
}

/// How a pool picks a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Each server in turn, by weight (`roundrobin`).
    RoundRobin,
    /// The server with the fewest connections (`leastconn`).
    LeastConnections,
    /// A hash of the client's address (`source`).
    SourceIp,
}

/// The address family of a source-address stick table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickKey {
    /// `type ip`.
    Ipv4,
    /// `type ipv6` (IPv4 clients are stored mapped).
    Ipv6,
}

/// A stick table's size: a count with an optional `k`, `m` or `g` suffix (`200k`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize(String);

impl TableSize {
    /// Validates `value`: 1-10 digits, not 0, then at most one of `k`, `m`, `g`.
    pub fn new(value: &str) -> Result<TableSize, ModelError> {
        let digits = value.trim_end_matches(['k', 'm', 'g']);
        let suffix = value.len() - digits.len();
        let number_ok = !digits.is_empty()
            && digits.len() <= 10
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.bytes().any(|b| b != b'0');
        if number_ok && suffix <= 1 {
            Ok(TableSize(value.to_owned()))
        } else {
            Err(ModelError::Conflict(format!(
                "stick table size `{}` is not a count like 200k (digits, then k, m or g)",
                quote(value)
            )))
        }
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long an idle stick table entry is kept: a count and a unit (`30m`, `1d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry(String);

impl Expiry {
    /// Validates `value`: 1-9 digits, not 0, then one of `ms`, `s`, `m`, `h`, `d`.
    pub fn new(value: &str) -> Result<Expiry, ModelError> {
        let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &value[digits.len()..];
        let number_ok = !digits.is_empty()
            && digits.len() <= 9
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.bytes().any(|b| b != b'0');
        if number_ok && ["ms", "s", "m", "h", "d"].contains(&unit) {
            Ok(Expiry(value.to_owned()))
        } else {
            Err(ModelError::Conflict(format!(
                "stick table expiry `{}` is not a time like 30m (digits, then ms, s, m, h or d)",
                quote(value)
            )))
        }
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a pool keeps a client on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// A stick table of client addresses, shared with the peers when `peers` is true.
    SourceIp {
        /// The table's address family.
        key: StickKey,
        /// How many entries it holds.
        size: TableSize,
        /// How long an idle entry stays.
        expire: Expiry,
        /// Whether the table is synchronized through the `peers` section.
        peers: bool,
    },
    /// HAProxy inserts a cookie naming the server (`insert indirect nocache`).
    HttpCookie {
        /// The cookie's name.
        cookie: Name,
    },
    /// The application's own session cookie is learnt from responses and matched in requests.
    AppCookie {
        /// The application's cookie.
        cookie: Name,
    },
}

/// The HTTP status codes a check expects: one, or several (rendered as a regular expression).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedCodes(Vec<u16>);

impl ExpectedCodes {
    /// `200`, `200,202` or `200-204` (Octavia's and KINX's `expected_codes`): codes 100-599, at
    /// most 100 of them.
    pub fn parse(value: &str) -> Result<ExpectedCodes, ModelError> {
        let bad = |why: &str| {
            ModelError::Conflict(format!(
                "expected_codes `{}` is not valid: {why} (give e.g. 200, 200,202 or 200-204)",
                quote(value)
            ))
        };
        let code = |s: &str| -> Result<u16, ModelError> {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| bad("each code is a number from 100 to 599"))
        };
        let mut codes = BTreeSet::new();
        for part in value.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (code(from)?, code(to)?);
                    if from > to {
                        return Err(bad("a range goes up"));
                    }
                    codes.extend(from..=to);
                }
                None => {
                    codes.insert(code(part)?);
                }
            }
            if codes.len() > 100 {
                return Err(bad("more than 100 codes"));
            }
        }
        Ok(ExpectedCodes(codes.into_iter().collect()))
    }

    /// One code.
    pub fn one(code: u16) -> ExpectedCodes {
        ExpectedCodes(vec![code])
    }

    /// The codes, in order, without repeats.
    pub fn codes(&self) -> &[u16] {
        &self.0
    }
}

/// The HTTP methods a health check may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// `PATCH`.
    Patch,
    /// `TRACE`.
    Trace,
}

impl HttpMethod {
    /// The method as HTTP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Trace => "TRACE",
        }
    }
}

impl FromStr for HttpMethod {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = [
            HttpMethod::Get,
            HttpMethod::Head,
            HttpMethod::Post,
            HttpMethod::Put,
            HttpMethod::Delete,
            HttpMethod::Options,
            HttpMethod::Patch,
            HttpMethod::Trace,
        ];
        all.into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ModelError::Conflict(format!(
                    "http_method `{}` is not one of GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE",
                    quote(s)
                ))
            })
    }
}

/// What an HTTP(S) check sends and expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// The request's method.
    pub method: HttpMethod,
    /// The request's path.
    pub path: HttpPath,
    /// The statuses that count as up.
    pub expect: ExpectedCodes,
}

/// What a health check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A TCP connect.
    Tcp,
    /// An HTTP request.
    Http(HttpCheck),
    /// An HTTP request over TLS (the server's certificate is not verified).
    Https(HttpCheck),
    /// An ICMP echo, through HAProxy's external check and the ping script keepserver writes.
    Ping,
}

/// A pool's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    /// What a check does.
    pub kind: CheckKind,
    /// Seconds between checks (`inter`).
    pub interval_s: u32,
    /// Seconds a check may take (`timeout check`).
    pub timeout_s: u32,
    /// Consecutive successes before a down server is up (`rise`).
    pub rise: u32,
    /// Consecutive failures before an up server is down (`fall`).
    pub fall: u32,
}

/// One server of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its server name (and persistence cookie value).
    pub name: Name,
    /// Where it listens.
    pub address: Host,
    /// Its port.
    pub port: u16,
    /// Its weight (0: no new connections).
    pub weight: u16,
    /// Whether it takes traffic (else `disabled`: maintenance).
    pub enabled: bool,
    /// Takes traffic only when no other server is up.
    pub backup: bool,
}

/// A backend: servers, how they are picked, checked and stuck to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The backend's name.
    pub name: Name,
    /// Whether it serves (else `disabled`).
    pub enabled: bool,
    /// HTTP or TCP.
    pub mode: Mode,
    /// How a server is picked.
    pub balance: Balance,
    /// How a client stays on one server, if it does.
    pub persistence: Option<Persistence>,
    /// The health check, if any (without one servers are taken to be up).
    pub monitor: Option<Monitor>,
    /// The servers.
    pub members: Vec<Member>,
}

/// TLS terminated at a frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The PEM files (certificate, chain, key) to offer: the first when the client sends no
    /// name or an unknown one, the others by SNI. Paths from the operator's configuration.
    pub certificates: Vec<PathBuf>,
}

/// A frontend: where clients connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The frontend's name.
    pub name: Name,
    /// Whether it accepts connections (else `disabled`).
    pub enabled: bool,
    /// HTTP or TCP (TLS-terminated listeners are HTTP).
    pub mode: Mode,
    /// The address it binds.
    pub address: IpAddr,
    /// The port it binds.
    pub port: u16,
    /// The most concurrent connections it takes (`maxconn`), if limited.
    pub max_connections: Option<u32>,
    /// TLS termination, if any.
    pub tls: Option<Tls>,
    /// The pool it sends traffic to, if any (without one it answers nothing).
    pub default_pool: Option<Name>,
}

/// One peer of the `peers` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its name (its host name: the local peer must be named as HAProxy's `localpeer`).
    pub name: Name,
    /// Its address.
    pub address: IpAddr,
    /// Its port.
    pub port: u16,
}

/// The `peers` section that synchronizes stick tables between the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    /// The section's name.
    pub section: Name,
    /// This node's name among the peers.
    pub local: Name,
    /// Every peer, this node included.
    pub peers: Vec<Peer>,
}

/// Everything one HAProxy serves. Only [`Balancer::new`] builds one, so a `Balancer` is always
/// valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balancer {
    listeners: Vec<Listener>,
    pools: Vec<Pool>,
    peers: Option<Peers>,
}

impl Balancer {
    /// Checks the rules that span values: listener and pool names unique (frontends and
    /// backends share one namespace), every default pool present and of the listener's mode,
    /// no two listeners on one address and port, ports not 0, weights and checks in range,
    /// server names unique in a pool, TLS only on HTTP listeners, and peers present (with the
    /// local one among them) when a stick table is synchronized.
    pub fn new(
        listeners: Vec<Listener>,
        pools: Vec<Pool>,
        peers: Option<Peers>,
    ) -> Result<Balancer, ModelError> {
        let mut names = BTreeSet::new();
        for name in listeners
            .iter()
            .map(|l| &l.name)
            .chain(pools.iter().map(|p| &p.name))
        {
            if !names.insert(name) {
                return Err(ModelError::Duplicate {
                    what: "frontend or backend name",
                    name: name.to_string(),
                });
            }
        }
        for (i, listener) in listeners.iter().enumerate() {
            check_listener(listener, &pools)?;
            if let Some(other) = listeners[..i].iter().find(|o| binds_overlap(o, listener)) {
                return Err(ModelError::Conflict(format!(
                    "listeners `{}` and `{}` both bind port {} on {}",
                    other.name, listener.name, listener.port, listener.address
                )));
            }
        }
        for pool in &pools {
            check_pool(pool, peers.as_ref())?;
        }
        if let Some(peers) = &peers {
            check_peers(peers)?;
        }
        Ok(Balancer {
            listeners,
            pools,
            peers,
        })
    }

    /// The frontends, in order.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The backends, in order.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The `peers` section, if any.
    pub fn peers(&self) -> Option<&Peers> {
        self.peers.as_ref()
    }

    /// Whether any check is an ICMP echo (HAProxy needs external checks enabled for it).
    pub fn pings(&self) -> bool {
        self.pools.iter().any(|p| {
            p.monitor
                .as_ref()
                .is_some_and(|m| m.kind == CheckKind::Ping)
        })
    }
}

fn range<T: fmt::Display + PartialOrd>(
    what: impl FnOnce() -> String,
    value: T,
    allowed: &std::ops::RangeInclusive<T>,
) -> Result<(), ModelError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(ModelError::Range {
        what: what(),
        value: value.to_string(),
        range: format!("{}-{}", allowed.start(), allowed.end()),
    })
}

fn check_listener(listener: &Listener, pools: &[Pool]) -> Result<(), ModelError> {
    let named = || format!("listener `{}`", listener.name);
    range(
        || format!("{} port", named()),
        listener.port,
        &(1..=u16::MAX),
    )?;
    if let Some(limit) = listener.max_connections {
        range(
            || format!("{} connection_limit", named()),
            limit,
            &MAX_CONNECTIONS,
        )?;
    }
    if listener.tls.is_some() && listener.mode != Mode::Http {
        return Err(ModelError::Conflict(format!(
            "{} terminates TLS, so it must be HTTP",
            named()
        )));
    }
    if listener
        .tls
        .as_ref()
        .is_some_and(|t| t.certificates.is_empty())
    {
        return Err(ModelError::Conflict(format!(
            "{} terminates TLS without a certificate",
            named()
        )));
    }
    let Some(pool_name) = &listener.default_pool else {
        return Ok(());
    };
    let pool = pools
        .iter()
        .find(|p| &p.name == pool_name)
        .ok_or_else(|| ModelError::Missing {
            from: named(),
            what: "pool",
            name: pool_name.to_string(),
        })?;
    if pool.mode != listener.mode {
        return Err(ModelError::Conflict(format!(
            "{} is {} but its pool `{}` is {}: they must match",
            named(),
            listener.mode.as_str().to_uppercase(),
            pool.name,
            pool.mode.as_str().to_uppercase()
        )));
    }
    Ok(())
}

/// Whether two listeners would bind the same port on an address both cover.
fn binds_overlap(a: &Listener, b: &Listener) -> bool {
    a.port == b.port
        && (a.address == b.address || a.address.is_unspecified() || b.address.is_unspecified())
}

fn check_pool(pool: &Pool, peers: Option<&Peers>) -> Result<(), ModelError> {
    let named = || format!("pool `{}`", pool.name);
    let mut servers = BTreeSet::new();
    for member in &pool.members {
        let member_named = || format!("{} member `{}`", named(), member.name);
        if !servers.insert(&member.name) {
            return Err(ModelError::Duplicate {
                what: "server name",
                name: format!("{}/{}", pool.name, member.name),
            });
        }
        range(
            || format!("{} port", member_named()),
            member.port,
            &(1..=u16::MAX),
        )?;
        range(
            || format!("{} weight", member_named()),
            member.weight,
            &WEIGHTS,
        )?;
    }
    match &pool.persistence {
        Some(Persistence::HttpCookie { .. } | Persistence::AppCookie { .. })
            if pool.mode != Mode::Http =>
        {
            return Err(ModelError::Conflict(format!(
                "{} is TCP: cookie persistence needs HTTP",
                named()
            )));
        }
        Some(Persistence::SourceIp { peers: true, .. }) if peers.is_none() => {
            return Err(ModelError::Conflict(format!(
                "{} shares its stick table with peers, but there are none",
                named()
            )));
        }
        _ => {}
    }
    if let Some(m) = &pool.monitor {
        let what = |field: &str| format!("{} health monitor {field}", named());
        range(|| what("delay"), m.interval_s, &CHECK_INTERVALS)?;
        range(|| what("timeout"), m.timeout_s, &CHECK_TIMEOUTS)?;
        range(|| what("rise"), m.rise, &CHECK_COUNTS)?;
        range(|| what("fall"), m.fall, &CHECK_COUNTS)?;
        if matches!(m.kind, CheckKind::Http(_) | CheckKind::Https(_)) && pool.mode != Mode::Http {
            return Err(ModelError::Conflict(format!(
                "{} is TCP: an HTTP health monitor needs an HTTP pool",
                named()
            )));
        }
    }
    Ok(())
}

fn check_peers(peers: &Peers) -> Result<(), ModelError> {
    let mut names = BTreeSet::new();
    for peer in &peers.peers {
        if !names.insert(&peer.name) {
            return Err(ModelError::Duplicate {
                what: "peer name",
                name: peer.name.to_string(),
            });
        }
        range(
            || format!("peer `{}` port", peer.name),
            peer.port,
            &(1..=u16::MAX),
        )?;
    }
    if !names.contains(&peers.local) {
        return Err(ModelError::Missing {
            from: "the peers section".to_string(),
            what: "this node's peer",
            name: peers.local.to_string(),
        });
    }
    Ok(())
}

/// One offending character as an error message names it: `a space`, or the character quoted.
pub fn shown_char(c: char) -> String {
    if c == ' ' {
        "a space".to_owned()
    } else {
        format!("`{}`", c.escape_debug())
    }
}

/// An offending value as an error message shows it: control characters escaped, at most
/// [`QUOTED_CHARS`] characters.
pub fn quote(value: &str) -> String {
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

#[cfg(test)]
mod tests;
