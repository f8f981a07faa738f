//! Tests of the whole translation: each accepted form (and logging through
//! the result), each error, the warnings, and install/apply.

use std::{
    fs,
    path::{Path, PathBuf},
};

use log::{Level, Log, Record};
use tempfile::TempDir;

use super::*;

/// The `logging:` section of keepstart's README.
const README_DICT: &str = r#"
logging:
    version: 1
    disable_existing_loggers: false
    formatters:
        simple:
            format: "%(asctime)-15s\t%(levelname)s\t%(message)s"
    handlers:
        console:
            class: logging.StreamHandler
            level: DEBUG
            formatter: simple
        file:
            class: logging.handlers.TimedRotatingFileHandler
            level: DEBUG
            formatter: simple
            filename: /opt/ssh-proxy-server/server.log
            backupCount: 30
            when: D
            interval: 1
            encoding: utf-8
    loggers:
        keepstart:
            level: INFO
            handlers:
                - file
                - console
            propagate: no
    root:
        level: INFO
        handlers:
            - file
            - console
"#;

/// The fileConfig example of keepstart's README.
const README_INI: &str = "\
[loggers]
keys=root,keepserver,appserver
[handlers]
keys=consoleHandler,fileHandler
[formatters]
keys=simpleFormatter
[logger_root]
level=DEBUG
handlers=consoleHandler,fileHandler
[logger_keepserver]
level=DEBUG
handlers=consoleHandler,fileHandler
qualname=keepserver
propagate=0
[logger_appserver]
level=DEBUG
handlers=consoleHandler,fileHandler
qualname=appserver
propagate=0
[handler_consoleHandler]
class=StreamHandler
level=DEBUG
formatter=simpleFormatter
args=(sys.stdout,)
[handler_fileHandler]
class=logging.handlers.TimedRotatingFileHandler
level=DEBUG
formatter=simpleFormatter
args=('logFile.log', 'D', 1, 30, 'utf-8')
[formatter_simpleFormatter]
format=%(asctime)s %(levelname)5s %(message)s
";

/// A workspace in a temp dir, with config.yaml in it.
struct Fixture {
    dir: TempDir,
    config_file: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("config.yaml");
        Fixture { dir, config_file }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ctx(&self) -> LoggingContext<'_> {
        LoggingContext {
            config_file: &self.config_file,
            workspace: self.dir.path(),
        }
    }

    /// Translates the `logging:` key of a config.yaml text; `$DIR` in the
    /// text stands for the workspace.
    fn translate(&self, config_yaml: &str) -> Result<Translated, LoggingError> {
        let text = config_yaml.replace("$DIR", &self.dir.path().display().to_string());
        let config: Value = serde_saphyr::from_str(&text).unwrap();
        translate(config.get("logging"), &self.ctx())
    }

    /// The full text of an error, for comparison; `$DIR` for the workspace.
    fn error(&self, config_yaml: &str) -> String {
        let message = self.translate(config_yaml).err().unwrap().to_string();
        message.replace(&self.dir.path().display().to_string(), "$DIR")
    }

    /// The warnings, `$DIR` for the workspace.
    fn warnings(&self, config_yaml: &str) -> Vec<String> {
        let t = self.translate(config_yaml).unwrap();
        let dir = self.dir.path().display().to_string();
        t.warnings.iter().map(|w| w.replace(&dir, "$DIR")).collect()
    }
}

/// Logs one record through a config, as the global logger would.
fn log_through(logger: &log4rs::Logger, target: &str, level: Level, message: &str) {
    logger.log(
        &Record::builder()
            .target(target)
            .level(level)
            .args(format_args!("{message}"))
            .build(),
    );
    logger.flush();
}

/// Whether `text` has the shape of `template`, where `d` is any digit.
fn has_shape(text: &str, template: &str) -> bool {
    text.len() == template.len()
        && text.chars().zip(template.chars()).all(|(c, t)| match t {
            'd' => c.is_ascii_digit(),
            _ => c == t,
        })
}

/// Python's default asctime shape.
const ASCTIME: &str = "dddd-dd-dd dd:dd:dd,ddd";

fn appender_names(config: &Config) -> Vec<&str> {
    let mut names: Vec<&str> = config.appenders().iter().map(|a| a.name()).collect();
    names.sort_unstable();
    names
}

fn appender<'c>(config: &'c Config, name: &str) -> &'c log4rs::config::Appender {
    config
        .appenders()
        .iter()
        .find(|a| a.name() == name)
        .unwrap()
}

#[test]
fn absent_or_null_gives_the_default_console() {
    let fx = Fixture::new();
    for yaml in ["other: 1", "logging:", "logging: null"] {
        let t = fx.translate(yaml).unwrap();
        assert_eq!(appender_names(&t.config), ["stderr"]);
        assert_eq!(t.config.root().level(), LevelFilter::Info);
        assert_eq!(t.config.root().appenders(), ["stderr"]);
        assert!(t.config.loggers().is_empty());
        assert!(t.warnings.is_empty());
    }
}

#[test]
fn keepstart_readme_dict_config_translates_and_logs() {
    let fx = Fixture::new();
    let log_file = fx.path("server.log");
    let yaml = README_DICT.replace("/opt/ssh-proxy-server/server.log", "$DIR/server.log");
    let t = fx.translate(&yaml).unwrap();
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);

    let config = &t.config;
    assert_eq!(appender_names(config), ["console", "file"]);
    let file = format!("{:?}", appender(config, "file").appender());
    assert!(file.starts_with("Guarded { sink: File("), "{file}");
    assert!(file.contains("inner: FileSink"), "{file}");
    assert!(file.contains("server.log.{}"), "{file}");
    assert!(file.contains("count: 30"), "{file}");
    assert!(file.contains("Day(1)"), "{file}");
    for name in ["console", "file"] {
        assert_eq!(appender(config, name).filters().len(), 1, "{name}");
    }
    let [logger] = config.loggers() else {
        panic!("{:?}", config.loggers())
    };
    assert_eq!(logger.name(), "keepserver");
    assert_eq!(logger.level(), LevelFilter::Info);
    assert!(!logger.additive());
    assert_eq!(logger.appenders(), ["file", "console"]);
    assert_eq!(config.root().level(), LevelFilter::Info);
    assert_eq!(config.root().appenders(), ["file", "console"]);

    let logger = log4rs::Logger::new(t.config);
    log_through(&logger, "keepserver::netlink", Level::Info, "hello");
    log_through(&logger, "keepserver", Level::Debug, "too detailed");
    log_through(&logger, "other", Level::Warn, "via root");
    let text = fs::read_to_string(&log_file).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert!(has_shape(lines[0][0], ASCTIME), "{text:?}");
    assert_eq!(lines[0][1..], ["INFO", "hello"]);
    assert_eq!(lines[1][1..], ["WARN", "via root"]);
}

#[test]
fn keepstart_readme_ini_file_translates_and_logs() {
    let fx = Fixture::new();
    fs::write(fx.path("logging.ini"), README_INI).unwrap();
    let t = fx.translate("logging: logging.ini").unwrap();
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);

    let config = &t.config;
    assert_eq!(appender_names(config), ["consoleHandler", "fileHandler"]);
    let console = format!("{:?}", appender(config, "consoleHandler").appender());
    assert!(console.contains("inner: Stdout"), "{console}");
    assert!(
        console.starts_with(r#"Guarded { sink: Stream("stdout")"#),
        "{console}"
    );
    let mut loggers: Vec<_> = config
        .loggers()
        .iter()
        .map(|l| (l.name(), l.level(), l.additive(), l.appenders().to_vec()))
        .collect();
    loggers.sort_by_key(|l| l.0);
    let handlers = vec!["consoleHandler".to_owned(), "fileHandler".to_owned()];
    assert_eq!(
        loggers,
        [
            ("appserver", LevelFilter::Debug, false, handlers.clone()),
            ("keepserver", LevelFilter::Debug, false, handlers.clone()),
        ]
    );
    assert_eq!(config.root().level(), LevelFilter::Debug);
    assert_eq!(config.root().appenders(), handlers);

    let logger = log4rs::Logger::new(t.config);
    log_through(&logger, "keepserver", Level::Info, "hello ini");
    let text = fs::read_to_string(fx.path("logFile.log")).unwrap();
    let line = text.lines().next().unwrap();
    assert!(has_shape(&line[..ASCTIME.len()], ASCTIME), "{line:?}");
    assert_eq!(&line[ASCTIME.len()..], "  INFO hello ini");
}

#[test]
fn inline_log4rs_config_anchors_paths_at_the_workspace() {
    let fx = Fixture::new();
    let t = fx
        .translate(
            r#"
logging:
  refresh_rate: 30 seconds
  appenders:
    main:
      kind: file
      path: logs/inline.log
      encoder: { pattern: "{l} {t} {m}{n}" }
      filters: [{ kind: threshold, level: info }]
    rolled:
      kind: rolling_file
      path: rolled.log
      policy:
        trigger: { kind: size, limit: 1 mb }
        roller: { kind: fixed_window, pattern: "old/rolled.{}.log", count: 2 }
  root: { level: warn, appenders: [main] }
  loggers:
    keepserver::netlink: { level: debug, appenders: [rolled] }
"#,
        )
        .unwrap();
    assert_eq!(
        t.warnings,
        [format!(
            "{}: `logging.refresh_rate`: ignored: keepserver reloads its logging config on SIGHUP",
            fx.config_file.display()
        )]
    );
    let rolled = format!("{:?}", appender(&t.config, "rolled").appender());
    let pattern = fx.path("old/rolled.{}.log");
    assert!(rolled.contains(&*pattern.to_string_lossy()), "{rolled}");
    let sink = format!("Guarded {{ sink: File({:?})", fx.path("rolled.log"));
    assert!(rolled.starts_with(&sink), "{rolled}");

    let logger = log4rs::Logger::new(t.config);
    log_through(&logger, "keepserver::netlink", Level::Info, "kept");
    log_through(
        &logger,
        "keepserver::netlink",
        Level::Debug,
        "filtered by threshold",
    );
    log_through(&logger, "keepserver", Level::Info, "below root level");
    let text = fs::read_to_string(fx.path("logs/inline.log")).unwrap();
    assert_eq!(text, "INFO keepserver::netlink kept\n");
    assert!(fx.path("rolled.log").exists());
}

#[test]
fn example_log4rs_file_loads() {
    let fx = Fixture::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/logging.yaml.example");
    let t = fx.translate(&format!("logging: {example}")).unwrap();
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(appender_names(&t.config), ["console", "file"]);
    assert_eq!(t.config.root().level(), LevelFilter::Info);

    let logger = log4rs::Logger::new(t.config);
    log_through(&logger, "keepserver::config", Level::Debug, "not logged");
    log_through(&logger, "keepserver::config", Level::Info, "logged");
    let text = fs::read_to_string(fx.path("server.log")).unwrap();
    assert!(
        text.ends_with(" INFO  keepserver::config logged\n"),
        "{text:?}"
    );
}

#[test]
fn files_are_read_relative_to_the_config_file() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("conf")).unwrap();
    let dict = "version: 1\nroot: {level: DEBUG}\n";
    let log4rs_yaml = "root: {level: error}\n";
    fs::write(fx.path("conf/dict.yml"), dict).unwrap();
    fs::write(fx.path("conf/plain.conf"), log4rs_yaml).unwrap();
    fs::write(
        fx.path("conf/py.ini"),
        "[loggers]\nkeys=root\n[logger_root]\nlevel=ERROR\n",
    )
    .unwrap();
    let config_file = fx.path("conf/config.yaml");
    let ctx = LoggingContext {
        config_file: &config_file,
        workspace: fx.dir.path(),
    };
    let cases = [
        ("dict.yml", LevelFilter::Debug),
        ("plain.conf", LevelFilter::Error),
        ("py.ini", LevelFilter::Error),
    ];
    for (file, level) in cases {
        let value = Value::String(file.to_owned());
        let t = translate(Some(&value), &ctx).unwrap();
        assert_eq!(t.config.root().level(), level, "{file}");
    }
}

#[test]
fn errors_name_file_key_and_expectation() {
    let fx = Fixture::new();
    fs::write(fx.path("not-a-dir"), "").unwrap();
    let cfg = "$DIR/config.yaml";
    let handler = |body: &str| {
        format!(
            "logging:\n  version: 1\n  handlers:\n    h:\n{}\n  root: {{handlers: [h]}}\n",
            body.lines()
                .map(|l| format!("      {l}\n"))
                .collect::<String>()
        )
    };
    let cases: Vec<(String, String)> = vec![
        (
            handler("class: logging.StreamHandlr"),
            format!(
                "{cfg}: `logging.handlers.h.class`: expected a handler class (logging.StreamHandler, \
                 logging.FileHandler, logging.handlers.RotatingFileHandler, \
                 logging.handlers.TimedRotatingFileHandler, ...), found \"logging.StreamHandlr\""
            ),
        ),
        (
            handler("level: DEBUG"),
            format!(
                "{cfg}: `logging.handlers.h.class`: expected a handler class (logging.StreamHandler, \
                 logging.FileHandler, logging.handlers.RotatingFileHandler, \
                 logging.handlers.TimedRotatingFileHandler, ...), found nothing"
            ),
        ),
        (
            handler("class: StreamHandler\nlevel: LOUD"),
            format!(
                "{cfg}: `logging.handlers.h.level`: expected a level (CRITICAL, FATAL, ERROR, \
                 WARNING, WARN, INFO, DEBUG, NOTSET or a number), found \"LOUD\""
            ),
        ),
        (
            handler("class: StreamHandler\nformatter: fancy"),
            format!(
                "{cfg}: `logging.handlers.h.formatter`: expected the name of a defined formatter \
                 (none are defined), found \"fancy\""
            ),
        ),
        (
            handler("class: StreamHandler\nstream: ext://sys.stdin"),
            format!(
                "{cfg}: `logging.handlers.h.stream`: expected ext://sys.stdout or ext://sys.stderr, \
                 found \"ext://sys.stdin\""
            ),
        ),
        (
            handler("class: FileHandler"),
            format!("{cfg}: `logging.handlers.h.filename`: expected a log file name, found nothing"),
        ),
        (
            handler("class: FileHandler\nfilename: x.log\nmode: r"),
            format!(
                "{cfg}: `logging.handlers.h.mode`: expected a file mode starting with a or w, found \"r\""
            ),
        ),
        (
            handler("class: FileHandler\nfilename: not-a-dir/x.log"),
            format!(
                "{cfg}: `logging.handlers.h.filename`: cannot open $DIR/not-a-dir/x.log: \
                 File exists (os error 17)"
            ),
        ),
        (
            handler("class: handlers.TimedRotatingFileHandler\nfilename: x.log\nwhen: fortnight"),
            format!(
                "{cfg}: `logging.handlers.h.when`: expected S, M, H, D, midnight or W0-W6, \
                 found \"fortnight\""
            ),
        ),
        (
            handler("class: handlers.TimedRotatingFileHandler\nfilename: x.log\ninterval: 0"),
            format!("{cfg}: `logging.handlers.h.interval`: expected a positive whole number, found 0"),
        ),
        (
            handler("class: handlers.RotatingFileHandler\nfilename: x.log\nbackupCount: -1"),
            format!("{cfg}: `logging.handlers.h.backupCount`: expected a whole number, 0 or more, found -1"),
        ),
        (
            "logging:\n  version: 1\n  handlers: {console: {class: StreamHandler}}\n  loggers:\n    \
             keepstart: {handlers: [console, nope]}\n"
                .to_owned(),
            format!(
                "{cfg}: `logging.loggers.keepstart.handlers[1]`: expected one of the defined \
                 handlers (console), found \"nope\""
            ),
        ),
        (
            "logging:\n  version: 1\n  loggers: {x: {propagate: maybe}}\n".to_owned(),
            format!(
                "{cfg}: `logging.loggers.x.propagate`: expected a boolean (true/false, yes/no, \
                 on/off, 1/0), found \"maybe\""
            ),
        ),
        (
            "logging:\n  version: 1\n  loggers: {x: {handlers: console}}\n".to_owned(),
            format!("{cfg}: `logging.loggers.x.handlers`: expected a list of handler names, found \"console\""),
        ),
        (
            "logging:\n  version: 1\n  root: {level: VERBOSE}\n".to_owned(),
            format!(
                "{cfg}: `logging.root.level`: expected a level (CRITICAL, FATAL, ERROR, WARNING, \
                 WARN, INFO, DEBUG, NOTSET or a number), found \"VERBOSE\""
            ),
        ),
        (
            "logging:\n  version: 2\n".to_owned(),
            format!("{cfg}: `logging.version`: expected 1, found 2"),
        ),
        (
            "logging:\n  version: 1\n  handlers: []\n".to_owned(),
            format!("{cfg}: `logging.handlers`: expected a mapping, found a list"),
        ),
        (
            "logging: 42\n".to_owned(),
            format!("{cfg}: `logging`: expected nothing, a mapping or a file path, found 42"),
        ),
        (
            "logging: {level: info}\n".to_owned(),
            format!(
                "{cfg}: `logging`: expected a dictConfig mapping (with `version: 1`) or a log4rs \
                 config (with `appenders`), found a mapping with keys [level]"
            ),
        ),
        (
            "logging: missing.ini\n".to_owned(),
            format!(
                "{cfg}: `logging`: cannot read logging file $DIR/missing.ini: \
                 No such file or directory (os error 2)"
            ),
        ),
        (
            "logging:\n  appenders: {a: {kind: carrier_pigeon}}\n".to_owned(),
            format!(
                "{cfg}: `logging.appenders.a`: no appender deserializer for kind `carrier_pigeon` registered"
            ),
        ),
        (
            "logging:\n  root: {appenders: [nope]}\n".to_owned(),
            format!("{cfg}: `logging`: Reference to nonexistent appender: `nope`"),
        ),
    ];
    for (yaml, message) in cases {
        assert_eq!(fx.error(&yaml), message, "{yaml}");
    }
}

#[test]
fn malformed_files_name_the_file_and_line() {
    let fx = Fixture::new();
    fs::write(fx.path("bad.yaml"), "appenders:\n  a: [\n").unwrap();
    fs::write(
        fx.path("shape.yaml"),
        "appenders: {}\nroot:\n  levle: info\n",
    )
    .unwrap();
    fs::write(fx.path("list.yml"), "- a\n").unwrap();
    fs::write(fx.path("empty.yaml"), "").unwrap();
    fs::write(
        fx.path("bad.ini"),
        "[loggers]\nkeys=root\n[logger_root]\nlevel=LOUD\n",
    )
    .unwrap();
    let cases = [
        ("bad.yaml", "$DIR/bad.yaml:2: unclosed bracket"),
        ("shape.yaml", "$DIR/shape.yaml:3: unknown field `levle`"),
        (
            "list.yml",
            "$DIR/list.yml: `(top level)`: expected a mapping, found a list",
        ),
        (
            "empty.yaml",
            "$DIR/empty.yaml: `(top level)`: expected a mapping, found nothing",
        ),
        (
            "bad.ini",
            "$DIR/bad.ini:4: `logger_root.level`: expected a level",
        ),
    ];
    for (file, start) in cases {
        let message = fx.error(&format!("logging: {file}"));
        assert!(message.starts_with(start), "{file}: {message}");
    }
}

#[test]
fn untranslatable_parts_become_warnings() {
    let fx = Fixture::new();
    let cfg = "$DIR/config.yaml";
    let cases: &[(&str, &[&str])] = &[
        (
            "logging:\n  version: 1\n  handlers:\n    sys: {class: logging.handlers.SysLogHandler, address: /dev/log}\n  \
             root: {handlers: [sys]}\n",
            &[
                "`logging.handlers.sys.class`: `logging.handlers.SysLogHandler` has no log4rs counterpart; handler skipped",
            ],
        ),
        (
            "logging:\n  version: 1\n  handlers:\n    c: {'()': my.factory}\n  root: {handlers: [c]}\n",
            &[
                "`logging.handlers.c.()`: custom handler factories cannot be translated; handler skipped",
            ],
        ),
        (
            "logging:\n  version: 1\n  filters: {f: {name: x}}\n  handlers:\n    c: {class: StreamHandler, filters: [f]}\n",
            &[
                "`logging.filters`: filters are not supported; ignored",
                "`logging.handlers.c.filters`: filters are not supported; ignored",
            ],
        ),
        (
            "logging:\n  version: 1\n  incremental: yes\n  disable_existing_loggers: true\n  extra: 1\n",
            &[
                "`logging.disable_existing_loggers`: log4rs has no existing loggers to disable; ignored",
                "`logging.extra`: not a dictConfig key; ignored",
                "`logging.incremental`: incremental configuration is not supported; the config replaces the current one",
            ],
        ),
        (
            "logging:\n  version: 1\n  formatters: {f: {format: '%(funcName)s: %(message)s', datefmt: '%Q'}}\n",
            &[
                "`logging.formatters.f`: `%Q` in datefmt has no chrono equivalent and is dropped",
                "`logging.formatters.f`: `%(funcName)` has no log4rs equivalent and is dropped",
            ],
        ),
        (
            "logging:\n  version: 1\n  formatters: {f: {format: '{message}', style: '{'}}\n",
            &[
                "`logging.formatters.f.style`: only %-style formats can be translated; using %(message)s",
            ],
        ),
        (
            "logging:\n  version: 1\n  handlers:\n    f: {class: FileHandler, filename: a.log, encoding: latin-1, bogus: 1}\n",
            &[
                "`logging.handlers.f.bogus`: not a parameter of this handler class; ignored",
                "`logging.handlers.f.encoding`: log4rs always writes UTF-8; encoding ignored",
            ],
        ),
        (
            "logging:\n  version: 1\n  handlers:\n    t: {class: handlers.TimedRotatingFileHandler, filename: t.log, when: W3, utc: on}\n",
            &[
                "`logging.handlers.t.when`: log4rs weeks start on Monday; rolls over on Mondays (W0)",
                "`logging.handlers.t.utc`: log4rs rolls over by local time; ignored",
                "`logging.handlers.t`: backupCount 0 keeps every rolled file in Python; log4rs deletes it instead",
            ],
        ),
        (
            "logging:\n  version: 1\n  loggers:\n    keepstart.core: {level: DEBUG}\n    keepstart: {level: INFO}\n",
            &[
                "`logging.loggers.keepstart.core`: maps to the log4rs target `keepserver` as `keepstart` does, which wins; ignored",
            ],
        ),
    ];
    for (yaml, expected) in cases {
        let expected: Vec<String> = expected.iter().map(|w| format!("{cfg}: {w}")).collect();
        assert_eq!(fx.warnings(yaml), expected, "{yaml}");
    }
}

#[test]
fn skipped_handlers_drop_out_of_logger_lists() {
    let fx = Fixture::new();
    let t = fx
        .translate(
            "logging:\n  version: 1\n  handlers:\n    sys: {class: logging.handlers.SMTPHandler}\n    \
             nul: {class: logging.NullHandler}\n    out: {class: logging.StreamHandler, stream: ext://sys.stdout}\n  \
             loggers:\n    keepserver.netlink: {handlers: [sys, nul, out, out]}\n  root: {handlers: [sys]}\n",
        )
        .unwrap();
    assert_eq!(appender_names(&t.config), ["out"]);
    let [logger] = t.config.loggers() else {
        panic!("{:?}", t.config.loggers())
    };
    assert_eq!(logger.name(), "keepserver::netlink");
    assert_eq!(logger.appenders(), ["out"]);
    // No level anywhere: Python's root default, WARNING, is inherited.
    assert_eq!(logger.level(), LevelFilter::Warn);
    assert!(t.config.root().appenders().is_empty());
}

#[test]
fn rotating_and_file_handlers_translate() {
    let fx = Fixture::new();
    let t = fx
        .translate(
            "logging:\n  version: 1\n  formatters: {f: {format: '%(name)s|%(message)s'}}\n  handlers:\n    \
             size: {class: logging.handlers.RotatingFileHandler, filename: size.log, maxBytes: 1024, backupCount: 3, formatter: f}\n    \
             nosize: {class: logging.handlers.RotatingFileHandler, filename: plain.log}\n    \
             trunc: {class: logging.FileHandler, filename: trunc.log, mode: w, level: NOTSET}\n  \
             root: {level: NOTSET, handlers: [size, trunc]}\n",
        )
        .unwrap();
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    let size = format!("{:?}", appender(&t.config, "size").appender());
    assert!(
        size.contains("trigger: Size(1024)") && size.contains("count: 3"),
        "{size}"
    );
    let plain = format!("{:?}", appender(&t.config, "nosize").appender());
    assert!(
        plain.contains("inner: FileSink") && plain.contains("rollover: None"),
        "{plain}"
    );
    assert!(appender(&t.config, "trunc").filters().is_empty());
    assert_eq!(t.config.root().level(), LevelFilter::Trace);

    fs::write(fx.path("trunc.log"), "old contents\n").unwrap();
    let again = fx
        .translate("logging:\n  version: 1\n  handlers: {t: {class: FileHandler, filename: trunc.log, mode: w}}\n  root: {handlers: [t]}\n")
        .unwrap();
    let logger = log4rs::Logger::new(again.config);
    log_through(&logger, "a.b", Level::Error, "fresh");
    assert_eq!(fs::read_to_string(fx.path("trunc.log")).unwrap(), "fresh\n");

    let logger = log4rs::Logger::new(t.config);
    log_through(&logger, "keepserver::x", Level::Trace, "traced");
    assert_eq!(
        fs::read_to_string(fx.path("size.log")).unwrap(),
        "keepserver::x|traced\n"
    );
}

#[test]
fn install_then_apply_swaps_the_global_logger() {
    let fx = Fixture::new();
    let config = |file: &str| {
        format!(
            "logging:\n  version: 1\n  formatters: {{f: {{format: '%(levelname)s %(name)s %(message)s %(funcName)s'}}}}\n  \
             handlers: {{h: {{class: FileHandler, filename: {file}, formatter: f}}}}\n  root: {{level: INFO, handlers: [h]}}\n"
        )
    };
    let handle = install(fx.translate(&config("first.log")).unwrap()).unwrap();
    log::info!(target: "keepserver", "one");
    log::logger().flush();
    apply(&handle, fx.translate(&config("second.log")).unwrap());
    log::info!(target: "keepserver", "two");
    log::logger().flush();

    let warning = format!(
        "WARN keepserver::logging logging config: {}: `logging.formatters.f`: \
         `%(funcName)` has no log4rs equivalent and is dropped \n",
        fx.config_file.display()
    );
    let first = fs::read_to_string(fx.path("first.log")).unwrap();
    assert_eq!(first, format!("{warning}INFO keepserver one \n"));
    let second = fs::read_to_string(fx.path("second.log")).unwrap();
    assert_eq!(second, format!("{warning}INFO keepserver two \n"));

    let again = install(fx.translate("logging:").unwrap());
    assert!(matches!(again, Err(LoggingError::Install(_))));
}

#[test]
fn the_unnamed_logger_is_the_root_logger() {
    let fx = Fixture::new();
    let t = fx
        .translate("logging:\n  version: 1\n  loggers: {'': {level: ERROR}}\n")
        .unwrap();
    assert!(t.config.loggers().is_empty());
    assert_eq!(t.config.root().level(), LevelFilter::Error);
}

#[test]
fn relative_paths_resolve_against_the_right_base() {
    let fx = Fixture::new();
    let absolute = fx.path("abs.log");
    let t = fx
        .translate(&format!(
            "logging:\n  version: 1\n  handlers:\n    a: {{class: FileHandler, filename: {}}}\n    \
             r: {{class: FileHandler, filename: sub/rel.log}}\n",
            absolute.display()
        ))
        .unwrap();
    drop(t);
    assert!(absolute.exists());
    assert!(Path::new(&fx.path("sub/rel.log")).exists());
}
