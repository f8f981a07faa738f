//! The HAProxy instance keepserver owns: its configuration file, its master-worker process and
//! the runtime files under its runtime directory (pidfile, stats socket, master CLI socket).
//!
//! A new configuration is checked with `haproxy -c` before it replaces the old one, put in place
//! atomically, and put in service by a master-CLI `reload` (the master re-executes, hands the
//! listening sockets to the new worker and soft-stops the old one: no connection is refused or
//! reset). Every operation returns only once HAProxy is in the state it asked for: a new worker
//! that answers and serves the configuration's frontends, or no master left. One operation runs
//! at a time. Files are written through [`crate::atomic_file`], off the runtime thread.
//!
//! An admin API change ([`Haproxy::update`]) that only adds, removes, re-weights, enables or
//! disables servers ([`runtime_changes`]) is made through the runtime API of the running
//! worker instead, with no reload: the commands are sent first and the worker's servers are
//! compared with the model (`show servers state`), so the change is served as soon as HAProxy
//! has taken it, and only then is the file checked and swapped, for the next start. A command
//! HAProxy refuses, or a disagreement, falls back to a hitless reload of the new file, and is
//! logged. HAProxy has parsed each changed server line itself by then (a runtime `add server`
//! takes the same server keywords as the file), so a file it then refuses is not expected; if
//! it happens, the file still in place is reloaded to undo the runtime change, and the refusal
//! is returned: the change was served for the few milliseconds of the check. The driver knows what the running worker
//! serves because it remembers the model of the file it put in place.
//!
//! The configuration file in place is always the last good one (one that passed `-c` and
//! served), so a HAProxy that dies is started again from it ([`Haproxy::ensure`]); a SUSPEND
//! is remembered in `<config>.suspended` so that neither that nor a keepserver restart
//! un-suspends it (ENABLE, UPDATE and DELETE do). The master's pid is published
//! ([`Haproxy::master`]) for the watcher that notices its death, and the last operation that did
//! something is kept for `status` ([`Haproxy::last_operation`]).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use nix::sys::signal::Signal;
use tokio::sync::{Mutex, watch};

pub use super::error::HaproxyError;
use super::error::summarize_output;
use super::master::{self, ProcTable};
use super::model::{Balancer, Name};
use super::peers_sync;
use super::process;
use super::render::{PING_SCRIPT, RuntimePaths, render};
use super::runtime_diff::{Command, RuntimeChange, runtime_changes};
use super::servers_state;
use crate::atomic_file::{self as files, with_suffix};
use crate::metrics::Metrics;
use crate::snapshot::OperationView;
use crate::supervisor::Target;
use crate::supervisor::components::show_duration;
use crate::tool::{self, ToolError};

/// The HAProxy binary used when the settings name none.
pub const DEFAULT_BINARY: &str = "haproxy";
/// How long `haproxy -c` may take (it resolves node hostnames).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `haproxy -W -D` may take to daemonize (it resolves node hostnames and binds).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a started or reloaded HAProxy may take to have a new worker serving.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a soft stop (SIGUSR1: stop listening, finish connections) may take.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a hard stop (SIGTERM) may take before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(3);
/// Longest wait before a reload for the stick tables' peers to finish their resync: HAProxy's
/// resync timeout (5 s) for the previous worker, and as long again for the remote peers.
const PEERS_SYNC_WAIT: Duration = Duration::from_secs(11);
/// How often the peers' state is asked for while waiting.
const PEERS_POLL: Duration = Duration::from_millis(50);
/// How long the master may take to die after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

const PIDFILE: &str = "haproxy.pid";
const STATS_SOCKET: &str = "haproxy.sock";
const MASTER_SOCKET: &str = "haproxy-master.sock";
const PING_CHECK: &str = "ping-check.sh";

/// Where the owned HAProxy's files are; from keepserver's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxySettings {
    /// The HAProxy binary (default [`DEFAULT_BINARY`], looked up in `PATH`).
    pub binary: PathBuf,
    /// The haproxy.cfg keepserver owns; `<config>.tmp` and `<config>-failed` sit beside it.
    pub config: PathBuf,
    /// Where the pidfile and the stats and master sockets live. Unix socket paths are limited
    /// to 107 bytes, and the master socket's path must not contain a comma.
    pub runtime_dir: PathBuf,
}

impl HaproxySettings {
    /// Settings with the default binary.
    pub fn new(config: impl Into<PathBuf>, runtime_dir: impl Into<PathBuf>) -> Self {
        HaproxySettings {
            binary: PathBuf::from(DEFAULT_BINARY),
            config: config.into(),
            runtime_dir: runtime_dir.into(),
        }
    }
}

/// How a configuration was put in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The running HAProxy took it through its runtime API, without a reload.
    Runtime,
    /// The running HAProxy was reloaded with it.
    Reloaded,
    /// HAProxy was started with it.
    Started,
    /// HAProxy does not run: the file waits for its next start.
    Written,
}

impl Applied {
    /// The word for it in logs and `status`.
    pub fn word(self) -> &'static str {
        match self {
            Applied::Runtime => "runtime",
            Applied::Reloaded => "reload",
            Applied::Started => "start",
            Applied::Written => "written",
        }
    }
}

/// The HAProxy instance keepserver owns. See the module documentation.
#[derive(Debug)]
pub struct Haproxy {
    settings: HaproxySettings,
    /// Held by every public operation, so they never interleave; holds the model the
    /// configuration file in place was rendered from, when this driver put it there (and a
    /// running worker serves exactly that file).
    operation: Mutex<Option<Balancer>>,
    /// The master's pid as last seen (`None`: not running, or stopped by us).
    master: watch::Sender<Option<u32>>,
    /// The last operation that did something, and when it ended, for `status`.
    last: std::sync::Mutex<Option<(OperationView, Instant)>>,
    metrics: Metrics,
}

impl Haproxy {
    /// The instance described by `settings`. Relative paths are made absolute now, since the
    /// daemonized master runs from `/`.
    pub fn new(settings: HaproxySettings) -> Self {
        let binary = if settings.binary.components().count() > 1 {
            absolute(&settings.binary)
        } else {
            settings.binary
        };
        Haproxy {
            settings: HaproxySettings {
                binary,
                config: absolute(&settings.config),
                runtime_dir: absolute(&settings.runtime_dir),
            },
            operation: Mutex::new(None),
            master: watch::Sender::new(None),
            last: std::sync::Mutex::new(None),
            metrics: Metrics::default(),
        }
    }

    /// The same instance, recording its reloads and rejected configurations into `metrics`.
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Haproxy { metrics, ..self }
    }

    /// The configuration file this instance serves.
    pub fn config_path(&self) -> &Path {
        &self.settings.config
    }

    /// The master's pid as last seen (`None`: not running, or stopped by us).
    pub fn master_seen(&self) -> Option<u32> {
        *self.master.borrow()
    }

    /// The last operation that did something (its `ago_s` as of `now`), once there was one.
    pub fn last_operation(&self, now: Instant) -> Option<OperationView> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref().map(|(op, at)| OperationView {
            ago_s: crate::supervisor::status::secs(now.saturating_duration_since(*at)),
            ..op.clone()
        })
    }

    /// Remembers that `action`, begun at `began`, ended with `result`.
    fn remember<T>(&self, action: &str, began: Instant, result: &Result<T, HaproxyError>) {
        let op = OperationView {
            action: action.to_string(),
            error: result.as_ref().err().map(ToString::to_string),
            ms: crate::supervisor::status::millis(began.elapsed()),
            ago_s: 0.0,
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((op, Instant::now()));
    }

    /// The master's pid as last seen, updated after every start, reload and stop: what the
    /// watcher that notices its death follows.
    pub fn master(&self) -> watch::Receiver<Option<u32>> {
        self.master.subscribe()
    }

    fn suspended_marker(&self) -> PathBuf {
        with_suffix(&self.settings.config, ".suspended")
    }

    /// The runtime files the rendered configuration names.
    pub fn paths(&self) -> RuntimePaths {
        RuntimePaths {
            stats_socket: self.settings.runtime_dir.join(STATS_SOCKET),
            pidfile: self.settings.runtime_dir.join(PIDFILE),
            ping_script: self.settings.runtime_dir.join(PING_CHECK),
        }
    }

    /// Whether there is a configuration to serve (applied and not deleted).
    pub fn has_config(&self) -> bool {
        self.settings.config.is_file()
    }

    /// Whether the owned HAProxy master runs.
    pub async fn is_running(&self) -> bool {
        let _operation = self.operation.lock().await;
        let pid = self.master_pid().await;
        self.master.send_replace(pid);
        pid.is_some()
    }

    /// Brings HAProxy to `target`: `Up` starts it from the kept (last good) configuration
    /// unless it runs, there is none, or it is suspended; `Down` stops it.
    /// A start that found HAProxy running, or nothing to serve, is not remembered as an
    /// operation.
    pub async fn ensure(&self, target: Target) -> Result<(), HaproxyError> {
        let began = Instant::now();
        match target {
            Target::Up => {
                let _operation = self.operation.lock().await;
                if self.suspended_marker().exists() || !self.has_config() {
                    return Ok(());
                }
                let before = self.master_seen();
                let result = self.start_unlocked().await;
                if result.is_err() || self.master_seen() != before {
                    self.remember("start", began, &result);
                }
                result
            }
            Target::Down => {
                let result = self.stop().await;
                self.remember("stop", began, &result);
                result
            }
        }
    }

    /// UPDATE: render `balancer`, write it to `<config>.tmp`, check it with `haproxy -c`, then
    /// move it over the configuration and reload HAProxy without dropping connections (or start
    /// it if it does not run). Returns once a worker with the new configuration serves.
    ///
    /// A configuration `-c` rejects is saved as `<config>-failed` and the old one keeps serving
    /// ([`HaproxyError::ConfigRejected`], with HAProxy's messages). One that passes `-c` but cannot
    /// be put in service (a port it cannot bind, ...) is saved there too and the previous file is
    /// put back ([`HaproxyError::NotApplied`]).
    pub async fn apply(&self, balancer: &Balancer) -> Result<(), HaproxyError> {
        self.put(balancer, true).await.map(drop)
    }

    /// Like [`Haproxy::apply`], but a HAProxy that does not run is not started: the checked file
    /// is only put in place for its next start (the admin API's changes, which do not decide
    /// whether HAProxy runs); and a change of servers only is made at run time, without a
    /// reload, when HAProxy can take it (see the module documentation).
    pub async fn update(&self, balancer: &Balancer) -> Result<Applied, HaproxyError> {
        self.put(balancer, false).await
    }

    async fn put(&self, balancer: &Balancer, start: bool) -> Result<Applied, HaproxyError> {
        let began = Instant::now();
        let result = self.put_locked(balancer, start).await;
        let action = result.as_ref().map_or("apply", |applied| applied.word());
        self.remember(action, began, &result);
        result
    }

    async fn put_locked(&self, balancer: &Balancer, start: bool) -> Result<Applied, HaproxyError> {
        let mut installed = self.operation.lock().await;
        let began = Instant::now();
        let paths = self.paths();
        let text = render(balancer, &paths);
        self.ensure_dirs().await?;
        if balancer.pings() {
            files::replace_with_mode(&paths.ping_script, PING_SCRIPT, 0o755).await?;
        }
        let running = self.running_master().await?;
        let previous = files::read_optional(&self.settings.config).await?;
        let plan = match (&running, installed.as_ref(), &previous) {
            (Some(_), Some(old), Some(_)) if !start => runtime_changes(old, balancer),
            _ => None,
        };
        let (activated, served) = match (&running, &plan, &previous) {
            (Some(table), Some(changes), Some(old_text)) => {
                let runtime = self.change_at_runtime(table, changes, balancer).await;
                let served = began.elapsed();
                if let Err(e) = &runtime {
                    warn!("haproxy runtime change failed, reloading instead: {e}");
                    // What the worker serves is not known now: nothing is made at run time
                    // again before the reload has put a known file in force.
                    *installed = None;
                }
                if let Err(e) = self.install(&text).await {
                    // The commands taken are undone by a reload of the file still in place.
                    return Err(self.undo_runtime(&mut installed, table, old_text, e).await);
                }
                match runtime {
                    Ok(()) => {
                        self.sync_installed().await;
                        self.master.send_replace(Some(table.master));
                        (Ok(Applied::Runtime), served)
                    }
                    Err(_) => {
                        let (reloaded, ()) =
                            tokio::join!(self.reload(table, &text), self.sync_installed());
                        (reloaded.map(|()| Applied::Reloaded), began.elapsed())
                    }
                }
            }
            _ => {
                self.install(&text).await?;
                let activation = async {
                    match &running {
                        Some(table) => self.reload(table, &text).await.map(|()| Applied::Reloaded),
                        None if start => self.launch(&text).await.map(|()| Applied::Started),
                        None => Ok(Applied::Written),
                    }
                };
                let (activated, ()) = tokio::join!(activation, self.sync_installed());
                (activated, began.elapsed())
            }
        };
        let applied = match activated {
            Ok(applied) => applied,
            Err(e) => {
                *installed = None;
                return Err(self.roll_back(previous.as_deref(), &text, e).await);
            }
        };
        *installed = Some(balancer.clone());
        // UPDATE serves again a load balancer that was suspended.
        files::remove(&self.suspended_marker()).await?;
        let action = applied.word();
        self.metrics.haproxy_applied(action);
        let commands = match (applied, &plan) {
            (Applied::Runtime, Some(changes)) => changes.iter().map(|c| c.commands().len()).sum(),
            _ => 0,
        };
        info!(
            "haproxy configuration applied action={action} commands={commands} ms={} \
             served_ms={}",
            began.elapsed().as_millis(),
            served.as_millis()
        );
        Ok(applied)
    }

    /// The running worker took runtime changes whose file could not be put in place for the
    /// next start (`error`, e.g. `haproxy -c` refused it): reloads the file still in place,
    /// `old_text`, so that HAProxy serves what the file says again, and returns `error`. If that
    /// reload fails too, what HAProxy serves is not known and the next change reloads.
    async fn undo_runtime(
        &self,
        installed: &mut Option<Balancer>,
        table: &ProcTable,
        old_text: &str,
        error: HaproxyError,
    ) -> HaproxyError {
        warn!("haproxy runtime change undone by a reload of the previous configuration: {error}");
        if let Err(e) = self.reload(table, old_text).await {
            error!("haproxy runtime change could not be undone: {e}");
            *installed = None;
        }
        error
    }

    /// Sends every command of `changes` to the one current worker, each of which must answer
    /// that it worked, then compares the servers of every backend changed with `balancer`.
    async fn change_at_runtime(
        &self,
        table: &ProcTable,
        changes: &[RuntimeChange],
        balancer: &Balancer,
    ) -> Result<(), HaproxyError> {
        let [worker] = table.workers[..] else {
            return Err(HaproxyError::BadAnswer {
                command: "show proc".into(),
                reason: format!("{} current workers, not one", table.workers.len()),
            });
        };
        let socket = self.master_socket();
        for command in changes.iter().flat_map(RuntimeChange::commands) {
            let answer = master::worker_command(&socket, worker, command.line()).await?;
            if !command.succeeded(&answer) {
                return Err(HaproxyError::BadAnswer {
                    command: command.line().to_owned(),
                    reason: summarize_output(&answer),
                });
            }
        }
        let changed: BTreeSet<&Name> = changes.iter().map(RuntimeChange::backend).collect();
        for pool in balancer
            .pools()
            .iter()
            .filter(|p| changed.contains(&p.name))
        {
            let command = Command::servers_state(&pool.name).line().to_owned();
            let answer = master::worker_command(&socket, worker, &command).await?;
            let servers =
                servers_state::parse(&answer).map_err(|reason| HaproxyError::BadAnswer {
                    command: command.clone(),
                    reason,
                })?;
            if let Some(reason) = servers_state::disagreement(pool, &servers) {
                return Err(HaproxyError::BadAnswer {
                    command,
                    reason: format!(
                        "the running servers disagree with the configuration: {reason}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// SUSPEND: stop serving (see [`Haproxy::stop`]) and keep the configuration; remembered in
    /// `<config>.suspended` (written first: if it cannot be, HAProxy is not stopped).
    pub async fn suspend(&self) -> Result<(), HaproxyError> {
        let began = Instant::now();
        let _operation = self.operation.lock().await;
        let result = async {
            files::replace(&self.suspended_marker(), "suspended by a Libra SUSPEND\n").await?;
            self.stop_master().await
        }
        .await;
        self.remember("suspend", began, &result);
        result
    }

    /// ENABLE: serve the kept configuration again (see [`Haproxy::start`]); an error if there is
    /// none.
    pub async fn enable(&self) -> Result<(), HaproxyError> {
        let began = Instant::now();
        let _operation = self.operation.lock().await;
        let result = async {
            self.start_unlocked().await?;
            Ok(files::remove(&self.suspended_marker()).await?)
        }
        .await;
        self.remember("enable", began, &result);
        result
    }

    /// DELETE: stop HAProxy and remove its configuration (and `<config>-failed`, the
    /// suspension). Idempotent.
    pub async fn delete(&self) -> Result<(), HaproxyError> {
        let began = Instant::now();
        let mut installed = self.operation.lock().await;
        *installed = None;
        let result = async {
            self.stop_master().await?;
            for suffix in ["", ".tmp", "-failed", ".suspended"] {
                files::remove(&with_suffix(&self.settings.config, suffix)).await?;
            }
            info!("haproxy configuration deleted");
            Ok(())
        }
        .await;
        self.remember("delete", began, &result);
        result
    }

    /// Starts HAProxy from the kept configuration, unless it runs already; returns once its
    /// worker serves. [`HaproxyError::NoConfig`] if there is no configuration.
    pub async fn start(&self) -> Result<(), HaproxyError> {
        let _operation = self.operation.lock().await;
        self.start_unlocked().await
    }

    async fn start_unlocked(&self) -> Result<(), HaproxyError> {
        if let Some(table) = self.running_master().await? {
            self.master.send_replace(Some(table.master));
            return Ok(());
        }
        let text = files::read_optional(&self.settings.config)
            .await?
            .ok_or_else(|| HaproxyError::NoConfig {
                config: self.settings.config.clone(),
            })?;
        self.ensure_dirs().await?;
        self.launch(&text).await
    }

    /// Stops HAProxy, gracefully: SIGUSR1 to the master (workers stop listening at once and
    /// finish their connections), SIGTERM after [`STOP_GRACE`], SIGKILL after [`TERM_GRACE`].
    /// Returns once the master is gone. Stopping a stopped HAProxy is fine.
    pub async fn stop(&self) -> Result<(), HaproxyError> {
        let _operation = self.operation.lock().await;
        self.stop_master().await
    }

    /// Creates the runtime directory and the configuration's directory if missing.
    async fn ensure_dirs(&self) -> Result<(), HaproxyError> {
        files::ensure_dir(&self.settings.runtime_dir).await?;
        if let Some(dir) = self.settings.config.parent() {
            files::ensure_dir(dir).await?;
        }
        Ok(())
    }

    fn master_socket(&self) -> PathBuf {
        self.settings.runtime_dir.join(MASTER_SOCKET)
    }

    /// Writes `text` beside the configuration, checks it, and moves it into place.
    async fn install(&self, text: &str) -> Result<(), HaproxyError> {
        let config = &self.settings.config;
        let tmp = with_suffix(config, ".tmp");
        files::write_unsynced(&tmp, text).await?;
        // The check reads the file while it is fsynced for the rename.
        let (checked, synced) = tokio::join!(self.check(&tmp), files::sync(&tmp));
        let checked = match synced.map_err(HaproxyError::from).and(checked) {
            Ok(checked) => checked,
            Err(e) => {
                let _ = files::remove(&tmp).await;
                return Err(e);
            }
        };
        if let Err(output) = checked {
            self.metrics.haproxy_rejected();
            let saved = with_suffix(config, "-failed");
            files::rename(&tmp, &saved).await?;
            let tmp_name = tmp.to_string_lossy();
            let output = output.replace(tmp_name.as_ref(), &saved.to_string_lossy());
            return Err(HaproxyError::ConfigRejected { saved, output });
        }
        Ok(files::rename_unsynced(&tmp, config).await?)
    }

    /// Fsyncs the configuration's directory after [`Haproxy::install`] (run while the file is
    /// put in service, which does not wait for the disk). The file in place is right whatever
    /// happens: a failure only means that a crash now could leave the previous one, so it is
    /// logged, not returned.
    async fn sync_installed(&self) {
        if let Err(e) = files::sync_dir_of(&self.settings.config).await {
            warn!("haproxy configuration in place, but not yet safe from a crash: {e}");
        }
    }

    /// `haproxy -c -f <path>`: `Ok(Err(messages))` when HAProxy rejects the file.
    async fn check(&self, path: &Path) -> Result<Result<(), String>, HaproxyError> {
        let args = [OsStr::new("-c"), OsStr::new("-f"), path.as_os_str()];
        let output = self.run(&args, CHECK_TIMEOUT, "haproxy -c").await?;
        let messages = summarize_output(&combined(&output));
        if !output.status.success() {
            return Ok(Err(messages));
        }
        if messages.contains("[WARNING]") {
            warn!("haproxy -c accepted the configuration with warnings: {messages}");
        }
        Ok(Ok(()))
    }

    /// Starts the master-worker daemon on the configuration file, whose text is `text`, and
    /// waits for its worker to serve.
    async fn launch(&self, text: &str) -> Result<(), HaproxyError> {
        let mut master_cli = OsString::from(self.master_socket().as_os_str());
        master_cli.push(",mode,600");
        let args = [
            OsStr::new("-W"),
            OsStr::new("-D"),
            OsStr::new("-f"),
            self.settings.config.as_os_str(),
            OsStr::new("-S"),
            master_cli.as_os_str(),
        ];
        let output = self.run(&args, START_TIMEOUT, "haproxy -W -D").await?;
        if !output.status.success() {
            return Err(HaproxyError::StartFailed {
                output: summarize_output(&combined(&output)),
            });
        }
        let socket = self.master_socket();
        let serving = async {
            let worker = master::wait_first_worker(&socket, READY_TIMEOUT).await?;
            self.confirm_serving(worker, text).await
        };
        if let Err(e) = serving.await {
            // Do not leave a half-started HAProxy behind a configuration that is rolled back.
            if let Err(stop) = self.stop_master().await {
                error!("haproxy could not be stopped after a failed start: {stop}");
            }
            return Err(e);
        }
        let pid = self.master_pid().await;
        self.master.send_replace(pid);
        info!(
            "haproxy started master={}",
            pid.map_or_else(|| "unknown".to_string(), |p| p.to_string())
        );
        Ok(())
    }

    /// Reloads the running master (`before` is its state) and waits for the new worker.
    async fn reload(&self, before: &ProcTable, text: &str) -> Result<(), HaproxyError> {
        let socket = self.master_socket();
        self.wait_peers_synced(before).await;
        master::request_reload(&socket).await?;
        let worker = master::wait_reloaded(&socket, before, READY_TIMEOUT).await?;
        self.confirm_serving(worker, text).await?;
        self.master.send_replace(Some(before.master));
        let replaced: Vec<String> = before.workers.iter().map(ToString::to_string).collect();
        info!(
            "haproxy reloaded master={} worker={worker} replaced={}",
            before.master,
            replaced.join(",")
        );
        Ok(())
    }

    /// Waits, up to [`PEERS_SYNC_WAIT`], for the current workers' `peers` sections to finish
    /// their resync, so that the worker the reload starts is handed the stick tables (see
    /// [`peers_sync`]). A worker that cannot say is not waited for; a wait that runs out is
    /// logged and the reload goes ahead (its tables may start empty).
    async fn wait_peers_synced(&self, table: &ProcTable) {
        let socket = self.master_socket();
        let began = Instant::now();
        for &worker in &table.workers {
            loop {
                let answer = master::worker_command(&socket, worker, "show peers").await;
                let pending = match answer.map(|a| peers_sync::unsynced(&a)) {
                    Ok(Ok(pending)) => pending,
                    Ok(Err(reason)) => {
                        warn!("haproxy worker {worker}: cannot read its peers' state: {reason}");
                        break;
                    }
                    Err(e) => {
                        warn!("haproxy worker {worker}: cannot ask for its peers' state: {e}");
                        break;
                    }
                };
                if pending.is_empty() {
                    break;
                }
                if began.elapsed() >= PEERS_SYNC_WAIT {
                    warn!(
                        "haproxy reloading before the peers section(s) {} of worker {worker} \
                         finished their resync: the new worker's stick tables may start empty",
                        pending.join(",")
                    );
                    return;
                }
                tokio::time::sleep(PEERS_POLL).await;
            }
        }
        let waited = began.elapsed();
        if waited >= PEERS_POLL {
            info!(
                "haproxy reload waited {} for the stick tables' peers to be in sync",
                show_duration(waited)
            );
        }
    }

    /// Waits for `worker` to answer and checks it serves the frontends `text` declares.
    async fn confirm_serving(&self, worker: u32, text: &str) -> Result<(), HaproxyError> {
        let found = master::wait_serving(&self.master_socket(), worker, READY_TIMEOUT).await?;
        let expected = declared_frontends(text);
        if found != expected {
            return Err(HaproxyError::WrongFrontends {
                expected: joined(&expected),
                found: joined(&found),
            });
        }
        Ok(())
    }

    /// After a failed activation of `text`: save it as `<config>-failed`, put `previous` back
    /// (or remove the file if there was none), and wrap `error` to say so.
    async fn roll_back(
        &self,
        previous: Option<&str>,
        text: &str,
        error: HaproxyError,
    ) -> HaproxyError {
        let config = &self.settings.config;
        let saved = with_suffix(config, "-failed");
        let restored = async {
            files::replace(&saved, text).await?;
            match previous {
                Some(old) => files::replace(config, old).await,
                None => files::remove(config).await,
            }
        };
        if let Err(e) = restored.await {
            error!("haproxy configuration could not be rolled back: {e}");
        }
        HaproxyError::NotApplied {
            source: Box::new(pointing_at(error, config, &saved)),
            saved,
        }
    }

    /// Stops the master (see [`Haproxy::stop`]) and removes the pidfile.
    async fn stop_master(&self) -> Result<(), HaproxyError> {
        // Not running from now on, as far as the death watcher is concerned: this is no crash.
        self.master.send_replace(None);
        let (pid, workers) = match master::proc_table(&self.master_socket()).await {
            Ok(Some(table)) => (table.master, table.all_workers()),
            _ => match self.pidfile_master() {
                Some(pid) => (pid, BTreeSet::new()),
                None => return Ok(files::remove(&self.paths().pidfile).await?),
            },
        };
        for (signal, grace) in [(Signal::SIGUSR1, STOP_GRACE), (Signal::SIGTERM, TERM_GRACE)] {
            process::send(pid, signal)?;
            if process::wait_gone(pid, grace).await {
                info!("haproxy stopped master={pid} signal={}", signal.as_str());
                return Ok(files::remove(&self.paths().pidfile).await?);
            }
            warn!(
                "haproxy master={pid} still runs {}s after {}",
                grace.as_secs(),
                signal.as_str()
            );
        }
        self.kill(pid, &workers).await
    }

    /// SIGKILL to the master and to those of `workers` that still run this configuration.
    async fn kill(&self, pid: u32, workers: &BTreeSet<u32>) -> Result<(), HaproxyError> {
        process::send(pid, Signal::SIGKILL)?;
        for worker in workers {
            if process::runs_with(*worker, &self.settings.config) {
                process::send(*worker, Signal::SIGKILL)?;
            }
        }
        if !process::wait_gone(pid, KILL_GRACE).await {
            return Err(HaproxyError::StopFailed { pid });
        }
        Ok(files::remove(&self.paths().pidfile).await?)
    }

    /// The running master: from its CLI, or an error if a master of this configuration runs
    /// (per the pidfile) but its CLI does not answer.
    async fn running_master(&self) -> Result<Option<ProcTable>, HaproxyError> {
        let socket = self.master_socket();
        if let Some(table) = master::proc_table(&socket).await? {
            return Ok(Some(table));
        }
        match self.pidfile_master() {
            None => Ok(None),
            Some(pid) => Err(HaproxyError::Socket {
                socket,
                command: "show proc".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    format!("the master (pid {pid}) runs but its master CLI does not answer"),
                ),
            }),
        }
    }

    /// The master's pid from its CLI, else from the pidfile.
    async fn master_pid(&self) -> Option<u32> {
        match master::proc_table(&self.master_socket()).await {
            Ok(Some(table)) => Some(table.master),
            _ => self.pidfile_master(),
        }
    }

    /// The pid in the pidfile, if that process is alive and runs this configuration.
    fn pidfile_master(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.paths().pidfile).ok()?;
        let pid = text.trim().parse().ok()?;
        process::runs_with(pid, &self.settings.config).then_some(pid)
    }

    /// Runs the binary with `args` to its end (killed after `within`).
    async fn run(
        &self,
        args: &[&OsStr],
        within: Duration,
        what: &str,
    ) -> Result<Output, HaproxyError> {
        tool::output(&self.settings.binary, args, within)
            .await
            .map_err(|e| match e {
                ToolError::Spawn(source) => HaproxyError::Spawn {
                    binary: self.settings.binary.clone(),
                    source,
                },
                ToolError::Timeout => HaproxyError::Timeout {
                    what: format!("{what} finishing"),
                    after: within,
                },
                ToolError::Read(source) => {
                    HaproxyError::io(format!("read the output of {what}"))(source)
                }
            })
    }
}

/// `error` with HAProxy's references to file `from` (`[haproxy.cfg:21]`) pointing at `to`, where
/// the file it complained about now is.
fn pointing_at(error: HaproxyError, from: &Path, to: &Path) -> HaproxyError {
    match error {
        HaproxyError::StartFailed { output } => HaproxyError::StartFailed {
            output: output.replace(from.to_string_lossy().as_ref(), &to.to_string_lossy()),
        },
        other => other,
    }
}

/// The names of the frontends a configuration declares.
/// The frontends `text` declares that a worker serves: all but the `disabled` ones (HAProxy
/// leaves those out of its stats).
fn declared_frontends(text: &str) -> BTreeSet<String> {
    let mut serving = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let word = line.trim();
        if !line.starts_with(char::is_whitespace) && !word.is_empty() {
            if let Some(name) = current.take() {
                serving.insert(name);
            }
            current = word.strip_prefix("frontend ").map(|n| n.trim().to_owned());
        } else if word == "disabled" {
            current = None;
        }
    }
    serving.extend(current);
    serving
}

fn joined(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// A command's stderr and stdout, for messages.
fn combined(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontends_are_read_from_the_configuration() {
        let text = "global\n    master-worker\n\nfrontend http-in\n    mode http\n\
                    backend http-servers\nfrontend tcp-in\n";
        assert_eq!(
            declared_frontends(text),
            BTreeSet::from(["http-in".to_owned(), "tcp-in".to_owned()])
        );
        let text = "frontend off\n    mode http\n    disabled\n\nfrontend on\n    mode tcp\n\
                    backend b\n    disabled\n";
        assert_eq!(declared_frontends(text), BTreeSet::from(["on".to_owned()]));
    }

    #[test]
    fn start_failures_point_at_the_saved_file() {
        let error = HaproxyError::StartFailed {
            output: "[ALERT] Binding [/etc/lb.cfg:21] for frontend http-in: cannot bind".into(),
        };
        let moved = pointing_at(
            error,
            Path::new("/etc/lb.cfg"),
            Path::new("/etc/lb.cfg-failed"),
        );
        assert_eq!(
            moved.to_string(),
            "haproxy failed to start: [ALERT] Binding [/etc/lb.cfg-failed:21] for frontend \
             http-in: cannot bind"
        );
    }

    #[test]
    fn runtime_files_live_in_the_runtime_dir_and_paths_are_absolute() {
        let haproxy = Haproxy::new(HaproxySettings::new("lb/haproxy.cfg", "run"));
        let paths = haproxy.paths();
        assert!(paths.stats_socket.is_absolute());
        assert!(paths.stats_socket.ends_with("run/haproxy.sock"));
        assert!(paths.pidfile.ends_with("run/haproxy.pid"));
        assert!(haproxy.settings.config.is_absolute());
        assert_eq!(haproxy.settings.binary, PathBuf::from("haproxy"));
    }
}
