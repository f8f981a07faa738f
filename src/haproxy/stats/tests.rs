//! `show stat` parsing tests, on an answer captured from HAProxy 2.6.12 and on malformed ones.

use super::*;

/// `show stat` of HAProxy 2.6.12 serving an HTTP load balancer (node-1 up and used 3 times,
/// web-2 refusing connections, node-3 disabled, node-4 a backup) and a TCP one without monitor.
const SAMPLE: &str = include_str!("show-stat-2.6.12.csv");

fn node(
    backend: &str,
    server: &str,
    status: &str,
    counters: [u64; 4],
    check: Option<&str>,
) -> NodeStat {
    NodeStat {
        backend: backend.into(),
        server: server.into(),
        status: status.into(),
        current_sessions: counters[0],
        total_sessions: counters[1],
        bytes_in: counters[2],
        bytes_out: counters[3],
        check_status: check.map(String::from),
    }
}

#[test]
fn servers_of_a_real_answer() {
    let rows = parse_rows(SAMPLE).expect("parses");
    assert_eq!(rows.len(), 9, "2 frontends, 5 servers, 2 backends");
    assert_eq!(
        servers(rows),
        vec![
            node(
                "http-servers",
                "node-1",
                "UP",
                [0, 3, 246, 1569],
                Some("L7OK")
            ),
            node("http-servers", "web-2", "DOWN", [0, 0, 0, 0], Some("L4CON")),
            node("http-servers", "node-3", "MAINT", [0, 0, 0, 0], None),
            node("http-servers", "node-4", "UP", [0, 0, 0, 0], Some("L7OK")),
            node("tcp-servers", "node-1", "no check", [0, 1, 79, 524], None),
        ]
    );
}

#[test]
fn bytes_out_of_each_frontend() {
    let rows = parse_rows(SAMPLE).expect("parses");
    let named = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(n, b)| (n.to_string(), *b)).collect()
    };
    assert_eq!(
        bytes_out_by_frontend(&rows),
        named(&[("http-in", 1569), ("tcp-in", 524)])
    );
    let http_only: Vec<StatRow> = rows
        .into_iter()
        .filter(|r| r.proxy.starts_with("http"))
        .collect();
    assert_eq!(
        bytes_out_by_frontend(&http_only),
        named(&[("http-in", 1569)])
    );
}

#[test]
fn node_stats_serialize_for_the_stats_reply() {
    let json = serde_json::to_value(node(
        "tcp-servers",
        "node-1",
        "no check",
        [1, 2, 3, 4],
        None,
    ))
    .expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "backend": "tcp-servers", "server": "node-1", "status": "no check",
            "current_sessions": 1, "total_sessions": 2, "bytes_in": 3, "bytes_out": 4,
            "check_status": null
        })
    );
}

#[test]
fn fields_are_found_by_name_and_quoted_fields_may_hold_commas() {
    let csv = "# svname,pxname,type,status,scur,stot,bin,bout,check_status,extra\n\
               \"web,1\",http-servers,2,\"DOWN, \"\"really\"\"\",1,2,3,4,L4TOUT,x\n";
    let rows = parse_rows(csv).expect("parses");
    assert_eq!(
        servers(rows),
        vec![node(
            "http-servers",
            "web,1",
            "DOWN, \"really\"",
            [1, 2, 3, 4],
            Some("L4TOUT")
        )]
    );
}

#[test]
fn a_check_in_progress_reports_the_last_result() {
    let csv = "# pxname,svname,type,status,scur,stot,bin,bout,check_status\n\
               http-servers,node-2,2,DOWN,0,0,0,0,* L4CON\n";
    let rows = parse_rows(csv).expect("parses");
    assert_eq!(
        servers(rows),
        vec![node(
            "http-servers",
            "node-2",
            "DOWN",
            [0, 0, 0, 0],
            Some("L4CON")
        )]
    );
}

#[test]
fn answers_that_are_not_statistics_are_errors() {
    assert_eq!(
        parse_rows("Unknown command: 'show sta'\n").expect_err("no header"),
        "no `# pxname,...` header line in \"Unknown command: 'show sta'\""
    );
    assert_eq!(
        parse_rows("# pxname,svname,type\n").expect_err("short header"),
        "the header has no `status` field"
    );
    let header = "# pxname,svname,type,status,scur,stot,bin,bout,check_status\n";
    assert_eq!(
        parse_rows(&format!("{header}a,b,2,UP,0,x,0,0,\n")).expect_err("bad number"),
        "row 1: field `stot` is `x`, not a number"
    );
    assert_eq!(
        parse_rows(&format!("{header}a,b,7,UP,0,0,0,0,\n")).expect_err("bad type"),
        "row 1: field `type` is `7`, not 0-3"
    );
    assert_eq!(parse_rows(header).expect("header only"), Vec::new());
}
