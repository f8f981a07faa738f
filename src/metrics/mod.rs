//! Prometheus metrics: the [`Metrics`] handle (one registry of every family, cloned cheaply
//! into the places that see the events), the text it is scraped as, the view of the core taken
//! after every input of the loop ([`CoreView`], turned into gauges at scrape time) and the
//! standard `process_*` metrics read from /proc at scrape time ([`process`]), and the
//! bookkeeping of the role-detection latency ([`detection`]). The endpoint that serves the text
//! is [`server`].
//!
//! Names follow Prometheus conventions: `keepserver_` prefix, counters end in `_total` (the
//! encoder appends it), durations are `_seconds`. The text is the Prometheus text format 0.0.4,
//! which `promtool check metrics` and every Prometheus server read.

pub mod detection;
pub mod process;
pub mod server;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use log::debug;

use crate::bgp::sessions;
use crate::config::Bgp;
use crate::supervisor::{HookKind, HookOutcome, Role};

/// The `Content-Type` of the text [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the hook duration buckets, in seconds (hooks run up to `hook-timeout`).
const HOOK_BUCKETS: [f64; 11] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Upper bounds of the role-detection latency buckets, in seconds.
const DETECTION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the Libra job duration buckets, in seconds.
const JOB_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type PeerLabels = [(&'static str, String); 1];
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Where the core stands, as the loop saw it after its last input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreView {
    /// The role acted on.
    pub role: Role,
    /// Role changes since start.
    pub transitions: u64,
    /// Failed starts or stops in a row.
    pub consecutive_failures: u32,
    /// When the next try of a failing hook is allowed, while backing off.
    pub retry_at: Option<Instant>,
}

/// The recording handle: cheap to clone, every clone records into the same registry.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    core: Arc<Mutex<Option<CoreView>>>,
    hook_runs: Family<Labels2, Counter>,
    hook_duration: Histograms<Labels1>,
    detection: Histogram,
    libra_jobs: Family<Labels2, Counter>,
    libra_duration: Histograms<Labels1>,
    gearman_connections: Gauge,
    haproxy_applies: Family<Labels1, Counter>,
    haproxy_rejected: Counter,
    bgp_prefixes: Gauge,
    /// The section the announcer drives, whose bgpd is asked for its sessions at scrape time.
    bgp: Mutex<Option<Bgp>>,
    bgp_sessions: Family<PeerLabels, Gauge>,
    bgp_session_queries_failed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family registered, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let core = Arc::new(Mutex::new(None));
        let hook_runs = Family::default();
        let hook_duration: Histograms<Labels1> =
            Family::new_with_constructor(|| Histogram::new(HOOK_BUCKETS));
        let detection = Histogram::new(DETECTION_BUCKETS);
        let libra_jobs = Family::default();
        let libra_duration: Histograms<Labels1> =
            Family::new_with_constructor(|| Histogram::new(JOB_BUCKETS));
        let gearman_connections = Gauge::default();
        let haproxy_applies = Family::default();
        let haproxy_rejected = Counter::default();
        let bgp_prefixes = Gauge::default();
        let bgp_sessions = Family::default();
        let bgp_session_queries_failed = Counter::default();
        registry.register(
            "keepserver_hook_runs",
            "Hooks run to an end, by kind (start, stop, is-running) and outcome",
            hook_runs.clone(),
        );
        registry.register(
            "keepserver_hook_duration_seconds",
            "How long hooks ran, by kind",
            hook_duration.clone(),
        );
        registry.register(
            "keepserver_role_detection_seconds",
            "From the netlink event that changed the VIP's presence to the start or stop hook \
             spawned for it",
            detection.clone(),
        );
        registry.register(
            "keepserver_libra_jobs",
            "Libra jobs answered, by action (INVALID: the job could not be read) and result \
             (PASS or FAIL)",
            libra_jobs.clone(),
        );
        registry.register(
            "keepserver_libra_job_duration_seconds",
            "How long Libra jobs took, by action",
            libra_duration.clone(),
        );
        registry.register(
            "keepserver_gearman_connections",
            "Connections of the Libra worker to Gearman job servers that are up",
            gearman_connections.clone(),
        );
        registry.register(
            "keepserver_haproxy_applies",
            "HAProxy configurations put in force, by how: reload, runtime (no reload), start, \
             or written (HAProxy not running)",
            haproxy_applies.clone(),
        );
        registry.register(
            "keepserver_haproxy_validation_failures",
            "HAProxy configurations `haproxy -c` rejected",
            haproxy_rejected.clone(),
        );
        registry.register(
            "keepserver_bgp_prefixes_announced",
            "Prefixes bgpd was last told to announce",
            bgp_prefixes.clone(),
        );
        registry.register(
            "keepserver_bgp_session_established",
            "Each BGP peer bgpd reports, by address: 1 while its session is Established, else 0 \
             (read from FRR at scrape time)",
            bgp_sessions.clone(),
        );
        registry.register(
            "keepserver_bgp_session_queries_failed",
            "Scrapes at which bgpd could not be asked for its sessions (the peers are then \
             left out)",
            bgp_session_queries_failed.clone(),
        );
        registry.register_collector(Box::new(CoreCollector(core.clone())));
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics(Arc::new(Inner {
            registry,
            core,
            hook_runs,
            hook_duration,
            detection,
            libra_jobs,
            libra_duration,
            gearman_connections,
            haproxy_applies,
            haproxy_rejected,
            bgp_prefixes,
            bgp: Mutex::new(None),
            bgp_sessions,
            bgp_session_queries_failed,
        }))
    }

    /// The whole registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String does not fail, and no family's encoding fails on its own.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.0.registry);
        text
    }

    /// The loop's view of the core after an input.
    pub fn core(&self, view: CoreView) {
        *self.0.core.lock().unwrap_or_else(PoisonError::into_inner) = Some(view);
    }

    /// A hook ended.
    pub fn hook(&self, kind: HookKind, outcome: &HookOutcome, duration: Duration) {
        self.0
            .hook_runs
            .get_or_create(&[("kind", kind.as_str()), ("outcome", outcome_label(outcome))])
            .inc();
        self.0
            .hook_duration
            .get_or_create(&[("kind", kind.as_str())])
            .observe(duration.as_secs_f64());
    }

    /// A start or stop hook was spawned `latency` after the netlink event that called for it.
    pub fn detection(&self, latency: Duration) {
        self.0.detection.observe(latency.as_secs_f64());
    }

    /// A Libra job was answered (`passed`: PASS) after `duration`.
    pub fn libra_job(&self, action: &'static str, passed: bool, duration: Duration) {
        let result = if passed { "PASS" } else { "FAIL" };
        self.0
            .libra_jobs
            .get_or_create(&[("action", action), ("result", result)])
            .inc();
        self.0
            .libra_duration
            .get_or_create(&[("action", action)])
            .observe(duration.as_secs_f64());
    }

    /// A connection to a Gearman job server came up (`true`) or went down.
    pub fn gearman_connection(&self, up: bool) {
        if up {
            self.0.gearman_connections.inc();
        } else {
            self.0.gearman_connections.dec();
        }
    }

    /// A HAProxy configuration was put in force this way (`reload`, `runtime`, `start`,
    /// `written`).
    pub fn haproxy_applied(&self, action: &'static str) {
        self.0
            .haproxy_applies
            .get_or_create(&[("action", action)])
            .inc();
    }

    /// `haproxy -c` rejected a configuration.
    pub fn haproxy_rejected(&self) {
        self.0.haproxy_rejected.inc();
    }

    /// The BGP section the announcer drives now (`None`: no announcer).
    pub fn bgp_section(&self, bgp: Option<&Bgp>) {
        let mut held = self.0.bgp.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref() != bgp {
            *held = bgp.cloned();
        }
    }

    /// Asks the announcer's bgpd for its sessions (see [`sessions::query`]) and sets one gauge
    /// per peer; run before each scrape is encoded.
    pub async fn refresh_bgp_sessions(&self) {
        let bgp = self
            .0
            .bgp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.0.bgp_sessions.clear();
        let Some(bgp) = bgp else { return };
        match sessions::query(&bgp).await {
            Ok(peers) => {
                for peer in peers {
                    let up = i64::from(peer.state == "Established");
                    self.0
                        .bgp_sessions
                        .get_or_create(&[("peer", peer.address)])
                        .set(up);
                }
            }
            Err(e) => {
                debug!("metrics: bgpd's sessions are not known: {e}");
                self.0.bgp_session_queries_failed.inc();
            }
        }
    }

    /// bgpd was told to announce this many prefixes.
    pub fn bgp_prefixes(&self, count: usize) {
        self.0
            .bgp_prefixes
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

/// The label of how a hook ended.
fn outcome_label(outcome: &HookOutcome) -> &'static str {
    match outcome {
        HookOutcome::Exited(0) => "success",
        HookOutcome::Exited(_) => "failure",
        HookOutcome::Signaled(_) => "signaled",
        HookOutcome::TimedOut => "timeout",
        HookOutcome::SpawnFailed(_) => "spawn_failed",
        HookOutcome::Unobserved => "unobserved",
    }
}

/// The role, transitions, backoff and lost log lines, read at scrape time.
#[derive(Debug)]
struct CoreCollector(Arc<Mutex<Option<CoreView>>>);

impl Collector for CoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let lost = ConstCounter::new(crate::logging::lost_lines());
        lost.encode(encoder.encode_descriptor(
            "keepserver_log_lines_lost",
            "Log lines dropped because a sink could not keep up or failed",
            None,
            lost.metric_type(),
        )?)?;
        let view = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(view) = view else {
            return Ok(());
        };
        let mut role = encoder.encode_descriptor(
            "keepserver_role",
            "1 for the role this node acts on, 0 for the other",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for r in [Role::Master, Role::Slave] {
            let labels = [("role", role_label(r))];
            ConstGauge::new(i64::from(r == view.role)).encode(role.encode_family(&labels)?)?;
        }
        let transitions = ConstCounter::new(view.transitions);
        transitions.encode(encoder.encode_descriptor(
            "keepserver_role_transitions",
            "Role changes since keepserver started",
            None,
            transitions.metric_type(),
        )?)?;
        let failures = ConstGauge::new(i64::from(view.consecutive_failures));
        failures.encode(encoder.encode_descriptor(
            "keepserver_backoff_consecutive_failures",
            "Failed starts or stops in a row (reset by a success or a role change)",
            None,
            failures.metric_type(),
        )?)?;
        let remaining = view.retry_at.map_or(0.0, |at| {
            at.saturating_duration_since(Instant::now()).as_secs_f64()
        });
        let remaining = ConstGauge::new(remaining);
        remaining.encode(encoder.encode_descriptor(
            "keepserver_backoff_retry_in_seconds",
            "Seconds until a failing start or stop may be tried again; 0 when not backing off",
            None,
            remaining.metric_type(),
        )?)?;
        Ok(())
    }
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Master => "master",
        Role::Slave => "slave",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    /// A family with labels shows once it has a series: each gets one here.
    fn recorded() -> Metrics {
        let metrics = Metrics::new();
        metrics.hook(HookKind::Start, &HookOutcome::Exited(0), Duration::ZERO);
        metrics.libra_job("STATS", false, Duration::ZERO);
        metrics.haproxy_applied("start");
        metrics
    }

    #[test]
    fn every_family_is_named_and_typed() {
        let text = recorded().encode();
        for (name, kind) in [
            ("keepserver_hook_runs_total", "counter"),
            ("keepserver_hook_duration_seconds", "histogram"),
            ("keepserver_role_detection_seconds", "histogram"),
            ("keepserver_libra_jobs_total", "counter"),
            ("keepserver_libra_job_duration_seconds", "histogram"),
            ("keepserver_gearman_connections", "gauge"),
            ("keepserver_haproxy_applies_total", "counter"),
            ("keepserver_haproxy_validation_failures_total", "counter"),
            ("keepserver_bgp_prefixes_announced", "gauge"),
            ("keepserver_log_lines_lost_total", "counter"),
            ("process_resident_memory_bytes", "gauge"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} {kind} missing in:\n{text}"
            );
        }
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn the_core_view_becomes_gauges() {
        let metrics = Metrics::new();
        assert!(!metrics.encode().contains("keepserver_role{"));
        metrics.core(CoreView {
            role: Role::Master,
            transitions: 3,
            consecutive_failures: 2,
            retry_at: Some(Instant::now() + Duration::from_secs(60)),
        });
        let text = metrics.encode();
        assert_eq!(sample(&text, "keepserver_role{role=\"master\"}"), Some("1"));
        assert_eq!(sample(&text, "keepserver_role{role=\"slave\"}"), Some("0"));
        assert_eq!(
            sample(&text, "keepserver_role_transitions_total"),
            Some("3")
        );
        assert_eq!(
            sample(&text, "keepserver_backoff_consecutive_failures"),
            Some("2")
        );
        let retry: f64 = sample(&text, "keepserver_backoff_retry_in_seconds")
            .and_then(|v| v.parse().ok())
            .expect("retry gauge");
        assert!(retry > 50.0 && retry <= 60.0, "{retry}");
    }

    #[test]
    fn recordings_move_their_series() {
        let metrics = Metrics::new();
        let other = metrics.clone();
        other.hook(
            HookKind::Start,
            &HookOutcome::Exited(0),
            Duration::from_millis(30),
        );
        other.hook(HookKind::Stop, &HookOutcome::Exited(1), Duration::ZERO);
        other.libra_job("UPDATE", true, Duration::from_millis(20));
        other.gearman_connection(true);
        other.gearman_connection(true);
        other.gearman_connection(false);
        other.haproxy_applied("reload");
        other.haproxy_rejected();
        other.bgp_prefixes(2);
        other.detection(Duration::from_millis(2));
        let text = metrics.encode();
        for (series, value) in [
            (
                "keepserver_hook_runs_total{kind=\"start\",outcome=\"success\"}",
                "1",
            ),
            (
                "keepserver_hook_runs_total{kind=\"stop\",outcome=\"failure\"}",
                "1",
            ),
            (
                "keepserver_hook_duration_seconds_bucket{kind=\"start\",le=\"0.05\"}",
                "1",
            ),
            (
                "keepserver_libra_jobs_total{action=\"UPDATE\",result=\"PASS\"}",
                "1",
            ),
            (
                "keepserver_libra_job_duration_seconds_count{action=\"UPDATE\"}",
                "1",
            ),
            ("keepserver_gearman_connections", "1"),
            ("keepserver_haproxy_applies_total{action=\"reload\"}", "1"),
            ("keepserver_haproxy_validation_failures_total", "1"),
            ("keepserver_bgp_prefixes_announced", "2"),
            ("keepserver_role_detection_seconds_count", "1"),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
        }
    }
}
