//! The BGP announcer (issue 4): while this node is MASTER (and, optionally, healthy) bgpd
//! announces the service prefixes to the upstream routers, for N+1 ECMP load balancing as in the
//! KINX setup; on SLAVE and when keepserver exits they are withdrawn.
//!
//! One job per module: [`model`] the typed values from the config, [`render`] the pure bgpd.conf
//! renderer, [`diff`] the commands that bring a running bgpd to the rendering, [`apply`]
//! checking, installing and applying the file, [`loopback`] the prefixes on the loopback over
//! netlink, [`announcer`] carrying out the steps the core asks for, in order, [`sessions`] bgpd's
//! sessions as `status` shows them, and [`error`] their failures. Whether to announce is decided by the core
//! ([`crate::supervisor::components`]); files are written through [`crate::atomic_file`].

pub mod announcer;
pub mod apply;
pub mod diff;
pub mod error;
pub mod loopback;
pub mod model;
pub mod render;
pub mod sessions;

pub use error::BgpError;
