//! The Gearman worker protocol loop: `concurrency` connections to every job server, each taking
//! one job at a time for one function, with reconnection and an orderly stop.
//!
//! The wire codec is the `gearman` crate's (`Connection`, `Packet`); the worker loop is ours.
//! The crate's own `Worker` opens its sockets without `TCP_NODELAY`, so the GRAB_JOB_UNIQ that
//! follows each WORK_COMPLETE waits out Nagle plus gearmand's delayed ACK: about 44 ms per job,
//! 22 jobs/s per connection (measured with scripts/bench-libra.py). It also offers no way to
//! hand it a socket, and its CANT_DO waits for the next NOOP of a sleeping connection. Here each
//! connection:
//!
//! - connects with `TCP_NODELAY`, sets its client id and sends CAN_DO for the function;
//! - loops GRAB_JOB_UNIQ → JOB_ASSIGN_UNIQ (run the job, WORK_COMPLETE, or WORK_EXCEPTION if the
//!   job's task panicked) or NO_JOB → PRE_SLEEP, then waits for NOOP;
//! - on a lost or broken server reconnects after a capped exponential back-off
//!   ([`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`]), so a restarted gearmand gets its worker back
//!   within about [`BACKOFF_MAX`];
//! - on stop: a sleeping or connecting connection ends at once; one with a job in hand finishes
//!   it and sends the result first. Then it sends RESET_ABILITIES and closes, so the server stops
//!   handing it work.
//!
//! The connections up per server are counted for `status` ([`Worker::connections`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gearman::Connection;
use gearman::protocol::{Packet, PacketType};
use log::{debug, info, warn};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::supervisor::components::show_duration;

/// The first pause before reconnecting to a server that went away.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest pause between reconnection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a server may take to answer GRAB_JOB_UNIQ before the connection counts as broken.
const GRAB_TIMEOUT: Duration = Duration::from_secs(30);

/// What a job handler returns: the WORK_COMPLETE payload, or the WORK_EXCEPTION payload when
/// the job could not produce a reply.
pub type JobResult = Result<Vec<u8>, Vec<u8>>;

/// A running worker: its connections' tasks and the switch that stops them.
pub struct Worker {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Per server: how many of its connections are up, and how many there are.
    up: Vec<(String, Arc<AtomicUsize>, usize)>,
}

impl Worker {
    /// Starts `per_server` connections to each of `servers` taking jobs for `function`, the
    /// ones up counted in `metrics`.
    pub fn start<H, F>(
        servers: &[String],
        per_server: usize,
        function: &str,
        metrics: Metrics,
        handler: H,
    ) -> Worker
    where
        H: Fn(Bytes) -> F + Send + Sync + 'static,
        F: Future<Output = JobResult> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let handler = Arc::new(handler);
        let mut tasks = Vec::new();
        let mut up = Vec::new();
        for server in servers {
            let count = Arc::new(AtomicUsize::new(0));
            for n in 0..per_server.max(1) {
                let link = Link {
                    server: server.clone(),
                    function: Bytes::from(function.to_string()),
                    client_id: Bytes::from(format!("keepserver-{}-{n}", std::process::id())),
                    stopped: stopped.clone(),
                    up: count.clone(),
                    metrics: metrics.clone(),
                };
                let handler = handler.clone();
                tasks.push(tokio::spawn(async move { link.run(&*handler).await }));
            }
            up.push((server.clone(), count, per_server.max(1)));
        }
        Worker { stop, tasks, up }
    }

    /// Per server (`host:port`): the connections up now and the connections kept to it.
    pub fn connections(&self) -> Vec<(String, usize, usize)> {
        self.up
            .iter()
            .map(|(server, up, total)| (server.clone(), up.load(Ordering::Relaxed), *total))
            .collect()
    }

    /// Stops taking jobs: idle connections close at once, busy ones after their job's reply.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Why one connection's session ended.
enum End {
    /// The worker is stopping.
    Stopped,
    /// The server went away or broke the protocol; reconnect.
    Lost(String),
}

/// One connection to one server.
struct Link {
    server: String,
    function: Bytes,
    client_id: Bytes,
    stopped: watch::Receiver<bool>,
    /// Connections of this server up now, this one counted while its session runs.
    up: Arc<AtomicUsize>,
    metrics: Metrics,
}

/// Counts a connection up, in the server's count and in the metrics, while it lives.
struct Up(Metrics, Arc<AtomicUsize>);

impl Up {
    fn new(metrics: &Metrics, count: &Arc<AtomicUsize>) -> Up {
        metrics.gearman_connection(true);
        count.fetch_add(1, Ordering::Relaxed);
        Up(metrics.clone(), count.clone())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.0.gearman_connection(false);
        self.1.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Link {
    async fn run<H, F>(mut self, handler: &H)
    where
        H: Fn(Bytes) -> F,
        F: Future<Output = JobResult>,
    {
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        let mut stopped = self.stopped.clone();
        while !*stopped.borrow() {
            let connected = tokio::select! {
                c = self.connect() => c,
                _ = stopped.wait_for(|s| *s) => return,
            };
            let mut conn = match connected {
                Ok(conn) => conn,
                Err(e) => {
                    if !failing {
                        warn!(
                            "gearman server unreachable server={} error=\"{e}\"; retrying",
                            self.server
                        );
                        failing = true;
                    }
                    self.pause(&mut backoff).await;
                    continue;
                }
            };
            if failing {
                info!("gearman server reachable again server={}", self.server);
            }
            backoff = BACKOFF_MIN;
            let up = Up::new(&self.metrics, &self.up);
            let end = self.session(&mut conn, handler).await;
            drop(up);
            match end {
                End::Stopped => {
                    // Best effort: the close itself tells the server this worker is gone.
                    let _ = conn
                        .send(Packet::request(PacketType::ResetAbilities, vec![]))
                        .await;
                    return;
                }
                End::Lost(why) => {
                    warn!(
                        "gearman connection lost server={} error=\"{why}\"; reconnecting",
                        self.server
                    );
                    failing = true;
                    self.pause(&mut backoff).await;
                }
            }
        }
    }

    /// Waits out the back-off (or until stopped) and doubles it, up to the cap.
    async fn pause(&mut self, backoff: &mut Duration) {
        tokio::select! {
            _ = tokio::time::sleep(*backoff) => {}
            _ = self.stopped.wait_for(|s| *s) => {}
        }
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
    }

    async fn connect(&self) -> Result<Connection<TcpStream>, String> {
        let stream = TcpStream::connect(self.server.as_str())
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut conn = Connection::from_stream(stream);
        for packet in [
            Packet::request(PacketType::SetClientId, vec![self.client_id.clone()]),
            Packet::request(PacketType::CanDo, vec![self.function.clone()]),
        ] {
            conn.send(packet).await.map_err(|e| e.to_string())?;
        }
        debug!(
            "gearman worker connected server={} client_id={}",
            self.server,
            String::from_utf8_lossy(&self.client_id)
        );
        Ok(conn)
    }

    /// Takes jobs on a connected link until it is stopped or broken.
    async fn session<H, F>(&mut self, conn: &mut Connection<TcpStream>, handler: &H) -> End
    where
        H: Fn(Bytes) -> F,
        F: Future<Output = JobResult>,
    {
        loop {
            if *self.stopped.borrow() {
                return End::Stopped;
            }
            if let Err(e) = conn
                .send(Packet::request(PacketType::GrabJobUniq, vec![]))
                .await
            {
                return End::Lost(e.to_string());
            }
            // A grab is always answered at once; it is not interrupted by a stop, so a job the
            // server assigns is never dropped. A late NOOP is not the answer: one grab, one
            // answer, so no second grab is ever outstanding.
            let reply = match tokio::time::timeout(GRAB_TIMEOUT, grab_answer(conn)).await {
                Ok(Ok(packet)) => packet,
                Ok(Err(why)) => return End::Lost(why),
                Err(_) => {
                    return End::Lost(format!(
                        "no answer to GRAB_JOB_UNIQ in {}",
                        show_duration(GRAB_TIMEOUT)
                    ));
                }
            };
            match reply.ptype {
                PacketType::JobAssignUniq | PacketType::JobAssign => {
                    let handle = reply.arg(0).cloned().unwrap_or_default();
                    let payload = reply.last_arg().cloned().unwrap_or_default();
                    let (ptype, data) = match handler(payload).await {
                        Ok(data) => (PacketType::WorkComplete, data),
                        Err(data) => (PacketType::WorkException, data),
                    };
                    if let Err(e) = conn
                        .send(Packet::request(ptype, vec![handle, Bytes::from(data)]))
                        .await
                    {
                        return End::Lost(format!("cannot send the job's result: {e}"));
                    }
                }
                PacketType::NoJob => {
                    if let Err(e) = conn
                        .send(Packet::request(PacketType::PreSleep, vec![]))
                        .await
                    {
                        return End::Lost(e.to_string());
                    }
                    if let Some(end) = self.sleep(conn).await {
                        return end;
                    }
                }
                PacketType::Error => {
                    return End::Lost(format!(
                        "server error {}: {}",
                        reply.arg_str(0).unwrap_or("?"),
                        reply.arg_str(1).unwrap_or("")
                    ));
                }
                other => debug!(
                    "gearman packet ignored server={} type={other:?}",
                    self.server
                ),
            }
        }
    }

    /// Sleeps until the server's NOOP (work may be waiting), a stop, or a broken connection.
    async fn sleep(&mut self, conn: &mut Connection<TcpStream>) -> Option<End> {
        loop {
            let packet = tokio::select! {
                p = next_packet(conn) => p,
                _ = self.stopped.wait_for(|s| *s) => return Some(End::Stopped),
            };
            match packet {
                Ok(p) if p.ptype == PacketType::Noop => return None,
                Ok(p) => debug!(
                    "gearman packet ignored while asleep server={} type={:?}",
                    self.server, p.ptype
                ),
                Err(why) => return Some(End::Lost(why)),
            }
        }
    }
}

/// The answer to a GRAB_JOB_UNIQ: the next packet that is not a NOOP.
async fn grab_answer(conn: &mut Connection<TcpStream>) -> Result<Packet, String> {
    loop {
        let packet = next_packet(conn).await?;
        if packet.ptype != PacketType::Noop {
            return Ok(packet);
        }
    }
}

async fn next_packet(conn: &mut Connection<TcpStream>) -> Result<Packet, String> {
    match conn.recv().await {
        Ok(Some(packet)) => Ok(packet),
        Ok(None) => Err("the server closed the connection".to_string()),
        Err(e) => Err(e.to_string()),
    }
}
