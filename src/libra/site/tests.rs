//! Libra's rules for a site: one or two load balancers, one per protocol on distinct ports;
//! ports, nodes, weights, node ids and monitors, with the exact error messages; and the shared
//! model a site becomes.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn lb(protocol: Protocol, port: u16, nodes: Vec<Node>) -> LoadBalancer {
    LoadBalancer {
        protocol,
        port,
        algorithm: Algorithm::RoundRobin,
        nodes,
        monitor: None,
    }
}

fn monitor(kind: MonitorKind, delay_s: u32, timeout_s: u32, attempts: u32) -> Monitor {
    Monitor {
        kind,
        delay_s,
        timeout_s,
        attempts,
        path: None,
    }
}

const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

fn site_error(lbs: Vec<LoadBalancer>) -> String {
    Site::new(ANY, lbs).expect_err("invalid site").to_string()
}

use node_for_tests as node;

#[test]
fn node_ids() {
    for good in ["1", "web-1", "node_2.a", &"x".repeat(64)] {
        validate_node_id(good).expect(good);
    }
    let cases = [
        ("", "node id `` is not valid: it is empty"),
        (
            "web 1",
            "node id `web 1` is not valid: a space at position 4 is not a letter, digit, `_`, \
             `.` or `-`",
        ),
        (
            "a#b",
            "node id `a#b` is not valid: `#` at position 2 is not a letter, digit, `_`, `.` or `-`",
        ),
    ];
    for (bad, message) in cases {
        assert_eq!(validate_node_id(bad).expect_err(bad).to_string(), message);
    }
    let error = validate_node_id(&"x".repeat(65))
        .expect_err("long id")
        .to_string();
    assert!(
        error.ends_with("it has 65 characters, more than 64"),
        "{error}"
    );
}

#[test]
fn a_site_has_one_or_two_load_balancers_one_per_protocol_on_distinct_ports() {
    let http = || lb(Protocol::Http, 80, vec![node("10.0.0.1", 80)]);
    let tcp = |port| lb(Protocol::Tcp, port, vec![node("10.0.0.1", 22)]);
    assert!(Site::new(ANY, vec![http()]).is_ok());
    assert!(Site::new(ANY, vec![tcp(443)]).is_ok());
    assert!(Site::new(ANY, vec![http(), tcp(443)]).is_ok());
    assert_eq!(
        site_error(vec![]),
        "a device serves one or two load balancers (one HTTP, one TCP), got 0"
    );
    assert_eq!(
        site_error(vec![http(), tcp(443), tcp(444)]),
        "a device serves one or two load balancers (one HTTP, one TCP), got 3"
    );
    assert_eq!(
        site_error(vec![tcp(443), tcp(444)]),
        "two TCP load balancers: a device serves at most one HTTP and one TCP load balancer"
    );
    assert_eq!(
        site_error(vec![http(), http()]),
        "two HTTP load balancers: a device serves at most one HTTP and one TCP load balancer"
    );
    assert_eq!(
        site_error(vec![tcp(80), http()]),
        "the HTTP and TCP load balancers both use port 80"
    );
}

#[test]
fn load_balancers_are_kept_http_first() {
    let site = Site::new(
        ANY,
        vec![
            lb(Protocol::Tcp, 22, vec![node("10.0.0.1", 22)]),
            lb(Protocol::Http, 80, vec![node("10.0.0.1", 80)]),
        ],
    )
    .expect("valid");
    let protocols: Vec<Protocol> = site.load_balancers().iter().map(|l| l.protocol).collect();
    assert_eq!(protocols, vec![Protocol::Http, Protocol::Tcp]);
    assert_eq!(site.bind(), ANY);
}

#[test]
fn ports_nodes_and_weights_are_checked() {
    assert_eq!(
        site_error(vec![lb(Protocol::Http, 0, vec![node("10.0.0.1", 80)])]),
        "HTTP load balancer: port 0 is not a valid port (1-65535)"
    );
    assert_eq!(
        site_error(vec![lb(Protocol::Tcp, 22, vec![])]),
        "TCP load balancer has no nodes"
    );
    assert_eq!(
        site_error(vec![lb(
            Protocol::Http,
            80,
            vec![node("10.0.0.1", 80), node("10.0.0.2", 0)]
        )]),
        "HTTP load balancer, node 2 (10.0.0.2:0): port 0 is not a valid port (1-65535)"
    );
    for (weight, ok) in [(0, false), (1, true), (256, true), (257, false)] {
        let mut n = node("::1", 8080);
        n.weight = weight;
        let result = Site::new(ANY, vec![lb(Protocol::Tcp, 22, vec![n])]);
        assert_eq!(result.is_ok(), ok, "weight {weight}");
        if !ok {
            assert_eq!(
                result.expect_err("bad weight").to_string(),
                format!(
                    "TCP load balancer, node 1 (::1:8080): weight {weight} is out of range 1-256"
                )
            );
        }
    }
}

#[test]
fn node_ids_are_checked_again_and_server_names_are_unique() {
    let with_id = |id: &str, address: &str| Node {
        id: Some(id.to_owned()),
        ..node(address, 80)
    };
    let names = lb(
        Protocol::Http,
        80,
        vec![with_id("web", "10.0.0.1"), node("10.0.0.2", 80)],
    )
    .server_names();
    assert_eq!(names, vec!["web", "node-2"]);
    assert_eq!(
        site_error(vec![lb(
            Protocol::Http,
            80,
            vec![with_id("a b", "10.0.0.1")]
        )]),
        "HTTP load balancer, node 1 (10.0.0.1:80): node id `a b` is not valid: a space at \
         position 2 is not a letter, digit, `_`, `.` or `-`"
    );
    assert_eq!(
        site_error(vec![lb(
            Protocol::Http,
            80,
            vec![with_id("web", "10.0.0.1"), with_id("web", "10.0.0.2")]
        )]),
        "HTTP load balancer, node 2 (10.0.0.2:80): server name `web` is already used by \
         another node (ids must be unique and must not be the `node-N` name of another node \
         without an id)"
    );
    assert!(
        site_error(vec![lb(
            Protocol::Http,
            80,
            vec![node("10.0.0.1", 80), with_id("node-1", "10.0.0.2")]
        )])
        .contains("server name `node-1` is already used")
    );
}

#[test]
fn monitors_are_checked() {
    let with = |m: Monitor| {
        let mut l = lb(Protocol::Http, 80, vec![node("10.0.0.1", 80)]);
        l.monitor = Some(m);
        Site::new(ANY, vec![l]).map(|_| ())
    };
    assert!(with(monitor(MonitorKind::Connect, 1, 1, 1)).is_ok());
    assert!(with(monitor(MonitorKind::Http, 3600, 3600, 10)).is_ok());
    let cases = [
        (
            monitor(MonitorKind::Connect, 0, 1, 1),
            "delay 0s is out of range 1-3600s",
        ),
        (
            monitor(MonitorKind::Connect, 3601, 1, 1),
            "delay 3601s is out of range 1-3600s",
        ),
        (
            monitor(MonitorKind::Connect, 1, 0, 1),
            "timeout 0s is out of range 1-3600s",
        ),
        (
            monitor(MonitorKind::Connect, 1, 1, 0),
            "attempts 0 is out of range 1-10",
        ),
        (
            monitor(MonitorKind::Connect, 1, 1, 11),
            "attempts 11 is out of range 1-10",
        ),
        (
            Monitor {
                path: Some(HttpPath::new("/x").expect("path")),
                ..monitor(MonitorKind::Connect, 1, 1, 1)
            },
            "a CONNECT monitor takes no path",
        ),
    ];
    for (m, reason) in cases {
        assert_eq!(
            with(m).expect_err(reason).to_string(),
            format!("HTTP load balancer health monitor: {reason}")
        );
    }
}
