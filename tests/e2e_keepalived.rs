//! End-to-end keepalived integration: two nodes in network namespaces joined through a bridge,
//! the real keepalived (VRRP v3, unicast) and the real keepserver on each. keepalived moves the
//! VIP, keepserver follows it (failover and preemptive failback) with its hooks and its Libra
//! worker (registered on a real gearmand only on the MASTER) and its BGP announcer (a router's FRR
//! bgpd on the bridge reaches the VIP /32 only via the MASTER), keepalived's notify script and
//! notify FIFO both reach keepserver and are logged in order, and no hook ever overlaps. Also
//! `keepserver notify` on its own: exit codes, returning at once, and the VIP staying the truth.

mod common;
mod frr;
mod keepalived;

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::time::{Duration, Instant};

use common::*;
use frr::WITHIN;
use keepalived::*;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use serde_json::Value;

/// Waits until `node` shows `role`/`running` with no hook in flight.
fn settled(lab: &Lab, node: &Node, role: &str, running: bool) {
    lab.wait_until(
        &format!("node {} settles as {role} running={running}", node.name),
        DEADLINE,
        || node.ws.settled(role, running),
    );
}

/// Writes `line` into the FIFO `name` of `ws`, waiting (bounded) for its reader to be there.
fn write_fifo(ws: &Workspace, name: &str, line: &str) {
    let path = ws.path(name);
    let mut written = None;
    let ok = wait_for(
        || {
            written = Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(OFlag::O_NONBLOCK.bits())
                    .open(&path)
                    .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes())),
            );
            matches!(written, Some(Ok(())))
        },
        DEADLINE,
    );
    assert!(
        ok,
        "write to {}: {written:?}\n{}",
        path.display(),
        ws.report()
    );
}

/// Waits until exactly the nodes at `addrs` have a Libra worker on the queue.
fn workers_are(lab: &Lab, addrs: &[&str]) {
    lab.wait_until(
        &format!("the Libra workers on {QUEUE} are those of {addrs:?}"),
        DEADLINE,
        || lab.workers().is_some_and(|w| w == addrs),
    );
}

fn keepalived_status(node: &Node) -> Value {
    node.ws
        .status_json()
        .map(|s| s["keepalived"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn two_node_failover_and_failback_follow_keepalived() {
    let Some(mut lab) = Lab::new("ka_failover") else {
        return;
    };
    lab.start_gearmand();
    lab.a.start_keepserver();
    lab.b.start_keepserver();
    for node in [&lab.a, &lab.b] {
        let meta = std::fs::symlink_metadata(node.ws.path(FIFO));
        assert!(
            meta.is_ok_and(|m| m.file_type().is_fifo()),
            "keepserver on {} creates the FIFO:\n{}",
            node.name,
            lab.report()
        );
    }

    // a (priority 150) first, so it is MASTER without racing b for it.
    lab.a.start_keepalived();
    lab.wait_until("a holds the VIP", DEADLINE, || lab.a.has_vip());
    settled(&lab, &lab.a, "MASTER", true);
    lab.b.start_keepalived();
    lab.wait_until("b's keepalived reports BACKUP", DEADLINE, || {
        lab.b.logged_states("fifo") == ["BACKUP"]
    });
    settled(&lab, &lab.b, "SLAVE", false);
    assert_eq!(lab.a.ws.start_stop(), ["start"], "{}", lab.report());
    assert!(lab.b.ws.hook_lines().is_empty(), "{}", lab.report());
    assert!(!lab.b.has_vip(), "{}", lab.report());
    workers_are(&lab, &[lab.a.addr]);
    // With both sessions up (b's too, so b could announce), the router reaches the VIP via a.
    lab.wait_sessions();
    lab.wait_vip_route_via(&lab.a, Instant::now(), WITHIN);

    // A bad line in a's FIFO is logged and skipped; the reader carries on.
    write_fifo(&lab.a.ws, FIFO, "this is not keepalived");
    lab.wait_until("a logs the bad FIFO line", DEADLINE, || {
        lab.a
            .ws
            .read("daemon.out")
            .contains("keepalived-fifo bad line skipped")
    });

    // Failover: a's keepalived stops, the VIP moves to b; b starts, a stops; the router's
    // route to the VIP follows within the 5 s the issue allows.
    let stopped = Instant::now();
    lab.a.stop_keepalived();
    lab.wait_vip_route_via(&lab.b, stopped, WITHIN);
    lab.wait_until("b holds the VIP", DEADLINE, || lab.b.has_vip());
    settled(&lab, &lab.b, "MASTER", true);
    settled(&lab, &lab.a, "SLAVE", false);
    assert!(!lab.a.has_vip(), "{}", lab.report());
    assert_eq!(lab.a.ws.start_stop(), ["start", "stop"], "{}", lab.report());
    assert_eq!(lab.b.ws.start_stop(), ["start"], "{}", lab.report());
    workers_are(&lab, &[lab.b.addr]);
    assert_eq!(lab.vip_next_hops(), [lab.b.addr], "{}", lab.report());
    let b_start = &lab.b.ws.runs_of("start")[0];
    assert_eq!(
        (b_start.get("role"), b_start.get("vip"), b_start.get("nic")),
        ("MASTER", VIP, NIC),
        "{}",
        lab.report()
    );

    // Failback: a's keepalived comes back and, preemption being on, takes the VIP back.
    let restarted = Instant::now();
    lab.a.start_keepalived();
    lab.wait_vip_route_via(&lab.a, restarted, WITHIN);
    lab.wait_until("a holds the VIP again", DEADLINE, || lab.a.has_vip());
    settled(&lab, &lab.a, "MASTER", true);
    settled(&lab, &lab.b, "SLAVE", false);
    assert!(!lab.b.has_vip(), "{}", lab.report());
    assert_eq!(
        lab.a.ws.start_stop(),
        ["start", "stop", "start"],
        "{}",
        lab.report()
    );
    assert_eq!(lab.b.ws.start_stop(), ["start", "stop"], "{}", lab.report());
    workers_are(&lab, &[lab.a.addr]);
    assert_eq!(lab.vip_next_hops(), [lab.a.addr], "{}", lab.report());
    // Announcing and withdrawing never reset a BGP session.
    for node in [&lab.a, &lab.b] {
        let sessions = lab.router.established_count(node.addr);
        assert_eq!(
            sessions,
            1,
            "{}'s session was reset\n{}",
            node.name,
            lab.report()
        );
    }

    // Both channels delivered every state change, each in order.
    let a_states = ["BACKUP", "MASTER", "STOP", "BACKUP", "MASTER"];
    let b_states = ["BACKUP", "MASTER", "BACKUP"];
    for (node, want) in [(&lab.a, &a_states[..]), (&lab.b, &b_states[..])] {
        for source in ["fifo", "notify"] {
            lab.wait_until(
                &format!("node {} logs {source} events {want:?}", node.name),
                DEADLINE,
                || node.logged_states(source) == want,
            );
        }
        assert_eq!(node.ws.overlap(), None, "{}", lab.report());
        let k = keepalived_status(node);
        assert_eq!(k["events"], 2 * want.len(), "{}", lab.report());
        assert_eq!(k["disagreements"], 0, "{}", lab.report());
    }
    assert_eq!(lab.a.notify_master_runs(), 2, "{}", lab.report());
    assert_eq!(lab.b.notify_master_runs(), 1, "{}", lab.report());
}

#[test]
fn notify_command_returns_at_once_and_the_vip_stays_the_truth() {
    let Some(ns) = Netns::new("ka_notify") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP));

    let out = ws.cli(&["notify", "MASTER"]);
    assert_eq!(out.code, Some(3), "no daemon: exit 3\n{out}");
    assert!(out.stderr.contains("not running"), "{out}");
    for bad in [
        &["notify", "PRIMARY"][..],
        &["notify", "INSTANCE", "VI_1", "MASTER"],
        &["notify", "INSTANCE", "VI_1", "MASTER", "300"],
        &["notify"],
    ] {
        let out = ws.cli(bad);
        assert_eq!(out.code, Some(2), "bad arguments: exit 2\n{out}");
    }

    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);

    // keepalived says MASTER, the VIP says otherwise: logged as a warning, nothing runs.
    let out = ws.cli(&["notify", "INSTANCE", INSTANCE, "MASTER", "100"]);
    assert!(out.ok(), "{out}");
    assert!(out.stdout.contains("notify delivered"), "{out}");
    ws.wait_until("the disagreement is counted", DEADLINE, || {
        ws.status_json()
            .is_ok_and(|s| s["keepalived"]["disagreements"] == 1)
    });
    let log = ws.read("daemon.out");
    assert!(
        log.contains("keepalived disagrees with the VIP; the VIP decides source=notify state=MASTER vip=absent"),
        "{}",
        ws.report()
    );
    assert!(ws.hook_lines().is_empty(), "{}", ws.report());

    // While a slow start hook runs, a FAULT notify returns at once, and with the VIP still on
    // the NIC the node is MASTER again without a stop.
    ws.write("delay", "2");
    ns.add_addr(&format!("{VIP}/24"));
    ws.wait_until("start begins", DEADLINE, || ws.runs_of("start").len() == 1);
    let began = Instant::now();
    let out = ws.cli(&["notify", "FAULT"]);
    let took = began.elapsed();
    assert!(out.ok(), "{out}");
    assert!(
        took < Duration::from_secs(1),
        "notify took {took:?} while a hook ran:\n{out}"
    );
    std::fs::remove_file(ws.path("delay")).expect("remove delay");
    ws.wait_stable("MASTER", true, Duration::from_millis(600));
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());
    let status = ws.status_json().expect("status");
    assert_eq!(status["keepalived"]["state"], "FAULT", "{status}");
    assert_eq!(status["keepalived"]["disagreements"], 2, "{status}");
    let log = ws.read("daemon.out");
    assert!(
        log.contains("keepalived gave this node up: SLAVE until the VIP is re-read state=FAULT"),
        "{}",
        ws.report()
    );
    assert_eq!(ws.overlap(), None, "{}", ws.report());
}

fn is_fifo(ws: &Workspace, name: &str) -> bool {
    std::fs::symlink_metadata(ws.path(name)).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn fifo_follows_reload_and_is_removed_on_exit() {
    let Some(ns) = Netns::new("ka_fifo") else {
        return;
    };
    let spec = ConfigSpec::new(VIP);
    let ws = Workspace::new(&spec);
    let with_fifo = |name: &str| format!("{}  keepalived-fifo: '{name}'\n", spec.render(ws.dir()));
    ws.write("config.yaml", &with_fifo("one.fifo"));
    let mut d = Daemon::start(&ns, &ws);
    assert!(is_fifo(&ws, "one.fifo"), "{}", ws.report());
    write_fifo(&ws, "one.fifo", "INSTANCE \"VI_1\" BACKUP 100");
    ws.wait_until("the event from one.fifo is logged", DEADLINE, || {
        ws.read("daemon.out")
            .contains("keepalived notify source=fifo kind=INSTANCE instance=\"VI_1\" state=BACKUP")
    });

    ws.write("config.yaml", &with_fifo("two.fifo"));
    let out = ws.cli(&["reload"]);
    assert!(out.ok(), "{out}");
    ws.wait_until("one.fifo removed, two.fifo created", DEADLINE, || {
        !ws.path("one.fifo").exists() && is_fifo(&ws, "two.fifo")
    });
    write_fifo(&ws, "two.fifo", "GROUP \"G1\" FAULT 0");
    ws.wait_until("the event from two.fifo is logged", DEADLINE, || {
        ws.status_json().is_ok_and(|s| {
            s["keepalived"]["state"] == "FAULT" && s["keepalived"]["instance"] == "G1"
        })
    });

    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(DEADLINE);
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM ends keepserver cleanly ({status:?}):\n{}",
        ws.report()
    );
    assert!(!ws.path("two.fifo").exists(), "{}", ws.report());
}
