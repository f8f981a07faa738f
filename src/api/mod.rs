//! The KINX-compatible admin API: HAProxy's load balancers, listeners, pools, members, health
//! monitors and peers configured object by object over HTTP, feeding the same HAProxy model,
//! renderer and driver as the Libra worker (one model, two front doors).
//!
//! One job per module: [`fields`] reading request JSON field by field, [`objects`] the typed
//! objects, [`store`] the objects together with their references and the model they make,
//! [`quagga`] the BGP peering set at run time, [`service`] carrying out requests one at a time
//! against the store, HAProxy and the store file, [`error`] the refusals; in front of it
//! [`http`] the routes and the accept loop, [`auth`] the credential check, [`tls`] the API's own
//! TLS.

pub mod auth;
pub mod error;
pub mod fields;
pub mod http;
pub mod objects;
pub mod quagga;
pub mod service;
pub mod store;
pub mod tls;

pub use error::ApiError;
pub use store::{Context, Kind, Store};
