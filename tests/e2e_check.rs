//! End-to-end tests of `keepserver check` as a dry run: the haproxy.cfg rendered from an admin
//! API store written as the daemon writes it (and the Libra worker's kept one), the bgpd.conf
//! rendered from the `bgp` section, each checked by the real HAProxy and FRR installed here;
//! every problem reported at once; exit 0 valid, 2 a config (or stored state) keepserver
//! refuses, 4 a file an external checker refused; a checker that is not installed only warns.
//! Nothing the check runs may change the workspace.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{CmdOutput, Workspace, line_of, prerequisite, tools_present};
use keepserver::api::store::{Kind, Store};
use keepserver::dryrun::validate::validate;
use keepserver::dryrun::{Artefact, Check, Severity};
use keepserver::haproxy::model::Name;
use serde_json::{Value, json};

/// `check`'s exit status when an external checker refused a file.
const EXIT_CHECK_FAILED: i32 = 5;

/// config.yaml with the admin API (its HAProxy binary `haproxy`) and `extra` sections.
fn api_config(ws: &Path, haproxy: &str, extra: &str) -> String {
    format!(
        "application:\n  workspace: '{}'\nkeepstart:\n  vip: 192.0.2.10\n  start: /bin/true\n  \
         stop: /bin/true\napi:\n  listen: 127.0.0.1:19180\n  haproxy:\n    binary: '{haproxy}'\n\
         {extra}",
        ws.display()
    )
}

const BGP: &str = "bgp:\n  enabled: true\n  local-as: 65001\n  router-id: 192.0.2.1\n  \
                   neighbors:\n    - {address: 198.51.100.2, remote-as: 65000}\n  \
                   announce: [203.0.113.10/32]\n  log-file: /tmp/keepserver-check-bgpd.log\n";

/// Whether HAProxy and FRR's vtysh are installed; a SKIP line (or, where tests must run, a
/// failure) when not.
fn tools_here(test: &str) -> bool {
    prerequisite(
        test,
        tools_present(&[("haproxy", "-v"), ("vtysh", "--help")], ""),
    )
}

/// Every file in the workspace with its content: what a check must leave as it was.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in walk(dir) {
        let content = fs::read(&entry).unwrap_or_default();
        files.insert(entry.display().to_string(), content);
    }
    files
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push(path.clone());
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `check`, asserting that it left the workspace as it was.
fn check(ws: &Workspace) -> CmdOutput {
    let before = snapshot(ws.dir());
    let out = ws.cli(&["check"]);
    assert!(!out.timed_out, "{out}");
    assert_eq!(
        snapshot(ws.dir()),
        before,
        "check changed the workspace:\n{out}"
    );
    out
}

fn create(store: &mut Store, kind: Kind, body: Value) {
    store
        .create(&kind, &body)
        .unwrap_or_else(|e| panic!("{kind:?} {body}: {e}"));
}

/// A store with an HTTP listener on 192.0.2.47:8080 and its pool of one member, as the
/// admin API would have stored them.
fn good_store() -> Store {
    let mut s = Store::default();
    create(
        &mut s,
        Kind::Pool,
        json!({"id": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
    );
    create(
        &mut s,
        Kind::Listener,
        json!({"id": "http", "protocol": "HTTP", "protocol_port": 8080,
               "default_pool_id": "web", "vip_address": "192.0.2.47"}),
    );
    create(
        &mut s,
        Kind::Member(Name::new("pool", "web").expect("name")),
        json!({"id": "m1", "address": "198.51.100.36", "protocol_port": 80}),
    );
    s
}

/// The good store plus a TERMINATED_HTTPS listener whose certificate `site` is to be found in
/// the API's certificate directory.
fn tls_store() -> Store {
    let mut s = good_store();
    create(
        &mut s,
        Kind::Listener,
        json!({"id": "https", "protocol": "TERMINATED_HTTPS", "protocol_port": 8443,
               "tls_certificate_id": "site", "default_pool_id": "web",
               "vip_address": "192.0.2.47"}),
    );
    s
}

#[test]
fn a_good_store_and_bgp_section_are_rendered_and_pass_the_real_checkers() {
    if !tools_here("check_good") {
        return;
    }
    let ws = Workspace::with_config_text(
        |dir| api_config(dir, "haproxy", &format!("{BGP}  apply: frr-reload\n")),
        false,
        "server.pid",
    );
    ws.write("api-store.json", &good_store().to_json());
    let out = check(&ws);
    assert_eq!(out.code, Some(0), "{out}");
    let haproxy = ws.path("haproxy.cfg").display().to_string();
    let bgpd = ws.path("bgpd.conf").display().to_string();
    for want in [
        format!("dry run: {haproxy} (rendered from the admin API store"),
        "valid (`haproxy -c`)".to_string(),
        format!(
            "dry run: {bgpd} (rendered from the bgp section, announcing): valid (`vtysh --dryrun`)"
        ),
        format!(
            "{bgpd} (rendered from the bgp section, announcing): valid (`frr-reload.py --test`)"
        ),
    ] {
        assert!(out.stdout.contains(&want), "expected {want:?} in:\n{out}");
    }
    assert!(!out.text().contains("warning:"), "{out}");
}

#[test]
fn no_store_yet_is_nothing_to_render() {
    if !tools_here("check_no_store") {
        return;
    }
    let ws = Workspace::with_config_text(|dir| api_config(dir, "haproxy", ""), false, "server.pid");
    let out = check(&ws);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("does not exist yet: no haproxy.cfg to render"),
        "{out}"
    );
}

#[test]
fn a_store_whose_haproxy_cfg_haproxy_refuses_exits_4_with_haproxy_s_message() {
    if !tools_here("check_bad_store") {
        return;
    }
    let ws = Workspace::with_config_text(|dir| api_config(dir, "haproxy", ""), false, "server.pid");
    ws.write("api-store.json", &tls_store().to_json());
    // The certificate was replaced after the listener was stored: not a PEM any more.
    fs::create_dir(ws.path("certificates")).expect("mkdir");
    ws.write("certificates/site.pem", "not a certificate\n");
    let out = check(&ws);
    assert_eq!(out.code, Some(EXIT_CHECK_FAILED), "{out}");
    let haproxy = ws.path("haproxy.cfg").display().to_string();
    let cert = ws.path("certificates/site.pem").display().to_string();
    for want in [
        format!("{haproxy} (rendered from the admin API store"),
        "`haproxy -c` refused it".to_string(),
        format!("parsing [{haproxy} (rendered):"),
        format!("unable to load certificate from file '{cert}'"),
    ] {
        assert!(out.stderr.contains(&want), "expected {want:?} in:\n{out}");
    }
    // The config itself is valid: its plan is printed.
    assert!(out.stdout.contains("is valid"), "{out}");
}

#[test]
fn every_config_error_is_reported_at_once() {
    let ws = Workspace::with_config_text(
        |dir| {
            format!(
                "application:\n  workspace: '{}'\nkeepstart:\n  vip: 192.0.2.10\n  \
                 start: /bin/true\n  stop: /bin/true\n  sleep: -1\n  force-test-cycle: often\n\
                 {BGP}  advertisement-interval: 9000\n",
                dir.display()
            )
        },
        false,
        "server.pid",
    );
    let text = ws.read("config.yaml");
    let out = check(&ws);
    assert_eq!(out.code, Some(1), "{out}");
    let file = ws.config_path().display().to_string();
    for (key, prefix) in [
        ("keepstart.sleep", "sleep:"),
        ("keepstart.force-test-cycle", "force-test-cycle:"),
        ("bgp.advertisement-interval", "advertisement-interval:"),
    ] {
        let line = line_of(&text, prefix);
        let found = out
            .stderr
            .lines()
            .find(|l| l.contains(&format!("`{key}`")))
            .unwrap_or_else(|| panic!("no error about {key} in:\n{out}"));
        let want = format!("{file}:{line}:");
        assert!(found.contains(&want), "expected {want:?} in {found:?}");
    }
}

#[test]
fn config_errors_and_failed_checks_are_reported_together_and_the_config_error_wins() {
    if !tools_here("check_together") {
        return;
    }
    let ws = Workspace::with_config_text(
        |dir| {
            api_config(dir, "haproxy", "").replace(
                "stop: /bin/true",
                &format!("stop: {}/missing.sh", dir.display()),
            )
        },
        false,
        "server.pid",
    );
    ws.write("api-store.json", &tls_store().to_json());
    fs::create_dir(ws.path("certificates")).expect("mkdir");
    ws.write("certificates/site.pem", "not a certificate\n");
    let out = check(&ws);
    assert_eq!(out.code, Some(1), "{out}");
    for want in ["`keepstart.stop`", "missing.sh", "`haproxy -c` refused it"] {
        assert!(out.stderr.contains(want), "expected {want:?} in:\n{out}");
    }
}

#[test]
fn a_store_keepserver_cannot_load_is_a_config_error_naming_the_store() {
    let ws = Workspace::with_config_text(|dir| api_config(dir, "haproxy", ""), false, "server.pid");
    ws.write("api-store.json", "{\"format\": 1, \"listeners\": [");
    let out = check(&ws);
    assert_eq!(out.code, Some(1), "{out}");
    let store = ws.path("api-store.json").display().to_string();
    assert!(
        out.stderr
            .contains(&format!("the admin API store {store}: is not valid")),
        "{out}"
    );
}

#[test]
fn a_checker_that_is_not_installed_is_skipped_with_a_warning() {
    let ws = Workspace::with_config_text(
        |dir| {
            api_config(
                dir,
                "/nonexistent/sbin/haproxy",
                &format!("{BGP}  vtysh: /nonexistent/bin/vtysh\n"),
            )
        },
        false,
        "server.pid",
    );
    ws.write("api-store.json", &good_store().to_json());
    let out = check(&ws);
    assert_eq!(out.code, Some(0), "{out}");
    for want in [
        "`haproxy -c` skipped: /nonexistent/sbin/haproxy is not installed",
        "`vtysh --dryrun` skipped: /nonexistent/bin/vtysh is not installed",
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(want))
            .unwrap_or_else(|| panic!("expected {want:?} in:\n{out}"));
        assert!(line.starts_with("warning: "), "{line}");
    }
}

#[test]
fn the_libra_worker_s_kept_haproxy_cfg_is_checked_where_it_is() {
    if !tools_here("check_libra") {
        return;
    }
    let ws = Workspace::with_config_text(
        |dir| {
            format!(
                "application:\n  workspace: '{}'\nkeepstart:\n  vip: 192.0.2.10\n  \
                 start: /bin/true\n  stop: /bin/true\nlibra:\n  enabled: true\n",
                dir.display()
            )
        },
        false,
        "server.pid",
    );
    let out = check(&ws);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("first UPDATE"), "{out}");

    ws.write(
        "haproxy.cfg",
        "global\n    maxconn 100\n\ndefaults\n    bogus-keyword on\n",
    );
    let out = check(&ws);
    assert_eq!(out.code, Some(EXIT_CHECK_FAILED), "{out}");
    let file = ws.path("haproxy.cfg").display().to_string();
    for want in [
        format!("{file} (kept by the Libra worker: served again at start)"),
        format!("[{file}:5]"),
        "bogus-keyword".to_string(),
    ] {
        assert!(out.stderr.contains(&want), "expected {want:?} in:\n{out}");
    }
}

/// keepserver's own validation lets no bgpd.conf through that FRR's checker refuses (every value
/// is typed), so the real vtysh and frr-reload.py are shown refusing a hand-made file here, with
/// their line reaching the finding.
#[tokio::test]
async fn frr_s_checkers_refusing_a_bgpd_conf_are_failures_naming_the_line() {
    let frr_reload = Path::new("/usr/lib/frr/frr-reload.py");
    let installed = frr_reload
        .exists()
        .then_some(&())
        .ok_or_else(|| format!("needs {} (frr-pythontools)", frr_reload.display()));
    if !tools_here("check_frr_refuses") || !prerequisite("check_frr_refuses", installed) {
        return;
    }
    let checks = vec![
        Check::Vtysh {
            binary: "vtysh".into(),
        },
        Check::FrrReload {
            script: frr_reload.into(),
            vtysh: "/usr/bin/vtysh".into(),
            pathspace: None,
        },
    ];
    let artefact = Artefact {
        name: "bgpd.conf",
        live: "/etc/frr/bgpd.conf".into(),
        origin: "hand-made".into(),
        kept: false,
        text: "router bgp 65001\n bgp router-id 192.0.2.1\n \
               neighbor 198.51.100.2 remote-az 65000\n!\n"
            .into(),
        checks,
    };
    let findings = tokio::time::timeout(Duration::from_secs(60), validate(&[artefact]))
        .await
        .expect("the checkers finish");
    assert_eq!(findings.len(), 2, "{findings:?}");
    for f in &findings {
        assert_eq!(f.severity, Severity::Failed, "{f}");
        assert!(f.message.contains("line 3"), "{f}");
        assert!(f.message.contains("remote-az 65000"), "{f}");
    }
}
