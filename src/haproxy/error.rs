//! The errors of driving HAProxy, whose display becomes the job's `hpcs_error`, and the pure
//! trimming of HAProxy's own output down to the lines worth quoting in one.

use std::path::PathBuf;
use std::time::Duration;

use crate::supervisor::components::show_duration;

/// Longest HAProxy output quoted in an error, in characters.
const MAX_QUOTED_OUTPUT: usize = 1000;

/// A failure to configure, start, reload, stop or query HAProxy.
#[derive(Debug, thiserror::Error)]
pub enum HaproxyError {
    /// A file or directory operation failed; `action` names it and the path.
    #[error("cannot {action}: {source}")]
    Io {
        /// What was being done, with the path (`write /etc/haproxy.cfg.tmp`).
        action: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// The HAProxy binary could not be run.
    #[error("cannot run {binary}: {source}")]
    Spawn {
        /// The binary from the settings.
        binary: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// `haproxy -c` refused the rendered configuration; the running one is untouched.
    #[error(
        "haproxy -c rejected the configuration (kept the previous one, saved this one as {}): {output}",
        saved.display()
    )]
    ConfigRejected {
        /// Where the rejected configuration was saved (`<config>-failed`).
        saved: PathBuf,
        /// HAProxy's own messages, trimmed.
        output: String,
    },
    /// `haproxy -W -D` exited with an error.
    #[error("haproxy failed to start: {output}")]
    StartFailed {
        /// HAProxy's own messages, trimmed.
        output: String,
    },
    /// The master reported a failed reload: it parsed the file (`-c` passed) but could not
    /// start workers with it, and the previous workers go on serving.
    #[error(
        "HAProxy's reload failed (its master reports {failed} failed reload(s), most often a port \
         it cannot bind) and the previous configuration is still serving"
    )]
    ReloadFailed {
        /// The master's count of consecutive failed reloads.
        failed: u32,
    },
    /// A new configuration that passed `-c` could not be put in service and was rolled back.
    #[error(
        "{source} (the new configuration is saved as {}, the previous one is back in place)",
        saved.display()
    )]
    NotApplied {
        /// Where the new configuration was saved (`<config>-failed`).
        saved: PathBuf,
        /// Why it could not be put in service.
        source: Box<HaproxyError>,
    },
    /// Something HAProxy should have done did not happen in time.
    #[error("{what} did not happen within {}", show_duration(*after))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        after: Duration,
    },
    /// The new worker serves other frontends than the configuration declares.
    #[error("the new HAProxy worker serves frontends [{found}], expected [{expected}]")]
    WrongFrontends {
        /// The frontends of the configuration.
        expected: String,
        /// The frontends the worker reports.
        found: String,
    },
    /// ENABLE or start without a configuration.
    #[error("nothing to enable: there is no HAProxy configuration at {}", config.display())]
    NoConfig {
        /// The configuration path from the settings.
        config: PathBuf,
    },
    /// The stats socket does not answer: no HAProxy worker is serving.
    #[error("HAProxy is not running (stats socket {}: {source})", socket.display())]
    NotRunning {
        /// The stats socket.
        socket: PathBuf,
        /// The connection error.
        source: std::io::Error,
    },
    /// A command on one of HAProxy's sockets failed after connecting.
    #[error("HAProxy socket {} failed on `{command}`: {source}", socket.display())]
    Socket {
        /// The socket.
        socket: PathBuf,
        /// The command sent.
        command: String,
        /// The error.
        source: std::io::Error,
    },
    /// HAProxy answered a command with something that cannot be read.
    #[error("unexpected answer to `{command}` from HAProxy: {reason}")]
    BadAnswer {
        /// The command sent.
        command: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// A signal could not be sent to the master.
    #[error("cannot send {signal} to the HAProxy master (pid {pid}): {source}")]
    Signal {
        /// The master's pid.
        pid: u32,
        /// The signal's name.
        signal: &'static str,
        /// The system's error.
        source: nix::Error,
    },
    /// The master survived SIGUSR1, SIGTERM and SIGKILL.
    #[error("the HAProxy master (pid {pid}) is still alive after SIGKILL")]
    StopFailed {
        /// The master's pid.
        pid: u32,
    },
}

impl HaproxyError {
    /// An [`HaproxyError::Io`] for `action` (which names the path).
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> HaproxyError {
        let action = action.into();
        move |source| HaproxyError::Io { action, source }
    }
}

/// HAProxy's output reduced to what explains a failure, on one line: `[ALERT]` and `[WARNING]`
/// lines (without the pid) and the configuration excerpts under them; `[NOTICE]` lines, caret
/// lines and the generic "Fatal errors found" trailers go. Output without any alert is kept
/// whole. At most [`MAX_QUOTED_OUTPUT`] characters.
pub fn summarize_output(output: &str) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut in_message = false;
    for line in output.lines() {
        if let Some(tag) = tagged(line) {
            in_message = tag.0 == "ALERT" || tag.0 == "WARNING";
            if in_message && !is_trailer(tag.1) {
                kept.push(format!("[{}] {}", tag.0, tag.1));
            }
        } else if in_message && is_excerpt(line) {
            kept.push(line.trim().to_owned());
        }
    }
    let text = if kept.is_empty() {
        output.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        kept.join(" ")
    };
    shorten(&text)
}

/// `[TAG]   (pid) : message` as `(TAG, message)`.
fn tagged(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('[')?;
    let (tag, rest) = rest.split_once(']')?;
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('(') {
        Some(after) => after.split_once(')').map_or(rest, |(_, r)| r),
        None => rest,
    };
    let message = rest.trim_start().strip_prefix(':').unwrap_or(rest).trim();
    Some((tag, message))
}

fn is_trailer(message: &str) -> bool {
    message.contains("Error(s) found in configuration file")
        || message.contains("Fatal errors found in configuration")
}

/// A continuation line worth keeping: indented and not only a caret marker.
fn is_excerpt(line: &str) -> bool {
    line.starts_with(char::is_whitespace) && !line.trim().chars().all(|c| c == '^')
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED_OUTPUT {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_QUOTED_OUTPUT).collect();
    short.push('…');
    short
}

impl From<crate::atomic_file::FileError> for HaproxyError {
    fn from(e: crate::atomic_file::FileError) -> Self {
        HaproxyError::Io {
            action: e.action,
            source: e.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_alerts_and_excerpts_drops_notices_carets_and_trailers() {
        let output = concat!(
            "[NOTICE]   (13856) : haproxy version is 2.6.12-1+deb12u4\n",
            "[NOTICE]   (13856) : path to executable is /usr/sbin/haproxy\n",
            "[ALERT]    (13856) : config : parsing [hx.cfg:27]: unmatched quote at position 30:\n",
            "  option httpchk GET /he'\\''al$HOME\n",
            "                           ^\n",
            "[ALERT]    (13856) : config : Error(s) found in configuration file : hx.cfg\n",
            "[ALERT]    (13856) : config : Fatal errors found in configuration.\n",
        );
        assert_eq!(
            summarize_output(output),
            "[ALERT] config : parsing [hx.cfg:27]: unmatched quote at position 30: \
             option httpchk GET /he'\\''al$HOME"
        );
    }

    #[test]
    fn keeps_warnings_and_bind_errors() {
        let output = "[WARNING]  (1) : config : missing timeouts for frontend 'x'.\n\
[ALERT]    (1) : Starting frontend http-in: cannot bind socket (Address in use) [127.0.0.1:80]\n";
        assert_eq!(
            summarize_output(output),
            "[WARNING] config : missing timeouts for frontend 'x'. [ALERT] Starting frontend \
             http-in: cannot bind socket (Address in use) [127.0.0.1:80]"
        );
    }

    #[test]
    fn output_without_tags_is_kept_on_one_line() {
        assert_eq!(
            summarize_output("sh: 1: haproxy:\n  not found\n"),
            "sh: 1: haproxy: not found"
        );
    }

    #[test]
    fn long_output_is_shortened() {
        let long = format!("[ALERT] (1) : {}", "x".repeat(5000));
        let short = summarize_output(&long);
        assert_eq!(short.chars().count(), MAX_QUOTED_OUTPUT + 1);
        assert!(short.ends_with('…'));
    }
}
