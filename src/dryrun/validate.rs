//! Running the external checkers on the dry run's files: each file is written into a private
//! temporary directory (removed at the end; the live files and the workspace are not touched),
//! each checker is run to its end under a time limit ([`crate::tool`]), and its answer is judged
//! into findings ([`judge`], pure). A checker that is not installed is a warning that the check
//! was skipped, not a failure.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use super::{Artefact, Check, Finding, Severity};
use crate::bgp::error::quote_output;
use crate::haproxy::driver::CHECK_TIMEOUT;
use crate::haproxy::error::summarize_output;
use crate::tool::{self, ToolError};

/// How a checker ended, when it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// It exited 0.
    pub success: bool,
    /// How it ended, for messages (`exit status: 2`).
    pub status: String,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// Why a checker did not run to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRun {
    /// The program is not there.
    Missing,
    /// It could not be started, or its output not read: why.
    Broken(String),
    /// It outlived its time limit and was killed.
    Timeout(Duration),
}

impl Check {
    /// The command as messages name it.
    pub fn title(&self) -> &'static str {
        match self {
            Check::Haproxy { .. } => "haproxy -c",
            Check::Vtysh { .. } => "vtysh --dryrun",
            Check::FrrReload { .. } => "frr-reload.py --test",
        }
    }

    /// The program run.
    pub fn program(&self) -> &Path {
        match self {
            Check::Haproxy { binary } | Check::Vtysh { binary } => binary,
            Check::FrrReload { script, .. } => script,
        }
    }

    /// Its arguments for checking `file`; `scratch` is a private directory it may write in.
    pub fn args(&self, file: &Path, scratch: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = match self {
            Check::Haproxy { .. } => vec!["-c".into(), "-f".into()],
            Check::Vtysh { .. } => vec!["--dryrun".into(), "-f".into()],
            Check::FrrReload {
                vtysh, pathspace, ..
            } => {
                // The running configuration it compares with is an empty file: no daemon needed.
                let mut args: Vec<OsString> = ["--test", "--daemon", "bgpd", "--stdout", "--input"]
                    .map(OsString::from)
                    .into();
                args.push(scratch.join(EMPTY).into());
                args.extend(["--rundir".into(), scratch.as_os_str().to_owned()]);
                if let Some(ps) = pathspace {
                    args.extend(["--pathspace".into(), ps.into()]);
                }
                if let Some(bindir) = vtysh.parent().filter(|d| !d.as_os_str().is_empty()) {
                    args.extend(["--bindir".into(), bindir.as_os_str().to_owned()]);
                }
                args
            }
        };
        args.push(file.as_os_str().to_owned());
        args
    }

    /// How long it may take.
    fn within(&self) -> Duration {
        match self {
            Check::Haproxy { .. } => CHECK_TIMEOUT,
            Check::Vtysh { .. } | Check::FrrReload { .. } => crate::bgp::apply::COMMAND_TIMEOUT,
        }
    }
}

/// The empty running configuration `frr-reload.py --test` compares with.
const EMPTY: &str = "running-config-empty.conf";

/// Checks every artefact with its checkers (see the module documentation).
pub async fn validate(artefacts: &[Artefact]) -> Vec<Finding> {
    if artefacts.is_empty() {
        return Vec::new();
    }
    let scratch = match tempfile::Builder::new()
        .prefix("keepserver-check-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => {
            return vec![Finding::new(
                Severity::Failed,
                "dry run",
                format!("cannot make a temporary directory to check the files in: {e}"),
            )];
        }
    };
    let mut findings = Vec::new();
    for (i, artefact) in artefacts.iter().enumerate() {
        let dir = scratch.path().join(i.to_string());
        let file = dir.join(artefact.name);
        let written = async {
            tokio::fs::create_dir(&dir).await?;
            tokio::fs::write(dir.join(EMPTY), "").await?;
            tokio::fs::write(&file, &artefact.text).await
        };
        if let Err(e) = written.await {
            findings.push(Finding::new(
                Severity::Failed,
                artefact.subject(),
                format!("not checked: cannot write it into {}: {e}", dir.display()),
            ));
            continue;
        }
        for check in &artefact.checks {
            let ran = run(check, &file, &dir).await;
            findings.extend(judge(check, artefact, &file, ran));
        }
    }
    findings
}

/// Runs `check` on `file` to its end.
async fn run(check: &Check, file: &Path, scratch: &Path) -> Result<Ran, NotRun> {
    let within = check.within();
    match tool::output(check.program(), &check.args(file, scratch), within).await {
        Ok(output) => Ok(Ran {
            success: output.status.success(),
            status: output.status.to_string(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }),
        Err(ToolError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(NotRun::Missing)
        }
        Err(ToolError::Spawn(e)) => Err(NotRun::Broken(format!("cannot be started: {e}"))),
        Err(ToolError::Read(e)) => Err(NotRun::Broken(format!("its output was lost: {e}"))),
        Err(ToolError::Timeout) => Err(NotRun::Timeout(within)),
    }
}

/// What `check`'s answer on `file` (the copy of `artefact`) says, with the copy's path shown as
/// the artefact's.
pub fn judge(
    check: &Check,
    artefact: &Artefact,
    file: &Path,
    ran: Result<Ran, NotRun>,
) -> Vec<Finding> {
    let subject = artefact.subject();
    let title = check.title();
    let program = check.program().display();
    let ran = match ran {
        Ok(ran) => ran,
        Err(NotRun::Missing) => {
            return vec![Finding::new(
                Severity::Warning,
                subject,
                format!("`{title}` skipped: {program} is not installed (not found)"),
            )];
        }
        Err(NotRun::Broken(why)) => {
            return vec![Finding::new(
                Severity::Failed,
                subject,
                format!("`{title}` did not run: {program} {why}"),
            )];
        }
        Err(NotRun::Timeout(after)) => {
            return vec![Finding::new(
                Severity::Failed,
                subject,
                format!(
                    "`{title}` did not finish within {} s and was killed",
                    after.as_secs()
                ),
            )];
        }
    };
    let shown = shown_as(artefact, file);
    let mut findings = Vec::new();
    if ran.success {
        findings.push(Finding::new(
            Severity::Note,
            subject.clone(),
            format!("valid (`{title}`)"),
        ));
        if matches!(check, Check::Haproxy { .. }) {
            let output = shown(&format!("{}{}", ran.stderr, ran.stdout));
            if output.contains("[WARNING]") {
                findings.push(Finding::new(
                    Severity::Warning,
                    subject,
                    format!(
                        "`{title}` accepted it with warnings: {}",
                        summarize_output(&output)
                    ),
                ));
            }
        }
        return findings;
    }
    let said = match check {
        Check::Haproxy { .. } => summarize_output(&shown(&format!("{}{}", ran.stderr, ran.stdout))),
        Check::Vtysh { .. } => quote_output(&shown(&format!("{}\n{}", ran.stderr, ran.stdout))),
        Check::FrrReload { .. } => quote_output(&frr_reload_errors(&shown(&format!(
            "{}\n{}",
            ran.stderr, ran.stdout
        )))),
    };
    findings.push(Finding::new(
        Severity::Failed,
        subject,
        format!("`{title}` refused it ({}): {said}", ran.status),
    ));
    findings
}

/// Replaces the checked copy's path, in a checker's output, by what the artefact is shown as.
fn shown_as(artefact: &Artefact, file: &Path) -> impl Fn(&str) -> String {
    let copy = file.to_string_lossy().into_owned();
    let shown = artefact.shown();
    move |text: &str| text.replace(&copy, &shown)
}

/// frr-reload.py's output without its progress lines (`INFO:`) and terminal colours: what is
/// left says what went wrong.
fn frr_reload_errors(output: &str) -> String {
    let plain = strip_colours(output);
    let kept: Vec<&str> = plain
        .lines()
        .filter(|l| !l.contains(" INFO: ") && !l.contains(" DEBUG: "))
        .collect();
    kept.join("\n")
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
