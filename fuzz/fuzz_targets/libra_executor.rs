//! Fuzzes the pure part of the Libra executor: message -> typed model (`Site::new`) -> the
//! shared HAProxy model (`Site::balancer`) -> haproxy.cfg (`render`), for an IPv4 and an IPv6
//! bind address. The rendered file must be
//! deterministic, hold no control character but its line ends, and have exactly one `frontend`
//! and `backend` line per load balancer and one `server` line per node, naming that node: no
//! value from the message can add or split a line.

#![no_main]

use std::net::IpAddr;
use std::path::PathBuf;

use keepserver::haproxy::{RuntimePaths, render};
use keepserver::libra::message::{self, Action};
use keepserver::libra::site::{LoadBalancer, Site};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(job) = message::parse(data) else {
        return;
    };
    let Action::Update(lbs) = job.action else {
        return;
    };
    for bind in ["192.0.2.10", "2001:db8::10"] {
        let bind: IpAddr = bind.parse().expect("a literal address");
        if let Ok(site) = Site::new(bind, lbs.clone()) {
            check(&site);
        }
    }
});

fn check(site: &Site) {
    // A quote in the operator's paths exercises the quoting too.
    let paths = RuntimePaths {
        stats_socket: PathBuf::from("/run/keep'server/haproxy.sock"),
        pidfile: PathBuf::from("/run/keep'server/haproxy.pid"),
        ping_script: PathBuf::from("/run/keep'server/ping-check.sh"),
    };
    let balancer = site.balancer();
    let cfg = render(&balancer, &paths);
    assert_eq!(cfg, render(&balancer, &paths), "render is deterministic");
    assert!(cfg.ends_with('\n'));
    if let Some(c) = cfg.chars().find(|c| c.is_control() && *c != '\n') {
        panic!("control character {c:?} in\n{cfg}");
    }
    let lbs = site.load_balancers();
    let starting = |word: &str| {
        cfg.lines()
            .map(str::trim_start)
            .filter(|line| line.split(' ').next() == Some(word))
            .collect::<Vec<_>>()
    };
    assert_eq!(starting("frontend").len(), lbs.len(), "{cfg}");
    assert_eq!(starting("backend").len(), lbs.len(), "{cfg}");
    let servers = starting("server");
    let names: Vec<String> = lbs.iter().flat_map(LoadBalancer::server_names).collect();
    assert_eq!(
        servers.len(),
        names.len(),
        "one server line per node:\n{cfg}"
    );
    for ((line, name), node) in servers
        .iter()
        .zip(&names)
        .zip(lbs.iter().flat_map(|lb| &lb.nodes))
    {
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.get(1), Some(&name.as_str()), "{line}");
        assert_eq!(words.get(3), Some(&"weight"), "{line}");
        assert_eq!(
            words.get(4),
            Some(&node.weight.to_string().as_str()),
            "{line}"
        );
    }
}
