//! Fuzzes the Libra job parser: any payload gives a job or a FAIL reply, never a panic; a FAIL
//! reply is a JSON object with `hpcs_response: FAIL` and an `hpcs_error` string; an accepted
//! job holds no control character anywhere and its PASS reply echoes the request (with its own
//! `hpcs_response`).

#![no_main]

use keepserver::libra::message;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match message::parse(data) {
        Ok(job) => {
            assert_eq!(
                message::parse(data).as_ref(),
                Ok(&job),
                "parse is deterministic"
            );
            let request = Value::Object(job.request.clone());
            assert!(
                !has_control(&request),
                "an accepted job holds a control character"
            );
            let reply: Value = serde_json::from_slice(&message::pass(job.request, Vec::new()))
                .expect("a PASS reply is JSON");
            assert_eq!(reply["hpcs_response"], "PASS");
            // The reply's `hpcs_response` replaces one the request may have carried.
            let without_response = |mut v: Value| {
                v.as_object_mut().map(|m| m.remove("hpcs_response"));
                v
            };
            assert_eq!(
                without_response(reply),
                without_response(request),
                "the PASS reply echoes the request"
            );
        }
        Err(reply) => {
            let reply: Value = serde_json::from_slice(&reply).expect("a FAIL reply is JSON");
            assert_eq!(reply["hpcs_response"], "FAIL", "{reply}");
            assert!(reply["hpcs_error"].is_string(), "{reply}");
        }
    }
});

fn has_control(v: &Value) -> bool {
    let bad = |s: &str| s.chars().any(char::is_control);
    match v {
        Value::String(s) => bad(s),
        Value::Array(items) => items.iter().any(has_control),
        Value::Object(map) => map.iter().any(|(k, v)| bad(k) || has_control(v)),
        _ => false,
    }
}
