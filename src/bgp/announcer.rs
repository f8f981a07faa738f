//! The announcer: carries out the BGP steps the core asks for ([`BgpStep`]): bgpd announces the
//! configured prefixes, or nothing. Whether to announce is decided by the core
//! ([`crate::supervisor::components`]), which also retries failures and asks for a step on the
//! way out.
//!
//! Getting there is always the same three steps, in an order that never draws traffic the node
//! would refuse: put the prefixes on the loopback, put the rendered bgpd.conf in force, then
//! take off the loopback what keepserver added and no longer announces. Announcing adds before
//! the `network` lines appear; withdrawing removes them before the addresses go. A step that
//! fails stops the sequence (a failed withdrawal keeps the addresses, since the route may still
//! be announced); an unchanged rendering is neither rewritten nor reapplied.
//!
//! One exception to "file first": a withdrawal whose bgpd.conf cannot be written (a full disk)
//! is told to bgpd all the same, since a node that keeps announcing draws traffic it no longer
//! wants. The step still fails, so the core retries it and the file is written (and the
//! addresses taken off the loopback) once there is space. An announcement that cannot be
//! written is not told: it waits for its file like any other failure.
//!
//! [`FrrIdentity`] is how a restarted bgpd or zebra is noticed: their vty sockets, which each
//! daemon creates anew when it starts.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use log::{error, info, warn};

use super::apply::{Bgpd, Outcome};
use super::error::BgpError;
use super::loopback::Loopback;
use super::model::Prefix;
use super::render::render;
use crate::atomic_file::with_suffix;
use crate::config::Bgp;
use crate::metrics::Metrics;
use crate::supervisor::{BgpStep, Standing};

/// Where FRR keeps its daemons' vty sockets (under `<pathspace>/` for a pathspace).
pub const FRR_RUN_DIR: &str = "/var/run/frr";

/// Which bgpd and zebra answer now: their vty sockets' device, inode and change time (`None`:
/// not there). The change time tells a new socket even where a file system reuses the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrrIdentity {
    bgpd: Option<(u64, u64, i64, i64)>,
    zebra: Option<(u64, u64, i64, i64)>,
}

impl FrrIdentity {
    /// A look at the vty sockets of the bgpd that `bgp` drives.
    pub fn of(bgp: &Bgp) -> FrrIdentity {
        match &bgp.pathspace {
            Some(ps) => FrrIdentity::in_dir(&PathBuf::from(FRR_RUN_DIR).join(ps.as_str())),
            None => FrrIdentity::in_dir(&PathBuf::from(FRR_RUN_DIR)),
        }
    }

    /// A look at the vty sockets in `dir`.
    fn in_dir(dir: &std::path::Path) -> FrrIdentity {
        let socket = |daemon: &str| {
            std::fs::metadata(dir.join(format!("{daemon}.vty")))
                .ok()
                .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
        };
        FrrIdentity {
            bgpd: socket("bgpd"),
            zebra: socket("zebra"),
        }
    }

    /// Whether bgpd's vty socket is there.
    pub fn bgpd_up(&self) -> bool {
        self.bgpd.is_some()
    }
}

/// The announcer's state: the section in force, its bgpd and loopback.
pub struct Announcer {
    bgp: Option<Bgp>,
    bgpd: Option<Bgpd>,
    loopback: Option<Loopback>,
    /// The prefixes bgpd was last told to announce.
    announced: Option<Vec<Prefix>>,
    metrics: Metrics,
}

impl Announcer {
    /// An announcer for `bgp` (nothing applied yet), recording into `metrics`.
    pub fn new(bgp: Option<Bgp>, metrics: Metrics) -> Self {
        Announcer {
            bgpd: bgp.as_ref().map(Bgpd::new),
            loopback: bgp
                .as_ref()
                .map(|b| Loopback::new(b.loopback.clone(), with_suffix(&b.config, ".loopback"))),
            bgp,
            announced: None,
            metrics,
        }
    }

    /// The prefixes bgpd was last told to announce (empty: withdrawn); `None` before the first
    /// step that succeeded.
    pub fn announced(&self) -> Option<&[Prefix]> {
        self.announced.as_deref()
    }

    /// Carries out `step` (see the module documentation); `standing` is for the log.
    pub async fn step(&mut self, step: BgpStep, standing: Standing) -> Result<(), BgpError> {
        self.reconfigure(step.config, standing).await;
        self.metrics.bgp_section(self.bgp.as_ref());
        if step.reread
            && let Some(bgpd) = &mut self.bgpd
        {
            bgpd.forget();
        }
        self.converge(step.announce, standing).await
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
        *self = Announcer::new(new, self.metrics.clone());
    }

    /// Announces the configured prefixes (`announce`) or nothing; logs what changed.
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
                "bgp {} failed: {e}",
                if announce {
                    "announcement"
                } else {
                    "withdrawal"
                }
            ),
        }
        if result.is_ok() {
            self.metrics.bgp_prefixes(prefixes.len());
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
    let text = render(bgp, prefixes);
    let outcome = match bgpd.apply(&text).await {
        Err(e @ BgpError::Io { .. }) if prefixes.is_empty() => {
            if bgpd.tell_unwritten(&text).await? {
                warn!(
                    "bgp withdrawal told to bgpd although its file could not be written; the \
                     file follows once it can be error=\"{e}\""
                );
            }
            return Err(e);
        }
        other => other?,
    };
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
    use crate::supervisor::Role;
    use crate::supervisor::components::announce_wanted;

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
                announce_wanted(bgp, standing),
                want,
                "enabled={} require_running={:?} {standing:?}",
                bgp.is_some(),
                bgp.map(|b| b.require_running)
            );
        }
    }

    #[test]
    fn frr_identity_changes_when_a_vty_socket_is_made_anew() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = FrrIdentity::in_dir(dir.path());
        assert!(!none.bgpd_up());
        let bind = |daemon: &str| {
            std::os::unix::net::UnixListener::bind(dir.path().join(format!("{daemon}.vty")))
                .expect("bind")
        };
        let (bgpd, _zebra) = (bind("bgpd"), bind("zebra"));
        let up = FrrIdentity::in_dir(dir.path());
        assert!(up.bgpd_up());
        assert_ne!(up, none);
        assert_eq!(up, FrrIdentity::in_dir(dir.path()), "unchanged");
        // bgpd restarts: its socket is removed and made anew.
        drop(bgpd);
        std::fs::remove_file(dir.path().join("bgpd.vty")).expect("remove");
        let _bgpd = bind("bgpd");
        assert_ne!(FrrIdentity::in_dir(dir.path()), up, "a new bgpd");
        // And the default run dir is where Debian's FRR keeps them.
        let mut b = bgp(false);
        b.pathspace = Some("keepserver-unit-test-none".parse().expect("word"));
        assert!(!FrrIdentity::of(&b).bgpd_up());
    }
}
