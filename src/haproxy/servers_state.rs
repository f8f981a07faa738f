//! The running servers of one backend as `show servers state <backend>` reports them, and how
//! they compare with that pool of the model: after runtime changes, the running HAProxy must
//! have exactly the pool's servers, at their addresses and ports, with their weights and
//! administrative states. Pure: no I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::model::Pool;

/// The command that dumps one backend's servers.
pub const SHOW_SERVERS_STATE: &str = "show servers state";

/// The administrative-state bits that put a server in maintenance: forced (`maint`, a
/// dynamic server's start), inherited from a tracked server, or for a failed resolution. The
/// configuration's `disabled` (0x04) is cleared by a `ready`, so it does not count alone.
const MAINTENANCE: u32 = 0x01 | 0x02 | 0x20;

/// One server as `show servers state` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// The backend's name.
    pub backend: String,
    /// The server's name.
    pub name: String,
    /// Its address (`-` when it has none yet).
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Its administrative state, a mask.
    pub admin: u32,
    /// Its weight as set (`srv_uweight`).
    pub weight: u16,
}

impl ServerState {
    /// Whether it is in maintenance.
    pub fn in_maintenance(&self) -> bool {
        self.admin & MAINTENANCE != 0
    }
}

/// Parses the answer: a format version line (`1`), a `# be_id be_name ...` header, then a row
/// of space-separated fields per server. Columns are found by name.
pub fn parse(text: &str) -> Result<Vec<ServerState>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some("1") => {}
        other => return Err(format!("expected format version 1, got {other:?}")),
    }
    let header = lines
        .next()
        .and_then(|l| l.strip_prefix('#'))
        .ok_or("no `# be_id be_name ...` header line")?;
    let names: Vec<&str> = header.split_whitespace().collect();
    let column = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let at = [
        column("be_name")?,
        column("srv_name")?,
        column("srv_addr")?,
        column("srv_port")?,
        column("srv_admin_state")?,
        column("srv_uweight")?,
    ];
    lines
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let field = |i: usize| {
                fields
                    .get(at[i])
                    .copied()
                    .ok_or_else(|| format!("row {line:?} is short"))
            };
            let number = |i: usize| {
                field(i)?
                    .parse::<u32>()
                    .map_err(|_| format!("row {line:?}: field {} is not a number", at[i] + 1))
            };
            let small = |i: usize| {
                u16::try_from(number(i)?).map_err(|_| format!("row {line:?}: field too large"))
            };
            Ok(ServerState {
                backend: field(0)?.to_owned(),
                name: field(1)?.to_owned(),
                address: field(2)?.to_owned(),
                port: small(3)?,
                admin: number(4)?,
                weight: small(5)?,
            })
        })
        .collect()
}

/// How the running servers differ from `pool`'s members, or `None` if they agree: the same
/// names, and for each its port, weight, maintenance (a disabled member) and, for an IP
/// address, the address (a hostname is resolved by HAProxy).
pub fn disagreement(pool: &Pool, servers: &[ServerState]) -> Option<String> {
    let running: BTreeMap<&str, &ServerState> = servers
        .iter()
        .filter(|s| s.backend == pool.name.as_str())
        .map(|s| (s.name.as_str(), s))
        .collect();
    let mut problems = Vec::new();
    for member in &pool.members {
        let Some(server) = running.get(member.name.as_str()) else {
            problems.push(format!("{} is missing", member.name));
            continue;
        };
        if let Some(ip) = member.address.ip()
            && server.address.parse::<IpAddr>() != Ok(ip)
        {
            problems.push(format!(
                "{} has address {}, not {ip}",
                member.name, server.address
            ));
        }
        if server.port != member.port {
            problems.push(format!(
                "{} has port {}, not {}",
                member.name, server.port, member.port
            ));
        }
        if server.weight != member.weight {
            problems.push(format!(
                "{} has weight {}, not {}",
                member.name, server.weight, member.weight
            ));
        }
        if server.in_maintenance() == member.enabled {
            let state = |maint: bool| if maint { "in maintenance" } else { "ready" };
            problems.push(format!(
                "{} is {}, not {}",
                member.name,
                state(server.in_maintenance()),
                state(!member.enabled)
            ));
        }
    }
    for name in running.keys() {
        if !pool.members.iter().any(|m| m.name.as_str() == *name) {
            problems.push(format!("{name} should not be there"));
        }
    }
    (!problems.is_empty()).then(|| format!("backend {}: {}", pool.name, problems.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::model::{Balance, Member, Mode, Name};

    /// A real answer of HAProxy 2.6.12 (one config server, then dynamic ones).
    const ANSWER: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state \
srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status \
srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id \
srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr \
srv_agent_addr srv_agent_port\n\
3 be 1 a 127.0.0.1 2 4 10 10 0 1 0 2 6 0 0 0 - 18081 - 0 0 - - 0\n\
3 be 2 b 127.0.0.1 2 8 3 5 0 15 3 4 6 0 0 0 - 18082 - 0 0 - - 0\n\
3 be 4 v6 ::1 0 1 4 4 0 1 0 0 0 0 0 0 - 18443 - 0 0 - - 0\n\n";

    fn member(name: &str, address: &str, port: u16, weight: u16, enabled: bool) -> Member {
        Member {
            name: Name::new("member", name).expect("name"),
            address: address.parse().expect("address"),
            port,
            weight,
            enabled,
            backup: false,
        }
    }

    fn pool(members: Vec<Member>) -> Pool {
        Pool {
            name: Name::new("pool", "be").expect("name"),
            enabled: true,
            mode: Mode::Http,
            balance: Balance::RoundRobin,
            persistence: None,
            monitor: None,
            members,
        }
    }

    fn agreeing() -> Vec<Member> {
        vec![
            member("a", "127.0.0.1", 18081, 10, true),
            member("b", "127.0.0.1", 18082, 3, true),
            member("v6", "::1", 18443, 4, false),
        ]
    }

    #[test]
    fn parses_a_real_answer() {
        let servers = parse(ANSWER).expect("parses");
        assert_eq!(servers.len(), 3);
        assert_eq!(
            servers[1],
            ServerState {
                backend: "be".into(),
                name: "b".into(),
                address: "127.0.0.1".into(),
                port: 18082,
                admin: 8,
                weight: 3,
            }
        );
        // 4: disabled in the file but set ready since; 1: forced into maintenance.
        assert!(!servers[0].in_maintenance());
        assert!(servers[2].in_maintenance());
    }

    #[test]
    fn refuses_what_is_not_a_servers_state() {
        assert!(parse("Can't find backend.\n").is_err());
        assert!(parse("1\n3 be 1 a\n").is_err());
        assert!(parse("1\n# be_name srv_name\n").is_err());
        let short = "1\n# be_name srv_name srv_addr srv_port srv_admin_state srv_uweight\nbe a\n";
        assert!(parse(short).expect_err("short").contains("short"));
    }

    #[test]
    fn the_running_servers_agree_with_the_pool() {
        let servers = parse(ANSWER).expect("parses");
        assert_eq!(disagreement(&pool(agreeing()), &servers), None);
    }

    #[test]
    fn every_difference_is_named() {
        let servers = parse(ANSWER).expect("parses");
        let mut members = agreeing();
        members[0] = member("a", "127.0.0.2", 18081, 10, true);
        members[1] = member("b", "127.0.0.1", 18083, 7, false);
        members[2] = member("c", "::1", 18443, 4, false);
        assert_eq!(
            disagreement(&pool(members), &servers).expect("disagrees"),
            "backend be: a has address 127.0.0.1, not 127.0.0.2, b has port 18082, not 18083, \
             b has weight 3, not 7, b is ready, not in maintenance, c is missing, \
             v6 should not be there"
        );
    }

    #[test]
    fn a_hostname_is_compared_by_port_only() {
        let servers = parse(ANSWER).expect("parses");
        let mut members = agreeing();
        members[0] = member("a", "web.example", 18081, 10, true);
        assert_eq!(disagreement(&pool(members), &servers), None);
    }
}
