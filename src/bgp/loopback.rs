//! The announced prefixes on the loopback, over rtnetlink: added before a prefix is announced (so
//! zebra sees it connected and bgpd's import check lets the `network` statement through, and
//! the node accepts the traffic the route draws), removed after it is withdrawn.
//!
//! It remembers which prefixes it added itself and only ever removes those: an address an
//! operator (or keepalived) put on the loopback stays, whatever the announcer does. The memory is
//! kept in a small file too (`<bgp.config>.loopback`, one `IFNAME PREFIX` per line), so a
//! keepserver that was killed and restarted still removes what it had added. The file is written
//! by [`Loopback::release`], the last step, so its fsync is not on the way of an announcement; a
//! crash before it only leaves an added prefix unrecorded (not removed later), never a foreign
//! one recorded. What to add and remove is decided by the pure [`plan`]; the shell only carries it out.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use futures::TryStreamExt;
use log::{info, warn};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::Handle;

use super::error::BgpError;
use super::model::Prefix;
use crate::atomic_file as files;
use crate::ifname::Ifname;

/// What to do on the loopback to carry `wanted`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Wanted and not on the loopback: add (and remember as ours).
    pub add: Vec<Prefix>,
    /// Added by us and no longer wanted: remove.
    pub remove: Vec<Prefix>,
}

/// Compares `wanted` with what is `present` on the loopback and what we `added`.
pub fn plan(wanted: &[Prefix], present: &BTreeSet<Prefix>, added: &BTreeSet<Prefix>) -> Plan {
    Plan {
        add: wanted
            .iter()
            .filter(|p| !present.contains(p))
            .copied()
            .collect(),
        remove: added
            .iter()
            .filter(|p| !wanted.contains(p) && present.contains(p))
            .copied()
            .collect(),
    }
}

/// The prefixes of interface `name` in the record `text`; lines for other interfaces and lines
/// that do not parse (a hand-edited file) are left out.
pub fn read_record(text: &str, name: &Ifname) -> BTreeSet<Prefix> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(dev, _)| *dev == name.as_str())
        .filter_map(|(_, prefix)| prefix.trim().parse().ok())
        .collect()
}

/// The record of `added` on interface `name`.
pub fn write_record(name: &Ifname, added: &BTreeSet<Prefix>) -> String {
    added.iter().map(|p| format!("{name} {p}\n")).collect()
}

/// The loopback interface and the prefixes keepserver put on it.
pub struct Loopback {
    name: Ifname,
    handle: Option<Handle>,
    added: BTreeSet<Prefix>,
    record: PathBuf,
    /// What the record file says.
    recorded: BTreeSet<Prefix>,
}

impl Loopback {
    /// The interface `name`, with what `record` says keepserver added to it before; the netlink
    /// connection is opened on first use.
    pub fn new(name: Ifname, record: PathBuf) -> Self {
        let added = match std::fs::read_to_string(&record) {
            Ok(text) => read_record(&text, &name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => {
                warn!(
                    "bgp cannot read {}, so no earlier loopback prefix will be removed: {e}",
                    record.display()
                );
                BTreeSet::new()
            }
        };
        if !added.is_empty() {
            info!(
                "bgp loopback prefixes added by an earlier keepserver dev={name} prefixes={}",
                added
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        Loopback {
            name,
            handle: None,
            recorded: added.clone(),
            added,
            record,
        }
    }

    /// Writes the record when it differs from what was added (removes it when nothing is left).
    async fn save(&mut self) -> Result<(), BgpError> {
        if self.recorded == self.added {
            return Ok(());
        }
        if self.added.is_empty() {
            match tokio::fs::remove_file(&self.record).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(BgpError::Io {
                        action: format!("remove {}", self.record.display()),
                        source: e,
                    });
                }
                _ => {}
            }
        } else {
            files::replace(&self.record, &write_record(&self.name, &self.added)).await?;
        }
        self.recorded = self.added.clone();
        Ok(())
    }

    /// Puts every prefix of `wanted` on the interface that is not there yet.
    pub async fn ensure(&mut self, wanted: &[Prefix]) -> Result<(), BgpError> {
        let (handle, index, present) = self.look().await?;
        for prefix in plan(wanted, &present, &self.added).add {
            handle
                .address()
                .add(index, prefix.addr(), prefix.prefix_len())
                .execute()
                .await
                .map_err(BgpError::netlink(format!("add {prefix} to {}", self.name)))?;
            self.added.insert(prefix);
            info!(
                "bgp prefix added to loopback prefix={prefix} dev={}",
                self.name
            );
        }
        Ok(())
    }

    /// Removes the prefixes keepserver added that are not in `wanted`, and records what is left.
    pub async fn release(&mut self, wanted: &[Prefix]) -> Result<(), BgpError> {
        if self.added.iter().all(|p| wanted.contains(p)) {
            return self.save().await;
        }
        let (handle, index, present) = self.look().await?;
        // Ours but already gone (removed by someone else): nothing left to remove.
        self.added
            .retain(|p| wanted.contains(p) || present.contains(p));
        for prefix in plan(wanted, &present, &self.added).remove {
            let mut msg = AddressMessage::default();
            msg.header.family = if prefix.is_ipv4() {
                netlink_packet_route::AddressFamily::Inet
            } else {
                netlink_packet_route::AddressFamily::Inet6
            };
            msg.header.prefix_len = prefix.prefix_len();
            msg.header.index = index;
            msg.attributes
                .push(AddressAttribute::Address(prefix.addr()));
            if prefix.is_ipv4() {
                msg.attributes.push(AddressAttribute::Local(prefix.addr()));
            }
            handle
                .address()
                .del(msg)
                .execute()
                .await
                .map_err(BgpError::netlink(format!(
                    "remove {prefix} from {}",
                    self.name
                )))?;
            self.added.remove(&prefix);
            info!(
                "bgp prefix removed from loopback prefix={prefix} dev={}",
                self.name
            );
        }
        self.save().await
    }

    /// The connection, the interface's index and the prefixes on it now.
    async fn look(&mut self) -> Result<(Handle, u32, BTreeSet<Prefix>), BgpError> {
        let handle = match &self.handle {
            Some(h) => h.clone(),
            None => {
                let (conn, handle, _) = rtnetlink::new_connection()
                    .map_err(|source| BgpError::NetlinkSocket { source })?;
                tokio::spawn(conn);
                self.handle = Some(handle.clone());
                handle
            }
        };
        let index = self.index(&handle).await?;
        let mut present = BTreeSet::new();
        let mut addrs = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let listing = format!("list the addresses of {}", self.name);
        while let Some(msg) = addrs
            .try_next()
            .await
            .map_err(BgpError::netlink(listing.clone()))?
        {
            if let Some(prefix) = prefix_of(&msg) {
                present.insert(prefix);
            }
        }
        Ok((handle, index, present))
    }

    async fn index(&mut self, handle: &Handle) -> Result<u32, BgpError> {
        let found = handle
            .link()
            .get()
            .match_name(self.name.as_str().to_string())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) => Err(BgpError::NoInterface {
                name: self.name.to_string(),
            }),
            Err(e) => {
                // A dead connection is rebuilt on the next attempt.
                warn!("bgp netlink lookup failed dev={} error=\"{e}\"", self.name);
                self.handle = None;
                Err(BgpError::netlink(format!(
                    "look up interface {}",
                    self.name
                ))(e))
            }
        }
    }
}

/// The address of `msg` with its prefix length, as the prefix it would carry.
fn prefix_of(msg: &AddressMessage) -> Option<Prefix> {
    let addr: IpAddr = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        })
        .or_else(|| {
            msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        })?;
    format!("{addr}/{}", msg.header.prefix_len).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn set(items: &[&str]) -> BTreeSet<Prefix> {
        items.iter().map(|s| p(s)).collect()
    }

    #[test]
    fn adds_what_is_missing_and_removes_only_its_own() {
        let vip = p("192.0.2.10/32");
        let other = p("192.0.2.99/32");
        let cases = [
            // Announcing: the VIP is missing, so it is added.
            (vec![vip], set(&[]), set(&[]), vec![vip], vec![]),
            // Already there (put by an operator): nothing to add, and it is not ours.
            (vec![vip], set(&["192.0.2.10/32"]), set(&[]), vec![], vec![]),
            // Withdrawn: ours goes, the operator's stays.
            (
                vec![],
                set(&["192.0.2.10/32", "192.0.2.99/32"]),
                set(&["192.0.2.10/32"]),
                vec![],
                vec![vip],
            ),
            // Withdrawn, but not ours: nothing is removed.
            (vec![], set(&["192.0.2.10/32"]), set(&[]), vec![], vec![]),
            // Ours but already gone: nothing to remove.
            (vec![], set(&[]), set(&["192.0.2.10/32"]), vec![], vec![]),
            // Reconfigured from the VIP to another prefix.
            (
                vec![other],
                set(&["192.0.2.10/32"]),
                set(&["192.0.2.10/32"]),
                vec![other],
                vec![vip],
            ),
        ];
        for (wanted, present, added, add, remove) in cases {
            assert_eq!(
                plan(&wanted, &present, &added),
                Plan { add, remove },
                "wanted={wanted:?} present={present:?} added={added:?}"
            );
        }
    }

    #[test]
    fn the_record_keeps_this_interfaces_prefixes() {
        let lo: Ifname = "lo".parse().unwrap();
        let added = set(&["192.0.2.10/32", "2001:db8::10/128"]);
        let text = write_record(&lo, &added);
        assert_eq!(text, "lo 192.0.2.10/32\nlo 2001:db8::10/128\n");
        assert_eq!(read_record(&text, &lo), added);
        let mixed = format!("{text}eth9 198.51.100.7/32\nlo garbage\n\n");
        assert_eq!(read_record(&mixed, &lo), added);
        assert!(read_record(&mixed, &"eth0".parse().unwrap()).is_empty());
    }

    #[test]
    fn a_host_address_on_the_interface_is_a_host_prefix() {
        let mut msg = AddressMessage::default();
        msg.header.prefix_len = 32;
        msg.attributes
            .push(AddressAttribute::Local("192.0.2.10".parse().unwrap()));
        assert_eq!(prefix_of(&msg), Some(p("192.0.2.10/32")));
        msg.header.prefix_len = 24;
        // 192.0.2.10/24 is an address in a subnet, not the prefix 192.0.2.0/24.
        assert_eq!(prefix_of(&msg), None);
    }
}
