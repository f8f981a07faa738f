//! Snapshot tests of the rendered bgpd.conf. (tests/e2e_bgp.rs checks the same shapes with FRR's
//! own `vtysh --dryrun` and runs them in a real bgpd.)

use std::path::Path;

use super::*;

/// The `bgp` section of a config whose keepstart VIP is 192.0.2.10 on eth0, with `extra` keys.
fn bgp(extra: &str) -> Bgp {
    let text = format!(
        "keepstart:\n  nic: eth0\n  vip: 192.0.2.10\n  start: s\n  stop: t\n\
         bgp:\n  enabled: true\n  hostname: lbv-37\n{extra}"
    );
    crate::config::parse(&text, Path::new("/etc/keepserver/config.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .config
        .bgp
        .expect("enabled")
}

/// The KINX seed's node: AS 50235, two upstream routers in AS 60201.
const KINX: &str = "  local-as: 50235
  router-id: 10.40.252.235
  password: pass
  neighbors:
    - {address: 10.40.252.2, remote-as: 60201}
    - {address: 10.40.252.3, remote-as: 60201}
  log-file: /var/log/quagga/bgpd.log
  redistribute-static: true
";

fn p(s: &str) -> Prefix {
    s.parse().expect("prefix")
}

#[test]
fn kinx_seed_announcing_the_vip() {
    let b = bgp(KINX);
    insta::assert_snapshot!(render(&b, &b.announce));
}

#[test]
fn kinx_seed_withdrawn() {
    insta::assert_snapshot!(render(&bgp(KINX), &[]));
}

#[test]
fn ibgp_with_wider_prefixes_custom_names_and_interval() {
    let b = bgp("  local-as: 65001
  router-id: 198.51.100.1
  neighbors: [{address: 198.51.100.2, remote-as: 65001}]
  announce: [192.0.2.10/32, 203.0.113.0/24]
  route-map: to-upstream
  prefix-list: vips
  advertisement-interval: 5
  log-file: /var/log/frr/keepserver-bgpd.log
");
    insta::assert_snapshot!(render(&b, &b.announce));
}

#[test]
fn dual_stack_announcing_both_families() {
    let b = bgp("  local-as: 4200000001
  router-id: 198.51.100.1
  neighbors:
    - {address: 198.51.100.2, remote-as: 65000}
    - {address: '2001:db8:1::2', remote-as: 65000}
  announce: [192.0.2.10/32, '2001:db8::10/128', '2001:db8:100::/48']
");
    insta::assert_snapshot!(render(&b, &b.announce));
}

#[test]
fn announcing_and_withdrawing_change_only_network_lines() {
    let b = bgp("  local-as: 65001
  router-id: 198.51.100.1
  neighbors: [{address: '2001:db8:1::2', remote-as: 65000}]
  announce: [192.0.2.10/32, '2001:db8::10/128']
");
    let announced = render(&b, &b.announce);
    let withdrawn = render(&b, &[]);
    let differing: Vec<&str> = announced
        .lines()
        .filter(|l| !withdrawn.lines().any(|w| w == *l))
        .collect();
    assert_eq!(
        differing,
        [" network 192.0.2.10/32", "  network 2001:db8::10/128"]
    );
    assert!(withdrawn.lines().all(|l| announced.lines().any(|a| a == l)));
    assert_eq!(
        render(&b, &[p("192.0.2.10/32")]).matches("network").count(),
        1
    );
}
