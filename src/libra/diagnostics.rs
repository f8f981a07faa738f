//! DIAGNOSTICS: is this device healthy? A network check (TCP connects to the configured targets,
//! or, with none configured, a default route in the routing table: no default ever reaches an
//! outside host) and a TCP connect to every Gearman server, judged by Libra's rules.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::config::Endpoint;

/// How long one connect test may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of a DIAGNOSTICS run, as reply fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// `network`: PASS or FAIL.
    pub network: bool,
    /// `gearman`: per server, PASS or FAIL.
    pub gearman: Vec<(String, bool)>,
}

impl Diagnosis {
    /// Libra's verdict: the network must pass, and no more than a third of the Gearman servers
    /// may fail.
    pub fn healthy(&self) -> bool {
        let failed = self.gearman.iter().filter(|(_, ok)| !ok).count();
        self.network && failed * 3 <= self.gearman.len()
    }

    /// The reply fields `network` and `gearman`.
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        let gearman = self
            .gearman
            .iter()
            .map(|(server, ok)| json!({ server.clone(): verdict(*ok) }))
            .collect();
        vec![
            ("network", verdict(self.network).into()),
            ("gearman", Value::Array(gearman)),
        ]
    }

    /// Why the device is unhealthy, for `hpcs_error`.
    pub fn problem(&self) -> String {
        if !self.network {
            return "network test failed".to_string();
        }
        let failed: Vec<&str> = self
            .gearman
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(s, _)| s.as_str())
            .collect();
        format!(
            "{} of {} gearman servers unreachable: {}",
            failed.len(),
            self.gearman.len(),
            failed.join(", ")
        )
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// Runs every test concurrently.
pub async fn diagnose(targets: &[Endpoint], gearman: &[Endpoint]) -> Diagnosis {
    let network = async {
        if targets.is_empty() {
            has_default_route().await
        } else {
            futures::future::join_all(targets.iter().map(reachable))
                .await
                .into_iter()
                .all(|ok| ok)
        }
    };
    let servers = futures::future::join_all(
        gearman
            .iter()
            .map(|s| async move { (s.to_string(), reachable(s).await) }),
    );
    let (network, gearman) = tokio::join!(network, servers);
    Diagnosis { network, gearman }
}

async fn reachable(e: &Endpoint) -> bool {
    matches!(
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((e.host.as_str(), e.port))
        )
        .await,
        Ok(Ok(_))
    )
}

async fn has_default_route() -> bool {
    let v4 = tokio::fs::read_to_string("/proc/net/route")
        .await
        .unwrap_or_default();
    let v6 = tokio::fs::read_to_string("/proc/net/ipv6_route")
        .await
        .unwrap_or_default();
    default_route_in(&v4, &v6)
}

/// Whether the kernel's route tables (as in /proc/net/route and /proc/net/ipv6_route) hold a
/// default route through a real interface.
pub fn default_route_in(v4: &str, v6: &str) -> bool {
    let v4_default = v4.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" && f[0] != "lo"
    });
    let v6_default = v6.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // dest destlen src srclen nexthop metric refcnt use flags iface
        f.len() > 9 && f[0] == "0".repeat(32) && f[1] == "00" && f[9] != "lo"
    });
    v4_default || v6_default
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(port: u16) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[test]
    fn libra_rules_a_third_of_gearman_may_fail() {
        let d = |network, fails: usize, total: usize| Diagnosis {
            network,
            gearman: (0..total).map(|i| (format!("s{i}"), i >= fails)).collect(),
        };
        assert!(d(true, 0, 3).healthy());
        assert!(d(true, 1, 3).healthy());
        assert!(!d(true, 2, 3).healthy());
        assert!(!d(true, 1, 2).healthy());
        assert!(!d(false, 0, 3).healthy());
        assert!(d(true, 0, 0).healthy());
        let fields = d(true, 1, 2).fields();
        assert_eq!(fields[1].1, json!([{"s0": "FAIL"}, {"s1": "PASS"}]));
    }

    #[test]
    fn default_route_detection() {
        let v4 = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                  eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\n";
        assert!(default_route_in(v4, ""));
        let v4_none = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                       eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        assert!(!default_route_in(v4_none, ""));
        let v6 = format!(
            "{} 00 {} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n",
            "0".repeat(32),
            "0".repeat(32)
        );
        assert!(default_route_in("", &v6));
    }

    #[tokio::test]
    async fn connect_tests_pass_and_fail_for_real() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let d = diagnose(&[endpoint(open)], &[endpoint(open), endpoint(closed)]).await;
        assert!(d.network);
        assert_eq!(
            d.gearman.iter().map(|g| g.1).collect::<Vec<_>>(),
            [true, false]
        );
        assert!(!d.healthy());
        assert!(d.problem().contains(&format!("127.0.0.1:{closed}")));
    }
}
