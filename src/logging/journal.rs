//! The console sink under journald: when systemd connected stderr to the journal (JOURNAL_STREAM
//! names stderr's device and inode), the default console's lines carry no time stamp of their
//! own (the journal stamps each entry) and start with the syslog priority of their level in the
//! sd-daemon(3) form (`<3>` error … `<7>` debug), so `journalctl -p` and its colours work.

use log::{Level, Record};
use log4rs::encode::writer::simple::SimpleWriter;
use log4rs::encode::{Encode, Write, pattern::PatternEncoder};

/// The default console's pattern under journald: the level and the message.
pub(super) const PATTERN: &str = "{l:<5} {m}{n}";

/// Whether stderr is the journal stream systemd set up (JOURNAL_STREAM, systemd.exec(5)).
pub(super) fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM").and_then(|v| parse_stream(v.to_str()?))
    else {
        return false;
    };
    nix::sys::stat::fstat(std::io::stderr()).is_ok_and(|st| (st.st_dev, st.st_ino) == stream)
}

/// JOURNAL_STREAM's `DEVICE:INODE`.
fn parse_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// The syslog priority of a level: error 3, warning 4, info 6, debug and trace 7.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Encodes a record as its pattern does, each line after the level's `<priority>`: journald
/// makes an entry of every line, and a message of several lines (a config error with its
/// snippet) keeps its priority on all of them.
#[derive(Debug)]
pub(super) struct PriorityEncoder(pub(super) PatternEncoder);

impl Encode for PriorityEncoder {
    fn encode(&self, w: &mut dyn Write, record: &Record) -> anyhow::Result<()> {
        let mut text = SimpleWriter(Vec::new());
        self.0.encode(&mut text, record)?;
        let prefix = format!("<{}>", priority(record.level()));
        for line in text.0.split_inclusive(|b| *b == b'\n') {
            w.write_all(prefix.as_bytes())?;
            w.write_all(line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_is_device_and_inode() {
        assert_eq!(parse_stream("8:1234"), Some((8, 1234)));
        assert_eq!(parse_stream("8"), None);
        assert_eq!(parse_stream("8:x"), None);
        assert_eq!(parse_stream(":12"), None);
    }

    #[test]
    fn lines_start_with_the_priority_of_their_level_and_carry_no_time() {
        let encoder = PriorityEncoder(PatternEncoder::new(PATTERN));
        let encoded = |level, message: &str| {
            let mut out = SimpleWriter(Vec::new());
            encoder
                .encode(
                    &mut out,
                    &Record::builder()
                        .level(level)
                        .args(format_args!("{message}"))
                        .build(),
                )
                .unwrap();
            String::from_utf8(out.0).unwrap()
        };
        let line = |level| encoded(level, "role change role=MASTER");
        assert_eq!(line(Level::Error), "<3>ERROR role change role=MASTER\n");
        assert_eq!(line(Level::Warn), "<4>WARN  role change role=MASTER\n");
        assert_eq!(line(Level::Info), "<6>INFO  role change role=MASTER\n");
        assert_eq!(line(Level::Debug), "<7>DEBUG role change role=MASTER\n");
        assert_eq!(line(Level::Trace), "<7>TRACE role change role=MASTER\n");
        assert_eq!(
            encoded(Level::Error, "reload refused: line 1\n  |\n1 | x: [\n"),
            "<3>ERROR reload refused: line 1\n<3>  |\n<3>1 | x: [\n<3>\n"
        );
    }
}
