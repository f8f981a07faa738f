//! The virtual IP and where it is: the `Vip` value from the config, the pure table of links and
//! addresses that says whether the VIP is on the NIC, and the netlink watcher that keeps it current.

pub mod table;
pub mod watcher;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The VIP as configured: an address, optionally with the prefix length it is added with.
///
/// Only the address decides the role; the prefix is kept for display and for announcing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vip {
    /// The address whose presence makes this node MASTER.
    pub addr: IpAddr,
    /// The prefix length from a CIDR form (`192.0.2.10/24`), if one was given.
    pub prefix: Option<u8>,
}

/// Why a VIP string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VipError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error(
        "`{0}` is not an IPv4 or IPv6 address (expected e.g. 192.0.2.10, 192.0.2.10/24 or 2001:db8::10)"
    )]
    Address(String),
    /// The prefix length is not a number in range for the address family.
    #[error("prefix length `{prefix}` is out of range for {addr} (expected 0-{max})")]
    Prefix {
        /// The address.
        addr: IpAddr,
        /// The prefix as written.
        prefix: String,
        /// The largest allowed prefix.
        max: u8,
    },
}

impl FromStr for Vip {
    type Err = VipError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr_part, prefix_part) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_part
            .parse()
            .map_err(|_| VipError::Address(addr_part.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_part {
            None => None,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => Some(n),
                _ => {
                    return Err(VipError::Prefix {
                        addr,
                        prefix: p.to_string(),
                        max,
                    });
                }
            },
        };
        Ok(Vip { addr, prefix })
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(p) => write!(f, "{}/{}", self.addr, p),
            None => write!(f, "{}", self.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_and_cidr_forms() {
        let cases = [
            ("127.0.0.1", "127.0.0.1", None),
            ("192.0.2.10/24", "192.0.2.10", Some(24)),
            ("2001:db8::10", "2001:db8::10", None),
            ("2001:db8::10/64", "2001:db8::10", Some(64)),
            (" 198.51.100.1/32 ", "198.51.100.1", Some(32)),
        ];
        for (input, addr, prefix) in cases {
            let vip: Vip = input.parse().unwrap();
            assert_eq!(vip.addr, addr.parse::<IpAddr>().unwrap(), "{input}");
            assert_eq!(vip.prefix, prefix, "{input}");
        }
    }

    #[test]
    fn refuses_bad_addresses_and_prefixes() {
        for input in [
            "",
            "localhost",
            "192.0.2.300",
            "192.0.2.1/33",
            "::1/129",
            "1.2.3.4/x",
        ] {
            assert!(input.parse::<Vip>().is_err(), "{input} should be refused");
        }
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(
            "192.0.2.10/24".parse::<Vip>().unwrap().to_string(),
            "192.0.2.10/24"
        );
        assert_eq!("::1".parse::<Vip>().unwrap().to_string(), "::1");
    }
}
