//! Carries out parsed Libra jobs: drives HAProxy, runs diagnostics, uploads archives, reads
//! stats and metrics, and turns every outcome into the reply. Jobs that change HAProxy are
//! serialized; a job never panics the worker, and every failure becomes `hpcs_response: FAIL`
//! with `hpcs_error`. The jobs run and the last one are kept for `status` ([`Executor::jobs`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use log::{info, warn};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::diagnostics;
use super::message::{self, Action, Job};
use super::site::{Protocol, Site};
use super::{archive, release};
use crate::config::{Endpoint, Libra};
use crate::haproxy::driver::Haproxy;
use crate::haproxy::stats;
use crate::metrics::Metrics;
use crate::snapshot::JobView;

/// Reply fields of a job.
type Fields = Vec<(&'static str, Value)>;

/// Why a job failed, and what it found on the way (DIAGNOSTICS reports its tests either way).
#[derive(Debug)]
struct Failure {
    error: String,
    fields: Fields,
}

impl From<String> for Failure {
    fn from(error: String) -> Self {
        Failure {
            error,
            fields: Vec::new(),
        }
    }
}

/// What METRICS remembers between calls.
#[derive(Debug)]
struct MetricsMark {
    at: DateTime<Utc>,
    bytes_out: BTreeMap<Protocol, u64>,
}

/// Runs jobs against this node's HAProxy.
pub struct Executor {
    haproxy: Arc<Haproxy>,
    bind: std::net::IpAddr,
    servers: Vec<Endpoint>,
    targets: Vec<Endpoint>,
    archive_log: Option<PathBuf>,
    /// Held while a job changes HAProxy, and by METRICS for its mark.
    changes: Mutex<MetricsMark>,
    /// Jobs run, and the last one with when it ended, for `status`.
    record: std::sync::Mutex<(u64, Option<(JobView, Instant)>)>,
    metrics: Metrics,
}

impl Executor {
    /// An executor for the `libra` config, driving `haproxy` (the instance its
    /// `libra.haproxy` describes), recording its jobs into `metrics`.
    pub fn new(libra: &Libra, haproxy: Arc<Haproxy>, metrics: Metrics) -> Self {
        Executor {
            haproxy,
            bind: libra.haproxy.bind,
            servers: libra.servers.clone(),
            targets: libra.diagnostics_targets.clone(),
            archive_log: libra.archive_log.clone(),
            changes: Mutex::new(MetricsMark {
                at: Utc::now(),
                bytes_out: BTreeMap::new(),
            }),
            record: std::sync::Mutex::new((0, None)),
            metrics,
        }
    }

    /// Jobs run so far, and the last one (its `ago_s` as of `now`).
    pub fn jobs(&self, now: Instant) -> (u64, Option<JobView>) {
        let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let last = record.1.as_ref().map(|(job, at)| JobView {
            ago_s: crate::supervisor::status::secs(now.saturating_duration_since(*at)),
            ..job.clone()
        });
        (record.0, last)
    }

    fn remember(&self, action: &str, began: Instant, error: Option<&str>) {
        let job = JobView {
            action: action.to_string(),
            result: if error.is_some() { "FAIL" } else { "PASS" }.to_string(),
            error: error.map(str::to_string),
            ms: crate::supervisor::status::millis(began.elapsed()),
            ago_s: 0.0,
        };
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        record.0 += 1;
        record.1 = Some((job, Instant::now()));
    }

    /// The HAProxy this executor drives.
    pub fn haproxy(&self) -> &Haproxy {
        &self.haproxy
    }

    /// Runs one job payload to its reply.
    pub async fn run(&self, payload: &[u8]) -> Vec<u8> {
        let began = Instant::now();
        let job = match message::parse(payload) {
            Ok(job) => job,
            Err(reply) => {
                self.metrics.libra_job("INVALID", false, began.elapsed());
                warn!(
                    "libra job refused bytes={} reply={}",
                    payload.len(),
                    String::from_utf8_lossy(&reply)
                );
                self.remember("unreadable", began, Some("the message could not be read"));
                return reply;
            }
        };
        let name = action_name(&job.action);
        let Job { request, action } = job;
        let result = self.execute(action).await;
        self.metrics
            .libra_job(name, result.is_ok(), began.elapsed());
        let ms = began.elapsed().as_millis();
        match result {
            Ok(fields) => {
                info!("libra job action={name} result=PASS ms={ms}");
                self.remember(name, began, None);
                message::pass(request, fields)
            }
            Err(Failure { error, fields }) => {
                warn!("libra job action={name} result=FAIL ms={ms} error=\"{error}\"");
                self.remember(name, began, Some(&error));
                message::fail_with(request, &error, fields)
            }
        }
    }

    async fn execute(&self, action: Action) -> Result<Fields, Failure> {
        match action {
            Action::Update(lbs) => {
                let site = Site::new(self.bind, lbs).map_err(|e| e.to_string())?;
                let _changing = self.changes.lock().await;
                self.haproxy
                    .apply(&site.balancer())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Vec::new())
            }
            Action::Suspend => Ok(self.change(self.haproxy.suspend()).await?),
            Action::Enable => Ok(self.change(self.haproxy.enable()).await?),
            Action::Delete => Ok(self.change(self.haproxy.delete()).await?),
            Action::Discover => Ok(vec![
                ("version", release::version().into()),
                ("release", release::RELEASE.into()),
            ]),
            Action::Diagnostics => {
                let d = diagnostics::diagnose(&self.targets, &self.servers).await;
                let mut fields = d.fields();
                fields.push(("release", release::RELEASE.into()));
                if d.healthy() {
                    Ok(fields)
                } else {
                    Err(Failure {
                        error: d.problem(),
                        fields,
                    })
                }
            }
            Action::Archive(archive) => {
                let log = self.archive_log.clone();
                let stamp = Utc::now().format("%Y%m%d-%H%M%S").to_string();
                let written = tokio::task::spawn_blocking(move || {
                    archive::upload(&archive, log.as_deref(), &stamp)
                })
                .await
                .map_err(|e| format!("archive task failed: {e}"))?
                .map_err(|e| e.to_string())?;
                Ok(vec![("objects", json!(written))])
            }
            Action::Stats => Ok(self.stats().await?),
            Action::Metrics => Ok(self.metrics().await?),
        }
    }

    async fn change(
        &self,
        op: impl Future<Output = Result<(), crate::haproxy::driver::HaproxyError>>,
    ) -> Result<Fields, String> {
        let _changing = self.changes.lock().await;
        op.await.map_err(|e| e.to_string())?;
        Ok(Vec::new())
    }

    async fn stats(&self) -> Result<Fields, String> {
        if !self.haproxy.has_config() {
            return Err("no load balancer: it was deleted or never created".to_string());
        }
        let socket = self.haproxy.paths().stats_socket;
        let nodes = stats::node_stats(&socket)
            .await
            .map_err(|e| e.to_string())?;
        let nodes = serde_json::to_value(&nodes).map_err(|e| e.to_string())?;
        Ok(vec![("nodes", nodes)])
    }

    async fn metrics(&self) -> Result<Fields, String> {
        if !self.haproxy.has_config() {
            return Err("no load balancer: it was deleted or never created".to_string());
        }
        let socket = self.haproxy.paths().stats_socket;
        let by_frontend = stats::frontend_bytes_out(&socket)
            .await
            .map_err(|e| e.to_string())?;
        let now_bytes: BTreeMap<Protocol, u64> = [Protocol::Http, Protocol::Tcp]
            .into_iter()
            .filter_map(|p| Some((p, *by_frontend.get(&p.frontend())?)))
            .collect();
        let mut mark = self.changes.lock().await;
        let now = Utc::now();
        let lbs: Vec<Value> = now_bytes
            .iter()
            .map(|(protocol, bytes)| {
                let before = mark.bytes_out.get(protocol).copied().unwrap_or(0);
                // A restarted HAProxy starts its counters again from zero.
                let delta = if *bytes >= before {
                    bytes - before
                } else {
                    *bytes
                };
                json!({"protocol": protocol_name(*protocol), "bytes_out": delta.to_string()})
            })
            .collect();
        let fields = vec![
            (
                "utc_start",
                mark.at.format("%Y-%m-%d %H:%M:%S%.6f").to_string().into(),
            ),
            (
                "utc_end",
                now.format("%Y-%m-%d %H:%M:%S%.6f").to_string().into(),
            ),
            ("loadBalancers", Value::Array(lbs)),
        ];
        *mark = MetricsMark {
            at: now,
            bytes_out: now_bytes,
        };
        Ok(fields)
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "HTTP",
        Protocol::Tcp => "TCP",
    }
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Update(_) => "UPDATE",
        Action::Suspend => "SUSPEND",
        Action::Enable => "ENABLE",
        Action::Delete => "DELETE",
        Action::Diagnostics => "DIAGNOSTICS",
        Action::Discover => "DISCOVER",
        Action::Archive(_) => "ARCHIVE",
        Action::Stats => "STATS",
        Action::Metrics => "METRICS",
    }
}
