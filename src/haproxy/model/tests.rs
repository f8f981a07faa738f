//! Model validation tables: good and bad hosts, paths, node ids, ports, weights, monitors, and
//! the one-load-balancer-per-protocol rule, with the exact error messages.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::haproxy::model::node_for_tests as node;

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

#[test]
fn good_hosts_parse_and_display_as_given() {
    for good in [
        "10.0.0.1",
        "::1",
        "2001:db8::10",
        "::ffff:10.0.0.1",
        "localhost",
        "web-1.example.com",
        "a",
        "xn--bcher-kva.example",
        "1a.example",
        &format!("{}.com", "a".repeat(63)),
        &["abcdefghi"; 25].join("."),
    ] {
        let host: Host = good.parse().unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(host.to_string(), good);
    }
}

#[test]
fn ip_hosts_know_their_address() {
    let host: Host = "::1".parse().expect("valid");
    assert_eq!(host.ip(), Some("::1".parse().expect("ip")));
    assert_eq!("web".parse::<Host>().expect("valid").ip(), None);
    assert_eq!(Host::from(ANY).to_string(), "0.0.0.0");
}

#[test]
fn bad_hosts_are_refused_with_the_reason() {
    let cases = [
        (
            "a b",
            "node address `a b` is not an IP address or hostname: a space at position 2 is not \
             a letter, digit, `-` or `.`",
        ),
        (
            "",
            "node address `` is not an IP address or hostname: it is empty",
        ),
        (
            "[::1]",
            "node address `[::1]` is not an IP address or hostname: `[` at position 1 is not a \
             letter, digit, `-` or `.`",
        ),
        (
            "web\nserver evil",
            "node address `web\\nserver evil` is not an IP address or hostname: `\\n` at \
             position 4 is not a letter, digit, `-` or `.`",
        ),
        (
            "10.0.0.256",
            "node address `10.0.0.256` is not an IP address or hostname: its last label is all \
             digits, so it is neither a valid IPv4 address nor a hostname",
        ),
        (
            "10.0.0",
            "node address `10.0.0` is not an IP address or hostname: its last label is all \
             digits, so it is neither a valid IPv4 address nor a hostname",
        ),
        (
            "web..example",
            "node address `web..example` is not an IP address or hostname: it has an empty \
             label (`..`, or a leading or trailing `.`)",
        ),
        (
            "web.example.",
            "node address `web.example.` is not an IP address or hostname: it has an empty \
             label (`..`, or a leading or trailing `.`)",
        ),
        (
            "-web.example",
            "node address `-web.example` is not an IP address or hostname: label `-web` starts \
             or ends with `-`",
        ),
        (
            "fe80::1%eth0",
            "node address `fe80::1%eth0` is not an IP address or hostname: `:` at position 5 is \
             not a letter, digit, `-` or `.`",
        ),
    ];
    for (bad, message) in cases {
        let error = bad.parse::<Host>().expect_err(bad);
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn hostname_length_limits() {
    let label64 = "a".repeat(64);
    let error = format!("{label64}.com")
        .parse::<Host>()
        .expect_err("long label");
    assert!(
        error
            .to_string()
            .contains("has 64 characters, more than 63"),
        "{error}"
    );
    let name254 = format!("{}.{}", "a".repeat(126), "b".repeat(127));
    assert_eq!(name254.len(), 254);
    let error = name254.parse::<Host>().expect_err("long name");
    assert!(
        error
            .to_string()
            .contains("it has 254 characters, more than 253"),
        "{error}"
    );
    // The error quotes at most 80 characters of the value.
    assert!(error.to_string().contains("…`"), "{error}");
}

#[test]
fn good_paths() {
    for good in [
        "/",
        "/health",
        "/status?full=1&x=%20",
        "/a'b\"c#d\\e$HOME",
        &format!("/{}", "x".repeat(1023)),
    ] {
        assert_eq!(HttpPath::new(good).expect(good).as_str(), good);
    }
}

#[test]
fn bad_paths_are_refused_with_the_reason() {
    let cases = [
        (
            "",
            "health monitor path `` is not valid: it must start with `/`",
        ),
        (
            "health",
            "health monitor path `health` is not valid: it must start with `/`",
        ),
        (
            "/a b",
            "health monitor path `/a b` is not valid: a space at position 3 is not visible \
             ASCII (no spaces or control characters)",
        ),
        (
            "/a\r\nHost: x",
            "health monitor path `/a\\r\\nHost: x` is not valid: `\\r` at position 3 is not \
             visible ASCII (no spaces or control characters)",
        ),
        (
            "/é",
            "health monitor path `/é` is not valid: `é` at position 2 is not visible ASCII (no \
             spaces or control characters)",
        ),
    ];
    for (bad, message) in cases {
        assert_eq!(HttpPath::new(bad).expect_err(bad).to_string(), message);
    }
    let long = format!("/{}", "x".repeat(1024));
    let error = HttpPath::new(&long).expect_err("long path").to_string();
    assert!(
        error.ends_with("it has 1025 characters, more than 1024"),
        "{error}"
    );
}

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
