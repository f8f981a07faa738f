//! The log4rs form: an inline log4rs config mapping or a log4rs YAML file,
//! read as log4rs's own [`RawConfig`]. Relative appender `path`s and
//! `fixed_window` roller `pattern`s are anchored at the workspace, like
//! Python `filename`s; paths starting with `$ENV{` are left alone since
//! log4rs expands them itself. Unlike log4rs's own loader, an appender that
//! fails to build is an error rather than silently missing. Every appender is
//! [`Guarded`]; log4rs's own file appenders are kept here, so after a full disk
//! they may write the rest of a cut-short line before the next one.

use std::path::Path;

use log4rs::{
    append::AppenderConfig,
    config::{Appender, Config, Deserializers, RawConfig},
};
use serde_json::Value;

use super::{
    Translated,
    error::LoggingError,
    guarded::{Guarded, Sink},
    python::Env,
};

/// Translates a log4rs config. `text` is the file's text when the config
/// is a whole file, so shape errors can name a line.
pub(super) fn translate(
    mut value: Value,
    text: Option<&str>,
    mut env: Env,
) -> Result<Translated, LoggingError> {
    if let Some(text) = text {
        serde_saphyr::from_str::<RawConfig>(text).map_err(|e| env.src.yaml_error(&e))?;
    }
    anchor_paths(&mut value, env.workspace);
    let top = env.src.spot(&[]);
    let raw: RawConfig =
        serde_json::from_value(value.clone()).map_err(|e| env.src.rejected(&top, e))?;
    if raw.refresh_rate().is_some() {
        let spot = env.src.spot(&["refresh_rate"]);
        env.warn(
            &spot,
            "ignored: keepserver reloads its logging config on SIGHUP",
        );
    }
    let builder = Config::builder()
        .appenders(appenders(&value, &env)?)
        .loggers(raw.loggers());
    let config = super::build_config(builder, raw.root(), env.src)?;
    Ok(Translated {
        config,
        warnings: env.warnings,
    })
}

/// Makes relative log file paths relative to the workspace.
fn anchor_paths(value: &mut Value, workspace: &Path) {
    let Some(Value::Object(appenders)) = value.get_mut("appenders") else {
        return;
    };
    for appender in appenders.values_mut() {
        anchor(appender.get_mut("path"), workspace);
        if let Some(roller) = appender
            .get_mut("policy")
            .and_then(|policy| policy.get_mut("roller"))
            && roller.get("kind").and_then(Value::as_str) == Some("fixed_window")
        {
            anchor(roller.get_mut("pattern"), workspace);
        }
    }
}

/// Joins a relative path string onto the workspace.
fn anchor(path: Option<&mut Value>, workspace: &Path) {
    if let Some(Value::String(path)) = path
        && Path::new(path.as_str()).is_relative()
        && !path.starts_with("$ENV{")
    {
        *path = workspace.join(path.as_str()).to_string_lossy().into_owned();
    }
}

/// Builds every appender, failing on the first that log4rs rejects.
fn appenders(value: &Value, env: &Env) -> Result<Vec<Appender>, LoggingError> {
    let Some(map) = value.get("appenders").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let deserializers = Deserializers::default();
    map.iter()
        .map(|(name, config)| appender(name, config, &deserializers, env))
        .collect()
}

/// Builds one appender and its filters with log4rs's deserializers.
fn appender(
    name: &str,
    value: &Value,
    deserializers: &Deserializers,
    env: &Env,
) -> Result<Appender, LoggingError> {
    let spot = env.src.spot(&["appenders", name]);
    let config: AppenderConfig =
        serde_json::from_value(value.clone()).map_err(|e| env.src.rejected(&spot, e))?;
    let mut builder = Appender::builder();
    for filter in config.filters {
        let filter = deserializers
            .deserialize(&filter.kind, filter.config)
            .map_err(|e| env.src.rejected(&spot.child("filters"), format!("{e:#}")))?;
        builder = builder.filter(filter);
    }
    let sink = sink(name, &config.kind, value);
    let append = deserializers
        .deserialize(&config.kind, config.config)
        .map_err(|e| env.src.rejected(&spot, format!("{e:#}")))?;
    Ok(builder.build(name, Box::new(Guarded::new(sink, append))))
}

/// What an appender of `kind` configured by `value` writes to.
fn sink(name: &str, kind: &str, value: &Value) -> Sink {
    let path = value.get("path").and_then(Value::as_str);
    match (kind, path) {
        ("file" | "rolling_file", Some(path)) => Sink::File(path.into()),
        ("console", _) => match value.get("target").and_then(Value::as_str) {
            Some("stderr") => Sink::Stream("stderr"),
            _ => Sink::Stream("stdout"),
        },
        _ => Sink::Appender(name.to_owned()),
    }
}
