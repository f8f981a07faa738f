//! What the dry run renders: from the config and the state the daemon would start from (the
//! admin API's store file, the Libra worker's kept haproxy.cfg), the files it would write, each
//! with its checkers, and findings for what cannot be rendered. Pure but for [`State::read`].

use std::path::{Path, PathBuf};

use super::{Artefact, Check, Finding, Severity};
use crate::api::quagga::Quagga;
use crate::api::store::{Context, Store};
use crate::atomic_file::with_suffix;
use crate::bgp::model::ApplyMethod;
use crate::config::{Api, Bgp, Config};
use crate::haproxy::{Haproxy, render};

/// A file of the state, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// It does not exist (yet).
    Missing,
    /// Its content.
    Text(String),
    /// It could not be read: why.
    Unreadable(String),
}

impl Stored {
    /// `path` as read now.
    pub fn read(path: &Path) -> Stored {
        match std::fs::read_to_string(path) {
            Ok(text) => Stored::Text(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::Missing,
            Err(e) => Stored::Unreadable(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// The state the daemon would start from, besides the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The admin API's store file (`api.store`), when the API is configured.
    pub api_store: Option<Stored>,
    /// The Libra worker's haproxy.cfg (`libra.haproxy.config`), when the worker is enabled.
    pub libra_config: Option<Stored>,
    /// Whether a Libra SUSPEND is remembered beside it.
    pub libra_suspended: bool,
}

impl State {
    /// Reads the files `config` names.
    pub fn read(config: &Config) -> State {
        let libra = config.libra.enabled.then_some(&config.libra.haproxy.config);
        State {
            api_store: config.api.as_ref().map(|api| Stored::read(&api.store)),
            libra_config: libra.map(|path| Stored::read(path)),
            libra_suspended: libra.is_some_and(|path| with_suffix(path, ".suspended").exists()),
        }
    }
}

/// The files to check and what was found on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The files the daemon would write.
    pub artefacts: Vec<Artefact>,
    /// Why something is not rendered, or cannot be.
    pub findings: Vec<Finding>,
}

/// What the daemon of `config` would write, starting from `state`.
pub fn plan(config: &Config, state: &State) -> Plan {
    let mut plan = Plan::default();
    let mut quagga = None;
    if let (Some(api), Some(store)) = (&config.api, &state.api_store) {
        quagga = api_haproxy(api, &config.application.workspace, store, &mut plan);
    } else if let Some(kept) = &state.libra_config {
        libra_haproxy(config, kept, state.libra_suspended, &mut plan);
    }
    let bgp = match quagga {
        Some(q) => match q.bgp(&config.bgp_defaults, &config.keepstart) {
            Ok(bgp) => Some((bgp, "from the admin API's stored /api/quagga peering")),
            Err(e) => {
                plan.findings.push(Finding::new(
                    Severity::Warning,
                    "the admin API's stored /api/quagga peering",
                    format!(
                        "cannot be used with this configuration ({}); the daemon would use the \
                         bgp section of the config file",
                        e.reason
                    ),
                ));
                config.bgp.clone().map(|b| (b, "from the bgp section"))
            }
        },
        None => config.bgp.clone().map(|b| (b, "from the bgp section")),
    };
    if let Some((bgp, origin)) = bgp {
        plan.artefacts
            .push(bgpd_conf(&bgp, &config.application.workspace, origin));
    }
    plan
}

/// The haproxy.cfg of the admin API's `store`, as the daemon renders it at start; returns the
/// stored BGP peering, if any.
fn api_haproxy(api: &Api, workspace: &Path, store: &Stored, plan: &mut Plan) -> Option<Quagga> {
    let subject = format!("the admin API store {}", api.store.display());
    let text = match store {
        Stored::Missing => {
            plan.findings.push(Finding::new(
                Severity::Note,
                subject,
                "does not exist yet: no haproxy.cfg to render (the daemon starts with no objects)",
            ));
            return None;
        }
        Stored::Unreadable(e) => {
            plan.findings
                .push(Finding::new(Severity::Error, subject, e.clone()));
            return None;
        }
        Stored::Text(text) => text,
    };
    let store = match Store::from_json(text) {
        Ok(store) => store,
        Err(e) => {
            let message = format!("is not valid, the daemon would not start: {e}");
            plan.findings
                .push(Finding::new(Severity::Error, subject, message));
            return None;
        }
    };
    let ctx = Context {
        bind: api.bind,
        certificates: api.certificates.clone(),
        peers_section: api.peers_section.clone(),
        peer_name: api.peer_name.clone(),
    };
    match store.balancer(&ctx) {
        Err(e) => plan.findings.push(Finding::new(
            Severity::Error,
            subject,
            format!(
                "does not make a valid configuration, the daemon would not start: {}",
                e.reason
            ),
        )),
        Ok(balancer) if balancer.listeners().is_empty() => plan.findings.push(Finding::new(
            Severity::Note,
            subject,
            "has no listener: no haproxy.cfg to render (the daemon would remove it)",
        )),
        Ok(balancer) => {
            let settings = api.haproxy.instance();
            let paths = Haproxy::new(settings.clone()).paths();
            plan.artefacts.push(Artefact {
                name: "haproxy.cfg",
                live: settings.config,
                origin: format!("rendered from {subject}"),
                kept: false,
                text: render(&balancer, &paths),
                checks: vec![Check::Haproxy {
                    binary: program(&settings.binary, workspace),
                }],
            });
        }
    }
    store.quagga().cloned()
}

/// The haproxy.cfg the Libra worker kept, which a start serves again.
fn libra_haproxy(config: &Config, kept: &Stored, suspended: bool, plan: &mut Plan) {
    let settings = config.libra.haproxy.instance();
    let subject = settings.config.display().to_string();
    match kept {
        Stored::Missing => plan.findings.push(Finding::new(
            Severity::Note,
            subject,
            "does not exist yet: the Libra worker writes it on its first UPDATE",
        )),
        Stored::Unreadable(e) => {
            plan.findings
                .push(Finding::new(Severity::Error, subject, e.clone()))
        }
        Stored::Text(text) => plan.artefacts.push(Artefact {
            name: "haproxy.cfg",
            live: settings.config,
            origin: if suspended {
                "kept by the Libra worker, suspended: served again after ENABLE or UPDATE".into()
            } else {
                "kept by the Libra worker: served again at start".into()
            },
            kept: true,
            text: text.clone(),
            checks: vec![Check::Haproxy {
                binary: program(&settings.binary, &config.application.workspace),
            }],
        }),
    }
}

/// The program the daemon would run for `path`: a bare name is looked up in `PATH`, a relative
/// path is taken from the workspace (the daemon's working directory).
fn program(path: &Path, workspace: &Path) -> PathBuf {
    if path.components().count() > 1 {
        workspace.join(path)
    } else {
        path.to_path_buf()
    }
}

/// bgpd.conf as announced on MASTER.
fn bgpd_conf(bgp: &Bgp, workspace: &Path, origin: &str) -> Artefact {
    let vtysh = program(&bgp.vtysh, workspace);
    let mut checks = vec![Check::Vtysh {
        binary: vtysh.clone(),
    }];
    if bgp.apply == ApplyMethod::FrrReload {
        checks.push(Check::FrrReload {
            script: program(&bgp.frr_reload, workspace),
            vtysh,
            pathspace: bgp.pathspace.as_ref().map(ToString::to_string),
        });
    }
    Artefact {
        name: "bgpd.conf",
        live: PathBuf::from(&bgp.config),
        origin: format!("rendered {origin}, announcing"),
        kept: false,
        text: crate::bgp::render::render(bgp, &bgp.announce),
        checks,
    }
}

#[cfg(test)]
mod tests;
