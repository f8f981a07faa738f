//! The announcer: a follower task that makes bgpd announce the configured prefixes while the node
//! is MASTER (and, with `bgp.require-running`, while the last is-running check passed), and
//! withdraw them otherwise and when keepserver exits: as soon as it starts shutting down (so
//! alongside a `stop-on-exit` hook, not after it), and again when the channels close.
//!
//! Whether to announce is the pure [`wanted`]. Getting there is always the same three steps, in
//! an order that never draws traffic the node would refuse: put the prefixes on the loopback,
//! put the rendered bgpd.conf in force, then take off the loopback what keepserver added and no
//! longer announces. Announcing adds before the `network` lines appear; withdrawing removes them
//! before the addresses go. A step that fails stops the sequence (a failed withdrawal keeps the
//! addresses, since the route may still be announced) and the whole is retried after
//! [`RETRY_DELAY`], backing off to [`RETRY_MAX`]; an unchanged rendering is neither rewritten nor
//! reapplied.

use std::future::pending;
use std::time::Duration;

use log::{error, info};
use tokio::sync::watch;

use super::apply::{Bgpd, Outcome};
use super::error::BgpError;
use super::files::with_suffix;
use super::loopback::Loopback;
use super::model::Prefix;
use super::render::render;
use crate::config::Bgp;
use crate::supervisor::{Role, Standing};

/// How long to wait before trying again after a first failed step; it doubles with each further
/// failure, up to [`RETRY_MAX`].
pub const RETRY_DELAY: Duration = Duration::from_secs(2);
/// The longest wait between retries (a bgpd that is down is not asked every 2 s for ever).
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// Whether to announce: enabled, MASTER, not shutting down, and (with `require-running`) the
/// last check passed.
pub fn wanted(bgp: Option<&Bgp>, standing: Standing) -> bool {
    bgp.is_some_and(|b| {
        standing.role == Role::Master
            && !standing.leaving
            && (!b.require_running || standing.healthy == Some(true))
    })
}

/// Follows `standing` and the `bgp` section in `config` until both senders are gone (keepserver
/// exits), then withdraws and removes what it added.
pub async fn follow(
    mut config: watch::Receiver<Option<Bgp>>,
    mut standing: watch::Receiver<Standing>,
) {
    let mut announcer = Announcer::new(config.borrow_and_update().clone());
    let mut failures: u32 = 0;
    loop {
        let now = *standing.borrow_and_update();
        let result = announcer
            .converge(wanted(announcer.bgp.as_ref(), now), now)
            .await;
        failures = if result.is_ok() {
            0
        } else {
            failures.saturating_add(1)
        };
        let delay = retry_delay(failures);
        let retry = async {
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
                None => pending().await,
            }
        };
        tokio::select! {
            changed = standing.changed() => if changed.is_err() { break },
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
                let new = config.borrow_and_update().clone();
                announcer.reconfigure(new, now).await;
            }
            () = retry => {}
        }
    }
    let last = *standing.borrow();
    if announcer.converge(false, last).await.is_ok() && announcer.bgp.is_some() {
        info!("bgp announcer stopped: nothing announced, loopback prefixes removed");
    }
}

/// How long to wait after `failures` failed attempts in a row; `None` after a success.
fn retry_delay(failures: u32) -> Option<Duration> {
    let doublings = failures.checked_sub(1)?.min(8);
    Some(RETRY_DELAY.saturating_mul(1 << doublings).min(RETRY_MAX))
}

/// The announcer's state: the section in force, its bgpd and loopback.
struct Announcer {
    bgp: Option<Bgp>,
    bgpd: Option<Bgpd>,
    loopback: Option<Loopback>,
    /// The prefixes bgpd was last told to announce.
    announced: Option<Vec<Prefix>>,
}

impl Announcer {
    fn new(bgp: Option<Bgp>) -> Self {
        Announcer {
            bgpd: bgp.as_ref().map(Bgpd::new),
            loopback: bgp
                .as_ref()
                .map(|b| Loopback::new(b.loopback.clone(), with_suffix(&b.config, ".loopback"))),
            bgp,
            announced: None,
        }
    }

    /// Takes a new section (after a reload). When it drives another bgpd or loopback, or is
    /// disabled, everything is first withdrawn through the old one.
    async fn reconfigure(&mut self, new: Option<Bgp>, standing: Standing) {
        if new == self.bgp {
            return;
        }
        let keeps_target = match (&self.bgp, &new, &self.bgpd) {
            (Some(old), Some(new), Some(bgpd)) => {
                bgpd.same_target(new) && old.loopback == new.loopback
            }
            _ => false,
        };
        if keeps_target {
            self.bgp = new;
            return;
        }
        // Best effort: a failure is logged by converge, and the new section takes over anyway.
        let _ = self.converge(false, standing).await;
        *self = Announcer::new(new);
    }

    /// Announces the configured prefixes (`announce`) or nothing; logs failures.
    async fn converge(&mut self, announce: bool, standing: Standing) -> Result<(), BgpError> {
        let (Some(bgp), Some(bgpd), Some(loopback)) =
            (&self.bgp, &mut self.bgpd, &mut self.loopback)
        else {
            return Ok(());
        };
        let prefixes: Vec<Prefix> = if announce {
            bgp.announce.clone()
        } else {
            Vec::new()
        };
        let result = steps(bgp, bgpd, loopback, &prefixes).await;
        match &result {
            Ok(Outcome::Applied) if self.announced.as_ref() != Some(&prefixes) => info!(
                "bgp {} prefixes={} role={} healthy={}",
                if announce { "announcing" } else { "withdrawn" },
                show(if announce { &prefixes } else { &bgp.announce }),
                standing.role,
                standing
                    .healthy
                    .map_or("unknown", |h| if h { "true" } else { "false" })
            ),
            Ok(_) => {}
            Err(e) => error!(
                "bgp {} failed, retrying in {}s: {e}",
                if announce {
                    "announcement"
                } else {
                    "withdrawal"
                },
                RETRY_DELAY.as_secs()
            ),
        }
        if result.is_ok() {
            self.announced = Some(prefixes);
        }
        result.map(|_| ())
    }
}

/// Loopback first, then bgpd, then the loopback again (see the module documentation).
async fn steps(
    bgp: &Bgp,
    bgpd: &mut Bgpd,
    loopback: &mut Loopback,
    prefixes: &[Prefix],
) -> Result<Outcome, BgpError> {
    loopback.ensure(prefixes).await?;
    let outcome = bgpd.apply(&render(bgp, prefixes)).await?;
    loopback.release(prefixes).await?;
    Ok(outcome)
}

fn show(prefixes: &[Prefix]) -> String {
    let shown: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
    shown.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bgp(require_running: bool) -> Bgp {
        let text = format!(
            "keepstart:\n  nic: eth0\n  vip: 192.0.2.10\n  start: s\n  stop: t\n  is-running: r\n\
             bgp:\n  enabled: true\n  local-as: 65001\n  router-id: 198.51.100.1\n  \
             neighbors: [{{address: 198.51.100.2, remote-as: 65000}}]\n  \
             require-running: {require_running}\n"
        );
        crate::config::parse(&text, std::path::Path::new("/etc/keepserver/config.yaml"))
            .expect("valid")
            .config
            .bgp
            .expect("enabled")
    }

    #[test]
    fn retries_back_off_to_the_cap() {
        let delays: Vec<Option<u64>> = (0..7)
            .map(|n| retry_delay(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            [
                None,
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(30),
                Some(30)
            ]
        );
        assert_eq!(retry_delay(u32::MAX), Some(RETRY_MAX));
    }

    #[test]
    fn announces_only_while_master_enabled_and_healthy_when_required() {
        use Role::{Master, Slave};
        let (plain, gated) = (bgp(false), bgp(true));
        let cases = [
            (None, Master, Some(true), false, false),
            (Some(&plain), Master, None, false, true),
            (Some(&plain), Master, Some(false), false, true),
            (Some(&plain), Master, None, true, false),
            (Some(&plain), Slave, Some(true), false, false),
            (Some(&gated), Master, None, false, false),
            (Some(&gated), Master, Some(false), false, false),
            (Some(&gated), Master, Some(true), false, true),
            (Some(&gated), Master, Some(true), true, false),
            (Some(&gated), Slave, Some(true), false, false),
        ];
        for (bgp, role, healthy, leaving, want) in cases {
            let standing = Standing {
                role,
                healthy,
                leaving,
            };
            assert_eq!(
                wanted(bgp, standing),
                want,
                "enabled={} require_running={:?} {standing:?}",
                bgp.is_some(),
                bgp.map(|b| b.require_running)
            );
        }
    }
}
