//! Translation of Python `%`-style logging format strings, and of strftime
//! `datefmt`s, into log4rs pattern syntax.

/// Python's default `asctime` (`2003-07-08 16:49:45,896`) in chrono syntax.
const DEFAULT_DATE: &str = "%Y-%m-%d %H:%M:%S,%3f";

/// strftime conversions that chrono renders as C's strftime does.
const CHRONO_SPECS: &str = "aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ";

/// The numeric ones among them, which take the `-`, `_` and `0` padding flags.
const PADDABLE_SPECS: &str = "CdeGgHIjklmMsSUuVwWyY";

/// Python conversion types; the type does not matter to log4rs.
const CONVERSIONS: &str = "diouxXeEfFgGcrsa";

/// A translated pattern and what could not be carried over.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Translation {
    /// The log4rs pattern, ending in `{n}`.
    pub pattern: String,
    /// One human-readable line per thing dropped.
    pub dropped: Vec<String>,
}

/// One `%(name)…` directive.
struct Directive<'a> {
    name: &'a str,
    flags: &'a str,
    width: Option<usize>,
    precision: Option<usize>,
    conversion: char,
}

/// Translates a Python `%`-style format string (with the formatter's
/// `datefmt`, if any) into a log4rs pattern. Unknown fields are dropped and
/// reported in [`Translation::dropped`].
pub(super) fn format_to_pattern(format: &str, datefmt: Option<&str>) -> Translation {
    let mut out = Translation {
        pattern: String::new(),
        dropped: Vec::new(),
    };
    let date = match datefmt {
        Some(datefmt) => datefmt_to_chrono(datefmt, &mut out.dropped),
        None => DEFAULT_DATE.to_owned(),
    };
    let mut rest = format;
    while let Some(percent) = rest.find('%') {
        push_literal(&mut out.pattern, &rest[..percent]);
        rest = convert_directive(&rest[percent + 1..], &date, &mut out);
    }
    push_literal(&mut out.pattern, rest);
    out.pattern.push_str("{n}");
    out
}

/// Converts the directive after a `%` at the start of `text` and returns
/// the text that follows it.
fn convert_directive<'a>(text: &'a str, date: &str, out: &mut Translation) -> &'a str {
    if let Some(rest) = text.strip_prefix('%') {
        push_literal(&mut out.pattern, "%");
        return rest;
    }
    let Some((directive, rest)) = parse_directive(text) else {
        // Python would raise at the first record; keeping the `%` as text
        // keeps the rest of the format usable.
        out.dropped
            .push("a `%` that starts no `%(name)s` field is kept as text".to_owned());
        push_literal(&mut out.pattern, "%");
        return text;
    };
    match formatter_for(directive.name, date) {
        Some(formatter) => {
            out.pattern.push('{');
            out.pattern.push_str(&formatter);
            out.pattern.push_str(&spec(&directive));
            out.pattern.push('}');
        }
        None => out.dropped.push(format!(
            "`%({})` has no log4rs equivalent and is dropped",
            directive.name
        )),
    }
    rest
}

/// Parses `(name)flags width .precision conversion` at the start of `text`.
fn parse_directive(text: &str) -> Option<(Directive<'_>, &str)> {
    let text = text.strip_prefix('(')?;
    let (name, rest) = text.split_once(')')?;
    let flags_end = rest.find(|c| !"-0 +#".contains(c)).unwrap_or(rest.len());
    let (flags, rest) = rest.split_at(flags_end);
    let (width, rest) = digits(rest);
    let (precision, rest) = match rest.strip_prefix('.') {
        // Python reads a bare `.` as precision 0.
        Some(rest) => {
            let (precision, rest) = digits(rest);
            (Some(precision.unwrap_or(0)), rest)
        }
        None => (None, rest),
    };
    // Length modifiers are accepted and ignored by Python.
    let rest = rest.trim_start_matches(['h', 'l', 'L']);
    let mut chars = rest.chars();
    let conversion = chars.next().filter(|c| CONVERSIONS.contains(*c))?;
    let directive = Directive {
        name,
        flags,
        width,
        precision,
        conversion,
    };
    Some((directive, chars.as_str()))
}

/// Splits leading decimal digits off `text`.
fn digits(text: &str) -> (Option<usize>, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    (text[..end].parse().ok(), &text[end..])
}

/// The log4rs formatter (name and argument) for a Python record attribute.
fn formatter_for(name: &str, date: &str) -> Option<String> {
    let formatter = match name {
        "asctime" => return Some(format!("d({})", escape(date))),
        "created" => "d(%s%.6f)",
        "msecs" => "d(%3f)",
        "levelname" => "l",
        "message" => "m",
        "name" => "t",
        "module" => "M",
        "filename" | "pathname" => "f",
        "lineno" => "L",
        "process" => "P",
        "thread" => "I",
        "threadName" => "T",
        _ => return None,
    };
    Some(formatter.to_owned())
}

/// The log4rs format spec for a directive's flags, width and precision.
/// Python right-aligns unless `-` is given, log4rs left-aligns unless told,
/// so the alignment is always spelled out.
fn spec(directive: &Directive) -> String {
    let mut spec = String::new();
    if let Some(width) = directive.width {
        let left = directive.flags.contains('-');
        if !left && directive.flags.contains('0') {
            spec.push('0');
        }
        spec.push(if left { '<' } else { '>' });
        spec.push_str(&width.to_string());
    }
    // Precision truncates strings only; for numbers it means something else.
    if let Some(max) = directive.precision
        && matches!(directive.conversion, 's' | 'r' | 'a')
    {
        spec.push('.');
        spec.push_str(&max.to_string());
    }
    if spec.is_empty() {
        spec
    } else {
        format!(":{spec}")
    }
}

/// Translates a Python strftime `datefmt` to chrono's strftime dialect.
/// They agree on nearly every conversion; unknown ones are dropped.
fn datefmt_to_chrono(datefmt: &str, dropped: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut chars = datefmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let pad = chars.next_if(|c| matches!(c, '-' | '_' | '0'));
        match chars.next() {
            Some('%') => out.push_str("%%"),
            // Python's `%f` is microseconds; chrono's bare `%f` is nanoseconds.
            Some('f') => out.push_str("%6f"),
            Some(':') if chars.next_if_eq(&'z').is_some() => out.push_str("%:z"),
            Some(spec) if CHRONO_SPECS.contains(spec) => {
                out.push('%');
                out.extend(pad.filter(|_| PADDABLE_SPECS.contains(spec)));
                out.push(spec);
            }
            other => dropped.push(format!(
                "`%{}` in datefmt has no chrono equivalent and is dropped",
                other.map(String::from).unwrap_or_default()
            )),
        }
    }
    out
}

/// Appends literal text, escaping the characters log4rs patterns reserve.
fn push_literal(pattern: &mut String, text: &str) {
    pattern.push_str(&escape(text));
}

/// Escapes `{`, `}`, `(`, `)` and `\`, which log4rs patterns reserve.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '{' | '}' | '(' | ')' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_strings_translate() {
        let cases: &[(&str, Option<&str>, &str, usize)] = &[
            (
                "%(asctime)-15s\t%(levelname)s\t%(message)s",
                None,
                "{d(%Y-%m-%d %H:%M:%S,%3f):<15}\t{l}\t{m}{n}",
                0,
            ),
            (
                "%(asctime)s %(levelname)5s %(message)s",
                None,
                "{d(%Y-%m-%d %H:%M:%S,%3f)} {l:>5} {m}{n}",
                0,
            ),
            ("%(asctime)s", Some("%H:%M:%S"), "{d(%H:%M:%S)}{n}", 0),
            (
                "%(asctime)s",
                Some("%d/%m (%a)"),
                "{d(%d/%m \\(%a\\))}{n}",
                0,
            ),
            ("%(asctime)s", Some("%Y %f %Q"), "{d(%Y %6f )}{n}", 1),
            (
                "%(asctime)s",
                Some("%-d %_H %-a %:z"),
                "{d(%-d %_H %a %:z)}{n}",
                0,
            ),
            ("%(name)s: %(message)s", None, "{t}: {m}{n}", 0),
            ("%(name)-20.20s|", None, "{t:<20.20}|{n}", 0),
            ("%(message).10s", None, "{m:.10}{n}", 0),
            (
                "%(module)s %(filename)s:%(lineno)d",
                None,
                "{M} {f}:{L}{n}",
                0,
            ),
            ("%(lineno)05d", None, "{L:0>5}{n}", 0),
            (
                "%(process)d %(thread)d %(threadName)s",
                None,
                "{P} {I} {T}{n}",
                0,
            ),
            (
                "%(created)f %(msecs)03d",
                None,
                "{d(%s%.6f)} {d(%3f):0>3}{n}",
                0,
            ),
            (
                "100%% {json} (x) \\",
                None,
                "100% \\{json\\} \\(x\\) \\\\{n}",
                0,
            ),
            ("%(funcName)s %(message)s", None, " {m}{n}", 1),
            ("%(levelno)d %(relativeCreated)d", None, " {n}", 2),
            ("50% off", None, "50% off{n}", 1),
            ("%(message)", None, "%\\(message\\){n}", 1),
            ("%(message)ls", None, "{m}{n}", 0),
        ];
        for &(format, datefmt, pattern, dropped) in cases {
            let t = format_to_pattern(format, datefmt);
            assert_eq!(t.pattern, pattern, "{format:?}");
            assert_eq!(t.dropped.len(), dropped, "{format:?}: {:?}", t.dropped);
        }
    }

    #[test]
    fn dropped_fields_are_named() {
        let t = format_to_pattern("%(funcName)s", None);
        assert!(t.dropped[0].contains("%(funcName)"), "{:?}", t.dropped);
    }
}
