//! The admin API's objects, with the KINX agent's field names: load balancers, listeners, pools
//! (holding their members), health monitors and peers, as stored and as answered; and how a
//! request body becomes one (create: defaults for what is left out; update: only the fields
//! given change). Every value is typed here, once: ids and names are restricted, ports and
//! addresses parsed, choices checked. References between objects are checked by the store.
//!
//! A member request may also carry the KINX agent's denormalized pool fields (`type`,
//! `cookie_name`: the pool's session persistence; `healthmonitor`: the pool's monitor); they
//! change the pool, as they changed the rendered backend in KINX.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::fields::{Fields, address, boolean, choice, id, ids, integer, port, string, text};
use crate::haproxy::model::{CHECK_COUNTS, CHECK_INTERVALS, CHECK_TIMEOUTS, Name};

/// The load balancer: a tenant's group of listeners and pools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    /// Its id.
    pub id: Name,
    /// Its name (free text).
    pub name: String,
    /// Its description (free text).
    pub description: String,
    /// Whether it serves: `false` disables all its listeners.
    pub enabled: bool,
    /// The tenant (free text, kept for the client).
    pub project_id: Option<String>,
    /// The address its listeners bind unless they name their own.
    pub vip_address: Option<IpAddr>,
}

/// A listener's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ListenerProtocol {
    /// HTTP.
    Http,
    /// TCP.
    Tcp,
    /// HTTPS terminated here, HTTP to the pool.
    TerminatedHttps,
}

/// A listener: a frontend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// Its id (the frontend's name).
    pub id: Name,
    /// Its name (free text).
    pub name: String,
    /// Its description (free text).
    pub description: String,
    /// Whether it accepts connections.
    pub enabled: bool,
    /// Its protocol.
    pub protocol: ListenerProtocol,
    /// Its port.
    pub protocol_port: u16,
    /// The most concurrent connections (`-1` or absent: no limit).
    pub connection_limit: Option<u32>,
    /// The certificate (`<certificates>/<id>.pem`) of a TERMINATED_HTTPS listener.
    pub tls_certificate_id: Option<Name>,
    /// More certificates, chosen by SNI.
    pub sni_containers: Vec<Name>,
    /// The pool it sends traffic to.
    pub default_pool_id: Option<Name>,
    /// The address it binds (else its load balancer's, else `api.bind`).
    pub vip_address: Option<IpAddr>,
    /// Its load balancer.
    pub loadbalancer_id: Option<Name>,
}

/// A pool's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PoolProtocol {
    /// HTTP.
    Http,
    /// TCP.
    Tcp,
}

/// How a pool picks a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Algorithm {
    /// In turn, by weight.
    RoundRobin,
    /// The fewest connections.
    LeastConnections,
    /// A hash of the client's address.
    SourceIp,
}

/// How a pool keeps a client on one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PersistenceType {
    /// A stick table of client addresses, shared with the peers.
    SourceIp,
    /// A cookie HAProxy inserts.
    HttpCookie,
    /// The application's own cookie.
    AppCookie,
}

/// A pool's session persistence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPersistence {
    /// The kind.
    #[serde(rename = "type")]
    pub kind: PersistenceType,
    /// The cookie (APP_COOKIE: required; HTTP_COOKIE: default `SERVERID`).
    pub cookie_name: Option<Name>,
}

/// One member of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its id (the server's name).
    pub id: Name,
    /// Whether it takes traffic.
    pub enabled: bool,
    /// Its address.
    pub address: IpAddr,
    /// Its port.
    pub protocol_port: u16,
    /// Its weight, 0-256.
    pub weight: u16,
    /// Whether it takes traffic only when no other member is up.
    pub backup: bool,
}

/// A pool: a backend, with its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Its id (the backend is `backend-<id>`).
    pub id: Name,
    /// Its name (free text).
    pub name: String,
    /// Its description (free text).
    pub description: String,
    /// Whether it serves.
    pub enabled: bool,
    /// Its protocol.
    pub protocol: PoolProtocol,
    /// How it picks a member.
    pub lb_algorithm: Algorithm,
    /// How a client stays on one member, if it does.
    pub session_persistence: Option<SessionPersistence>,
    /// The SOURCE_IP stick table's size (default `200k`).
    pub stick_size: Option<String>,
    /// The SOURCE_IP stick table's expiry (default `1d`).
    pub stick_expire: Option<String>,
    /// The listener whose default pool it is, when that listener names none.
    pub listener_id: Option<Name>,
    /// Its load balancer.
    pub loadbalancer_id: Option<Name>,
    /// Its members, in the order they were created.
    pub members: Vec<Member>,
}

/// A health monitor's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MonitorType {
    /// An HTTP request.
    Http,
    /// An HTTP request over TLS.
    Https,
    /// A TCP connect.
    Tcp,
    /// An ICMP echo.
    Ping,
}

/// A pool's health monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthMonitor {
    /// Its id.
    pub id: Name,
    /// Its name (free text).
    pub name: String,
    /// Whether it checks (disabled: members are taken to be up).
    pub enabled: bool,
    /// The pool it checks.
    pub pool_id: Name,
    /// What a check does.
    #[serde(rename = "type")]
    pub kind: MonitorType,
    /// Seconds between checks.
    pub delay: u32,
    /// Seconds a check may take.
    pub timeout: u32,
    /// Consecutive successes to go up (and failures to go down unless `max_retries_down`).
    pub max_retries: u32,
    /// Consecutive failures to go down.
    pub max_retries_down: Option<u32>,
    /// HTTP(S): the path (default `/`).
    pub url_path: Option<String>,
    /// HTTP(S): the method (default `GET`).
    pub http_method: Option<String>,
    /// HTTP(S): the statuses that count as up (default `200`).
    pub expected_codes: Option<String>,
}

/// A peer of the stick-table synchronization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its host name (its peer name, and its id here).
    pub hostname: Name,
    /// Its address.
    pub address: IpAddr,
    /// Its peers port (default 1024).
    pub port: u16,
}

/// The default peers port (the KINX seed's).
pub const PEER_PORT: u16 = 1024;

/// A new id, when a create request gives none: a random UUID.
pub fn new_id() -> Name {
    let mut bytes = [0u8; 16];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if got.is_err() {
        // No /dev/urandom: the time and a counter still make it unique on this node.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes = (nanos ^ (u128::from(n) << 64)).to_be_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    Name::new("id", &uuid).unwrap_or_else(|e| unreachable!("a UUID is a name: {e}"))
}

/// Reads the `id` of a create request (or makes one), or checks that an update's `id`, if
/// given, is the one in the path.
fn read_id(f: &mut Fields<'_>, key: &'static str, base: Option<&Name>) -> Result<Name, ApiError> {
    let given = f.optional(key, id)?;
    match (given, base) {
        (Some(given), Some(current)) if given != *current => Err(ApiError::bad(
            key,
            format!("is `{current}` in the path; an object's id cannot change"),
        )),
        (_, Some(current)) => Ok(current.clone()),
        (Some(given), None) => Ok(given),
        (None, None) => Ok(new_id()),
    }
}

/// A field's new value, the current one, or the default.
fn or_current<T: Clone>(new: Option<T>, current: Option<&T>, default: T) -> T {
    new.or_else(|| current.cloned()).unwrap_or(default)
}

/// A field that is required on create and may be left out of an update.
fn needed<T: Clone>(
    f: &Fields<'_>,
    key: &str,
    new: Option<T>,
    current: Option<&T>,
) -> Result<T, ApiError> {
    new.or_else(|| current.cloned())
        .ok_or_else(|| ApiError::bad(&f.name(key), "is required"))
}

/// An optional field: absent keeps the current value; `null` is not distinguished from absent,
/// so an optional setting is removed by giving its "none" value where it has one.
fn kept<T: Clone>(new: Option<T>, current: Option<&Option<T>>) -> Option<T> {
    new.or_else(|| current.cloned().flatten())
}

impl LoadBalancer {
    /// A load balancer from a create (`current` None) or update request.
    pub fn read(body: &Value, current: Option<&LoadBalancer>) -> Result<LoadBalancer, ApiError> {
        let mut f = Fields::of(body)?;
        let own_id = read_id(&mut f, "id", current.map(|c| &c.id))?;
        let lb = LoadBalancer {
            id: own_id,
            name: or_current(
                f.optional("name", text)?,
                current.map(|c| &c.name),
                String::new(),
            ),
            description: or_current(
                f.optional("description", text)?,
                current.map(|c| &c.description),
                String::new(),
            ),
            enabled: or_current(
                f.optional("enabled", boolean)?,
                current.map(|c| &c.enabled),
                true,
            ),
            project_id: kept(
                f.optional("project_id", text)?,
                current.map(|c| &c.project_id),
            ),
            vip_address: kept(
                f.optional("vip_address", address)?,
                current.map(|c| &c.vip_address),
            ),
        };
        f.finish()?;
        Ok(lb)
    }
}

/// `connection_limit`: -1 (or 0) is no limit, as in Octavia.
fn connection_limit(v: &Value) -> Result<Option<u32>, String> {
    let n = integer(v, -1, 1_000_000)?;
    Ok((n > 0).then_some(n as u32))
}

impl Listener {
    /// A listener from a create or update request.
    pub fn read(body: &Value, current: Option<&Listener>) -> Result<Listener, ApiError> {
        let mut f = Fields::of(body)?;
        let own_id = read_id(&mut f, "id", current.map(|c| &c.id))?;
        let protocol = f.optional("protocol", |v| {
            choice(
                v,
                &[
                    ("HTTP", ListenerProtocol::Http),
                    ("TCP", ListenerProtocol::Tcp),
                    ("TERMINATED_HTTPS", ListenerProtocol::TerminatedHttps),
                ],
            )
        })?;
        let protocol_port = f.optional("protocol_port", port)?;
        let limit = f.optional("connection_limit", connection_limit)?;
        let listener = Listener {
            id: own_id,
            name: or_current(
                f.optional("name", text)?,
                current.map(|c| &c.name),
                String::new(),
            ),
            description: or_current(
                f.optional("description", text)?,
                current.map(|c| &c.description),
                String::new(),
            ),
            enabled: or_current(
                f.optional("enabled", boolean)?,
                current.map(|c| &c.enabled),
                true,
            ),
            protocol: needed(&f, "protocol", protocol, current.map(|c| &c.protocol))?,
            protocol_port: needed(
                &f,
                "protocol_port",
                protocol_port,
                current.map(|c| &c.protocol_port),
            )?,
            connection_limit: match limit {
                Some(limit) => limit,
                None => current.and_then(|c| c.connection_limit),
            },
            tls_certificate_id: kept(
                f.optional("tls_certificate_id", id)?,
                current.map(|c| &c.tls_certificate_id),
            ),
            sni_containers: or_current(
                f.optional("sni_containers", ids)?,
                current.map(|c| &c.sni_containers),
                Vec::new(),
            ),
            default_pool_id: kept(
                f.optional("default_pool_id", id)?,
                current.map(|c| &c.default_pool_id),
            ),
            vip_address: kept(
                f.optional("vip_address", address)?,
                current.map(|c| &c.vip_address),
            ),
            loadbalancer_id: kept(
                f.optional("loadbalancer_id", id)?,
                current.map(|c| &c.loadbalancer_id),
            ),
        };
        // KINX sent the protocol twice; it is the protocol.
        f.ignore(&["protocol_mode"]);
        f.finish()?;
        listener.check()?;
        Ok(listener)
    }

    fn check(&self) -> Result<(), ApiError> {
        let https = self.protocol == ListenerProtocol::TerminatedHttps;
        if https && self.tls_certificate_id.is_none() {
            return Err(ApiError::bad(
                "tls_certificate_id",
                "is required for a TERMINATED_HTTPS listener",
            ));
        }
        if !https && (self.tls_certificate_id.is_some() || !self.sni_containers.is_empty()) {
            return Err(ApiError::bad(
                "tls_certificate_id",
                "only a TERMINATED_HTTPS listener has certificates",
            ));
        }
        Ok(())
    }
}

fn persistence_type(v: &Value) -> Result<PersistenceType, String> {
    choice(
        v,
        &[
            ("SOURCE_IP", PersistenceType::SourceIp),
            ("HTTP_COOKIE", PersistenceType::HttpCookie),
            ("APP_COOKIE", PersistenceType::AppCookie),
        ],
    )
}

/// A cookie name: a name HAProxy can carry (`A-Z a-z 0-9 _ . -`).
fn cookie(v: &Value) -> Result<Name, String> {
    Name::new("cookie_name", string(v)?).map_err(|e| e.to_string())
}

/// `session_persistence: {type, cookie_name}` (null or `{}` removes it).
fn session_persistence(f: &mut Fields<'_>) -> Result<Option<Option<SessionPersistence>>, ApiError> {
    if !f.has("session_persistence") {
        f.ignore(&["session_persistence"]);
        return Ok(None);
    }
    let Some(mut sp) = f.nested("session_persistence")? else {
        return Ok(Some(None));
    };
    let kind = sp.optional("type", persistence_type)?;
    let cookie_name = sp.optional("cookie_name", cookie)?;
    sp.finish()?;
    Ok(Some(
        kind.map(|kind| SessionPersistence { kind, cookie_name }),
    ))
}

fn checked_persistence(
    persistence: Option<SessionPersistence>,
    protocol: PoolProtocol,
) -> Result<Option<SessionPersistence>, ApiError> {
    let Some(p) = persistence else {
        return Ok(None);
    };
    let field = "session_persistence.type";
    match p.kind {
        PersistenceType::AppCookie if p.cookie_name.is_none() => Err(ApiError::bad(
            "session_persistence.cookie_name",
            "is required for APP_COOKIE",
        )),
        PersistenceType::HttpCookie | PersistenceType::AppCookie
            if protocol == PoolProtocol::Tcp =>
        {
            Err(ApiError::bad(
                field,
                "cookie persistence needs an HTTP pool",
            ))
        }
        _ => Ok(Some(p)),
    }
}

impl Pool {
    /// A pool from a create or update request (its members are kept on update).
    pub fn read(body: &Value, current: Option<&Pool>) -> Result<Pool, ApiError> {
        let mut f = Fields::of(body)?;
        let own_id = read_id(&mut f, "id", current.map(|c| &c.id))?;
        let protocol = f.optional("protocol", |v| {
            choice(
                v,
                &[("HTTP", PoolProtocol::Http), ("TCP", PoolProtocol::Tcp)],
            )
        })?;
        let protocol = needed(&f, "protocol", protocol, current.map(|c| &c.protocol))?;
        let algorithm = f.optional("lb_algorithm", |v| {
            choice(
                v,
                &[
                    ("ROUND_ROBIN", Algorithm::RoundRobin),
                    ("LEAST_CONNECTIONS", Algorithm::LeastConnections),
                    ("SOURCE_IP", Algorithm::SourceIp),
                ],
            )
        })?;
        let persistence = match session_persistence(&mut f)? {
            Some(given) => given,
            None => current.and_then(|c| c.session_persistence.clone()),
        };
        let stick = |what: &'static str| {
            move |v: &Value| -> Result<String, String> {
                let s = string(v)?;
                let checked = match what {
                    "size" => crate::haproxy::model::TableSize::new(s).map(drop),
                    _ => crate::haproxy::model::Expiry::new(s).map(drop),
                };
                checked.map(|()| s.to_string()).map_err(|e| e.to_string())
            }
        };
        let pool = Pool {
            id: own_id,
            name: or_current(
                f.optional("name", text)?,
                current.map(|c| &c.name),
                String::new(),
            ),
            description: or_current(
                f.optional("description", text)?,
                current.map(|c| &c.description),
                String::new(),
            ),
            enabled: or_current(
                f.optional("enabled", boolean)?,
                current.map(|c| &c.enabled),
                true,
            ),
            protocol,
            lb_algorithm: or_current(
                algorithm,
                current.map(|c| &c.lb_algorithm),
                Algorithm::RoundRobin,
            ),
            session_persistence: checked_persistence(persistence, protocol)?,
            stick_size: kept(
                f.optional("stick_size", stick("size"))?,
                current.map(|c| &c.stick_size),
            ),
            stick_expire: kept(
                f.optional("stick_expire", stick("expire"))?,
                current.map(|c| &c.stick_expire),
            ),
            listener_id: kept(
                f.optional("listener_id", id)?,
                current.map(|c| &c.listener_id),
            ),
            loadbalancer_id: kept(
                f.optional("loadbalancer_id", id)?,
                current.map(|c| &c.loadbalancer_id),
            ),
            members: current.map(|c| c.members.clone()).unwrap_or_default(),
        };
        f.ignore(&["protocol_mode"]);
        f.finish()?;
        Ok(pool)
    }
}

/// What a member request changes besides the member: KINX's denormalized pool fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberExtras {
    /// `type` and `cookie_name`: the pool's session persistence.
    pub persistence: Option<SessionPersistence>,
    /// `healthmonitor`: the pool's monitor (its fields as in a health monitor request).
    pub healthmonitor: Option<Value>,
}

impl Member {
    /// A member from a create or update request, and the pool fields it carries.
    pub fn read(
        body: &Value,
        current: Option<&Member>,
    ) -> Result<(Member, MemberExtras), ApiError> {
        let mut f = Fields::of(body)?;
        let own_id = read_id(&mut f, "id", current.map(|c| &c.id))?;
        let address_given = f.optional("address", address)?;
        let port_given = f.optional("protocol_port", port)?;
        let member = Member {
            id: own_id,
            enabled: or_current(
                f.optional("enabled", boolean)?,
                current.map(|c| &c.enabled),
                true,
            ),
            address: needed(&f, "address", address_given, current.map(|c| &c.address))?,
            protocol_port: needed(
                &f,
                "protocol_port",
                port_given,
                current.map(|c| &c.protocol_port),
            )?,
            weight: or_current(
                f.optional("weight", |v| integer(v, 0, 256).map(|n| n as u16))?,
                current.map(|c| &c.weight),
                1,
            ),
            backup: or_current(
                f.optional("backup", boolean)?,
                current.map(|c| &c.backup),
                false,
            ),
        };
        let kind = f.optional("type", persistence_type)?;
        let cookie_name = f.optional("cookie_name", cookie)?;
        let healthmonitor = body.get("healthmonitor").filter(|v| !v.is_null()).cloned();
        f.ignore(&["healthmonitor", "protocol_mode"]);
        f.finish()?;
        let persistence = kind.map(|kind| SessionPersistence { kind, cookie_name });
        Ok((
            member,
            MemberExtras {
                persistence,
                healthmonitor,
            },
        ))
    }
}

/// The monitor's own fields, read from `f` (a health monitor request, or the `healthmonitor`
/// object nested in one or in a member request).
fn monitor_fields(
    f: &mut Fields<'_>,
    current: Option<&HealthMonitor>,
    id: Name,
    pool_id: Name,
) -> Result<HealthMonitor, ApiError> {
    let range = |r: std::ops::RangeInclusive<u32>| {
        move |v: &Value| integer(v, i64::from(*r.start()), i64::from(*r.end())).map(|n| n as u32)
    };
    let kind = f.optional("type", |v| {
        choice(
            v,
            &[
                ("HTTP", MonitorType::Http),
                ("HTTPS", MonitorType::Https),
                ("TCP", MonitorType::Tcp),
                ("PING", MonitorType::Ping),
            ],
        )
    })?;
    let delay = f.optional("delay", range(CHECK_INTERVALS))?;
    let timeout = f.optional("timeout", range(CHECK_TIMEOUTS))?;
    let retries = f.optional("max_retries", range(CHECK_COUNTS))?;
    let kind = needed(f, "type", kind, current.map(|c| &c.kind))?;
    let http = matches!(kind, MonitorType::Http | MonitorType::Https);
    let url_path = f.optional("url_path", |v| {
        let p = string(v)?;
        crate::haproxy::model::HttpPath::new(p)
            .map(|_| p.to_string())
            .map_err(|e| e.to_string())
    })?;
    let http_method = f.optional("http_method", |v| {
        let m = string(v)?;
        m.parse::<crate::haproxy::model::HttpMethod>()
            .map(|m| m.as_str().to_string())
            .map_err(|e| e.to_string())
    })?;
    let expected_codes = f.optional("expected_codes", |v| {
        let codes = match v {
            Value::Number(n) => n.to_string(),
            other => string(other)?.to_string(),
        };
        crate::haproxy::model::ExpectedCodes::parse(&codes)
            .map(|_| codes)
            .map_err(|e| e.to_string())
    })?;
    let given_http = [
        ("url_path", url_path.is_some()),
        ("http_method", http_method.is_some()),
        ("expected_codes", expected_codes.is_some()),
    ];
    if let Some((field, _)) = given_http.iter().find(|(_, set)| *set && !http) {
        return Err(ApiError::bad(
            &f.name(field),
            "only an HTTP or HTTPS monitor has it",
        ));
    }
    // A monitor that is no longer HTTP(S) forgets its HTTP settings.
    let current_http = current.filter(|_| http);
    Ok(HealthMonitor {
        id,
        name: or_current(
            f.optional("name", text)?,
            current.map(|c| &c.name),
            String::new(),
        ),
        enabled: or_current(
            f.optional("enabled", boolean)?,
            current.map(|c| &c.enabled),
            true,
        ),
        pool_id,
        kind,
        delay: needed(f, "delay", delay, current.map(|c| &c.delay))?,
        timeout: needed(f, "timeout", timeout, current.map(|c| &c.timeout))?,
        max_retries: needed(f, "max_retries", retries, current.map(|c| &c.max_retries))?,
        max_retries_down: kept(
            f.optional("max_retries_down", range(CHECK_COUNTS))?,
            current.map(|c| &c.max_retries_down),
        ),
        url_path: kept(url_path, current_http.map(|c| &c.url_path)),
        http_method: kept(http_method, current_http.map(|c| &c.http_method)),
        expected_codes: kept(expected_codes, current_http.map(|c| &c.expected_codes)),
    })
}

impl HealthMonitor {
    /// A monitor from a create or update request: its fields at the top, or inside a
    /// `healthmonitor` object (KINX's request shape), with `pool_id` at the top.
    pub fn read(body: &Value, current: Option<&HealthMonitor>) -> Result<HealthMonitor, ApiError> {
        let mut f = Fields::of(body)?;
        let own_id = read_id(&mut f, "id", current.map(|c| &c.id))?;
        let pool_given = f.optional("pool_id", id_value)?;
        let pool_id = needed(&f, "pool_id", pool_given, current.map(|c| &c.pool_id))?;
        let monitor = match f.nested("healthmonitor")? {
            Some(mut inner) => {
                let m = monitor_fields(&mut inner, current, own_id, pool_id)?;
                inner.finish()?;
                m
            }
            None => monitor_fields(&mut f, current, own_id, pool_id)?,
        };
        f.finish()?;
        Ok(monitor)
    }

    /// The monitor a member request's `healthmonitor` object describes for `pool_id`
    /// (replacing `current`, the pool's monitor, if any).
    pub fn from_member(
        body: &Value,
        pool_id: &Name,
        current: Option<&HealthMonitor>,
    ) -> Result<HealthMonitor, ApiError> {
        let mut f = Fields::of(body).map_err(|e| ApiError::bad("healthmonitor", e.reason))?;
        let own_id = read_id(&mut f, "id", current.map(|c| &c.id))?;
        let monitor = monitor_fields(&mut f, current, own_id, pool_id.clone())?;
        f.ignore(&["pool_id"]);
        f.finish().map_err(|e| {
            ApiError::bad(
                &format!("healthmonitor.{}", e.field.unwrap_or_default()),
                e.reason,
            )
        })?;
        Ok(monitor)
    }
}

fn id_value(v: &Value) -> Result<Name, String> {
    id(v)
}

impl Peer {
    /// A peer from a create or update request.
    pub fn read(body: &Value, current: Option<&Peer>) -> Result<Peer, ApiError> {
        let mut f = Fields::of(body)?;
        let hostname = read_id(&mut f, "hostname", current.map(|c| &c.hostname))?;
        if current.is_none() && !f.has("hostname") {
            return Err(ApiError::bad("hostname", "is required"));
        }
        let address_given = f.optional("address", address)?;
        let peer = Peer {
            hostname,
            address: needed(&f, "address", address_given, current.map(|c| &c.address))?,
            port: or_current(
                f.optional("port", port)?,
                current.map(|c| &c.port),
                PEER_PORT,
            ),
        };
        f.finish()?;
        Ok(peer)
    }
}
