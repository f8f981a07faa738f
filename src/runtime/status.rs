//! Answering `status`: the loop takes the role machine's snapshot and cheap copies of what the
//! components' tasks publish ([`Sources`]) at once, and a task of its own completes the
//! [`Snapshot`] with what takes time (bgpd's sessions, within [`sessions::QUERY_TIMEOUT`]; the
//! checksum of haproxy.cfg), so the loop never waits for FRR or the disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::bgp::sessions;
use crate::config::{Bgp, Config};
use crate::control::Answer;
use crate::haproxy::Haproxy;
use crate::keepalived::fifo::FifoHealth;
use crate::libra::executor::Executor;
use crate::logging;
use crate::snapshot::{BgpView, FifoView, GearmanServer, HaproxyView, LibraView, Snapshot};
use crate::supervisor::Status;
use crate::supervisor::status::secs;

/// What the components' tasks publish, as the loop hands it to the snapshot's task.
pub struct Sources {
    /// The HAProxy keepserver drives, once it drives one.
    pub haproxy: Option<Arc<Haproxy>>,
    /// The Libra executor, once the worker was started.
    pub executor: Option<Arc<Executor>>,
    /// The running worker's connections per server: `(server, up, kept)`.
    pub connections: Vec<(String, usize, usize)>,
    /// The prefixes bgpd was last told to announce.
    pub announced: Option<Vec<String>>,
    /// The notify FIFO reader's health, when one runs.
    pub fifo: Option<watch::Receiver<FifoHealth>>,
}

/// Completes the snapshot of `core` with `sources` and sends it to `reply`, on a task of its own.
pub fn answer(
    core: Status,
    reloads: u64,
    config: &Config,
    sources: Sources,
    reply: oneshot::Sender<Answer>,
) {
    let snapshot = snapshot(core, reloads, config, sources);
    tokio::spawn(async move {
        let _ = reply.send(Answer::Status(Box::new(snapshot.await)));
    });
}

/// The snapshot of `core` with `sources`: what is known now is taken at once, what takes time
/// (bgpd's sessions, haproxy.cfg's checksum) when the future runs, off the loop.
pub fn snapshot(
    core: Status,
    reloads: u64,
    config: &Config,
    sources: Sources,
) -> impl Future<Output = Snapshot> + Send + 'static {
    let now = Instant::now();
    let ks = &config.keepstart;
    let mut snapshot = Snapshot {
        core,
        reloads,
        vip: ks.vip.to_string(),
        nic: ks.nic.as_ref().map(ToString::to_string),
        log_lines_lost: logging::lost_lines(),
        log_sinks: logging::sinks(),
        libra: config.libra.enabled.then(|| libra(config, &sources, now)),
        haproxy: None,
        bgp: None,
        fifo: match (&config.keepalived_fifo, &sources.fifo) {
            (Some(path), Some(health)) => Some(fifo(path, &health.borrow(), now)),
            _ => None,
        },
    };
    let haproxy_config = match (&sources.haproxy, &config.api) {
        (Some(h), _) => Some(h.config_path().to_path_buf()),
        (None, Some(api)) => Some(api.haproxy.config.clone()),
        (None, None) if config.libra.enabled => Some(config.libra.haproxy.config.clone()),
        (None, None) => None,
    };
    let bgp = config.bgp.clone();
    async move {
        if let Some(path) = haproxy_config {
            snapshot.haproxy = Some(haproxy(path, sources.haproxy.as_deref(), now).await);
        }
        if let Some(bgp) = bgp {
            snapshot.bgp = Some(bgp_view(&bgp, sources.announced).await);
        }
        snapshot
    }
}

fn libra(config: &Config, sources: &Sources, now: Instant) -> LibraView {
    let libra = &config.libra;
    let servers = libra
        .servers
        .iter()
        .map(|endpoint| {
            let server = endpoint.to_string();
            let (connected, connections) = sources
                .connections
                .iter()
                .find(|(s, _, _)| *s == server)
                .map_or((0, libra.concurrency.max(1)), |(_, up, kept)| (*up, *kept));
            GearmanServer {
                server,
                connected,
                connections,
            }
        })
        .collect();
    let (jobs, last_job) = sources.executor.as_ref().map_or((0, None), |e| e.jobs(now));
    LibraView {
        queue: libra.queue.clone(),
        servers,
        jobs,
        last_job,
    }
}

fn fifo(path: &Path, health: &FifoHealth, now: Instant) -> FifoView {
    FifoView {
        path: path.to_path_buf(),
        open: health.open,
        events: health.events,
        skipped: health.skipped,
        last_event: health.last_event.as_ref().map(|(e, _)| e.clone()),
        last_event_ago_s: health
            .last_event
            .as_ref()
            .map(|(_, at)| secs(now.saturating_duration_since(*at))),
        error: health.error.clone(),
    }
}

async fn haproxy(config: PathBuf, driven: Option<&Haproxy>, now: Instant) -> HaproxyView {
    let (config_sha256, config_error) = match tokio::fs::read(&config).await {
        Ok(bytes) => (Some(sha256(&bytes)), None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(e) => (None, Some(format!("cannot read {}: {e}", config.display()))),
    };
    HaproxyView {
        config,
        master_pid: driven.and_then(Haproxy::master_seen),
        config_sha256,
        config_error,
        last_operation: driven.and_then(|h| h.last_operation(now)),
    }
}

async fn bgp_view(bgp: &Bgp, announced: Option<Vec<String>>) -> BgpView {
    let (peers, peers_unknown) = match sessions::query(bgp).await {
        Ok(peers) => (peers, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    BgpView {
        announced,
        peers,
        peers_unknown,
    }
}

/// SHA-256 of `bytes`, in lowercase hex.
fn sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            super::sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
