//! The translator from the Python logging model ([`super::model`]) to a
//! log4rs config, shared by the dictConfig and fileConfig front-ends.

use std::{
    collections::{HashMap, HashSet},
    fmt::Display,
    path::Path,
};

use log::LevelFilter;
use log4rs::{
    config::{Appender, Config, Logger, Root},
    encode::pattern::PatternEncoder,
    filter::threshold::ThresholdFilter,
};
use serde_json::Value;

use super::{
    Translated,
    error::{LoggingError, Source, Spot},
    handlers::{self, HandlerClass},
    model::{Field, FormatterDef, HandlerDef, LoggerDef, PyConfig, PyLevel},
    pattern,
};

/// Python's format when a handler names no formatter.
const DEFAULT_FORMAT: &str = "%(message)s";

/// The log4rs target of this crate, which keepstart's loggers map to.
const CRATE_TARGET: &str = "keepserver";

/// What a translation needs besides the model, and the warnings so far.
pub(super) struct Env<'a> {
    pub src: &'a Source,
    /// Relative log file names are taken relative to this directory.
    pub workspace: &'a Path,
    pub warnings: Vec<String>,
}

impl<'a> Env<'a> {
    /// A fresh environment with no warnings.
    pub(super) fn new(src: &'a Source, workspace: &'a Path) -> Self {
        Env {
            src,
            workspace,
            warnings: Vec::new(),
        }
    }

    /// Records a warning about the value at `spot`.
    pub(super) fn warn(&mut self, spot: &Spot, message: impl Display) {
        let warning = self.src.warning(spot, message);
        self.warnings.push(warning);
    }
}

/// Which handler names a logger may reference.
#[derive(Default)]
struct HandlerNames {
    /// Handlers that became appenders.
    built: HashSet<String>,
    /// Handlers dropped with a warning; referencing them is not an error.
    skipped: HashSet<String>,
    /// Every handler defined, for error messages.
    defined: Vec<String>,
}

/// Translates a Python logging model into a log4rs config.
pub(super) fn translate(model: &PyConfig, mut env: Env) -> Result<Translated, LoggingError> {
    let patterns = formatter_patterns(&model.formatters, &mut env)?;
    let (appenders, names) = build_appenders(model, &patterns, &mut env)?;
    let root_level = root_level(model.root.as_ref(), &env)?;
    let loggers = build_loggers(&model.loggers, root_level, &names, &mut env)?;
    let root_handlers = match &model.root {
        Some(root) => handler_refs(&root.handlers, &names, &env)?,
        None => Vec::new(),
    };
    let root = Root::builder().appenders(root_handlers).build(root_level);
    let builder = Config::builder().appenders(appenders).loggers(loggers);
    let config = super::build_config(builder, root, env.src)?;
    Ok(Translated {
        config,
        warnings: env.warnings,
    })
}

/// The log4rs pattern of every formatter, by name.
fn formatter_patterns(
    formatters: &[(String, FormatterDef)],
    env: &mut Env,
) -> Result<HashMap<String, String>, LoggingError> {
    let mut patterns = HashMap::new();
    for (name, def) in formatters {
        patterns.insert(name.clone(), formatter_pattern(def, env)?);
    }
    Ok(patterns)
}

/// One formatter's pattern; dropped fields become warnings.
fn formatter_pattern(def: &FormatterDef, env: &mut Env) -> Result<String, LoggingError> {
    if let Some(style) = &def.style
        && style.text(env.src, "%, { or $")? != "%"
    {
        env.warn(
            &style.spot,
            "only %-style formats can be translated; using %(message)s",
        );
        return Ok(pattern::format_to_pattern(DEFAULT_FORMAT, None).pattern);
    }
    let format = match &def.format {
        Some(field) => field.text(env.src, "a format string")?,
        None => DEFAULT_FORMAT,
    };
    let datefmt = def
        .datefmt
        .as_ref()
        .map(|field| field.text(env.src, "a strftime format"))
        .transpose()?;
    let translation = pattern::format_to_pattern(format, datefmt);
    for dropped in translation.dropped {
        env.warn(&def.spot, dropped);
    }
    Ok(translation.pattern)
}

/// Builds an appender per translatable handler.
fn build_appenders(
    model: &PyConfig,
    patterns: &HashMap<String, String>,
    env: &mut Env,
) -> Result<(Vec<Appender>, HandlerNames), LoggingError> {
    let mut names = HandlerNames {
        skipped: model.skipped_handlers.iter().cloned().collect(),
        defined: model
            .handlers
            .iter()
            .map(|(name, _)| name.clone())
            .collect(),
        ..HandlerNames::default()
    };
    let mut appenders = Vec::new();
    for (name, def) in &model.handlers {
        match build_handler(name, def, patterns, env)? {
            Some(appender) => {
                names.built.insert(name.clone());
                appenders.push(appender);
            }
            None => {
                names.skipped.insert(name.clone());
            }
        }
    }
    Ok((appenders, names))
}

/// One handler as an appender with its threshold filter; `None` if the
/// handler has no log4rs counterpart.
fn build_handler(
    name: &str,
    def: &HandlerDef,
    patterns: &HashMap<String, String>,
    env: &mut Env,
) -> Result<Option<Appender>, LoggingError> {
    let class = HandlerClass::resolve(&def.class, env.src)?;
    if class == HandlerClass::Untranslatable {
        let message = format!(
            "{} has no log4rs counterpart; handler skipped",
            describe_class(&def.class)
        );
        env.warn(&def.class.spot, message);
        return Ok(None);
    }
    let level = def.level.as_ref().map(|l| l.level(env.src)).transpose()?;
    let encoder = Box::new(PatternEncoder::new(&handler_pattern(def, patterns, env)?));
    let Some(append) = handlers::build_appender(def, class, encoder, env)? else {
        return Ok(None);
    };
    let mut builder = Appender::builder();
    // NOTSET lets everything through, which is what no filter does.
    if let Some(PyLevel::Threshold(filter)) = level {
        builder = builder.filter(Box::new(ThresholdFilter::new(filter)));
    }
    Ok(Some(builder.build(name, append)))
}

/// The class as text for messages.
fn describe_class(class: &Field) -> String {
    match class.value.as_str() {
        Some(name) => format!("`{name}`"),
        None => "this class".to_owned(),
    }
}

/// The pattern of the handler's formatter (Python's default if none).
fn handler_pattern<'p>(
    def: &HandlerDef,
    patterns: &'p HashMap<String, String>,
    env: &Env,
) -> Result<std::borrow::Cow<'p, str>, LoggingError> {
    let Some(field) = &def.formatter else {
        let default = pattern::format_to_pattern(DEFAULT_FORMAT, None).pattern;
        return Ok(default.into());
    };
    let name = field.name(env.src, "a formatter name")?;
    match patterns.get(&name) {
        Some(pattern) => Ok(pattern.as_str().into()),
        None => {
            let mut defined: Vec<&str> = patterns.keys().map(String::as_str).collect();
            defined.sort_unstable();
            Err(env
                .src
                .invalid(&field.spot, &one_of("formatter", &defined), &field.value))
        }
    }
}

/// "one of the defined handlers (a, b)" and the like.
fn one_of(kind: &str, defined: &[&str]) -> String {
    if defined.is_empty() {
        format!("the name of a defined {kind} (none are defined)")
    } else {
        format!("one of the defined {kind}s ({})", defined.join(", "))
    }
}

/// The root level: NOTSET lets everything through; absent keeps Python's
/// default root level, WARNING.
fn root_level(root: Option<&LoggerDef>, env: &Env) -> Result<LevelFilter, LoggingError> {
    let level = match root.and_then(|root| root.level.as_ref()) {
        Some(field) => field.level(env.src)?,
        None => PyLevel::Threshold(LevelFilter::Warn),
    };
    Ok(match level {
        PyLevel::NotSet => LevelFilter::Trace,
        PyLevel::Threshold(filter) => filter,
    })
}

/// Builds a log4rs logger per Python logger.
fn build_loggers(
    loggers: &[(String, LoggerDef)],
    root_level: LevelFilter,
    names: &HandlerNames,
    env: &mut Env,
) -> Result<Vec<Logger>, LoggingError> {
    let explicit = explicit_levels(loggers, env)?;
    let mut built = Vec::new();
    for (target, name, def) in choose_targets(loggers, env)? {
        let level = effective_level(name, &explicit, root_level);
        let appenders = handler_refs(&def.handlers, names, env)?;
        let additive = match &def.propagate {
            Some(field) => field.flag(env.src)?,
            None => true,
        };
        let logger = Logger::builder()
            .appenders(appenders)
            .additive(additive)
            .build(target, level);
        built.push(logger);
    }
    Ok(built)
}

/// The loggers that set a level other than NOTSET, by Python name.
fn explicit_levels<'m>(
    loggers: &'m [(String, LoggerDef)],
    env: &Env,
) -> Result<HashMap<&'m str, LevelFilter>, LoggingError> {
    let mut levels = HashMap::new();
    for (name, def) in loggers {
        if let Some(field) = &def.level
            && let PyLevel::Threshold(filter) = field.level(env.src)?
        {
            levels.insert(name.as_str(), filter);
        }
    }
    Ok(levels)
}

/// Python's effective level: the logger's own, else its nearest ancestor's
/// (by dotted name), else the root's. log4rs loggers need a level of their
/// own, so inheritance is resolved here.
fn effective_level(
    name: &str,
    explicit: &HashMap<&str, LevelFilter>,
    root_level: LevelFilter,
) -> LevelFilter {
    let mut current = name;
    loop {
        if let Some(level) = explicit.get(current) {
            return *level;
        }
        match current.rsplit_once('.') {
            Some((parent, _)) => current = parent,
            None => return root_level,
        }
    }
}

/// Maps Python logger names to log4rs targets. When several map to the
/// same target (`keepstart` and `keepstart.core`), the most general one,
/// then the first in order, wins and the others are dropped with a warning.
fn choose_targets<'m>(
    loggers: &'m [(String, LoggerDef)],
    env: &mut Env,
) -> Result<Vec<(String, &'m str, &'m LoggerDef)>, LoggingError> {
    let mut order: Vec<(usize, &(String, LoggerDef))> = loggers.iter().enumerate().collect();
    order.sort_by_key(|(index, (name, _))| (name.matches('.').count(), *index));
    let mut chosen: Vec<(String, &str, &LoggerDef)> = Vec::new();
    for (_, (name, def)) in order {
        let target = rust_target(name).ok_or_else(|| {
            let expected = "a logger name made of non-empty dot-separated parts";
            env.src
                .invalid(&def.spot, expected, &Value::String(name.clone()))
        })?;
        if let Some((_, winner, _)) = chosen.iter().find(|(taken, ..)| *taken == target) {
            let message = format!(
                "maps to the log4rs target `{target}` as `{winner}` does, which wins; ignored"
            );
            env.warn(&def.spot, message);
            continue;
        }
        chosen.push((target, name, def));
    }
    Ok(chosen)
}

/// The log4rs target for a Python logger name: `.` becomes `::` (a Rust
/// style `::` is accepted too). `keepstart` and everything below it was the
/// Python daemon, whose module names mean nothing here, so all of it maps
/// to this crate's target; `keepserver.x` maps to the module `keepserver::x`.
fn rust_target(python_name: &str) -> Option<String> {
    let normalized = python_name.replace("::", ".");
    let parts: Vec<&str> = normalized.split('.').collect();
    if parts
        .iter()
        .any(|part| part.is_empty() || part.contains(':'))
    {
        return None;
    }
    if parts[0] == "keepstart" {
        return Some(CRATE_TARGET.to_owned());
    }
    Some(parts.join("::"))
}

/// The appenders a logger's handler list names. Handlers that were skipped
/// with a warning are left out; unknown names are errors.
fn handler_refs(
    refs: &[Field],
    names: &HandlerNames,
    env: &Env,
) -> Result<Vec<String>, LoggingError> {
    let mut appenders: Vec<String> = Vec::new();
    for field in refs {
        let name = field.name(env.src, "a handler name")?;
        if names.built.contains(&name) {
            // Python's addHandler ignores a handler added twice.
            if !appenders.contains(&name) {
                appenders.push(name);
            }
        } else if !names.skipped.contains(&name) {
            let defined: Vec<&str> = names.defined.iter().map(String::as_str).collect();
            let expected = one_of("handler", &defined);
            return Err(env.src.invalid(&field.spot, &expected, &field.value));
        }
    }
    Ok(appenders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logger_names_map_to_targets() {
        let cases = [
            ("keepstart", Some("keepserver")),
            ("keepstart.core", Some("keepserver")),
            ("keepserver", Some("keepserver")),
            ("keepserver.netlink", Some("keepserver::netlink")),
            ("keepserver::netlink", Some("keepserver::netlink")),
            ("appserver", Some("appserver")),
            ("paramiko.transport", Some("paramiko::transport")),
            ("a..b", None),
            ("", None),
            ("a:b", None),
        ];
        for (python, rust) in cases {
            assert_eq!(rust_target(python).as_deref(), rust, "{python:?}");
        }
    }

    #[test]
    fn levels_inherit_from_the_nearest_ancestor() {
        let explicit = HashMap::from([("a", LevelFilter::Debug), ("a.b.c", LevelFilter::Error)]);
        let root = LevelFilter::Warn;
        assert_eq!(effective_level("a.b", &explicit, root), LevelFilter::Debug);
        assert_eq!(
            effective_level("a.b.c.d", &explicit, root),
            LevelFilter::Error
        );
        assert_eq!(effective_level("z", &explicit, root), LevelFilter::Warn);
    }
}
