//! What the dry run renders for each kind of config and state.

use serde_json::json;

use super::*;
use crate::api::store::Kind;
use crate::haproxy::model::Name;

const KEEPSTART: &str = "keepstart:\n  vip: 192.0.2.10\n  start: /bin/true\n  stop: /bin/true\n";

const BGP: &str = "bgp:\n  enabled: true\n  local-as: 65001\n  router-id: 192.0.2.1\n  \
                   neighbors:\n    - {address: 198.51.100.2, remote-as: 65000}\n  \
                   announce: [203.0.113.10/32]\n";

fn config_of(sections: &str) -> Config {
    let text = format!("application:\n  workspace: /srv/ks\n{KEEPSTART}{sections}");
    crate::config::parse(&text, Path::new("/srv/ks/config.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

fn api_state(store: Stored) -> State {
    State {
        api_store: Some(store),
        libra_config: None,
        libra_suspended: false,
    }
}

/// A store with one TCP listener on port 8080 and its pool of one member.
fn store() -> Store {
    let mut s = Store::default();
    let mut create = |kind: Kind, body: serde_json::Value| {
        s.create(&kind, &body)
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    };
    create(
        Kind::Pool,
        json!({"id": "p1", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}),
    );
    create(
        Kind::Listener,
        json!({"id": "l1", "protocol": "TCP", "protocol_port": 8080, "default_pool_id": "p1",
               "vip_address": "192.0.2.47"}),
    );
    create(
        Kind::Member(Name::new("pool", "p1").expect("name")),
        json!({"id": "m1", "address": "198.51.100.36", "protocol_port": 80}),
    );
    s
}

#[test]
fn no_store_yet_means_nothing_to_render() {
    let config = config_of("api: {}\n");
    let planned = plan(&config, &api_state(Stored::Missing));
    assert!(planned.artefacts.is_empty(), "{planned:?}");
    let [note] = &planned.findings[..] else {
        panic!("{planned:?}")
    };
    assert_eq!(note.severity, Severity::Note);
    assert!(note.subject.contains("/srv/ks/api-store.json"), "{note}");
    assert!(note.message.contains("does not exist yet"), "{note}");
}

#[test]
fn a_store_renders_the_haproxy_cfg_the_daemon_would_write() {
    let config = config_of("api:\n  haproxy:\n    binary: /opt/haproxy/sbin/haproxy\n");
    let planned = plan(&config, &api_state(Stored::Text(store().to_json())));
    assert!(planned.findings.is_empty(), "{planned:?}");
    let [cfg] = &planned.artefacts[..] else {
        panic!("{planned:?}")
    };
    assert_eq!(cfg.name, "haproxy.cfg");
    assert_eq!(cfg.live, PathBuf::from("/srv/ks/haproxy.cfg"));
    assert!(!cfg.kept);
    assert!(cfg.text.contains("bind 192.0.2.47:8080"), "{}", cfg.text);
    assert!(
        cfg.text
            .contains("stats socket '/srv/ks/haproxy/haproxy.sock'"),
        "the runtime paths are the daemon's: {}",
        cfg.text
    );
    assert_eq!(
        cfg.checks,
        [Check::Haproxy {
            binary: PathBuf::from("/opt/haproxy/sbin/haproxy")
        }]
    );
    assert!(cfg.subject().contains("rendered from the admin API store"));
}

#[test]
fn a_store_the_daemon_would_refuse_is_an_error() {
    let config = config_of("api: {}\n");
    for text in ["{not json", "{\"format\": 9}"] {
        let planned = plan(&config, &api_state(Stored::Text(text.into())));
        assert!(planned.artefacts.is_empty(), "{planned:?}");
        assert_eq!(planned.findings.len(), 1, "{planned:?}");
        assert_eq!(planned.findings[0].severity, Severity::Error, "{planned:?}");
        assert!(
            planned.findings[0].message.contains("is not valid"),
            "{planned:?}"
        );
    }
}

#[test]
fn a_store_without_listeners_renders_nothing() {
    let config = config_of("api: {}\n");
    let planned = plan(
        &config,
        &api_state(Stored::Text(Store::default().to_json())),
    );
    assert!(planned.artefacts.is_empty(), "{planned:?}");
    assert_eq!(planned.findings[0].severity, Severity::Note);
    assert!(
        planned.findings[0].message.contains("no listener"),
        "{planned:?}"
    );
}

#[test]
fn the_libra_worker_s_kept_file_is_checked_as_it_is() {
    let config = config_of("libra:\n  enabled: true\n");
    let mut state = State {
        api_store: None,
        libra_config: Some(Stored::Missing),
        libra_suspended: false,
    };
    let none = plan(&config, &state);
    assert!(none.artefacts.is_empty(), "{none:?}");
    assert!(
        none.findings[0].message.contains("first UPDATE"),
        "{none:?}"
    );

    state.libra_config = Some(Stored::Text("global\n".into()));
    state.libra_suspended = true;
    let kept = plan(&config, &state);
    let [cfg] = &kept.artefacts[..] else {
        panic!("{kept:?}")
    };
    assert!(cfg.kept);
    assert_eq!(cfg.text, "global\n");
    assert_eq!(cfg.shown(), "/srv/ks/haproxy.cfg");
    assert!(cfg.origin.contains("suspended"), "{}", cfg.origin);

    state.libra_config = Some(Stored::Unreadable("cannot read it".into()));
    let unreadable = plan(&config, &state);
    assert_eq!(unreadable.findings[0].severity, Severity::Error);
}

#[test]
fn bgpd_conf_is_rendered_announcing_and_checked_as_the_announcer_would() {
    let config = config_of(BGP);
    let planned = plan(&config, &State::read(&config));
    let [conf] = &planned.artefacts[..] else {
        panic!("{planned:?}")
    };
    assert_eq!(conf.live, PathBuf::from("/srv/ks/bgpd.conf"));
    assert!(
        conf.text.contains(" network 203.0.113.10/32"),
        "{}",
        conf.text
    );
    assert_eq!(
        conf.checks,
        [Check::Vtysh {
            binary: PathBuf::from("vtysh")
        }]
    );

    let reload = plan(
        &config_of(&format!("{BGP}  apply: frr-reload\n")),
        &State::read(&config),
    );
    assert!(
        matches!(&reload.artefacts[0].checks[..], [Check::Vtysh { .. }, Check::FrrReload { script, .. }]
            if script == Path::new("/usr/lib/frr/frr-reload.py")),
        "{reload:?}"
    );
}

/// The store's JSON with `quagga` as its peering.
fn with_quagga(quagga: serde_json::Value) -> String {
    let mut s = Store::default();
    s.set_quagga(Some(Quagga::read(&quagga, None).expect("quagga")));
    s.to_json()
}

#[test]
fn a_stored_peering_is_the_bgp_section_in_force() {
    let config = config_of(&format!("api: {{}}\n{BGP}"));
    let peering = json!({"hostname": "node1", "inter_as_number": 64700, "vm_addr": "192.0.2.2",
                         "primary_gateway_addr": "198.51.100.9", "router_as_number": 64600,
                         "vip_addr": "203.0.113.80"});
    let planned = plan(&config, &api_state(Stored::Text(with_quagga(peering))));
    let conf = planned
        .artefacts
        .iter()
        .find(|a| a.name == "bgpd.conf")
        .unwrap_or_else(|| panic!("{planned:?}"));
    assert!(conf.text.contains("router bgp 64700"), "{}", conf.text);
    assert!(conf.origin.contains("/api/quagga"), "{}", conf.origin);

    // A peering announcing the VIP where keepstart (any NIC) watches it is not used.
    let unusable = json!({"hostname": "node1", "inter_as_number": 64700,
                          "vm_addr": "192.0.2.2", "primary_gateway_addr": "198.51.100.9",
                          "router_as_number": 64600, "vip_addr": "192.0.2.10"});
    let planned = plan(&config, &api_state(Stored::Text(with_quagga(unusable))));
    assert!(
        planned
            .findings
            .iter()
            .any(|f| f.severity == Severity::Warning && f.message.contains("bgp section")),
        "{planned:?}"
    );
    let conf = &planned.artefacts[0];
    assert!(conf.text.contains("router bgp 65001"), "{}", conf.text);
}

#[test]
fn a_relative_program_is_taken_from_the_workspace_and_a_bare_name_from_path() {
    let config = config_of(&format!(
        "api:\n  haproxy:\n    binary: sbin/haproxy\n{BGP}  vtysh: vtysh\n  apply: frr-reload\n  \
         frr-reload: tools/frr-reload.py\n"
    ));
    let planned = plan(&config, &api_state(Stored::Text(store().to_json())));
    let checks: Vec<&Check> = planned.artefacts.iter().flat_map(|a| &a.checks).collect();
    assert_eq!(
        checks,
        [
            &Check::Haproxy {
                binary: PathBuf::from("/srv/ks/sbin/haproxy")
            },
            &Check::Vtysh {
                binary: PathBuf::from("vtysh")
            },
            &Check::FrrReload {
                script: PathBuf::from("/srv/ks/tools/frr-reload.py"),
                vtysh: PathBuf::from("vtysh"),
                pathspace: None,
            },
        ]
    );
}
