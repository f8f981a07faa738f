//! systemd's service protocol (sd_notify(3)) for a `Type=notify` unit: READY=1 once the first
//! role is decided, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a reload, STOPPING=1
//! when shutting down, a STATUS= line with the role and the service's state whenever they
//! change, and WATCHDOG=1 at half of `WatchdogSec`.
//!
//! The environment systemd passes (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID) is read once at
//! start-up and removed, so hooks and the services they start do not inherit it ([`Env::take`]).
//! The datagrams are sent here rather than through the `sd-notify` crate: it reads NOTIFY_SOCKET
//! from the environment on every call (so it cannot be removed and still used) and does not
//! know abstract (`@`) socket names.
//!
//! The watchdog is the runtime loop's own: [`Systemd::watchdog_due`] is one of the loop's
//! deadlines and [`Systemd::keepalive`] is called on every turn of it, so a loop that is wedged
//! stops the pings and systemd restarts keepserver. What to send and when is decided by pure
//! functions ([`address`], [`watchdog_period`], [`datagram`], [`Condition::line`]); only
//! [`Notifier`] touches a socket.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use log::warn;

use crate::supervisor::components::show_duration;
use crate::supervisor::{HookKind, Role};

/// Why systemd's environment could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdError {
    /// NOTIFY_SOCKET is neither a path nor an abstract name.
    #[error(
        "NOTIFY_SOCKET={0:?} is neither an absolute path nor an abstract name (`@name`); \
         systemd is not notified"
    )]
    Socket(String),
    /// WATCHDOG_USEC or WATCHDOG_PID is not a number.
    #[error("{key}={value:?} is not a number; no watchdog pings are sent")]
    Watchdog {
        /// The variable.
        key: &'static str,
        /// Its value.
        value: String,
    },
}

/// What systemd put in the environment for keepserver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// NOTIFY_SOCKET: where to send notifications.
    pub notify_socket: Option<OsString>,
    /// WATCHDOG_USEC: the watchdog timeout, in microseconds.
    pub watchdog_usec: Option<OsString>,
    /// WATCHDOG_PID: the process the watchdog is meant for.
    pub watchdog_pid: Option<OsString>,
}

impl Env {
    const KEYS: [&'static str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

    /// Reads systemd's variables and removes them from the environment.
    ///
    /// # Safety
    ///
    /// Changes the environment: call it while no other thread runs (as [`std::env::remove_var`]
    /// requires), first thing in `main`.
    pub unsafe fn take() -> Env {
        let [notify_socket, watchdog_usec, watchdog_pid] = Self::KEYS.map(std::env::var_os);
        for key in Self::KEYS {
            // SAFETY: the caller guarantees that no other thread runs.
            unsafe { std::env::remove_var(key) };
        }
        Env {
            notify_socket,
            watchdog_usec,
            watchdog_pid,
        }
    }
}

/// Where NOTIFY_SOCKET points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A socket file.
    Path(PathBuf),
    /// A name in the abstract namespace (NOTIFY_SOCKET=`@name`), without the `@`.
    Abstract(Vec<u8>),
}

/// Reads NOTIFY_SOCKET as sd_notify(3) does: an absolute path, or `@` and an abstract name.
pub fn address(socket: &OsStr) -> Result<Address, SystemdError> {
    match socket.as_bytes() {
        [b'/', ..] => Ok(Address::Path(PathBuf::from(socket))),
        [b'@', name @ ..] if !name.is_empty() => Ok(Address::Abstract(name.to_vec())),
        _ => Err(SystemdError::Socket(socket.to_string_lossy().into_owned())),
    }
}

/// How often to ping the watchdog (half its timeout), from WATCHDOG_USEC and WATCHDOG_PID;
/// `None` without a watchdog, with a zero timeout, or when the watchdog is another process's.
pub fn watchdog_period(
    usec: Option<&OsStr>,
    pid: Option<&OsStr>,
    ours: u32,
) -> Result<Option<Duration>, SystemdError> {
    let number = |key: &'static str, value: &OsStr| {
        value
            .to_str()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| SystemdError::Watchdog {
                key,
                value: value.to_string_lossy().into_owned(),
            })
    };
    let Some(usec) = usec else {
        return Ok(None);
    };
    let usec = number("WATCHDOG_USEC", usec)?;
    if let Some(pid) = pid
        && number("WATCHDOG_PID", pid)? != u64::from(ours)
    {
        return Ok(None);
    }
    Ok((usec > 0).then(|| Duration::from_micros(usec) / 2))
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// READY=1: started, or done reloading.
    Ready,
    /// RELOADING=1 with the CLOCK_MONOTONIC time the reload began, in microseconds.
    Reloading {
        /// MONOTONIC_USEC.
        monotonic_usec: u64,
    },
    /// STOPPING=1.
    Stopping,
    /// STATUS=, one line.
    Status(String),
    /// WATCHDOG=1.
    Watchdog,
}

/// The datagram for `messages`: one `KEY=VALUE` line each.
pub fn datagram(messages: &[Message]) -> String {
    let mut text = String::new();
    for message in messages {
        let _ = match message {
            Message::Ready => writeln!(text, "READY=1"),
            Message::Reloading { monotonic_usec } => {
                writeln!(text, "RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")
            }
            Message::Stopping => writeln!(text, "STOPPING=1"),
            Message::Status(line) => writeln!(text, "STATUS={}", line.replace('\n', " ")),
            Message::Watchdog => writeln!(text, "WATCHDOG=1"),
        };
    }
    text
}

/// The service's state, as the STATUS= line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Running.
    Running,
    /// Not running.
    Stopped,
    /// Not known yet (is-running has not answered).
    Unknown,
    /// The start hook runs.
    Starting,
    /// The stop hook runs.
    Stopping,
}

impl Service {
    /// The state from the tracked running state and the hook in flight.
    pub fn of(running: Option<bool>, in_flight: Option<HookKind>) -> Service {
        match (in_flight, running) {
            (Some(HookKind::Start), _) => Service::Starting,
            (Some(HookKind::Stop), _) => Service::Stopping,
            (_, Some(true)) => Service::Running,
            (_, Some(false)) => Service::Stopped,
            (_, None) => Service::Unknown,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Service::Running => "running",
            Service::Stopped => "stopped",
            Service::Unknown => "state unknown",
            Service::Starting => "starting",
            Service::Stopping => "stopping",
        }
    }
}

/// What the STATUS= line tells: a new one is sent whenever this changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    /// The role.
    pub role: Role,
    /// The service.
    pub service: Service,
    /// Starts (on MASTER) or stops (on SLAVE) that failed in a row.
    pub failures: u32,
    /// keepserver is shutting down.
    pub leaving: bool,
}

impl Condition {
    /// The STATUS= line: `MASTER, service running`, or with a failing hook
    /// `MASTER, service stopped, start failing (2 in a row, retry in 4s)`; `retry_in` is the
    /// wait before the next try, while backing off.
    pub fn line(&self, retry_in: Option<Duration>) -> String {
        let mut line = format!("{}, service {}", self.role, self.service.as_str());
        if self.failures > 0 {
            let hook = match self.role {
                Role::Master => HookKind::Start,
                Role::Slave => HookKind::Stop,
            };
            let _ = write!(line, ", {hook} failing ({} in a row", self.failures);
            if let Some(wait) = retry_in {
                let _ = write!(line, ", retry in {}", show_duration(wait));
            }
            line.push(')');
        }
        if self.leaving {
            line.push_str(", keepserver shutting down");
        }
        line
    }
}

/// The socket notifications are sent on.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
}

impl Notifier {
    /// An unbound datagram socket that sends to `address`.
    pub fn new(address: &Address) -> io::Result<Notifier> {
        let to = match address {
            Address::Path(path) => SocketAddr::from_pathname(path)?,
            Address::Abstract(name) => SocketAddr::from_abstract_name(name)?,
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            to,
        })
    }

    /// Sends `messages` in one datagram (without waiting: a full queue is an error).
    pub fn send(&self, messages: &[Message]) -> io::Result<()> {
        let text = datagram(messages);
        self.socket.set_nonblocking(true)?;
        let sent = self.socket.send_to_addr(text.as_bytes(), &self.to)?;
        if sent == text.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "datagram cut short",
            ))
        }
    }
}

/// The CLOCK_MONOTONIC time now, in microseconds, as MONOTONIC_USEC wants it.
fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
        let micros = u64::try_from(t.tv_nsec() / 1000).unwrap_or(0);
        secs.saturating_mul(1_000_000).saturating_add(micros)
    })
}

/// What the runtime tells systemd, and when; everything is a no-op without NOTIFY_SOCKET.
#[derive(Debug, Default)]
pub struct Systemd {
    notifier: Option<Notifier>,
    /// Half the watchdog timeout.
    period: Option<Duration>,
    /// When the next WATCHDOG=1 is due (from READY=1 on).
    next_ping: Option<Instant>,
    /// The condition the last STATUS= line told.
    told: Option<Condition>,
    stopping: bool,
    /// The last send failed (said once, until one succeeds).
    failing: bool,
}

impl Systemd {
    /// Sets up notifications from what systemd passed; problems are logged and leave the
    /// notifications (or the watchdog) off.
    pub fn new(env: &Env) -> Systemd {
        let Some(socket) = env.notify_socket.as_deref() else {
            return Systemd::default();
        };
        let notifier = match address(socket).map(|a| Notifier::new(&a)) {
            Ok(Ok(notifier)) => notifier,
            Ok(Err(e)) => {
                warn!(
                    "cannot notify systemd socket={} error=\"{e}\"",
                    socket.display()
                );
                return Systemd::default();
            }
            Err(e) => {
                warn!("{e}");
                return Systemd::default();
            }
        };
        let period = watchdog_period(
            env.watchdog_usec.as_deref(),
            env.watchdog_pid.as_deref(),
            std::process::id(),
        )
        .unwrap_or_else(|e| {
            warn!("{e}");
            None
        });
        Systemd {
            notifier: Some(notifier),
            period,
            ..Systemd::default()
        }
    }

    /// Whether systemd is notified at all.
    pub fn enabled(&self) -> bool {
        self.notifier.is_some()
    }

    /// READY=1 with the first STATUS= line; starts the watchdog pings.
    pub fn ready(&mut self, condition: Condition, retry_in: Option<Duration>, now: Instant) {
        self.told = Some(condition);
        self.next_ping = self.period.map(|p| now + p);
        self.send(&[Message::Ready, Message::Status(condition.line(retry_in))]);
    }

    /// RELOADING=1 and MONOTONIC_USEC, before a reload.
    pub fn reloading(&mut self) {
        let monotonic_usec = monotonic_usec();
        self.send(&[Message::Reloading { monotonic_usec }]);
    }

    /// READY=1 after a reload, whether it was taken or refused.
    pub fn reloaded(&mut self) {
        self.send(&[Message::Ready]);
    }

    /// A new STATUS= line when `condition` differs from the last one told, and STOPPING=1 once
    /// shutting down has begun.
    pub fn update(&mut self, condition: Condition, retry_in: Option<Duration>) {
        if self.told == Some(condition) || self.told.is_none() {
            return;
        }
        self.told = Some(condition);
        let status = Message::Status(condition.line(retry_in));
        if condition.leaving && !self.stopping {
            self.stopping = true;
            self.send(&[Message::Stopping, status]);
        } else {
            self.send(&[status]);
        }
    }

    /// STOPPING=1, unless already said.
    pub fn stopping(&mut self) {
        if !self.stopping {
            self.stopping = true;
            self.send(&[Message::Stopping]);
        }
    }

    /// When the loop must wake to ping the watchdog.
    pub fn watchdog_due(&self) -> Option<Instant> {
        self.next_ping
    }

    /// WATCHDOG=1 when one is due at `now`.
    pub fn keepalive(&mut self, now: Instant) {
        let (Some(due), Some(period)) = (self.next_ping, self.period) else {
            return;
        };
        if now >= due {
            self.next_ping = Some(now + period);
            self.send(&[Message::Watchdog]);
        }
    }

    fn send(&mut self, messages: &[Message]) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        match notifier.send(messages) {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                warn!("cannot notify systemd error=\"{e}\"");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn notify_socket_is_a_path_or_an_abstract_name() {
        assert_eq!(
            address(OsStr::new("/run/systemd/notify")),
            Ok(Address::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            address(OsStr::new("@/org/freedesktop/systemd1/notify/123")),
            Ok(Address::Abstract(
                b"/org/freedesktop/systemd1/notify/123".to_vec()
            ))
        );
        for bad in ["", "@", "relative/notify", "vsock:2:1234"] {
            let e = address(OsStr::new(bad)).unwrap_err();
            assert_eq!(e, SystemdError::Socket(bad.to_string()));
        }
    }

    #[test]
    fn the_watchdog_is_pinged_at_half_its_timeout_when_it_is_ours() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_period(os("30000000"), None, 7), Ok(half));
        assert_eq!(watchdog_period(os("30000000"), os("7"), 7), Ok(half));
        assert_eq!(watchdog_period(os("30000000"), os("8"), 7), Ok(None));
        assert_eq!(watchdog_period(None, os("7"), 7), Ok(None));
        assert_eq!(watchdog_period(os("0"), None, 7), Ok(None));
        assert_eq!(
            watchdog_period(os("1"), None, 7),
            Ok(Some(Duration::from_nanos(500)))
        );
        assert_eq!(
            watchdog_period(os("30s"), None, 7),
            Err(SystemdError::Watchdog {
                key: "WATCHDOG_USEC",
                value: "30s".into()
            })
        );
        assert!(watchdog_period(os("30000000"), os("-1"), 7).is_err());
    }

    #[test]
    fn a_datagram_has_one_line_per_message() {
        let text = datagram(&[
            Message::Reloading {
                monotonic_usec: 123_456,
            },
            Message::Status("MASTER, service\nrunning".into()),
        ]);
        assert_eq!(
            text,
            "RELOADING=1\nMONOTONIC_USEC=123456\nSTATUS=MASTER, service running\n"
        );
        assert_eq!(
            datagram(&[Message::Ready, Message::Stopping, Message::Watchdog]),
            "READY=1\nSTOPPING=1\nWATCHDOG=1\n"
        );
    }

    #[test]
    fn the_status_line_tells_role_service_and_failures() {
        let condition = |role, service, failures, leaving| Condition {
            role,
            service,
            failures,
            leaving,
        };
        let master = condition(Role::Master, Service::Running, 0, false);
        assert_eq!(master.line(None), "MASTER, service running");
        let failing = condition(Role::Master, Service::Stopped, 2, false);
        assert_eq!(
            failing.line(Some(Duration::from_secs(4))),
            "MASTER, service stopped, start failing (2 in a row, retry in 4s)"
        );
        assert_eq!(
            failing.line(None),
            "MASTER, service stopped, start failing (2 in a row)"
        );
        let stop_failing = condition(Role::Slave, Service::Running, 1, false);
        assert_eq!(
            stop_failing.line(Some(Duration::from_millis(200))),
            "SLAVE, service running, stop failing (1 in a row, retry in 200ms)"
        );
        let leaving = condition(Role::Slave, Service::Unknown, 0, true);
        assert_eq!(
            leaving.line(None),
            "SLAVE, service state unknown, keepserver shutting down"
        );
    }

    #[test]
    fn a_hook_in_flight_says_what_the_service_is_becoming() {
        assert_eq!(
            Service::of(Some(false), Some(HookKind::Start)),
            Service::Starting
        );
        assert_eq!(
            Service::of(Some(true), Some(HookKind::Stop)),
            Service::Stopping
        );
        assert_eq!(
            Service::of(Some(true), Some(HookKind::IsRunning)),
            Service::Running
        );
        assert_eq!(Service::of(None, None), Service::Unknown);
        assert_eq!(Service::of(Some(false), None), Service::Stopped);
    }

    /// A listening socket in the abstract namespace, as systemd's own.
    fn listener() -> (UnixDatagram, OsString) {
        let name = format!(
            "keepserver-test-{}-{:?}",
            std::process::id(),
            Instant::now()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (socket, format!("@{name}").into())
    }

    fn received(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notifications_reach_an_abstract_socket_in_order() {
        let (socket, name) = listener();
        let env = Env {
            notify_socket: Some(name),
            watchdog_usec: Some("2000000".into()),
            watchdog_pid: None,
        };
        let mut systemd = Systemd::new(&env);
        assert!(systemd.enabled());
        let t0 = Instant::now();
        let slave = Condition {
            role: Role::Slave,
            service: Service::Stopped,
            failures: 0,
            leaving: false,
        };
        systemd.ready(slave, None, t0);
        assert_eq!(
            received(&socket),
            "READY=1\nSTATUS=SLAVE, service stopped\n"
        );
        assert_eq!(systemd.watchdog_due(), Some(t0 + Duration::from_secs(1)));
        systemd.keepalive(t0);
        systemd.update(slave, None);
        systemd.keepalive(t0 + Duration::from_secs(1));
        assert_eq!(received(&socket), "WATCHDOG=1\n");
        assert_eq!(systemd.watchdog_due(), Some(t0 + Duration::from_secs(2)));
        systemd.reloading();
        let reloading = received(&socket);
        let usec: u64 = reloading
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .and_then(|rest| rest.strip_suffix('\n'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a RELOADING datagram: {reloading:?}"));
        assert!(usec > 0);
        systemd.reloaded();
        assert_eq!(received(&socket), "READY=1\n");
        let leaving = Condition {
            leaving: true,
            ..slave
        };
        systemd.update(leaving, None);
        assert_eq!(
            received(&socket),
            "STOPPING=1\nSTATUS=SLAVE, service stopped, keepserver shutting down\n"
        );
        systemd.stopping();
        systemd.reloaded();
        assert_eq!(received(&socket), "READY=1\n", "STOPPING=1 is said once");
    }

    #[test]
    fn without_notify_socket_nothing_is_sent_and_no_watchdog_is_due() {
        let env = Env {
            watchdog_usec: Some("2000000".into()),
            ..Env::default()
        };
        let mut systemd = Systemd::new(&env);
        assert!(!systemd.enabled());
        let master = Condition {
            role: Role::Master,
            service: Service::Running,
            failures: 0,
            leaving: false,
        };
        systemd.ready(master, None, Instant::now());
        assert_eq!(systemd.watchdog_due(), None);
    }
}
