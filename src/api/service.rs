//! Carrying out the admin API's requests, one at a time (so a burst of concurrent writes ends as
//! if they had been applied in some order): reads from the store; every mutation validated on a
//! copy of the store (typed parse, references, the HAProxy model), its certificates looked up,
//! the store's new file written beside the old one while the configuration is rendered, checked
//! with `haproxy -c`, swapped atomically and put in force in a running HAProxy (through its
//! runtime API when only servers change and HAProxy can take it, else by a hitless reload: see
//! [`Haproxy::update`]); only when both have worked is the new store file renamed into place
//! and the copy kept. Any refusal leaves the running
//! configuration, the stored objects and the served traffic as they were.
//!
//! The service never starts or stops HAProxy: the core does, by the role (`api.serve`). A
//! change made while HAProxy does not run is written for its next start, and reported
//! (`changed`), so the core starts it if it should serve and had nothing to serve before. With
//! no listener left there is nothing to serve: HAProxy is stopped and its configuration removed.

use std::path::PathBuf;
use std::sync::Arc;

use log::{info, warn};
use serde_json::{Value, json};

use super::error::ApiError;
use super::quagga::Quagga;
use super::store::{Context, Kind, Store};
use crate::atomic_file::{self as files, with_suffix};
use crate::config::Api;
use crate::config::Keepstart;
use crate::config::bgp::BgpDefaults;
use crate::haproxy::model::{Balancer, Name};
use crate::haproxy::{Applied, Haproxy, HaproxyError};

/// One request, as the HTTP layer hands it over.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Every object of a kind.
    List(Kind),
    /// One object.
    Get(Kind, Name),
    /// A new object from a body.
    Create(Kind, Value),
    /// The fields of a body change an object.
    Update(Kind, Name, Value),
    /// An object goes.
    Delete(Kind, Name),
    /// `GET /api/quagga`.
    GetQuagga,
    /// `POST`/`PUT /api/quagga`: the fields of a body set the BGP peering.
    SetQuagga(Value),
    /// `DELETE /api/quagga`: the BGP peering is config.yaml's again.
    DeleteQuagga,
}

/// The answer: an HTTP status and a JSON body (none for 204).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Option<Value>,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply {
            status: e.status,
            body: Some(json!(e)),
        }
    }
}

/// What the service needs to set the BGP announcer's peering (`/api/quagga`).
pub struct BgpHook {
    /// The `bgp` section's settings besides the peering.
    pub defaults: BgpDefaults,
    /// The `keepstart` section (the VIP must not go where it is watched).
    pub keepstart: Keepstart,
    /// Called with the new peering (or `None`) once it is stored.
    pub changed: Box<dyn Fn(Option<Quagga>) + Send + Sync>,
}

/// The admin API's state and the HAProxy it configures. See the module documentation.
pub struct Service {
    store: Store,
    ctx: Context,
    store_path: PathBuf,
    haproxy: Arc<Haproxy>,
    changed: Box<dyn Fn() + Send + Sync>,
    bgp: Option<BgpHook>,
}

impl Service {
    /// The service for `api`, its objects loaded from the store file (none when it does not
    /// exist yet) and put in force; `changed` is called when HAProxy's configuration changed
    /// while it did not run.
    pub async fn open(
        api: &Api,
        haproxy: Arc<Haproxy>,
        changed: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Service, String> {
        let store = match files::read_optional(&api.store).await {
            Ok(None) => Store::default(),
            Ok(Some(text)) => Store::from_json(&text)
                .map_err(|e| format!("the API store {} is not valid: {e}", api.store.display()))?,
            Err(e) => return Err(e.to_string()),
        };
        let service = Service {
            store,
            ctx: Context {
                bind: api.bind,
                certificates: api.certificates.clone(),
                peers_section: api.peers_section.clone(),
                peer_name: api.peer_name.clone(),
            },
            store_path: api.store.clone(),
            haproxy,
            changed,
            bgp: None,
        };
        let balancer = service.store.balancer(&service.ctx).map_err(|e| {
            format!(
                "the API store {} does not make a valid configuration: {}",
                api.store.display(),
                e.reason
            )
        })?;
        service
            .put(&balancer)
            .await
            .map_err(|e| format!("the API store's configuration: {}", e.reason))?;
        info!(
            "admin API store loaded path={} listeners={} pools={}",
            api.store.display(),
            balancer.listeners().len(),
            balancer.pools().len()
        );
        Ok(service)
    }

    /// The objects as stored now.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Lets `/api/quagga` set the BGP announcer's peering through `hook` (without one it
    /// answers 409: there is no announcer to configure).
    pub fn set_bgp_hook(&mut self, hook: BgpHook) {
        self.bgp = Some(hook);
    }

    /// Carries out one request.
    pub async fn handle(&mut self, operation: Operation) -> Reply {
        let answer = match operation {
            Operation::List(kind) => self.store.list(&kind).map(|v| (200, Some(v))),
            Operation::Get(kind, id) => self.store.get(&kind, &id).map(|v| (200, Some(v))),
            Operation::Create(kind, body) => {
                self.mutate(|s| s.create(&kind, &body).map(Some), 201).await
            }
            Operation::Update(kind, id, body) => {
                self.mutate(|s| s.update(&kind, &id, &body).map(Some), 200)
                    .await
            }
            Operation::Delete(kind, id) => {
                self.mutate(|s| s.delete(&kind, &id).map(|()| None), 204)
                    .await
            }
            Operation::GetQuagga => match self.store.quagga() {
                Some(q) => Ok((200, Some(json!(q)))),
                None => Err(ApiError::not_found("quagga setting", "quagga")),
            },
            Operation::SetQuagga(body) => self.set_quagga(Some(body)).await,
            Operation::DeleteQuagga => self.set_quagga(None).await,
        };
        match answer {
            Ok((status, body)) => Reply { status, body },
            Err(e) => e.into(),
        }
    }

    /// Applies `change` to a copy of the store, puts the configuration it makes in force and
    /// keeps the copy (see the module documentation).
    async fn mutate(
        &mut self,
        change: impl FnOnce(&mut Store) -> Result<Option<Value>, ApiError>,
        status: u16,
    ) -> Result<(u16, Option<Value>), ApiError> {
        let mut next = self.store.clone();
        let body = change(&mut next)?;
        let balancer = next.balancer(&self.ctx)?;
        self.check_certificates(&balancer).await?;
        let tmp = with_suffix(&self.store_path, ".tmp");
        // The store's new file is written (and fsynced) while HAProxy takes the change.
        let json = next.to_json();
        let (written, put) = tokio::join!(files::write(&tmp, &json), self.put(&balancer));
        if let Err(e) = put {
            let _ = files::remove(&tmp).await;
            return Err(e);
        }
        if let Err(e) = written {
            self.restore().await;
            return Err(ApiError::internal(format!("the change was undone: {e}")));
        }
        if let Err(e) = files::rename(&tmp, &self.store_path).await {
            let _ = files::remove(&tmp).await;
            self.restore().await;
            return Err(ApiError::internal(format!("the change was undone: {e}")));
        }
        self.store = next;
        Ok((status, body))
    }

    /// Sets (`Some` body) or removes the BGP peering, checked against the announcer's settings,
    /// stored, then handed to the announcer.
    async fn set_quagga(&mut self, body: Option<Value>) -> Result<(u16, Option<Value>), ApiError> {
        let Some(hook) = &self.bgp else {
            return Err(ApiError::conflict(
                None,
                "this keepserver has no BGP announcer to configure",
            ));
        };
        let quagga = match &body {
            Some(body) => {
                let q = Quagga::read(body, self.store.quagga())?;
                q.bgp(&hook.defaults, &hook.keepstart)?;
                Some(q)
            }
            None if self.store.quagga().is_none() => {
                return Err(ApiError::not_found("quagga setting", "quagga"));
            }
            None => None,
        };
        let answer = quagga.as_ref().map(|q| json!(q));
        let stored = quagga.clone();
        let (status, _) = self
            .mutate(
                move |s| {
                    s.set_quagga(stored);
                    Ok(None)
                },
                if body.is_some() { 200 } else { 204 },
            )
            .await?;
        if let Some(hook) = &self.bgp {
            (hook.changed)(quagga);
        }
        Ok((status, answer))
    }

    /// Puts the configuration of the stored objects back after a change failed halfway.
    async fn restore(&self) {
        match self.store.balancer(&self.ctx) {
            Ok(balancer) => {
                if let Err(e) = self.put(&balancer).await {
                    warn!(
                        "admin API: the previous configuration could not be put back: {}",
                        e.reason
                    );
                }
            }
            Err(e) => warn!("admin API: the stored objects are not valid: {}", e.reason),
        }
    }

    /// Every certificate a TLS listener names is a file.
    async fn check_certificates(&self, balancer: &Balancer) -> Result<(), ApiError> {
        for listener in balancer.listeners() {
            for cert in listener.tls.iter().flat_map(|t| &t.certificates) {
                if tokio::fs::metadata(cert).await.is_err() {
                    return Err(ApiError::bad(
                        "tls_certificate_id",
                        format!(
                            "listener `{}`: there is no certificate {}",
                            listener.name,
                            cert.display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Puts `balancer` in force in HAProxy if it runs (at run time or by a reload), else writes
    /// the file for its next start; with no listener, stops it and removes the file.
    async fn put(&self, balancer: &Balancer) -> Result<(), ApiError> {
        if balancer.listeners().is_empty() {
            let had = self.haproxy.has_config();
            self.haproxy.delete().await.map_err(haproxy_error)?;
            if had {
                info!("admin API: no listener left; HAProxy stopped and its configuration removed");
            }
            return Ok(());
        }
        let applied = self.haproxy.update(balancer).await.map_err(haproxy_error)?;
        if applied == Applied::Written {
            (self.changed)();
        }
        Ok(())
    }
}

/// A refusal of HAProxy's is 422 with its message; anything else keepserver's own 500.
fn haproxy_error(e: HaproxyError) -> ApiError {
    match e {
        HaproxyError::ConfigRejected { .. } | HaproxyError::NotApplied { .. } => {
            ApiError::refused(e.to_string())
        }
        other => ApiError::internal(other.to_string()),
    }
}
