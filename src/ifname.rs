//! Network interface names as Linux accepts them (`dev_valid_name`: 1 to 15 bytes, `IFNAMSIZ`
//! minus its NUL; no `/`, `:`, whitespace or NUL; not `.` or `..`), the one type for every NIC
//! name in the config (`keepstart.nic`, `bgp.loopback`). A name the kernel would refuse can never
//! match a NIC, so it is refused when the config is read, not discovered later as a VIP that is
//! never found. ASCII control characters are refused too: the name goes into log lines and the
//! announcer's record file.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// The longest name the kernel accepts (`IFNAMSIZ` is 16, with the terminating NUL).
pub const MAX_LEN: usize = 15;

/// A network interface name the kernel would accept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ifname(String);

impl Ifname {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A constant known to be valid (the defaults; the tests parse each of them).
    pub(crate) fn known(s: &'static str) -> Self {
        Ifname(s.to_string())
    }
}

/// Why a name was refused.
fn refusal(s: &str) -> Option<String> {
    let why = if s.is_empty() {
        "is empty".to_string()
    } else if s.len() > MAX_LEN {
        format!(
            "is {} bytes long; Linux allows at most {MAX_LEN} (IFNAMSIZ)",
            s.len()
        )
    } else if s == "." || s == ".." {
        "is not allowed as a name by Linux".to_string()
    } else if s.contains('/') {
        "contains `/`".to_string()
    } else if s.contains(':') {
        "contains `:` (`eth0:1` is an address label, not a NIC: give the NIC, `eth0`)".to_string()
    } else if s.contains('\0') {
        "contains a NUL byte".to_string()
    } else if s.chars().any(char::is_whitespace) {
        "contains whitespace".to_string()
    } else if s.chars().any(|c| c.is_ascii_control()) {
        "contains a control character".to_string()
    } else {
        return None;
    };
    Some(why)
}

impl FromStr for Ifname {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match refusal(s) {
            None => Ok(Ifname(s.to_string())),
            Some(why) => Err(format!("{s:?} is not a network interface name: it {why}")),
        }
    }
}

impl Deref for Ifname {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ifname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kernel_accepts_are_accepted() {
        for ok in [
            "lo",
            "eth0",
            "ksv0",
            "enp0s31f6",
            "br-0.100",
            "veth_a@b",
            "a",
            "fifteen-bytes-x",
            "wlan\u{e9}",
            "0",
        ] {
            assert_eq!(ok.parse::<Ifname>().map(|n| n.to_string()), Ok(ok.into()));
        }
    }

    #[test]
    fn names_the_kernel_refuses_are_refused_with_the_reason() {
        for (bad, why) in [
            ("", "is empty"),
            ("sixteen-bytes-xx", "16 bytes long"),
            (&"n".repeat(40), "40 bytes long; Linux allows at most 15"),
            ("caf\u{e9}-sixteen-by", "16 bytes long"),
            (".", "not allowed"),
            ("..", "not allowed"),
            ("eth/0", "contains `/`"),
            ("lo:0", "address label"),
            ("eth\0", "NUL"),
            ("eth 0", "whitespace"),
            ("eth\t0", "whitespace"),
            ("eth0\n", "whitespace"),
            ("eth\u{7}", "control character"),
        ] {
            let err = bad.parse::<Ifname>().expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.contains("network interface name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn dereferences_to_its_text() {
        let name: Ifname = "eth0".parse().expect("valid");
        assert_eq!(&*name, "eth0");
        assert_eq!(Some(&name).map(|n| n.as_str()), Some("eth0"));
    }
}
