//! The `bgp` section: the BGP announcer's peers, what it announces and the bgpd it drives. A
//! disabled section is still checked key by key, but only an enabled one needs `local-as`,
//! `router-id` and `neighbors`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Keepstart;
use super::fields::{SectionReader, boolean, kind, text};
use crate::bgp::model::{ApplyMethod, Asn, LogFile, Neighbor, Password, Prefix, Word};
use crate::ifname::Ifname;

/// The `bgp` section of an enabled announcer, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Bgp {
    /// This node's AS (`local-as`).
    pub local_as: Asn,
    /// `bgp router-id` (`router-id`).
    pub router_id: Ipv4Addr,
    /// The upstream routers (`neighbors`: list of `address` + `remote-as`).
    pub neighbors: Vec<Neighbor>,
    /// What is announced while MASTER (`announce`, default the VIP as /32 or /128).
    pub announce: Vec<Prefix>,
    /// The interface that carries the announced prefixes (`loopback`, default `lo`).
    pub loopback: Ifname,
    /// The bgpd.conf keepserver owns (`config`, default `bgpd.conf` in the workspace).
    pub config: PathBuf,
    /// How the running bgpd is told (`apply`, default `vtysh`).
    pub apply: ApplyMethod,
    /// The vtysh binary (`vtysh`, default `vtysh`).
    pub vtysh: PathBuf,
    /// FRR's reload script (`frr-reload`, default `/usr/lib/frr/frr-reload.py`).
    pub frr_reload: PathBuf,
    /// FRR's pathspace (`pathspace`: `-N` of bgpd and vtysh), for a bgpd that is not the default.
    pub pathspace: Option<Word>,
    /// `hostname` in bgpd.conf (`hostname`, default this machine's host name).
    pub hostname: Word,
    /// The vty `password` (`password`, default none).
    pub password: Option<Password>,
    /// `log file` (`log-file`, default `/var/log/frr/bgpd.log`).
    pub log_file: LogFile,
    /// The outbound route-map's name (`route-map`, default `bgp-access` as in the KINX seed).
    pub route_map: Word,
    /// The prefix-list its route-map matches (`prefix-list`, default `pl-route`).
    pub prefix_list: Word,
    /// `redistribute static route-map <route-map>` as in the KINX seed (`redistribute-static`,
    /// default false).
    pub redistribute_static: bool,
    /// `neighbor X advertisement-interval` in seconds (`advertisement-interval`, default 0: send
    /// updates at once).
    pub advertisement_interval: u16,
    /// Announce only while the last is-running check passed (`require-running`, default false).
    pub require_running: bool,
}

/// The default `log-file`: Debian's FRR log directory.
pub const DEFAULT_LOG_FILE: &str = "/var/log/frr/bgpd.log";
/// The default `frr-reload`: where Debian's frr-pythontools installs it.
pub const DEFAULT_FRR_RELOAD: &str = "/usr/lib/frr/frr-reload.py";

/// What the `bgp` section says besides the peering (local AS, router-id, neighbors,
/// announcements): how bgpd is reached and what its file looks like. Read whether the section
/// is enabled or not, so that the admin API's `/api/quagga` can supply the peering.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpDefaults {
    /// `loopback`.
    pub loopback: Ifname,
    /// `config`.
    pub config: PathBuf,
    /// `apply`.
    pub apply: ApplyMethod,
    /// `vtysh`.
    pub vtysh: PathBuf,
    /// `frr-reload`.
    pub frr_reload: PathBuf,
    /// `pathspace`.
    pub pathspace: Option<Word>,
    /// `hostname`.
    pub hostname: Word,
    /// `password`.
    pub password: Option<Password>,
    /// `log-file`.
    pub log_file: LogFile,
    /// `route-map`.
    pub route_map: Word,
    /// `prefix-list`.
    pub prefix_list: Word,
    /// `redistribute-static`.
    pub redistribute_static: bool,
    /// `advertisement-interval`.
    pub advertisement_interval: u16,
    /// `require-running`.
    pub require_running: bool,
}

impl BgpDefaults {
    /// The whole section: these settings with this peering.
    pub fn with_peering(
        &self,
        local_as: Asn,
        router_id: Ipv4Addr,
        neighbors: Vec<Neighbor>,
        announce: Vec<Prefix>,
    ) -> Bgp {
        let d = self.clone();
        Bgp {
            local_as,
            router_id,
            neighbors,
            announce,
            loopback: d.loopback,
            config: d.config,
            apply: d.apply,
            vtysh: d.vtysh,
            frr_reload: d.frr_reload,
            pathspace: d.pathspace,
            hostname: d.hostname,
            password: d.password,
            log_file: d.log_file,
            route_map: d.route_map,
            prefix_list: d.prefix_list,
            redistribute_static: d.redistribute_static,
            advertisement_interval: d.advertisement_interval,
            require_running: d.require_running,
        }
    }
}

/// Reads the `bgp` section: the section when enabled (`None` when absent or not enabled), and
/// its settings besides the peering in any case. `keepstart` (when valid) gives the VIP for the
/// default announcement and the NIC and is-running hook to check against.
pub fn read_bgp(
    r: &mut SectionReader<'_>,
    workspace: &Path,
    keepstart: Option<&Keepstart>,
) -> (Option<Bgp>, BgpDefaults) {
    let enabled = r.optional("enabled", boolean).unwrap_or(false);
    let local_as = take(
        r,
        enabled,
        "local-as",
        asn,
        "an AS number from 1 to 4294967295",
    );
    let router_id = take(r, enabled, "router-id", router_id, "an IPv4 address");
    let neighbors = take(
        r,
        enabled,
        "neighbors",
        neighbors,
        "a list of {address, remote-as}",
    );
    let loopback = r
        .optional("loopback", |v| text(v)?.parse::<Ifname>())
        .unwrap_or_else(|| Ifname::known("lo"));
    let announce = r.optional("announce", |v| announce(v, &loopback, keepstart));
    let config = r
        .optional("config", text)
        .map_or_else(|| workspace.join("bgpd.conf"), |p| workspace.join(p));
    let apply = r
        .optional("apply", |v| text(v)?.parse::<ApplyMethod>())
        .unwrap_or(ApplyMethod::Vtysh);
    let vtysh = r
        .optional("vtysh", text)
        .map_or_else(|| PathBuf::from("vtysh"), PathBuf::from);
    let frr_reload = r
        .optional("frr-reload", text)
        .map_or_else(|| PathBuf::from(DEFAULT_FRR_RELOAD), PathBuf::from);
    let pathspace = r.optional("pathspace", word);
    let hostname = r.optional("hostname", word);
    let password = r.optional("password", |v| text(v)?.parse::<Password>());
    let log_file = r
        .optional("log-file", |v| text(v)?.parse::<LogFile>())
        .unwrap_or_else(|| LogFile::known(DEFAULT_LOG_FILE));
    let route_map = r.optional("route-map", word);
    let prefix_list = r.optional("prefix-list", word);
    let redistribute_static = r.optional("redistribute-static", boolean).unwrap_or(false);
    let advertisement_interval = r
        .optional("advertisement-interval", |v| match v.as_u64() {
            Some(n @ 0..=600) => Ok(n as u16),
            _ => Err(format!(
                "{} is not a whole number of seconds from 0 to 600",
                kind(v)
            )),
        })
        .unwrap_or(0);
    let require_running = r
        .optional("require-running", |v| {
            let on = boolean(v)?;
            if on && keepstart.is_some_and(|k| k.is_running.is_none()) {
                return Err("needs keepstart.is-running: there is no check to require".into());
            }
            Ok(on)
        })
        .unwrap_or(false);
    let defaults = BgpDefaults {
        loopback: loopback.clone(),
        config: config.clone(),
        apply,
        vtysh: vtysh.clone(),
        frr_reload: frr_reload.clone(),
        pathspace: pathspace.clone(),
        hostname: hostname.clone().unwrap_or_else(machine_hostname),
        password: password.clone(),
        log_file: log_file.clone(),
        route_map: route_map
            .clone()
            .unwrap_or_else(|| Word::known("bgp-access")),
        prefix_list: prefix_list
            .clone()
            .unwrap_or_else(|| Word::known("pl-route")),
        redistribute_static,
        advertisement_interval,
        require_running,
    };
    if !enabled {
        return (None, defaults);
    }
    let announce = match announce {
        Some(list) => list,
        None => {
            let Some(keepstart) = keepstart else {
                return (None, defaults);
            };
            let vip = Prefix::host(keepstart.vip.addr);
            if let Err(e) = watched_by_keepstart(vip, &loopback, Some(keepstart)) {
                r.refuse_default("announce", format!("the default, the VIP {vip}: {e}"));
                return (None, defaults);
            }
            vec![vip]
        }
    };
    let (Some(local_as), Some(router_id), Some(neighbors)) = (local_as, router_id, neighbors)
    else {
        return (None, defaults);
    };
    let bgp = defaults.with_peering(local_as, router_id, neighbors, announce);
    (Some(bgp), defaults)
}

/// A key that is required when the section is enabled, optional otherwise.
fn take<T>(
    r: &mut SectionReader<'_>,
    enabled: bool,
    key: &str,
    parse: impl FnOnce(&Value) -> Result<T, String>,
    expected: &str,
) -> Option<T> {
    if enabled {
        r.required(key, parse, expected)
    } else {
        r.optional(key, parse)
    }
}

fn word(v: &Value) -> Result<Word, String> {
    text(v)?.parse()
}

fn asn(v: &Value) -> Result<Asn, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .and_then(Asn::new)
        .ok_or_else(|| format!("{} is not an AS number from 1 to 4294967295", kind(v)))
}

fn router_id(v: &Value) -> Result<Ipv4Addr, String> {
    text(v)?
        .parse()
        .map_err(|_| format!("{} is not an IPv4 address (a router-id is one)", kind(v)))
}

/// The neighbor list: each item a mapping of `address` and `remote-as`, no address twice.
fn neighbors(v: &Value) -> Result<Vec<Neighbor>, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "{} is not a list of {{address, remote-as}}",
            kind(v)
        ));
    };
    if items.is_empty() {
        return Err("empty: at least one neighbor is needed to announce to".into());
    }
    let mut out: Vec<Neighbor> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let Value::Object(fields) = item else {
            return Err(format!(
                "item {n} is {}, not {{address, remote-as}}",
                kind(item)
            ));
        };
        if let Some(extra) = fields
            .keys()
            .find(|k| !["address", "remote-as"].contains(&k.as_str()))
        {
            return Err(format!(
                "item {n}: unknown key `{extra}` (expected address, remote-as)"
            ));
        }
        let address = fields
            .get("address")
            .ok_or_else(|| format!("item {n}: `address` is missing"))
            .and_then(|a| {
                text(a)?
                    .parse::<IpAddr>()
                    .map_err(|_| format!("item {n}: address {} is not an IP address", kind(a)))
            })?;
        let remote_as = fields
            .get("remote-as")
            .ok_or_else(|| format!("item {n}: `remote-as` is missing"))
            .and_then(|a| asn(a).map_err(|e| format!("item {n}: remote-as {e}")))?;
        if out.iter().any(|o| o.address == address) {
            return Err(format!("item {n}: neighbor {address} is listed twice"));
        }
        out.push(Neighbor { address, remote_as });
    }
    Ok(out)
}

/// The prefixes to announce; none may put the VIP itself on a NIC keepstart watches for it.
fn announce(
    v: &Value,
    loopback: &Ifname,
    keepstart: Option<&Keepstart>,
) -> Result<Vec<Prefix>, String> {
    let items = match v {
        Value::Array(items) => items.as_slice(),
        Value::String(_) => std::slice::from_ref(v),
        other => return Err(format!("{} is not a list of prefixes", kind(other))),
    };
    if items.is_empty() {
        return Err(
            "empty: list at least one prefix, or leave the key out to announce the VIP".into(),
        );
    }
    let mut out: Vec<Prefix> = Vec::new();
    for item in items {
        let prefix: Prefix = text(item)?.parse().map_err(|e| format!("{e}"))?;
        watched_by_keepstart(prefix, loopback, keepstart)?;
        if !out.contains(&prefix) {
            out.push(prefix);
        }
    }
    Ok(out)
}

/// Refuses a prefix that would put the VIP itself on a NIC keepstart watches: the node would
/// find its own announcement and stay MASTER for ever.
pub fn watched_by_keepstart(
    prefix: Prefix,
    loopback: &Ifname,
    keepstart: Option<&Keepstart>,
) -> Result<(), String> {
    match keepstart {
        Some(ks)
            if prefix.addr() == ks.vip.addr
                && ks.nic.as_deref().is_none_or(|nic| nic == loopback.as_str()) =>
        {
            Err(format!(
                "{prefix} would put the VIP on {loopback}, where keepstart (nic: {}) would find it \
                 and stay MASTER; set keepstart.nic to the NIC the VIP moves on",
                ks.nic.as_deref().unwrap_or("any")
            ))
        }
        _ => Ok(()),
    }
}

fn machine_hostname() -> Word {
    let name = super::libra::hostname();
    let first = name.split('.').next().unwrap_or_default();
    first.parse().unwrap_or_else(|_| Word::known("keepserver"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{ConfigError, KeyProblem, parse};
    use super::*;

    const KEEPSTART: &str = "keepstart:\n  nic: eth0\n  vip: 192.0.2.10\n  start: s\n  stop: t\n";

    fn load(bgp: &str) -> Result<Option<Bgp>, Vec<KeyProblem>> {
        let text = format!("application:\n  workspace: /srv/ks\n{KEEPSTART}bgp:\n{bgp}");
        match parse(&text, Path::new("/etc/keepserver/config.yaml")) {
            Ok(loaded) => Ok(loaded.config.bgp),
            Err(ConfigError::Invalid { problems }) => Err(problems),
            Err(other) => panic!("{other}"),
        }
    }

    const MINIMAL: &str = "  enabled: true\n  local-as: 65001\n  router-id: 198.51.100.1\n  \
                           neighbors: [{address: 198.51.100.2, remote-as: 65000}]\n";

    #[test]
    fn defaults_announce_the_vip_from_the_workspace_file() {
        let b = load(MINIMAL).expect("valid").expect("enabled");
        assert_eq!(b.announce, [Prefix::host("192.0.2.10".parse().unwrap())]);
        assert_eq!(b.loopback.as_str(), "lo");
        assert_eq!(b.config, PathBuf::from("/srv/ks/bgpd.conf"));
        assert_eq!(b.apply, ApplyMethod::Vtysh);
        assert_eq!(b.vtysh, PathBuf::from("vtysh"));
        assert_eq!(b.frr_reload, PathBuf::from(DEFAULT_FRR_RELOAD));
        assert_eq!(b.log_file.to_string(), DEFAULT_LOG_FILE);
        assert_eq!(
            (b.route_map.as_str(), b.prefix_list.as_str()),
            ("bgp-access", "pl-route")
        );
        assert_eq!(b.advertisement_interval, 0);
        assert!(!b.require_running && !b.redistribute_static && b.password.is_none());
        assert!(b.pathspace.is_none());
        assert_eq!(b.neighbors[0].remote_as.to_string(), "65000");
    }

    #[test]
    fn the_built_in_defaults_are_valid_values() {
        assert!("lo".parse::<Ifname>().is_ok());
        for w in ["bgp-access", "pl-route", "keepserver"] {
            assert!(w.parse::<Word>().is_ok(), "{w}");
        }
        assert!(DEFAULT_LOG_FILE.parse::<LogFile>().is_ok());
    }

    #[test]
    fn absent_or_disabled_sections_announce_nothing_but_are_still_checked() {
        assert_eq!(load("  enabled: false\n"), Ok(None));
        let problems = load("  local-as: -3\n").expect_err("bad value");
        assert_eq!(problems[0].key, "bgp.local-as");
    }

    #[test]
    fn an_enabled_section_needs_its_peers() {
        let problems = load("  enabled: true\n").expect_err("missing keys");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["bgp.local-as", "bgp.router-id", "bgp.neighbors"]);
        let lines: Vec<u64> = problems
            .iter()
            .filter_map(|p| p.position.map(|at| at.line))
            .collect();
        assert_eq!(lines, [9, 9, 9], "at the section: {problems:?}");
    }

    #[test]
    fn bad_values_name_key_line_and_column() {
        let cases = [
            (
                "  router-id: 2001:db8::1\n",
                "bgp.router-id",
                "not an IPv4 address",
            ),
            (
                "  local-as: 4294967296\n",
                "bgp.local-as",
                "not an AS number",
            ),
            (
                "  announce: [192.0.2.10/24]\n",
                "bgp.announce",
                "the prefix is 192.0.2.0/24",
            ),
            ("  announce: []\n", "bgp.announce", "empty"),
            ("  hostname: \"a b\"\n", "bgp.hostname", "not a single word"),
            ("  password: \"x\\ny\"\n", "bgp.password", "printable ASCII"),
            (
                "  loopback: lo:0\n",
                "bgp.loopback",
                "not a network interface name",
            ),
            ("  apply: restart\n", "bgp.apply", "vtysh or frr-reload"),
            ("  log-file: bgpd.log\n", "bgp.log-file", "absolute path"),
            (
                "  advertisement-interval: 9000\n",
                "bgp.advertisement-interval",
                "0 to 600",
            ),
            (
                "  require-running: true\n",
                "bgp.require-running",
                "needs keepstart.is-running",
            ),
            (
                "  neighbors: [{address: 198.51.100.2}]\n",
                "bgp.neighbors",
                "item 1: `remote-as` is missing",
            ),
            (
                "  neighbors:\n    - {address: 198.51.100.2, remote-as: 1}\n    - {address: 198.51.100.2, remote-as: 2}\n",
                "bgp.neighbors",
                "item 2: neighbor 198.51.100.2 is listed twice",
            ),
            (
                "  neighbors: [{address: router1, remote-as: 1}]\n",
                "bgp.neighbors",
                "not an IP address",
            ),
        ];
        for (yaml, key, message) in cases {
            let problems = load(&format!("  enabled: false\n{yaml}")).expect_err(yaml);
            let p = &problems[0];
            assert_eq!(p.key, key, "{yaml}");
            assert!(p.message.contains(message), "{yaml}: {}", p.message);
            let at = p.position.expect("a position");
            // The value's own line: the key's, or the next one for a block list.
            assert!((10..=11).contains(&at.line) && at.column > 1, "{yaml}: {p}");
        }
    }

    #[test]
    fn the_vip_may_not_go_on_a_loopback_keepstart_watches() {
        let any_nic =
            "keepstart:\n  vip: 192.0.2.10\n  start: s\n  stop: t\nbgp:\n  enabled: true\n";
        let Err(ConfigError::Invalid { problems }) =
            parse(any_nic, Path::new("/etc/keepserver/config.yaml"))
        else {
            panic!("the VIP on lo with keepstart watching any NIC must be refused");
        };
        let announce = problems.iter().find(|p| p.key == "bgp.announce");
        assert!(
            announce.is_some_and(|p| p.message.contains("stay MASTER")),
            "{problems:?}"
        );
        let same_nic = load("  loopback: eth0\n  announce: [192.0.2.10]\n").expect_err("eth0");
        assert!(
            same_nic[0].message.contains("stay MASTER"),
            "{}",
            same_nic[0]
        );
        assert!(load("  announce: [192.0.2.10, 203.0.113.0/24]\n").is_ok());
    }
}
