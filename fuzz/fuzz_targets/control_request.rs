//! Fuzzes the control socket's request parser: any line gives a command, a `bad request` error
//! or a control-protocol refusal, never a panic; an accepted command reads back the same after
//! the client's encoding (with this keepserver's protocol version), and the error answer is one
//! JSON line.

#![no_main]

use keepserver::control::{Command, Request, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    match parse_request(line) {
        Ok(command) => {
            let request = Request::new(command.clone());
            let text = serde_json::to_string(&request).expect("a request encodes");
            assert_eq!(parse_request(&text), Ok(command.clone()), "{text}");
            if let Command::Notify(event) = command {
                let _ = event.to_string();
            }
        }
        Err(error) => {
            assert!(
                error.starts_with("bad request") || error.contains("control protocol"),
                "{error}"
            );
            let answer = serde_json::json!({ "error": error }).to_string();
            assert!(!answer.contains('\n'), "{answer}");
        }
    }
});
