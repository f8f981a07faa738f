//! The fileConfig front-end: parses a Python `logging.config.fileConfig`
//! INI file (a small subset of `configparser`: sections, `key=value` or
//! `key: value`, `#`/`;` comment lines, indented continuation lines and a
//! `[DEFAULT]` section; no `%(...)` interpolation) into the shared model
//! ([`super::model`]).

use serde_json::Value;

use super::{
    error::{LoggingError, Spot},
    handlers::HandlerClass,
    model::{Field, FormatterDef, HandlerDef, LoggerDef, PyConfig},
    pyliteral,
    python::Env,
};

/// A parsed INI file, sections in file order.
struct Ini {
    sections: Vec<Section>,
}

/// One `[name]` section.
struct Section {
    name: String,
    entries: Vec<Entry>,
}

/// One `key = value` line (plus continuation lines).
struct Entry {
    /// Lower-cased, as `configparser` does.
    key: String,
    value: String,
    line: usize,
}

/// Reads a fileConfig INI file.
pub(super) fn parse(text: &str, env: &mut Env) -> Result<PyConfig, LoggingError> {
    let ini = Ini::parse(text, env)?;
    let mut model = PyConfig::default();
    for (name, spot) in ini.keys("formatters") {
        let section = ini.listed_section("formatter", &name, &spot, env)?;
        model.formatters.push((name, formatter(&ini, section, env)));
    }
    for (name, spot) in ini.keys("handlers") {
        let section = ini.listed_section("handler", &name, &spot, env)?;
        model.handlers.push((name, handler(&ini, section, env)?));
    }
    read_loggers(&ini, &mut model, env)?;
    Ok(model)
}

impl Ini {
    /// Parses the text; errors name the line.
    fn parse(text: &str, env: &Env) -> Result<Ini, LoggingError> {
        let mut ini = Ini {
            sections: Vec::new(),
        };
        for (index, raw) in text.lines().enumerate() {
            ini.parse_line(raw, index + 1, env)?;
        }
        Ok(ini)
    }

    /// Takes in one line.
    fn parse_line(&mut self, raw: &str, line: usize, env: &Env) -> Result<(), LoggingError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            return Ok(());
        }
        let continues = raw.starts_with(char::is_whitespace);
        if continues && let Some(entry) = self.last_entry() {
            entry.value.push('\n');
            entry.value.push_str(trimmed);
            return Ok(());
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return self.add_section(name.trim(), line, env);
        }
        let Some(at) = trimmed.find(['=', ':']) else {
            return Err(syntax(env, line, "expected `[section]` or `key = value`"));
        };
        let Some(section) = self.sections.last_mut() else {
            return Err(syntax(
                env,
                line,
                "`key = value` before the first `[section]`",
            ));
        };
        let key = trimmed[..at].trim().to_ascii_lowercase();
        if section.entries.iter().any(|entry| entry.key == key) {
            return Err(syntax(
                env,
                line,
                format!("`{key}` given twice in [{}]", section.name),
            ));
        }
        section.entries.push(Entry {
            key,
            value: trimmed[at + 1..].trim().to_owned(),
            line,
        });
        Ok(())
    }

    /// Starts a section; duplicates are errors, as in `configparser`.
    fn add_section(&mut self, name: &str, line: usize, env: &Env) -> Result<(), LoggingError> {
        if self.section(name).is_some() {
            return Err(syntax(env, line, format!("section [{name}] given twice")));
        }
        self.sections.push(Section {
            name: name.to_owned(),
            entries: Vec::new(),
        });
        Ok(())
    }

    /// The entry a continuation line belongs to.
    fn last_entry(&mut self) -> Option<&mut Entry> {
        self.sections.last_mut()?.entries.last_mut()
    }

    /// The section called `name`.
    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|section| section.name == name)
    }

    /// `key` in `section`, falling back to `[DEFAULT]`.
    fn get(&self, section: &Section, key: &str) -> Option<Field> {
        let find = |section: &Section| {
            let entry = section.entries.iter().find(|entry| entry.key == key)?;
            Some(Field {
                value: Value::String(entry.value.clone()),
                spot: Spot {
                    key: format!("{}.{key}", section.name),
                    line: Some(entry.line),
                },
            })
        };
        find(section).or_else(|| find(self.section("DEFAULT")?))
    }

    /// The names listed by `keys` in `[formatters]`, `[handlers]` or
    /// `[loggers]`, each with the spot of that `keys` line.
    fn keys(&self, list: &str) -> Vec<(String, Spot)> {
        let Some(field) = self
            .section(list)
            .and_then(|section| self.get(section, "keys"))
        else {
            return Vec::new();
        };
        split_list(&field)
            .into_iter()
            .map(|name| (name, field.spot.clone()))
            .collect()
    }

    /// The `[kind_name]` section of a listed name.
    fn listed_section(
        &self,
        kind: &str,
        name: &str,
        spot: &Spot,
        env: &Env,
    ) -> Result<&Section, LoggingError> {
        let section_name = format!("{kind}_{name}");
        self.section(&section_name).ok_or_else(|| {
            let expected = format!("names that each have a [{section_name}] section");
            env.src
                .invalid(spot, &expected, &Value::String(name.to_owned()))
        })
    }
}

/// A syntax error at `line` of the INI file.
fn syntax(env: &Env, line: usize, message: impl std::fmt::Display) -> LoggingError {
    env.src.malformed(Some(line), message)
}

/// A comma-separated list, blanks dropped, as fileConfig reads `keys` and
/// `handlers`.
fn split_list(field: &Field) -> Vec<String> {
    field
        .value
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads a `[formatter_x]` section.
fn formatter(ini: &Ini, section: &Section, env: &mut Env) -> FormatterDef {
    if let Some(class) = ini.get(section, "class")
        && class.value.as_str() != Some("logging.Formatter")
    {
        env.warn(
            &class.spot,
            "custom formatters cannot be translated; only their format is used",
        );
    }
    FormatterDef {
        spot: Spot {
            key: section.name.clone(),
            line: None,
        },
        format: ini.get(section, "format"),
        datefmt: ini.get(section, "datefmt"),
        style: ini.get(section, "style"),
    }
}

/// Reads a `[handler_x]` section; `args` and `kwargs` become named params.
fn handler(ini: &Ini, section: &Section, env: &Env) -> Result<HandlerDef, LoggingError> {
    let spot = Spot {
        key: section.name.clone(),
        line: None,
    };
    let class = ini.get(section, "class").unwrap_or_else(|| Field {
        value: Value::Null,
        spot: spot.child("class"),
    });
    // An empty `formatter=` means none, as in fileConfig.
    let formatter = ini
        .get(section, "formatter")
        .filter(|field| field.value.as_str() != Some(""));
    // Only translatable classes' args are read: others are skipped later,
    // and their args (addresses, credentials) need not parse.
    let params = match HandlerClass::resolve(&class, env.src)? {
        HandlerClass::Untranslatable | HandlerClass::Null => Vec::new(),
        known => handler_params(ini, section, known, env)?,
    };
    Ok(HandlerDef {
        spot,
        class,
        level: ini.get(section, "level"),
        formatter,
        params,
    })
}

/// Names the positional `args` by the class's signature and adds `kwargs`.
fn handler_params(
    ini: &Ini,
    section: &Section,
    class: HandlerClass,
    env: &Env,
) -> Result<Vec<(String, Field)>, LoggingError> {
    let mut params = Vec::new();
    if let Some(args) = ini.get(section, "args") {
        let values = match literal(&args, "a Python tuple of literals", env)? {
            Value::Array(values) => values,
            single => vec![single],
        };
        let names = class.params();
        if values.len() > names.len() {
            let expected = format!("at most {} arguments ({})", names.len(), names.join(", "));
            return Err(env.src.invalid(&args.spot, &expected, &args.value));
        }
        for (index, (value, name)) in values.into_iter().zip(names).enumerate() {
            let spot = Spot {
                key: format!("{}[{index}] ({name})", args.spot.key),
                line: args.spot.line,
            };
            params.push((name.to_string(), Field { value, spot }));
        }
    }
    if let Some(kwargs) = ini.get(section, "kwargs") {
        let expected = "a Python dict of literals";
        let Value::Object(map) = literal(&kwargs, expected, env)? else {
            return Err(env.src.invalid(&kwargs.spot, expected, &kwargs.value));
        };
        for (name, value) in map {
            let spot = kwargs.spot.child(&name);
            params.push((name, Field { value, spot }));
        }
    }
    Ok(params)
}

/// Parses a field's text as a Python literal.
fn literal(field: &Field, expected: &str, env: &Env) -> Result<Value, LoggingError> {
    field
        .value
        .as_str()
        .and_then(pyliteral::parse)
        .ok_or_else(|| env.src.invalid(&field.spot, expected, &field.value))
}

/// Reads `[loggers]`: `root` is required, as in fileConfig; the others are
/// known by their `qualname`.
fn read_loggers(ini: &Ini, model: &mut PyConfig, env: &Env) -> Result<(), LoggingError> {
    let keys = ini.keys("loggers");
    if !keys.iter().any(|(name, _)| name == "root") {
        let spot = keys.first().map_or_else(
            || Spot {
                key: "loggers.keys".to_owned(),
                line: None,
            },
            |(_, spot)| spot.clone(),
        );
        let found = keys
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>();
        let found = Value::String(found.join(","));
        return Err(env
            .src
            .invalid(&spot, "a list of loggers that includes root", &found));
    }
    for (name, spot) in keys {
        let section = ini.listed_section("logger", &name, &spot, env)?;
        if name == "root" {
            model.root = Some(logger(ini, section));
            continue;
        }
        let Some(qualname) = ini.get(section, "qualname") else {
            let spot = Spot {
                key: format!("{}.qualname", section.name),
                line: None,
            };
            return Err(env
                .src
                .invalid(&spot, "the logger's dotted name", &Value::Null));
        };
        let qualname = qualname
            .text(env.src, "the logger's dotted name")?
            .to_owned();
        model.loggers.push((qualname, logger(ini, section)));
    }
    Ok(())
}

/// Reads a `[logger_x]` section.
fn logger(ini: &Ini, section: &Section) -> LoggerDef {
    let handlers = match ini.get(section, "handlers") {
        Some(field) => split_list(&field)
            .into_iter()
            .enumerate()
            .map(|(index, name)| Field {
                value: Value::String(name),
                spot: field.spot.item(index),
            })
            .collect(),
        None => Vec::new(),
    };
    LoggerDef {
        spot: Spot {
            key: section.name.clone(),
            line: None,
        },
        level: ini.get(section, "level"),
        handlers,
        propagate: ini.get(section, "propagate"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::logging::error::Source;

    fn parse_text(text: &str) -> Result<PyConfig, LoggingError> {
        let src = Source::whole_file(Path::new("/etc/k/logging.ini"));
        let mut env = Env::new(&src, Path::new("/tmp"));
        parse(text, &mut env)
    }

    #[test]
    fn configparser_subset_parses() {
        let model = parse_text(
            "# comment\n; comment\n[DEFAULT]\nlevel = WARNING\n\
             [loggers]\nkeys = root , app,\n\
             [logger_root]\nhandlers=\n\
             [logger_app]\nQualName: my.app\nhandlers=h\npropagate=0\n\
             [handlers]\nkeys=h\n\
             [handler_h]\nclass=FileHandler\nargs=('x.log',\n  'w')\nkwargs={'delay': True}\n",
        )
        .unwrap();
        let root = model.root.unwrap();
        assert_eq!(root.level.unwrap().value, Value::from("WARNING"));
        assert!(root.handlers.is_empty());
        let (name, app) = &model.loggers[0];
        assert_eq!(name, "my.app");
        assert_eq!(app.handlers[0].spot.key, "logger_app.handlers[0]");
        let (_, handler) = &model.handlers[0];
        let params: Vec<_> = handler
            .params
            .iter()
            .map(|(name, field)| (name.as_str(), field.value.clone(), field.spot.key.as_str()))
            .collect();
        assert_eq!(
            params,
            [
                (
                    "filename",
                    Value::from("x.log"),
                    "handler_h.args[0] (filename)"
                ),
                ("mode", Value::from("w"), "handler_h.args[1] (mode)"),
                ("delay", Value::Bool(true), "handler_h.kwargs.delay"),
            ]
        );
    }

    #[test]
    fn malformed_files_are_errors_with_lines() {
        let cases = [
            (
                "keys=root\n",
                "/etc/k/logging.ini:1: `key = value` before the first `[section]`",
            ),
            (
                "[loggers]\nkeys\n",
                "/etc/k/logging.ini:2: expected `[section]` or `key = value`",
            ),
            (
                "[a]\n[a]\n",
                "/etc/k/logging.ini:2: section [a] given twice",
            ),
            (
                "[a]\nx=1\nX=2\n",
                "/etc/k/logging.ini:3: `x` given twice in [a]",
            ),
            (
                "[loggers]\nkeys=app\n",
                "/etc/k/logging.ini:2: `loggers.keys`: expected a list of loggers that includes root, found \"app\"",
            ),
            (
                "[loggers]\nkeys=root\n",
                "/etc/k/logging.ini:2: `loggers.keys`: expected names that each have a [logger_root] section, found \"root\"",
            ),
            (
                "[loggers]\nkeys=root,a\n[logger_root]\n[logger_a]\nlevel=INFO\n",
                "/etc/k/logging.ini: `logger_a.qualname`: expected the logger's dotted name, found nothing",
            ),
            (
                "[loggers]\nkeys=root\n[logger_root]\n[handlers]\nkeys=h\n[handler_h]\nclass=StreamHandler\nargs=(sys.stdout, 1)\n",
                "/etc/k/logging.ini:8: `handler_h.args`: expected at most 1 arguments (stream), found \"(sys.stdout, 1)\"",
            ),
            (
                "[loggers]\nkeys=root\n[logger_root]\n[handlers]\nkeys=h\n[handler_h]\nclass=FileHandler\nargs=(os.getenv('X'),)\n",
                "/etc/k/logging.ini:8: `handler_h.args`: expected a Python tuple of literals, found \"(os.getenv('X'),)\"",
            ),
        ];
        for (text, message) in cases {
            let err = parse_text(text).err().map(|e| e.to_string());
            assert_eq!(err.as_deref(), Some(message), "{text:?}");
        }
    }

    #[test]
    fn untranslatable_handlers_args_are_not_parsed() {
        let model = parse_text(
            "[loggers]\nkeys=root\n[logger_root]\n[handlers]\nkeys=s\n\
             [handler_s]\nclass=handlers.SysLogHandler\nargs=(('localhost', handlers.SYSLOG_UDP_PORT), handlers.SysLogHandler.LOG_USER)\n",
        )
        .unwrap();
        assert!(model.handlers[0].1.params.is_empty());
    }
}
