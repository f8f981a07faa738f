//! The typed keepserver configuration: keepstart's config.yaml schema (unchanged, with its
//! defaults) plus keepserver's own keys, loaded once at the edge with every problem reported by
//! file, key, line and column.
//!
//! YAML is read with serde-saphyr: of the maintained serde YAML crates it is the one that gives
//! each value its line and column (`Spanned`), which lets us check every key and list every error,
//! not just the first, and warn about unknown keys with their line.

pub mod api;
pub mod bgp;
pub mod error;
pub(crate) mod fields;
pub mod host;
pub mod hysteresis;
pub mod libra;
pub mod locate;
pub mod metrics;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use serde_saphyr::Spanned;

pub use error::{ConfigError, KeyPositions, KeyProblem, Position, yaml_message};
use fields::{RawSection, SectionReader, boolean, cycles, position_of, seconds, text};

pub use api::Api;
pub use bgp::Bgp;
pub use hysteresis::Hysteresis;
pub use libra::{Endpoint, Libra, LibraHaproxy};

use crate::ifname::Ifname;
use crate::vip::Vip;

/// The `application` section: how the process runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Detach and run in the background (`application.daemon`, default false).
    pub daemon: bool,
    /// Working directory; relative paths are relative to it (default: the config file's directory).
    pub workspace: PathBuf,
    /// The pidfile, absolute (`application.pidfile`, default `server.pid` in the workspace).
    pub pidfile: PathBuf,
    /// The control socket, absolute (`application.control-socket`, default the pidfile with `.sock`).
    pub control_socket: PathBuf,
    /// Where a daemon's stdout and stderr go (`application.daemon-log`, default `keepserver.log`).
    pub daemon_log: PathBuf,
}

/// The `keepstart` section: what to watch and what to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Keepstart {
    /// The NIC to watch; `None` means any NIC.
    pub nic: Option<Ifname>,
    /// The VIP whose presence makes this node MASTER.
    pub vip: Vip,
    /// Shell command run when MASTER and not running.
    pub start: String,
    /// Shell command run when SLAVE and running.
    pub stop: String,
    /// Shell command whose exit status 0 means "running"; `None` trusts the tracked state.
    pub is_running: Option<String>,
    /// One cycle (`sleep`, default 2 s): the safety-net re-list period and the unit of the cycles below.
    pub cycle: Duration,
    /// Alive report every this many cycles (`running-report-cycle`, default 3600).
    pub report_cycle: u64,
    /// is-running every this many cycles (`force-test-cycle`, default 60).
    pub force_test_cycle: u64,
    /// A hook running longer than this is killed, whole process group (`hook-timeout`, default 30 s).
    pub hook_timeout: Duration,
    /// Run `stop` when keepserver itself exits while running (`stop-on-exit`, default false).
    pub stop_on_exit: bool,
    /// Longest wait between retries of a failing start or stop (`failure-backoff-max`, default 300 s).
    pub failure_backoff_max: Duration,
    /// `rise`, `fall` and `is-running-fall` (off by default).
    pub hysteresis: Hysteresis,
}

/// A whole, valid configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from, absolute.
    pub file: PathBuf,
    /// The `application` section.
    pub application: Application,
    /// The `keepstart` section.
    pub keepstart: Keepstart,
    /// The `libra` section: the embedded Libra worker.
    pub libra: Libra,
    /// `keepstart.keepalived-fifo`, absolute: keepalived's `notify_fifo`, created and read by
    /// keepserver. Kept beside [`Keepstart`] because the role machine does not need it.
    pub keepalived_fifo: Option<PathBuf>,
    /// The `bgp` section: the BGP announcer, `None` unless enabled.
    pub bgp: Option<Bgp>,
    /// The `bgp` section's settings besides the peering, enabled or not (for `/api/quagga`).
    pub bgp_defaults: bgp::BgpDefaults,
    /// The `api` section: the admin API, `None` when absent.
    pub api: Option<Api>,
    /// The `metrics` section: the Prometheus endpoint, `None` when absent.
    pub metrics: Option<metrics::Metrics>,
    /// The `logging` section as written, for the logging module to translate.
    pub logging: Option<Value>,
    /// Where each key was found in [`Config::file`].
    pub positions: KeyPositions,
}

/// A loaded config plus the warnings (unknown keys) found while reading it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Problems that were not fatal, e.g. unknown keys.
    pub warnings: Vec<KeyProblem>,
}

/// `keepstart.hook-timeout` when not given.
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = absolute_file(path);
    let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

/// The document as parsed: the two known sections with every key's position, the rest as-is.
#[derive(serde::Deserialize)]
struct RawDoc {
    application: Option<Spanned<RawSection>>,
    keepstart: Option<Spanned<RawSection>>,
    libra: Option<Spanned<RawSection>>,
    bgp: Option<Spanned<RawSection>>,
    api: Option<Spanned<RawSection>>,
    metrics: Option<Spanned<RawSection>>,
    logging: Option<Value>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// The nested sections, parsed again so their keys keep their own positions.
#[derive(serde::Deserialize, Default)]
struct NestedDoc {
    #[serde(default)]
    libra: Option<LibraNested>,
    #[serde(default)]
    api: Option<ApiNested>,
    #[serde(default)]
    metrics: Option<MetricsNested>,
}

#[derive(serde::Deserialize, Default)]
struct MetricsNested {
    auth: Option<Spanned<RawSection>>,
}

#[derive(serde::Deserialize, Default)]
struct ApiNested {
    auth: Option<Spanned<RawSection>>,
    tls: Option<Spanned<RawSection>>,
    haproxy: Option<Spanned<RawSection>>,
}

#[derive(serde::Deserialize, Default)]
struct LibraNested {
    haproxy: Option<Spanned<RawSection>>,
    diagnostics: Option<Spanned<RawSection>>,
    archive: Option<Spanned<RawSection>>,
}

/// A YAML error as [`ConfigError::Syntax`]: its position once, and its message.
fn syntax_error(file: &Path, e: &serde_saphyr::Error) -> ConfigError {
    ConfigError::Syntax {
        file: file.to_path_buf(),
        position: e.location().map(|l| Position {
            line: l.line(),
            column: l.column(),
        }),
        message: yaml_message(e),
    }
}

/// Parses config text; `file` is used for messages and to resolve relative paths.
pub fn parse(text: &str, file: &Path) -> Result<Loaded, ConfigError> {
    let doc: RawDoc = if text.trim().is_empty() {
        serde_saphyr::from_str("{}")
    } else {
        serde_saphyr::from_str(text)
    }
    .map_err(|e| syntax_error(file, &e))?;
    let mut problems = Vec::new();
    let mut warnings: Vec<KeyProblem> = doc
        .other
        .into_keys()
        .map(|key| KeyProblem {
            file: file.to_path_buf(),
            key,
            position: None,
            message: "unknown section, ignored".to_string(),
        })
        .collect();
    let config_dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut positions = KeyPositions::default();
    let (app_at, app_keys) = split(doc.application, "application", &mut positions);
    let mut app = SectionReader::new(file, "application", app_at, app_keys, &mut problems);
    let application = read_application(&mut app, &config_dir);
    warnings.extend(app.unknown_keys());
    let (ks_at, ks_keys) = split(doc.keepstart, "keepstart", &mut positions);
    let mut ks = SectionReader::new(file, "keepstart", ks_at, ks_keys, &mut problems);
    let keepstart = read_keepstart(&mut ks);
    let keepalived_fifo = ks
        .optional("keepalived-fifo", fields::text)
        .map(|p| application.workspace.join(p));
    warnings.extend(ks.unknown_keys());
    let libra = read_libra_sections(
        text,
        file,
        doc.libra,
        &application,
        &mut positions,
        &mut problems,
        &mut warnings,
    );
    let (bgp_at, bgp_keys) = split(doc.bgp, "bgp", &mut positions);
    let mut b = SectionReader::new(file, "bgp", bgp_at, bgp_keys, &mut problems);
    let (bgp, bgp_defaults) = bgp::read_bgp(&mut b, &application.workspace, keepstart.as_ref());
    warnings.extend(b.unknown_keys());
    let api = read_api_sections(
        text,
        file,
        doc.api,
        &application,
        &mut positions,
        &mut problems,
        &mut warnings,
    );
    let metrics = read_metrics_sections(
        text,
        file,
        doc.metrics,
        &application,
        &mut positions,
        &mut problems,
        &mut warnings,
    );
    if api.is_some() && libra.enabled {
        problems.push(
            positions.problem(
                file,
                "libra.enabled",
                "the admin API (`api`) and the Libra worker would both own haproxy.cfg: enable \
             one of them"
                    .to_string(),
            ),
        );
    }
    match keepstart {
        Some(keepstart) if problems.is_empty() => Ok(Loaded {
            config: Config {
                file: file.to_path_buf(),
                application,
                keepstart,
                libra,
                keepalived_fifo,
                bgp,
                bgp_defaults,
                api,
                metrics,
                logging: doc.logging.filter(|v| !v.is_null()),
                positions,
            },
            warnings,
        }),
        _ => {
            problems.sort_by_key(|p| p.position.map(|p| (p.line, p.column)));
            Err(ConfigError::Invalid { problems })
        }
    }
}

/// Reads `libra` and its sub-sections `haproxy`, `diagnostics` and `archive`.
fn read_libra_sections(
    text: &str,
    file: &Path,
    top: Option<Spanned<RawSection>>,
    application: &Application,
    positions: &mut KeyPositions,
    problems: &mut Vec<KeyProblem>,
    warnings: &mut Vec<KeyProblem>,
) -> Libra {
    let nested = nested(text, top.is_some(), |d| d.libra);
    let (at, keys) = split(top, "libra", positions);
    let (h_at, h_keys) = split(nested.haproxy, "libra.haproxy", positions);
    let (d_at, d_keys) = split(nested.diagnostics, "libra.diagnostics", positions);
    let (a_at, a_keys) = split(nested.archive, "libra.archive", positions);
    let mut h_problems = Vec::new();
    let mut d_problems = Vec::new();
    let mut a_problems = Vec::new();
    let mut haproxy = SectionReader::new(file, "libra.haproxy", h_at, h_keys, &mut h_problems);
    let mut diagnostics =
        SectionReader::new(file, "libra.diagnostics", d_at, d_keys, &mut d_problems);
    let mut archive = SectionReader::new(file, "libra.archive", a_at, a_keys, &mut a_problems);
    let mut r = SectionReader::new(file, "libra", at, keys, problems);
    let libra = libra::read_libra(
        &mut r,
        &mut haproxy,
        &mut diagnostics,
        &mut archive,
        &application.workspace,
    );
    warnings.extend(r.unknown_keys());
    warnings.extend(haproxy.unknown_keys());
    warnings.extend(diagnostics.unknown_keys());
    warnings.extend(archive.unknown_keys());
    problems.extend(h_problems);
    problems.extend(d_problems);
    problems.extend(a_problems);
    libra
}

/// Reads `api` and its sub-sections `auth`, `tls` and `haproxy`; `None` when `api` is absent.
fn read_api_sections(
    text: &str,
    file: &Path,
    top: Option<Spanned<RawSection>>,
    application: &Application,
    positions: &mut KeyPositions,
    problems: &mut Vec<KeyProblem>,
    warnings: &mut Vec<KeyProblem>,
) -> Option<Api> {
    let present = top.is_some();
    let nested = nested(text, present, |d| d.api);
    let (at, keys) = split(top, "api", positions);
    let (u_at, u_keys) = split(nested.auth, "api.auth", positions);
    let (t_at, t_keys) = split(nested.tls, "api.tls", positions);
    let (h_at, h_keys) = split(nested.haproxy, "api.haproxy", positions);
    let mut sub_problems = Vec::new();
    let mut auth = SectionReader::new(file, "api.auth", u_at, u_keys, &mut sub_problems);
    let mut t_problems = Vec::new();
    let mut tls = SectionReader::new(file, "api.tls", t_at, t_keys, &mut t_problems);
    let mut h_problems = Vec::new();
    let mut haproxy = SectionReader::new(file, "api.haproxy", h_at, h_keys, &mut h_problems);
    let mut r = SectionReader::new(file, "api", at, keys, problems);
    let api = api::read_api(
        &mut r,
        &mut auth,
        &mut tls,
        &mut haproxy,
        &application.workspace,
        present,
    );
    warnings.extend(r.unknown_keys());
    warnings.extend(auth.unknown_keys());
    warnings.extend(tls.unknown_keys());
    warnings.extend(haproxy.unknown_keys());
    problems.extend(sub_problems);
    problems.extend(t_problems);
    problems.extend(h_problems);
    api
}

/// Reads `metrics` and its sub-section `auth`; `None` when `metrics` is absent.
fn read_metrics_sections(
    text: &str,
    file: &Path,
    top: Option<Spanned<RawSection>>,
    application: &Application,
    positions: &mut KeyPositions,
    problems: &mut Vec<KeyProblem>,
    warnings: &mut Vec<KeyProblem>,
) -> Option<metrics::Metrics> {
    let present = top.is_some();
    let nested = nested(text, present, |d| d.metrics);
    let (at, keys) = split(top, "metrics", positions);
    let (u_at, u_keys) = split(nested.auth, "metrics.auth", positions);
    let mut sub_problems = Vec::new();
    let mut auth = SectionReader::new(file, "metrics.auth", u_at, u_keys, &mut sub_problems);
    let mut r = SectionReader::new(file, "metrics", at, keys, problems);
    let section = metrics::read_metrics(&mut r, &mut auth, &application.workspace, present);
    warnings.extend(r.unknown_keys());
    warnings.extend(auth.unknown_keys());
    problems.extend(sub_problems);
    section
}

/// The sub-sections of a section that is `present`, parsed again from `text` so their keys keep
/// their own positions, `pick`ed out of the document. Their shape errors were already reported
/// by the first parse, so a failure here only means there are no positions to add.
fn nested<T: Default>(text: &str, present: bool, pick: fn(NestedDoc) -> Option<T>) -> T {
    present
        .then(|| serde_saphyr::from_str::<NestedDoc>(text).ok())
        .flatten()
        .and_then(pick)
        .unwrap_or_default()
}

/// A section's position and keys, recording where each key's value is in `positions`.
fn split(
    section: Option<Spanned<RawSection>>,
    name: &str,
    positions: &mut KeyPositions,
) -> (Option<Position>, RawSection) {
    let Some(s) = section else {
        return (None, RawSection::new());
    };
    for (key, value) in &s.value {
        positions.insert(format!("{name}.{key}"), position_of(value));
    }
    (Some(position_of(&s)), s.value)
}

/// `path` made absolute (against the current directory) and normalized, as messages show it.
fn absolute_file(path: &Path) -> PathBuf {
    normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Drops `.` components so paths in messages read cleanly (`..` is kept: symlinks make folding
/// it lexically wrong).
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect()
}

fn read_application(r: &mut SectionReader<'_>, config_dir: &Path) -> Application {
    let daemon = r.optional("daemon", boolean).unwrap_or(false);
    let mut path = |key| r.optional(key, text).map(PathBuf::from);
    let given = locate::GivenPaths {
        workspace: path("workspace"),
        pidfile: path("pidfile"),
        control_socket: path("control-socket"),
        daemon_log: path("daemon-log"),
    };
    let paths = locate::resolve(config_dir, given);
    Application {
        daemon,
        workspace: paths.workspace,
        pidfile: paths.pidfile,
        control_socket: paths.control_socket,
        daemon_log: paths.daemon_log,
    }
}

fn read_keepstart(r: &mut SectionReader<'_>) -> Option<Keepstart> {
    let nic = r.optional("nic", |v| text(v)?.parse::<Ifname>());
    let vip = r.required(
        "vip",
        |v| text(v)?.parse::<Vip>().map_err(|e| e.to_string()),
        "an IPv4 or IPv6 address, bare or CIDR",
    );
    let start = r.required("start", text, "a shell command");
    let stop = r.required("stop", text, "a shell command");
    let is_running = r.optional("is-running", text);
    let cycle = r
        .optional("sleep", seconds)
        .unwrap_or(Duration::from_secs(2));
    let report_cycle = r.optional("running-report-cycle", cycles).unwrap_or(3600);
    let force_test_cycle = r.optional("force-test-cycle", cycles).unwrap_or(60);
    let hook_timeout = r
        .optional("hook-timeout", seconds)
        .unwrap_or(DEFAULT_HOOK_TIMEOUT);
    let stop_on_exit = r.optional("stop-on-exit", boolean).unwrap_or(false);
    let failure_backoff_max = r
        .optional("failure-backoff-max", seconds)
        .unwrap_or(Duration::from_secs(300));
    let hysteresis = hysteresis::read(r, is_running.is_some());
    Some(Keepstart {
        nic,
        vip: vip?,
        start: start?,
        stop: stop?,
        is_running,
        cycle,
        report_cycle,
        force_test_cycle,
        hook_timeout,
        stop_on_exit,
        failure_backoff_max,
        hysteresis,
    })
}

#[cfg(test)]
mod tests;
