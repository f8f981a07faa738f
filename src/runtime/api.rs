//! The admin API in the daemon: the one service task that owns the [`Service`] (every request
//! goes through it, one at a time), the HTTP server in front of it, and what the API tells the
//! loop: a haproxy.cfg changed while HAProxy was down ([`ComponentEvent::HaproxyConfigChanged`])
//! and a new `/api/quagga` peering ([`Input::ApiQuagga`], which the loop turns into the BGP
//! section in force). A stored peering is in force from the start, and across reloads: the
//! effective `bgp` section is the peering's while there is one, config.yaml's otherwise.
//!
//! `reload` applies `listen`, `auth` and `tls` in place: the secret and PEM files are read
//! again (the host checks refused the reload already if they cannot be used), and the socket is
//! bound anew only when `listen` changed. A new door or socket that cannot be had all the same
//! is logged and the old one kept (a new `listen` is not bound while the new door failed, so a
//! moved listener never goes without its credentials). `serve` follows the
//! reload through the core; the other keys of the section take effect at the next start. A
//! reload that enables the Libra worker is refused while the API runs (both would own HAProxy).

use std::sync::{Arc, RwLock};

use log::{error, info, warn};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::Input;
use crate::api::auth::Gate;
use crate::api::http::{self, Call, Door, Listening, SharedDoor};
use crate::api::quagga::Quagga;
use crate::api::service::{BgpHook, Service};
use crate::api::tls;
use crate::config::api::Api;
use crate::config::{Bgp, Config};
use crate::haproxy::Haproxy;
use crate::supervisor::{ComponentEvent, Event};

/// Requests queued for the service task before callers wait.
const QUEUE: usize = 64;

/// The running admin API. See the module documentation.
pub struct AdminApi {
    /// The section in force.
    section: Api,
    door: SharedDoor,
    listening: Listening,
    hooks: mpsc::UnboundedSender<BgpHook>,
    tx: mpsc::UnboundedSender<Input>,
    /// The peering `/api/quagga` stored, if any.
    quagga: Option<Quagga>,
    /// config.yaml's `bgp` section, in force while no peering is stored.
    file_bgp: Option<Bgp>,
}

impl AdminApi {
    /// Opens the store on `haproxy`, starts the service task and serves `config.api` (which
    /// must be there).
    pub async fn start(
        config: &Config,
        section: &Api,
        haproxy: Arc<Haproxy>,
        tx: mpsc::UnboundedSender<Input>,
    ) -> Result<AdminApi, String> {
        let door = Arc::new(RwLock::new(Arc::new(door(section)?)));
        let listener = TcpListener::bind(section.listen)
            .await
            .map_err(|e| format!("cannot listen for the admin API on {}: {e}", section.listen))?;
        let events = tx.clone();
        let changed = Box::new(move || {
            let event = Event::Component(ComponentEvent::HaproxyConfigChanged);
            let _ = events.send(Input::Event(event));
        });
        let mut service = Service::open(section, haproxy, changed).await?;
        let quagga = service.store().quagga().cloned();
        if let Some(q) = &quagga {
            info!(
                "admin API: the stored /api/quagga peering is in force local_as={} vip={} \
                 neighbors={}{}",
                q.inter_as_number,
                q.vip_addr,
                q.primary_gateway_addr,
                q.secondary_gateway_addr
                    .map(|a| format!(",{a}"))
                    .unwrap_or_default()
            );
        }
        service.set_bgp_hook(bgp_hook(config, &tx));
        let (calls, requests) = mpsc::channel(QUEUE);
        let (hooks, new_hooks) = mpsc::unbounded_channel();
        tokio::spawn(run_service(service, requests, new_hooks));
        let listening = Listening::start(listener, http::router(calls, door.clone()), door.clone());
        info!(
            "admin API listening on {} auth={} tls={} serve={}",
            section.listen,
            auth_name(section),
            tls_name(section),
            serve_name(section)
        );
        Ok(AdminApi {
            section: section.clone(),
            door,
            listening,
            hooks,
            tx,
            quagga,
            file_bgp: config.bgp.clone(),
        })
    }

    /// The `bgp` section in force with `config`: the stored peering's (with `config`'s BGP
    /// defaults), else config.yaml's. A stored peering `config` no longer allows is logged and
    /// config.yaml's section used.
    pub fn effective_bgp(&self, config: &Config) -> Option<Bgp> {
        let Some(quagga) = &self.quagga else {
            return self.file_bgp.clone();
        };
        match quagga.bgp(&config.bgp_defaults, &config.keepstart) {
            Ok(bgp) => Some(bgp),
            Err(e) => {
                error!(
                    "admin API: the stored /api/quagga peering cannot be used with this \
                     configuration ({}); the bgp section of the config file is in force",
                    e.reason
                );
                self.file_bgp.clone()
            }
        }
    }

    /// `/api/quagga` stored `quagga` (or removed it): the `bgp` section now in force.
    pub fn quagga_changed(&mut self, quagga: Option<Quagga>, config: &Config) -> Option<Bgp> {
        self.quagga = quagga;
        self.effective_bgp(config)
    }

    /// Takes a reloaded `new` config: applies its `api.listen`, `api.auth` and `api.tls` as far
    /// as they can be had, and leaves in `new` the `api` section actually in force and the
    /// effective `bgp` section.
    pub fn reload(&mut self, new: &mut Config) {
        self.file_bgp = new.bgp.clone();
        let _ = self.hooks.send(bgp_hook(new, &self.tx));
        let Some(wanted) = new.api.take() else {
            warn!("reload: removing the api section takes effect only after a restart");
            new.api = Some(self.section.clone());
            new.bgp = self.effective_bgp(new);
            return;
        };
        let mut section = self.section.clone();
        section.serve = wanted.serve;
        let restart_only = Api {
            listen: section.listen,
            auth: section.auth.clone(),
            tls: section.tls.clone(),
            serve: section.serve,
            ..wanted.clone()
        };
        if restart_only != section {
            warn!(
                "reload: api changes other than listen, auth, tls and serve take effect only \
                 after a restart"
            );
        }
        match door(&wanted) {
            Ok(door) => {
                *self.door.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(door);
                section.auth = wanted.auth.clone();
                section.tls = wanted.tls.clone();
                if wanted.listen != section.listen && self.rebind(wanted.listen) {
                    section.listen = wanted.listen;
                }
            }
            Err(e) => error!(
                "reload: the admin API keeps its previous listen address, credentials and TLS: {e}"
            ),
        }
        self.section = section.clone();
        new.api = Some(section);
        new.bgp = self.effective_bgp(new);
    }

    /// Serves on `listen` instead; on failure logs and keeps the old socket.
    fn rebind(&mut self, listen: std::net::SocketAddr) -> bool {
        match self.listening.rebind(listen) {
            Ok(()) => {
                info!(
                    "admin API listening on {listen} (was {})",
                    self.section.listen
                );
                true
            }
            Err(e) => {
                error!(
                    "reload: cannot listen for the admin API on {listen}, it stays on {} \
                     error=\"{e}\"",
                    self.section.listen
                );
                false
            }
        }
    }

    /// Stops accepting requests (keepserver is exiting).
    pub fn shutdown(&self) {
        self.listening.shutdown();
    }
}

/// Why a reloaded `new` config cannot be taken while the admin API runs: the Libra worker
/// enabled in it would take over the haproxy.cfg the running API owns.
pub fn refused(new: &Config) -> Option<String> {
    new.libra.enabled.then(|| {
        "it enables the Libra worker while the admin API runs and owns HAProxy; moving HAProxy \
         from one to the other takes a restart"
            .to_string()
    })
}

/// The front door of `section`: its credential and TLS, their files read now.
fn door(section: &Api) -> Result<Door, String> {
    let gate = Gate::load(section.auth.as_ref()).map_err(|e| e.to_string())?;
    let tls = section
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(Door { gate, tls })
}

/// How `/api/quagga` reaches the loop, with `config`'s BGP defaults and keepstart section.
fn bgp_hook(config: &Config, tx: &mpsc::UnboundedSender<Input>) -> BgpHook {
    let tx = tx.clone();
    BgpHook {
        defaults: config.bgp_defaults.clone(),
        keepstart: config.keepstart.clone(),
        changed: Box::new(move |quagga| {
            let _ = tx.send(Input::ApiQuagga(quagga));
        }),
    }
}

/// The service task: carries out calls one at a time; a new hook (after a reload) is put in
/// force before the next call.
async fn run_service(
    mut service: Service,
    mut calls: mpsc::Receiver<Call>,
    mut hooks: mpsc::UnboundedReceiver<BgpHook>,
) {
    loop {
        tokio::select! {
            biased;
            Some(hook) = hooks.recv() => service.set_bgp_hook(hook),
            call = calls.recv() => match call {
                Some(Call { operation, reply }) => {
                    let answer = service.handle(operation).await;
                    let _ = reply.send(answer);
                }
                None => return,
            },
        }
    }
}

fn auth_name(section: &Api) -> &'static str {
    match &section.auth {
        None => "none",
        Some(crate::config::api::Auth::Basic { .. }) => "basic",
        Some(crate::config::api::Auth::Token { .. }) => "token",
    }
}

fn serve_name(section: &Api) -> &'static str {
    match section.serve {
        crate::config::api::Serve::Master => "master",
        crate::config::api::Serve::Always => "always",
    }
}

fn tls_name(section: &Api) -> &'static str {
    match &section.tls {
        None => "off",
        Some(t) if t.client_ca.is_some() => "client-cert",
        Some(_) => "on",
    }
}
