//! Config loading tests: keepstart's own example, defaults, and every kind of error.

use super::*;

const KEEPSTART_README: &str = r#"application:
    daemon: true
    workspace: /opt/ssh-proxy-server
    pidfile: ssh-proxy-server.pid

keepstart:
    nic: lo
    vip: 127.0.0.1
    start: /opt/ssh-proxy-server/start.sh
    stop: /opt/ssh-proxy-server/stop.sh
    is-running: /opt/ssh-proxy-server/is-running.sh
    sleep: 2
    running-report-cycle: 3600
    force-test-cycle: 60

logging:
    version: 1
    disable_existing_loggers: false
    formatters:
        simple:
            format: "%(asctime)-15s\t%(levelname)s\t%(message)s"
    handlers:
        console:
            class: logging.StreamHandler
            level: DEBUG
            formatter: simple
    loggers:
        keepstart:
            level: INFO
            handlers:
                - console
            propagate: no
    root:
        level: INFO
        handlers:
            - console
"#;

fn file() -> PathBuf {
    PathBuf::from("/etc/keepserver/config.yaml")
}

fn problems(text: &str) -> Vec<KeyProblem> {
    match parse(text, &file()) {
        Err(ConfigError::Invalid { problems }) => problems,
        other => panic!("expected invalid config, got {other:?}"),
    }
}

#[test]
fn keepstart_readme_example_loads_unchanged() {
    let loaded = parse(KEEPSTART_README, &file()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert!(c.application.daemon);
    assert_eq!(
        c.application.workspace,
        PathBuf::from("/opt/ssh-proxy-server")
    );
    assert_eq!(
        c.application.pidfile,
        PathBuf::from("/opt/ssh-proxy-server/ssh-proxy-server.pid")
    );
    assert_eq!(
        c.application.control_socket,
        PathBuf::from("/opt/ssh-proxy-server/ssh-proxy-server.sock")
    );
    assert_eq!(c.keepstart.nic.as_deref(), Some("lo"));
    assert_eq!(c.keepstart.vip.to_string(), "127.0.0.1");
    assert_eq!(
        c.keepstart.is_running.as_deref(),
        Some("/opt/ssh-proxy-server/is-running.sh")
    );
    assert_eq!(c.keepstart.cycle, Duration::from_secs(2));
    assert_eq!(c.keepstart.report_cycle, 3600);
    assert_eq!(c.keepstart.force_test_cycle, 60);
    let logging = c.logging.unwrap();
    assert_eq!(logging["version"], 1);
    assert_eq!(logging["loggers"]["keepstart"]["propagate"], false);
}

#[test]
fn defaults_are_keepstarts() {
    let text = "keepstart:\n  vip: 192.0.2.10/24\n  start: s\n  stop: t\n";
    let c = parse(text, &file()).unwrap().config;
    assert!(!c.application.daemon);
    assert_eq!(c.application.workspace, PathBuf::from("/etc/keepserver"));
    assert_eq!(
        c.application.pidfile,
        PathBuf::from("/etc/keepserver/server.pid")
    );
    assert_eq!(c.keepstart.nic, None);
    assert_eq!(c.keepstart.is_running, None);
    assert_eq!(c.keepstart.cycle, Duration::from_secs(2));
    assert_eq!(c.keepstart.report_cycle, 3600);
    assert_eq!(c.keepstart.force_test_cycle, 60);
    assert_eq!(c.keepstart.hook_timeout, Duration::from_secs(30));
    assert!(!c.keepstart.stop_on_exit);
    assert_eq!(c.keepstart.failure_backoff_max, Duration::from_secs(300));
    assert!(c.logging.is_none());
}

#[test]
fn bad_sleep_names_key_and_line() {
    let text = KEEPSTART_README.replace("sleep: 2", "sleep: soon");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "keepstart.sleep");
    assert_eq!(p[0].position.unwrap().line, 12);
    let message = p[0].to_string();
    assert!(message.contains("sleep"), "{message}");
    assert!(
        message.starts_with("/etc/keepserver/config.yaml:12:"),
        "{message}"
    );
    assert!(!message.contains("line"), "the position once: {message}");
    assert!(message.contains("seconds"), "{message}");
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = "application:\n  daemon: perhaps\nkeepstart:\n  vip: 192.0.2.999\n  start: s\n  sleep: -1\n  force-test-cycle: 0\n";
    let keys: Vec<String> = problems(text).into_iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        [
            "application.daemon",
            "keepstart.stop",
            "keepstart.vip",
            "keepstart.sleep",
            "keepstart.force-test-cycle"
        ]
    );
}

#[test]
fn missing_section_reports_required_keys() {
    let keys: Vec<String> = problems("application:\n  daemon: false\n")
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, ["keepstart.vip", "keepstart.start", "keepstart.stop"]);
}

#[test]
fn unknown_keys_warn_with_their_line() {
    let text = "keepstart:\n  vip: ::1\n  start: s\n  stop: t\n  slepe: 3\nextra: 1\n";
    let loaded = parse(text, &file()).unwrap();
    let w: Vec<(String, Option<u64>)> = loaded
        .warnings
        .iter()
        .map(|p| (p.key.clone(), p.position.map(|p| p.line)))
        .collect();
    assert_eq!(
        w,
        [
            ("extra".to_string(), None),
            ("keepstart.slepe".to_string(), Some(5))
        ]
    );
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let err = parse("keepstart:\n  nic: lo\n   vip: [\n", &file()).unwrap_err();
    let message = err.to_string();
    assert_eq!(
        message,
        "/etc/keepserver/config.yaml:3:7: not a valid keepserver config: \
         mapping values are not allowed in this context"
    );
    let err = parse("keepstart:\n  nic: lo\n  nic: eth0\n", &file()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("/etc/keepserver/config.yaml:3:3: "),
        "{message}"
    );
    assert!(message.contains("`nic`"), "{message}");
    assert!(!message.contains("line"), "the position once: {message}");
}

#[test]
fn relative_workspace_is_relative_to_the_config_file() {
    let text = "application:\n  workspace: run\n  pidfile: k.pid\n  control-socket: ctl\nkeepstart:\n  vip: 127.0.0.1\n  start: s\n  stop: t\n";
    let app = parse(text, &file()).unwrap().config.application;
    assert_eq!(app.workspace, PathBuf::from("/etc/keepserver/run"));
    assert_eq!(app.pidfile, PathBuf::from("/etc/keepserver/run/k.pid"));
    assert_eq!(app.control_socket, PathBuf::from("/etc/keepserver/run/ctl"));
    assert_eq!(
        app.daemon_log,
        PathBuf::from("/etc/keepserver/run/keepserver.log")
    );
}

#[test]
fn libra_defaults_follow_the_workspace_and_hostname() {
    let text =
        "application:\n  workspace: /srv/ks\nkeepstart:\n  vip: 127.0.0.1\n  start: s\n  stop: t\n";
    let libra = parse(text, &file()).unwrap().config.libra;
    assert!(!libra.enabled);
    assert_eq!(
        libra.servers,
        [Endpoint {
            host: "127.0.0.1".into(),
            port: 4730
        }]
    );
    assert!(libra.queue.starts_with("lbaas-"), "{}", libra.queue);
    assert_eq!(libra.haproxy.config, PathBuf::from("/srv/ks/haproxy.cfg"));
    assert_eq!(libra.haproxy.runtime_dir, PathBuf::from("/srv/ks/haproxy"));
    assert_eq!(libra.haproxy.bind.to_string(), "0.0.0.0");
    assert!(!libra.haproxy.follow_role);
    assert!(libra.diagnostics_targets.is_empty());
    assert_eq!(libra.archive_log, None);
}

#[test]
fn libra_section_reads_nested_keys_with_their_lines() {
    let text = "keepstart:\n  vip: 127.0.0.1\n  start: s\n  stop: t\nlibra:\n  enabled: yes\n  servers: [\"192.0.2.1:4730\", \"[::1]\"]\n  queue: lbaas-test\n  haproxy:\n    config: /etc/haproxy/lb.cfg\n    bind: 198.51.100.1\n    follow-role: true\n  diagnostics:\n    targets: [\"203.0.113.1:80\"]\n  archive:\n    log: /var/log/haproxy.log\n";
    let libra = parse(text, &file()).unwrap().config.libra;
    assert!(libra.enabled);
    assert_eq!(libra.servers[1].to_string(), "[::1]:4730");
    assert_eq!(libra.queue, "lbaas-test");
    assert_eq!(libra.haproxy.config, PathBuf::from("/etc/haproxy/lb.cfg"));
    assert_eq!(libra.haproxy.bind.to_string(), "198.51.100.1");
    assert!(libra.haproxy.follow_role);
    assert_eq!(libra.diagnostics_targets[0].to_string(), "203.0.113.1:80");
    assert_eq!(
        libra.archive_log,
        Some(PathBuf::from("/var/log/haproxy.log"))
    );

    let bad = text
        .replace("bind: 198.51.100.1", "bind: everywhere")
        .replace("queue: lbaas-test", "queue: lbaas test");
    let p: Vec<(String, u64)> = problems(&bad)
        .into_iter()
        .map(|p| (p.key, p.position.unwrap().line))
        .collect();
    assert_eq!(
        p,
        [
            ("libra.queue".to_string(), 8),
            ("libra.haproxy.bind".to_string(), 11)
        ]
    );
    let shape = problems(&text.replace(
        "  archive:\n    log: /var/log/haproxy.log\n",
        "  archive: 3\n",
    ));
    assert_eq!(shape[0].key, "libra.archive");
}

#[test]
fn keepalived_fifo_is_optional_and_relative_to_the_workspace() {
    let base = "keepstart:\n  vip: 192.0.2.10\n  start: s\n  stop: t\n";
    assert_eq!(parse(base, &file()).unwrap().config.keepalived_fifo, None);
    let text = format!("{base}  keepalived-fifo: run/keepalived.fifo\n");
    let loaded = parse(&text, &file()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.config.keepalived_fifo,
        Some(PathBuf::from("/etc/keepserver/run/keepalived.fifo"))
    );
    let text = format!("{base}  keepalived-fifo: /run/keepalived.fifo\n");
    assert_eq!(
        parse(&text, &file()).unwrap().config.keepalived_fifo,
        Some(PathBuf::from("/run/keepalived.fifo"))
    );
    let p = problems(&format!("{base}  keepalived-fifo: [a, b]\n"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "keepstart.keepalived-fifo");
    let at = p[0].position.unwrap();
    assert_eq!((at.line, at.column), (5, 20), "{}", p[0]);
}

#[test]
fn nic_names_linux_refuses_name_key_and_line() {
    let long = "n".repeat(40);
    for (nic, why) in [
        (long.as_str(), "40 bytes long"),
        ("eth/0", "contains `/`"),
        ("'eth 0'", "whitespace"),
        ("\"eth\\0\"", "NUL"),
        ("'..'", "not allowed"),
    ] {
        let text = KEEPSTART_README.replace("nic: lo", &format!("nic: {nic}"));
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{nic}: {p:?}");
        assert_eq!(p[0].key, "keepstart.nic", "{nic}");
        assert_eq!(p[0].position.map(|p| (p.line, p.column)), Some((7, 10)));
        let message = p[0].to_string();
        assert!(message.contains(why), "{nic}: {message}");
        assert!(message.contains("config.yaml:7:10"), "{nic}: {message}");
    }
}

#[test]
fn key_positions_are_kept_for_later_checks() {
    let c = parse(KEEPSTART_README, &file()).unwrap().config;
    let at = |key| c.positions.of(key).map(|p| p.line);
    assert_eq!(at("keepstart.nic"), Some(7));
    assert_eq!(at("keepstart.start"), Some(9));
    assert_eq!(at("application.pidfile"), Some(4));
    assert_eq!(at("keepstart.hook-timeout"), None);
}

#[test]
fn hysteresis_is_off_by_default_and_read_when_given() {
    let base = "keepstart:\n  vip: 192.0.2.10\n  start: s\n  stop: t\n";
    let c = parse(base, &file()).unwrap().config;
    assert_eq!(c.keepstart.hysteresis, Hysteresis::default());
    assert!(!c.keepstart.hysteresis.is_on());
    let text = format!("{base}  is-running: r\n  rise: 2\n  fall: 200ms\n  is-running-fall: 3\n");
    let loaded = parse(&text, &file()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let h = loaded.config.keepstart.hysteresis;
    assert_eq!(
        (h.rise, h.fall, h.is_running_fall),
        (Duration::from_secs(2), Duration::from_millis(200), 3)
    );
}

#[test]
fn bad_hysteresis_keys_name_key_and_line() {
    let text = "keepstart:\n  vip: 192.0.2.10\n  start: s\n  stop: t\n  rise: soon\n  fall: -1\n  is-running-fall: 2\n";
    let p = problems(text);
    let found: Vec<(&str, u64)> = p
        .iter()
        .map(|p| (p.key.as_str(), p.position.unwrap().line))
        .collect();
    assert_eq!(
        found,
        [
            ("keepstart.rise", 5),
            ("keepstart.fall", 6),
            ("keepstart.is-running-fall", 7)
        ]
    );
    assert!(p[0].message.contains("500ms"), "{}", p[0]);
    assert!(p[2].message.contains("keepstart.is-running"), "{}", p[2]);
}
