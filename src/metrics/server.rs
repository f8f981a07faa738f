//! The `/metrics` endpoint: the admin API's accept loop ([`http::serve`]) and front door
//! ([`http::authorize`] with a [`Gate`] loaded from `metrics.auth`, the same files and shapes
//! as `api.auth`), serving [`Metrics::encode`] on GET. `reload` applies `listen` and `auth` in
//! place: the credential is read again and the socket bound anew only when `listen` changed; a
//! new credential or socket that cannot be had is logged and the old one kept.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::http::header;
use axum::middleware;
use axum::routing::get;
use log::{error, info};

use super::{CONTENT_TYPE, Metrics};
use crate::api::auth::Gate;
use crate::api::http::{self, Door, Listening, SharedDoor};
use crate::config::metrics::Metrics as Section;

/// The running endpoint.
pub struct MetricsServer {
    section: Section,
    door: SharedDoor,
    listening: Listening,
}

impl MetricsServer {
    /// Serves `metrics` as `section` says.
    pub fn start(section: &Section, metrics: Metrics) -> Result<MetricsServer, String> {
        let door: SharedDoor = Arc::new(RwLock::new(Arc::new(door(section)?)));
        let listener = http::bind_now(section.listen)
            .map_err(|e| format!("cannot listen for metrics on {}: {e}", section.listen))?;
        let listening = Listening::start(listener, router(metrics, door.clone()), door.clone());
        info!(
            "metrics listening on http://{}/metrics auth={}",
            section.listen,
            if section.auth.is_some() { "on" } else { "none" }
        );
        Ok(MetricsServer {
            section: section.clone(),
            door,
            listening,
        })
    }

    /// The section in force.
    pub fn section(&self) -> Section {
        self.section.clone()
    }

    /// Takes a reloaded section: its credential, then its `listen`, as far as they can be had.
    pub fn reload(&mut self, wanted: &Section) {
        match door(wanted) {
            Ok(door) => {
                *self.door.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(door);
                self.section.auth = wanted.auth.clone();
                if wanted.listen != self.section.listen {
                    self.rebind(wanted.listen);
                }
            }
            Err(e) => error!(
                "reload: the metrics endpoint keeps its previous listen address and credential: \
                 {e}"
            ),
        }
    }

    fn rebind(&mut self, listen: std::net::SocketAddr) {
        match self.listening.rebind(listen) {
            Ok(()) => {
                info!(
                    "metrics listening on {listen} (was {})",
                    self.section.listen
                );
                self.section.listen = listen;
            }
            Err(e) => error!(
                "reload: cannot listen for metrics on {listen}, it stays on {} error=\"{e}\"",
                self.section.listen
            ),
        }
    }

    /// Stops serving (keepserver is exiting).
    pub fn shutdown(&self) {
        self.listening.shutdown();
    }
}

/// The credential of `section`, its file read now (no TLS: the endpoint is plain HTTP).
fn door(section: &Section) -> Result<Door, String> {
    let gate = Gate::load(section.auth.as_ref()).map_err(|e| e.to_string())?;
    Ok(Door { gate, tls: None })
}

/// `GET /metrics` behind the door's gate.
fn router(metrics: Metrics, door: SharedDoor) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    metrics.refresh_bgp_sessions().await;
                    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode())
                }
            }),
        )
        .layer(middleware::from_fn_with_state(door, http::authorize))
}
