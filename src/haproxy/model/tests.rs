//! Model validation tables: good and bad hosts, paths, names, table sizes, expiries, expected
//! codes, and the rules a balancer's constructor enforces, with the exact error messages.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

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

fn name(value: &str) -> Name {
    Name::new("test name", value).expect("valid name")
}

#[test]
fn names_are_restricted_and_say_what_they_name() {
    for good in ["1", "web-1", "node_2.a", &"x".repeat(64)] {
        assert_eq!(name(good).as_str(), good);
    }
    let cases = [
        ("pool id", "", "pool id `` is not valid: it is empty"),
        (
            "member id",
            "a b",
            "member id `a b` is not valid: a space at position 2 is not a letter, digit, `_`, \
             `.` or `-`",
        ),
        (
            "listener id",
            "x\nfrontend evil",
            "listener id `x\\nfrontend evil` is not valid: `\\n` at position 2 is not a letter, \
             digit, `_`, `.` or `-`",
        ),
    ];
    for (what, bad, message) in cases {
        assert_eq!(Name::new(what, bad).expect_err(bad).to_string(), message);
    }
    assert_eq!(
        name("p1").prefixed("pool id", "backend-").expect("fits"),
        name("backend-p1")
    );
    assert!(
        name(&"x".repeat(60))
            .prefixed("pool id", "backend-")
            .is_err()
    );
}

#[test]
fn table_sizes_expiries_codes_and_methods() {
    for good in ["200k", "1", "10m", "3g"] {
        assert_eq!(TableSize::new(good).expect(good).as_str(), good);
    }
    for bad in ["", "0", "k", "20kk", "-1", "1 k", "12345678901"] {
        assert!(TableSize::new(bad).is_err(), "{bad:?}");
    }
    for good in ["30m", "1d", "500ms", "10s", "2h"] {
        assert_eq!(Expiry::new(good).expect(good).as_str(), good);
    }
    for bad in ["", "0s", "30", "1w", "m", "1d\n"] {
        assert!(Expiry::new(bad).is_err(), "{bad:?}");
    }
    let codes = |s: &str| ExpectedCodes::parse(s).map(|c| c.codes().to_vec());
    assert_eq!(codes("200"), Ok(vec![200]));
    assert_eq!(codes("200,202, 204"), Ok(vec![200, 202, 204]));
    assert_eq!(codes("200-203,201"), Ok(vec![200, 201, 202, 203]));
    for bad in ["", "99", "600", "204-200", "2xx", "100-599", "200;202"] {
        assert!(ExpectedCodes::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!("get".parse::<HttpMethod>(), Ok(HttpMethod::Get));
    assert_eq!("HEAD".parse::<HttpMethod>(), Ok(HttpMethod::Head));
    assert!("CONNECT".parse::<HttpMethod>().is_err());
}

fn listener(id: &str, port: u16, pool: Option<&str>) -> Listener {
    Listener {
        name: name(id),
        enabled: true,
        mode: Mode::Http,
        address: ANY,
        port,
        max_connections: None,
        tls: None,
        default_pool: pool.map(name),
    }
}

fn member(id: &str, port: u16) -> Member {
    Member {
        name: name(id),
        address: "192.0.2.10".parse().expect("host"),
        port,
        weight: 1,
        enabled: true,
        backup: false,
    }
}

fn pool(id: &str, members: Vec<Member>) -> Pool {
    Pool {
        name: name(id),
        enabled: true,
        mode: Mode::Http,
        balance: Balance::RoundRobin,
        persistence: None,
        monitor: None,
        members,
    }
}

fn balancer_error(listeners: Vec<Listener>, pools: Vec<Pool>, peers: Option<Peers>) -> String {
    Balancer::new(listeners, pools, peers)
        .expect_err("invalid")
        .to_string()
}

#[test]
fn a_balancer_resolves_its_references_and_keeps_names_and_binds_apart() {
    let ok = Balancer::new(
        vec![listener("l1", 80, Some("p1")), listener("l2", 81, None)],
        vec![pool("p1", vec![member("m1", 80), member("m2", 80)])],
        None,
    )
    .expect("valid");
    assert_eq!(ok.listeners().len(), 2);
    assert!(!ok.pings());

    let cases: Vec<(Vec<Listener>, Vec<Pool>, &str)> = vec![
        (
            vec![listener("l1", 80, Some("nope"))],
            vec![],
            "listener `l1` refers to pool `nope`, which does not exist",
        ),
        (
            vec![listener("same", 80, None)],
            vec![pool("same", vec![])],
            "frontend or backend name `same` is used twice",
        ),
        (
            vec![listener("l1", 80, None), listener("l2", 80, None)],
            vec![],
            "listeners `l1` and `l2` both bind port 80 on 0.0.0.0",
        ),
        (
            vec![listener("l1", 0, None)],
            vec![],
            "listener `l1` port 0 is out of range 1-65535",
        ),
        (
            vec![],
            vec![pool("p1", vec![member("m1", 80), member("m1", 81)])],
            "server name `p1/m1` is used twice",
        ),
        (
            vec![],
            vec![pool("p1", vec![member("m1", 0)])],
            "pool `p1` member `m1` port 0 is out of range 1-65535",
        ),
    ];
    for (listeners, pools, message) in cases {
        assert_eq!(balancer_error(listeners, pools, None), message);
    }

    let mut tcp_pool = pool("p1", vec![]);
    tcp_pool.mode = Mode::Tcp;
    assert_eq!(
        balancer_error(
            vec![listener("l1", 80, Some("p1"))],
            vec![tcp_pool.clone()],
            None
        ),
        "listener `l1` is HTTP but its pool `p1` is TCP: they must match"
    );
    tcp_pool.persistence = Some(Persistence::HttpCookie {
        cookie: name("SRV"),
    });
    assert_eq!(
        balancer_error(vec![], vec![tcp_pool], None),
        "pool `p1` is TCP: cookie persistence needs HTTP"
    );
    let mut heavy = member("m1", 80);
    heavy.weight = 257;
    assert_eq!(
        balancer_error(vec![], vec![pool("p1", vec![heavy])], None),
        "pool `p1` member `m1` weight 257 is out of range 0-256"
    );
    let mut tls_tcp = listener("l1", 443, None);
    tls_tcp.mode = Mode::Tcp;
    tls_tcp.tls = Some(Tls {
        certificates: vec!["/etc/certs/a.pem".into()],
    });
    assert_eq!(
        balancer_error(vec![tls_tcp], vec![], None),
        "listener `l1` terminates TLS, so it must be HTTP"
    );
}

#[test]
fn a_shared_stick_table_needs_peers_with_this_node_among_them() {
    let mut sticky = pool("p1", vec![]);
    sticky.persistence = Some(Persistence::SourceIp {
        key: StickKey::Ipv4,
        size: TableSize::new("200k").expect("size"),
        expire: Expiry::new("1d").expect("expiry"),
        peers: true,
    });
    assert_eq!(
        balancer_error(vec![], vec![sticky.clone()], None),
        "pool `p1` shares its stick table with peers, but there are none"
    );
    let peer = |n: &str, a: &str| Peer {
        name: name(n),
        address: a.parse().expect("ip"),
        port: 1024,
    };
    let peers = |local: &str| Peers {
        section: name("kinx_loadbalancer_peers"),
        local: name(local),
        peers: vec![peer("lb1", "198.51.100.11"), peer("lb2", "198.51.100.12")],
    };
    assert_eq!(
        balancer_error(vec![], vec![sticky.clone()], Some(peers("lb3"))),
        "the peers section refers to this node's peer `lb3`, which does not exist"
    );
    Balancer::new(vec![], vec![sticky], Some(peers("lb1"))).expect("valid");
}
