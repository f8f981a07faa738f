//! Putting a rendered bgpd.conf in force: written beside the file keepserver owns and fsynced,
//! checked with FRR's own checker (`vtysh --dryrun -f`; `bgpd -C` exits 0 even when it reports
//! errors), told to the running bgpd, and only then renamed over the owned file. So the file in
//! place is always the last one bgpd accepted; a refused one is saved as `<config>-failed` and
//! the error carries FRR's output.
//!
//! bgpd is told without restarting its sessions, in one of two ways (`bgp.apply`):
//! - `vtysh` (default): read bgpd's running configuration and send only the commands that make
//!   it the file's (see [`super::diff`]: an announcement is one `network` line). Two vtysh calls
//!   of about 0.1 s; only bgpd is addressed (`-d bgpd`), so `log file` and `hostname` do not
//!   leak into zebra.
//! - `frr-reload`: FRR's `frr-reload.py --reload --daemon bgpd`, the general diff of the whole
//!   file; about a second on a small machine, for setups where bgpd.conf carries more than
//!   keepserver renders. It is run only when the running configuration differs from the file
//!   by keepserver's own reckoning.
//!
//! Nothing is written or told when the text equals the last one applied. The first apply after
//! keepserver starts, and the first after [`Bgpd::forget`] (bgpd restarted, or the periodic
//! re-read), reads bgpd's running configuration, so a bgpd left announcing by a crashed
//! keepserver, or restarted empty, is brought back in line; when the owned file already holds
//! the text it is not rewritten, and when bgpd already runs it nothing is sent.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{debug, info};

use super::diff;
use super::error::{BgpError, quote_output};
use super::model::ApplyMethod;
use crate::atomic_file::{self as files, with_suffix};
use crate::config::Bgp;
use crate::tool::{self, ToolError};

/// How long one FRR command may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(8);

/// What an apply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The text equals the one in force: nothing was written or told.
    Unchanged,
    /// The file was replaced and bgpd took it.
    Applied,
}

/// The owned bgpd.conf and how to reach the bgpd that runs it.
#[derive(Debug)]
pub struct Bgpd {
    config: PathBuf,
    method: ApplyMethod,
    vtysh: PathBuf,
    frr_reload: PathBuf,
    pathspace: Option<String>,
    /// The text bgpd last accepted from us.
    in_force: Option<String>,
}

/// A finished command: how it ended and what it printed.
struct Ran {
    command: String,
    ok: bool,
    status: String,
    output: String,
}

impl Bgpd {
    /// The bgpd described by the `bgp` section.
    pub fn new(bgp: &Bgp) -> Self {
        Bgpd {
            config: bgp.config.clone(),
            method: bgp.apply,
            vtysh: bgp.vtysh.clone(),
            frr_reload: bgp.frr_reload.clone(),
            pathspace: bgp.pathspace.as_ref().map(ToString::to_string),
            in_force: None,
        }
    }

    /// Whether `other` drives the same bgpd the same way (a reload that keeps it keeps what is
    /// known to be in force).
    pub fn same_target(&self, bgp: &Bgp) -> bool {
        self.config == bgp.config
            && self.method == bgp.apply
            && self.vtysh == bgp.vtysh
            && self.frr_reload == bgp.frr_reload
            && self.pathspace.as_deref() == bgp.pathspace.as_ref().map(|p| p.as_str())
    }

    /// Puts `text` in force (see the module documentation).
    pub async fn apply(&mut self, text: &str) -> Result<Outcome, BgpError> {
        if self.in_force.as_deref() == Some(text) {
            return Ok(Outcome::Unchanged);
        }
        let began = Instant::now();
        if self.in_force.is_none() && self.on_disk().await.as_deref() == Some(text) {
            // keepserver's own file, from before a restart or a re-read: bgpd is told what
            // differs, if anything, and nothing is rewritten.
            let sent = self.tell(self.method, &self.config, text, None).await?;
            self.in_force = Some(text.to_string());
            if !sent {
                debug!(
                    "bgp running configuration matches config={}",
                    self.config.display()
                );
                return Ok(Outcome::Unchanged);
            }
        } else {
            self.install(text).await?;
            self.in_force = Some(text.to_string());
        }
        info!(
            "bgp configuration applied config={} method={} ms={}",
            self.config.display(),
            self.method,
            began.elapsed().as_millis()
        );
        Ok(Outcome::Applied)
    }

    /// The owned file's content, if it can be read.
    async fn on_disk(&self) -> Option<String> {
        tokio::fs::read_to_string(&self.config).await.ok()
    }

    /// Writes `text` beside the owned file, checks it, tells bgpd, and renames it into place;
    /// a file FRR refuses is saved as `<config>-failed` instead.
    async fn install(&self, text: &str) -> Result<(), BgpError> {
        let tmp = with_suffix(&self.config, ".tmp");
        let saved = with_suffix(&self.config, "-failed");
        files::write(&tmp, text).await?;
        let check = match self.check(&tmp).await {
            Ok(check) => check,
            Err(e) => return Err(discard(&tmp, e).await),
        };
        if !check.ok {
            files::rename(&tmp, &saved).await?;
            return Err(BgpError::Rejected {
                command: check.command,
                saved: saved.clone(),
                output: check
                    .output
                    .replace(tmp.to_string_lossy().as_ref(), &saved.to_string_lossy()),
            });
        }
        match self.tell(self.method, &tmp, text, Some(&saved)).await {
            Ok(_) => Ok(files::rename(&tmp, &self.config).await?),
            Err(e @ BgpError::NotApplied { .. }) => {
                files::rename(&tmp, &saved).await?;
                Err(e)
            }
            // bgpd could not be asked: nothing is wrong with the file.
            Err(e) => Err(discard(&tmp, e).await),
        }
    }

    /// Tells bgpd `text` without putting it in a file, for when the file cannot be written (a
    /// full disk): the commands that make bgpd's running configuration the text's, sent with
    /// vtysh whatever `bgp.apply` says (frr-reload reads a file). Nothing is checked or
    /// written, and what was in force is forgotten (bgpd may no longer run it), so the next
    /// apply reads bgpd's running configuration and writes the file. Returns whether anything
    /// was sent.
    pub async fn tell_unwritten(&mut self, text: &str) -> Result<bool, BgpError> {
        self.in_force = None;
        self.tell(ApplyMethod::Vtysh, &self.config, text, None)
            .await
    }

    /// Forgets what bgpd was last told, so the next apply reads its running configuration and
    /// sends whatever differs (after bgpd restarted, or to catch changes made by hand).
    pub fn forget(&mut self) {
        self.in_force = None;
    }

    /// `vtysh --dryrun -f FILE`.
    async fn check(&self, file: &Path) -> Result<Ran, BgpError> {
        let args = [OsStr::new("--dryrun"), OsStr::new("-f"), file.as_os_str()];
        run(&self.vtysh, &args).await
    }

    /// Tells the running bgpd about `file` (whose content is `text`), if its running
    /// configuration differs: with vtysh, the commands that make it the file's; with
    /// frr-reload, the file. Returns whether anything was sent.
    async fn tell(
        &self,
        method: ApplyMethod,
        file: &Path,
        text: &str,
        saved: Option<&Path>,
    ) -> Result<bool, BgpError> {
        let failed = |ran: Ran| BgpError::NotApplied {
            command: ran.command,
            status: ran.status,
            saved: saved.map(Path::to_path_buf),
            output: ran.output,
        };
        let running = self.vtysh_run(&["-c", "show running-config"]).await?;
        if !running.ok {
            return Err(BgpError::Query {
                command: running.command,
                status: running.status,
                output: running.output,
            });
        }
        let commands = diff::commands(&running.output, text);
        if commands.is_empty() {
            return Ok(false);
        }
        let sent = match method {
            ApplyMethod::Vtysh => {
                debug!("bgp sending to bgpd commands=\"{}\"", commands.join("; "));
                let mut args = vec!["-c", "configure terminal"];
                for command in &commands {
                    args.extend(["-c", command.as_str()]);
                }
                self.vtysh_run(&args).await?
            }
            ApplyMethod::FrrReload => run(&self.frr_reload, &self.frr_reload_args(file)).await?,
        };
        if sent.ok { Ok(true) } else { Err(failed(sent)) }
    }

    /// `vtysh [-N PATHSPACE] -d bgpd ARGS`.
    async fn vtysh_run(&self, args: &[&str]) -> Result<Ran, BgpError> {
        let mut full: Vec<OsString> = Vec::new();
        if let Some(ps) = &self.pathspace {
            full.extend([OsString::from("-N"), OsString::from(ps)]);
        }
        full.extend(["-d", "bgpd"].map(OsString::from));
        full.extend(args.iter().map(OsString::from));
        let full: Vec<&OsStr> = full.iter().map(OsString::as_os_str).collect();
        run(&self.vtysh, &full).await
    }

    fn frr_reload_args(&self, file: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["--reload", "--daemon", "bgpd", "--stdout"]
            .map(OsString::from)
            .into();
        if let Some(ps) = &self.pathspace {
            args.extend([OsString::from("--pathspace"), OsString::from(ps)]);
        }
        if let Some(bindir) = self.vtysh.parent().filter(|d| !d.as_os_str().is_empty()) {
            args.extend([OsString::from("--bindir"), bindir.as_os_str().to_owned()]);
        }
        if let Some(dir) = self.config.parent() {
            args.extend([OsString::from("--rundir"), dir.as_os_str().to_owned()]);
        }
        args.push(file.as_os_str().to_owned());
        args
    }
}

/// Removes the temporary file `tmp` after `error`, which is returned.
async fn discard(tmp: &Path, error: BgpError) -> BgpError {
    if let Err(e) = files::remove(tmp).await {
        debug!("{e}");
    }
    error
}

/// Runs `program ARGS` to its end (killed after [`COMMAND_TIMEOUT`]), output captured.
async fn run<S: AsRef<OsStr>>(program: &Path, args: &[S]) -> Result<Ran, BgpError> {
    let command = std::iter::once(program.to_string_lossy().into_owned())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let output = tool::output(program, args, COMMAND_TIMEOUT)
        .await
        .map_err(|e| match e {
            ToolError::Spawn(source) => BgpError::Spawn {
                program: program.to_path_buf(),
                source,
            },
            ToolError::Timeout => BgpError::Timeout {
                command: command.clone(),
                after: COMMAND_TIMEOUT,
            },
            ToolError::Read(source) => {
                BgpError::io(format!("read the output of `{command}`"))(source)
            }
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ok = output.status.success();
    Ok(Ran {
        command,
        ok,
        status: output.status.to_string(),
        // The running configuration is parsed; anything else is quoted in a message.
        output: if ok {
            stdout.into_owned()
        } else {
            quote_output(&format!("{stderr}\n{stdout}"))
        },
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn bgpd(method: ApplyMethod, vtysh: &str, pathspace: Option<&str>) -> Bgpd {
        Bgpd {
            config: PathBuf::from("/etc/frr/bgpd.conf"),
            method,
            vtysh: PathBuf::from(vtysh),
            frr_reload: PathBuf::from("/usr/lib/frr/frr-reload.py"),
            pathspace: pathspace.map(str::to_string),
            in_force: None,
        }
    }

    #[test]
    fn frr_reload_addresses_bgpd_in_its_pathspace() {
        let args = bgpd(ApplyMethod::FrrReload, "/usr/bin/vtysh", Some("node"))
            .frr_reload_args(Path::new("/etc/frr/bgpd.conf.tmp"));
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "--reload --daemon bgpd --stdout --pathspace node --bindir /usr/bin \
             --rundir /etc/frr /etc/frr/bgpd.conf.tmp"
        );
        let plain = bgpd(ApplyMethod::FrrReload, "vtysh", None)
            .frr_reload_args(Path::new("/etc/frr/bgpd.conf.tmp"));
        assert!(!plain.iter().any(|a| a == "--bindir" || a == "--pathspace"));
    }

    /// A bgpd in `dir` whose vtysh is the shell script `body` (a stand-in for FRR's).
    fn with_fake_vtysh(dir: &Path, body: &str) -> Bgpd {
        let vtysh = dir.join("vtysh");
        fs::write(&vtysh, format!("#!/bin/sh\n{body}")).expect("write vtysh");
        fs::set_permissions(&vtysh, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut b = bgpd(ApplyMethod::Vtysh, vtysh.to_str().expect("utf-8"), None);
        b.config = dir.join("bgpd.conf");
        b
    }

    #[tokio::test]
    async fn a_refused_file_is_saved_beside_and_the_old_one_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = with_fake_vtysh(
            dir.path(),
            "echo \"line 2: % Unknown command: $3\" >&2\nexit 2\n",
        );
        let config = b.config.clone();
        fs::write(&config, "old\n").expect("write old");
        let err = b.apply("new\n").await.expect_err("refused");
        let saved = with_suffix(&config, "-failed");
        assert!(matches!(&err, BgpError::Rejected { .. }), "{err}");
        assert!(err.to_string().contains("Unknown command"), "{err}");
        assert!(err.to_string().contains(&*saved.to_string_lossy()), "{err}");
        assert_eq!(fs::read_to_string(&config).expect("read"), "old\n");
        assert_eq!(fs::read_to_string(&saved).expect("read"), "new\n");
        assert!(!with_suffix(&config, ".tmp").exists());
    }

    #[tokio::test]
    async fn an_unreachable_bgpd_saves_nothing_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = with_fake_vtysh(
            dir.path(),
            "[ \"$1\" = --dryrun ] && exit 0\necho 'Exiting: failed to connect to any daemons.'\nexit 1\n",
        );
        let err = b.apply("router bgp 1\n").await.expect_err("unreachable");
        assert!(matches!(&err, BgpError::Query { .. }), "{err}");
        assert!(err.to_string().contains("failed to connect"), "{err}");
        for suffix in ["", ".tmp", "-failed"] {
            assert!(!with_suffix(&b.config, suffix).exists(), "{suffix}");
        }
    }

    #[tokio::test]
    async fn a_text_told_without_its_file_is_sent_and_not_taken_as_in_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sent = dir.path().join("sent");
        let mut b = with_fake_vtysh(
            dir.path(),
            &format!(
                "if [ \"$4\" = 'show running-config' ]; then\n\
                 printf 'router bgp 65001\\n neighbor 198.51.100.2 remote-as 65000\\n'\n\
                 printf ' network 192.0.2.10/32\\nexit\\n'\n\
                 exit 0\nfi\necho \"$@\" >> {}\n",
                sent.display()
            ),
        );
        b.method = ApplyMethod::FrrReload;
        b.in_force = Some("announcing".to_string());
        let withdrawn = "router bgp 65001\n neighbor 198.51.100.2 remote-as 65000\n!\n";
        assert!(b.tell_unwritten(withdrawn).await.expect("told"));
        assert_eq!(
            fs::read_to_string(&sent).expect("sent"),
            "-d bgpd -c configure terminal -c router bgp 65001 -c no network 192.0.2.10/32 -c exit\n",
            "sent with vtysh even where bgp.apply is frr-reload"
        );
        assert_eq!(b.in_force, None, "the next apply asks bgpd again");
        for suffix in ["", ".tmp", "-failed"] {
            assert!(!with_suffix(&b.config, suffix).exists(), "{suffix}");
        }
    }

    #[tokio::test]
    async fn only_the_difference_is_sent_and_an_unchanged_text_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sent = dir.path().join("sent");
        let mut b = with_fake_vtysh(
            dir.path(),
            &format!(
                "[ \"$1\" = --dryrun ] && exit 0\n\
                 if [ \"$4\" = 'show running-config' ]; then\n\
                 printf 'router bgp 65001\\n neighbor 198.51.100.2 remote-as 65000\\nexit\\n'\n\
                 exit 0\nfi\necho \"$@\" >> {}\n",
                sent.display()
            ),
        );
        let text = "router bgp 65001\n neighbor 198.51.100.2 remote-as 65000\n \
                    network 192.0.2.10/32\n!\n";
        assert_eq!(b.apply(text).await.expect("applied"), Outcome::Applied);
        assert_eq!(
            fs::read_to_string(&sent).expect("sent"),
            "-d bgpd -c configure terminal -c router bgp 65001 -c network 192.0.2.10/32 -c exit\n"
        );
        assert_eq!(fs::read_to_string(&b.config).expect("in place"), text);
        assert_eq!(b.apply(text).await.expect("unchanged"), Outcome::Unchanged);
        assert_eq!(fs::read_to_string(&sent).expect("sent").lines().count(), 1);

        // After a restart bgpd is asked again, but the file holding the text is not rewritten.
        let written = fs::metadata(&b.config)
            .and_then(|m| m.modified())
            .expect("mtime");
        b.in_force = None;
        // Not synchronisation: a rewrite now would get a later mtime.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(b.apply(text).await.expect("told"), Outcome::Applied);
        assert_eq!(fs::read_to_string(&sent).expect("sent").lines().count(), 2);
        let kept = fs::metadata(&b.config)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(kept, written);
    }
}
