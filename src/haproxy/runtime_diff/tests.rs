//! Which model changes go through the runtime API, the commands they make, and every change that
//! needs a reload.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::*;
use crate::haproxy::model::{
    ExpectedCodes, Expiry, HttpCheck, HttpMethod, HttpPath, Listener, Mode, Monitor, Peer, Peers,
    StickKey, TableSize,
};
use crate::haproxy::render::{RuntimePaths, render};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn name(value: &str) -> Name {
    Name::new("name", value).expect("name")
}

fn member(id: &str, port: u16) -> Member {
    Member {
        name: name(id),
        address: LOOPBACK.into(),
        port,
        weight: 10,
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

fn listener(id: &str, port: u16, pool: &str) -> Listener {
    Listener {
        name: name(id),
        enabled: true,
        mode: Mode::Http,
        address: LOOPBACK,
        port,
        max_connections: None,
        tls: None,
        default_pool: Some(name(pool)),
    }
}

fn http_monitor() -> Monitor {
    Monitor {
        kind: CheckKind::Http(HttpCheck {
            method: HttpMethod::Get,
            path: HttpPath::new("/health").expect("path"),
            expect: ExpectedCodes::one(200),
        }),
        interval_s: 5,
        timeout_s: 2,
        rise: 2,
        fall: 3,
    }
}

fn balancer(pools: Vec<Pool>) -> Balancer {
    let listeners = pools
        .iter()
        .enumerate()
        .map(|(i, p)| listener(&format!("fe-{}", p.name), 8000 + i as u16, p.name.as_str()))
        .collect();
    Balancer::new(listeners, pools, None).expect("valid")
}

fn two_pools() -> Vec<Pool> {
    vec![
        pool("be-a", vec![member("a1", 9001), member("a2", 9002)]),
        pool("be-b", vec![member("b1", 9101)]),
    ]
}

/// The changes from `two_pools()` to what `edit` makes of it.
fn changes(edit: impl FnOnce(&mut Vec<Pool>)) -> Option<Vec<RuntimeChange>> {
    let mut pools = two_pools();
    edit(&mut pools);
    runtime_changes(&balancer(two_pools()), &balancer(pools))
}

fn lines(changes: &[RuntimeChange]) -> Vec<String> {
    changes
        .iter()
        .flat_map(RuntimeChange::commands)
        .map(|c| c.line().to_owned())
        .collect()
}

#[test]
fn the_same_model_needs_no_change() {
    assert_eq!(changes(|_| {}), Some(vec![]));
}

#[test]
fn a_member_added_is_a_dynamic_server_enabled() {
    let found = changes(|p| p[0].members.push(member("a3", 9003))).expect("runtime");
    assert_eq!(
        found,
        vec![RuntimeChange::Add {
            backend: name("be-a"),
            server: name("a3"),
            spec: "127.0.0.1:9003 weight 10".into(),
            enable: true,
            health: false,
        }]
    );
    assert_eq!(
        lines(&found),
        [
            "add server be-a/a3 127.0.0.1:9003 weight 10",
            "enable server be-a/a3"
        ]
    );
}

#[test]
fn a_checked_disabled_backup_member_is_added_as_the_file_declares_it() {
    let checked = |mut pools: Vec<Pool>| {
        pools[0].monitor = Some(http_monitor());
        pools
    };
    let mut new = checked(two_pools());
    let mut extra = member("a3", 9003);
    extra.address = "2001:db8::3".parse().expect("ip");
    extra.enabled = false;
    extra.backup = true;
    extra.weight = 0;
    new[0].members.insert(0, extra);
    let new = balancer(new);
    let found = runtime_changes(&balancer(checked(two_pools())), &new).expect("runtime");
    assert_eq!(
        lines(&found),
        [
            "add server be-a/a3 [2001:db8::3]:9003 weight 0 backup disabled check inter 5s \
             rise 2 fall 3",
            "enable health be-a/a3",
        ]
    );
    // The next start from the file has the same server.
    let paths = RuntimePaths {
        stats_socket: PathBuf::from("/run/s.sock"),
        pidfile: PathBuf::from("/run/h.pid"),
        ping_script: PathBuf::from("/run/ping.sh"),
    };
    let RuntimeChange::Add { server, spec, .. } = &found[0] else {
        panic!("an addition: {found:?}");
    };
    let line = format!("    server {server} {spec}\n");
    assert!(render(&new, &paths).contains(&line), "{line}");
}

#[test]
fn an_https_check_is_added_with_its_tls_options() {
    let https = |mut pools: Vec<Pool>| {
        let CheckKind::Http(check) = http_monitor().kind else {
            unreachable!()
        };
        pools[1].monitor = Some(Monitor {
            kind: CheckKind::Https(check),
            ..http_monitor()
        });
        pools
    };
    let mut new = https(two_pools());
    new[1].members.push(member("b2", 9102));
    let found = runtime_changes(&balancer(https(two_pools())), &balancer(new)).expect("runtime");
    assert_eq!(
        lines(&found)[0],
        "add server be-b/b2 127.0.0.1:9102 weight 10 check inter 5s rise 2 fall 3 check-ssl \
         verify none"
    );
}

#[test]
fn a_member_removed_goes_into_maintenance_then_is_deleted() {
    let found = changes(|p| {
        p[0].members.remove(0);
    })
    .expect("runtime");
    assert_eq!(
        lines(&found),
        ["set server be-a/a1 state maint", "del server be-a/a1"]
    );
}

#[test]
fn weight_and_admin_state_are_set() {
    let found = changes(|p| {
        p[0].members[0].weight = 0;
        p[0].members[1].enabled = false;
        p[1].members[0].weight = 200;
        p[1].members[0].enabled = false;
    })
    .expect("runtime");
    assert_eq!(
        lines(&found),
        [
            "set server be-a/a1 weight 0",
            "set server be-a/a2 state maint",
            "set server be-b/b1 weight 200",
            "set server be-b/b1 state maint",
        ]
    );
    let back = runtime_changes(
        &balancer({
            let mut p = two_pools();
            p[0].members[1].enabled = false;
            p
        }),
        &balancer(two_pools()),
    )
    .expect("runtime");
    assert_eq!(lines(&back), ["set server be-a/a2 state ready"]);
}

#[test]
fn additions_come_first_and_removals_last() {
    let found = changes(|p| {
        p[0].members = vec![member("a9", 9009)];
        p[1].members[0].weight = 1;
        p[1].members.push(member("b2", 9102));
    })
    .expect("runtime");
    let kinds: Vec<(&str, &str)> = found
        .iter()
        .map(|c| match c {
            RuntimeChange::Add { server, .. } => ("add", server.as_str()),
            RuntimeChange::Weight { server, .. } => ("weight", server.as_str()),
            RuntimeChange::State { server, .. } => ("state", server.as_str()),
            RuntimeChange::Remove { server, .. } => ("remove", server.as_str()),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("add", "a9"),
            ("add", "b2"),
            ("weight", "b1"),
            ("remove", "a1"),
            ("remove", "a2")
        ]
    );
    assert_eq!(found[0].backend(), &name("be-a"));
    assert_eq!(found[2].backend(), &name("be-b"));
}

#[test]
fn leastconn_pools_take_runtime_changes() {
    let found = changes(|p| {
        p[0].balance = Balance::LeastConnections;
        p[0].members.push(member("a3", 9003));
    });
    // The balance itself changed: reload.
    assert_eq!(found, None);
    let leastconn = |mut pools: Vec<Pool>| {
        pools[0].balance = Balance::LeastConnections;
        pools
    };
    let mut new = leastconn(two_pools());
    new[0].members.push(member("a3", 9003));
    assert!(runtime_changes(&balancer(leastconn(two_pools())), &balancer(new)).is_some());
}

/// A change to the pools, named for the failure message.
type Edit = Box<dyn Fn(&mut Vec<Pool>)>;

#[test]
fn everything_but_servers_needs_a_reload() {
    let old = balancer(two_pools());
    let edits: Vec<(&str, Edit)> = vec![
        ("a pool added", Box::new(|p| p.push(pool("be-c", vec![])))),
        (
            "a pool's check",
            Box::new(|p| p[0].monitor = Some(http_monitor())),
        ),
        (
            "a pool's balance",
            Box::new(|p| p[1].balance = Balance::SourceIp),
        ),
        ("a pool disabled", Box::new(|p| p[1].enabled = false)),
        (
            "a pool's persistence",
            Box::new(|p| {
                p[0].persistence = Some(Persistence::HttpCookie {
                    cookie: name("SRV"),
                })
            }),
        ),
        (
            "a member's address",
            Box::new(|p| p[0].members[0].address = "127.0.0.2".parse().expect("ip")),
        ),
        ("a member's port", Box::new(|p| p[0].members[0].port = 9999)),
        (
            "a member's backup",
            Box::new(|p| p[0].members[0].backup = true),
        ),
        (
            "a member with a hostname",
            Box::new(|p| {
                let mut m = member("web", 9010);
                m.address = "web.example".parse().expect("host");
                p[0].members.push(m);
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut pools = two_pools();
        edit(&mut pools);
        let new = Balancer::new(old.listeners().to_vec(), pools, None).expect("valid");
        assert_eq!(runtime_changes(&old, &new), None, "{what}");
    }
    let mut moved = old.listeners().to_vec();
    moved[0].port = 7000;
    let new = Balancer::new(moved, two_pools(), None).expect("valid");
    assert_eq!(runtime_changes(&old, &new), None, "a listener's port");
    let peers = Peers {
        section: name("lb"),
        local: name("node1"),
        peers: vec![Peer {
            name: name("node1"),
            address: LOOPBACK,
            port: 1024,
        }],
    };
    let new = Balancer::new(old.listeners().to_vec(), two_pools(), Some(peers)).expect("valid");
    assert_eq!(runtime_changes(&old, &new), None, "peers");
}

/// `two_pools()` with pool be-a changed by `setting`, before and after `edit`.
fn in_pool_with(
    setting: impl Fn(&mut Pool),
    edit: impl FnOnce(&mut Pool),
) -> Option<Vec<RuntimeChange>> {
    let mut old = two_pools();
    setting(&mut old[0]);
    let mut new = old.clone();
    edit(&mut new[0]);
    runtime_changes(&balancer(old), &balancer(new))
}

#[test]
fn server_changes_haproxy_cannot_make_at_run_time_need_a_reload() {
    let source = |p: &mut Pool| p.balance = Balance::SourceIp;
    let disabled = |p: &mut Pool| p.enabled = false;
    let cookie = |p: &mut Pool| {
        p.persistence = Some(Persistence::HttpCookie {
            cookie: name("SRV"),
        })
    };
    let sticky = |p: &mut Pool| {
        p.persistence = Some(Persistence::SourceIp {
            key: StickKey::Ipv4,
            size: TableSize::new("200k").expect("size"),
            expire: Expiry::new("1d").expect("expiry"),
            peers: false,
        })
    };
    let app_cookie = |p: &mut Pool| {
        p.persistence = Some(Persistence::AppCookie {
            cookie: name("JSESSIONID"),
        })
    };
    let ping = |p: &mut Pool| {
        p.monitor = Some(Monitor {
            kind: CheckKind::Ping,
            ..http_monitor()
        })
    };
    let add = |p: &mut Pool| p.members.push(member("a3", 9003));
    let remove = |p: &mut Pool| {
        p.members.pop();
    };
    let weigh = |p: &mut Pool| p.members[0].weight = 1;
    assert_eq!(in_pool_with(source, weigh), None, "balance source: weight");
    assert_eq!(in_pool_with(source, add), None, "balance source: add");
    assert_eq!(in_pool_with(disabled, weigh), None, "disabled pool");
    assert_eq!(in_pool_with(cookie, add), None, "cookie: add");
    assert_eq!(in_pool_with(sticky, add), None, "stick table: add");
    assert_eq!(in_pool_with(sticky, remove), None, "stick table: remove");
    assert_eq!(in_pool_with(app_cookie, remove), None, "app cookie: remove");
    assert_eq!(in_pool_with(ping, add), None, "ping: add");
    // What persistence and checks do not prevent.
    assert!(in_pool_with(cookie, remove).is_some(), "cookie: remove");
    assert!(in_pool_with(sticky, weigh).is_some(), "stick table: weight");
    assert!(in_pool_with(ping, remove).is_some(), "ping: remove");
    // An unchanged disabled or static pool beside a changed one is no obstacle.
    let mut old = two_pools();
    old[1].enabled = false;
    old[1].balance = Balance::SourceIp;
    let mut new = old.clone();
    new[0].members[0].weight = 3;
    assert!(runtime_changes(&balancer(old), &balancer(new)).is_some());
}

#[test]
fn a_command_says_whether_it_worked() {
    let found = changes(|p| {
        p[0].members.push(member("a3", 9003));
        p[0].members.remove(0);
    })
    .expect("runtime");
    let commands: Vec<Command> = found.iter().flat_map(RuntimeChange::commands).collect();
    let [add, enable, maint, del] = commands.as_slice() else {
        panic!("four commands: {commands:?}");
    };
    assert!(add.succeeded("New server registered.\n\n"));
    assert!(!add.succeeded("Already exists a server with the same name in backend.\n\n"));
    assert!(enable.succeeded("\n"));
    assert!(!enable.succeeded("No such server.\n\n"));
    assert!(maint.succeeded(""));
    assert!(del.succeeded("Server deleted.\n"));
    assert!(!del.succeeded("Only servers in maintenance mode can be deleted.\n"));
}

#[test]
#[should_panic(expected = "only names, addresses and numbers")]
fn a_command_cannot_carry_a_second_one() {
    Command::new(
        "set server a/b weight 1; shutdown sessions".into(),
        Success::Silent,
    );
}

#[test]
#[should_panic(expected = "only names, addresses and numbers")]
fn a_command_cannot_carry_a_newline() {
    Command::new("del server a/b\nshutdown".into(), Success::Silent);
}
