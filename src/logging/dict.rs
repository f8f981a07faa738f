//! The dictConfig front-end: reads a Python `logging.config.dictConfig`
//! mapping into the shared model ([`super::model`]).

use serde_json::{Map, Value};

use super::{
    error::{LoggingError, Spot},
    model::{Field, FormatterDef, HandlerDef, LoggerDef, PyConfig},
    python::Env,
};

/// A YAML mapping as the config loader hands it over.
type Object = Map<String, Value>;

/// The keys dictConfig knows at the top level.
const TOP_KEYS: &[&str] = &[
    "version",
    "formatters",
    "filters",
    "handlers",
    "loggers",
    "root",
    "incremental",
    "disable_existing_loggers",
];

/// Reads a dictConfig mapping (one that has a `version` key).
pub(super) fn parse(map: &Object, env: &mut Env) -> Result<PyConfig, LoggingError> {
    check_version(map, env)?;
    check_top_level(map, env)?;
    let mut model = PyConfig::default();
    for (name, entry, spot) in entries(map, "formatters", env)? {
        model.formatters.push((name, formatter(entry, spot, env)));
    }
    for (name, entry, spot) in entries(map, "handlers", env)? {
        handler(name, entry, spot, &mut model, env);
    }
    let mut unnamed = None;
    for (name, entry, spot) in entries(map, "loggers", env)? {
        let def = logger(entry, spot, env)?;
        // Python's logger '' is the root logger; an explicit `root` wins.
        if name.is_empty() {
            unnamed = Some(def);
        } else {
            model.loggers.push((name, def));
        }
    }
    model.root = match map.get("root") {
        None | Some(Value::Null) => unnamed,
        Some(value) => {
            let spot = env.src.spot(&["root"]);
            Some(logger(as_mapping(value, &spot, env)?, spot, env)?)
        }
    };
    Ok(model)
}

/// dictConfig only knows version 1.
fn check_version(map: &Object, env: &Env) -> Result<(), LoggingError> {
    let version = map.get("version").unwrap_or(&Value::Null);
    if version.as_i64() == Some(1) {
        Ok(())
    } else {
        Err(env.src.invalid(&env.src.spot(&["version"]), "1", version))
    }
}

/// Warns about top-level keys whose effect cannot be reproduced.
fn check_top_level(map: &Object, env: &mut Env) -> Result<(), LoggingError> {
    for (name, value) in map {
        let spot = env.src.spot(&[name]);
        let field = Field {
            value: value.clone(),
            spot: spot.clone(),
        };
        match name.as_str() {
            "incremental" if field.flag(env.src)? => env.warn(
                &spot,
                "incremental configuration is not supported; the config replaces the current one",
            ),
            "disable_existing_loggers" if field.flag(env.src)? => {
                env.warn(&spot, "log4rs has no existing loggers to disable; ignored")
            }
            "filters" if !is_empty(value) => {
                env.warn(&spot, "filters are not supported; ignored");
            }
            known if TOP_KEYS.contains(&known) => {}
            _ => env.warn(&spot, "not a dictConfig key; ignored"),
        }
    }
    Ok(())
}

/// Whether a value is null or an empty collection.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(seq) => seq.is_empty(),
        _ => false,
    }
}

/// The named entries of a section such as `handlers`: name, definition and
/// spot of each. An absent or null section has none.
fn entries<'m>(
    map: &'m Object,
    section: &str,
    env: &Env,
) -> Result<Vec<(String, &'m Object, Spot)>, LoggingError> {
    let spot = env.src.spot(&[section]);
    let entries = match map.get(section) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(value) => as_mapping(value, &spot, env)?,
    };
    let mut out = Vec::new();
    for (name, value) in entries {
        let entry_spot = spot.child(name);
        out.push((
            name.clone(),
            as_mapping(value, &entry_spot, env)?,
            entry_spot,
        ));
    }
    Ok(out)
}

/// The value as a mapping, or an error at `spot`.
fn as_mapping<'v>(value: &'v Value, spot: &Spot, env: &Env) -> Result<&'v Object, LoggingError> {
    value
        .as_object()
        .ok_or_else(|| env.src.invalid(spot, "a mapping", value))
}

/// The entries of a definition with their key names and fields.
fn fields(map: &Object, spot: &Spot) -> Vec<(String, Field)> {
    map.iter()
        .map(|(name, value)| {
            let field = Field {
                value: value.clone(),
                spot: spot.child(name),
            };
            (name.clone(), field)
        })
        .collect()
}

/// Reads a formatter. Custom classes and factories cannot run here, but
/// their `format` usually still says what the output looks like, so it is
/// used with a warning.
fn formatter(map: &Object, spot: Spot, env: &mut Env) -> FormatterDef {
    let mut def = FormatterDef {
        spot: spot.clone(),
        format: None,
        datefmt: None,
        style: None,
    };
    for (name, field) in fields(map, &spot) {
        match name.as_str() {
            "format" => def.format = Some(field),
            "datefmt" => def.datefmt = Some(field),
            "style" => def.style = Some(field),
            "validate" => {}
            "class" if field.value.as_str() == Some("logging.Formatter") => {}
            "class" | "()" => env.warn(
                &field.spot,
                "custom formatters cannot be translated; only their format is used",
            ),
            _ => env.warn(&field.spot, "not supported; ignored"),
        }
    }
    def
}

/// Reads a handler into the model; one built by a custom `()` factory is
/// recorded as skipped instead.
fn handler(name: String, map: &Object, spot: Spot, model: &mut PyConfig, env: &mut Env) {
    if map.contains_key("()") {
        env.warn(
            &spot.child("()"),
            "custom handler factories cannot be translated; handler skipped",
        );
        model.skipped_handlers.push(name);
        return;
    }
    let mut def = HandlerDef {
        class: Field {
            value: Value::Null,
            spot: spot.child("class"),
        },
        spot: spot.clone(),
        level: None,
        formatter: None,
        params: Vec::new(),
    };
    for (key, field) in fields(map, &spot) {
        match key.as_str() {
            "class" => def.class = field,
            "level" => def.level = Some(field),
            "formatter" => def.formatter = Some(field),
            "filters" => env.warn(&field.spot, "filters are not supported; ignored"),
            "." => env.warn(&field.spot, "handler properties are not supported; ignored"),
            _ => def.params.push((key, field)),
        }
    }
    model.handlers.push((name, def));
}

/// Reads a logger (or the root logger).
fn logger(map: &Object, spot: Spot, env: &mut Env) -> Result<LoggerDef, LoggingError> {
    let mut def = LoggerDef {
        spot: spot.clone(),
        level: None,
        handlers: Vec::new(),
        propagate: None,
    };
    for (key, field) in fields(map, &spot) {
        match key.as_str() {
            "level" => def.level = Some(field),
            "propagate" => def.propagate = Some(field),
            "handlers" => def.handlers = handler_list(field, env)?,
            "filters" => env.warn(&field.spot, "filters are not supported; ignored"),
            _ => env.warn(&field.spot, "not a logger key; ignored"),
        }
    }
    Ok(def)
}

/// A logger's `handlers`: a list of names.
fn handler_list(field: Field, env: &Env) -> Result<Vec<Field>, LoggingError> {
    let items = match &field.value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(env
                .src
                .invalid(&field.spot, "a list of handler names", other));
        }
    };
    let fields = items
        .iter()
        .enumerate()
        .map(|(index, value)| Field {
            value: value.clone(),
            spot: field.spot.item(index),
        })
        .collect();
    Ok(fields)
}
