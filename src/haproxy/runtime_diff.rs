//! Which changes between two load-balancer models a running HAProxy 2.6 can take through its
//! runtime API, without a reload, and the CLI commands that make them.
//!
//! Pure: no I/O. [`runtime_changes`] answers `None` (reload) unless the two models differ only
//! in servers of pools whose other settings are equal: a server added, removed, re-weighted,
//! enabled or disabled. Frontends, peers, pool options, checks, persistence and the set of
//! pools always need a reload, and so do server changes HAProxy cannot make at run time:
//!
//! - any server change in a pool with `balance source` (a static algorithm: HAProxy refuses
//!   dynamic servers and takes only weights of 0 or 100 %) or in a disabled pool;
//! - a server added to a pool with persistence (HAProxy refuses `cookie` on a dynamic server,
//!   and stick tables remember servers by an id that the next start numbers differently) or
//!   with a PING check (an external check), or with a hostname (a dynamic server does not
//!   resolve one);
//! - a server removed from a pool with a stick table, for the same ids;
//! - a server's address, port or `backup` changed.
//!
//! A server is added with the very words that follow its name in the file
//! ([`super::render::server_spec`]), so the next start from the file has the same server.
//! Every command is made of names (restricted by [`Name`]), parsed addresses and numbers;
//! [`Command::new`] asserts it, so nothing can end a command (`;`, a newline) or start another.

use super::model::{Balance, Balancer, CheckKind, Member, Name, Persistence, Pool};
use super::render::server_spec;

/// One server change the running HAProxy takes at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeChange {
    /// A new server, declared as the file declares it (in maintenance if it is disabled).
    Add {
        /// The backend.
        backend: Name,
        /// The server.
        server: Name,
        /// Its address and options, as on its `server` line.
        spec: String,
        /// Whether it takes traffic (a dynamic server starts in maintenance).
        enable: bool,
        /// Whether it is health-checked (a dynamic server's check starts stopped).
        health: bool,
    },
    /// A server goes: into maintenance, then deleted (HAProxy refuses while it has
    /// connections).
    Remove {
        /// The backend.
        backend: Name,
        /// The server.
        server: Name,
    },
    /// A server's weight.
    Weight {
        /// The backend.
        backend: Name,
        /// The server.
        server: Name,
        /// The new weight (0: no new connections, a drain).
        weight: u16,
    },
    /// A server enabled (`ready`) or put in maintenance (`maint`).
    State {
        /// The backend.
        backend: Name,
        /// The server.
        server: Name,
        /// Whether it takes traffic.
        enabled: bool,
    },
}

/// What HAProxy answers a command that worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Success {
    /// Nothing (`set server`, `enable server`, `enable health`).
    Silent,
    /// This line.
    Says(&'static str),
}

/// One runtime API command and the answer that means it worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    line: String,
    success: Success,
}

impl Command {
    /// A command line. Panics if it holds anything but letters, digits, spaces and
    /// `_ . - : / [ ]`: nothing in it may end the command or start another.
    pub fn new(line: String, success: Success) -> Command {
        assert!(
            line.chars()
                .all(|c| c.is_ascii_alphanumeric() || " _.-:/[]".contains(c)),
            "a runtime API command holds only names, addresses and numbers: {line:?}"
        );
        Command { line, success }
    }

    /// The command as sent.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Whether `answer` says the command worked.
    pub fn succeeded(&self, answer: &str) -> bool {
        match self.success {
            Success::Silent => answer.trim().is_empty(),
            Success::Says(line) => answer.trim() == line,
        }
    }
}

impl RuntimeChange {
    /// The backend the change is in.
    pub fn backend(&self) -> &Name {
        match self {
            RuntimeChange::Add { backend, .. }
            | RuntimeChange::Remove { backend, .. }
            | RuntimeChange::Weight { backend, .. }
            | RuntimeChange::State { backend, .. } => backend,
        }
    }

    /// The commands that make the change, in order.
    pub fn commands(&self) -> Vec<Command> {
        let silent = |line: String| Command::new(line, Success::Silent);
        match self {
            RuntimeChange::Add {
                backend,
                server,
                spec,
                enable,
                health,
            } => {
                let target = format!("{backend}/{server}");
                let mut commands = vec![Command::new(
                    format!("add server {target} {spec}"),
                    Success::Says("New server registered."),
                )];
                if *health {
                    commands.push(silent(format!("enable health {target}")));
                }
                if *enable {
                    commands.push(silent(format!("enable server {target}")));
                }
                commands
            }
            RuntimeChange::Remove { backend, server } => vec![
                silent(format!("set server {backend}/{server} state maint")),
                Command::new(
                    format!("del server {backend}/{server}"),
                    Success::Says("Server deleted."),
                ),
            ],
            RuntimeChange::Weight {
                backend,
                server,
                weight,
            } => vec![silent(format!(
                "set server {backend}/{server} weight {weight}"
            ))],
            RuntimeChange::State {
                backend,
                server,
                enabled,
            } => {
                let state = if *enabled { "ready" } else { "maint" };
                vec![silent(format!(
                    "set server {backend}/{server} state {state}"
                ))]
            }
        }
    }
}

/// The runtime changes that turn a HAProxy serving `old` into one serving `new`, or `None` when
/// `new` needs a reload (see the module documentation). No changes: the models are the same.
/// Additions come first and removals last, so a pool whose servers are all replaced keeps one.
pub fn runtime_changes(old: &Balancer, new: &Balancer) -> Option<Vec<RuntimeChange>> {
    if old.listeners() != new.listeners()
        || old.peers() != new.peers()
        || old.pools().len() != new.pools().len()
    {
        return None;
    }
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for (before, after) in old.pools().iter().zip(new.pools()) {
        if !same_settings(before, after) {
            return None;
        }
        if before.members == after.members {
            continue;
        }
        if !after.enabled || after.balance == Balance::SourceIp {
            return None;
        }
        for member in &after.members {
            match before.members.iter().find(|m| m.name == member.name) {
                None => added.push(addition(after, member)?),
                Some(was) => changed.extend(update(after, was, member)?),
            }
        }
        for was in &before.members {
            if !after.members.iter().any(|m| m.name == was.name) {
                removed.push(removal(after, was)?);
            }
        }
    }
    added.extend(changed);
    added.extend(removed);
    Some(added)
}

/// Everything of a pool but its servers.
fn same_settings(a: &Pool, b: &Pool) -> bool {
    a.name == b.name
        && a.enabled == b.enabled
        && a.mode == b.mode
        && a.balance == b.balance
        && a.persistence == b.persistence
        && a.monitor == b.monitor
}

fn addition(pool: &Pool, member: &Member) -> Option<RuntimeChange> {
    let pinging = pool
        .monitor
        .as_ref()
        .is_some_and(|m| m.kind == CheckKind::Ping);
    if pool.persistence.is_some() || pinging || member.address.ip().is_none() {
        return None;
    }
    Some(RuntimeChange::Add {
        backend: pool.name.clone(),
        server: member.name.clone(),
        spec: server_spec(member, pool),
        enable: member.enabled,
        health: pool.monitor.is_some(),
    })
}

fn removal(pool: &Pool, member: &Member) -> Option<RuntimeChange> {
    let stick_table = matches!(
        pool.persistence,
        Some(Persistence::SourceIp { .. } | Persistence::AppCookie { .. })
    );
    (!stick_table).then(|| RuntimeChange::Remove {
        backend: pool.name.clone(),
        server: member.name.clone(),
    })
}

fn update(pool: &Pool, was: &Member, member: &Member) -> Option<Vec<RuntimeChange>> {
    if was.address != member.address || was.port != member.port || was.backup != member.backup {
        return None;
    }
    let mut changes = Vec::new();
    if was.weight != member.weight {
        changes.push(RuntimeChange::Weight {
            backend: pool.name.clone(),
            server: member.name.clone(),
            weight: member.weight,
        });
    }
    if was.enabled != member.enabled {
        changes.push(RuntimeChange::State {
            backend: pool.name.clone(),
            server: member.name.clone(),
            enabled: member.enabled,
        });
    }
    Some(changes)
}

#[cfg(test)]
mod tests;
