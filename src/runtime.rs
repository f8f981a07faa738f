//! The tokio shell around the role state machine: one task per source (netlink watcher, cycle
//! ticker, signals, control socket, keepalived's notify FIFO, hook runner) feeding one channel
//! into the loop that owns the [`Supervisor`], and the code that carries out its actions. Every
//! keepalived event, from `keepserver notify` or the FIFO, is fed to the machine and then makes the
//! watcher re-read the VIP at once. Followers (the Libra worker, the BGP announcer) watch the role,
//! or the role and health ([`Standing`]), and their config sections; closing those channels at
//! exit tells them to wind down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::MissedTickBehavior;

use crate::bgp;
use crate::config::{self, Bgp, Config, Keepstart, Libra};
use crate::control::{self, Incoming, Request};
use crate::daemon::{Pidfile, Readiness};
use crate::hooks;
use crate::keepalived::fifo::{Fifo, FifoError};
use crate::keepalived::{KeepalivedEvent, Source};
use crate::libra;
use crate::logging;
use crate::supervisor::{Action, Event, Role, Standing, Supervisor};
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
}

/// Everything that reaches the loop.
#[derive(Debug)]
enum Input {
    /// An event for the machine.
    Event(Event),
    /// SIGHUP: re-read the config file.
    Reload,
    /// A control-socket request.
    Control(Incoming),
    /// A state change read from keepalived's notify FIFO.
    Keepalived(KeepalivedEvent),
}

/// Runs the daemon until it is told to stop. `logging` is the handle of the installed logger,
/// used to swap in a new logging config on reload.
pub fn run(
    config: Config,
    pidfile: Pidfile,
    mut readiness: Readiness,
    logging: log4rs::Handle,
) -> Result<(), RuntimeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RuntimeError::Tokio)?;
    let result: Result<(), RuntimeError> = rt.block_on(async {
        let shell = Shell::start(config, logging).await?;
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
    cycle: watch::Sender<Duration>,
    socket: PathBuf,
    reloads: u64,
    /// The role as followers (the Libra worker) see it.
    role: watch::Sender<Role>,
    /// The `libra` section as the Libra worker sees it.
    libra: watch::Sender<Libra>,
    /// The role and last health check as the BGP announcer sees them.
    standing: watch::Sender<Standing>,
    /// The `bgp` section as the BGP announcer sees it.
    bgp: watch::Sender<Option<Bgp>>,
    followers: Vec<tokio::task::JoinHandle<()>>,
    /// Asks the VIP watcher for an immediate re-read.
    reread: Arc<Notify>,
    /// The FIFO reader, when `keepstart.keepalived-fifo` is set.
    fifo: Option<tokio::task::JoinHandle<()>>,
}

/// How long followers get to finish (e.g. the Libra job in hand) when keepserver exits.
const FOLLOWER_GRACE: Duration = Duration::from_secs(10);

impl Shell {
    async fn start(config: Config, logging: log4rs::Handle) -> Result<Self, RuntimeError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = control::bind(&config.application.control_socket)?;
        let (watch, watch_rx) = watch::channel(watch_of(&config.keepstart));
        let (watcher, present) = VipWatcher::connect(watch_rx).await?;
        let ks = &config.keepstart;
        info!(
            "keepserver started pid={} vip={} nic={} role={} cycle={:.1}s",
            std::process::id(),
            ks.vip,
            ks.nic.as_deref().unwrap_or("any"),
            Role::from_vip(present),
            ks.cycle.as_secs_f64()
        );
        let machine = Supervisor::new(ks.clone(), Role::from_vip(present), Instant::now());
        let (role, role_rx) = watch::channel(machine.role());
        let (libra, libra_rx) = watch::channel(config.libra.clone());
        let (standing, standing_rx) = watch::channel(machine.standing());
        let (bgp, bgp_rx) = watch::channel(config.bgp.clone());
        let followers = vec![
            tokio::spawn(libra::worker::follow(libra_rx, role_rx)),
            tokio::spawn(bgp::announcer::follow(bgp_rx, standing_rx)),
        ];
        spawn_signals(tx.clone())?;
        let events = tx.clone();
        let reread = Arc::new(Notify::new());
        tokio::spawn(watcher.run(present, reread.clone(), move |present| {
            events.send(Input::Event(Event::Vip { present })).is_ok()
        }));
        let fifo = match &config.keepalived_fifo {
            Some(path) => Some(spawn_fifo(Fifo::create(path)?, tx.clone())),
            None => None,
        };
        let (cycle, cycle_rx) = watch::channel(ks.cycle);
        tokio::spawn(tick(cycle_rx, tx.clone()));
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
            cycle,
            reloads: 0,
            role,
            libra,
            standing,
            bgp,
            followers,
            reread,
            fifo,
        })
    }

    async fn run(mut self) {
        let first = self.machine.begin(Instant::now());
        if self.act(first) {
            return self.finish().await;
        }
        while let Some(input) = self.rx.recv().await {
            let actions = match input {
                Input::Event(event) => self.machine.handle(event, Instant::now()),
                Input::Reload => self.reload(),
                Input::Control(incoming) => self.answer(incoming),
                Input::Keepalived(event) => self.keepalived(event, Source::Fifo),
            };
            // Hooks first: a start hook must not wait for the followers' reaction to the role.
            let exit = self.act(actions);
            self.publish();
            if exit {
                break;
            }
        }
        self.finish().await;
    }

    /// Tells followers about a change of role or health.
    fn publish(&self) {
        send_if_changed(&self.role, self.machine.role());
        send_if_changed(&self.standing, self.machine.standing());
    }

    async fn finish(self) {
        let Shell {
            socket,
            machine,
            role,
            libra,
            standing,
            bgp,
            followers,
            fifo,
            ..
        } = self;
        // The reader removes a FIFO it created when it is dropped: let that happen now.
        if let Some(fifo) = fifo {
            fifo.abort();
            let _ = fifo.await;
        }
        // Closing the channels tells followers to wind down.
        drop((role, libra, standing, bgp));
        for follower in followers {
            if tokio::time::timeout(FOLLOWER_GRACE, follower)
                .await
                .is_err()
            {
                warn!("a follower did not finish within {FOLLOWER_GRACE:?}");
            }
        }
        let _ = std::fs::remove_file(&socket);
        info!("keepserver stopped role={}", machine.role());
    }

    /// Carries out actions; true when the machine asked to exit.
    fn act(&mut self, actions: Vec<Action>) -> bool {
        for action in actions {
            match action {
                Action::RunHook(run) => {
                    let started = hooks::start(run, &self.config.application.workspace);
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let result = started.finish().await;
                        let _ = tx.send(Input::Event(Event::HookFinished(result)));
                    });
                }
                Action::Report => info!("{}", self.status().alive_line()),
                Action::Exit => return true,
            }
        }
        false
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
        let mut actions = Vec::new();
        let reply = match incoming.request {
            Request::Status => {
                let mut value = serde_json::to_value(self.status())
                    .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
                value["reloads"] = self.reloads.into();
                value["vip"] = self.config.keepstart.vip.to_string().into();
                value["nic"] = self.config.keepstart.nic.as_deref().into();
                value
            }
            Request::Notify(event) => {
                actions = self.keepalived(event, Source::Notify);
                serde_json::json!({"ok": true, "role": self.machine.role()})
            }
        };
        let _ = incoming.reply.send(reply);
        actions
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
        let new = loaded.config;
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
        logging::apply(&self.logging, translated);
        for w in loaded.warnings.iter().chain(&host_warnings) {
            warn!("{w}");
        }
        if new.application != self.config.application {
            warn!("reload: changes to the application section take effect only after a restart");
        }
        let ks = new.keepstart.clone();
        self.watch.send_replace(watch_of(&ks));
        self.cycle.send_replace(ks.cycle);
        self.config.keepstart = ks.clone();
        send_if_changed(&self.libra, new.libra.clone());
        self.config.libra = new.libra;
        self.reload_fifo(new.keepalived_fifo);
        send_if_changed(&self.bgp, new.bgp.clone());
        self.config.bgp = new.bgp;
        self.config.logging = new.logging;
        self.reloads += 1;
        self.machine
            .handle(Event::Reload(Box::new(ks)), Instant::now())
    }

    /// Switches the FIFO reader to a changed `keepstart.keepalived-fifo`; a path that cannot be
    /// made ready is logged and leaves keepserver without a FIFO (the next reload tries again).
    fn reload_fifo(&mut self, path: Option<PathBuf>) {
        if path == self.config.keepalived_fifo {
            return;
        }
        if let Some(old) = self.fifo.take() {
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

/// Hands `value` to the followers watching `sender`, waking them only when it differs from what
/// they have.
fn send_if_changed<T: PartialEq>(sender: &watch::Sender<T>, value: T) {
    sender.send_if_modified(|current| {
        let changed = *current != value;
        if changed {
            *current = value;
        }
        changed
    });
}

/// Starts the FIFO reader; its events reach the loop in the order they were written.
fn spawn_fifo(fifo: Fifo, tx: mpsc::UnboundedSender<Input>) -> tokio::task::JoinHandle<()> {
    info!(
        "reading keepalived notify FIFO path={}",
        fifo.path().display()
    );
    tokio::spawn(fifo.run(move |event| tx.send(Input::Keepalived(event)).is_ok()))
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

/// Sends a tick every cycle; the period follows reloads.
async fn tick(mut period: watch::Receiver<Duration>, tx: mpsc::UnboundedSender<Input>) {
    loop {
        let every = *period.borrow_and_update();
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if tx.send(Input::Event(Event::Tick)).is_err() {
                        return;
                    }
                }
                changed = period.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
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
                        info!("signal received signal={signal} action=stop");
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
