//! Message parsing tests: every action, the seed's examples, and every kind of bad input.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn parse_value(v: Value) -> Result<Job, Value> {
    parse(&serde_json::to_vec(&v).unwrap()).map_err(|reply| serde_json::from_slice(&reply).unwrap())
}

fn error_of(v: Value) -> String {
    let reply = parse_value(v).expect_err("should fail");
    assert_eq!(reply["hpcs_response"], "FAIL");
    reply["hpcs_error"].as_str().unwrap().to_string()
}

fn update(lbs: Value) -> Value {
    json!({"hpcs_action": "UPDATE", "loadbalancers": lbs})
}

#[test]
fn seed_update_example_parses() {
    let job = parse_value(update(json!([{
        "name": "a-new-loadbalancer", "protocol": "http",
        "nodes": [{"address": "10.0.0.1", "port": "80", "weight": "1"}]
    }])))
    .unwrap();
    let Action::Update(lbs) = job.action else {
        panic!("not an update")
    };
    assert_eq!(lbs.len(), 1);
    let lb = &lbs[0];
    assert_eq!(
        (lb.protocol, lb.port, lb.algorithm),
        (Protocol::Http, 80, Algorithm::RoundRobin)
    );
    assert_eq!(lb.nodes[0].address.to_string(), "10.0.0.1");
    assert_eq!((lb.nodes[0].port, lb.nodes[0].weight), (80, 1));
    assert_eq!(lb.nodes[0].condition, Condition::Enabled);
    assert!(lb.monitor.is_none());
}

#[test]
fn every_action_parses_case_insensitively() {
    for (word, want) in [
        ("suspend", Action::Suspend),
        ("Enable", Action::Enable),
        ("DELETE", Action::Delete),
        ("diagnostics", Action::Diagnostics),
        ("DISCOVER", Action::Discover),
        ("stats", Action::Stats),
        ("METRICS", Action::Metrics),
    ] {
        assert_eq!(
            parse_value(json!({"hpcs_action": word})).unwrap().action,
            want
        );
    }
}

#[test]
fn full_update_with_both_protocols_camel_case_and_monitors() {
    let job = parse_value(json!({
        "hpcs_action": "update",
        "loadBalancers": [
            {"protocol": "HTTP", "port": 8080, "algorithm": "least_connections",
             "monitor": {"type": "http", "delay": "10", "timeout": 5, "attempts": 3, "path": "/health"},
             "nodes": [
                {"id": "n-1", "address": "192.0.2.10", "port": 80, "weight": 5},
                {"address": "backend.example", "port": "81", "backup": "TRUE", "condition": "disabled"}
             ]},
            {"protocol": "tcp", "nodes": [{"address": "2001:db8::1", "port": 443}],
             "monitor": {"type": "CONNECT"}}
        ],
        "extra": {"kept": true}
    }))
    .unwrap();
    assert_eq!(job.request["extra"], json!({"kept": true}));
    let Action::Update(lbs) = job.action else {
        panic!()
    };
    let (http, tcp) = (&lbs[0], &lbs[1]);
    assert_eq!(
        (http.port, http.algorithm),
        (8080, Algorithm::LeastConnections)
    );
    let m = http.monitor.as_ref().unwrap();
    assert_eq!(
        (m.kind, m.delay_s, m.timeout_s, m.attempts),
        (MonitorKind::Http, 10, 5, 3)
    );
    assert_eq!(m.path.as_ref().unwrap().to_string(), "/health");
    assert_eq!(http.nodes[0].id.as_deref(), Some("n-1"));
    assert!(http.nodes[1].backup);
    assert_eq!(http.nodes[1].condition, Condition::Disabled);
    assert_eq!((tcp.protocol, tcp.port), (Protocol::Tcp, 443));
    assert_eq!(tcp.monitor.as_ref().unwrap().kind, MonitorKind::Connect);
}

#[test]
fn reply_echoes_the_request_with_extra_fields() {
    let job = parse_value(json!({"hpcs_action": "DISCOVER", "x": 1})).unwrap();
    let reply: Value =
        serde_json::from_slice(&pass(job.request, vec![("version", json!("0.1"))])).unwrap();
    assert_eq!(
        reply,
        json!({"hpcs_action": "DISCOVER", "x": 1, "version": "0.1", "hpcs_response": "PASS"})
    );
}

/// Found by fuzzing (fuzz/seeds/libra_message/crash-908f...): serde_json's best-effort float
/// parse read this 50-digit number as an f64 that the reply then spelt as a different one.
#[test]
fn reply_echoes_numbers_as_they_were_read() {
    let payload = br#"{"hpcs_action":"stats","extpcs_action":"stats","extrra":[1,33333333333333333333333333333333333333333333333335,null,{"k":"v"}]}"#;
    let job = parse(payload).unwrap();
    let mut echoed: Map<String, Value> =
        serde_json::from_slice(&pass(job.request.clone(), Vec::new())).unwrap();
    assert_eq!(echoed.remove("hpcs_response"), Some(json!("PASS")));
    assert_eq!(echoed, job.request);
    for number in [
        "0.1",
        "3.3333333333333327e49",
        "1e-320",
        "123456789012345678901234567890",
    ] {
        let read: Value = serde_json::from_str(number).unwrap();
        let again: Value = serde_json::from_str(&read.to_string()).unwrap();
        assert_eq!(read, again, "{number}");
    }
}

#[test]
fn archive_parses_the_seed_example() {
    let job = parse_value(json!({
        "hpcs_action": "ARCHIVE",
        "hpcs_object_store_basepath": "lbaaslogs",
        "hpcs_object_store_endpoint": "https://example.com/v1/100/",
        "hpcs_object_store_token": "MY_AUTH_TOKEN",
        "hpcs_object_store_type": "swift",
        "loadbalancers": [{"id": "15", "name": "lb #1", "protocol": "HTTP"}]
    }))
    .unwrap();
    let Action::Archive(a) = job.action else {
        panic!()
    };
    assert_eq!(a.endpoint, "https://example.com/v1/100");
    assert_eq!(a.basepath, "lbaaslogs");
    assert_eq!(
        a.loadbalancers,
        [ArchiveLb {
            id: "15".into(),
            protocol: Protocol::Http
        }]
    );
}

#[test]
fn errors_name_the_fields_as_the_request_spelled_them() {
    let http = |lb: Value, key: &str| {
        let mut request = json!({"hpcs_action": "UPDATE"});
        request[key] = json!([lb]);
        request
    };
    let nodes = json!([{"address": "10.0.0.1", "port": 80}]);
    for key in ["loadBalancers", "loadbalancers"] {
        let cases = [
            (
                json!({"nodes": nodes}),
                format!("missing field `{key}[0].protocol`"),
            ),
            (
                json!({"protocol": "HTTP", "nodes": []}),
                format!("`{key}[0].nodes` is empty"),
            ),
            (
                json!({"protocol": "HTTP", "nodes": [{"port": 80}]}),
                format!("missing field `{key}[0].nodes[0].address`"),
            ),
            (
                json!({"protocol": "HTTP", "nodes": nodes, "healthMonitor": {"type": "PING"}}),
                format!("`{key}[0].healthMonitor.type` is `PING`"),
            ),
            (
                json!({"protocol": "HTTP", "nodes": nodes, "monitor": {"type": "CONNECT",
                    "delay": 0}}),
                format!("`{key}[0].monitor.delay` is `0`; expected 1 to 3600"),
            ),
        ];
        for (lb, want) in cases {
            let error = error_of(http(lb, key));
            assert!(error.starts_with(&want), "got `{error}`, want `{want}`");
        }
        let mut empty = json!({"hpcs_action": "UPDATE"});
        empty[key] = json!([]);
        assert_eq!(error_of(empty), format!("`{key}` is empty"));
        let mut archive = json!({"hpcs_action": "ARCHIVE", "hpcs_object_store_type": "SWIFT",
            "hpcs_object_store_endpoint": "https://x", "hpcs_object_store_basepath": "b",
            "hpcs_object_store_token": "t"});
        archive[key] = json!([{"protocol": "HTTP"}]);
        assert_eq!(error_of(archive), format!("missing field `{key}[0].id`"));
    }
}

#[test]
fn bad_input_fails_with_a_precise_error() {
    let node = |n: Value| update(json!([{"protocol": "HTTP", "nodes": [n]}]));
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "missing field `hpcs_action`"),
        (json!({"hpcs_action": 3}), "`hpcs_action` must be a string"),
        (
            json!({"hpcs_action": "REBOOT"}),
            "unknown hpcs_action `REBOOT`",
        ),
        (
            json!({"hpcs_action": "UPDATE"}),
            "missing field `loadBalancers`",
        ),
        (update(json!([])), "`loadbalancers` is empty"),
        (update(json!({"protocol": "HTTP"})), "must be a list"),
        (
            update(json!([{"nodes": []}])),
            "missing field `loadbalancers[0].protocol`",
        ),
        (
            update(json!([{"protocol": "UDP", "nodes": []}])),
            "expected HTTP or TCP",
        ),
        (
            update(json!([{"protocol": "HTTP", "nodes": []}])),
            "`loadbalancers[0].nodes` is empty",
        ),
        (
            node(json!({"port": 80})),
            "missing field `loadbalancers[0].nodes[0].address`",
        ),
        (
            node(json!({"address": "10.0.0.1"})),
            "missing field `loadbalancers[0].nodes[0].port`",
        ),
        (
            node(json!({"address": "10.0.0.1", "port": 0})),
            "expected a port from 1 to 65535",
        ),
        (
            node(json!({"address": "10.0.0.1", "port": "65536"})),
            "expected a port from 1 to 65535",
        ),
        (
            node(json!({"address": "10.0.0.1", "port": "http"})),
            "expected a port from 1 to 65535",
        ),
        (
            node(json!({"address": "10.0.0.1 backup", "port": 80})),
            "nodes[0].address",
        ),
        (
            node(json!({"address": 10, "port": 80})),
            "address` must be a string",
        ),
        (
            node(json!({"address": "10.0.0.1", "port": 80, "weight": 0})),
            "expected 1 to 256",
        ),
        (
            node(json!({"address": "10.0.0.1", "port": 80, "condition": "MAYBE"})),
            "ENABLED or DISABLED",
        ),
        (
            node(json!({"address": "10.0.0.1", "port": 80, "id": "a b"})),
            "nodes[0].id",
        ),
        (
            update(json!([
                {"protocol": "HTTP", "nodes": [{"address": "10.0.0.1", "port": 80}]},
                {"protocol": "http", "port": 81, "nodes": [{"address": "10.0.0.1", "port": 80}]}
            ])),
            "one HTTP and one TCP",
        ),
        (
            update(json!([{"protocol": "TCP", "monitor": {"type": "HTTP"},
                "nodes": [{"address": "10.0.0.1", "port": 80}]}])),
            "HTTP needs an HTTP load balancer",
        ),
        (
            update(
                json!([{"protocol": "HTTP", "monitor": {"type": "HTTP", "path": "no-slash"},
                "nodes": [{"address": "10.0.0.1", "port": 80}]}]),
            ),
            "monitor.path",
        ),
        (
            json!({"hpcs_action": "ARCHIVE", "hpcs_object_store_type": "s3"}),
            "only SWIFT",
        ),
        (
            json!({"hpcs_action": "ARCHIVE", "hpcs_object_store_type": "swift",
                "hpcs_object_store_endpoint": "ftp://x", "hpcs_object_store_basepath": "b",
                "hpcs_object_store_token": "t", "loadbalancers": [{"id": "1", "protocol": "HTTP"}]}),
            "http:// or https://",
        ),
    ];
    for (input, want) in cases {
        let error = error_of(input.clone());
        assert!(
            error.contains(want),
            "{input}: got `{error}`, want `{want}`"
        );
    }
}

#[test]
fn a_newline_anywhere_refuses_the_job() {
    for input in [
        update(json!([{"protocol": "HTTP", "name": "x\nbackend evil",
            "nodes": [{"address": "10.0.0.1", "port": 80}]}])),
        update(json!([{"protocol": "HTTP",
            "nodes": [{"address": "10.0.0.1\n", "port": 80}]}])),
        json!({"hpcs_action": "DISCOVER", "note\r": 1}),
        json!({"hpcs_action": "DISCOVER", "list": ["ok", "bad\u{0}"]}),
    ] {
        assert!(error_of(input).contains("control character"));
    }
}

#[test]
fn unusable_payloads_fail_without_echo() {
    for payload in [&b"not json"[..], b"[1,2]", b"\"UPDATE\"", b""] {
        let reply: Value = serde_json::from_slice(&parse(payload).unwrap_err()).unwrap();
        assert_eq!(reply["hpcs_response"], "FAIL");
        assert!(reply["hpcs_error"].as_str().unwrap().starts_with("invalid"));
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[ -~\n]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("UPDATE"),
            Just("HTTP"),
            Just("TCP"),
            Just("80"),
            Just("10.0.0.1"),
            Just("/")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("hpcs_action".to_string()),
                    Just("loadbalancers".to_string()),
                    Just("protocol".to_string()),
                    Just("nodes".to_string()),
                    Just("address".to_string()),
                    Just("port".to_string()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_bytes_give_a_job_or_a_json_fail_reply(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(reply) = parse(&bytes) {
            let reply: Value = serde_json::from_slice(&reply).unwrap();
            prop_assert_eq!(&reply["hpcs_response"], "FAIL");
            prop_assert!(reply["hpcs_error"].is_string());
        }
    }

    #[test]
    fn any_json_gives_a_job_or_an_echoing_fail_reply(v in json_value()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        match parse(&bytes) {
            Ok(job) => prop_assert_eq!(Value::Object(job.request), v),
            Err(reply) => {
                let reply: Value = serde_json::from_slice(&reply).unwrap();
                prop_assert_eq!(&reply["hpcs_response"], "FAIL");
                prop_assert!(reply["hpcs_error"].is_string());
                if let Value::Object(request) = &v {
                    for (k, val) in request {
                        if k != "hpcs_response" && k != "hpcs_error" {
                            prop_assert_eq!(&reply[k], val);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn updates_with_newlines_in_any_string_are_refused(
        name in "[a-z]{0,4}\n[a-z]{0,4}",
        field in prop_oneof![Just("name"), Just("address"), Just("port"), Just("protocol")],
    ) {
        let mut lb = json!({"protocol": "HTTP", "name": "ok",
            "nodes": [{"address": "10.0.0.1", "port": "80"}]});
        match field {
            "address" | "port" => lb["nodes"][0][field] = json!(name),
            f => lb[f] = json!(name),
        }
        let error = error_of(update(json!([lb])));
        prop_assert!(error.contains("control character"), "{}", error);
    }
}

#[test]
fn a_message_over_one_mib_fails_without_being_read() {
    assert_eq!(MAX_PAYLOAD, 1_048_576);
    let mut payload = serde_json::to_vec(&json!({"hpcs_action": "DISCOVER", "pad": ""})).unwrap();
    let pad = MAX_PAYLOAD + 1 - payload.len();
    payload.splice(
        payload.len() - 2..payload.len() - 2,
        std::iter::repeat_n(b'x', pad),
    );
    assert_eq!(payload.len(), MAX_PAYLOAD + 1);
    let reply: Value = serde_json::from_slice(&parse(&payload).expect_err("too large")).unwrap();
    assert_eq!(
        reply,
        json!({"hpcs_response": "FAIL",
            "hpcs_error": "message too large: 1048577 bytes (limit 1048576)"})
    );
    payload.remove(payload.len() - 3);
    assert!(parse(&payload).is_ok(), "1 MiB exactly is read");
}
