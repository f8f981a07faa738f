//! The netlink side of VIP watching: one rtnetlink connection that dumps links and addresses,
//! then listens to the link and IPv4/IPv6 address multicast groups and reports every change of
//! "is the VIP on the NIC". It re-dumps every cycle as a safety net, at once after a netlink
//! buffer overrun, and at once when asked (a keepalived notify): an asked-for re-dump is always
//! reported, changed or not, so the asker learns what the VIP says now. Nothing here polls to
//! decide the role.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use log::{debug, info, warn};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::Handle;
use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};
use tokio::sync::{Notify, watch};
use tokio::time::{MissedTickBehavior, interval_at};

use super::table::{AddrTable, NicState};
use crate::ifname::Ifname;

/// What to watch for: the VIP address, on which NIC, and how often to re-dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// The VIP address.
    pub vip: IpAddr,
    /// The NIC; `None` means any.
    pub nic: Option<Ifname>,
    /// Re-dump period (one cycle).
    pub resync: Duration,
}

/// Why the watcher could not talk to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The netlink socket could not be opened or bound.
    #[error("cannot open the rtnetlink socket: {0}")]
    Socket(#[from] std::io::Error),
    /// A dump request failed.
    #[error("rtnetlink dump failed: {0}")]
    Dump(#[from] rtnetlink::Error),
}

/// Socket receive buffer: large enough that a flap storm rarely overruns it.
const RX_BUFFER: usize = 4 << 20;
/// Pause before reconnecting after the connection failed.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

type Messages = futures::channel::mpsc::UnboundedReceiver<(
    netlink_packet_core::NetlinkMessage<RouteNetlinkMessage>,
    SocketAddr,
)>;

/// A connected, subscribed watcher.
pub struct VipWatcher {
    handle: Handle,
    messages: Messages,
    table: AddrTable,
    watch: watch::Receiver<Watch>,
}

impl VipWatcher {
    /// Connects, subscribes and takes the first dump. Returns the watcher and whether the VIP is
    /// present now, so the caller starts from the truth.
    pub async fn connect(watch: watch::Receiver<Watch>) -> Result<(Self, bool), WatchError> {
        let (handle, messages) = subscribe()?;
        let table = dump(&handle).await?;
        let w = VipWatcher {
            handle,
            messages,
            table,
            watch,
        };
        let present = w.present();
        Ok((w, present))
    }

    /// Runs until the receiving side is gone, calling `report` whenever presence changes, and
    /// after every re-dump asked for through `reread`. Connection failures are logged and the
    /// connection is rebuilt; this never returns an error.
    pub async fn run(
        mut self,
        mut last: bool,
        reread: Arc<Notify>,
        mut report: impl FnMut(bool) -> bool,
    ) {
        let period = self.watch.borrow().resync;
        let mut resync = interval_at(tokio::time::Instant::now() + period, period);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let mut asked = false;
            let healthy = tokio::select! {
                msg = self.messages.next() => self.on_message(msg).await,
                _ = resync.tick() => self.redump("cycle").await,
                () = reread.notified() => {
                    asked = true;
                    self.redump("asked").await
                }
                changed = self.watch.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let period = self.watch.borrow().resync;
                    resync = interval_at(tokio::time::Instant::now() + period, period);
                    resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    true
                }
            };
            if !healthy {
                self.reconnect().await;
            }
            let present = self.present();
            if present != last {
                last = present;
                self.log_change(present);
            } else if !asked {
                continue;
            }
            if !report(present) {
                return;
            }
        }
    }

    fn present(&self) -> bool {
        let w = self.watch.borrow();
        self.table.vip_present(w.vip, w.nic.as_deref())
    }

    fn log_change(&self, present: bool) {
        let w = self.watch.borrow();
        let nic = w.nic.as_deref().unwrap_or("any");
        let state = w.nic.as_deref().map(|n| self.table.nic_state(n));
        let state = match state {
            None => "n/a",
            Some(NicState::Absent) => "absent",
            Some(NicState::Down) => "down",
            Some(NicState::Up) => "up",
        };
        info!(
            "vip {} vip={} nic={nic} nic_state={state}",
            if present { "present" } else { "absent" },
            w.vip
        );
    }

    /// Applies one message; false when the connection has gone away.
    async fn on_message(
        &mut self,
        msg: Option<(
            netlink_packet_core::NetlinkMessage<RouteNetlinkMessage>,
            SocketAddr,
        )>,
    ) -> bool {
        let Some((msg, _)) = msg else {
            warn!("rtnetlink connection closed; reconnecting");
            return false;
        };
        match msg.payload {
            NetlinkPayload::InnerMessage(m) => {
                self.table.apply(&m);
                true
            }
            NetlinkPayload::Overrun(_) => {
                warn!("rtnetlink receive buffer overrun: changes were lost; re-dumping");
                self.redump("netlink buffer overrun").await
            }
            _ => true,
        }
    }

    /// Replaces the table with a fresh dump; false when the connection has failed.
    async fn redump(&mut self, why: &str) -> bool {
        match dump(&self.handle).await {
            Ok(table) => {
                if table != self.table {
                    debug!("re-dump changed the table reason=\"{why}\"");
                }
                self.table = table;
                true
            }
            Err(e) => {
                warn!("re-dump failed reason=\"{why}\" error=\"{e}\"");
                false
            }
        }
    }

    async fn reconnect(&mut self) {
        loop {
            tokio::time::sleep(RECONNECT_DELAY).await;
            let connected = async {
                let (handle, messages) = subscribe()?;
                let table = dump(&handle).await?;
                Ok::<_, WatchError>((handle, messages, table))
            };
            match connected.await {
                Ok((handle, messages, table)) => {
                    info!("rtnetlink reconnected");
                    self.handle = handle;
                    self.messages = messages;
                    self.table = table;
                    return;
                }
                Err(e) => warn!("rtnetlink reconnect failed error=\"{e}\""),
            }
        }
    }
}

/// Opens a connection subscribed to link and address changes; its driver runs as a task.
fn subscribe() -> Result<(Handle, Messages), WatchError> {
    let (mut conn, handle, messages) = rtnetlink::new_connection()?;
    let socket = conn.socket_mut().socket_mut();
    socket.bind(&SocketAddr::new(
        0,
        RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
    ))?;
    if let Err(e) = socket.set_rx_buf_sz(RX_BUFFER) {
        debug!("cannot enlarge the netlink receive buffer error=\"{e}\"");
    }
    tokio::spawn(conn);
    Ok((handle, messages))
}

/// Dumps every link and every address into a new table.
async fn dump(handle: &Handle) -> Result<AddrTable, WatchError> {
    let mut table = AddrTable::default();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await? {
        table.apply(&RouteNetlinkMessage::NewLink(link));
    }
    let mut addrs = handle.address().get().execute();
    while let Some(addr) = addrs.try_next().await? {
        table.apply(&RouteNetlinkMessage::NewAddress(addr));
    }
    Ok(table)
}
