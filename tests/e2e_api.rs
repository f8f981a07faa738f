//! End-to-end smoke tests of the admin API: the real keepserver with an `api` section in a
//! network namespace, the real HAProxy it configures, HTTP backends on the namespace's
//! loopback and curl as the client. Objects are created over HTTP and traffic is checked through
//! the listener; wrong or missing credentials get 401, a 1 MiB body 413, with nothing changed;
//! kill -9 and restart restores every object; `serve: master` serves only while MASTER while
//! the API answers in both roles; `reload` moves the listener and swaps the credential in place;
//! TLS with a client CA refuses a client without a certificate. (tests/e2e_api_traffic.rs has
//! the full traffic suite.)

mod api_lab;
mod bgp;
mod common;
mod frr;

use serde_json::{Value, json};

use api_lab::*;
use common::*;

/// The front port the listeners of these tests take.
const FRONT: u16 = 8080;

/// A load balancer, a round-robin pool, a listener on [`FRONT`] and members A and B.
fn create_site(lab: &ApiLab) {
    lab.backend("A", 18081);
    lab.backend("B", 18082);
    lab.expect(
        "POST",
        "/api/haproxy/loadbalancers",
        Some(&json!({"id": "lb1", "name": "site", "vip_address": "127.0.0.1"})),
        201,
    );
    lab.expect(
        "POST",
        "/api/haproxy/pools",
        Some(
            &json!({"id": "pool1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                     "loadbalancer_id": "lb1"}),
        ),
        201,
    );
    lab.expect(
        "POST",
        "/api/haproxy/listeners",
        Some(
            &json!({"id": "web", "protocol": "HTTP", "protocol_port": FRONT,
                     "default_pool_id": "pool1", "loadbalancer_id": "lb1"}),
        ),
        201,
    );
    for (id, port) in [("a", 18081), ("b", 18082)] {
        let member = lab.expect(
            "POST",
            "/api/haproxy/pools/pool1/members",
            Some(&json!({"id": id, "address": "127.0.0.1", "protocol_port": port})),
            201,
        );
        assert_eq!(member["protocol_port"], port);
    }
}

fn both() -> Vec<String> {
    vec!["A".to_string(), "B".to_string()]
}

#[test]
fn objects_over_http_serve_traffic_refusals_change_nothing_and_restart_restores() {
    let Some(mut lab) = ApiLab::start("api_smoke", LabSpec::default()) else {
        return;
    };
    create_site(&lab);
    lab.wait_until("traffic reaches both members", || {
        lab.backends_seen(FRONT, 6) == Ok(both())
    });
    let pool = lab.expect("GET", "/api/haproxy/pools/pool1", None, 200);
    assert_eq!(pool["members"].as_array().map(Vec::len), Some(2), "{pool}");
    let cfg = std::fs::read_to_string(lab.haproxy_cfg()).expect("haproxy.cfg");
    assert!(cfg.contains("balance roundrobin"), "{cfg}");

    let before = lab.everything();
    let cfg_before = std::fs::read(lab.haproxy_cfg()).expect("haproxy.cfg");
    let change = json!({"address": "127.0.0.1", "protocol_port": 18083}).to_string();
    let members = "/api/haproxy/pools/pool1/members";
    // No credential, a wrong token, the right token as HTTP basic: 401 with the challenge.
    for auth in [None, Some("Bearer wrong"), Some("Basic czNjcmV0LXRva2Vu")] {
        let answer = lab.request(API_PORT, "POST", members, Some(&change), auth, &[]);
        assert_eq!(answer.status, 401, "{auth:?}: {answer:?}");
        assert_eq!(
            answer.header("www-authenticate").as_deref(),
            Some("Bearer realm=\"keepserver\""),
            "{answer:?}"
        );
        assert_eq!(answer.body["error"], "unauthorized", "{answer:?}");
    }
    // A body over 1 MiB, bad JSON, the wrong content type, a bad id in the path.
    let token = lab.authorization();
    let huge = json!({"address": "127.0.0.1", "protocol_port": 18083, "name": "x".repeat(1 << 20)});
    let answer = lab.request(
        API_PORT,
        "POST",
        members,
        Some(&huge.to_string()),
        token.as_deref(),
        &[],
    );
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.body["error"], "payload too large", "{answer:?}");
    let answer = lab.request(
        API_PORT,
        "POST",
        members,
        Some("{\"address\":"),
        token.as_deref(),
        &[],
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not JSON")),
        "{answer:?}"
    );
    let plain = [
        "-H".to_string(),
        "Content-Type: text/plain".to_string(),
        "--data-binary".to_string(),
        change.clone(),
    ];
    let answer = lab.request(API_PORT, "POST", members, None, token.as_deref(), &plain);
    assert_eq!(answer.status, 400, "{answer:?}");
    let answer = lab.call("DELETE", "/api/haproxy/pools/pool%201", None);
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body["field"], "id", "{answer:?}");
    let answer = lab.call("GET", "/api/haproxy/nothing", None);
    assert_eq!(answer.status, 404, "{answer:?}");
    assert_eq!(lab.everything(), before, "refused requests changed nothing");
    assert_eq!(
        std::fs::read(lab.haproxy_cfg()).expect("haproxy.cfg"),
        cfg_before,
        "refused requests left haproxy.cfg alone"
    );
    assert_eq!(lab.backends_seen(FRONT, 4), Ok(both()));

    // kill -9 and a new daemon: every object is back, and served.
    lab.kill9_and_restart();
    assert_eq!(
        lab.everything(),
        before,
        "the restarted daemon has every object"
    );
    lab.wait_until("traffic after the restart", || {
        lab.backends_seen(FRONT, 6) == Ok(both())
    });
    // And it still takes changes: member b goes, only A answers.
    lab.expect("DELETE", "/api/haproxy/pools/pool1/members/b", None, 204);
    lab.wait_until("only A answers", || {
        lab.backends_seen(FRONT, 4) == Ok(vec!["A".to_string()])
    });
}

#[test]
fn serve_master_serves_only_while_master_and_the_api_answers_in_every_role() {
    let spec = LabSpec {
        serve: "master",
        ..LabSpec::default()
    };
    let Some(lab) = ApiLab::start("api_roles", spec) else {
        return;
    };
    // SLAVE: the API takes the whole site, HAProxy does not serve it.
    create_site(&lab);
    lab.wait_until("SLAVE settles", || lab.ws.settled("SLAVE", false));
    assert!(
        lab.get(FRONT, 1)[0].is_err(),
        "nothing serves on SLAVE:\n{}",
        lab.report()
    );
    assert!(
        lab.haproxy_cfg().exists(),
        "the config is written for MASTER"
    );
    // MASTER: HAProxy serves it.
    lab.ns.add_addr(&format!("{VIP}/24"));
    lab.wait_until("MASTER serves the site", || {
        lab.backends_seen(FRONT, 4) == Ok(both())
    });
    let listeners = lab.expect("GET", "/api/haproxy/listeners", None, 200);
    assert_eq!(listeners.as_array().map(Vec::len), Some(1));
    // SLAVE again: HAProxy stops, the API still answers and takes changes.
    lab.ns.del_addr(&format!("{VIP}/24"));
    lab.wait_until("SLAVE stops serving", || lab.get(FRONT, 1)[0].is_err());
    lab.expect("DELETE", "/api/haproxy/pools/pool1/members/a", None, 204);
    let pool = lab.expect("GET", "/api/haproxy/pools/pool1", None, 200);
    assert_eq!(pool["members"].as_array().map(Vec::len), Some(1), "{pool}");
    lab.ns.add_addr(&format!("{VIP}/24"));
    lab.wait_until("MASTER serves the changed site", || {
        lab.backends_seen(FRONT, 4) == Ok(vec!["B".to_string()])
    });
}

#[test]
fn reload_moves_the_listener_and_swaps_the_credential_in_place() {
    let Some(mut lab) = ApiLab::start("api_reload", LabSpec::default()) else {
        return;
    };
    let old_auth = lab.authorization();
    // A secret file others may read is refused at reload: the old door stays.
    lab.spec.auth = LabAuth::Token("new-token".into());
    lab.write_secrets(0o644);
    lab.daemon().signal(nix::sys::signal::Signal::SIGHUP);
    let refused = || {
        lab.ws
            .read("daemon.out")
            .contains("reload refused, keeping the running configuration")
            && lab.ws.read("daemon.out").contains("`api.auth.token-file`")
    };
    lab.wait_until("the bad secret file is refused", refused);
    let answer = lab.request(
        API_PORT,
        "GET",
        "/api/haproxy/pools",
        None,
        old_auth.as_deref(),
        &[],
    );
    assert_eq!(answer.status, 200, "the old token still works: {answer:?}");

    // A good file and a port that is taken: the new token is in force, on the old port.
    lab.write_secrets(0o600);
    let taken = API_PORT + 10;
    let holder = format!(
        "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', {taken}))\n\
         s.listen()\nopen('{}', 'w').close()\ntime.sleep(300)\n",
        lab.ws.path("taken").display()
    );
    lab.spawn_helper(&["python3", "-c", &holder], "holder.log");
    lab.wait_until("the port is taken", || lab.ws.path("taken").exists());
    lab.write_config(taken);
    lab.daemon().signal(nix::sys::signal::Signal::SIGHUP);
    lab.wait_until("the taken port is refused", || {
        lab.ws.read("daemon.out").contains(&format!(
            "cannot listen for the admin API on 127.0.0.1:{taken}"
        ))
    });
    let new_auth = lab.authorization();
    let answer = lab.request(
        API_PORT,
        "GET",
        "/api/haproxy/pools",
        None,
        new_auth.as_deref(),
        &[],
    );
    assert_eq!(
        answer.status, 200,
        "the old port, the new token: {answer:?}"
    );

    // A free port: the API moves.
    lab.write_config(API_PORT + 1);
    lab.daemon().signal(nix::sys::signal::Signal::SIGHUP);
    lab.wait_until("the API answers on the new port", || {
        lab.request(
            API_PORT + 1,
            "GET",
            "/api/haproxy/pools",
            None,
            new_auth.as_deref(),
            &[],
        )
        .status
            == 200
    });
    let old = lab.request(
        API_PORT + 1,
        "GET",
        "/api/haproxy/pools",
        None,
        old_auth.as_deref(),
        &[],
    );
    assert_eq!(old.status, 401, "the old token is refused: {old:?}");
    let gone = lab.request(
        API_PORT,
        "GET",
        "/api/haproxy/pools",
        None,
        new_auth.as_deref(),
        &[],
    );
    assert_eq!(gone.status, 0, "nothing listens on the old port: {gone:?}");

    // A config that hands HAProxy to the Libra worker instead is refused as a whole.
    let text = lab.ws.read("config.yaml");
    let keepstart_only = text.split("api:\n").next().unwrap_or_default();
    lab.ws.write(
        "config.yaml",
        &format!("{keepstart_only}libra:\n  enabled: true\n  servers: ['127.0.0.1:4730']\n"),
    );
    lab.daemon().signal(nix::sys::signal::Signal::SIGHUP);
    lab.wait_until("the hand-over to Libra is refused", || {
        lab.ws.read("daemon.out").contains(
            "reload refused, keeping the running configuration: it enables the Libra worker",
        )
    });
    let still = lab.request(
        API_PORT + 1,
        "GET",
        "/api/haproxy/pools",
        None,
        new_auth.as_deref(),
        &[],
    );
    assert_eq!(still.status, 200, "{still:?}");
}

#[test]
fn a_secret_file_others_can_read_stops_the_start_and_check_refuses_it() {
    let Some(mut lab) = ApiLab::start("api_mode", LabSpec::default()) else {
        return;
    };
    let plan = lab.ws.cli(&["check"]);
    assert!(plan.ok(), "{plan}");
    assert!(
        plan.stdout.contains(&format!(
            "Admin API: HTTP on 127.0.0.1:{API_PORT} (bearer token in {})",
            lab.ws.path("secret").display()
        )),
        "{plan}"
    );
    lab.daemon().signal(nix::sys::signal::Signal::SIGTERM);
    let status = lab.daemon().wait_exit(DEADLINE);
    assert!(status.is_some(), "{}", lab.report());
    lab.write_secrets(0o640);
    let mut d = Daemon::launch(&lab.ns, &lab.ws);
    let status = d.wait_exit(DEADLINE).expect("the daemon refuses to start");
    assert!(!status.success(), "{}", lab.report());
    let out = lab.ws.read("daemon.out");
    assert!(out.contains("chmod 600"), "{out}");
    let check = lab.ws.cli(&["check"]);
    assert_eq!(check.code, Some(1), "{check}");
    assert!(
        check.text().contains("key `api.auth.token-file`") && check.text().contains("mode 0640"),
        "{check}"
    );
}

#[test]
fn tls_with_a_client_ca_needs_a_client_certificate() {
    let spec = LabSpec {
        tls: Some(true),
        auth: LabAuth::Basic("admin".into(), "pa55word".into()),
        ..LabSpec::default()
    };
    let Some(lab) = ApiLab::start("api_tls", spec) else {
        return;
    };
    let auth = lab.authorization();
    let with_cert = lab.call("GET", "/api/haproxy/pools", None);
    assert_eq!(with_cert.status, 200, "{with_cert:?}");
    assert_eq!(with_cert.body, Value::Array(vec![]));
    let without = lab.request(
        API_PORT,
        "GET",
        "/api/haproxy/pools",
        None,
        auth.as_deref(),
        &lab.tls_args(false),
    );
    assert_eq!(
        without.status, 0,
        "no client certificate, no answer: {without:?}"
    );
    let plain = lab.ns.exec(&[
        "curl",
        "-sS",
        "--max-time",
        "5",
        "http://127.0.0.1:9180/api/haproxy/pools",
    ]);
    assert!(
        !plain.stdout.contains("["),
        "plain HTTP is not served: {plain}"
    );
    let wrong = lab.request(
        API_PORT,
        "GET",
        "/api/haproxy/pools",
        None,
        Some("Basic YWRtaW46d3Jvbmc="),
        &lab.tls_args(true),
    );
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(
        wrong.header("www-authenticate").as_deref(),
        Some("Basic realm=\"keepserver\"")
    );
}

/// A request to `/api/quagga` of the daemon in `ns` (no auth): status and body.
fn quagga(ns: &Netns, method: &str, body: Option<&Value>) -> (u16, Value) {
    let mut args = vec![
        "curl".to_string(),
        "-sS".into(),
        "-X".into(),
        method.into(),
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    if let Some(body) = body {
        args.extend([
            "-H".into(),
            "Content-Type: application/json".into(),
            "-d".into(),
            body.to_string(),
        ]);
    }
    args.push("http://127.0.0.1:9180/api/quagga".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ns.exec(&refs);
    let (body, status) = out.stdout.rsplit_once('\n').unwrap_or(("", ""));
    (
        status.trim().parse::<u16>().unwrap_or(0),
        serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
    )
}

/// `/api/quagga` sets the BGP peering at run time: the router gets the API's VIP; the stored
/// peering is in force again after kill -9 and restart; DELETE gives the announcer back to
/// config.yaml's `bgp` section.
#[test]
fn quagga_sets_the_announced_peering_at_run_time_and_after_a_restart() {
    let Some(mut lab) = bgp::BgpLab::prepare("api_quagga", &bgp::LabSpec::default()) else {
        return;
    };
    let mut text = lab.ws.read("config.yaml");
    text.push_str("api:\n  listen: 127.0.0.1:9180\n  serve: always\n  peer-name: node1\n");
    lab.ws.write("config.yaml", &text);
    lab.start_keepserver();
    lab.wait_session();
    lab.add_vip();
    lab.wait("config.yaml's VIP is announced", DEADLINE, || {
        lab.router_has(bgp::PREFIX)
    });
    let peering = json!({
        "hostname": "node",
        "inter_as_number": bgp::NODE_AS,
        "vm_addr": bgp::NODE_ADDR,
        "primary_gateway_addr": bgp::ROUTER_ADDR,
        "router_as_number": bgp::ROUTER_AS,
        "vip_addr": "192.0.2.20",
    });
    let (status, body) = quagga(&lab.node, "POST", Some(&peering));
    assert_eq!(status, 200, "{body}\n{}", lab.report());
    assert_eq!(body["vip_addr"], "192.0.2.20");
    lab.wait("the API's VIP replaces config.yaml's", DEADLINE, || {
        lab.router_has("192.0.2.20/32") && !lab.router_has(bgp::PREFIX)
    });
    assert_eq!(quagga(&lab.node, "GET", None), (200, body.clone()));

    let killed = lab.daemon();
    killed.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(
        wait_for(|| !killed.alive(), DEADLINE),
        "kill -9 ends the daemon"
    );
    lab.start_keepserver();
    lab.wait(
        "the restarted daemon says the stored peering is in force",
        DEADLINE,
        || {
            lab.log().contains(
                "the stored /api/quagga peering is in force local_as=65001 vip=192.0.2.20",
            )
        },
    );
    lab.wait(
        "the API's VIP is announced after the restart",
        DEADLINE,
        || lab.router_has("192.0.2.20/32") && !lab.router_has(bgp::PREFIX),
    );

    let (status, _) = quagga(&lab.node, "DELETE", None);
    assert_eq!(status, 204, "{}", lab.report());
    lab.wait("config.yaml's VIP is announced again", DEADLINE, || {
        lab.router_has(bgp::PREFIX) && !lab.router_has("192.0.2.20/32")
    });
    assert_eq!(quagga(&lab.node, "GET", None).0, 404);
}

/// Concurrent writes are carried out one at a time: a burst of 20 member creations all land,
/// and the pool, haproxy.cfg and the store file agree on them.
#[test]
fn a_burst_of_concurrent_writes_all_land() {
    let Some(lab) = ApiLab::start("api_burst", LabSpec::default()) else {
        return;
    };
    create_site(&lab);
    let auth = lab.authorization().expect("a token");
    let mut script = String::from("set -e\n");
    for i in 0..20 {
        script.push_str(&format!(
            "curl -sS -o /dev/null -w '%{{http_code}}\\n' -X POST -H 'Authorization: {auth}' \
             -H 'Content-Type: application/json' \
             -d '{{\"id\": \"m{i}\", \"address\": \"127.0.0.1\", \"protocol_port\": {}}}' \
             http://127.0.0.1:{API_PORT}/api/haproxy/pools/pool1/members > {}/burst-{i} &\n",
            20000 + i,
            lab.ws.dir().display()
        ));
    }
    script.push_str("wait\n");
    let out = lab.ns.exec(&["sh", "-c", &script]);
    assert!(out.ok(), "{out}");
    for i in 0..20 {
        assert_eq!(
            lab.ws.read(&format!("burst-{i}")).trim(),
            "201",
            "member m{i}"
        );
    }
    let pool = lab.expect("GET", "/api/haproxy/pools/pool1", None, 200);
    let ids: Vec<&str> = pool["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 22, "{pool}");
    let cfg = std::fs::read_to_string(lab.haproxy_cfg()).expect("haproxy.cfg");
    let store = lab.ws.read("api-store.json");
    for i in 0..20 {
        assert!(cfg.contains(&format!("127.0.0.1:{}", 20000 + i)), "{cfg}");
        assert!(store.contains(&format!("\"m{i}\"")), "{store}");
    }
}
