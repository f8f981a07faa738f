//! Fuzzes keepalived's notify FIFO reading: the line splitter gives the same lines however the
//! bytes are chunked (the first input byte picks the chunk size), no line holds a newline, and
//! every line parses without a panic. A parsed event reads back the same when written as
//! keepalived writes it, and as `keepserver notify`'s four arguments.

#![no_main]

use keepserver::keepalived::fifo::Lines;
use keepserver::keepalived::{FifoLine, KeepalivedEvent, parse_fifo_line, parse_notify_args};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    let whole = Lines::default().push(bytes);
    let mut lines = Lines::default();
    let chunked: Vec<_> = bytes
        .chunks(usize::from(chunk) + 1)
        .flat_map(|c| lines.push(c))
        .collect();
    assert_eq!(whole, chunked, "chunk size {}", usize::from(chunk) + 1);
    for line in whole.into_iter().flatten() {
        assert!(!line.contains('\n'), "{line:?}");
        let words: Vec<&str> = line.split_whitespace().collect();
        let _ = parse_notify_args(&words).map(|e| e.to_string());
        match parse_fifo_line(&line) {
            Ok(FifoLine::Event(event)) => round_trip(&event),
            Ok(FifoLine::Other(_)) => {}
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});

fn round_trip(event: &KeepalivedEvent) {
    let instance = event
        .instance
        .as_ref()
        .expect("a FIFO event names its instance");
    let priority = event
        .priority
        .expect("a FIFO event has a priority")
        .to_string();
    let (kind, state) = (instance.kind.as_str(), event.state.as_str());
    let line = format!("{kind} \"{}\" {state} {priority}", instance.name);
    assert_eq!(
        parse_fifo_line(&line),
        Ok(FifoLine::Event(event.clone())),
        "{line:?}"
    );
    let args = [kind, instance.name.as_str(), state, priority.as_str()];
    assert_eq!(parse_notify_args(&args).as_ref(), Ok(event), "{args:?}");
    let _ = event.to_string();
}
