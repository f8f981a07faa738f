//! The whole status snapshot: what the role machine knows ([`Status`], its fields at the top
//! level) and what the components' own tasks know that the pure core does not (the Libra
//! worker's Gearman links and last job, the HAProxy master and its configuration, bgpd's
//! prefixes and sessions, the notify FIFO, the log sinks). The daemon serializes it for
//! `status` over the control socket ([`crate::control`]), the client deserializes the same type;
//! anything else that reports on the daemon (metrics) can read it too. Times are relative to
//! when the snapshot was taken: `*_ago_s`, `*_in_s`, `*_since_s` seconds; durations in `ms`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::bgp::sessions::PeerSession;
use crate::logging::SinkReport;
use crate::supervisor::Status;

/// `keepserver status`: the role machine's snapshot and the components' facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The role machine's part: role, hooks, back-off, keepalived, the core's view of the
    /// components.
    #[serde(flatten)]
    pub core: Status,
    /// Config reloads taken since start.
    pub reloads: u64,
    /// The VIP watched.
    pub vip: String,
    /// The NIC it is watched on; null: any NIC.
    pub nic: Option<String>,
    /// Log lines lost since start, over every sink.
    pub log_lines_lost: u64,
    /// Every log sink: lines lost, and its error while it fails.
    pub log_sinks: Vec<SinkReport>,
    /// The Libra worker; null when `libra` is disabled.
    pub libra: Option<LibraView>,
    /// The HAProxy keepserver owns (the Libra worker's or the admin API's); null when none.
    pub haproxy: Option<HaproxyView>,
    /// The BGP announcer; null when `bgp` is disabled.
    pub bgp: Option<BgpView>,
    /// keepalived's notify FIFO; null when `keepstart.keepalived-fifo` is not set.
    pub fifo: Option<FifoView>,
}

/// The Libra worker's side of Gearman and its last job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraView {
    /// The Gearman function registered (`libra.queue`, by default `lbaas-HOSTNAME`).
    pub queue: String,
    /// Each job server and how many of its connections are up (all zero while the worker does
    /// not run).
    pub servers: Vec<GearmanServer>,
    /// Jobs run since the worker was configured (at start, or by a reload that changed
    /// `libra`).
    pub jobs: u64,
    /// The last job, once there was one.
    pub last_job: Option<JobView>,
}

/// One Gearman job server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GearmanServer {
    /// `host:port`.
    pub server: String,
    /// Connections up now (CAN_DO sent).
    pub connected: usize,
    /// Connections the worker keeps to it (`libra.concurrency`).
    pub connections: usize,
}

/// A finished Libra job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The job's action (`UPDATE`, `STATS`, ...), or `unreadable` for a message that could not
    /// be parsed.
    pub action: String,
    /// `PASS` or `FAIL`, as the reply said.
    pub result: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub ms: u64,
    /// Seconds since it ended.
    pub ago_s: f64,
}

/// The HAProxy keepserver owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HaproxyView {
    /// Its configuration file.
    pub config: PathBuf,
    /// The master's pid as last seen by the driver; null: not running.
    pub master_pid: Option<u32>,
    /// SHA-256 (hex) of the configuration file in place; null when there is none.
    pub config_sha256: Option<String>,
    /// Why the configuration file could not be read, when it could not.
    pub config_error: Option<String>,
    /// The last operation on it (an apply, reload, start, stop, ...), once there was one.
    pub last_operation: Option<OperationView>,
}

/// A finished HAProxy operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationView {
    /// What was done: `reload`, `runtime` (servers changed without a reload), `start`,
    /// `written` (file put in place, HAProxy not running), `stop`, `suspend`, `enable`,
    /// `delete`; `apply` for an apply that failed before it got that far.
    pub action: String,
    /// Why it failed; null when it worked.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub ms: u64,
    /// Seconds since it ended.
    pub ago_s: f64,
}

/// The BGP announcer and bgpd's sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgpView {
    /// The prefixes bgpd was last told to announce (empty: withdrawn); null until the first
    /// step succeeded.
    pub announced: Option<Vec<String>>,
    /// bgpd's sessions, asked when the snapshot was taken.
    pub peers: Vec<PeerSession>,
    /// Why `peers` is not known (bgpd down, vtysh too slow, ...); null when it is.
    pub peers_unknown: Option<String>,
}

/// keepalived's notify FIFO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FifoView {
    /// Its path.
    pub path: PathBuf,
    /// Whether it is open and read now (false while it is being reopened).
    pub open: bool,
    /// State changes read from it.
    pub events: u64,
    /// Lines skipped (not a state change, malformed or too long).
    pub skipped: u64,
    /// The last state change read, as the log shows it (`kind=INSTANCE instance="VI_1" ...`).
    pub last_event: Option<String>,
    /// Seconds since it was read.
    pub last_event_ago_s: Option<f64>,
    /// Why it could not be opened last, while it cannot.
    pub error: Option<String>,
}

/// A snapshot with every part filled in, for the tests of what reads it.
#[cfg(test)]
pub fn example() -> Snapshot {
    use std::time::Instant;

    use crate::supervisor::{Role, Settings, Supervisor};
    let text = "keepstart:\n  vip: 192.0.2.100\n  nic: eth0\n  start: s\n  stop: t\n";
    let file = std::path::Path::new("/etc/keepserver/config.yaml");
    let config = crate::config::parse(text, file).expect("valid").config;
    let now = Instant::now();
    let machine = Supervisor::new(Settings::of(&config), Role::Slave, now);
    Snapshot {
        core: machine.status(now, 7),
        reloads: 1,
        vip: "192.0.2.100".into(),
        nic: Some("eth0".into()),
        log_lines_lost: 0,
        log_sinks: vec![SinkReport {
            sink: "stream stderr".into(),
            lines_lost: 0,
            failing: None,
        }],
        libra: Some(LibraView {
            queue: "lbaas-node1".into(),
            servers: vec![GearmanServer {
                server: "127.0.0.1:4730".into(),
                connected: 2,
                connections: 2,
            }],
            jobs: 3,
            last_job: Some(JobView {
                action: "UPDATE".into(),
                result: "PASS".into(),
                error: None,
                ms: 120,
                ago_s: 2.0,
            }),
        }),
        haproxy: Some(HaproxyView {
            config: "/var/lib/keepserver/haproxy.cfg".into(),
            master_pid: Some(4242),
            config_sha256: Some("ab".repeat(32)),
            config_error: None,
            last_operation: Some(OperationView {
                action: "reload".into(),
                error: None,
                ms: 80,
                ago_s: 2.0,
            }),
        }),
        bgp: Some(BgpView {
            announced: Some(vec!["192.0.2.10/32".into()]),
            peers: vec![PeerSession {
                address: "198.51.100.2".into(),
                remote_as: Some(65000),
                state: "Established".into(),
                up_ms: Some(75_000),
                prefixes_sent: 1,
                prefixes_received: 0,
            }],
            peers_unknown: None,
        }),
        fifo: Some(FifoView {
            path: "/run/keepalived.fifo".into(),
            open: true,
            events: 4,
            skipped: 1,
            last_event: Some("kind=INSTANCE instance=\"VI_1\" state=MASTER priority=100".into()),
            last_event_ago_s: Some(1.25),
            error: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Answer, parse_answer};

    #[test]
    fn a_snapshot_reads_back_as_it_was_written_with_the_core_at_the_top() {
        let snapshot = example();
        let line = Answer::Status(Box::new(snapshot.clone())).to_line();
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(json["version"], crate::control::PROTOCOL);
        assert_eq!(json["role"], "SLAVE");
        assert_eq!(json["components"]["libra_worker"], "stopped");
        assert_eq!(json["bgp"]["peers"][0]["state"], "Established");
        let back: Snapshot =
            parse_answer(std::path::Path::new("/run/k.sock"), &line).expect("reads back");
        assert_eq!(back, snapshot);
    }
}
