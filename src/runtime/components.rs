//! Carrying out the core's component actions: starting and stopping the Libra worker, bringing
//! its HAProxy up or down (and watching the HAProxy master, so its death reaches the core),
//! running BGP announcer steps, and looking at FRR's daemons. Each reports back to the loop as a
//! [`ComponentEvent`]; long operations run on tasks of their own, so the loop never waits. What
//! they know that the core does not is handed to `status` by [`Components::sources`].

use std::sync::Arc;

use log::{debug, info};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;

use super::Input;
use crate::bgp::announcer::{Announcer, FrrIdentity};
use crate::config::{Bgp, Libra};
use crate::haproxy::{Haproxy, HaproxySettings};
use crate::keepalived::fifo::FifoHealth;
use crate::libra::executor::Executor;
use crate::libra::gearman_worker::Worker;
use crate::libra::worker;
use crate::metrics::Metrics;
use crate::supervisor::components::target_word;
use crate::supervisor::{BgpStep, ComponentEvent, Event, Standing, Target};

/// The HAProxy instance keepserver owns, and the watcher of its master.
struct Driven {
    settings: HaproxySettings,
    haproxy: Arc<Haproxy>,
    watcher: JoinHandle<()>,
}

/// The shell's side of the components. See the module documentation.
pub struct Components {
    tx: mpsc::UnboundedSender<Input>,
    driven: Option<Driven>,
    /// The Libra executor, for the `libra` section and HAProxy instance it was made for.
    executor: Option<(Libra, Arc<Executor>)>,
    worker: Option<(Worker, String)>,
    announcer: Arc<Mutex<Announcer>>,
    /// The prefixes the announcer last told bgpd to announce, for `status`.
    announced: watch::Sender<Option<Vec<String>>>,
    /// FRR's daemons at the last look, and the section they were looked up for.
    frr: Option<(Bgp, FrrIdentity)>,
    metrics: Metrics,
}

impl Components {
    /// Components reporting on `tx` and recording into `metrics`, the announcer starting from
    /// `bgp`.
    pub fn new(tx: mpsc::UnboundedSender<Input>, bgp: Option<Bgp>, metrics: Metrics) -> Self {
        Components {
            tx,
            driven: None,
            executor: None,
            worker: None,
            announcer: Arc::new(Mutex::new(Announcer::new(bgp, metrics.clone()))),
            announced: watch::Sender::new(None),
            frr: None,
            metrics,
        }
    }

    /// What the components' tasks know now, for a `status` snapshot (`fifo`: the notify FIFO
    /// reader's health, which the loop holds).
    pub fn sources(&self, fifo: Option<watch::Receiver<FifoHealth>>) -> super::status::Sources {
        super::status::Sources {
            haproxy: self.driven.as_ref().map(|d| d.haproxy.clone()),
            executor: self.executor.as_ref().map(|(_, e)| e.clone()),
            connections: self
                .worker
                .as_ref()
                .map(|(w, _)| w.connections())
                .unwrap_or_default(),
            announced: self.announced.borrow().clone(),
            fifo,
        }
    }

    /// Sets the announcer's section before any step ran (the admin API's stored peering,
    /// known once the API opened its store on [`Components::haproxy_for`]'s HAProxy).
    pub fn set_first_bgp(&mut self, bgp: Option<Bgp>) {
        self.announcer = Arc::new(Mutex::new(Announcer::new(bgp, self.metrics.clone())));
    }

    fn report(&self, event: ComponentEvent) {
        let _ = self.tx.send(Input::Event(Event::Component(event)));
    }

    /// The HAProxy instance of `settings`, made anew (with a new watcher of its master) when
    /// the settings changed.
    pub fn haproxy_for(&mut self, settings: &HaproxySettings) -> Arc<Haproxy> {
        if let Some(d) = &self.driven
            && d.settings == *settings
        {
            return d.haproxy.clone();
        }
        if let Some(old) = self.driven.take() {
            old.watcher.abort();
        }
        let haproxy = Arc::new(Haproxy::new(settings.clone()).with_metrics(self.metrics.clone()));
        let watcher = tokio::spawn(watch_master(haproxy.master(), self.tx.clone()));
        self.driven = Some(Driven {
            settings: settings.clone(),
            haproxy: haproxy.clone(),
            watcher,
        });
        haproxy
    }

    /// The Libra executor for `section`, made anew when it (or its HAProxy) changed.
    fn executor(&mut self, section: &Libra) -> Arc<Executor> {
        let haproxy = self.haproxy_for(&section.haproxy.instance());
        if let Some((made_for, executor)) = &self.executor
            && made_for == section
            && std::ptr::eq(executor.haproxy(), &*haproxy)
        {
            return executor.clone();
        }
        let executor = Arc::new(Executor::new(section, haproxy, self.metrics.clone()));
        self.executor = Some((section.clone(), executor.clone()));
        executor
    }

    /// Starts the Libra worker for `section`.
    pub fn start_worker(&mut self, section: &Libra) {
        let executor = self.executor(section);
        let worker = worker::start(section, executor, self.metrics.clone());
        self.worker = Some((worker, section.queue.clone()));
    }

    /// Stops the Libra worker; [`ComponentEvent::WorkerStopped`] follows when it has.
    pub fn stop_worker(&mut self) {
        let tx = self.tx.clone();
        let running = self.worker.take();
        tokio::spawn(async move {
            if let Some((w, queue)) = running {
                worker::stop(w, &queue).await;
            }
            let _ = tx.send(Input::Event(Event::Component(
                ComponentEvent::WorkerStopped,
            )));
        });
    }

    /// Brings the HAProxy of `settings` to `target`; [`ComponentEvent::HaproxyDone`] follows.
    pub fn haproxy(&mut self, target: Target, settings: &HaproxySettings) {
        let haproxy = self.haproxy_for(settings);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = haproxy.ensure(target).await.map_err(|e| e.to_string());
            if result.is_ok() {
                debug!("haproxy brought to target={}", target_word(target));
            }
            let _ = tx.send(Input::Event(Event::Component(ComponentEvent::HaproxyDone(
                result,
            ))));
        });
    }

    /// Runs a BGP step; [`ComponentEvent::BgpDone`] follows.
    pub fn bgp(&mut self, step: BgpStep, standing: Standing) {
        let announcer = self.announcer.clone();
        let announced = self.announced.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut announcer = announcer.lock().await;
            let result = announcer
                .step(step, standing)
                .await
                .map_err(|e| e.to_string());
            announced.send_replace(
                announcer
                    .announced()
                    .map(|p| p.iter().map(ToString::to_string).collect()),
            );
            drop(announcer);
            let _ = tx.send(Input::Event(Event::Component(ComponentEvent::BgpDone(
                result,
            ))));
        });
    }

    /// Looks at FRR's daemons for `bgp`; reports [`ComponentEvent::FrrChanged`] when they are
    /// not the ones of the last look (the first look only remembers them).
    pub fn check_frr(&mut self, bgp: Option<&Bgp>) {
        let Some(bgp) = bgp else {
            self.frr = None;
            return;
        };
        let now = FrrIdentity::of(bgp);
        let changed = match &self.frr {
            Some((section, before)) if section == bgp => *before != now,
            _ => false,
        };
        self.frr = Some((bgp.clone(), now));
        if changed {
            info!(
                "bgpd or zebra is not the one of the last look (restarted or gone) bgpd_up={}; \
                 telling bgpd again",
                now.bgpd_up()
            );
            self.report(ComponentEvent::FrrChanged);
        }
    }

    /// Stops watching HAProxy (keepserver is exiting; HAProxy keeps serving).
    pub fn shutdown(&mut self) {
        if let Some(d) = self.driven.take() {
            d.watcher.abort();
        }
    }
}

/// Follows the HAProxy master's pid and reports [`ComponentEvent::HaproxyExited`] when the one
/// it watches exits while still being the master the driver knows (a stop by the driver
/// clears the pid first, so it is no crash).
async fn watch_master(mut master: watch::Receiver<Option<u32>>, tx: mpsc::UnboundedSender<Input>) {
    loop {
        let current = *master.borrow_and_update();
        let Some(pid) = current.and_then(|p| i32::try_from(p).ok()) else {
            if master.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            exited = crate::pidfd::exited(pid) => {
                if exited.is_ok() && *master.borrow() == current {
                    info!("haproxy master exited pid={pid}");
                    let event = Event::Component(ComponentEvent::HaproxyExited);
                    if tx.send(Input::Event(event)).is_err() {
                        return;
                    }
                }
                // Watch again only once the driver knows of another master.
                if master.changed().await.is_err() {
                    return;
                }
            }
            changed = master.changed() => if changed.is_err() { return },
        }
    }
}
