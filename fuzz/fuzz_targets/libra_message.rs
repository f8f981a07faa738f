//! Fuzzes the Libra job parser: any payload gives a job or a FAIL reply, never a panic; a FAIL
//! reply is a JSON object with `hpcs_response: FAIL` and an `hpcs_error` string; an accepted
//! job holds no control character anywhere and its PASS reply echoes the request.

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
            let mut echoed = reply;
            echoed.as_object_mut().map(|m| m.remove("hpcs_response"));
            assert_eq!(echoed, request, "the PASS reply echoes the request");
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
