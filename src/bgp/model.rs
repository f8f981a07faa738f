//! The announcer's typed values: prefixes, AS numbers, neighbors and the few names that end up in
//! bgpd.conf. Each is parsed once, at the config edge, and refuses anything that could change the
//! meaning of the file it is rendered into: no whitespace, no newlines, no comment characters,
//! nothing FRR or Quagga would read as a second word.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// An IP prefix in canonical form (no host bits set), as `network` statements need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// The host prefix of `addr`: /32 for IPv4, /128 for IPv6.
    pub fn host(addr: IpAddr) -> Prefix {
        Prefix {
            addr,
            len: max_len(addr),
        }
    }

    /// The network address (also the address put on the loopback).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// `addr` with every bit past the first `len` cleared.
fn masked(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// Why a prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not an address, or an address with a bad length.
    #[error("`{0}` is not an IP prefix (expected e.g. 192.0.2.10/32 or 2001:db8::10/128)")]
    Syntax(String),
    /// Host bits are set: bgpd refuses such a `network` statement.
    #[error("`{given}` has host bits set; the prefix is {canonical}")]
    HostBits {
        /// As written.
        given: String,
        /// What was probably meant.
        canonical: String,
    },
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PrefixError::Syntax(s.to_string());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let len = match len {
            None => max_len(addr),
            Some(l) if l.bytes().all(|b| b.is_ascii_digit()) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max_len(addr))
                .ok_or_else(bad)?,
            Some(_) => return Err(bad()),
        };
        let canonical = masked(addr, len);
        if canonical != addr {
            return Err(PrefixError::HostBits {
                given: s.to_string(),
                canonical: Prefix {
                    addr: canonical,
                    len,
                }
                .to_string(),
            });
        }
        Ok(Prefix { addr, len })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A 4-byte AS number (RFC 6793), 1 to 4294967295.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Asn(u32);

impl Asn {
    /// The AS number, or `None` for 0 (reserved, never a valid peer AS).
    pub fn new(n: u32) -> Option<Asn> {
        (n != 0).then_some(Asn(n))
    }
}

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One BGP peer: the upstream router's address and AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's AS (equal to the local AS for iBGP).
    pub remote_as: Asn,
}

/// A single word for bgpd.conf: a route-map, prefix-list, host name or FRR pathspace.
///
/// Letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most 63 characters:
/// what FRR and Quagga both read as one word, and nothing their parsers treat specially.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word(String);

impl Word {
    /// The word as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A constant known to be valid (the defaults; the tests parse each of them).
    pub(crate) fn known(s: &'static str) -> Self {
        Word(s.to_string())
    }
}

impl FromStr for Word {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=63).contains(&s.len())
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if ok {
            Ok(Word(s.to_string()))
        } else {
            Err(format!(
                "`{s}` is not a single word (letters, digits, `-`, `_`, `.`; at most 63)"
            ))
        }
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The vty password (`password WORD`): printable ASCII without spaces, at most 64 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password as text, for the renderer.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl FromStr for Password {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Password(s.to_string()))
        } else {
            Err("the password must be 1 to 64 printable ASCII characters without spaces".into())
        }
    }
}

/// An absolute path without whitespace or control characters, for `log file PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile(PathBuf);

impl LogFile {
    /// A constant known to be valid (the defaults; the tests parse each of them).
    pub(crate) fn known(s: &'static str) -> Self {
        LogFile(PathBuf::from(s))
    }
}

impl FromStr for LogFile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('/') && s.len() > 1 && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(LogFile(PathBuf::from(s)))
        } else {
            Err(format!(
                "`{s}` is not an absolute path without spaces (bgpd reads `log file` up to a space)"
            ))
        }
    }
}

impl fmt::Display for LogFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

/// How the running bgpd is told about a new configuration (`bgp.apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMethod {
    /// keepserver computes the commands from bgpd's running configuration and sends them with
    /// `vtysh` (the default; fast, enough for everything keepserver changes).
    Vtysh,
    /// FRR's own `frr-reload.py --reload --daemon bgpd` (frr-pythontools): a general diff of the
    /// whole file against the running configuration, slower (about a second).
    FrrReload,
}

impl FromStr for ApplyMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vtysh" => Ok(ApplyMethod::Vtysh),
            "frr-reload" => Ok(ApplyMethod::FrrReload),
            other => Err(format!(
                "`{other}` is not an apply method (vtysh or frr-reload)"
            )),
        }
    }
}

impl fmt::Display for ApplyMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApplyMethod::Vtysh => "vtysh",
            ApplyMethod::FrrReload => "frr-reload",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_canonical_forms_only() {
        for (s, shown) in [
            ("192.0.2.10/32", "192.0.2.10/32"),
            ("192.0.2.10", "192.0.2.10/32"),
            ("203.0.113.0/24", "203.0.113.0/24"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::10", "2001:db8::10/128"),
            ("2001:db8::/32", "2001:db8::/32"),
        ] {
            assert_eq!(s.parse::<Prefix>().unwrap().to_string(), shown, "{s}");
        }
        assert_eq!(
            "192.0.2.10/24".parse::<Prefix>(),
            Err(PrefixError::HostBits {
                given: "192.0.2.10/24".into(),
                canonical: "192.0.2.0/24".into()
            })
        );
        for bad in [
            "",
            "192.0.2.1/33",
            "::1/129",
            "1.2.3.4/+8",
            "x/8",
            "1.2.3.4/8\n",
        ] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad:?}");
        }
        assert_eq!(Prefix::host("::1".parse().unwrap()).prefix_len(), 128);
    }

    #[test]
    fn words_refuse_anything_that_is_not_one_token() {
        for ok in ["bgp-access", "pl_route", "lbv-37f0c3aa.example", "R1"] {
            assert!(ok.parse::<Word>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "two words",
            "line\nbreak",
            "!comment",
            "-x",
            &"a".repeat(64),
        ] {
            assert!(bad.parse::<Word>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_names_and_paths_are_single_tokens() {
        assert!("s3cr3t!#".parse::<Password>().is_ok());
        for bad in ["", "with space", "new\nline"] {
            assert!(bad.parse::<Password>().is_err(), "{bad:?}");
        }
        assert_eq!(
            format!("{:?}", "x".parse::<Password>().unwrap()),
            "Password(..)"
        );
        assert!("/var/log/frr/bgpd.log".parse::<LogFile>().is_ok());
        for bad in ["bgpd.log", "/var/log/my log", "/", "/x\ny"] {
            assert!(bad.parse::<LogFile>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn as_zero_is_refused_and_apply_methods_are_named() {
        assert!(Asn::new(0).is_none());
        assert_eq!(Asn::new(4_200_000_000).unwrap().to_string(), "4200000000");
        assert_eq!("frr-reload".parse(), Ok(ApplyMethod::FrrReload));
        assert_eq!(ApplyMethod::Vtysh.to_string(), "vtysh");
        assert!("reload".parse::<ApplyMethod>().is_err());
    }
}
