//! The `libra` section: the embedded Libra worker's Gearman servers and queue, the HAProxy it
//! drives, its diagnostics targets and the log ARCHIVE uploads.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::fields::{SectionReader, boolean, kind, text};

/// Gearman's well-known port, used when a server is given without one.
pub const GEARMAN_PORT: u16 = 4730;

/// A `host:port` endpoint from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The `libra` section, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Libra {
    /// Run the worker while MASTER (`libra.enabled`, default false).
    pub enabled: bool,
    /// Gearman job servers (`libra.servers`, default `["127.0.0.1:4730"]`).
    pub servers: Vec<Endpoint>,
    /// The Gearman function (queue) to register (`libra.queue`, default `lbaas-<hostname>`).
    pub queue: String,
    /// Worker connections per server (`libra.concurrency`, default 4); HAProxy changes are
    /// serialized whatever this is.
    pub concurrency: usize,
    /// The HAProxy it drives.
    pub haproxy: LibraHaproxy,
    /// Where DIAGNOSTICS tests the network (`libra.diagnostics.targets`, default none: then it
    /// checks that a default route exists).
    pub diagnostics_targets: Vec<Endpoint>,
    /// The HAProxy log file ARCHIVE uploads from (`libra.archive.log`).
    pub archive_log: Option<PathBuf>,
}

/// `libra.haproxy`.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraHaproxy {
    /// The haproxy.cfg it owns (`config`, default `haproxy.cfg` in the workspace).
    pub config: PathBuf,
    /// The HAProxy binary (`binary`, default `haproxy`).
    pub binary: PathBuf,
    /// Frontend bind address (`bind`, default 0.0.0.0).
    pub bind: IpAddr,
    /// Pidfile and sockets (`runtime-dir`, default `haproxy/` in the workspace).
    pub runtime_dir: PathBuf,
    /// Start HAProxy on MASTER and stop it on SLAVE (`follow-role`, default false).
    pub follow_role: bool,
}

impl LibraHaproxy {
    /// The HAProxy instance these settings describe.
    pub fn instance(&self) -> crate::haproxy::HaproxySettings {
        crate::haproxy::HaproxySettings {
            binary: self.binary.clone(),
            config: self.config.clone(),
            runtime_dir: self.runtime_dir.clone(),
        }
    }
}

/// Reads the `libra` section's own keys; `nested` gives the readers of its sub-sections.
pub fn read_libra(
    r: &mut SectionReader<'_>,
    haproxy: &mut SectionReader<'_>,
    diagnostics: &mut SectionReader<'_>,
    archive: &mut SectionReader<'_>,
    workspace: &Path,
) -> Libra {
    // The sub-sections' keys are read by their own readers; here only their shape is checked.
    for sub in ["haproxy", "diagnostics", "archive"] {
        r.optional(sub, |v| match v {
            Value::Object(_) => Ok(()),
            other => Err(format!("{} is not a mapping of keys", kind(other))),
        });
    }
    let enabled = r.optional("enabled", boolean).unwrap_or(false);
    let servers = r
        .optional("servers", |v| endpoints(v, Some(GEARMAN_PORT)))
        .unwrap_or_else(|| {
            vec![Endpoint {
                host: "127.0.0.1".to_string(),
                port: GEARMAN_PORT,
            }]
        });
    let queue = r
        .optional("queue", queue_name)
        .unwrap_or_else(|| format!("lbaas-{}", hostname()));
    let concurrency = r
        .optional("concurrency", |v| match v.as_u64() {
            Some(n @ 1..=64) => Ok(n as usize),
            _ => Err(format!("{} is not a whole number from 1 to 64", kind(v))),
        })
        .unwrap_or(4);
    let haproxy = LibraHaproxy {
        config: haproxy
            .optional("config", text)
            .map_or_else(|| workspace.join("haproxy.cfg"), |p| workspace.join(p)),
        binary: haproxy
            .optional("binary", text)
            .map_or_else(|| PathBuf::from("haproxy"), PathBuf::from),
        bind: haproxy
            .optional("bind", |v| {
                text(v)?
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{} is not an IP address", kind(v)))
            })
            .unwrap_or(IpAddr::from([0, 0, 0, 0])),
        runtime_dir: haproxy
            .optional("runtime-dir", text)
            .map_or_else(|| workspace.join("haproxy"), |p| workspace.join(p)),
        follow_role: haproxy.optional("follow-role", boolean).unwrap_or(false),
    };
    let diagnostics_targets = diagnostics
        .optional("targets", |v| endpoints(v, None))
        .unwrap_or_default();
    let archive_log = archive.optional("log", text).map(|p| workspace.join(p));
    Libra {
        enabled,
        servers,
        queue,
        concurrency,
        haproxy,
        diagnostics_targets,
        archive_log,
    }
}

/// This machine's host name, for the default queue `lbaas-HOSTNAME`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn queue_name(v: &Value) -> Result<String, String> {
    let name = text(v)?;
    if name.bytes().all(|b| b.is_ascii_graphic()) && name.len() <= 255 {
        Ok(name)
    } else {
        Err(format!(
            "`{name}` is not a Gearman function name (visible ASCII, no spaces)"
        ))
    }
}

/// A list of `host:port` strings; `default_port` allows a bare host.
fn endpoints(v: &Value, default_port: Option<u16>) -> Result<Vec<Endpoint>, String> {
    let items = match v {
        Value::Array(items) => items.as_slice(),
        Value::String(_) => std::slice::from_ref(v),
        other => return Err(format!("{} is not a list of host:port", kind(other))),
    };
    items
        .iter()
        .map(|item| endpoint(&text(item)?, default_port))
        .collect()
}

/// Parses `host:port`, `[v6]:port`, or (with a default port) a bare host or IPv6 address.
pub fn endpoint(s: &str, default_port: Option<u16>) -> Result<Endpoint, String> {
    let bad = || format!("`{s}` is not host:port (e.g. 127.0.0.1:4730 or [::1]:4730)");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else if s.matches(':').count() > 1 {
        (s, None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
        None => default_port.ok_or_else(bad)?,
    };
    if host.parse::<IpAddr>().is_err() && !is_hostname(host) {
        return Err(bad());
    }
    Ok(Endpoint {
        host: host.to_string(),
        port,
    })
}

fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_all_forms() {
        let cases = [
            ("127.0.0.1:4730", None, "127.0.0.1", 4730),
            ("gearman.example:4731", None, "gearman.example", 4731),
            ("[::1]:4730", None, "::1", 4730),
            ("192.0.2.1", Some(4730), "192.0.2.1", 4730),
            ("::1", Some(4730), "::1", 4730),
        ];
        for (s, default, host, port) in cases {
            let e = endpoint(s, default).unwrap();
            assert_eq!((e.host.as_str(), e.port), (host, port), "{s}");
        }
        for bad in [
            "",
            "a b:1",
            "host:0",
            "host:99999",
            "[::1",
            "host",
            "-x.example:80",
        ] {
            assert!(endpoint(bad, None).is_err(), "{bad}");
        }
        assert_eq!(endpoint("[::1]:80", None).unwrap().to_string(), "[::1]:80");
    }
}
