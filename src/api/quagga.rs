//! `/api/quagga`: the KINX agent's BGP settings for this node, which set the BGP announcer's
//! peering at run time: the same model the `bgp:` section of config.yaml feeds, applied through
//! FRR as the announcer always does. What the request does not say (how bgpd is reached, the
//! file's route-map and prefix-list names, ...) comes from the `bgp:` section, enabled or not.
//! Deleting it gives the announcer back to config.yaml.
//!
//! Fields, as KINX named them: `hostname` (bgpd.conf's `hostname`), `inter_as_number` (this
//! node's AS), `vm_addr` (this node's address: the `bgp router-id`), `primary_gateway_addr` and
//! `secondary_gateway_addr` (the upstream routers, the neighbors), `router_as_number` (their
//! AS), `vip_addr` (the address announced, as a host route, and put on the loopback).

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::fields::{Fields, address, integer, string};
use crate::bgp::model::{Asn, Neighbor, Prefix, Word};
use crate::config::bgp::{BgpDefaults, watched_by_keepstart};
use crate::config::{Bgp, Keepstart};

/// The `/api/quagga` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quagga {
    /// bgpd.conf's `hostname`.
    pub hostname: String,
    /// This node's AS.
    pub inter_as_number: u32,
    /// This node's address (the router-id).
    pub vm_addr: Ipv4Addr,
    /// The first upstream router.
    pub primary_gateway_addr: IpAddr,
    /// The second upstream router, if there is one.
    pub secondary_gateway_addr: Option<IpAddr>,
    /// The upstream routers' AS.
    pub router_as_number: u32,
    /// The address announced while this node should be.
    pub vip_addr: IpAddr,
}

/// A field given now, or kept from the stored object; required.
fn need<T>(key: &str, given: Option<T>, kept: Option<T>) -> Result<T, ApiError> {
    given
        .or(kept)
        .ok_or_else(|| ApiError::bad(key, "is required"))
}

fn asn(v: &Value) -> Result<u32, String> {
    integer(v, 1, i64::from(u32::MAX)).map(|n| n as u32)
}

fn word(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    s.parse::<Word>().map(|_| s.to_string())
}

fn ipv4(v: &Value) -> Result<Ipv4Addr, String> {
    match address(v)? {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => Err(format!("{a} is not an IPv4 address (a router-id is one)")),
    }
}

impl Quagga {
    /// The object from a create or update request (`current`: what is stored).
    pub fn read(body: &Value, current: Option<&Quagga>) -> Result<Quagga, ApiError> {
        let mut f = Fields::of(body)?;
        let hostname = f.optional("hostname", word)?;
        let local = f.optional("inter_as_number", asn)?;
        let vm = f.optional("vm_addr", ipv4)?;
        let primary = f.optional("primary_gateway_addr", address)?;
        let secondary = f.optional("secondary_gateway_addr", address)?;
        let remote = f.optional("router_as_number", asn)?;
        let vip = f.optional("vip_addr", address)?;

        let q = Quagga {
            hostname: need("hostname", hostname, current.map(|c| c.hostname.clone()))?,
            inter_as_number: need("inter_as_number", local, current.map(|c| c.inter_as_number))?,
            vm_addr: need("vm_addr", vm, current.map(|c| c.vm_addr))?,
            primary_gateway_addr: need(
                "primary_gateway_addr",
                primary,
                current.map(|c| c.primary_gateway_addr),
            )?,
            secondary_gateway_addr: secondary.or(current.and_then(|c| c.secondary_gateway_addr)),
            router_as_number: need(
                "router_as_number",
                remote,
                current.map(|c| c.router_as_number),
            )?,
            vip_addr: need("vip_addr", vip, current.map(|c| c.vip_addr))?,
        };
        f.finish()?;
        if q.secondary_gateway_addr == Some(q.primary_gateway_addr) {
            return Err(ApiError::bad(
                "secondary_gateway_addr",
                "is the primary gateway again",
            ));
        }
        Ok(q)
    }

    /// The announcer's section: this peering with `defaults`; refused (409) when announcing the
    /// VIP on the loopback would put it where keepstart looks for it.
    pub fn bgp(&self, defaults: &BgpDefaults, keepstart: &Keepstart) -> Result<Bgp, ApiError> {
        let asn = |n: u32| Asn::new(n).unwrap_or_else(|| unreachable!("read checked 1.."));
        let remote_as = asn(self.router_as_number);
        let neighbors = std::iter::once(self.primary_gateway_addr)
            .chain(self.secondary_gateway_addr)
            .map(|address| Neighbor { address, remote_as })
            .collect();
        let vip = Prefix::host(self.vip_addr);
        watched_by_keepstart(vip, &defaults.loopback, Some(keepstart))
            .map_err(|e| ApiError::conflict(Some("vip_addr"), e))?;
        let mut bgp = defaults.with_peering(
            asn(self.inter_as_number),
            self.vm_addr,
            neighbors,
            vec![vip],
        );
        bgp.hostname = self
            .hostname
            .parse()
            .unwrap_or_else(|e| unreachable!("read checked the word: {e}"));
        Ok(bgp)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(nic: &str) -> crate::config::Config {
        let text = format!(
            "keepstart: {{nic: {nic}, vip: 192.0.2.47, start: s, stop: t}}\n\
             bgp: {{redistribute-static: true}}\n"
        );
        crate::config::parse(&text, std::path::Path::new("/etc/keepserver/config.yaml"))
            .expect("valid")
            .config
    }

    fn seed() -> Value {
        json!({"hostname": "lbv-37f0c3aa", "inter_as_number": 50235, "vm_addr": "198.51.100.235",
               "primary_gateway_addr": "198.51.100.2", "secondary_gateway_addr": "198.51.100.3",
               "router_as_number": "60201", "vip_addr": "192.0.2.47"})
    }

    #[test]
    fn the_seeds_request_sets_the_peering_and_renders_its_bgpd_conf() {
        let c = config("eth0");
        let q = Quagga::read(&seed(), None).expect("valid");
        let bgp = q.bgp(&c.bgp_defaults, &c.keepstart).expect("bgp");
        let text = crate::bgp::render::render(&bgp, &bgp.announce);
        for line in [
            "hostname lbv-37f0c3aa",
            "router bgp 50235",
            " bgp router-id 198.51.100.235",
            " redistribute static route-map bgp-access",
            " neighbor 198.51.100.2 remote-as 60201",
            " neighbor 198.51.100.3 remote-as 60201",
            " network 192.0.2.47/32",
            "route-map bgp-access permit 10",
            " match ip address prefix-list pl-route",
            "ip prefix-list pl-route seq 10 permit 0.0.0.0/0 ge 31",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }

    #[test]
    fn bad_fields_are_named_and_updates_keep_the_rest() {
        let mut bad = seed();
        bad["vm_addr"] = json!("2001:db8::1");
        assert_eq!(
            Quagga::read(&bad, None).unwrap_err().field.as_deref(),
            Some("vm_addr")
        );
        let mut bad = seed();
        bad["hostname"] = json!("two words");
        assert_eq!(
            Quagga::read(&bad, None).unwrap_err().field.as_deref(),
            Some("hostname")
        );
        let e = Quagga::read(&json!({"hostname": "a"}), None).unwrap_err();
        assert_eq!(e.reason, "is required");
        let q = Quagga::read(&seed(), None).expect("valid");
        let moved = Quagga::read(&json!({"vip_addr": "192.0.2.48"}), Some(&q)).expect("update");
        assert_eq!(moved.vm_addr, q.vm_addr);
        assert_eq!(moved.vip_addr.to_string(), "192.0.2.48");
    }

    #[test]
    fn announcing_the_vip_where_keepstart_watches_is_refused() {
        let c = config("lo");
        let q = Quagga::read(&seed(), None).expect("valid");
        let e = q.bgp(&c.bgp_defaults, &c.keepstart).unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (409, Some("vip_addr")));
    }
}
