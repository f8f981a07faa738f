//! End-to-end: the components keepserver drives fail under it, for real, and it recovers within
//! 5 s. gearmand is killed with SIGKILL and started again; the HAProxy master is killed with
//! SIGKILL (while MASTER, after a SUSPEND, as the node becomes SLAVE); FRR's bgpd (restarted with
//! its last configuration, and empty) and zebra are killed with SIGKILL and started again; the
//! file system holding haproxy.cfg or bgpd.conf is full when a new one must be written. Every
//! bound is a poll with a deadline; each recovery time is printed (`FAULT-TIMING ...`, visible
//! with `--nocapture`) for the README's figures. The labs are those of tests/libra/ and
//! tests/bgp/; the full disks are small tmpfs mounts (tests/common/).

mod bgp;
mod common;
mod frr;
mod libra;

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use bgp::{BgpLab, NODE_ADDR, PREFIX};
use common::*;
use libra::{Lab, LabSpec, VIP_CIDR, action, assert_echo, names, response, update_http};

/// What the issue allows between a component's return (or death) and keepserver's recovery.
const WITHIN: Duration = Duration::from_secs(5);

/// Prints one recovery time for the figures in the README.
fn timing(fault: &str, took: Duration) {
    eprintln!("FAULT-TIMING fault={fault} ms={}", took.as_millis());
}

/// The time of day (s) of the last line of keepserver's `log` holding `needle` (lines begin
/// `YYYY-MM-DD HH:MM:SS.mmm`).
fn logged_at(log: &str, needle: &str) -> Option<f64> {
    let line = log.lines().rev().find(|l| l.contains(needle))?;
    let clock = line.get(11..23)?;
    let mut parts = clock.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// The time keepserver's log shows from the last `from` line to the last `to` line.
fn logged_gap(log: &str, from: &str, to: &str) -> Option<Duration> {
    let gap = logged_at(log, to)? - logged_at(log, from)?;
    Some(Duration::from_secs_f64(gap.rem_euclid(86_400.0)))
}

// ---------------------------------------------------------------------------------------------
// gearmand

/// gearmand killed with SIGKILL and started again on the same port, after a short outage and
/// after one long enough for the worker's reconnect back-off to reach its 2 s cap. A client
/// submits a DISCOVER and an UPDATE as soon as gearmand is back: within 5 s of its return
/// keepserver's worker is registered on the queue again (gearmand's `status`) and both jobs are
/// served; keepserver itself lives on throughout.
#[test]
fn gearmand_killed_and_restarted() {
    let Some(mut lab) = Lab::start("faults_gearmand", LabSpec::default()) else {
        return;
    };
    let a = lab.backend("A");
    let b = lab.backend("B");
    let front = lab.port();
    lab.pass(&update_http(front, &[a]));
    let port = lab.gearmand().port;
    let daemon = lab.daemon().pid();
    let mut current = 0;
    for (round, outage, nodes, seen) in [
        (1, Duration::from_millis(300), vec![a, b], vec!["A", "B"]),
        (2, Duration::from_millis(3500), vec![b], vec!["B"]),
    ] {
        lab.kill_gearmand(current);
        lab.ws.assert_holds(
            &format!("round {round}: keepserver survives gearmand's death"),
            outage,
            || pid_alive(daemon),
        );
        current = lab.start_gearmand(port);
        let back = Instant::now();
        let requests = [action("DISCOVER"), update_http(front, &nodes)];
        let out = lab.submit_background_all(&requests, 2 * WITHIN);
        lab.wait_until(
            &format!("round {round}: the worker is registered again within 5 s"),
            WITHIN,
            || lab.queue_status().2 >= 1,
        );
        let registered = back.elapsed();
        let mut ends = None;
        lab.wait_until(
            &format!("round {round}: the DISCOVER and the UPDATE are served within 5 s"),
            WITHIN.saturating_sub(back.elapsed()),
            || {
                ends = lab.background_results(&out);
                ends.is_some()
            },
        );
        let served = back.elapsed();
        let ends = ends.expect("results");
        assert_eq!(ends.len(), requests.len(), "{ends:?}\n{}", lab.report());
        for (request, end) in requests.iter().zip(&ends) {
            let reply = end.reply().unwrap_or_default();
            assert!(
                end.outcome == "complete" && response(&reply) == "PASS",
                "round {round}: {request} should PASS, got {end:?}\n{}",
                lab.report()
            );
            assert_echo(request, &reply, &lab.report());
        }
        assert_eq!(lab.backends_seen(front, 4), names(&seen));
        timing(&format!("gearmand-registered-after-{outage:?}"), registered);
        timing(&format!("gearmand-served-after-{outage:?}"), served);
    }
}

// ---------------------------------------------------------------------------------------------
// HAProxy

/// Whether a few GETs through `front` all succeed, together reaching exactly `want`.
fn serves(lab: &Lab, front: u16, want: &[&str]) -> bool {
    lab.backends_answering(front, 2 * want.len().max(2))
        .is_ok_and(|seen| seen == names(want))
}

/// Which HAProxy processes a test kills.
#[derive(Debug, Clone, Copy)]
enum Victims {
    /// The master alone (its workers then leave by themselves).
    Master,
    /// The workers alone (the master then kills the rest and leaves: no `no-exit-on-failure`).
    Workers,
    /// Every HAProxy process at once, as `pkill -9 haproxy` would.
    All,
}

/// SIGKILLs `victims`; returns the master and every HAProxy process there was.
fn kill_haproxy(lab: &Lab, victims: Victims) -> (i32, Vec<i32>) {
    let master = lab
        .haproxy_master()
        .unwrap_or_else(|| panic!("a HAProxy master runs\n{}", lab.report()));
    let pids = lab.haproxy_pids();
    let killed: Vec<i32> = match victims {
        Victims::Master => vec![master],
        Victims::Workers => pids.iter().copied().filter(|p| *p != master).collect(),
        Victims::All => pids.clone(),
    };
    assert!(
        !killed.is_empty(),
        "no {victims:?} to kill\n{}",
        lab.report()
    );
    for pid in killed {
        signal(pid, Signal::SIGKILL);
    }
    (master, pids)
}

/// While MASTER (`follow-role: false`), HAProxy killed with SIGKILL (the master, its workers,
/// then all at once) is noticed and started again from the last good haproxy.cfg (byte for
/// byte the same): within 5 s a new master serves the same node set, every time (the restarted
/// master is watched too), and it takes a later UPDATE. On SLAVE HAProxy is the operator's: a
/// killed one stays down, and is started again within 5 s of the node becoming MASTER.
#[test]
fn haproxy_master_killed_is_restarted_from_its_last_good_config() {
    let Some(mut lab) = Lab::start("faults_haproxy", LabSpec::default()) else {
        return;
    };
    let a = lab.backend("A");
    let b = lab.backend("B");
    let front = lab.port();
    lab.pass(&update_http(front, &[a, b]));
    assert_eq!(lab.backends_seen(front, 4), names(&["A", "B"]));
    let cfg = lab.haproxy_cfg_bytes().expect("haproxy.cfg after UPDATE");

    for (round, victims) in [
        (1, Victims::Master),
        (2, Victims::Workers),
        (3, Victims::All),
    ] {
        let (old, before) = kill_haproxy(&lab, victims);
        let killed = Instant::now();
        let mut new = None;
        lab.wait_until(
            &format!("round {round}: a new HAProxy master serves A and B within 5 s"),
            WITHIN,
            || {
                new = lab.haproxy_master().filter(|p| *p != old);
                new.is_some() && serves(&lab, front, &["A", "B"])
            },
        );
        let took = killed.elapsed();
        timing(&format!("haproxy-{victims:?}-killed").to_lowercase(), took);
        let new = new.expect("a new master");
        let log = lab.daemon_log();
        if let Some(gap) = logged_gap(
            &log,
            &format!("haproxy master exited pid={old}"),
            &format!("haproxy started master={new}"),
        ) {
            timing("haproxy-exit-logged-to-started-logged", gap);
        }
        assert_eq!(
            lab.haproxy_cfg_bytes().as_deref(),
            Some(&cfg[..]),
            "round {round}: haproxy.cfg is the last good one, byte for byte\n{}",
            lab.report()
        );
        for line in [
            format!("haproxy master exited pid={old}"),
            "haproxy exited unexpectedly".to_string(),
            format!("haproxy started master={new}"),
        ] {
            assert!(
                log.contains(&line),
                "round {round}: the log should say `{line}`\n{}",
                lab.report()
            );
        }
        lab.wait_until(
            &format!("round {round}: the killed master's workers are gone"),
            WITHIN,
            || before.iter().all(|p| !pid_alive(*p)),
        );
    }
    lab.pass(&update_http(front, &[b]));
    assert_eq!(lab.backends_seen(front, 4), names(&["B"]));
    let cfg = lab.haproxy_cfg_bytes().expect("haproxy.cfg after UPDATE");

    lab.ns.del_addr(VIP_CIDR);
    lab.wait_role("SLAVE");
    assert!(serves(&lab, front, &["B"]), "{}", lab.report());
    kill_haproxy(&lab, Victims::Master);
    lab.wait_until("the killed HAProxy is gone", WITHIN, || {
        lab.haproxy_pids().is_empty()
    });
    lab.ws.assert_holds(
        "on SLAVE (follow-role false) a killed HAProxy is not started again",
        Duration::from_secs(2),
        || lab.haproxy_pids().is_empty() && lab.refused(front),
    );
    lab.ns.add_addr(VIP_CIDR);
    let master = Instant::now();
    lab.wait_until("MASTER again: HAProxy serves B within 5 s", WITHIN, || {
        serves(&lab, front, &["B"])
    });
    timing("haproxy-restarted-on-master", master.elapsed());
    assert_eq!(lab.haproxy_cfg_bytes().as_deref(), Some(&cfg[..]));
}

/// A suspended load balancer stays down: HAProxy's exit on SUSPEND is no crash, nothing starts
/// it while the daemon runs on, nor after keepserver is killed and started again (its first
/// look at HAProxy finds the suspension); ENABLE serves the kept config, and a master killed
/// after that is started again within 5 s.
#[test]
fn a_suspended_haproxy_stays_down() {
    let Some(mut lab) = Lab::start("faults_suspend", LabSpec::default()) else {
        return;
    };
    let a = lab.backend("A");
    let front = lab.port();
    lab.pass(&update_http(front, &[a]));
    let cfg = lab.haproxy_cfg_bytes().expect("haproxy.cfg after UPDATE");
    lab.pass(&action("SUSPEND"));
    lab.wait_until("SUSPEND: HAProxy is gone", WITHIN, || {
        lab.haproxy_pids().is_empty() && lab.refused(front)
    });
    let before = lab.daemon_log().len();
    // Past the first HAProxy retries (1 s, 2 s) and many cycles.
    lab.ws.assert_holds(
        "a suspended HAProxy is not started again",
        Duration::from_secs(3),
        || lab.haproxy_pids().is_empty(),
    );
    let since = lab.daemon_log()[before..].to_string();
    assert!(
        !since.contains("haproxy exited unexpectedly") && !since.contains("haproxy started"),
        "SUSPEND's stop is no crash:\n{since}"
    );

    lab.restart_keepserver();
    lab.wait_role("MASTER");
    lab.wait_workers(|w| w >= 1, "the new keepserver's worker is registered");
    lab.ws.assert_holds(
        "a restarted keepserver leaves the suspended HAProxy down",
        Duration::from_secs(2),
        || lab.haproxy_pids().is_empty() && lab.refused(front),
    );

    lab.pass(&action("ENABLE"));
    assert_eq!(lab.backends_seen(front, 2), names(&["A"]));
    assert_eq!(lab.haproxy_cfg_bytes().as_deref(), Some(&cfg[..]));
    let (old, _) = kill_haproxy(&lab, Victims::Master);
    let killed = Instant::now();
    lab.wait_until(
        "the enabled HAProxy, killed, serves again within 5 s",
        WITHIN,
        || lab.haproxy_master().is_some_and(|p| p != old) && serves(&lab, front, &["A"]),
    );
    timing("haproxy-master-killed-after-enable", killed.elapsed());
}

/// `follow-role: true`: the master killed just as the VIP leaves ends, whatever order keepserver
/// learns the two in, with HAProxy stopped on SLAVE and left stopped; MASTER again serves the
/// same config within 5 s.
#[test]
fn with_follow_role_a_slave_does_not_restart_haproxy() {
    let spec = LabSpec {
        follow_role: true,
        ..LabSpec::default()
    };
    let Some(mut lab) = Lab::start("faults_follow", spec) else {
        return;
    };
    let a = lab.backend("A");
    let front = lab.port();
    lab.pass(&update_http(front, &[a]));
    let cfg = lab.haproxy_cfg_bytes().expect("haproxy.cfg after UPDATE");

    kill_haproxy(&lab, Victims::Master);
    lab.ns.del_addr(VIP_CIDR);
    lab.wait_role("SLAVE");
    lab.wait_until("SLAVE: no HAProxy within 5 s", WITHIN, || {
        lab.haproxy_pids().is_empty() && lab.refused(front)
    });
    lab.ws.assert_holds(
        "SLAVE with follow-role: HAProxy stays stopped",
        Duration::from_secs(3),
        || lab.haproxy_pids().is_empty(),
    );

    lab.ns.add_addr(VIP_CIDR);
    let master = Instant::now();
    lab.wait_until("MASTER again: HAProxy serves A within 5 s", WITHIN, || {
        serves(&lab, front, &["A"])
    });
    timing("haproxy-follow-role-master-again", master.elapsed());
    assert_eq!(lab.haproxy_cfg_bytes().as_deref(), Some(&cfg[..]));
}

// ---------------------------------------------------------------------------------------------
// FRR

/// The BGP lab, MASTER and announcing the VIP; `None` where the tests cannot run.
fn announcing(test: &str, spec: bgp::LabSpec) -> Option<BgpLab> {
    let lab = BgpLab::start(test, spec)?;
    lab.add_vip();
    lab.wait("the router receives the VIP", WITHIN, || {
        lab.router_has(PREFIX)
    });
    lab.wait("keepserver's bgpd.conf announces it", WITHIN, || {
        fs::read_to_string(lab.bgpd_conf()).is_ok_and(|t| t.contains(" network "))
    });
    Some(lab)
}

/// bgpd killed with SIGKILL and started again in the same pathspace, first with its last
/// configuration (keepserver's bgpd.conf, as FRR's own restart would load it) and then with an
/// EMPTY one (no `router bgp` at all): keepserver notices the new bgpd at its next cycle and
/// tells it again what it lacks, and within 5 s of bgpd's restart the router has the VIP again,
/// over a new session.
#[test]
fn bgpd_killed_and_restarted_announces_again() {
    let Some(mut lab) = announcing("faults_bgpd", bgp::LabSpec::default()) else {
        return;
    };
    let last = fs::read_to_string(lab.bgpd_conf()).expect("bgpd.conf");
    for (case, conf) in [("last-config", last.as_str()), ("empty-config", "")] {
        let sessions = lab.router_frr.established_count(NODE_ADDR);
        let noticed = lab.log().matches("telling bgpd again").count();
        lab.node_frr.kill("bgpd");
        lab.wait(
            &format!("{case}: the router loses the VIP with the session"),
            WITHIN,
            || !lab.router_has(PREFIX),
        );
        let restarted = Instant::now();
        lab.node_frr.restart(&lab.node, "bgpd", Some(conf));
        let socket = restarted.elapsed();
        lab.wait(
            &format!("{case}: the router has the VIP within 5 s of bgpd's restart"),
            WITHIN,
            || lab.router_has(PREFIX),
        );
        let took = restarted.elapsed();
        timing(&format!("bgpd-{case}"), took);
        timing(&format!("bgpd-{case}-vty-socket"), socket);
        if conf.is_empty() {
            let log = lab.log();
            let gap = logged_gap(&log, "telling bgpd again", "bgp configuration applied");
            timing("bgpd-noticed-to-applied", gap.unwrap_or_default());
        }
        assert_eq!(
            lab.router_frr.established_count(NODE_ADDR),
            sessions + 1,
            "{case}: the route came over the restarted bgpd's session\n{}",
            lab.report()
        );
        assert!(
            lab.log().matches("telling bgpd again").count() > noticed,
            "{case}: keepserver noticed the new bgpd\n{}",
            lab.report()
        );
    }
}

/// bgpd dead when the VIP arrives: the announcement fails and is retried on the back-off
/// (2 s, then 4 s); bgpd started again (empty) between two retries is told at once, not at the
/// next retry, and the router has the VIP within 5 s of bgpd's restart.
#[test]
fn bgpd_dead_when_the_vip_arrives_is_told_as_soon_as_it_is_back() {
    let Some(mut lab) = BgpLab::start("faults_bgpddead", bgp::LabSpec::default()) else {
        return;
    };
    lab.node_frr.kill("bgpd");
    lab.add_vip();
    lab.wait(
        "the announcement fails twice (retry in 4 s)",
        2 * WITHIN,
        || lab.log().contains("bgp announcement failed failures=2"),
    );
    let restarted = Instant::now();
    lab.node_frr.restart(&lab.node, "bgpd", Some(""));
    lab.wait(
        "the router has the VIP within 5 s of bgpd's restart",
        WITHIN,
        || lab.router_has(PREFIX),
    );
    timing("bgpd-dead-when-vip-arrived", restarted.elapsed());
    let log = lab.log();
    let gap = logged_gap(&log, "telling bgpd again", "bgp configuration applied")
        .unwrap_or_else(|| panic!("keepserver told the new bgpd\n{}", lab.report()));
    timing("bgpd-dead-noticed-to-applied", gap);
    assert!(
        gap < Duration::from_secs(2),
        "told at once, not at the retry 4 s after the second failure ({gap:?})\n{}",
        lab.report()
    );
    assert!(
        !log.contains("failures=3"),
        "no third failure\n{}",
        lab.report()
    );
}

/// zebra killed with SIGKILL and started again: within 5 s of its restart the router has the
/// VIP, and keeps it while bgpd reconnects to the new zebra (FRR's client retries about 10 s
/// after losing zebra); the BGP session is not reset, and keepserver noticed the new zebra (and
/// found nothing to tell bgpd).
#[test]
fn zebra_killed_and_restarted() {
    let Some(mut lab) = announcing("faults_zebra", bgp::LabSpec::default()) else {
        return;
    };
    let sessions = lab.router_frr.established_count(NODE_ADDR);
    let noticed = lab.log().matches("telling bgpd again").count();
    let applies = lab.applies();
    let zebra_log = lab.node_frr.path("zebra-startup.log");
    let hellos = || {
        fs::read_to_string(&zebra_log)
            .unwrap_or_default()
            .matches("bids fair to announce only bgp routes")
            .count()
    };
    let before = hellos();
    lab.node_frr.kill("zebra");
    let lost = wait_for(|| !lab.router_has(PREFIX), Duration::from_secs(1));
    eprintln!("zebra down for 1 s: the router lost the VIP: {lost}");
    let restarted = Instant::now();
    lab.node_frr.restart(&lab.node, "zebra", None);
    lab.wait(
        "the router has the VIP within 5 s of zebra's restart",
        WITHIN,
        || lab.router_has(PREFIX),
    );
    timing("zebra", restarted.elapsed());
    let mut dropped = false;
    lab.wait(
        "bgpd reconnects to the new zebra",
        Duration::from_secs(15),
        || {
            dropped |= !lab.router_has(PREFIX);
            hellos() > before
        },
    );
    eprintln!(
        "bgpd reconnected to zebra {:?} after its restart",
        restarted.elapsed()
    );
    assert!(
        !dropped,
        "the router keeps the VIP while bgpd reconnects\n{}",
        lab.report()
    );
    lab.holds("and after", Duration::from_secs(1), || {
        lab.router_has(PREFIX)
    });
    assert_eq!(
        lab.router_frr.established_count(NODE_ADDR),
        sessions,
        "zebra's restart does not reset the session\n{}",
        lab.report()
    );
    assert!(
        lab.log().matches("telling bgpd again").count() > noticed,
        "keepserver noticed the new zebra\n{}",
        lab.report()
    );
    assert_eq!(
        lab.applies(),
        applies,
        "bgpd lacked nothing\n{}",
        lab.report()
    );
}

// ---------------------------------------------------------------------------------------------
// Full disks

/// haproxy.cfg on a full file system: an UPDATE with a new node set is FAIL naming the write
/// and "No space left on device", the old haproxy.cfg is intact and nothing else is left on the
/// disk, HAProxy still serves the old node set; a SUSPEND, which cannot record itself, FAILs
/// without stopping HAProxy. Once there is space the same UPDATE passes.
#[test]
fn a_full_disk_fails_the_update_and_keeps_the_old_haproxy_cfg() {
    let mut disk = None;
    let Some(mut lab) = Lab::start_with("faults_fullcfg", LabSpec::default(), |_, spec| {
        let mounted = Tmpfs::mount("256k");
        spec.haproxy_config = Some(mounted.path("haproxy.cfg"));
        disk = Some(mounted);
    }) else {
        return;
    };
    // A borrow: the guard itself stays declared before the lab, so it unmounts after the lab
    // has stopped everything that used the disk.
    let disk = disk.as_ref().expect("mounted");
    let a = lab.backend("A");
    let b = lab.backend("B");
    let c = lab.backend("C");
    let front = lab.port();
    lab.pass(&update_http(front, &[a, b]));
    let cfg = lab.haproxy_cfg_bytes().expect("haproxy.cfg after UPDATE");

    disk.fill();
    let update = update_http(front, &[c]);
    let error = lab.fail(&update);
    let tmp = format!("{}.tmp", lab.haproxy_cfg().display());
    assert!(
        error.contains(&format!("write {tmp}")) && error.contains("No space left on device"),
        "hpcs_error should name the write of {tmp} and the full disk: {error}"
    );
    let error = lab.fail(&action("SUSPEND"));
    assert!(
        error.contains(".suspended") && error.contains("No space left on device"),
        "{error}"
    );
    assert_eq!(
        lab.haproxy_cfg_bytes().as_deref(),
        Some(&cfg[..]),
        "the old haproxy.cfg is intact\n{}",
        lab.report()
    );
    assert_eq!(
        disk.files(),
        ["filler", "haproxy.cfg"],
        "nothing half-written is left"
    );
    assert_eq!(lab.backends_seen(front, 4), names(&["A", "B"]));

    disk.free();
    lab.pass(&update);
    assert_eq!(lab.backends_seen(front, 4), names(&["C"]));
    assert_eq!(disk.files(), ["haproxy.cfg"]);
}

/// bgpd.conf on a full file system when the VIP arrives: the announcement fails and is logged
/// with the reason, the old bgpd.conf is intact, nothing else is left on the disk and nothing is
/// announced; once there is space the core's next retry announces. When the VIP leaves on a
/// full disk the withdrawal reaches bgpd all the same (a SLAVE must not keep drawing the VIP's
/// traffic), the file keeps the last written one until space returns and a retry writes the
/// withdrawn one; meanwhile MASTER again announces again.
#[test]
fn a_full_disk_fails_the_announcement_and_keeps_the_old_bgpd_conf() {
    const TEST: &str = "faults_fullbgp";
    if !bgp::bgp_available(TEST) {
        return;
    }
    let disk = Tmpfs::mount("256k");
    let conf = disk.path("bgpd.conf");
    let spec = bgp::LabSpec {
        extra_bgp: format!("  config: {}\n", conf.display()),
        ..bgp::LabSpec::default()
    };
    let Some(mut lab) = BgpLab::prepare(TEST, &spec) else {
        return;
    };
    lab.start_keepserver();
    lab.wait_session();
    lab.wait("the withdrawn bgpd.conf is in place", WITHIN, || {
        fs::read_to_string(&conf).is_ok_and(|t| t.contains("router bgp"))
    });
    let old = fs::read(&conf).expect("bgpd.conf");

    disk.fill();
    lab.add_vip();
    let tmp = format!("{}.tmp", conf.display());
    lab.wait("the announcement fails for the full disk", WITHIN, || {
        lab.log().lines().any(|l| {
            l.contains("bgp announcement failed")
                && l.contains(&format!("write {tmp}"))
                && l.contains("No space left on device")
        })
    });
    let freed = Instant::now();
    let status = lab.ws.status_json().expect("status");
    let retry_in = status["components"]["bgp_retry_in_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("a retry is pending: {status}"));
    assert_eq!(
        fs::read(&conf).ok(),
        Some(old),
        "the old bgpd.conf is intact"
    );
    assert_eq!(
        disk.files(),
        ["bgpd.conf", "filler"],
        "nothing half-written"
    );
    assert!(!lab.router_has(PREFIX), "{}", lab.report());
    disk.free();

    let by_retry = Duration::from_secs_f64(retry_in) + Duration::from_secs(2);
    lab.wait("announced at the next retry", by_retry, || {
        lab.router_has(PREFIX)
    });
    timing("bgp-full-disk-freed", freed.elapsed());
    lab.wait("the announcement is logged", WITHIN, || {
        lab.log().contains("bgp announcing")
    });
    assert!(
        fs::read_to_string(&conf).is_ok_and(|t| t.contains(&format!(" network {PREFIX}\n"))),
        "{}",
        lab.report()
    );
    assert_eq!(disk.files(), ["bgpd.conf", "bgpd.conf.loopback"]);
    let announcing = fs::read(&conf).expect("bgpd.conf");

    // A withdrawal reaches bgpd even on a full disk; its file follows once there is space.
    disk.fill();
    lab.del_vip();
    lab.wait(
        "SLAVE on a full disk: the router loses the VIP within 5 s",
        WITHIN,
        || !lab.router_has(PREFIX),
    );
    lab.wait("the withdrawal's unwritten file is logged", WITHIN, || {
        lab.log().lines().any(|l| {
            l.contains("bgp withdrawal told to bgpd although its file could not be written")
                && l.contains("No space left on device")
        })
    });
    assert_eq!(fs::read(&conf).ok().as_ref(), Some(&announcing));
    assert_eq!(disk.files(), ["bgpd.conf", "bgpd.conf.loopback", "filler"]);
    // bgpd no longer runs what the file says: MASTER again (disk still full) announces anew.
    lab.add_vip();
    lab.wait(
        "MASTER again on the full disk: announced within 5 s",
        WITHIN,
        || lab.router_has(PREFIX),
    );
    lab.del_vip();
    lab.wait("SLAVE again: withdrawn within 5 s", WITHIN, || {
        !lab.router_has(PREFIX)
    });
    lab.wait("the withdrawal is retried", WITHIN, || {
        lab.ws
            .status_json()
            .is_ok_and(|s| s["role"] == "SLAVE" && s["components"]["bgp_retry_in_s"].is_number())
    });
    let status = lab.ws.status_json().expect("status");
    let retry_in = status["components"]["bgp_retry_in_s"]
        .as_f64()
        .unwrap_or(0.0);
    disk.free();
    let by_retry = Duration::from_secs_f64(retry_in) + Duration::from_secs(2);
    lab.wait(
        "the withdrawn file is written at the next retry",
        by_retry,
        || {
            fs::read_to_string(&conf)
                .is_ok_and(|t| t.contains("router bgp") && !t.contains(" network "))
        },
    );
    lab.wait("and the prefix leaves the loopback", WITHIN, || {
        !lab.on_loopback(PREFIX)
    });
    assert_eq!(disk.files(), ["bgpd.conf"]);
}
