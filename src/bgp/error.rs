//! The announcer's errors: each names the file, command or interface involved and carries FRR's
//! own output, since that is what an operator needs to fix a refused configuration.

use std::path::PathBuf;
use std::time::Duration;

use crate::supervisor::components::show_duration;

/// Longest FRR output quoted in an error, in characters.
const MAX_QUOTED_OUTPUT: usize = 2000;

/// A failure to put the loopback prefixes or bgpd.conf in place.
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    /// A file operation failed; `action` names it and the path.
    #[error("cannot {action}: {source}")]
    Io {
        /// What was being done, with the path.
        action: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// An FRR program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// An FRR program did not finish in time (it was killed).
    #[error("`{command}` did not finish within {}", show_duration(*after))]
    Timeout {
        /// The command line.
        command: String,
        /// How long it was given.
        after: Duration,
    },
    /// FRR's checker refused the rendered file; nothing was applied.
    #[error(
        "`{command}` rejected the configuration (kept the previous one, saved this one as {}): {output}",
        saved.display()
    )]
    Rejected {
        /// The check command line.
        command: String,
        /// Where the rejected file was saved (`<config>-failed`).
        saved: PathBuf,
        /// FRR's output.
        output: String,
    },
    /// The running bgpd did not take the configuration.
    #[error(
        "`{command}` failed ({status}; the file in force is unchanged{}): {output}",
        saved.as_ref().map_or_else(String::new, |s| format!(", this one is saved as {}", s.display()))
    )]
    NotApplied {
        /// The apply command line.
        command: String,
        /// How it ended.
        status: String,
        /// Where the file was saved (`<config>-failed`); `None` when it is the file in place.
        saved: Option<PathBuf>,
        /// FRR's output.
        output: String,
    },
    /// bgpd's running configuration could not be read.
    #[error("`{command}` failed ({status}): {output}")]
    Query {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// FRR's output.
        output: String,
    },
    /// The netlink socket could not be opened.
    #[error("cannot open the rtnetlink socket: {source}")]
    NetlinkSocket {
        /// The system's error.
        source: std::io::Error,
    },
    /// A netlink request failed.
    #[error("cannot {action} over rtnetlink: {source}")]
    Netlink {
        /// What was being done.
        action: String,
        /// The kernel's answer.
        source: rtnetlink::Error,
    },
    /// The loopback interface does not exist.
    #[error("interface {name} (bgp.loopback) does not exist")]
    NoInterface {
        /// Its configured name.
        name: String,
    },
}

impl BgpError {
    /// A closure turning an I/O error into [`BgpError::Io`] for `action`.
    pub fn io(action: String) -> impl FnOnce(std::io::Error) -> BgpError {
        move |source| BgpError::Io { action, source }
    }

    /// A closure turning a netlink error into [`BgpError::Netlink`] for `action`.
    pub fn netlink(action: String) -> impl FnOnce(rtnetlink::Error) -> BgpError {
        move |source| BgpError::Netlink { action, source }
    }
}

/// FRR's output for a message: trimmed, blank lines dropped, lines joined with ` | `, and cut
/// to a readable length.
pub fn quote_output(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if joined.is_empty() {
        return "(no output)".to_string();
    }
    match joined.char_indices().nth(MAX_QUOTED_OUTPUT) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

impl From<crate::atomic_file::FileError> for BgpError {
    fn from(e: crate::atomic_file::FileError) -> Self {
        BgpError::Io {
            action: e.action,
            source: e.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_one_line_and_bounded() {
        assert_eq!(
            quote_output("line 2: % Unknown command\n\n  foo bar\n"),
            "line 2: % Unknown command | foo bar"
        );
        assert_eq!(quote_output("\n"), "(no output)");
        let long = "x".repeat(MAX_QUOTED_OUTPUT + 10);
        assert_eq!(quote_output(&long).len(), MAX_QUOTED_OUTPUT + 3);
    }
}
