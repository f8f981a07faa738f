//! The BGP announcer (issue 4): while this node is MASTER (and, optionally, healthy) bgpd
//! announces the service prefixes to the upstream routers, for N+1 ECMP load balancing as in the
//! KINX setup; on SLAVE and when keepserver exits they are withdrawn.
//!
//! One job per module: [`model`] the typed values from the config, [`render`] the pure bgpd.conf
//! renderer, [`diff`] the commands that bring a running bgpd to the rendering, [`apply`]
//! checking, installing and applying the file, [`files`] writing files crash-safely,
//! [`loopback`] the prefixes on the loopback over netlink, [`announcer`] the follower task that
//! decides and orders the steps, and [`error`] their failures.

pub mod announcer;
pub mod apply;
pub mod diff;
pub mod error;
pub mod files;
pub mod loopback;
pub mod model;
pub mod render;

pub use error::BgpError;
