//! Whether a worker's `peers` sections have finished their initial resynchronisation, read from
//! `show peers`. HAProxy 2.6 hands a worker's stick tables to the next worker of a reload only
//! once its own resync has finished: taught by the worker before it, or given up on after the
//! resync timeout (5 s from its start, as many again for remote peers). A reload before then
//! (right after a fresh start, or right after a reload that was itself too early) starts the new
//! worker with empty tables, and every quick reload after it does the same, so the driver waits
//! for the resync before it reloads (see `Haproxy::reload`). Checked by hand on HAProxy 2.6.12:
//! reloading 0.5 s after a start lost the table, reloading after 7 s kept it.

/// The `flags` bits of a `peers` section that say its resync is done: from the local (previous)
/// worker, and from the remote peers (each set as well when there was nothing to learn, or it
/// timed out).
const RESYNC_FINISHED: u32 = 0x1 | 0x2;

/// The names of the enabled `peers` sections of a `show peers` answer whose resync has not
/// finished; empty when every one has, or there is none.
///
/// A section is one unindented line, peers and tables follow indented:
///
/// ```text
/// 0x5557975ed8d0: [07/Dec/2026:01:33:07] id=lb disabled=0 flags=0x33 resync_timeout=<PAST> ...
///   0x5557975eda40: id=n1(local,inactive) addr=127.0.0.1:10012 last_status=NONE ...
/// ```
pub fn unsynced(answer: &str) -> Result<Vec<String>, String> {
    let mut pending = Vec::new();
    for line in answer.lines().filter(|l| l.starts_with("0x")) {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name))
                .ok_or_else(|| format!("no `{name}` in the peers line {line:?}"))
        };
        let id = field("id=")?;
        if field("disabled=")? != "0" {
            continue;
        }
        let flags = field("flags=")?;
        let flags = flags
            .strip_prefix("0x")
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .ok_or_else(|| format!("flags {flags:?} of peers section {id} are not hexadecimal"))?;
        if flags & RESYNC_FINISHED != RESYNC_FINISHED {
            pending.push(id.to_owned());
        }
    }
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "  0x5557975eda40: id=n1(local,inactive) addr=127.0.0.1:10012 \
                        last_status=NONE last_hdshk=<NEVER>\n        flags=0x0\n";

    fn section(id: &str, disabled: u8, flags: &str) -> String {
        format!(
            "0x5557975ed8d0: [07/Dec/2026:01:33:07] id={id} disabled={disabled} flags={flags} \
             resync_timeout=4s task_calls=2\n{PEER}"
        )
    }

    #[test]
    fn finished_sections_are_not_pending() {
        // After the resync timeouts (0x33) and taught by the previous worker (0x1103).
        let answer = section("lb", 0, "0x33") + &section("other", 0, "0x1103");
        assert_eq!(unsynced(&answer), Ok(vec![]));
        assert_eq!(unsynced(""), Ok(vec![]), "no peers section");
    }

    #[test]
    fn sections_still_learning_are_pending() {
        // Learning from the remote peers (0x11), and waiting for the previous worker (0x0).
        let answer = section("lb", 0, "0x11") + &section("b", 0, "0x0") + &section("c", 1, "0x0");
        assert_eq!(unsynced(&answer), Ok(vec!["lb".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn an_answer_that_is_not_show_peers_is_an_error() {
        let err = unsynced("0x1: [date] id=lb disabled=0 flags=zz\n").unwrap_err();
        assert!(err.contains("not hexadecimal"), "{err}");
        let err = unsynced("0x1: Unknown command\n").unwrap_err();
        assert!(err.contains("no `id=`"), "{err}");
    }
}
