//! End-to-end tests of the BGP announcer with the real thing: keepserver in a node namespace
//! drives that namespace's FRR bgpd, which peers over a veth pair with a router namespace's FRR
//! bgpd; what the router received is read with its `vtysh`. See tests/bgp/ for the harness.

mod bgp;
mod common;
mod frr;

use std::fs;
use std::time::Duration;

use nix::sys::signal::Signal;

use bgp::*;
use common::*;

/// The index of the last line of `log` containing `needle`.
fn last_line(log: &str, needle: &str) -> Option<usize> {
    log.lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| l.contains(needle))
}

#[test]
fn check_prints_the_bgp_plan() {
    let ws = Workspace::with_config_text(
        |ws| {
            format!(
                "{}bgp:\n  enabled: true\n  local-as: 65001\n  router-id: 198.51.100.1\n  \
                 neighbors: [{{address: 198.51.100.2, remote-as: 65000}}]\n  \
                 announce: [192.0.2.10/32, 203.0.113.0/24]\n  require-running: true\n",
                ConfigSpec::new(VIP).with_is_running().render(ws)
            )
        },
        false,
        "server.pid",
    );
    let out = ws.cli(&["check"]);
    assert!(out.ok(), "{out}");
    let want = format!(
        "BGP announcer: while MASTER and the last is-running check passed, announce \
         192.0.2.10/32, 203.0.113.0/24 (on lo) from AS 65001 router-id 198.51.100.1 to \
         198.51.100.2 (AS 65000); bgpd.conf {} applied via vtysh",
        ws.path("bgpd.conf").display()
    );
    assert!(out.stdout.contains(&want), "{out}");

    ws.write(
        "config.yaml",
        &format!(
            "{}bgp:\n  enabled: true\n  local-as: 65001\n  router-id: 198.51.100.1\n  \
             neighbors: [{{address: 198.51.100.2, remote-as: 65000}}]\n  \
             announce: [192.0.2.10/24]\n",
            ConfigSpec::new(VIP).render(ws.dir())
        ),
    );
    let out = ws.cli(&["check"]);
    assert_eq!(out.code, Some(1), "{out}");
    let line = line_of(&ws.read("config.yaml"), "announce:");
    assert!(
        out.stderr.contains(&format!(":{line}:"))
            && out.stderr.contains("key `bgp.announce`")
            && out.stderr.contains("the prefix is 192.0.2.0/24"),
        "{out}"
    );
}

#[test]
fn announces_while_master_withdraws_on_slave_and_on_exit() {
    let spec = LabSpec {
        is_running: true,
        ..LabSpec::default()
    };
    let Some(mut lab) = BgpLab::start("bgp_announce", spec) else {
        return;
    };
    let conf = lab.bgpd_conf();
    lab.wait("the withdrawn configuration is in place", WITHIN, || {
        fs::read_to_string(&conf).is_ok_and(|t| t.contains("router bgp 65001"))
    });
    assert!(
        !lab.router_has(PREFIX),
        "SLAVE announces nothing\n{}",
        lab.report()
    );
    assert!(!lab.on_loopback(PREFIX));

    for round in 1..=2 {
        lab.add_vip();
        lab.wait(
            &format!("round {round}: the router receives {PREFIX}"),
            WITHIN,
            || lab.router_has(PREFIX),
        );
        assert!(
            lab.on_loopback(PREFIX),
            "the prefix is on lo\n{}",
            lab.report()
        );
        // bgpd has it; keepserver then puts the file in place and logs.
        lab.wait("the announcement is complete", WITHIN, || {
            lab.log().matches("bgp announcing").count() == round
        });
        let text = fs::read_to_string(&conf).expect("bgpd.conf");
        assert!(text.contains(&format!(" network {PREFIX}\n")), "{text}");

        // is-running confirms the start: the rendering is the same, so nothing is reapplied.
        let applies = lab.applies();
        let modified = fs::metadata(&conf)
            .and_then(|m| m.modified())
            .expect("mtime");
        lab.wait("is-running confirms the start", WITHIN, || {
            lab.ws.runs_of("is-running").len() >= round
        });
        lab.holds(
            "nothing is rewritten or reapplied",
            Duration::from_secs(1),
            || {
                lab.applies() == applies
                    && fs::metadata(&conf).and_then(|m| m.modified()).ok() == Some(modified)
            },
        );

        lab.del_vip();
        lab.wait(
            &format!("round {round}: the router loses {PREFIX}"),
            WITHIN,
            || !lab.router_has(PREFIX),
        );
        lab.wait("the prefix leaves lo", WITHIN, || !lab.on_loopback(PREFIX));
        let text = fs::read_to_string(&conf).expect("bgpd.conf");
        assert!(!text.contains(" network "), "{text}");
    }
    let sessions = lab.router_frr.established_count(NODE_ADDR);
    assert_eq!(sessions, 1, "no session was reset\n{}", lab.report());

    lab.add_vip();
    lab.wait("announced again", WITHIN, || lab.router_has(PREFIX));
    lab.daemon().signal(Signal::SIGTERM);
    lab.wait("the router loses the prefix after SIGTERM", WITHIN, || {
        !lab.router_has(PREFIX)
    });
    let status = lab.daemon().wait_exit(DEADLINE);
    assert!(
        status.is_some_and(|s| s.success()),
        "keepserver exits 0 on SIGTERM ({status:?})\n{}",
        lab.report()
    );
    assert!(
        !lab.on_loopback(PREFIX),
        "removed on exit\n{}",
        lab.report()
    );
    let log = lab.log();
    let withdrawn = last_line(&log, "bgp configuration applied");
    let removed = last_line(&log, "bgp prefix removed from loopback");
    assert!(
        withdrawn.is_some() && removed.is_some() && withdrawn < removed,
        "withdrawn before the prefix leaves lo\n{}",
        lab.report()
    );
    assert!(log.contains("bgp announcer stopped"), "{}", lab.report());
}

#[test]
fn is_running_gates_the_announcement() {
    let spec = LabSpec {
        is_running: true,
        require_running: true,
        ..LabSpec::default()
    };
    let Some(lab) = BgpLab::start("bgp_gated", spec) else {
        return;
    };
    // MASTER and started, but the service's check fails.
    lab.ws.write("exit.is-running", "1");
    lab.add_vip();
    lab.wait("the start was tried and checked", WITHIN, || {
        let runs = lab.ws.hook_lines();
        let started = runs.iter().position(|l| l.kind == "start");
        started.is_some_and(|i| runs[i..].iter().any(|l| l.kind == "is-running"))
    });
    lab.holds(
        "nothing is announced while unhealthy",
        Duration::from_secs(2),
        || !lab.router_has(PREFIX) && !lab.on_loopback(PREFIX),
    );

    fs::remove_file(lab.ws.path("exit.is-running")).expect("remove exit.is-running");
    lab.wait(
        "announced once is-running passes",
        Duration::from_secs(10),
        || lab.router_has(PREFIX),
    );
    lab.wait("the announcement is logged", WITHIN, || {
        lab.log().contains("bgp announcing")
    });
    let log = lab.log();
    let passed = log
        .lines()
        .position(|l| l.contains("hook=is-running running=true"));
    let announced = log.lines().position(|l| l.contains("bgp announcing"));
    assert!(
        passed.is_some() && passed < announced,
        "announced after a passing check\n{}",
        lab.report()
    );

    // A failing check (force-test-cycle) withdraws at once.
    lab.ws.write("exit.is-running", "1");
    lab.wait("a failing is-running withdraws", WITHIN, || {
        !lab.router_has(PREFIX)
    });
    lab.wait("and takes the prefix off lo", WITHIN, || {
        !lab.on_loopback(PREFIX)
    });
    fs::remove_file(lab.ws.path("exit.is-running")).expect("remove exit.is-running");
    lab.wait(
        "announced again when it passes",
        Duration::from_secs(10),
        || lab.router_has(PREFIX),
    );
}

#[test]
fn prefixes_it_did_not_add_stay_on_the_loopback() {
    let Some(lab) = BgpLab::start("bgp_foreign", LabSpec::default()) else {
        return;
    };
    lab.node.ip(&["addr", "add", PREFIX, "dev", "lo"]);
    lab.add_vip();
    lab.wait("announced", WITHIN, || lab.router_has(PREFIX));
    lab.del_vip();
    lab.wait("withdrawn", WITHIN, || !lab.router_has(PREFIX));
    lab.holds(
        "the operator's prefix stays",
        Duration::from_secs(1),
        || lab.on_loopback(PREFIX),
    );
    assert!(
        !lab.log().contains("bgp prefix removed from loopback"),
        "{}",
        lab.report()
    );
}

#[test]
fn a_refused_apply_keeps_the_previous_config_and_a_reload_recovers() {
    let spec = LabSpec::default();
    let Some(mut lab) = BgpLab::prepare("bgp_refused", &spec) else {
        return;
    };
    // FRR's checker accepts the file, but bgpd (user frr) cannot open this log file.
    let unwritable = lab.ws.path("bgpd.log");
    lab.ws.write(
        "config.yaml",
        &lab.ws.read("config.yaml").replace(
            &format!("log-file: {}", lab.node_frr.path("bgpd.log").display()),
            &format!("log-file: {}", unwritable.display()),
        ),
    );
    lab.start_keepserver();
    let failed = lab.ws.path("bgpd.conf-failed");
    lab.wait("the refused configuration is saved aside", WITHIN, || {
        failed.exists() && lab.log().contains("can't open logfile")
    });
    assert!(
        !lab.bgpd_conf().exists(),
        "no configuration was put in force"
    );
    assert!(
        lab.log().contains("bgp withdrawal failed"),
        "{}",
        lab.report()
    );

    lab.write_config(&spec);
    let out = lab.ws.cli(&["reload"]);
    assert!(out.ok(), "{out}");
    lab.wait("the fixed configuration is in force", WITHIN, || {
        fs::read_to_string(lab.bgpd_conf()).is_ok_and(|t| t.contains("router bgp 65001"))
    });
    lab.wait_session();
    lab.add_vip();
    lab.wait("announced", WITHIN, || lab.router_has(PREFIX));
}

#[test]
fn a_flapping_vip_ends_in_the_right_announcement() {
    let Some(lab) = BgpLab::start("bgp_flap", LabSpec::default()) else {
        return;
    };
    for (round, end_master) in [(1, false), (2, true), (3, false)] {
        for _ in 0..8 {
            lab.add_vip();
            std::thread::sleep(Duration::from_millis(60));
            lab.del_vip();
            std::thread::sleep(Duration::from_millis(60));
        }
        if end_master {
            lab.add_vip();
        }
        lab.wait_stable(
            &format!("round {round}: the router's route follows the last state and stays"),
            WITHIN,
            Duration::from_secs(2),
            || lab.router_has(PREFIX) == end_master && lab.on_loopback(PREFIX) == end_master,
        );
        if end_master {
            lab.del_vip();
            lab.wait("withdrawn", WITHIN, || !lab.router_has(PREFIX));
        }
    }
    assert_eq!(
        lab.router_frr.established_count(NODE_ADDR),
        1,
        "no session was reset\n{}",
        lab.report()
    );
}

#[test]
fn frr_reload_applies_without_resetting_the_session() {
    let spec = LabSpec {
        extra_bgp: "  apply: frr-reload\n".to_string(),
        ..LabSpec::default()
    };
    let Some(lab) = BgpLab::start("bgp_frr_reload", spec) else {
        return;
    };
    lab.add_vip();
    lab.wait("announced", WITHIN, || lab.router_has(PREFIX));
    lab.del_vip();
    lab.wait("withdrawn", WITHIN, || !lab.router_has(PREFIX));
    lab.wait("the prefix leaves lo", WITHIN, || !lab.on_loopback(PREFIX));
    assert!(lab.log().contains("method=frr-reload"), "{}", lab.report());
    assert_eq!(
        lab.router_frr.established_count(NODE_ADDR),
        1,
        "no session was reset\n{}",
        lab.report()
    );
}

#[test]
fn every_rendering_passes_frrs_own_checker() {
    if !bgp_available("bgp_dryrun") {
        return;
    }
    let keepstart = "keepstart:\n  nic: eth0\n  vip: 192.0.2.10\n  start: s\n  stop: t\n";
    let sections = [
        "  local-as: 50235\n  router-id: 10.40.252.235\n  password: pass\n  \
         redistribute-static: true\n  neighbors:\n    - {address: 10.40.252.2, remote-as: 60201}\n    \
         - {address: 10.40.252.3, remote-as: 60201}\n",
        "  local-as: 4200000001\n  router-id: 198.51.100.1\n  neighbors:\n    \
         - {address: 198.51.100.2, remote-as: 65000}\n    - {address: '2001:db8:1::2', remote-as: 65000}\n  \
         announce: [192.0.2.10/32, 203.0.113.0/24, '2001:db8::10/128', '2001:db8:100::/48']\n  \
         route-map: to-upstream\n  prefix-list: vips\n  advertisement-interval: 5\n  \
         redistribute-static: true\n",
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, section) in sections.iter().enumerate() {
        let text = format!("{keepstart}bgp:\n  enabled: true\n{section}");
        let bgp = keepserver::config::parse(&text, &dir.path().join("config.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .config
            .bgp
            .expect("enabled");
        for announced in [&bgp.announce[..], &[]] {
            let rendered = keepserver::bgp::render::render(&bgp, announced);
            let file = dir
                .path()
                .join(format!("bgpd-{i}-{}.conf", announced.len()));
            fs::write(&file, &rendered).expect("write");
            let out = run(
                std::process::Command::new("/usr/bin/vtysh")
                    .arg("--dryrun")
                    .arg("-f")
                    .arg(&file),
                Duration::from_secs(30),
            );
            assert!(out.ok(), "FRR refuses:\n{rendered}\n{out}");
        }
    }
}

#[test]
fn a_restarted_keepserver_removes_what_a_killed_one_added() {
    let Some(mut lab) = BgpLab::start("bgp_restart", LabSpec::default()) else {
        return;
    };
    let record = lab.ws.path("bgpd.conf.loopback");
    lab.add_vip();
    lab.wait("announced", WITHIN, || lab.router_has(PREFIX));
    lab.wait("the added prefix is recorded", WITHIN, || {
        lab.ws.read("bgpd.conf.loopback") == format!("lo {PREFIX}\n")
    });
    lab.daemon().signal(Signal::SIGKILL);
    assert!(lab.daemon().wait_exit(DEADLINE).is_some(), "killed");
    assert!(lab.on_loopback(PREFIX) && record.exists());

    lab.del_vip();
    lab.start_keepserver();
    lab.wait("the restarted keepserver withdraws", WITHIN, || {
        !lab.router_has(PREFIX)
    });
    lab.wait("and removes what the killed one added", WITHIN, || {
        !lab.on_loopback(PREFIX)
    });
    assert!(
        !record.exists(),
        "nothing left to remember\n{}",
        lab.report()
    );
}
