//! keepserver's entry point: parses the command line, loads the config, and dispatches to the
//! daemon or to a command on the running daemon. Exit codes: 0 ok, 1 runtime failure, 2 usage or
//! config error, 3 not running, 4 the running daemon speaks another control protocol; `check`
//! exits as `haproxy -c` and `keepalived -t` do, 1 for a config error, and 5 when the config is
//! valid but an external checker refused a file the daemon would write. `stop`, `status` and
//! `notify` only need to find the running instance, so they work from a broken config too (see
//! [`config::locate`]).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use keepserver::cli::{Artifact, Cli, Command};
use keepserver::config::host::{self, Purpose};
use keepserver::config::locate::{self, Fallback, Located, Overrides};
use keepserver::config::{self, Config, ConfigError, Loaded};
use keepserver::control::{self, Answer, ControlError};
use keepserver::daemon::{self, Forked, Pidfile, Readiness};
use keepserver::dryrun::{self, Severity};
use keepserver::hooks::KILL_GRACE;
use keepserver::keepalived;
use keepserver::logging::{self, Translated};
use keepserver::runtime;
use keepserver::systemd;
use nix::sys::signal::Signal;

/// Exit status: the command failed at run time.
const EXIT_FAILURE: u8 = 1;
/// Exit status: bad usage or an invalid config file.
const EXIT_CONFIG: u8 = 2;
/// Exit status: no running instance.
const EXIT_NOT_RUNNING: u8 = 3;
/// Exit status: the running daemon speaks another control protocol (restart it).
const EXIT_PROTOCOL: u8 = 4;
/// Exit status of `check` for a config error (as `haproxy -c` and `keepalived -t` exit).
const EXIT_CHECK_CONFIG: u8 = 1;
/// Exit status of `check`: the config is valid, but an external checker (`haproxy -c`,
/// `vtysh --dryrun`, `frr-reload.py --test`) refused a file the daemon would write.
const EXIT_CHECK_FAILED: u8 = 5;

/// A failed command: what to print and the exit status.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl std::fmt::Display) -> Self {
        Failure {
            code,
            message: message.to_string(),
        }
    }

    /// A failed exchange on the control socket; another protocol has its own exit status.
    fn control(error: ControlError) -> Self {
        let code = match error {
            ControlError::Protocol { .. } => EXIT_PROTOCOL,
            _ => EXIT_FAILURE,
        };
        Failure::new(code, error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        workspace: cli.workspace,
        pidfile: cli.pidfile,
    };
    let path = &cli.config;
    let result = match cli.command {
        Command::Start => {
            // SAFETY: nothing has started a thread yet (clap does not).
            let systemd = unsafe { systemd::Env::take() };
            no_overrides(&overrides).and_then(|()| start(path, &systemd))
        }
        Command::Stop => stop(&find(path, &overrides)),
        Command::Reload => no_overrides(&overrides).and_then(|()| reload(path)),
        Command::Status { json } => status(&find(path, &overrides), json),
        Command::Check => no_overrides(&overrides).and_then(|()| check(path)),
        Command::Notify { args } => notify(path, &overrides, &args),
        Command::Generate { what, dir } => generate(what, &dir),
    };
    // The daemon's last lines are written by its sinks' threads: let them finish.
    logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("keepserver: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// `--workspace` and `--pidfile` only find a running instance; the commands that load the whole
/// config take those paths from it.
fn no_overrides(overrides: &Overrides) -> Result<(), Failure> {
    if overrides.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            EXIT_CONFIG,
            "--workspace and --pidfile are for stop, status and notify; start, check and reload \
             take them from the config file (application.workspace, application.pidfile)",
        ))
    }
}

/// Finds the running instance of the config at `path`; a broken config is said so on stderr,
/// with its first error and the pidfile used instead.
fn find(path: &Path, overrides: &Overrides) -> Located {
    let located = locate::locate(path, overrides);
    if let Some(broken) = &located.broken {
        let from = match broken.fallback {
            Fallback::Lenient => "the application keys that could be read",
            Fallback::Defaults => "the defaults beside it (it is not readable YAML)",
        };
        // The error last: it is the longest part.
        eprintln!(
            "keepserver: warning: config {} is broken, fix it before the next start or reload; \
             using pidfile {} from {from}. First error: {}",
            located.file.display(),
            located.paths.pidfile.display(),
            first_error(&broken.error),
        );
    }
    located
}

/// The first problem of `error`, and how many more there are.
fn first_error(error: &ConfigError) -> String {
    match error {
        ConfigError::Invalid { problems } if problems.len() > 1 => {
            format!("{}, and {} more", problems[0], problems.len() - 1)
        }
        other => other.to_string(),
    }
}

/// Loads the config and translates its logging section: everything `check` and `reload` vouch for.
fn validate(path: &Path) -> Result<(Loaded, Translated), Failure> {
    let loaded = config::load(path).map_err(|e| Failure::new(EXIT_CONFIG, e))?;
    let translated = logging::translate(
        loaded.config.logging.as_ref(),
        &runtime::logging_context(&loaded.config),
    )
    .map_err(|e| Failure::new(EXIT_CONFIG, e))?;
    Ok((loaded, translated))
}

/// Starts the daemon; `systemd` is what systemd passed in the environment (removed from it, so
/// hooks do not inherit it).
fn start(path: &Path, systemd: &systemd::Env) -> Result<(), Failure> {
    let (mut loaded, translated) = validate(path)?;
    // Nothing here refuses a start (a NIC may appear, a program be installed, later): the
    // findings go to the log with the other warnings.
    let report = host::host_problems(&loaded.config, Purpose::Start, host::nic_exists);
    loaded
        .warnings
        .extend(report.errors.into_iter().chain(report.warnings));
    let config = loaded.config;
    let app = &config.application;
    let (pidfile, taken_over) =
        Pidfile::acquire(&app.pidfile).map_err(|e| Failure::new(EXIT_FAILURE, e))?;
    let readiness = if app.daemon {
        match daemon::daemonize(&app.workspace, &app.daemon_log)
            .map_err(|e| Failure::new(EXIT_FAILURE, e))?
        {
            Forked::Parent(result) => return result.map_err(|e| Failure::new(EXIT_FAILURE, e)),
            Forked::Daemon(readiness) => readiness,
        }
    } else {
        std::env::set_current_dir(&app.workspace).map_err(|e| {
            Failure::new(
                EXIT_FAILURE,
                format!("cannot enter workspace {}: {e}", app.workspace.display()),
            )
        })?;
        Readiness::none()
    };
    let prepared = Prepared {
        config,
        pidfile,
        translated,
        warnings: loaded.warnings,
        taken_over,
    };
    prepared
        .run(readiness, systemd)
        .map_err(|e| Failure::new(EXIT_FAILURE, e))
}

/// A validated config and a locked pidfile, in the process that will run the daemon.
struct Prepared {
    config: Config,
    pidfile: Pidfile,
    translated: Translated,
    warnings: Vec<config::KeyProblem>,
    taken_over: Option<daemon::TakenOver>,
}

impl Prepared {
    /// Writes the pid, installs logging and runs until stopped.
    fn run(mut self, mut readiness: Readiness, systemd: &systemd::Env) -> Result<(), String> {
        let handle = match self
            .pidfile
            .write_pid(std::process::id())
            .map_err(|e| e.to_string())
            .and_then(|()| logging::install(self.translated).map_err(|e| e.to_string()))
        {
            Ok(handle) => handle,
            Err(e) => {
                readiness.failed(&e);
                return Err(e);
            }
        };
        for w in &self.warnings {
            log::warn!("{w}");
        }
        if let Some(t) = self.taken_over {
            log::warn!(
                "stale pidfile taken over pidfile={} old_pid={} old_pid_alive={}",
                self.config.application.pidfile.display(),
                t.pid,
                t.alive
            );
        }
        runtime::run(self.config, self.pidfile, readiness, handle, systemd)
            .map_err(|e| e.to_string())
    }
}

/// The pid of the instance holding `pidfile`, or exit 3 with a clear message naming the config
/// `file` to start it with.
fn running_pid(pidfile: &Path, file: &Path) -> Result<i32, Failure> {
    match daemon::running_pid(pidfile).map_err(|e| Failure::new(EXIT_FAILURE, e))? {
        Some(pid) => Ok(pid),
        None => Err(Failure::new(
            EXIT_NOT_RUNNING,
            format!(
                "not running (no instance holds {}); start it with `keepserver -c {} start`",
                pidfile.display(),
                file.display()
            ),
        )),
    }
}

fn stop(located: &Located) -> Result<(), Failure> {
    let pidfile = &located.paths.pidfile;
    let pid = running_pid(pidfile, &located.file)?;
    daemon::signal(pid, Signal::SIGTERM)
        .map_err(|e| Failure::new(EXIT_FAILURE, format!("cannot signal pid {pid}: {e}")))?;
    // It may be finishing a hook: allow the hook's timeout and kill grace, plus a margin.
    let limit = located.hook_timeout * 2 + KILL_GRACE + Duration::from_secs(5);
    let began = Instant::now();
    while began.elapsed() < limit {
        let holder = daemon::running_pid(pidfile).map_err(|e| Failure::new(EXIT_FAILURE, e))?;
        if holder != Some(pid) && !daemon::process_alive(pid) {
            println!("keepserver stopped (pid {pid})");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Failure::new(
        EXIT_FAILURE,
        format!(
            "pid {pid} did not exit within {:.0}s of SIGTERM; it may be stuck in a hook. \
             Check its log, then `kill -9 {pid}` if needed",
            limit.as_secs_f64()
        ),
    ))
}

fn reload(path: &Path) -> Result<(), Failure> {
    let (loaded, _) = validate(path)?;
    let config = loaded.config;
    let pid = running_pid(&config.application.pidfile, &config.file)?;
    let socket = &config.application.control_socket;
    let running = control::status(socket).ok();
    let before = running.as_ref().map(|s| s.reloads);
    // The NIC the daemon watches now; unknown (no answer) counts as a change of NIC.
    let running_nic = running
        .as_ref()
        .and_then(|s| s.nic.as_deref()?.parse().ok());
    let purpose = Purpose::Reload {
        running_nic: running_nic.as_ref(),
    };
    let host_warnings = host::host_problems(&config, purpose, |nic| {
        host::nic_exists_in_netns_of(pid, nic)
    })
    .into_result()
    .map_err(|e| {
        Failure::new(
            EXIT_CONFIG,
            format!("{e}\nreload refused: pid {pid} keeps its running configuration"),
        )
    })?;
    for w in loaded.warnings.iter().chain(&host_warnings) {
        eprintln!("keepserver: warning: {w}");
    }
    daemon::signal(pid, Signal::SIGHUP)
        .map_err(|e| Failure::new(EXIT_FAILURE, format!("cannot signal pid {pid}: {e}")))?;
    let Some(before) = before else {
        println!("reload signalled to pid {pid}");
        return Ok(());
    };
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(5) {
        let now = control::status(socket).ok().map(|s| s.reloads);
        if now.is_some_and(|n| n > before) {
            println!("reloaded pid {pid} from {}", config.file.display());
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Failure::new(
        EXIT_FAILURE,
        format!("pid {pid} did not confirm the reload within 5s; check its log"),
    ))
}

fn status(located: &Located, json: bool) -> Result<(), Failure> {
    running_pid(&located.paths.pidfile, &located.file)?;
    let snapshot = control::status(&located.paths.control_socket).map_err(Failure::control)?;
    if json {
        print!("{}", Answer::Status(Box::new(snapshot)).to_line());
    } else {
        print!("{}", keepserver::report::status_text(&snapshot));
    }
    Ok(())
}

/// Validates the config, checks it on this machine and dry-runs the files the daemon would
/// write; every problem is reported at once. Exit 1 if anything keepserver itself refuses,
/// else 5 if an external checker refused a file, else 0.
fn check(path: &Path) -> Result<(), Failure> {
    let loaded = config::load(path).map_err(|e| Failure::new(EXIT_CHECK_CONFIG, e))?;
    let config = &loaded.config;
    let mut errors: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    match logging::translate(config.logging.as_ref(), &runtime::logging_context(config)) {
        Ok(translated) => {
            warnings.extend(translated.warnings.iter().map(|w| format!("logging: {w}")))
        }
        Err(e) => errors.push(e.to_string()),
    }
    let report = host::host_problems(config, Purpose::Check, host::nic_exists);
    warnings.extend(report.warnings.iter().map(ToString::to_string));
    errors.extend(report.errors.iter().map(ToString::to_string));
    let findings = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(EXIT_FAILURE, format!("cannot start the dry run: {e}")))?
        .block_on(dryrun::run(config));
    let mut failed = Vec::new();
    let mut notes = Vec::new();
    for finding in findings {
        match finding.severity {
            Severity::Note => notes.push(finding.to_string()),
            Severity::Warning => warnings.push(finding.to_string()),
            Severity::Failed => failed.push(finding.to_string()),
            Severity::Error => errors.push(finding.to_string()),
        }
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    if !errors.is_empty() {
        errors.extend(failed);
        return Err(Failure::new(EXIT_CHECK_CONFIG, errors.join("\n")));
    }
    print!("{}", keepserver::report::plan_text(config));
    for note in &notes {
        println!("dry run: {note}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(EXIT_CHECK_FAILED, failed.join("\n")))
    }
}

/// Hands a keepalived notify to the running daemon and returns as soon as it is acknowledged:
/// keepalived does not wait for notify scripts, and neither does this wait for hooks.
fn notify(path: &Path, overrides: &Overrides, args: &[String]) -> Result<(), Failure> {
    let event = keepalived::parse_notify_args(args)
        .map_err(|e| Failure::new(EXIT_CONFIG, format!("notify: {e}")))?;
    let located = find(path, overrides);
    running_pid(&located.paths.pidfile, &located.file)?;
    let answer =
        control::notify(&located.paths.control_socket, event.clone()).map_err(|e| match e {
            ControlError::Refused(error) => Failure::new(
                EXIT_FAILURE,
                format!("the daemon refused the notify: {error}"),
            ),
            other => Failure::control(other),
        })?;
    println!("notify delivered: {event}; keepserver role {}", answer.role);
    Ok(())
}

/// Writes the man page or the completions for packaging, naming each file written.
fn generate(what: Artifact, dir: &Path) -> Result<(), Failure> {
    let written = keepserver::generate::write(what, dir).map_err(|e| {
        Failure::new(
            EXIT_FAILURE,
            format!("cannot write into {}: {e}", dir.display()),
        )
    })?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}
