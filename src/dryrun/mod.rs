//! `check`'s dry run: the files the daemon would write, rendered from the config and the state it
//! would start from, and checked with the tools that will read them, without a running daemon
//! and without touching the live files.
//!
//! - haproxy.cfg: with the admin API, rendered from its store file as the daemon renders it at
//!   start; with the Libra worker, the haproxy.cfg it kept (the last good one, which a start
//!   serves again). Checked with `haproxy -c -f`.
//! - bgpd.conf: rendered from the `bgp` section in force (the admin API's stored `/api/quagga`
//!   peering when there is one) as announced on MASTER; the withdrawn file has the same lines
//!   less the `network` statements. Checked with `vtysh --dryrun -f`, as the announcer checks it,
//!   and with `bgp.apply: frr-reload` also with `frr-reload.py --test` against an empty running
//!   configuration.
//!
//! [`plan()`] decides what to render (pure, from [`State`], which [`State::read`] reads);
//! [`validate`] runs the checkers on copies in a private temporary directory. Every problem is
//! collected as a [`Finding`], so `check` reports them all at once.

pub mod plan;
pub mod validate;

use std::fmt;
use std::path::PathBuf;

use crate::config::Config;

pub use plan::{Plan, State, plan};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// What was checked and passed, or why there was nothing to check.
    Note,
    /// Worth saying, refuses nothing: a check that could not run (its tool is not installed), a
    /// checker's warning.
    Warning,
    /// An external checker refused a file keepserver would write.
    Failed,
    /// keepserver itself would refuse the state it would start from (a store that does not
    /// load, a file it cannot read).
    Error,
}

/// One result of the dry run: what it is about and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// What it is about: a file, and where its content comes from.
    pub subject: String,
    /// What was found.
    pub message: String,
}

impl Finding {
    fn new(severity: Severity, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            severity,
            subject: subject.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// A file the daemon would write, and the checkers to run on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    /// The file's name, as the checkers see it in the temporary directory.
    pub name: &'static str,
    /// Where the daemon would write it.
    pub live: PathBuf,
    /// Where its content comes from, for messages.
    pub origin: String,
    /// Whether the text is the live file's own (else it is rendered).
    pub kept: bool,
    /// The content.
    pub text: String,
    /// The checkers, in order.
    pub checks: Vec<Check>,
}

impl Artefact {
    /// The artefact's name in messages: its live path and where it comes from.
    pub fn subject(&self) -> String {
        format!("{} ({})", self.live.display(), self.origin)
    }

    /// What a checker's messages should call the checked copy: the live file when the text is
    /// its own, else the live file marked as rendered.
    pub fn shown(&self) -> String {
        if self.kept {
            self.live.display().to_string()
        } else {
            format!("{} (rendered)", self.live.display())
        }
    }
}

/// An external checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `haproxy -c -f FILE`.
    Haproxy {
        /// The HAProxy binary the daemon would run.
        binary: PathBuf,
    },
    /// `vtysh --dryrun -f FILE`.
    Vtysh {
        /// The vtysh the announcer would run.
        binary: PathBuf,
    },
    /// `frr-reload.py --test --daemon bgpd --input EMPTY FILE` (no daemon needed).
    FrrReload {
        /// The script the announcer would run.
        script: PathBuf,
        /// The vtysh it runs (`--bindir` is its directory).
        vtysh: PathBuf,
        /// FRR's pathspace, when the section names one.
        pathspace: Option<String>,
    },
}

/// The dry run of `config`: reads the state the daemon would start from, plans the files and
/// checks them. The findings of the plan come first.
pub async fn run(config: &Config) -> Vec<Finding> {
    let state = State::read(config);
    let Plan {
        artefacts,
        mut findings,
    } = plan(config, &state);
    findings.extend(validate::validate(&artefacts).await);
    findings
}
