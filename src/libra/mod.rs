//! The embedded Libra worker: while MASTER, a Gearman worker on `lbaas-HOSTNAME` takes Libra's
//! JSON jobs and drives this node's HAProxy (validated config, hitless reload, stats); on SLAVE it
//! stops taking jobs.

pub mod archive;
pub mod diagnostics;
pub mod executor;
pub mod gearman_worker;
pub mod message;
pub mod release;
pub mod site;
pub mod worker;
