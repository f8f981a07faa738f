//! keepalived's view of the node, as its notify hooks and its `notify_fifo` tell it: the typed
//! [`KeepalivedEvent`] and the pure parsers that turn notify arguments and FIFO lines into it.
//!
//! keepalived speaks two dialects. The generic `notify` script gets four arguments appended
//! (`INSTANCE|GROUP`, the name, `MASTER|BACKUP|FAULT|STOP`, the priority) and the FIFO gets the
//! same four as one line with the name quoted (`INSTANCE "VI_1" MASTER 100`); the specific
//! `notify_master`/`notify_backup`/`notify_fault`/`notify_stop` scripts get nothing appended, so
//! operators write the state word themselves (`keepserver notify MASTER`). Both become one
//! event, with the instance and priority absent in the second form. keepalived writes other lines
//! to a shared FIFO (`MASTER_RX_LOWER_PRI`, and the checker's `VS`/`RS` lines): those are
//! [`FifoLine::Other`], to be logged and skipped, not errors.

pub mod fifo;

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether keepalived speaks of a VRRP instance or a sync group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InstanceKind {
    /// A `vrrp_instance`.
    Instance,
    /// A `vrrp_sync_group`.
    Group,
}

impl InstanceKind {
    /// The word keepalived uses.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceKind::Instance => "INSTANCE",
            InstanceKind::Group => "GROUP",
        }
    }
}

/// The state keepalived reports for an instance or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum KeepalivedState {
    /// keepalived holds (or is taking) the VIP.
    Master,
    /// keepalived is standing by.
    Backup,
    /// keepalived found a fault (interface down, a failing track script) and gave up the VIP.
    Fault,
    /// keepalived is shutting the instance down.
    Stop,
}

impl KeepalivedState {
    /// The word keepalived uses.
    pub fn as_str(self) -> &'static str {
        match self {
            KeepalivedState::Master => "MASTER",
            KeepalivedState::Backup => "BACKUP",
            KeepalivedState::Fault => "FAULT",
            KeepalivedState::Stop => "STOP",
        }
    }

    /// Whether keepalived says this node should hold the VIP.
    pub fn wants_vip(self) -> bool {
        self == KeepalivedState::Master
    }

    /// FAULT and STOP: keepalived has given the node up, not merely stood it by.
    pub fn is_down(self) -> bool {
        matches!(self, KeepalivedState::Fault | KeepalivedState::Stop)
    }

    fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_uppercase().as_str() {
            "MASTER" => Some(KeepalivedState::Master),
            "BACKUP" => Some(KeepalivedState::Backup),
            "FAULT" => Some(KeepalivedState::Fault),
            "STOP" => Some(KeepalivedState::Stop),
            _ => None,
        }
    }
}

impl fmt::Display for KeepalivedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The instance or group an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Instance or group.
    pub kind: InstanceKind,
    /// Its name in keepalived.conf.
    pub name: String,
}

/// One state report from keepalived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepalivedEvent {
    /// The instance or group; absent for a bare state word (`notify_master` style).
    pub instance: Option<Instance>,
    /// The state keepalived entered.
    pub state: KeepalivedState,
    /// The instance's priority, when keepalived gave it.
    pub priority: Option<u8>,
}

impl fmt::Display for KeepalivedEvent {
    /// `kind=INSTANCE instance=VI_1 state=MASTER priority=100`, absent parts left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = &self.instance {
            // A name from the FIFO or a notify argument may hold anything: shown escaped, so a
            // log line stays one line with its quotes where they belong.
            write!(
                f,
                "kind={} instance=\"{}\" ",
                i.kind.as_str(),
                i.name.escape_debug()
            )?;
        }
        write!(f, "state={}", self.state)?;
        if let Some(p) = self.priority {
            write!(f, " priority={p}")?;
        }
        Ok(())
    }
}

/// Where a keepalived event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `keepserver notify`, run by keepalived as a notify script.
    Notify,
    /// A line of keepalived's `notify_fifo`.
    Fifo,
}

impl Source {
    /// The name used in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Notify => "notify",
            Source::Fifo => "fifo",
        }
    }
}

/// Why notify arguments or a FIFO line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Neither one state word nor the four notify arguments.
    #[error(
        "expected one state word (MASTER, BACKUP, FAULT or STOP) or keepalived's four notify \
         arguments (INSTANCE|GROUP NAME STATE PRIORITY), got {0} argument(s)"
    )]
    ArgCount(usize),
    /// The first word is not INSTANCE or GROUP.
    #[error("`{0}` is not INSTANCE or GROUP")]
    Kind(String),
    /// The state word is not one keepserver knows.
    #[error("`{0}` is not a state (expected MASTER, BACKUP, FAULT or STOP)")]
    State(String),
    /// The priority is not a number from 0 to 255.
    #[error("`{0}` is not a priority (expected 0-255)")]
    Priority(String),
    /// The name is empty or its quotes do not close.
    #[error("bad instance name in `{0}` (expected a double-quoted name)")]
    Name(String),
    /// A FIFO line with too few or too many fields.
    #[error("`{0}` is not a notify line (expected e.g. INSTANCE \"VI_1\" MASTER 100)")]
    Line(String),
}

/// Reads `keepserver notify` arguments: one state word, or keepalived's four notify arguments.
pub fn parse_notify_args<S: AsRef<str>>(args: &[S]) -> Result<KeepalivedEvent, ParseError> {
    match args {
        [state] => Ok(KeepalivedEvent {
            instance: None,
            state: state_of(state.as_ref())?,
            priority: None,
        }),
        [kind, name, state, priority] => {
            let name = name.as_ref();
            if name.is_empty() {
                return Err(ParseError::Name(name.to_string()));
            }
            event(kind.as_ref(), name, state.as_ref(), priority.as_ref())
        }
        other => Err(ParseError::ArgCount(other.len())),
    }
}

/// One line read from the FIFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FifoLine {
    /// An instance or group state change.
    Event(KeepalivedEvent),
    /// A line keepalived writes that keepserver does not act on (`MASTER_RX_LOWER_PRI`, the
    /// checker's `VS`/`RS` lines): skip it.
    Other(String),
}

/// Parses one `notify_fifo` line (without its newline): `INSTANCE "VI_1" MASTER 100`.
pub fn parse_fifo_line(line: &str) -> Result<FifoLine, ParseError> {
    let line = line.trim();
    let Some((kind, rest)) = line.split_once(char::is_whitespace) else {
        return Err(ParseError::Line(line.to_string()));
    };
    if matches!(kind, "VS" | "RS") {
        return Ok(FifoLine::Other(line.to_string()));
    }
    let rest = rest.trim_start();
    let (name, tail) = quoted(rest).ok_or_else(|| ParseError::Name(line.to_string()))?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let [state, priority] = fields[..] else {
        return Err(ParseError::Line(line.to_string()));
    };
    match event(kind, name, state, priority) {
        Err(ParseError::State(_)) if state.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
            Ok(FifoLine::Other(line.to_string()))
        }
        other => other.map(FifoLine::Event),
    }
}

/// Splits `"name" rest` into the name and the rest. keepalived quotes the name and does not
/// escape within it, so the name ends at the last quote: a name with spaces still reads whole.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('"')?;
    let end = inner.rfind('"')?;
    let name = &inner[..end];
    (!name.is_empty()).then(|| (name, &inner[end + 1..]))
}

fn event(
    kind: &str,
    name: &str,
    state: &str,
    priority: &str,
) -> Result<KeepalivedEvent, ParseError> {
    let kind = match kind.to_ascii_uppercase().as_str() {
        "INSTANCE" => InstanceKind::Instance,
        "GROUP" => InstanceKind::Group,
        _ => return Err(ParseError::Kind(kind.to_string())),
    };
    let state = state_of(state)?;
    let priority = priority
        .parse::<u8>()
        .map_err(|_| ParseError::Priority(priority.to_string()))?;
    Ok(KeepalivedEvent {
        instance: Some(Instance {
            kind,
            name: name.to_string(),
        }),
        state,
        priority: Some(priority),
    })
}

fn state_of(word: &str) -> Result<KeepalivedState, ParseError> {
    KeepalivedState::parse(word).ok_or_else(|| ParseError::State(word.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(kind: InstanceKind, name: &str, state: KeepalivedState, p: u8) -> KeepalivedEvent {
        KeepalivedEvent {
            instance: Some(Instance {
                kind,
                name: name.to_string(),
            }),
            state,
            priority: Some(p),
        }
    }

    #[test]
    fn notify_args_in_both_forms() {
        use InstanceKind::*;
        use KeepalivedState::*;
        let cases: &[(&[&str], KeepalivedEvent)] = &[
            (
                &["INSTANCE", "VI_1", "MASTER", "100"],
                full(Instance, "VI_1", Master, 100),
            ),
            (
                &["GROUP", "G1", "BACKUP", "0"],
                full(Group, "G1", Backup, 0),
            ),
            (
                &["INSTANCE", "VI 1", "FAULT", "255"],
                full(Instance, "VI 1", Fault, 255),
            ),
            (
                &["instance", "VI_1", "stop", "50"],
                full(Instance, "VI_1", Stop, 50),
            ),
        ];
        for (args, want) in cases {
            assert_eq!(parse_notify_args(args).as_ref(), Ok(want), "{args:?}");
        }
        for (word, state) in [
            ("MASTER", Master),
            ("BACKUP", Backup),
            ("FAULT", Fault),
            ("STOP", Stop),
        ] {
            let got = parse_notify_args(&[word]).unwrap();
            assert_eq!(
                got,
                KeepalivedEvent {
                    instance: None,
                    state,
                    priority: None
                }
            );
        }
    }

    #[test]
    fn bad_notify_args_say_what_is_wrong() {
        let cases: &[(&[&str], ParseError)] = &[
            (&[], ParseError::ArgCount(0)),
            (&["INSTANCE", "VI_1", "MASTER"], ParseError::ArgCount(3)),
            (
                &["INSTANCE", "VI_1", "MASTER", "100", "x"],
                ParseError::ArgCount(5),
            ),
            (&["PRIMARY"], ParseError::State("PRIMARY".into())),
            (
                &["ROUTER", "VI_1", "MASTER", "100"],
                ParseError::Kind("ROUTER".into()),
            ),
            (
                &["INSTANCE", "VI_1", "LEADER", "100"],
                ParseError::State("LEADER".into()),
            ),
            (
                &["INSTANCE", "VI_1", "MASTER", "256"],
                ParseError::Priority("256".into()),
            ),
            (
                &["INSTANCE", "VI_1", "MASTER", "-1"],
                ParseError::Priority("-1".into()),
            ),
            (
                &["INSTANCE", "", "MASTER", "1"],
                ParseError::Name(String::new()),
            ),
        ];
        for (args, want) in cases {
            assert_eq!(parse_notify_args(args).as_ref(), Err(want), "{args:?}");
        }
        assert!(
            ParseError::ArgCount(2)
                .to_string()
                .contains("INSTANCE|GROUP NAME STATE PRIORITY")
        );
    }

    #[test]
    fn fifo_lines() {
        use InstanceKind::*;
        use KeepalivedState::*;
        let cases = [
            (
                "INSTANCE \"VI_1\" MASTER 100",
                full(Instance, "VI_1", Master, 100),
            ),
            ("GROUP \"G1\" FAULT 0", full(Group, "G1", Fault, 0)),
            (
                "  INSTANCE  \"my vip\"  BACKUP   90 \r",
                full(Instance, "my vip", Backup, 90),
            ),
            (
                "INSTANCE \"VI_1\" STOP 100",
                full(Instance, "VI_1", Stop, 100),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_fifo_line(line), Ok(FifoLine::Event(want)), "{line}");
        }
    }

    #[test]
    fn other_fifo_lines_are_skipped_not_errors() {
        for line in [
            "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 100",
            "VS [192.0.2.100]:tcp:80 UP",
            "RS [192.0.2.1]:tcp:80 [192.0.2.100]:tcp:80 DOWN",
        ] {
            assert_eq!(
                parse_fifo_line(line),
                Ok(FifoLine::Other(line.to_string())),
                "{line}"
            );
        }
    }

    #[test]
    fn bad_fifo_lines_are_errors() {
        let cases = [
            ("", ParseError::Line(String::new())),
            ("INSTANCE", ParseError::Line("INSTANCE".into())),
            (
                "INSTANCE VI_1 MASTER 100",
                ParseError::Name("INSTANCE VI_1 MASTER 100".into()),
            ),
            (
                "INSTANCE \"VI_1 MASTER 100",
                ParseError::Name("INSTANCE \"VI_1 MASTER 100".into()),
            ),
            (
                "INSTANCE \"\" MASTER 100",
                ParseError::Name("INSTANCE \"\" MASTER 100".into()),
            ),
            (
                "INSTANCE \"VI_1\" MASTER",
                ParseError::Line("INSTANCE \"VI_1\" MASTER".into()),
            ),
            (
                "INSTANCE \"VI_1\" MASTER 100 extra",
                ParseError::Line("INSTANCE \"VI_1\" MASTER 100 extra".into()),
            ),
            (
                "INSTANCE \"VI_1\" MASTER high",
                ParseError::Priority("high".into()),
            ),
            ("NODE \"VI_1\" MASTER 1", ParseError::Kind("NODE".into())),
            (
                "INSTANCE \"VI_1\" m@ster 1",
                ParseError::State("m@ster".into()),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_fifo_line(line), Err(want), "{line:?}");
        }
    }

    #[test]
    fn events_display_as_log_fields_and_round_trip_json() {
        let e = full(InstanceKind::Group, "G1", KeepalivedState::Fault, 7);
        assert_eq!(
            e.to_string(),
            "kind=GROUP instance=\"G1\" state=FAULT priority=7"
        );
        let bare = parse_notify_args(&["BACKUP"]).unwrap();
        assert_eq!(bare.to_string(), "state=BACKUP");
        let odd = full(
            InstanceKind::Instance,
            "VI\t\"1",
            KeepalivedState::Master,
            9,
        );
        assert_eq!(
            odd.to_string(),
            "kind=INSTANCE instance=\"VI\\t\\\"1\" state=MASTER priority=9",
            "control characters and quotes in a name are escaped"
        );
        for ev in [e, bare] {
            let json = serde_json::to_string(&ev).unwrap();
            assert_eq!(serde_json::from_str::<KeepalivedEvent>(&json).unwrap(), ev);
        }
        assert!(KeepalivedState::Fault.is_down() && KeepalivedState::Stop.is_down());
        assert!(!KeepalivedState::Backup.is_down() && !KeepalivedState::Master.is_down());
        assert!(KeepalivedState::Master.wants_vip() && !KeepalivedState::Backup.wants_vip());
    }
}
