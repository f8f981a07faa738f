//! HAProxy's statistics, read directly from the admin stats socket with `show stat` (no socat):
//! per-node status and counters for STATS, bytes out per frontend for METRICS. The CSV parser is
//! pure and works on the header's field names, not positions.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::cli;
use super::error::HaproxyError;

/// The command that dumps the statistics CSV.
pub const SHOW_STAT: &str = "show stat";

/// One backend server (a node) as HAProxy reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStat {
    /// The backend (proxy) name (Libra's: `http-servers` or `tcp-servers`).
    pub backend: String,
    /// The server name (Libra's: the node id, or `node-N`).
    pub server: String,
    /// HAProxy's status: `UP`, `DOWN`, `MAINT`, `no check`, `UP 1/3` (going down), ...
    pub status: String,
    /// Current sessions.
    pub current_sessions: u64,
    /// Sessions since HAProxy started (or was last reloaded).
    pub total_sessions: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    /// The last health check's result (`L4OK`, `L7OK`, `L4CON`, ...), if the node is checked.
    pub check_status: Option<String>,
}

/// The per-node statistics of the HAProxy serving `socket`.
pub async fn node_stats(socket: &Path) -> Result<Vec<NodeStat>, HaproxyError> {
    Ok(servers(show_stat(socket).await?))
}

/// Bytes sent to clients by each frontend of the HAProxy serving `socket`, by frontend name.
pub async fn frontend_bytes_out(socket: &Path) -> Result<BTreeMap<String, u64>, HaproxyError> {
    let rows = show_stat(socket).await?;
    Ok(bytes_out_by_frontend(&rows))
}

async fn show_stat(socket: &Path) -> Result<Vec<StatRow>, HaproxyError> {
    let answer = cli::command(socket, SHOW_STAT).await.map_err(|source| {
        if cli::is_absent(&source) {
            HaproxyError::NotRunning {
                socket: socket.to_owned(),
                source,
            }
        } else {
            HaproxyError::Socket {
                socket: socket.to_owned(),
                command: SHOW_STAT.into(),
                source,
            }
        }
    })?;
    parse_rows(&answer).map_err(|reason| HaproxyError::BadAnswer {
        command: SHOW_STAT.into(),
        reason,
    })
}

fn servers(rows: Vec<StatRow>) -> Vec<NodeStat> {
    rows.into_iter()
        .filter(|row| row.kind == RowKind::Server)
        .map(StatRow::into_node_stat)
        .collect()
}

fn bytes_out_by_frontend(rows: &[StatRow]) -> BTreeMap<String, u64> {
    rows.iter()
        .filter(|row| row.kind == RowKind::Frontend)
        .map(|row| (row.proxy.clone(), row.bytes_out))
        .collect()
}

/// What a `show stat` row describes (its `type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A frontend (`type` 0).
    Frontend,
    /// A backend (`type` 1).
    Backend,
    /// A server of a backend (`type` 2).
    Server,
    /// A listener of a frontend (`type` 3).
    Listener,
}

/// The fields of one `show stat` row that keepserver uses. Public only so that the fuzz targets
/// can call [`parse_rows`]; the fields stay crate-private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    pub(crate) proxy: String,
    service: String,
    pub(crate) kind: RowKind,
    status: String,
    current_sessions: u64,
    total_sessions: u64,
    bytes_in: u64,
    bytes_out: u64,
    check_status: String,
}

impl StatRow {
    fn into_node_stat(self) -> NodeStat {
        NodeStat {
            backend: self.proxy,
            server: self.service,
            status: self.status,
            current_sessions: self.current_sessions,
            total_sessions: self.total_sessions,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            // HAProxy marks a check in progress with "* " before the last result.
            check_status: Some(self.check_status.trim_start_matches("* ").to_string())
                .filter(|s| !s.is_empty()),
        }
    }
}

/// Parses a `show stat` answer: a `# pxname,svname,...` header, then one CSV row per proxy,
/// server and listener. An error says what is missing or malformed.
pub fn parse_rows(csv: &str) -> Result<Vec<StatRow>, String> {
    let mut lines = csv.lines().filter(|line| !line.trim().is_empty());
    let header = lines
        .next()
        .and_then(|line| line.strip_prefix("# "))
        .ok_or_else(|| format!("no `# pxname,...` header line in {:?}", first_line(csv)))?;
    let columns = Columns::new(&split_csv(header))?;
    lines
        .enumerate()
        .map(|(i, line)| {
            columns
                .row(&split_csv(line))
                .map_err(|e| format!("row {}: {e}", i + 1))
        })
        .collect()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The positions of the used fields in the header.
struct Columns {
    proxy: usize,
    service: usize,
    kind: usize,
    status: usize,
    current_sessions: usize,
    total_sessions: usize,
    bytes_in: usize,
    bytes_out: usize,
    check_status: usize,
}

impl Columns {
    fn new(header: &[String]) -> Result<Self, String> {
        let at = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| format!("the header has no `{name}` field"))
        };
        Ok(Columns {
            proxy: at("pxname")?,
            service: at("svname")?,
            kind: at("type")?,
            status: at("status")?,
            current_sessions: at("scur")?,
            total_sessions: at("stot")?,
            bytes_in: at("bin")?,
            bytes_out: at("bout")?,
            check_status: at("check_status")?,
        })
    }

    fn row(&self, fields: &[String]) -> Result<StatRow, String> {
        let text = |at: usize| fields.get(at).cloned().unwrap_or_default();
        let number = |at: usize, name: &str| -> Result<u64, String> {
            let value = text(at);
            match value.as_str() {
                "" => Ok(0),
                digits => digits
                    .parse()
                    .map_err(|_| format!("field `{name}` is `{value}`, not a number")),
            }
        };
        Ok(StatRow {
            proxy: text(self.proxy),
            service: text(self.service),
            kind: row_kind(&text(self.kind))?,
            status: text(self.status),
            current_sessions: number(self.current_sessions, "scur")?,
            total_sessions: number(self.total_sessions, "stot")?,
            bytes_in: number(self.bytes_in, "bin")?,
            bytes_out: number(self.bytes_out, "bout")?,
            check_status: text(self.check_status),
        })
    }
}

fn row_kind(field: &str) -> Result<RowKind, String> {
    match field {
        "0" => Ok(RowKind::Frontend),
        "1" => Ok(RowKind::Backend),
        "2" => Ok(RowKind::Server),
        "3" => Ok(RowKind::Listener),
        other => Err(format!("field `type` is `{other}`, not 0-3")),
    }
}

/// Splits one CSV line; a field in double quotes may hold commas and `""` for a quote (HAProxy
/// quotes fields that need it).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests;
