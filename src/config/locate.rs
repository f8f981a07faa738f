//! Where an instance lives: the `application` paths (workspace, pidfile, control socket, daemon
//! log) with their default rules, used by the loader, and the lenient reading of those few keys
//! that `stop`, `status` and `notify` rely on. Those commands only talk to a running instance, so
//! a config file that was broken after the daemon started (a bad key, a half-written file, not
//! YAML at all) must not keep the operator from stopping it: they read what they can, fall back to
//! the defaults beside the config file, and say the config is broken.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::fields::{seconds, text};
use super::{ConfigError, DEFAULT_HOOK_TIMEOUT, normalize, parse};

const DEFAULT_PIDFILE: &str = "server.pid";
const DEFAULT_DAEMON_LOG: &str = "keepserver.log";

/// The `application` paths as given (by config keys or the command line), before defaults;
/// relative ones are relative to the config file's directory (workspace) or the workspace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GivenPaths {
    /// `application.workspace`.
    pub workspace: Option<PathBuf>,
    /// `application.pidfile`.
    pub pidfile: Option<PathBuf>,
    /// `application.control-socket`.
    pub control_socket: Option<PathBuf>,
    /// `application.daemon-log`.
    pub daemon_log: Option<PathBuf>,
}

/// The `application` paths with the defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Paths {
    /// The workspace: the config file's directory unless given.
    pub workspace: PathBuf,
    /// The pidfile: `server.pid` in the workspace unless given.
    pub pidfile: PathBuf,
    /// The control socket: the pidfile with `.sock` unless given.
    pub control_socket: PathBuf,
    /// The daemon log: `keepserver.log` in the workspace unless given.
    pub daemon_log: PathBuf,
}

/// Applies the default rules to `given`; `config_dir` is the config file's directory.
pub fn resolve(config_dir: &Path, given: GivenPaths) -> Paths {
    let workspace = given
        .workspace
        .map(|w| normalize(&config_dir.join(w)))
        .unwrap_or_else(|| config_dir.to_path_buf());
    let pidfile = workspace.join(given.pidfile.unwrap_or_else(|| DEFAULT_PIDFILE.into()));
    let control_socket = given
        .control_socket
        .map(|s| workspace.join(s))
        .unwrap_or_else(|| pidfile.with_extension("sock"));
    let daemon_log = workspace.join(
        given
            .daemon_log
            .unwrap_or_else(|| DEFAULT_DAEMON_LOG.into()),
    );
    Paths {
        workspace,
        pidfile,
        control_socket,
        daemon_log,
    }
}

/// Command-line options that say where the running instance is, over what the config says.
/// Relative paths are relative to the current directory.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--workspace DIR`.
    pub workspace: Option<PathBuf>,
    /// `--pidfile FILE`.
    pub pidfile: Option<PathBuf>,
}

impl Overrides {
    /// True when neither option was given.
    pub fn is_empty(&self) -> bool {
        self.workspace.is_none() && self.pidfile.is_none()
    }
}

/// How the paths of a broken config were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The file is YAML: the `application` keys that could be read were used.
    Lenient,
    /// The file could not be read as YAML: every path is a default beside the config file.
    Defaults,
}

/// A config file that could not be loaded, and how the instance was looked for anyway.
#[derive(Debug)]
pub struct Broken {
    /// Why the config could not be loaded.
    pub error: ConfigError,
    /// Where the paths came from instead.
    pub fallback: Fallback,
}

/// Where the running instance of a config file is.
#[derive(Debug)]
pub struct Located {
    /// The config file, absolute.
    pub file: PathBuf,
    /// The instance's paths.
    pub paths: Paths,
    /// `keepstart.hook-timeout`: how long a hook in flight may delay the instance's exit.
    pub hook_timeout: Duration,
    /// Why the config is broken, when it is.
    pub broken: Option<Broken>,
}

/// Finds the instance of the config file at `path` (with `overrides` applied), whether or not
/// the file is a valid config.
pub fn locate(path: &Path, overrides: &Overrides) -> Located {
    let file = super::absolute_file(path);
    let (text, read_error) = match std::fs::read_to_string(&file) {
        Ok(text) => (Some(text), None),
        Err(source) => (
            None,
            Some(ConfigError::Read {
                file: file.clone(),
                source,
            }),
        ),
    };
    let error = read_error.or_else(|| parse(text.as_deref()?, &file).err());
    let lenient = text.as_deref().and_then(lenient);
    let fallback = if lenient.is_some() {
        Fallback::Lenient
    } else {
        Fallback::Defaults
    };
    let (given, hook_timeout) = lenient.unwrap_or_default();
    Located {
        paths: resolve(
            file.parent().unwrap_or(Path::new("/")),
            with_overrides(given, overrides),
        ),
        file,
        hook_timeout: hook_timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT),
        broken: error.map(|error| Broken { error, fallback }),
    }
}

/// `given` with the command line's paths in place of the config's, made absolute.
fn with_overrides(mut given: GivenPaths, overrides: &Overrides) -> GivenPaths {
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    if let Some(w) = &overrides.workspace {
        given.workspace = Some(absolute(w));
    }
    if let Some(p) = &overrides.pidfile {
        given.pidfile = Some(absolute(p));
    }
    given
}

/// The application paths and hook timeout of `text`, each key taken only when it reads as the
/// loader would read it (so a valid file gives exactly the loader's values); `None` when `yaml`
/// is not YAML.
fn lenient(yaml: &str) -> Option<(GivenPaths, Option<Duration>)> {
    let doc: Value = serde_saphyr::from_str(yaml).ok()?;
    let app = &doc["application"];
    let path = |key: &str| app.get(key).and_then(|v| text(v).ok()).map(PathBuf::from);
    let given = GivenPaths {
        workspace: path("workspace"),
        pidfile: path("pidfile"),
        control_socket: path("control-socket"),
        daemon_log: path("daemon-log"),
    };
    let hook_timeout = doc["keepstart"]
        .get("hook-timeout")
        .and_then(|v| seconds(v).ok());
    Some((given, hook_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/keepserver/config.yaml";

    fn located_from(text: &str, overrides: &Overrides) -> (Paths, Duration, bool) {
        let (given, timeout) = lenient(text).unwrap_or_default();
        let paths = resolve(
            Path::new("/etc/keepserver"),
            with_overrides(given, overrides),
        );
        (
            paths,
            timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT),
            lenient(text).is_some(),
        )
    }

    #[test]
    fn a_valid_file_gives_the_loaders_paths() {
        for text in [
            "application:\n  workspace: /srv/ks\n  pidfile: ks.pid\nkeepstart:\n  vip: 192.0.2.10\n  start: s\n  stop: t\n  hook-timeout: 7\n",
            "application:\n  workspace: run\n  control-socket: /run/ks.sock\n  daemon-log: d.log\nkeepstart:\n  vip: 192.0.2.10\n  start: s\n  stop: t\n",
            "keepstart:\n  vip: 192.0.2.10\n  start: s\n  stop: t\n",
        ] {
            let loaded = parse(text, Path::new(FILE)).expect("valid").config;
            let (paths, timeout, read) = located_from(text, &Overrides::default());
            let app = &loaded.application;
            assert!(read, "{text}");
            assert_eq!(
                paths,
                Paths {
                    workspace: app.workspace.clone(),
                    pidfile: app.pidfile.clone(),
                    control_socket: app.control_socket.clone(),
                    daemon_log: app.daemon_log.clone(),
                },
                "{text}"
            );
            assert_eq!(timeout, loaded.keepstart.hook_timeout, "{text}");
        }
    }

    #[test]
    fn a_file_with_bad_keys_still_gives_the_readable_ones() {
        let text = "application:\n  workspace: /srv/ks\n  pidfile: ks.pid\n  daemon: maybe\n  control-socket: [1]\nkeepstart:\n  nic: eth/0\n  hook-timeout: soon\n";
        assert!(parse(text, Path::new(FILE)).is_err());
        let (paths, timeout, read) = located_from(text, &Overrides::default());
        assert!(read);
        assert_eq!(paths.pidfile, PathBuf::from("/srv/ks/ks.pid"));
        assert_eq!(paths.control_socket, PathBuf::from("/srv/ks/ks.sock"));
        assert_eq!(timeout, DEFAULT_HOOK_TIMEOUT);
    }

    #[test]
    fn text_that_is_not_yaml_gives_the_defaults_beside_the_file() {
        for text in ["{{{ not: yaml", "a: [1, 2\n", "key: 'unterminated\n"] {
            let (paths, timeout, read) = located_from(text, &Overrides::default());
            assert!(!read, "{text:?} is not YAML");
            assert_eq!(paths.workspace, PathBuf::from("/etc/keepserver"));
            assert_eq!(paths.pidfile, PathBuf::from("/etc/keepserver/server.pid"));
            assert_eq!(
                paths.control_socket,
                PathBuf::from("/etc/keepserver/server.sock")
            );
            assert_eq!(timeout, DEFAULT_HOOK_TIMEOUT);
        }
    }

    #[test]
    fn yaml_that_is_not_a_mapping_gives_the_defaults() {
        let (paths, _, read) = located_from("just a string", &Overrides::default());
        assert!(read);
        assert_eq!(paths.pidfile, PathBuf::from("/etc/keepserver/server.pid"));
    }

    #[test]
    fn command_line_paths_win_and_keep_the_configs_names() {
        let text = "application:\n  workspace: /srv/ks\n  pidfile: ks.pid\n";
        let workspace = Overrides {
            workspace: Some("/var/lib/ks".into()),
            pidfile: None,
        };
        let (paths, _, _) = located_from(text, &workspace);
        assert_eq!(paths.pidfile, PathBuf::from("/var/lib/ks/ks.pid"));
        assert_eq!(paths.control_socket, PathBuf::from("/var/lib/ks/ks.sock"));
        let pidfile = Overrides {
            workspace: None,
            pidfile: Some("/run/other.pid".into()),
        };
        let (paths, _, _) = located_from(text, &pidfile);
        assert_eq!(paths.workspace, PathBuf::from("/srv/ks"));
        assert_eq!(paths.pidfile, PathBuf::from("/run/other.pid"));
        assert_eq!(paths.control_socket, PathBuf::from("/run/other.sock"));
    }

    #[test]
    fn an_unreadable_file_is_broken_and_located_by_defaults() {
        let located = locate(
            Path::new("/nonexistent-keepserver-dir/config.yaml"),
            &Overrides::default(),
        );
        let broken = located.broken.expect("a missing file is broken");
        assert!(matches!(broken.error, ConfigError::Read { .. }));
        assert_eq!(broken.fallback, Fallback::Defaults);
        assert_eq!(
            located.paths.pidfile,
            PathBuf::from("/nonexistent-keepserver-dir/server.pid")
        );
    }
}
