//! The tokio shell around the role state machine: one task per source (netlink watcher,
//! signals, control socket, keepalived's notify FIFO, hooks, the components) feeding one channel
//! into the loop that owns the [`Supervisor`], and the code that carries out its actions. The
//! loop sleeps until the machine's own next deadline ([`Supervisor::poll_timeout`]) or the next
//! input, whichever comes first; there is no ticker. Every keepalived event, from
//! `keepserver notify` or the FIFO, is fed to the machine and then makes the watcher re-read the
//! VIP at once. The components' actions are carried out by [`components`]; the admin API,
//! when configured, runs beside them ([`api`]) and answers in every role, and so does the
//! Prometheus endpoint ([`MetricsServer`]): the loop records hook ends and the role-detection
//! latency, and hands it the core's view after every input. A `status` request is completed
//! off the loop ([`status`]).
//!
//! Under systemd the loop tells it where keepserver stands ([`systemd`]): READY=1 once the first
//! role is decided, RELOADING=1 and READY=1 around a reload, a STATUS= line on every change of
//! role or service, STOPPING=1, and the watchdog pings, due as one more deadline of the loop
//! (a wedged loop stops pinging).
//!
//! At start-up the hook record is read: a hook a killed predecessor left running is adopted
//! (waited for, or killed at its original timeout) before the machine may run anything else,
//! and the record is kept up to date with every hook from then on (see [`hooks::record`]).

mod api;
mod components;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use log::{error, info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use tokio::sync::{Notify, mpsc, watch};

use crate::config::{self, Config, Keepstart};
use crate::control::{self, Answer, Command, Incoming, Notified};
use crate::daemon::{Pidfile, Readiness};
use crate::hooks::orphan::{self, Fate};
use crate::hooks::record::{Found, HookRecord};
use crate::hooks::{self, KILL_GRACE};
use crate::keepalived::fifo::{Fifo, FifoError, FifoHealth};
use crate::keepalived::{KeepalivedEvent, Source};
use crate::logging;
use crate::metrics::detection::Detection;
use crate::metrics::server::MetricsServer;
use crate::metrics::{CoreView, Metrics};
use crate::report;
use crate::supervisor::components::show_duration;
use crate::supervisor::{Action, Event, HookKind, HookResult, Role, Settings, Supervisor};
use crate::systemd::{self, Condition, Service, Systemd};
use crate::vip::watcher::{VipWatcher, Watch, WatchError};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Tokio(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The control socket could not be created.
    #[error(transparent)]
    Control(#[from] control::ControlError),
    /// Netlink could not be opened.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// keepalived's notify FIFO could not be made ready.
    #[error(transparent)]
    Fifo(#[from] FifoError),
    /// The admin API could not be started.
    #[error("{0}")]
    Api(String),
    /// The metrics endpoint could not be started.
    #[error("{0}")]
    Metrics(String),
}

/// Everything that reaches the loop.
#[derive(Debug)]
enum Input {
    /// An event for the machine.
    Event(Event),
    /// The VIP watcher's reading, and when it was taken.
    Vip { present: bool, seen: Instant },
    /// SIGHUP: re-read the config file.
    Reload,
    /// A control-socket request.
    Control(Incoming),
    /// A state change read from keepalived's notify FIFO.
    Keepalived(KeepalivedEvent),
    /// `/api/quagga` stored this BGP peering (`None`: removed it).
    ApiQuagga(Option<crate::api::quagga::Quagga>),
}

/// Runs the daemon until it is told to stop. `logging` is the handle of the installed logger,
/// used to swap in a new logging config on reload; `systemd` is what systemd passed in the
/// environment (read before any thread started).
pub fn run(
    config: Config,
    pidfile: Pidfile,
    mut readiness: Readiness,
    logging: log4rs::Handle,
    systemd: &systemd::Env,
) -> Result<(), RuntimeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RuntimeError::Tokio)?;
    let result: Result<(), RuntimeError> = rt.block_on(async {
        let shell = Shell::start(config, logging, Systemd::new(systemd)).await?;
        readiness.ready();
        shell.run().await;
        Ok(())
    });
    if let Err(e) = &result {
        readiness.failed(&e.to_string());
    }
    pidfile.remove();
    result
}

/// The running shell: the machine, its inputs and what it needs to act.
struct Shell {
    machine: Supervisor,
    config: Config,
    logging: log4rs::Handle,
    tx: mpsc::UnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
    watch: watch::Sender<Watch>,
    socket: PathBuf,
    reloads: u64,
    /// Asks the VIP watcher for an immediate re-read.
    reread: Arc<Notify>,
    /// The FIFO reader and its health, when `keepstart.keepalived-fifo` is set.
    fifo: Option<(tokio::task::JoinHandle<()>, watch::Receiver<FifoHealth>)>,
    /// The hook record (`None` when it could not be opened: hooks then run unrecorded).
    record: Option<HookRecord>,
    /// What the record says now: the hook in flight, or idle with this running state.
    recorded: Recorded,
    components: components::Components,
    /// The admin API, when `api` is configured.
    api: Option<api::AdminApi>,
    /// What systemd is told.
    systemd: Systemd,
    /// The recording handle every component shares.
    metrics: Metrics,
    /// The metrics endpoint, when `metrics` is configured.
    metrics_server: Option<MetricsServer>,
    /// A change of the VIP's presence waiting for its start or stop hook.
    detection: Detection,
}

/// What the hook record was last written to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    InFlight,
    Idle(Option<bool>),
}

impl Shell {
    async fn start(
        mut config: Config,
        logging: log4rs::Handle,
        systemd: Systemd,
    ) -> Result<Self, RuntimeError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = control::bind(&config.application.control_socket)?;
        let metrics = Metrics::new();
        let metrics_server = config
            .metrics
            .as_ref()
            .map(|section| MetricsServer::start(section, metrics.clone()))
            .transpose()
            .map_err(RuntimeError::Metrics)?;
        let mut components =
            components::Components::new(tx.clone(), config.bgp.clone(), metrics.clone());
        let api = match config.api.clone() {
            Some(section) => {
                let haproxy = components.haproxy_for(&section.haproxy.instance());
                let api = api::AdminApi::start(&config, &section, haproxy, tx.clone())
                    .await
                    .map_err(RuntimeError::Api)?;
                config.bgp = api.effective_bgp(&config);
                components.set_first_bgp(config.bgp.clone());
                Some(api)
            }
            None => None,
        };
        let (watch, watch_rx) = watch::channel(watch_of(&config.keepstart));
        let (watcher, present) = VipWatcher::connect(watch_rx).await?;
        let ks = &config.keepstart;
        info!(
            "keepserver started pid={} vip={} nic={} role={} cycle={}",
            std::process::id(),
            ks.vip,
            ks.nic.as_deref().unwrap_or("any"),
            Role::from_vip(present),
            show_duration(ks.cycle)
        );
        let mut machine = Supervisor::new(
            Settings::of(&config),
            Role::from_vip(present),
            Instant::now(),
        );
        let (record, recorded) = take_over_record(&config, &mut machine, &tx);
        spawn_signals(tx.clone())?;
        let events = tx.clone();
        let reread = Arc::new(Notify::new());
        tokio::spawn(watcher.run(present, reread.clone(), move |present| {
            let seen = Instant::now();
            events.send(Input::Vip { present, seen }).is_ok()
        }));
        let fifo = match &config.keepalived_fifo {
            Some(path) => Some(spawn_fifo(Fifo::create(path)?, tx.clone())),
            None => None,
        };
        let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
        tokio::spawn(control::serve(listener, ctl_tx));
        let requests = tx.clone();
        tokio::spawn(async move {
            while let Some(incoming) = ctl_rx.recv().await {
                if requests.send(Input::Control(incoming)).is_err() {
                    return;
                }
            }
        });
        Ok(Shell {
            machine,
            socket: config.application.control_socket.clone(),
            config,
            logging,
            tx,
            rx,
            watch,
            reloads: 0,
            reread,
            fifo,
            record,
            recorded,
            components,
            api,
            systemd,
            metrics,
            metrics_server,
            detection: Detection::default(),
        })
    }

    async fn run(mut self) {
        let first = self.machine.begin(Instant::now());
        let mut exit = self.act(first);
        self.publish_metrics();
        if self.systemd.enabled() {
            let (condition, retry_in) = self.condition();
            self.systemd.ready(condition, retry_in, Instant::now());
        }
        while !exit {
            let now = Instant::now();
            self.systemd.keepalive(now);
            let deadline = self.machine.poll_timeout(now);
            let wake = [deadline, self.systemd.watchdog_due()]
                .into_iter()
                .flatten()
                .min();
            let input = tokio::select! {
                input = self.rx.recv() => match input {
                    Some(input) => input,
                    None => break,
                },
                () = sleep_until(wake) => {
                    if deadline.is_none_or(|at| Instant::now() < at) {
                        // Woken for the watchdog only.
                        continue;
                    }
                    Input::Event(Event::Timeout)
                }
            };
            let actions = match input {
                Input::Event(event) => {
                    if let Event::HookFinished(result) = &event {
                        self.metrics
                            .hook(result.kind, &result.outcome, result.duration);
                    }
                    self.machine.handle(event, Instant::now())
                }
                Input::Vip { present, seen } => {
                    self.detection.reading(present, seen, self.machine.role());
                    self.machine.handle(Event::Vip { present }, Instant::now())
                }
                Input::Reload => {
                    self.systemd.reloading();
                    let actions = self.reload();
                    self.systemd.reloaded();
                    actions
                }
                Input::Control(incoming) => self.answer(incoming),
                Input::Keepalived(event) => self.keepalived(event, Source::Fifo),
                Input::ApiQuagga(quagga) => self.api_quagga(quagga),
            };
            exit = self.act(actions);
            self.sync_record();
            self.publish_metrics();
            if self.systemd.enabled() {
                let (condition, retry_in) = self.condition();
                self.systemd.update(condition, retry_in);
            }
        }
        self.systemd.stopping();
        self.finish().await;
    }

    /// Where the role and the service stand, for systemd's STATUS= line, and the wait before
    /// the next try of a failing hook.
    fn condition(&self) -> (Condition, Option<std::time::Duration>) {
        let status = self.status();
        let condition = Condition {
            role: status.role,
            service: Service::of(status.running, status.hook_in_flight),
            failures: status.consecutive_failures,
            leaving: self.machine.standing().leaving,
        };
        let retry_in = status.retry_in_s.map(std::time::Duration::from_secs_f64);
        (condition, retry_in)
    }

    /// Gives the metrics endpoint the core's view, and drops a VIP change that needs no hook
    /// any more (the role it called for is taken and nothing runs).
    fn publish_metrics(&mut self) {
        self.detection
            .settled(self.machine.role(), self.machine.hook_in_flight().is_some());
        if self.metrics_server.is_none() {
            return;
        }
        let status = self.status();
        let now = Instant::now();
        self.metrics.core(CoreView {
            role: status.role,
            transitions: status.transitions,
            consecutive_failures: status.consecutive_failures,
            retry_at: status
                .retry_in_s
                .map(|s| now + std::time::Duration::from_secs_f64(s)),
        });
    }

    async fn finish(mut self) {
        // The reader removes a FIFO it created when it is dropped: let that happen now.
        if let Some((fifo, _)) = self.fifo.take() {
            fifo.abort();
            let _ = fifo.await;
        }
        self.components.shutdown();
        if let Some(api) = &self.api {
            api.shutdown();
        }
        if let Some(server) = &self.metrics_server {
            server.shutdown();
        }
        let _ = std::fs::remove_file(&self.socket);
        info!("keepserver stopped role={}", self.machine.role());
    }

    /// Carries out actions in order; true when the machine asked to exit.
    fn act(&mut self, actions: Vec<Action>) -> bool {
        for action in actions {
            match action {
                Action::RunHook(run) => {
                    self.recorded = Recorded::InFlight;
                    if let Some(latency) = self.detection.spawned(run.kind, Instant::now()) {
                        self.metrics.detection(latency);
                    }
                    let started = hooks::start(
                        run,
                        &self.config.application.workspace,
                        self.record.as_mut(),
                    );
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let result = started.finish().await;
                        let _ = tx.send(Input::Event(Event::HookFinished(result)));
                    });
                }
                Action::Report => info!(
                    "{}{}",
                    self.status().alive_line(),
                    report::lost_lines_field(logging::lost_lines())
                ),
                Action::Exit => return true,
                Action::StartWorker(section) => self.components.start_worker(&section),
                Action::StopWorker => self.components.stop_worker(),
                Action::Haproxy(target, section) => self.components.haproxy(target, &section),
                Action::Bgp(step) => self.components.bgp(*step, self.machine.standing()),
                Action::CheckFrr => self.components.check_frr(self.config.bgp.as_ref()),
            }
        }
        false
    }

    /// Writes the hook record when no hook is in flight any more (with the running state
    /// tracked now), or when that state changed.
    fn sync_record(&mut self) {
        if self.machine.hook_in_flight().is_some() {
            return;
        }
        let now = Recorded::Idle(self.machine.running());
        if now == self.recorded {
            return;
        }
        self.recorded = now;
        if let Some(record) = &mut self.record
            && let Err(e) = record.idle(self.machine.running())
        {
            warn!(
                "cannot write the hook record {} error=\"{e}\"",
                record.path().display()
            );
        }
    }

    fn status(&self) -> crate::supervisor::Status {
        self.machine.status(Instant::now(), std::process::id())
    }

    /// Feeds a keepalived event to the machine and has the VIP re-read at once.
    fn keepalived(&mut self, event: KeepalivedEvent, source: Source) -> Vec<Action> {
        let actions = self
            .machine
            .handle(Event::Keepalived { event, source }, Instant::now());
        self.reread.notify_one();
        actions
    }

    fn answer(&mut self, incoming: Incoming) -> Vec<Action> {
        match incoming.command {
            Command::Status => {
                let fifo = self.fifo.as_ref().map(|(_, health)| health.clone());
                let sources = self.components.sources(fifo);
                status::answer(
                    self.status(),
                    self.reloads,
                    &self.config,
                    sources,
                    incoming.reply,
                );
                Vec::new()
            }
            Command::Notify(event) => {
                let actions = self.keepalived(event, Source::Notify);
                let role = self.machine.role();
                let _ = incoming.reply.send(Answer::Notified(Notified { role }));
                actions
            }
        }
    }

    /// Re-reads the config file; a bad file is logged and changes nothing.
    fn reload(&mut self) -> Vec<Action> {
        let file = self.config.file.clone();
        let loaded = match config::load(&file) {
            Ok(loaded) => loaded,
            Err(e) => {
                error!("reload refused, keeping the running configuration: {e}");
                return Vec::new();
            }
        };
        let mut new = loaded.config;
        let running_nic = self.config.keepstart.nic.as_ref();
        let purpose = config::host::Purpose::Reload { running_nic };
        let host = config::host::host_problems(&new, purpose, config::host::nic_exists);
        let host_warnings = match host.into_result() {
            Ok(warnings) => warnings,
            Err(e) => {
                error!("reload refused, keeping the running configuration: {e}");
                return Vec::new();
            }
        };
        let translated = match logging::translate(new.logging.as_ref(), &logging_context(&new)) {
            Ok(t) => t,
            Err(e) => {
                error!("reload refused, keeping the running configuration: {e}");
                return Vec::new();
            }
        };
        if let Some(e) = self.api.as_ref().and_then(|_| api::refused(&new)) {
            error!("reload refused, keeping the running configuration: {e}");
            return Vec::new();
        }
        logging::apply(&self.logging, translated);
        for w in loaded.warnings.iter().chain(&host_warnings) {
            warn!("{w}");
        }
        if new.application != self.config.application {
            warn!("reload: changes to the application section take effect only after a restart");
        }
        match &mut self.api {
            Some(api) => api.reload(&mut new),
            None if new.api.is_some() => {
                warn!("reload: adding the api section takes effect only after a restart");
                new.api = None;
            }
            None => {}
        }
        self.reload_metrics(new.metrics.take());
        self.watch.send_replace(watch_of(&new.keepstart));
        self.reload_fifo(new.keepalived_fifo.clone());
        let settings = Settings::of(&new);
        self.config.keepstart = new.keepstart;
        self.config.libra = new.libra;
        self.config.bgp = new.bgp;
        self.config.bgp_defaults = new.bgp_defaults;
        self.config.api = new.api;
        self.config.metrics = self.metrics_server.as_ref().map(MetricsServer::section);
        self.config.logging = new.logging;
        self.reloads += 1;
        self.machine
            .handle(Event::Reload(Box::new(settings)), Instant::now())
    }

    /// `/api/quagga` changed the stored peering: the BGP section it makes goes to the machine.
    fn api_quagga(&mut self, quagga: Option<crate::api::quagga::Quagga>) -> Vec<Action> {
        let Some(api) = &mut self.api else {
            return Vec::new();
        };
        let bgp = api.quagga_changed(quagga, &self.config);
        self.config.bgp = bgp.clone();
        self.machine
            .handle(Event::BgpSection(Box::new(bgp)), Instant::now())
    }

    /// Starts, changes or stops the metrics endpoint for a reloaded `metrics` section; a new
    /// endpoint that cannot be started is logged and keepserver goes on without one.
    fn reload_metrics(&mut self, wanted: Option<crate::config::metrics::Metrics>) {
        match (&mut self.metrics_server, wanted) {
            (Some(server), Some(wanted)) => server.reload(&wanted),
            (Some(server), None) => {
                server.shutdown();
                info!("reload: metrics endpoint stopped");
                self.metrics_server = None;
            }
            (None, Some(wanted)) => match MetricsServer::start(&wanted, self.metrics.clone()) {
                Ok(server) => self.metrics_server = Some(server),
                Err(e) => error!("reload: {e}; no metrics are served"),
            },
            (None, None) => {}
        }
    }

    /// Switches the FIFO reader to a changed `keepstart.keepalived-fifo`; a path that cannot be
    /// made ready is logged and leaves keepserver without a FIFO (the next reload tries again).
    fn reload_fifo(&mut self, path: Option<PathBuf>) {
        if path == self.config.keepalived_fifo {
            return;
        }
        if let Some((old, _)) = self.fifo.take() {
            old.abort();
        }
        self.config.keepalived_fifo = None;
        match path.as_deref().map(Fifo::create) {
            Some(Ok(fifo)) => {
                self.fifo = Some(spawn_fifo(fifo, self.tx.clone()));
                self.config.keepalived_fifo = path;
            }
            Some(Err(e)) => error!("reload: {e}; no keepalived FIFO is read"),
            None => {}
        }
    }
}

/// Starts the FIFO reader; its events reach the loop in the order they were written.
fn spawn_fifo(
    fifo: Fifo,
    tx: mpsc::UnboundedSender<Input>,
) -> (tokio::task::JoinHandle<()>, watch::Receiver<FifoHealth>) {
    info!(
        "reading keepalived notify FIFO path={}",
        fifo.path().display()
    );
    let health = fifo.health();
    let reader = tokio::spawn(fifo.run(move |event| tx.send(Input::Keepalived(event)).is_ok()));
    (reader, health)
}

/// The logging context (file and workspace) for `config`.
pub fn logging_context(config: &Config) -> logging::LoggingContext<'_> {
    logging::LoggingContext {
        config_file: &config.file,
        workspace: &config.application.workspace,
    }
}

fn watch_of(ks: &Keepstart) -> Watch {
    Watch {
        vip: ks.vip.addr,
        nic: ks.nic.clone(),
        resync: ks.cycle,
    }
}

/// Sleeps until `deadline`; for ever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Opens the hook record beside the pidfile and acts on what a predecessor left in it: a hook
/// still running is adopted (the machine counts it in flight until it ends or is killed at its
/// original timeout), a recorded running state is taken over. Returns the record and what it
/// says now. A record that cannot be opened is logged: hooks then run unrecorded.
fn take_over_record(
    config: &Config,
    machine: &mut Supervisor,
    tx: &mpsc::UnboundedSender<Input>,
) -> (Option<HookRecord>, Recorded) {
    let path = config.application.pidfile.with_extension("hook");
    let (record, found) = match HookRecord::open(&path) {
        Ok(opened) => opened,
        Err(e) => {
            error!(
                "cannot open the hook record {} error=\"{e}\"; hooks run unrecorded, and a \
                 successor could not adopt one left running",
                path.display()
            );
            return (None, Recorded::Idle(None));
        }
    };
    let recorded = match found {
        Found::Nothing => Recorded::Idle(None),
        Found::Idle { running } => {
            if let Some(running) = running {
                machine.assume_running(running);
            }
            Recorded::Idle(running)
        }
        Found::Unreadable(text) => {
            warn!(
                "the hook record {} is not one, ignored text=\"{text}\"",
                path.display()
            );
            Recorded::InFlight
        }
        Found::InFlight(entry) => {
            let (kind, daemon, command) = (entry.hook, entry.daemon, entry.command.clone());
            match orphan::find(entry) {
                Fate::Gone { why } => {
                    info!(
                        "hook record: hook={kind} left by keepserver pid={daemon} is gone ({why}); \
                         the running state is unknown command=\"{command}\""
                    );
                    Recorded::InFlight
                }
                Fate::Running(found) => {
                    info!(
                        "hook record: hook={kind} left by keepserver pid={daemon} still runs \
                         pgid={}; no other hook runs until it ends or its original timeout in {} \
                         kills its group command=\"{command}\"",
                        found.leader,
                        show_duration(found.remaining)
                    );
                    machine.adopt(kind);
                    spawn_adopted(found, kind, tx.clone());
                    Recorded::InFlight
                }
            }
        }
    };
    (Some(record), recorded)
}

/// Waits for an adopted hook and reports its end as the hook in flight's.
fn spawn_adopted(found: orphan::Orphan, kind: HookKind, tx: mpsc::UnboundedSender<Input>) {
    tokio::spawn(async move {
        let began = Instant::now();
        let outcome = orphan::wait(&found, KILL_GRACE).await;
        info!(
            "adopted hook end hook={kind} pgid={} {outcome} ms={}",
            found.leader,
            began.elapsed().as_millis()
        );
        let result = HookResult {
            kind,
            outcome,
            duration: began.elapsed(),
        };
        let _ = tx.send(Input::Event(Event::HookFinished(result)));
    });
}

/// Forwards SIGTERM/SIGINT (stop), SIGHUP (reload) and SIGUSR1 (alive report) from a thread.
fn spawn_signals(tx: mpsc::UnboundedSender<Input>) -> Result<(), RuntimeError> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1]).map_err(RuntimeError::Signals)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let input = match signal {
                    SIGHUP => Input::Reload,
                    SIGUSR1 => Input::Event(Event::ReportRequested),
                    _ => {
                        info!(
                            "signal received signal={} action=stop",
                            crate::supervisor::types::signal_name(signal)
                        );
                        Input::Event(Event::Shutdown)
                    }
                };
                if tx.send(input).is_err() {
                    return;
                }
            }
        })
        .map_err(RuntimeError::Signals)?;
    Ok(())
}
