//! The admin API against its own OpenAPI document, by schemathesis (PyPI): property-based
//! requests, valid and invalid, to every operation of the live daemon (real HAProxy behind it,
//! in a network namespace of its own), checking that no answer is a 5xx, that every status,
//! content type and body is one the document describes, and that invalid requests are refused.
//! The seed is fixed so a failure can be replayed (`KEEPSERVER_SCHEMATHESIS_SEED` picks
//! another); `KEEPSERVER_SCHEMATHESIS_EXAMPLES` sets the examples per operation (default 25).

mod api_lab;
mod common;

use std::process::Command;
use std::time::Duration;

use api_lab::*;
use common::*;

/// How long schemathesis may take (it usually needs well under a minute).
const BUDGET: Duration = Duration::from_secs(600);

fn has_schemathesis() -> bool {
    run(
        Command::new("schemathesis").arg("--version"),
        Duration::from_secs(60),
    )
    .ok()
}

/// Installs schemathesis with pip when it is missing.
fn ensure_schemathesis() -> Result<(), String> {
    if has_schemathesis() {
        return Ok(());
    }
    let install = Duration::from_secs(600);
    let pip = |extra: &[&str]| {
        run(
            Command::new("python3")
                .args(["-m", "pip", "install", "-q"])
                .args(extra)
                .arg("schemathesis"),
            install,
        )
    };
    let mut out = pip(&[]);
    if !out.ok() && out.text().contains("externally-managed") {
        out = pip(&["--break-system-packages"]);
    }
    if has_schemathesis() {
        Ok(())
    } else {
        Err(format!(
            "schemathesis is missing and pip could not install it:\n{out}"
        ))
    }
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let test = "api_schema";
    if !e2e_available(test)
        || !prerequisite(test, ensure_schemathesis().as_ref().map_err(String::clone))
    {
        return;
    }
    let Some(lab) = ApiLab::start(test, LabSpec::default()) else {
        return;
    };
    // A site to start from, so reads and updates of existing objects are exercised too.
    lab.backend("A", 18081);
    for (path, body) in [
        (
            "/api/haproxy/loadbalancers",
            serde_json::json!({"id": "lb1"}),
        ),
        (
            "/api/haproxy/pools",
            serde_json::json!({"id": "pool1", "protocol": "HTTP"}),
        ),
        (
            "/api/haproxy/listeners",
            serde_json::json!({"id": "web", "protocol": "HTTP", "protocol_port": 8080,
                               "default_pool_id": "pool1"}),
        ),
        (
            "/api/haproxy/pools/pool1/members",
            serde_json::json!({"id": "a", "address": "127.0.0.1", "protocol_port": 18081}),
        ),
    ] {
        lab.expect("POST", path, Some(&body), 201);
    }
    let base = lab.base(API_PORT);
    let auth = format!("Authorization: {}", lab.authorization().expect("a token"));
    let seed = setting("KEEPSERVER_SCHEMATHESIS_SEED", "20261206");
    let examples = setting("KEEPSERVER_SCHEMATHESIS_EXAMPLES", "25");
    let out = run(
        Command::new("ip")
            .args(["netns", "exec", lab.ns.name(), "schemathesis", "run"])
            .args(["--url", &base, "-H", &auth])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance,negative_data_rejection",
            ])
            .args([
                "--max-examples",
                &examples,
                "--seed",
                &seed,
                "--workers",
                "1",
            ])
            .args(["--generation-database", "none", "--no-color"])
            .arg(format!("{base}/api/openapi.json"))
            .current_dir(lab.ws.dir()),
        BUDGET,
    );
    assert!(
        out.ok(),
        "schemathesis found problems (replay with its `st replay` ids, seed {seed}):\n{}\n{}",
        tail(&out.text(), 200),
        lab.report()
    );
    let summary = out.stdout.lines().rev().find(|l| l.contains("passed"));
    assert!(summary.is_some(), "no summary line:\n{}", out.text());
    // The daemon is still there and serves the site it started from.
    lab.expect("GET", "/api/haproxy/loadbalancers", None, 200);
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("schemathesis: {}\n", summary.unwrap_or_default().trim()).as_bytes(),
    );
}
