//! What `vtysh` must remove from the running bgpd before the rendered file is applied: pure
//! functions over configuration text.
//!
//! Applying a file with `vtysh -f` only adds and changes; it never removes a line the file no
//! longer has. Of what keepserver renders, the lines that can disappear are `network` statements
//! (every withdrawal), neighbors, `redistribute static` and the whole `router bgp` when the AS
//! changes. Both the running configuration (`show running-config`, FRR's normalized form, with
//! IPv4 networks inside `address-family ipv4 unicast`) and the rendered file (IPv4 networks
//! directly under `router bgp`) are read into the same [`Owned`] summary, and the removals are
//! the difference. Re-applying an unchanged line is a no-op in bgpd, so sessions never reset for
//! a withdrawal.

use std::collections::BTreeSet;

/// The address family a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 unicast: top-level `router bgp` lines and `address-family ipv4 unicast`.
    V4,
    /// `address-family ipv6 unicast`.
    V6,
}

impl Family {
    fn block(self) -> &'static str {
        match self {
            Family::V4 => "address-family ipv4 unicast",
            Family::V6 => "address-family ipv6 unicast",
        }
    }
}

/// The removable parts of one configuration's default-VRF `router bgp`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The AS of `router bgp`, if there is one.
    pub asn: Option<String>,
    /// `network` statements, by family.
    pub networks: BTreeSet<(Family, String)>,
    /// Neighbors (by the word after `neighbor` in their `remote-as` line).
    pub neighbors: BTreeSet<String>,
    /// Families with `redistribute static`.
    pub redistribute_static: BTreeSet<Family>,
}

/// Where the reader is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Outside,
    /// In the default VRF's `router bgp`, in this family (`None`: a family we do not manage).
    Router(Option<Family>),
    /// In a block we do not manage (another VRF's `router bgp`).
    Elsewhere,
}

/// Reads the removable parts of `text`.
pub fn owned(text: &str) -> Owned {
    let mut owned = Owned::default();
    let mut place = Place::Outside;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !line.starts_with(' ') {
            place = match words.as_slice() {
                ["router", "bgp", asn] => {
                    owned.asn = Some((*asn).to_string());
                    Place::Router(Some(Family::V4))
                }
                ["router", "bgp", ..] => Place::Elsewhere,
                _ => Place::Outside,
            };
            continue;
        }
        let Place::Router(family) = place else {
            continue;
        };
        match (words.as_slice(), family) {
            (["address-family", "ipv4"] | ["address-family", "ipv4", "unicast"], _) => {
                place = Place::Router(Some(Family::V4));
            }
            (["address-family", "ipv6"] | ["address-family", "ipv6", "unicast"], _) => {
                place = Place::Router(Some(Family::V6));
            }
            (["address-family", ..], _) => place = Place::Router(None),
            (["exit-address-family"], _) => place = Place::Router(Some(Family::V4)),
            (["network", prefix, ..], Some(f)) => {
                owned.networks.insert((f, (*prefix).to_string()));
            }
            (["neighbor", name, "remote-as", ..], _) => {
                owned.neighbors.insert((*name).to_string());
            }
            (["redistribute", "static", ..], Some(f)) => {
                owned.redistribute_static.insert(f);
            }
            _ => {}
        }
    }
    owned
}

/// The configuration-mode commands (after `configure terminal`) that remove from `running`
/// what `desired` does not have; empty when there is nothing to remove.
pub fn removals(running: &Owned, desired: &Owned) -> Vec<String> {
    let Some(asn) = &running.asn else {
        return Vec::new();
    };
    if running.asn != desired.asn {
        return vec![format!("no router bgp {asn}")];
    }
    let mut commands = Vec::new();
    for neighbor in running.neighbors.difference(&desired.neighbors) {
        commands.push(format!("no neighbor {neighbor}"));
    }
    for family in [Family::V4, Family::V6] {
        let mut lines: Vec<String> = running
            .networks
            .difference(&desired.networks)
            .filter(|(f, _)| *f == family)
            .map(|(_, prefix)| format!("no network {prefix}"))
            .collect();
        if running.redistribute_static.contains(&family)
            && !desired.redistribute_static.contains(&family)
        {
            lines.push("no redistribute static".to_string());
        }
        if !lines.is_empty() {
            commands.push(family.block().to_string());
            commands.extend(lines);
            commands.push("exit-address-family".to_string());
        }
    }
    if commands.is_empty() {
        return commands;
    }
    commands.insert(0, format!("router bgp {asn}"));
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FRR 8.4's `show running-config` of a bgpd announcing two prefixes, one per family.
    const RUNNING: &str = "Building configuration...

Current configuration:
!
frr version 8.4.4
frr defaults traditional
hostname node
log file /var/log/frr/bgpd.log
!
password pass
!
router bgp 65001
 bgp router-id 198.51.100.1
 neighbor 198.51.100.2 remote-as 65000
 neighbor 198.51.100.2 advertisement-interval 0
 neighbor 2001:db8:1::2 remote-as 65000
 !
 address-family ipv4 unicast
  redistribute static route-map bgp-access
  network 192.0.2.10/32
  neighbor 198.51.100.2 route-map bgp-access out
 exit-address-family
 !
 address-family ipv6 unicast
  network 2001:db8::10/128
  neighbor 2001:db8:1::2 activate
 exit-address-family
exit
!
router bgp 65001 vrf blue
 neighbor 203.0.113.1 remote-as 65002
 network 203.0.113.0/24
exit
!
route-map bgp-access permit 10
 match ip address prefix-list pl-route
exit
!
end
";

    /// The same configuration as keepserver renders it, without the announcements.
    const WITHDRAWN: &str = "hostname node
password pass
!
router bgp 65001
 bgp router-id 198.51.100.1
 redistribute static route-map bgp-access
 neighbor 198.51.100.2 remote-as 65000
 neighbor 2001:db8:1::2 remote-as 65000
 address-family ipv6 unicast
  neighbor 2001:db8:1::2 activate
 exit-address-family
!
line vty
";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_frr_running_config_and_skips_other_vrfs() {
        let o = owned(RUNNING);
        assert_eq!(o.asn.as_deref(), Some("65001"));
        assert_eq!(
            o.networks,
            BTreeSet::from([
                (Family::V4, "192.0.2.10/32".to_string()),
                (Family::V6, "2001:db8::10/128".to_string())
            ])
        );
        assert_eq!(
            o.neighbors,
            BTreeSet::from(["198.51.100.2".to_string(), "2001:db8:1::2".to_string()])
        );
        assert_eq!(o.redistribute_static, BTreeSet::from([Family::V4]));
    }

    #[test]
    fn withdrawing_removes_only_the_networks() {
        assert_eq!(
            removals(&owned(RUNNING), &owned(WITHDRAWN)),
            strings(&[
                "router bgp 65001",
                "address-family ipv4 unicast",
                "no network 192.0.2.10/32",
                "exit-address-family",
                "address-family ipv6 unicast",
                "no network 2001:db8::10/128",
                "exit-address-family",
            ])
        );
    }

    #[test]
    fn nothing_is_removed_when_the_file_has_everything() {
        let announced = WITHDRAWN.replace(
            " neighbor 2001:db8:1::2 remote-as 65000\n",
            " neighbor 2001:db8:1::2 remote-as 65000\n network 192.0.2.10/32\n",
        );
        let announced = announced.replace(
            "  neighbor 2001:db8:1::2 activate\n",
            "  network 2001:db8::10/128\n  neighbor 2001:db8:1::2 activate\n",
        );
        assert_eq!(
            removals(&owned(RUNNING), &owned(&announced)),
            Vec::<String>::new()
        );
        assert_eq!(
            removals(&Owned::default(), &owned(&announced)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn dropped_neighbors_and_redistribution_are_removed() {
        let desired = "router bgp 65001\n neighbor 198.51.100.2 remote-as 65000\n!\n";
        assert_eq!(
            removals(&owned(RUNNING), &owned(desired)),
            strings(&[
                "router bgp 65001",
                "no neighbor 2001:db8:1::2",
                "address-family ipv4 unicast",
                "no network 192.0.2.10/32",
                "no redistribute static",
                "exit-address-family",
                "address-family ipv6 unicast",
                "no network 2001:db8::10/128",
                "exit-address-family",
            ])
        );
    }

    #[test]
    fn a_new_as_replaces_the_whole_router() {
        let desired = "router bgp 65009\n neighbor 198.51.100.2 remote-as 65000\n!\n";
        assert_eq!(
            removals(&owned(RUNNING), &owned(desired)),
            strings(&["no router bgp 65001"])
        );
    }
}
