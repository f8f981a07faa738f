//! keepserver: a high-availability role supervisor. It decides MASTER or SLAVE from whether the
//! VIP is on the NIC, and makes this node's services follow that role through shell hooks.

pub mod api;
pub mod atomic_file;
pub mod bgp;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dryrun;
pub mod generate;
pub mod haproxy;
pub mod hooks;
pub mod ifname;
pub mod keepalived;
pub mod libra;
pub mod logging;
pub mod metrics;
pub mod pidfd;
pub mod proc;
pub mod report;
pub mod runtime;
pub mod snapshot;
pub mod supervisor;
pub mod systemd;
pub mod tool;
pub mod vip;
