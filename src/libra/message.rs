//! Libra job messages: parsing a job's JSON into a typed [`Job`] (pure), and building the reply,
//! which is always the request itself plus `hpcs_response` (PASS/FAIL) and the action's fields.
//!
//! The rules are the Libra worker's: field names are case-sensitive, values case-insensitive,
//! unknown fields are ignored and echoed back, `loadBalancers` is accepted for `loadbalancers`.
//! Anything that could reach a generated config is validated into a typed value here; a control
//! character (newline, carriage return, NUL, ...) anywhere in the message refuses the whole job.

use serde_json::{Map, Value};

use super::site::{Algorithm, Condition, LoadBalancer, Monitor, MonitorKind, Node, Protocol};
use crate::haproxy::model::{Host, HttpPath};

/// A parsed job: the request as received (for the echo) and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The request object, echoed back in the reply.
    pub request: Map<String, Value>,
    /// The action with its validated arguments.
    pub action: Action,
}

/// What a job asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create or replace the load balancer(s).
    Update(Vec<LoadBalancer>),
    /// Stop serving, keep the configuration.
    Suspend,
    /// Serve again from the kept configuration.
    Enable,
    /// Stop serving and remove the configuration.
    Delete,
    /// Network and Gearman connectivity checks.
    Diagnostics,
    /// Version and release.
    Discover,
    /// Upload the load balancers' logs to an object store.
    Archive(Archive),
    /// Per-node status and counters from HAProxy.
    Stats,
    /// Bytes out per protocol since the last METRICS.
    Metrics,
}

/// An ARCHIVE request's destination and load balancers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// The object store endpoint URL, without a trailing slash.
    pub endpoint: String,
    /// The container / base path under the endpoint.
    pub basepath: String,
    /// The auth token (sent as `X-Auth-Token`, never logged).
    pub token: String,
    /// The load balancers whose logs to upload.
    pub loadbalancers: Vec<ArchiveLb>,
}

/// One load balancer in an ARCHIVE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLb {
    /// Its id, used in the object path.
    pub id: String,
    /// Which of the worker's load balancers it is.
    pub protocol: Protocol,
}

/// Largest accepted job payload.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Parses a job payload. An unusable payload gives the FAIL reply to send instead.
pub fn parse(payload: &[u8]) -> Result<Job, Vec<u8>> {
    if payload.len() > MAX_PAYLOAD {
        return Err(fail_bare(&format!(
            "message too large: {} bytes (limit {MAX_PAYLOAD})",
            payload.len()
        )));
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| fail_bare(&format!("invalid JSON: {e}")))?;
    let Value::Object(request) = value else {
        return Err(fail_bare("invalid message: expected a JSON object"));
    };
    match parse_action(&request) {
        Ok(action) => Ok(Job { request, action }),
        Err(e) => Err(fail(request, &e)),
    }
}

fn parse_action(request: &Map<String, Value>) -> Result<Action, String> {
    if let Some(path) = control_character(&Value::Object(request.clone()), "") {
        return Err(format!(
            "field `{path}` contains a control character (e.g. a newline)"
        ));
    }
    let action = match request.get("hpcs_action") {
        None => return Err("missing field `hpcs_action`".to_string()),
        Some(Value::String(s)) => s.to_ascii_uppercase(),
        Some(other) => {
            return Err(format!(
                "`hpcs_action` must be a string, not {}",
                kind(other)
            ));
        }
    };
    Ok(match action.as_str() {
        "UPDATE" => Action::Update(update(request)?),
        "SUSPEND" => Action::Suspend,
        "ENABLE" => Action::Enable,
        "DELETE" => Action::Delete,
        "DIAGNOSTICS" => Action::Diagnostics,
        "DISCOVER" => Action::Discover,
        "ARCHIVE" => Action::Archive(archive(request)?),
        "STATS" => Action::Stats,
        "METRICS" => Action::Metrics,
        other => return Err(format!("unknown hpcs_action `{other}`")),
    })
}

/// The reply to a job: the request plus `hpcs_response: PASS` and `fields`.
pub fn pass(mut request: Map<String, Value>, fields: Vec<(&str, Value)>) -> Vec<u8> {
    for (k, v) in fields {
        request.insert(k.to_string(), v);
    }
    request.insert("hpcs_response".into(), "PASS".into());
    encode(request)
}

/// The reply to a failed job: the request plus `hpcs_response: FAIL` and `hpcs_error`.
pub fn fail(request: Map<String, Value>, error: &str) -> Vec<u8> {
    fail_with(request, error, Vec::new())
}

/// The reply to a failed job that still reports what it found (DIAGNOSTICS): the request plus
/// `fields`, `hpcs_response: FAIL` and `hpcs_error`.
pub fn fail_with(
    mut request: Map<String, Value>,
    error: &str,
    fields: Vec<(&str, Value)>,
) -> Vec<u8> {
    for (k, v) in fields {
        request.insert(k.to_string(), v);
    }
    request.insert("hpcs_response".into(), "FAIL".into());
    request.insert("hpcs_error".into(), error.into());
    encode(request)
}

/// A FAIL reply when there is no request object to echo.
fn fail_bare(error: &str) -> Vec<u8> {
    fail(Map::new(), error)
}

fn encode(reply: Map<String, Value>) -> Vec<u8> {
    // Serializing a Map of JSON values cannot fail.
    serde_json::to_vec(&Value::Object(reply)).unwrap_or_default()
}

/// The load balancers of a request, under either spelling, and the spelling it used (errors
/// name the fields as the request did).
fn loadbalancers(request: &Map<String, Value>) -> Result<(&'static str, &Vec<Value>), String> {
    let (key, value) = ["loadBalancers", "loadbalancers"]
        .iter()
        .find_map(|k| request.get(*k).map(|v| (*k, v)))
        .ok_or("missing field `loadBalancers`")?;
    match value {
        Value::Array(items) if !items.is_empty() => Ok((key, items)),
        Value::Array(_) => Err(format!("`{key}` is empty")),
        other => Err(format!("`{key}` must be a list, not {}", kind(other))),
    }
}

fn update(request: &Map<String, Value>) -> Result<Vec<LoadBalancer>, String> {
    let (key, items) = loadbalancers(request)?;
    if items.len() > 2 {
        return Err(format!(
            "{} load balancers given; at most two (one HTTP and one TCP)",
            items.len()
        ));
    }
    let lbs = items
        .iter()
        .enumerate()
        .map(|(i, v)| loadbalancer(v, &format!("{key}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if let [a, b] = lbs.as_slice() {
        if a.protocol == b.protocol {
            return Err("two load balancers must be one HTTP and one TCP".to_string());
        }
        if a.port == b.port {
            return Err(format!("both load balancers use port {}", a.port));
        }
    }
    Ok(lbs)
}

fn loadbalancer(v: &Value, at: &str) -> Result<LoadBalancer, String> {
    let lb = object(v, at)?;
    let protocol = protocol(required(lb, "protocol", at)?, &format!("{at}.protocol"))?;
    let port = match lb.get("port") {
        None | Some(Value::Null) => match protocol {
            Protocol::Http => 80,
            Protocol::Tcp => 443,
        },
        Some(p) => port(p, &format!("{at}.port"))?,
    };
    let algorithm = match lb.get("algorithm") {
        None | Some(Value::Null) => Algorithm::RoundRobin,
        Some(a) => match word(a, &format!("{at}.algorithm"))?.as_str() {
            "ROUND_ROBIN" => Algorithm::RoundRobin,
            "LEAST_CONNECTIONS" => Algorithm::LeastConnections,
            other => {
                return Err(format!(
                    "`{at}.algorithm` is `{other}`; expected ROUND_ROBIN or LEAST_CONNECTIONS"
                ));
            }
        },
    };
    let nodes = match required(lb, "nodes", at)? {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, n)| node(n, &format!("{at}.nodes[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Value::Array(_) => return Err(format!("`{at}.nodes` is empty")),
        other => return Err(format!("`{at}.nodes` must be a list, not {}", kind(other))),
    };
    let monitor = ["monitor", "healthMonitor"]
        .iter()
        .find_map(|k| lb.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        .map(|(k, v)| monitor(v, &format!("{at}.{k}"), protocol))
        .transpose()?;
    Ok(LoadBalancer {
        protocol,
        port,
        algorithm,
        nodes,
        monitor,
    })
}

fn node(v: &Value, at: &str) -> Result<Node, String> {
    let n = object(v, at)?;
    let address = match required(n, "address", at)? {
        Value::String(s) => s
            .parse::<Host>()
            .map_err(|e| format!("`{at}.address`: {e}"))?,
        other => {
            return Err(format!(
                "`{at}.address` must be a string, not {}",
                kind(other)
            ));
        }
    };
    let port = port(required(n, "port", at)?, &format!("{at}.port"))?;
    let weight = match n.get("weight") {
        None | Some(Value::Null) => 1,
        Some(w) => match integer(w) {
            Some(w @ 1..=256) => w as u16,
            _ => return Err(format!("`{at}.weight` is {}; expected 1 to 256", kind(w))),
        },
    };
    let backup = match n.get("backup") {
        None | Some(Value::Null) => false,
        Some(b) => flag(b, &format!("{at}.backup"))?,
    };
    let condition = match n.get("condition") {
        None | Some(Value::Null) => Condition::Enabled,
        Some(c) => match word(c, &format!("{at}.condition"))?.as_str() {
            "ENABLED" => Condition::Enabled,
            "DISABLED" => Condition::Disabled,
            other => {
                return Err(format!(
                    "`{at}.condition` is `{other}`; expected ENABLED or DISABLED"
                ));
            }
        },
    };
    let id = match n.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(node_id(v, &format!("{at}.id"))?),
    };
    Ok(Node {
        id,
        address,
        port,
        weight,
        backup,
        condition,
    })
}

fn monitor(v: &Value, at: &str, protocol: Protocol) -> Result<Monitor, String> {
    let m = object(v, at)?;
    let kind = match word(required(m, "type", at)?, &format!("{at}.type"))?.as_str() {
        "CONNECT" => MonitorKind::Connect,
        "HTTP" | "HTTPS" if protocol == Protocol::Http => MonitorKind::Http,
        "HTTP" | "HTTPS" => return Err(format!("`{at}.type` HTTP needs an HTTP load balancer")),
        other => {
            return Err(format!(
                "`{at}.type` is `{other}`; expected CONNECT or HTTP"
            ));
        }
    };
    let bounded = |key: &str, max: u64, default: u32| -> Result<u32, String> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match integer(v) {
                Some(n) if (1..=max).contains(&n) => Ok(n as u32),
                _ => Err(format!(
                    "`{at}.{key}` is {}; expected 1 to {max}",
                    self::kind(v)
                )),
            },
        }
    };
    let delay_s = bounded("delay", 3600, 30)?;
    let timeout_s = bounded("timeout", 3600, 30)?;
    let attempts = bounded("attempts", 10, 2)?;
    let path = match (kind, m.get("path")) {
        (MonitorKind::Http, None | Some(Value::Null)) => {
            Some(HttpPath::new("/").map_err(|e| format!("`{at}.path`: {e}"))?)
        }
        (MonitorKind::Http, Some(Value::String(p))) => {
            Some(HttpPath::new(p).map_err(|e| format!("`{at}.path`: {e}"))?)
        }
        (MonitorKind::Http, Some(other)) => {
            return Err(format!(
                "`{at}.path` must be a string, not {}",
                self::kind(other)
            ));
        }
        (MonitorKind::Connect, _) => None,
    };
    Ok(Monitor {
        kind,
        delay_s,
        timeout_s,
        attempts,
        path,
    })
}

fn archive(request: &Map<String, Value>) -> Result<Archive, String> {
    let store = word(
        required(request, "hpcs_object_store_type", "")?,
        "hpcs_object_store_type",
    )?;
    if store != "SWIFT" {
        return Err(format!(
            "`hpcs_object_store_type` is `{store}`; only SWIFT is supported"
        ));
    }
    let endpoint = visible(request, "hpcs_object_store_endpoint")?;
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err("`hpcs_object_store_endpoint` must be an http:// or https:// URL".to_string());
    }
    let basepath = visible(request, "hpcs_object_store_basepath")?;
    let token = visible(request, "hpcs_object_store_token")?;
    let (key, items) = loadbalancers(request)?;
    let loadbalancers = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let at = format!("{key}[{i}]");
            let lb = object(v, &at)?;
            Ok(ArchiveLb {
                id: node_id(required(lb, "id", &at)?, &format!("{at}.id"))?,
                protocol: protocol(required(lb, "protocol", &at)?, &format!("{at}.protocol"))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Archive {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        basepath: basepath.trim_matches('/').to_string(),
        token,
        loadbalancers,
    })
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("`{at}` must be an object, not {}", kind(v)))
}

fn required<'a>(obj: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a Value, String> {
    match obj.get(key) {
        Some(v) if !v.is_null() => Ok(v),
        _ if at.is_empty() => Err(format!("missing field `{key}`")),
        _ => Err(format!("missing field `{at}.{key}`")),
    }
}

/// A string value, upper-cased: values are case-insensitive.
fn word(v: &Value, at: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.trim().to_ascii_uppercase()),
        other => Err(format!("`{at}` must be a string, not {}", kind(other))),
    }
}

fn protocol(v: &Value, at: &str) -> Result<Protocol, String> {
    match word(v, at)?.as_str() {
        "HTTP" => Ok(Protocol::Http),
        "TCP" => Ok(Protocol::Tcp),
        other => Err(format!("`{at}` is `{other}`; expected HTTP or TCP")),
    }
}

/// An integer given as a JSON number or a decimal string.
fn integer(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn port(v: &Value, at: &str) -> Result<u16, String> {
    match integer(v) {
        Some(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!(
            "`{at}` is {}; expected a port from 1 to 65535",
            kind(v)
        )),
    }
}

fn flag(v: &Value, at: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_uppercase().as_str() {
            "TRUE" | "YES" | "1" => Ok(true),
            "FALSE" | "NO" | "0" => Ok(false),
            _ => Err(format!("`{at}` is `{s}`; expected TRUE or FALSE")),
        },
        other => Err(format!("`{at}` is {}; expected TRUE or FALSE", kind(other))),
    }
}

/// An id used in names and object paths: letters, digits, `_`, `.`, `-`, at most 64.
fn node_id(v: &Value, at: &str) -> Result<String, String> {
    let id = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(format!(
                "`{at}` must be a string or number, not {}",
                kind(other)
            ));
        }
    };
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && id != "."
        && id != "..";
    if ok {
        Ok(id)
    } else {
        Err(format!(
            "`{at}` is `{id}`; expected 1-64 letters, digits, `_`, `.` or `-`"
        ))
    }
}

/// A required string of visible ASCII (no spaces), e.g. a URL, path or token.
fn visible(request: &Map<String, Value>, key: &str) -> Result<String, String> {
    match required(request, key, "")? {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(s.clone())
        }
        Value::String(_) => Err(format!(
            "`{key}` must be non-empty visible ASCII without spaces"
        )),
        other => Err(format!("`{key}` must be a string, not {}", kind(other))),
    }
}

/// The path of the first string (key or value) holding a control character.
fn control_character(v: &Value, at: &str) -> Option<String> {
    let bad = |s: &str| s.chars().any(char::is_control);
    match v {
        Value::String(s) if bad(s) => Some(at.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| control_character(item, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if bad(k) {
                Some(path.escape_debug().to_string())
            } else {
                control_character(item, &path)
            }
        }),
        _ => None,
    }
}

fn kind(v: &Value) -> String {
    crate::config::fields::describe(v, "an object")
}

#[cfg(test)]
mod tests;
