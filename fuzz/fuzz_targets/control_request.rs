//! Fuzzes the control socket's request parser: any line gives a request or a `bad request`
//! error, never a panic; an accepted request reads back the same after the client's encoding,
//! and the error answer is one JSON line.

#![no_main]

use keepserver::control::{Request, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    match parse_request(line) {
        Ok(request) => {
            let text = serde_json::to_string(&request).expect("a request encodes");
            assert_eq!(parse_request(&text), Ok(request.clone()), "{text}");
            if let Request::Notify(event) = request {
                let _ = event.to_string();
            }
        }
        Err(error) => {
            assert!(error.starts_with("bad request"), "{error}");
            let answer = serde_json::json!({ "error": error }).to_string();
            assert!(!answer.contains('\n'), "{answer}");
        }
    }
});
