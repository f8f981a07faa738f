//! Fuzzes the parser of HAProxy's `show stat` CSV: any text gives rows or an error, never a
//! panic, and an accepted answer has one row per non-blank line after the header.

#![no_main]

use keepserver::haproxy::stats::parse_rows;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(csv) = std::str::from_utf8(data) else {
        return;
    };
    match parse_rows(csv) {
        Ok(rows) => {
            let lines = csv.lines().filter(|l| !l.trim().is_empty()).count();
            assert_eq!(rows.len() + 1, lines, "{csv:?}");
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
});
