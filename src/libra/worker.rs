//! The Gearman side of the Libra worker, following the node's role: while MASTER it takes jobs
//! from the `libra.queue` function on every `libra.servers` job server; on SLAVE it finishes the
//! job in hand and disconnects, so the servers stop handing it work.
//!
//! The Gearman protocol loop is [`super::gearman_worker`]: role changes stop it (a sleeping
//! connection ends at once, a busy one after its job) and start a new one.

use std::sync::Arc;

use bytes::Bytes;
use log::{error, info, warn};
use tokio::sync::watch;

use super::executor::Executor;
use super::gearman_worker::{JobResult, Worker};
use crate::config::Libra;
use crate::supervisor::Role;

/// Follows `role` (and config changes in `config`) until both senders are gone.
pub async fn follow(mut config: watch::Receiver<Libra>, mut role: watch::Receiver<Role>) {
    let mut current: Option<Worker> = None;
    let mut libra = config.borrow_and_update().clone();
    let mut executor = Arc::new(Executor::new(&libra));
    loop {
        let wanted = libra.enabled && *role.borrow_and_update() == Role::Master;
        match (wanted, current.is_some()) {
            (true, false) => {
                follow_role(&executor, &libra, Role::Master).await;
                current = Some(start(&libra, executor.clone()));
            }
            (false, true) => {
                if let Some(worker) = current.take() {
                    stop(worker, &libra).await;
                }
                follow_role(&executor, &libra, Role::Slave).await;
            }
            _ => {}
        }
        tokio::select! {
            changed = role.changed() => if changed.is_err() { break },
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
                let new = config.borrow_and_update().clone();
                if new != libra {
                    if let Some(worker) = current.take() {
                        stop(worker, &libra).await;
                    }
                    libra = new;
                    executor = Arc::new(Executor::new(&libra));
                }
            }
        }
    }
    if let Some(worker) = current.take() {
        stop(worker, &libra).await;
    }
}

/// With `follow-role`, HAProxy is started on MASTER (when there is a config) and stopped on SLAVE.
async fn follow_role(executor: &Executor, libra: &Libra, role: Role) {
    if !libra.enabled || !libra.haproxy.follow_role {
        return;
    }
    let haproxy = executor.haproxy();
    let result = match role {
        Role::Master if haproxy.has_config() => haproxy.start().await,
        Role::Master => return,
        Role::Slave => haproxy.stop().await,
    };
    match result {
        Ok(()) => info!("haproxy follows role role={role}"),
        Err(e) => error!("haproxy could not follow role role={role} error=\"{e}\""),
    }
}

fn start(libra: &Libra, executor: Arc<Executor>) -> Worker {
    let servers: Vec<String> = libra.servers.iter().map(ToString::to_string).collect();
    info!(
        "libra worker taking jobs queue={} servers={} connections_per_server={}",
        libra.queue,
        servers.join(","),
        libra.concurrency
    );
    Worker::start(&servers, libra.concurrency, &libra.queue, move |payload| {
        run_job(executor.clone(), payload)
    })
}

async fn stop(worker: Worker, libra: &Libra) {
    info!(
        "libra worker stopping: finishing the job in hand queue={}",
        libra.queue
    );
    worker.shutdown().await;
    info!("libra worker stopped queue={}", libra.queue);
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
