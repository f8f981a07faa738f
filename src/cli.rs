//! The command line, as keepstart had it plus `status` and `check`:
//! `keepserver [-c FILE] start|stop|reload|status|check`, `notify` for keepalived's notify
//! scripts, and `--workspace`/`--pidfile` to find a running instance whatever the config says.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// keepserver: run this node's services while it holds the VIP.
#[derive(Debug, Parser)]
#[command(name = "keepserver", version, about)]
pub struct Cli {
    /// Config file path, YAML (keepstart's format).
    #[arg(short, long, value_name = "FILE", default_value = "config.yaml")]
    pub config: PathBuf,
    /// For stop, status and notify: the running instance's workspace, over
    /// `application.workspace` (for a config file that is broken or not at hand).
    #[arg(long, value_name = "DIR", global = true)]
    pub workspace: Option<PathBuf>,
    /// For stop, status and notify: the running instance's pidfile, over `application.pidfile`
    /// (the control socket is then beside it, unless the config names one).
    #[arg(long, value_name = "FILE", global = true)]
    pub pidfile: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (in the background when application.daemon is true).
    Start,
    /// Stop the running server (SIGTERM) and wait for it to exit.
    Stop,
    /// Validate the config file, then apply it to the running server in place (SIGHUP).
    Reload,
    /// Show the running server's role, running state, hooks and counters.
    Status {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config file, dry-run the files the server would write, and print what it
    /// would do.
    ///
    /// haproxy.cfg (from the admin API's store or the Libra worker's kept file) and bgpd.conf are
    /// rendered into a temporary directory and checked with `haproxy -c`, `vtysh --dryrun` and,
    /// with `bgp.apply: frr-reload`, `frr-reload.py --test`; a checker that is not installed is
    /// skipped with a warning. Exit 0 valid, 1 config error (every one is listed), 5 the config
    /// is valid but a checker refused a file.
    Check,
    /// Tell the running server about a keepalived state change, for keepalived's notify scripts:
    /// one state word (notify_master etc.) or the four arguments keepalived appends to `notify`.
    Notify {
        /// `MASTER|BACKUP|FAULT|STOP`, or `INSTANCE|GROUP NAME STATE PRIORITY`.
        #[arg(required = true, value_name = "ARGS", allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write the man page or the shell completions into DIR (for packaging: scripts/build-deb).
    #[command(hide = true)]
    Generate {
        /// What to write.
        what: Artifact,
        /// The directory to write into (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Artifact {
    /// keepserver.1
    Man,
    /// keepserver.bash, _keepserver (zsh) and keepserver.fish
    Completions,
}
