//! Snapshot tests of the rendered haproxy.cfg, and the quoting of paths. (tests/haproxy_driver.rs
//! checks the same shapes with the real `haproxy -c`.)

use std::net::IpAddr;
use std::path::PathBuf;

use super::*;
use crate::haproxy::model::HttpPath;
use crate::libra::site::node_for_tests as node;
use crate::libra::site::{
    Algorithm, Condition, LoadBalancer, Monitor, MonitorKind, Node, Protocol, Site,
};

fn paths() -> RuntimePaths {
    RuntimePaths {
        stats_socket: PathBuf::from("/run/keepserver/haproxy/haproxy.sock"),
        pidfile: PathBuf::from("/run/keepserver/haproxy/haproxy.pid"),
        ping_script: PathBuf::from("/run/keepserver/haproxy/ping-check.sh"),
    }
}

fn lb(protocol: Protocol, port: u16, nodes: Vec<Node>, monitor: Option<Monitor>) -> LoadBalancer {
    LoadBalancer {
        protocol,
        port,
        algorithm: Algorithm::RoundRobin,
        nodes,
        monitor,
    }
}

fn http_monitor() -> Monitor {
    Monitor {
        kind: MonitorKind::Http,
        delay_s: 10,
        timeout_s: 5,
        attempts: 3,
        path: Some(HttpPath::new("/health").expect("path")),
    }
}

fn connect_monitor() -> Monitor {
    Monitor {
        kind: MonitorKind::Connect,
        delay_s: 30,
        timeout_s: 10,
        attempts: 2,
        path: None,
    }
}

fn http_lb() -> LoadBalancer {
    lb(
        Protocol::Http,
        80,
        vec![node("10.0.0.1", 8080), node("10.0.0.2", 8080)],
        Some(http_monitor()),
    )
}

fn tcp_lb() -> LoadBalancer {
    let backup = Node {
        id: Some("standby".into()),
        backup: true,
        weight: 5,
        ..node("10.0.1.3", 5432)
    };
    let disabled = Node {
        condition: Condition::Disabled,
        ..node("10.0.1.2", 5432)
    };
    lb(
        Protocol::Tcp,
        5432,
        vec![node("10.0.1.1", 5432), disabled, backup],
        Some(connect_monitor()),
    )
}

fn rendered(bind: &str, lbs: Vec<LoadBalancer>) -> String {
    let bind: IpAddr = bind.parse().expect("bind address");
    render(
        &Site::new(bind, lbs).expect("valid site").balancer(),
        &paths(),
    )
}

#[test]
fn http_two_nodes_http_monitor() {
    insta::assert_snapshot!(rendered("0.0.0.0", vec![http_lb()]));
}

#[test]
fn tcp_backup_and_disabled_nodes_connect_monitor() {
    insta::assert_snapshot!(rendered("192.0.2.10", vec![tcp_lb()]));
}

#[test]
fn http_and_tcp() {
    insta::assert_snapshot!(rendered("0.0.0.0", vec![tcp_lb(), http_lb()]));
}

#[test]
fn least_connections_without_monitor() {
    let mut l = lb(
        Protocol::Http,
        8000,
        vec![node("10.0.0.1", 80), node("10.0.0.2", 80)],
        None,
    );
    l.algorithm = Algorithm::LeastConnections;
    insta::assert_snapshot!(rendered("0.0.0.0", vec![l]));
}

#[test]
fn ipv6_bind_and_nodes() {
    let nodes = vec![node("2001:db8::1", 80), node("::ffff:10.0.0.1", 80)];
    let tcp = lb(Protocol::Tcp, 443, vec![node("2001:db8::2", 443)], None);
    insta::assert_snapshot!(rendered(
        "::",
        vec![lb(Protocol::Http, 80, nodes, None), tcp]
    ));
}

#[test]
fn hostname_nodes_and_http_monitor_without_path() {
    let monitor = Monitor {
        path: None,
        ..http_monitor()
    };
    let nodes = vec![node("web-1.example.com", 80), node("localhost", 8080)];
    insta::assert_snapshot!(rendered(
        "0.0.0.0",
        vec![lb(Protocol::Http, 80, nodes, Some(monitor))]
    ));
}

#[test]
fn quotes_protect_paths_from_haproxy_syntax() {
    assert_eq!(quoted("/health"), "'/health'");
    assert_eq!(quoted("/a'b#c$HOME\\"), r"'/a'\''b#c$HOME\'");
    let odd = RuntimePaths {
        stats_socket: PathBuf::from("/run/o'dd dir/haproxy.sock"),
        pidfile: PathBuf::from("/run/#pid"),
        ping_script: PathBuf::from("/run/ping"),
    };
    let text = render(
        &Site::new("0.0.0.0".parse().expect("ip"), vec![http_lb()])
            .expect("valid")
            .balancer(),
        &odd,
    );
    assert!(text.contains(r"stats socket '/run/o'\''dd dir/haproxy.sock' mode 600"));
    assert!(text.contains("pidfile '/run/#pid'"));
}

#[test]
fn names_of_proxies() {
    assert_eq!(Protocol::Http.frontend(), "http-in");
    assert_eq!(Protocol::Tcp.backend(), "tcp-servers");
}
