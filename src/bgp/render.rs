//! bgpd.conf from the `bgp` section and the prefixes announced now: a pure function, so the file
//! is the same for the same inputs and "nothing changed" is a string comparison.
//!
//! The layout is the KINX seed's (hostname, password, `router bgp` with router-id, neighbors and
//! `network` statements, the `bgp-access` route-map over the `pl-route` prefix-list, log file),
//! written in the dialect FRR's and Quagga's bgpd both read, so no dialect switch is needed:
//! - the prefix-list and route-map come before `router bgp`, so no line names a route-map that
//!   does not exist yet (FRR warns about that when the file is applied);
//! - the route-map is applied outbound to every neighbor. FRR (since 7.4) sends nothing to an
//!   eBGP peer without an outbound policy (`bgp ebgp-requires-policy`); a policy that lets out
//!   only host routes and the configured prefixes is what operators would write, and keeps a
//!   misconfigured `redistribute` from leaking routes upstream. Quagga reads the same lines;
//! - `neighbor X advertisement-interval` is written out (default 0): Quagga's eBGP default is
//!   30 s, which would delay every announcement and withdrawal;
//! - IPv4 `network` statements sit directly under `router bgp` as in the seed (both treat that as
//!   IPv4 unicast); IPv6 ones go in `address-family ipv6 unicast`, where IPv6 neighbors are
//!   activated. That block, the IPv6 prefix-list and route-map entry depend only on the
//!   configuration, so announcing and withdrawing change nothing but the `network` lines.

use std::fmt::Write as _;

use super::model::Prefix;
use crate::config::Bgp;

/// The first line of every file keepserver writes.
pub const HEADER: &str = "! bgpd.conf written by keepserver; rewritten whenever the announcement \
                          changes: edit keepserver's `bgp` section instead.";

/// The bgpd.conf announcing `announced` (empty: nothing is announced).
pub fn render(bgp: &Bgp, announced: &[Prefix]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER}");
    let _ = writeln!(out, "hostname {}", bgp.hostname);
    if let Some(password) = &bgp.password {
        let _ = writeln!(out, "password {}", password.as_str());
    }
    let _ = writeln!(out, "log file {}", bgp.log_file);
    let _ = writeln!(out, "!");
    policy(&mut out, bgp);
    router(&mut out, bgp, announced);
    let _ = writeln!(out, "line vty");
    let _ = writeln!(out, "!");
    out
}

/// Whether the file needs the IPv6 parts.
fn uses_ipv6(bgp: &Bgp) -> bool {
    bgp.announce.iter().any(|p| !p.is_ipv4()) || bgp.neighbors.iter().any(|n| n.address.is_ipv6())
}

/// The prefix-lists and the route-map: host routes (as in the seed) plus each configured prefix
/// that is not one.
fn policy(out: &mut String, bgp: &Bgp) {
    let pl = &bgp.prefix_list;
    let rm = &bgp.route_map;
    let families: &[(bool, &str, &str, u8)] = if uses_ipv6(bgp) {
        &[(true, "ip", "0.0.0.0/0", 31), (false, "ipv6", "::/0", 127)]
    } else {
        &[(true, "ip", "0.0.0.0/0", 31)]
    };
    for (v4, keyword, any, ge) in families {
        let _ = writeln!(
            out,
            "{keyword} prefix-list {pl} seq 10 permit {any} ge {ge}"
        );
        let wider = bgp
            .announce
            .iter()
            .filter(|p| p.is_ipv4() == *v4 && p.prefix_len() < *ge);
        for (i, prefix) in wider.enumerate() {
            let _ = writeln!(
                out,
                "{keyword} prefix-list {pl} seq {} permit {prefix}",
                20 + 10 * i
            );
        }
    }
    let _ = writeln!(out, "!");
    for (seq, (_, keyword, _, _)) in families.iter().enumerate() {
        let _ = writeln!(out, "route-map {rm} permit {}", 10 * (seq + 1));
        let _ = writeln!(out, " match {keyword} address prefix-list {pl}");
        let _ = writeln!(out, "!");
    }
}

fn router(out: &mut String, bgp: &Bgp, announced: &[Prefix]) {
    let rm = &bgp.route_map;
    let _ = writeln!(out, "router bgp {}", bgp.local_as);
    let _ = writeln!(out, " bgp router-id {}", bgp.router_id);
    if bgp.redistribute_static {
        let _ = writeln!(out, " redistribute static route-map {rm}");
    }
    for n in &bgp.neighbors {
        let _ = writeln!(out, " neighbor {} remote-as {}", n.address, n.remote_as);
        let _ = writeln!(
            out,
            " neighbor {} advertisement-interval {}",
            n.address, bgp.advertisement_interval
        );
        let _ = writeln!(out, " neighbor {} route-map {rm} out", n.address);
    }
    for prefix in announced.iter().filter(|p| p.is_ipv4()) {
        let _ = writeln!(out, " network {prefix}");
    }
    if uses_ipv6(bgp) {
        let _ = writeln!(out, " address-family ipv6 unicast");
        if bgp.redistribute_static {
            let _ = writeln!(out, "  redistribute static route-map {rm}");
        }
        for prefix in announced.iter().filter(|p| !p.is_ipv4()) {
            let _ = writeln!(out, "  network {prefix}");
        }
        for n in bgp.neighbors.iter().filter(|n| n.address.is_ipv6()) {
            let _ = writeln!(out, "  neighbor {} activate", n.address);
            let _ = writeln!(out, "  neighbor {} route-map {rm} out", n.address);
        }
        let _ = writeln!(out, " exit-address-family");
    }
    let _ = writeln!(out, "!");
}

#[cfg(test)]
mod tests;
