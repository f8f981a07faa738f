//! The store's references and the model its objects make, with the KINX seed's requests: the
//! rendered haproxy.cfg holds what the seed's "Example HAProxy config result" blocks show.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::haproxy::render::{RuntimePaths, render};

const POOL: &str = "5d4e74e8-ccaa-4e2c-a2d0-bc82f60a3c61";
const MEMBER: &str = "a0c8e3ff-5791-42dd-ac9f-f3bd0450c654";
const LOCAL: &str = "lbv-37f0c3aa-a754-4f2c-9712-e35422002cea";
const OTHER: &str = "lbv-6f07625e-4731-4532-a429-dc7adf1e79d3";

fn context() -> Context {
    Context {
        bind: "0.0.0.0".parse().expect("ip"),
        certificates: PathBuf::from("/etc/keepserver/certificates"),
        peers_section: Name::new("s", "kinx_loadbalancer_peers").expect("name"),
        peer_name: Name::new("s", LOCAL).expect("name"),
    }
}

fn paths() -> RuntimePaths {
    RuntimePaths {
        stats_socket: PathBuf::from("/run/ks/haproxy.sock"),
        pidfile: PathBuf::from("/run/ks/haproxy.pid"),
        ping_script: PathBuf::from("/run/ks/ping-check.sh"),
    }
}

fn name(s: &str) -> Name {
    Name::new("test", s).expect("name")
}

fn create(store: &mut Store, kind: Kind, body: Value) -> Value {
    store
        .create(&kind, &body)
        .unwrap_or_else(|e| panic!("{kind:?} {body}: {e}"))
}

/// The seed's example requests, with real values in place of its placeholders.
fn seed_store() -> Store {
    let mut s = Store::default();
    create(
        &mut s,
        Kind::LoadBalancer,
        json!({"id": "lb1", "name": "lb_name", "description": "lb_description",
               "enabled": true, "project_id": "tenant-7"}),
    );
    create(
        &mut s,
        Kind::Pool,
        json!({"id": POOL, "name": "pool", "description": "", "enabled": true,
               "protocol": "HTTP", "protocol_mode": "HTTP", "lb_algorithm": "ROUND_ROBIN",
               "session_persistence": {"type": "SOURCE_IP"},
               "stick_size": "200k", "stick_expire": "1d", "loadbalancer_id": "lb1"}),
    );
    create(
        &mut s,
        Kind::Listener,
        json!({"id": POOL, "name": "listener", "description": "", "enabled": "true",
               "protocol": "HTTP", "protocol_port": "80", "protocol_mode": "HTTP",
               "connection_limit": 12000, "default_pool_id": POOL,
               "vip_address": "192.0.2.47", "loadbalancer_id": "lb1"}),
    );
    create(
        &mut s,
        Kind::Member(name(POOL)),
        json!({"id": MEMBER, "enabled": true, "address": "198.51.100.36",
               "protocol_port": 80, "weight": 1}),
    );
    create(
        &mut s,
        Kind::HealthMonitor,
        json!({"id": "hm1", "pool_id": POOL,
               "healthmonitor": {"type": "HTTP", "delay": 3, "timeout": 10, "max_retries": 2,
                                 "url_path": "/", "http_method": "GET", "expected_codes": "200"}}),
    );
    for (host, address) in [(LOCAL, "198.51.100.235"), (OTHER, "198.51.100.234")] {
        create(
            &mut s,
            Kind::Peer,
            json!({"hostname": host, "address": address}),
        );
    }
    s
}

#[test]
fn the_seeds_examples_render_what_the_seed_shows() {
    let store = seed_store();
    let text = render(&store.balancer(&context()).expect("valid"), &paths());
    for line in [
        format!("frontend {POOL}"),
        "    maxconn 12000".to_string(),
        "    bind 192.0.2.47:80".to_string(),
        "    mode http".to_string(),
        format!("    default_backend backend-{POOL}"),
        format!("backend backend-{POOL}"),
        "    balance roundrobin".to_string(),
        "    stick-table type ip size 200k expire 1d peers kinx_loadbalancer_peers".to_string(),
        "    stick on src".to_string(),
        "    option forwardfor".to_string(),
        "    timeout check 10s".to_string(),
        "    option httpchk GET '/'".to_string(),
        "    http-check expect status 200".to_string(),
        format!("    server {MEMBER} 198.51.100.36:80 weight 1 check inter 3s rise 2 fall 2"),
        "peers kinx_loadbalancer_peers".to_string(),
        format!("    peer {LOCAL} 198.51.100.235:1024"),
        format!("    peer {OTHER} 198.51.100.234:1024"),
        format!("    localpeer {LOCAL}"),
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing `{line}` in:\n{text}"
        );
    }
    let again = Store::from_json(&store.to_json()).expect("round trip");
    assert_eq!(again, store);
}

#[test]
fn references_are_checked_and_used_objects_cannot_go() {
    let mut s = seed_store();
    let cases = [
        (
            Kind::Listener,
            json!({"id": "l2", "protocol": "HTTP", "protocol_port": 81, "default_pool_id": "nope"}),
            "there is no pool `nope`",
        ),
        (
            Kind::Pool,
            json!({"id": "p2", "protocol": "TCP", "loadbalancer_id": "lb9"}),
            "there is no load balancer `lb9`",
        ),
        (
            Kind::HealthMonitor,
            json!({"pool_id": POOL, "type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1}),
            "has one health monitor at most",
        ),
        (
            Kind::Listener,
            json!({"id": "l3", "protocol": "TCP", "protocol_port": 82, "default_pool_id": POOL}),
            "is TCP but pool `5d4e74e8-ccaa-4e2c-a2d0-bc82f60a3c61` is HTTP",
        ),
    ];
    for (kind, body, reason) in cases {
        let before = s.clone();
        let e = s.create(&kind, &body).expect_err("refused");
        assert_eq!(e.status, 409, "{e}");
        assert!(e.reason.contains(reason), "{e}");
        s = before;
    }
    let e = s.delete(&Kind::Pool, &name(POOL)).expect_err("in use");
    assert!(
        e.reason.contains(&format!("used by listener `{POOL}`")),
        "{e}"
    );
    let e = s
        .delete(&Kind::LoadBalancer, &name("lb1"))
        .expect_err("in use");
    assert_eq!(e.status, 409);
    let e = s
        .create(
            &Kind::Member(name("nope")),
            &json!({"address": "192.0.2.1", "protocol_port": 1}),
        )
        .expect_err("no such pool");
    assert_eq!((e.status, e.reason.as_str()), (404, "no pool `nope`"));
    s.delete(&Kind::Listener, &name(POOL)).expect("free");
    s.delete(&Kind::Pool, &name(POOL)).expect("free now");
    assert_eq!(
        s.list(&Kind::HealthMonitor).expect("list"),
        json!([]),
        "its monitor went too"
    );
}

#[test]
fn bad_values_are_refused_naming_the_field() {
    let mut s = seed_store();
    let pool = Kind::Member(name(POOL));
    let cases: Vec<(Kind, Value, &str)> = vec![
        (
            pool.clone(),
            json!({"address": "192.0.2.1", "protocol_port": 0}),
            "protocol_port",
        ),
        (
            pool.clone(),
            json!({"address": "192.0.2.1\nserver evil 1.2.3.4:80", "protocol_port": 80}),
            "address",
        ),
        (
            pool.clone(),
            json!({"id": "has space", "address": "192.0.2.1", "protocol_port": 80}),
            "id",
        ),
        (
            pool.clone(),
            json!({"address": "192.0.2.1", "protocol_port": 80, "weight": 300}),
            "weight",
        ),
        (
            pool,
            json!({"address": "192.0.2.1", "protocol_port": 80, "colour": "red"}),
            "colour",
        ),
        (
            Kind::Listener,
            json!({"protocol": "QUIC", "protocol_port": 80}),
            "protocol",
        ),
        (
            Kind::Listener,
            json!({"protocol": "TERMINATED_HTTPS", "protocol_port": 443}),
            "tls_certificate_id",
        ),
        (
            Kind::Pool,
            json!({"protocol": "TCP", "session_persistence": {"type": "HTTP_COOKIE"}}),
            "session_persistence.type",
        ),
        (
            Kind::Pool,
            json!({"protocol": "HTTP", "stick_size": "lots"}),
            "stick_size",
        ),
        (
            Kind::HealthMonitor,
            json!({"pool_id": POOL, "type": "TCP", "delay": 0, "timeout": 1, "max_retries": 1}),
            "delay",
        ),
        (
            Kind::HealthMonitor,
            json!({"pool_id": POOL, "healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1, "url_path": "no-slash"}}),
            "healthmonitor.url_path",
        ),
        (Kind::Peer, json!({"address": "192.0.2.1"}), "hostname"),
    ];
    for (kind, body, field) in cases {
        let before = s.clone();
        let e = s.create(&kind, &body).expect_err(&body.to_string());
        assert_eq!(e.status, 400, "{body}: {e}");
        assert_eq!(e.field.as_deref(), Some(field), "{body}: {e}");
        assert_eq!(s, before, "nothing changed");
    }
}

#[test]
fn updates_change_only_the_fields_given_and_ids_do_not_change() {
    let mut s = seed_store();
    let member = Kind::Member(name(POOL));
    let updated = s
        .update(
            &member,
            &name(MEMBER),
            &json!({"weight": 5, "enabled": false}),
        )
        .expect("update");
    assert_eq!(updated["weight"], 5);
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["address"], "198.51.100.36", "kept");
    let e = s
        .update(&member, &name(MEMBER), &json!({"id": "other"}))
        .expect_err("id");
    assert_eq!(e.field.as_deref(), Some("id"));
    let text = render(&s.balancer(&context()).expect("valid"), &paths());
    assert!(
        text.contains(&format!(
            "server {MEMBER} 198.51.100.36:80 weight 5 disabled"
        )),
        "{text}"
    );
}

#[test]
fn member_requests_carry_kinx_pool_fields_and_disabled_objects_render_disabled() {
    let mut s = seed_store();
    create(
        &mut s,
        Kind::Member(name(POOL)),
        json!({"id": "m2", "address": "198.51.100.37", "protocol_port": 80,
               "type": "HTTP_COOKIE", "cookie_name": "SRV",
               "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 2, "max_retries": 3}}),
    );
    s.update(
        &Kind::LoadBalancer,
        &name("lb1"),
        &json!({"enabled": false}),
    )
    .expect("disable");
    let text = render(&s.balancer(&context()).expect("valid"), &paths());
    assert!(
        text.contains("    cookie SRV insert indirect nocache\n"),
        "{text}"
    );
    assert!(
        text.contains("server m2 198.51.100.37:80 weight 1 cookie m2 check inter 5s rise 3 fall 3"),
        "{text}"
    );
    assert!(
        !text.contains("option httpchk"),
        "the TCP monitor replaced the HTTP one: {text}"
    );
    assert_eq!(
        text.matches("\n    disabled\n").count(),
        2,
        "frontend and backend: {text}"
    );
}

#[test]
fn tls_app_cookie_least_connections_source_balance_and_ping() {
    let mut s = Store::default();
    create(
        &mut s,
        Kind::Pool,
        json!({"id": "web", "protocol": "HTTP", "lb_algorithm": "LEAST_CONNECTIONS",
        "session_persistence": {"type": "APP_COOKIE", "cookie_name": "JSESSIONID"}}),
    );
    create(
        &mut s,
        Kind::Pool,
        json!({"id": "db", "protocol": "TCP", "lb_algorithm": "SOURCE_IP"}),
    );
    create(
        &mut s,
        Kind::Listener,
        json!({"id": "https", "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
        "tls_certificate_id": "site", "sni_containers": ["other"], "default_pool_id": "web",
        "vip_address": "2001:db8::10"}),
    );
    create(
        &mut s,
        Kind::Listener,
        json!({"id": "tcp", "protocol": "TCP", "protocol_port": 5432}),
    );
    create(
        &mut s,
        Kind::Pool,
        json!({"id": "tcp-pool", "protocol": "TCP", "listener_id": "tcp"}),
    );
    create(
        &mut s,
        Kind::HealthMonitor,
        json!({"pool_id": "db", "type": "PING", "delay": 2, "timeout": 1, "max_retries": 3}),
    );
    create(
        &mut s,
        Kind::HealthMonitor,
        json!({"pool_id": "web", "type": "HTTPS", "delay": 2, "timeout": 1,
        "max_retries": 3, "max_retries_down": 5, "http_method": "head", "url_path": "/healthz",
        "expected_codes": "200-202"}),
    );
    create(
        &mut s,
        Kind::Member(name("web")),
        json!({"id": "w1", "address": "2001:db8::21", "protocol_port": 8443}),
    );
    let text = render(&s.balancer(&context()).expect("valid"), &paths());
    for line in [
        "bind [2001:db8::10]:443 ssl crt '/etc/keepserver/certificates/site.pem' crt '/etc/keepserver/certificates/other.pem'",
        "default_backend backend-tcp-pool",
        "balance leastconn",
        "stick store-response res.cook(JSESSIONID)",
        "stick match req.cook(JSESSIONID)",
        "balance source",
        "option external-check",
        "external-check command '/run/ks/ping-check.sh'",
        "external-check\n    insecure-fork-wanted",
        "option httpchk HEAD '/healthz'",
        "http-check expect rstatus '^(200|201|202)$'",
        "server w1 [2001:db8::21]:8443 weight 1 check inter 2s rise 3 fall 5 check-ssl verify none",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    assert!(!text.contains("peers "), "no peers, no section: {text}");
}

#[test]
fn the_peers_section_waits_for_this_node_and_the_store_file_is_versioned() {
    let mut s = Store::default();
    create(
        &mut s,
        Kind::Peer,
        json!({"hostname": OTHER, "address": "198.51.100.234"}),
    );
    create(
        &mut s,
        Kind::Pool,
        json!({"id": "p", "protocol": "TCP", "session_persistence": {"type": "SOURCE_IP"}}),
    );
    assert!(!s.peers_active(&context()));
    let text = render(&s.balancer(&context()).expect("valid"), &paths());
    assert!(
        text.contains("stick-table type ip size 200k expire 1d\n"),
        "not shared yet: {text}"
    );
    create(
        &mut s,
        Kind::Peer,
        json!({"hostname": LOCAL, "address": "198.51.100.235", "port": 10000}),
    );
    let text = render(&s.balancer(&context()).expect("valid"), &paths());
    assert!(
        text.contains("expire 1d peers kinx_loadbalancer_peers\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("peer {LOCAL} 198.51.100.235:10000")),
        "{text}"
    );
    assert!(
        Store::from_json("{\"format\": 9}")
            .unwrap_err()
            .contains("format 9")
    );
    assert!(Store::from_json("not json").is_err());
}
