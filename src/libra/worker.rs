//! The Gearman side of the Libra worker: started when the core says so (MASTER, `libra.enabled`)
//! it takes jobs from the `libra.queue` function on every `libra.servers` job server; stopped, it
//! finishes the job in hand and disconnects, so the servers hand the work to the new MASTER.
//!
//! The Gearman protocol loop is [`super::gearman_worker`]; each job runs on its own task, so
//! that even a panic becomes a reply, not a dead connection.

use std::sync::Arc;

use bytes::Bytes;
use log::{info, warn};

use super::executor::Executor;
use super::gearman_worker::{JobResult, Worker};
use crate::config::Libra;
use crate::metrics::Metrics;

/// Starts taking jobs for `libra` with `executor`, its connections counted in `metrics`.
pub fn start(libra: &Libra, executor: Arc<Executor>, metrics: Metrics) -> Worker {
    let servers: Vec<String> = libra.servers.iter().map(ToString::to_string).collect();
    info!(
        "libra worker taking jobs queue={} servers={} connections_per_server={}",
        libra.queue,
        servers.join(","),
        libra.concurrency
    );
    let handler = move |payload| run_job(executor.clone(), payload);
    Worker::start(&servers, libra.concurrency, &libra.queue, metrics, handler)
}

/// Stops `worker`: the job in hand is finished, then it leaves the job servers.
pub async fn stop(worker: Worker, queue: &str) {
    info!("libra worker stopping: finishing the job in hand queue={queue}");
    worker.shutdown().await;
    info!("libra worker stopped queue={queue}");
}

/// Runs one job on its own task, so that even a panic becomes a reply, not a dead connection.
async fn run_job(executor: Arc<Executor>, payload: Bytes) -> JobResult {
    match tokio::spawn(async move { executor.run(&payload).await }).await {
        Ok(reply) => Ok(reply),
        Err(e) => {
            warn!("libra job crashed error=\"{e}\"");
            let reply = serde_json::json!({
                "hpcs_response": "FAIL",
                "hpcs_error": format!("internal error: {e}"),
            });
            Err(reply.to_string().into_bytes())
        }
    }
}
