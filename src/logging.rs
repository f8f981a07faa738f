//! Logging setup: owns turning the `logging:` value of keepserver's
//! config.yaml into a log4rs [`Config`], installing it as the global logger,
//! and swapping it on reload (SIGHUP).
//!
//! `logging:` may be:
//! 1. absent or null: one stderr console appender at INFO (under journald: no time stamp,
//!    and a syslog priority per level, see [`journal`]);
//! 2. a Python `logging.config.dictConfig` mapping (it has `version`), as
//!    keepstart accepted;
//! 3. an inline log4rs config (it has `appenders`, or `root` without
//!    `version`), read as log4rs's own `RawConfig`;
//! 4. a path, relative to the config file's directory, to a log4rs YAML
//!    file (or a YAML dictConfig) or to a Python `fileConfig` INI file.
//!
//! Both Python forms are read into one model ([`model`]) and go through one
//! translator ([`python`]), so they behave alike. Relative log file paths
//! (Python `filename`s, log4rs `path`s and `fixed_window` `pattern`s) are
//! taken relative to the workspace. Translating opens (and creates) the log
//! files, as Python's `dictConfig` does, so a bad path fails the translation
//! rather than every later log call.
//!
//! Every appender is [`guarded`]: a failing sink (a full disk) is reported once
//! on stderr, its lost lines are counted ([`lost_lines`], [`sinks`]), and it
//! writes again by itself when it can. Each sink writes on a thread of its own
//! ([`writer`]), so a sink that blocks never stops the daemon; [`flush`] waits
//! (briefly) for what was logged to be written, at exit.

mod dict;
mod error;
mod file;
mod guarded;
mod handlers;
mod ini;
mod journal;
mod model;
mod native;
mod pattern;
mod pyliteral;
mod python;
mod rollover;
mod writer;

use std::{fs, path::Path};

use log::LevelFilter;
use log4rs::{
    Handle,
    config::{Appender, Config, Root, runtime::ConfigBuilder},
    encode::pattern::PatternEncoder,
};
use serde_json::{Map, Value};

pub use error::LoggingError;
use error::Source;
pub use guarded::SinkReport;
use guarded::{Guarded, Sink};
use python::Env;

/// The pattern of the default console appender.
const DEFAULT_PATTERN: &str = "{d(%Y-%m-%d %H:%M:%S%.3f)} {l:<5} {m}{n}";

/// The name of the default console appender.
const DEFAULT_APPENDER: &str = "stderr";

/// Top-level keys that mark a YAML file as a logging config rather than
/// something that merely parses as YAML.
const YAML_MARKERS: &[&str] = &["appenders", "root", "version"];

/// Where the logging spec came from, for error messages and relative paths.
#[derive(Clone, Copy, Debug)]
pub struct LoggingContext<'a> {
    /// The config file holding `logging:`; named in errors, and a relative
    /// logging file path is taken relative to its directory.
    pub config_file: &'a Path,
    /// The workspace; relative log file paths are taken relative to it.
    pub workspace: &'a Path,
}

/// Result of translation: the log4rs config plus human-readable warnings
/// about anything that could not be translated (the caller logs each once
/// at WARN after installing; [`install`] and [`apply`] do so).
#[derive(Debug)]
pub struct Translated {
    /// The config to install.
    pub config: Config,
    /// One line per thing dropped or approximated, naming file and key.
    pub warnings: Vec<String>,
}

/// Translates the `logging:` value of the config file, as the config loader
/// read it (`None` if the key is absent), into a log4rs config.
pub fn translate(value: Option<&Value>, ctx: &LoggingContext) -> Result<Translated, LoggingError> {
    let src = Source::inline(ctx.config_file);
    match value {
        None | Some(Value::Null) => default_config(&src),
        Some(Value::Object(map)) => translate_mapping(map, None, Env::new(&src, ctx.workspace)),
        Some(Value::String(path)) => translate_file(path, ctx),
        Some(other) => Err(src.invalid(&src.spot(&[]), "nothing, a mapping or a file path", other)),
    }
}

/// Installs the first config as the global logger, then logs its warnings
/// at WARN; returns the handle used for later reloads.
pub fn install(t: Translated) -> Result<Handle, LoggingError> {
    let handle = log4rs::init_config(t.config)?;
    log_warnings(&t.warnings);
    Ok(handle)
}

/// Swaps in a new config (SIGHUP reload), then logs its warnings at WARN.
pub fn apply(handle: &Handle, t: Translated) {
    handle.set_config(t.config);
    log_warnings(&t.warnings);
}

/// Waits (up to 2 s per sink) until every line logged so far is written.
pub fn flush() {
    log::logger().flush();
}

/// Log lines lost in all sinks since keepserver started.
pub fn lost_lines() -> u64 {
    guarded::REGISTRY.lost_lines()
}

/// Every log sink in use, with the lines it lost and, while it fails, why.
pub fn sinks() -> Vec<SinkReport> {
    guarded::REGISTRY.sinks()
}

/// Logs each translation warning once.
fn log_warnings(warnings: &[String]) {
    for warning in warnings {
        log::warn!("logging config: {warning}");
    }
}

/// One console appender on stderr at INFO; under journald its lines go without a time stamp,
/// after their level's syslog priority.
fn default_config(src: &Source) -> Result<Translated, LoggingError> {
    let encoder: Box<dyn log4rs::encode::Encode> = if journal::stderr_is_journal() {
        Box::new(journal::PriorityEncoder(PatternEncoder::new(
            journal::PATTERN,
        )))
    } else {
        Box::new(PatternEncoder::new(DEFAULT_PATTERN))
    };
    let console = Guarded::lines(
        Sink::Stream("stderr"),
        encoder,
        Box::new(writer::Stream::Stderr),
    );
    let builder =
        Config::builder().appender(Appender::builder().build(DEFAULT_APPENDER, Box::new(console)));
    let root = Root::builder()
        .appender(DEFAULT_APPENDER)
        .build(LevelFilter::Info);
    Ok(Translated {
        config: build_config(builder, root, src)?,
        warnings: Vec::new(),
    })
}

/// Dispatches a mapping on its keys: dictConfig has `version`, log4rs has
/// `appenders` or `root`. `text` is the source text for a whole file.
fn translate_mapping(
    map: &Map<String, Value>,
    text: Option<&str>,
    mut env: Env,
) -> Result<Translated, LoggingError> {
    if map.contains_key("version") {
        let model = dict::parse(map, &mut env)?;
        python::translate(&model, env)
    } else if map.contains_key("appenders") || map.contains_key("root") {
        native::translate(Value::Object(map.clone()), text, env)
    } else {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        Err(env.src.invalid_found(
            &env.src.spot(&[]),
            "a dictConfig mapping (with `version: 1`) or a log4rs config (with `appenders`)",
            format!("a mapping with keys [{}]", keys.join(", ")),
        ))
    }
}

/// Reads and translates a separate logging file.
fn translate_file(path: &str, ctx: &LoggingContext) -> Result<Translated, LoggingError> {
    let base = ctx.config_file.parent().unwrap_or(Path::new(""));
    let file = base.join(path);
    let text = fs::read_to_string(&file).map_err(|source| LoggingError::Read {
        config_file: ctx.config_file.to_path_buf(),
        key: "logging".to_owned(),
        file: file.clone(),
        source,
    })?;
    let src = Source::whole_file(&file);
    let mut env = Env::new(&src, ctx.workspace);
    match yaml_document(&file, &text, &src)? {
        Some(map) => translate_mapping(&map, Some(&text), env),
        None => {
            let model = ini::parse(&text, &mut env)?;
            python::translate(&model, env)
        }
    }
}

/// The file's mapping if it is a YAML logging config, `None` if it is to
/// be read as INI. A `.yaml`/`.yml` file must be YAML; another file is YAML
/// if it parses as a mapping with a logging config's top-level keys.
fn yaml_document(
    file: &Path,
    text: &str,
    src: &Source,
) -> Result<Option<Map<String, Value>>, LoggingError> {
    let is_yaml = matches!(
        file.extension().and_then(|ext| ext.to_str()),
        Some("yaml" | "yml")
    );
    match serde_saphyr::from_str::<Value>(text) {
        Ok(Value::Object(map))
            if is_yaml || YAML_MARKERS.iter().any(|key| map.contains_key(*key)) =>
        {
            Ok(Some(map))
        }
        Ok(other) if is_yaml => Err(src.invalid(&src.spot(&[]), "a mapping", &other)),
        Err(e) if is_yaml => Err(src.yaml_error(&e)),
        _ => Ok(None),
    }
}

/// Finishes a config, turning log4rs's validation errors into one error.
fn build_config(builder: ConfigBuilder, root: Root, src: &Source) -> Result<Config, LoggingError> {
    builder.build(root).map_err(|errors| {
        let messages: Vec<String> = errors.errors().iter().map(ToString::to_string).collect();
        src.rejected(&src.spot(&[]), messages.join("; "))
    })
}

#[cfg(test)]
mod tests;
