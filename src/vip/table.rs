//! The pure table of links and addresses built from rtnetlink messages, and the one question it
//! answers: is the VIP on the NIC, and is that NIC up?

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

/// What the table says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    name: String,
    up: bool,
}

/// The state of the watched NIC, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicState {
    /// No link by that name exists (yet).
    Absent,
    /// The link exists but is administratively down.
    Down,
    /// The link is up.
    Up,
}

/// Links (index → name, up) and the addresses on each, as rtnetlink reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrTable {
    links: HashMap<u32, Link>,
    addrs: HashMap<u32, HashSet<IpAddr>>,
}

impl AddrTable {
    /// Applies one dump entry or notification; messages of other kinds are ignored.
    pub fn apply(&mut self, msg: &RouteNetlinkMessage) {
        match msg {
            RouteNetlinkMessage::NewLink(link) => self.new_link(link),
            RouteNetlinkMessage::DelLink(link) => {
                self.links.remove(&link.header.index);
                self.addrs.remove(&link.header.index);
            }
            RouteNetlinkMessage::NewAddress(addr) => {
                if let Some(ip) = local_address(addr) {
                    self.addrs.entry(addr.header.index).or_default().insert(ip);
                }
            }
            RouteNetlinkMessage::DelAddress(addr) => {
                if let (Some(ip), Some(set)) =
                    (local_address(addr), self.addrs.get_mut(&addr.header.index))
                {
                    set.remove(&ip);
                }
            }
            _ => {}
        }
    }

    /// True when `vip` is on an up link named `nic` (or on any up link when `nic` is `None`).
    pub fn vip_present(&self, vip: IpAddr, nic: Option<&str>) -> bool {
        self.addrs.iter().any(|(index, set)| {
            set.contains(&vip)
                && self
                    .links
                    .get(index)
                    .is_some_and(|l| l.up && nic.is_none_or(|n| n == l.name))
        })
    }

    /// Whether the named NIC exists and is up.
    pub fn nic_state(&self, nic: &str) -> NicState {
        match self.links.values().find(|l| l.name == nic) {
            None => NicState::Absent,
            Some(l) if l.up => NicState::Up,
            Some(_) => NicState::Down,
        }
    }

    fn new_link(&mut self, link: &LinkMessage) {
        let index = link.header.index;
        let name = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        let up = link.header.flags.contains(LinkFlags::Up);
        // A notification may omit the name; keep the one we know.
        let name = match (name, self.links.get(&index)) {
            (Some(n), _) => n,
            (None, Some(known)) => known.name.clone(),
            (None, None) => return,
        };
        self.links.insert(index, Link { name, up });
    }
}

/// The interface's own address: IFA_LOCAL where present (on point-to-point links IFA_ADDRESS is
/// the peer), IFA_ADDRESS otherwise (IPv6).
fn local_address(msg: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => return Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: Option<&str>, up: bool) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags = LinkFlags::Up;
        }
        if let Some(n) = name {
            m.attributes.push(LinkAttribute::IfName(n.to_string()));
        }
        m
    }

    fn addr(index: u32, attrs: &[AddressAttribute]) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.attributes = attrs.to_vec();
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(msgs: Vec<RouteNetlinkMessage>) -> AddrTable {
        let mut t = AddrTable::default();
        for m in &msgs {
            t.apply(m);
        }
        t
    }

    use RouteNetlinkMessage::{DelAddress, DelLink, NewAddress, NewLink};

    #[test]
    fn vip_on_named_up_nic_is_present() {
        let vip = ip("192.0.2.10");
        let t = table(vec![
            NewLink(link(2, Some("eth0"), true)),
            NewAddress(addr(
                2,
                &[AddressAttribute::Local(vip), AddressAttribute::Address(vip)],
            )),
        ]);
        assert!(t.vip_present(vip, Some("eth0")));
        assert!(t.vip_present(vip, None));
        assert!(!t.vip_present(vip, Some("eth1")));
        assert!(!t.vip_present(ip("192.0.2.11"), Some("eth0")));
    }

    #[test]
    fn point_to_point_peer_address_is_not_ours() {
        let t = table(vec![
            NewLink(link(3, Some("tun0"), true)),
            NewAddress(addr(
                3,
                &[
                    AddressAttribute::Local(ip("198.51.100.1")),
                    AddressAttribute::Address(ip("198.51.100.2")),
                ],
            )),
        ]);
        assert!(t.vip_present(ip("198.51.100.1"), Some("tun0")));
        assert!(!t.vip_present(ip("198.51.100.2"), Some("tun0")));
    }

    #[test]
    fn ipv6_uses_ifa_address() {
        let vip = ip("2001:db8::10");
        let t = table(vec![
            NewLink(link(2, Some("eth0"), true)),
            NewAddress(addr(2, &[AddressAttribute::Address(vip)])),
        ]);
        assert!(t.vip_present(vip, Some("eth0")));
    }

    #[test]
    fn down_deleted_or_absent_nic_is_not_master() {
        let vip = ip("192.0.2.10");
        let mut t = table(vec![
            NewLink(link(2, Some("eth0"), true)),
            NewAddress(addr(2, &[AddressAttribute::Local(vip)])),
        ]);
        t.apply(&NewLink(link(2, None, false)));
        assert!(!t.vip_present(vip, Some("eth0")), "down");
        assert_eq!(t.nic_state("eth0"), NicState::Down);
        t.apply(&NewLink(link(2, None, true)));
        assert!(t.vip_present(vip, Some("eth0")), "up again, name kept");
        t.apply(&DelLink(link(2, Some("eth0"), false)));
        assert!(!t.vip_present(vip, None), "deleted");
        assert_eq!(t.nic_state("eth0"), NicState::Absent);
        t.apply(&NewLink(link(2, Some("eth0"), true)));
        assert!(!t.vip_present(vip, None), "addresses went with the link");
    }

    #[test]
    fn address_removal_and_rename() {
        let vip = ip("203.0.113.5");
        let mut t = table(vec![
            NewLink(link(4, Some("veth0"), true)),
            NewAddress(addr(4, &[AddressAttribute::Local(vip)])),
        ]);
        t.apply(&NewLink(link(4, Some("wan0"), true)));
        assert!(t.vip_present(vip, Some("wan0")));
        assert!(!t.vip_present(vip, Some("veth0")));
        t.apply(&DelAddress(addr(4, &[AddressAttribute::Local(vip)])));
        assert!(!t.vip_present(vip, Some("wan0")));
    }
}
