//! The HAProxy instance keepserver owns, for every front door that configures it (the Libra
//! worker's jobs, and the admin API): the validated load-balancer model ([`model`]), the
//! haproxy.cfg it renders to ([`render`]), the driver that checks, installs, reloads, starts and
//! stops it ([`driver`]), the server changes it takes at run time without a reload
//! ([`runtime_diff`]), and its statistics ([`stats`]). Before a reload the driver waits for
//! the stick tables' peers to be in sync ([`peers_sync`]), so the new worker is handed them.
//!
//! HAProxy 2.6 runs in master-worker mode as a daemon; keepserver talks to it through the master
//! CLI socket and the admin stats socket directly, and signals only the master.

mod cli;
pub mod driver;
pub mod error;
mod master;
pub mod model;
mod peers_sync;
mod process;
pub mod render;
pub mod runtime_diff;
mod servers_state;
pub mod stats;

pub use driver::{Applied, Haproxy, HaproxySettings};
pub use error::HaproxyError;
pub use model::{Balancer, ModelError};
pub use render::{RuntimePaths, render};
pub use stats::{NodeStat, frontend_bytes_out, node_stats};
