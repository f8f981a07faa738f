//! The master CLI of HAProxy's master-worker mode: `show proc` (pids, reload and failure
//! counts), `reload`, and commands routed to one worker with `@!<pid>` (statistics, and the
//! runtime API's server changes). The waits that make a start or reload return only once the
//! new worker serves live here.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::cli;
use super::error::HaproxyError;
use super::stats::{self, RowKind};

/// How often the master is polled while a worker comes up.
const POLL: Duration = Duration::from_millis(5);

/// What `show proc` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcTable {
    /// The master's pid; it stays the same across reloads.
    pub(crate) master: u32,
    /// Reloads since the master started.
    pub(crate) reloads: u32,
    /// Consecutive failed reloads (back to 0 after a successful one).
    pub(crate) failed: u32,
    /// The current workers.
    pub(crate) workers: Vec<u32>,
    /// Workers of earlier configurations still draining connections.
    pub(crate) old_workers: Vec<u32>,
}

impl ProcTable {
    /// Every worker pid, current and old.
    pub(crate) fn all_workers(&self) -> BTreeSet<u32> {
        self.workers
            .iter()
            .chain(&self.old_workers)
            .copied()
            .collect()
    }
}

/// `show proc` on the master CLI; `None` when no master answers (not running, or re-executing
/// during a reload).
pub(crate) async fn proc_table(socket: &Path) -> Result<Option<ProcTable>, HaproxyError> {
    let command = "show proc";
    match cli::command(socket, command).await {
        Ok(answer) if answer.trim().is_empty() => Ok(None),
        Ok(answer) => parse_show_proc(&answer)
            .map(Some)
            .map_err(|reason| bad_answer(command, reason)),
        Err(e) if cli::is_unavailable(&e) => Ok(None),
        Err(source) => Err(socket_error(socket, command, source)),
    }
}

/// Asks the master to reload (re-execute with the configuration file, hand the listening
/// sockets to the new worker, soft-stop the old ones). The master closes the connection.
pub(crate) async fn request_reload(socket: &Path) -> Result<(), HaproxyError> {
    match cli::command(socket, "reload").await {
        Ok(_) => Ok(()),
        Err(e) if cli::is_unavailable(&e) && !cli::is_absent(&e) => Ok(()),
        Err(source) => Err(socket_error(socket, "reload", source)),
    }
}

/// Sends `command` to worker `pid` through the master and returns its answer.
pub(crate) async fn worker_command(
    socket: &Path,
    pid: u32,
    command: &str,
) -> Result<String, HaproxyError> {
    let routed = format!("@!{pid} {command}");
    cli::command(socket, &routed)
        .await
        .map_err(|source| socket_error(socket, &routed, source))
}

/// Waits for the master to finish the reload asked after `before`: returns the new worker's
/// pid, or [`HaproxyError::ReloadFailed`] when the master counts a failed reload.
pub(crate) async fn wait_reloaded(
    socket: &Path,
    before: &ProcTable,
    within: Duration,
) -> Result<u32, HaproxyError> {
    let deadline = Instant::now() + within;
    let known = before.all_workers();
    loop {
        if let Some(table) = proc_table(socket).await?
            && table.reloads > before.reloads
        {
            if table.failed > 0 {
                return Err(HaproxyError::ReloadFailed {
                    failed: table.failed,
                });
            }
            if let Some(pid) = table.workers.iter().find(|pid| !known.contains(pid)) {
                return Ok(*pid);
            }
        }
        pause_until(deadline, "the reloaded HAProxy's new worker", within).await?;
    }
}

/// Waits for the master of a fresh start to list a worker; returns its pid.
pub(crate) async fn wait_first_worker(
    socket: &Path,
    within: Duration,
) -> Result<u32, HaproxyError> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(pid) = proc_table(socket)
            .await?
            .and_then(|table| table.workers.first().copied())
        {
            return Ok(pid);
        }
        pause_until(deadline, "the started HAProxy's first worker", within).await?;
    }
}

/// Waits for worker `pid` to answer `show stat` through the master (so its event loop runs and
/// accepts on the listeners) and returns its frontends' names.
pub(crate) async fn wait_serving(
    socket: &Path,
    pid: u32,
    within: Duration,
) -> Result<BTreeSet<String>, HaproxyError> {
    let deadline = Instant::now() + within;
    let command = format!("@!{pid} {}", stats::SHOW_STAT);
    loop {
        match cli::command(socket, &command).await {
            Ok(answer) if answer.starts_with("# ") => return frontends(&command, &answer),
            Ok(_) => {}
            Err(e) if cli::is_unavailable(&e) => {}
            Err(source) => return Err(socket_error(socket, &command, source)),
        }
        pause_until(deadline, &format!("HAProxy worker {pid} serving"), within).await?;
    }
}

fn frontends(command: &str, answer: &str) -> Result<BTreeSet<String>, HaproxyError> {
    let rows = stats::parse_rows(answer).map_err(|reason| bad_answer(command, reason))?;
    Ok(rows
        .into_iter()
        .filter(|row| row.kind == RowKind::Frontend)
        .map(|row| row.proxy)
        .collect())
}

/// Sleeps one poll interval, or fails with a timeout naming `what` once `deadline` has passed.
async fn pause_until(deadline: Instant, what: &str, within: Duration) -> Result<(), HaproxyError> {
    if Instant::now() >= deadline {
        return Err(HaproxyError::Timeout {
            what: what.to_owned(),
            after: within,
        });
    }
    tokio::time::sleep(POLL).await;
    Ok(())
}

fn bad_answer(command: &str, reason: String) -> HaproxyError {
    HaproxyError::BadAnswer {
        command: command.to_owned(),
        reason,
    }
}

fn socket_error(socket: &Path, command: &str, source: std::io::Error) -> HaproxyError {
    HaproxyError::Socket {
        socket: socket.to_owned(),
        command: command.to_owned(),
        source,
    }
}

/// Which part of `show proc` a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Master,
    Workers,
    OldWorkers,
    Programs,
}

/// Parses `show proc`:
///
/// ```text
/// #<PID>          <type>          <reloads>       <uptime>        <version>
/// 13937           master          2 [failed: 1]   0d00h00m38s     2.6.12-1+deb12u4
/// # workers
/// 14408           worker          1               0d00h00m21s     2.6.12-1+deb12u4
/// # old workers
/// # programs
/// ```
pub(crate) fn parse_show_proc(text: &str) -> Result<ProcTable, String> {
    let mut section = Section::Master;
    let mut master = None;
    let (mut workers, mut old_workers) = (Vec::new(), Vec::new());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(heading) = line.strip_prefix('#') {
            section = section_after(heading.trim(), section);
            continue;
        }
        match section {
            Section::Master => master = Some(master_line(line)?),
            Section::Workers => workers.push(pid_of(line)?),
            Section::OldWorkers => old_workers.push(pid_of(line)?),
            Section::Programs => {}
        }
    }
    let (master, reloads, failed) =
        master.ok_or_else(|| format!("no master line in {:?}", text.trim()))?;
    Ok(ProcTable {
        master,
        reloads,
        failed,
        workers,
        old_workers,
    })
}

fn section_after(heading: &str, current: Section) -> Section {
    match heading {
        "workers" => Section::Workers,
        "old workers" => Section::OldWorkers,
        "programs" => Section::Programs,
        _ => current,
    }
}

/// `13937 master 2 [failed: 1] ...` as (pid, reloads, failed).
fn master_line(line: &str) -> Result<(u32, u32, u32), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.get(1) != Some(&"master") {
        return Err(format!("expected the master's line, got {line:?}"));
    }
    let number = |word: Option<&&str>| {
        word.map(|w| w.trim_end_matches(']'))
            .and_then(|w| w.parse::<u32>().ok())
            .ok_or_else(|| format!("malformed master line {line:?}"))
    };
    let failed_at = words.iter().position(|w| *w == "[failed:");
    let failed = match failed_at {
        Some(at) => number(words.get(at + 1))?,
        None => 0,
    };
    Ok((number(words.first())?, number(words.get(2))?, failed))
}

fn pid_of(line: &str) -> Result<u32, String> {
    line.split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("malformed process line {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELOADING: &str = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
13937           master          2 [failed: 1]   0d00h00m38s     2.6.12-1+deb12u4\n\
# workers\n\
14408           worker          1               0d00h00m21s     2.6.12-1+deb12u4\n\
# old workers\n\
13938           worker          3               0d00h00m43s     2.6.12-1+deb12u4\n\
13939           worker          3               0d00h00m43s     2.6.12-1+deb12u4\n\
# programs\n\
1244            foo             0               0d00h00m00s     -\n";

    #[test]
    fn parses_master_workers_and_old_workers() {
        let table = parse_show_proc(RELOADING).expect("parses");
        assert_eq!(
            table,
            ProcTable {
                master: 13937,
                reloads: 2,
                failed: 1,
                workers: vec![14408],
                old_workers: vec![13938, 13939],
            }
        );
        assert_eq!(table.all_workers(), BTreeSet::from([13938, 13939, 14408]));
    }

    #[test]
    fn a_fresh_master_has_no_failures_and_no_old_workers() {
        let text = "#<PID> <type> <reloads> <uptime> <version>\n\
1 master 0 [failed: 0] 0d00h00m09s 2.6.12\n# workers\n2 worker 0 0d00h00m09s 2.6.12\n# programs\n";
        let table = parse_show_proc(text).expect("parses");
        assert_eq!((table.master, table.reloads, table.failed), (1, 0, 0));
        assert_eq!(table.workers, vec![2]);
        assert!(table.old_workers.is_empty());
    }

    #[test]
    fn an_answer_without_master_is_an_error() {
        let error = parse_show_proc("Unknown command.\n").expect_err("no master");
        assert!(error.contains("Unknown command"), "{error}");
        assert!(parse_show_proc("").is_err());
    }
}
