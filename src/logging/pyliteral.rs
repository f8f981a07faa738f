//! A parser for the Python literals of fileConfig handler `args` and
//! `kwargs`: tuples, lists, dicts, strings, numbers, `True`/`False`/`None`
//! and dotted names such as `sys.stdout`. Python evaluates these; anything
//! beyond literals (calls, operators) is refused.

use std::{iter::Peekable, str::Chars};

use serde_json::{Map, Value};

/// Parses one Python literal, read into the JSON value model the rest of
/// the translation uses. Names (`sys.stdout`) become strings. `None` if the
/// text is not a literal.
pub(super) fn parse(text: &str) -> Option<Value> {
    let mut parser = Parser {
        chars: text.chars().peekable(),
    };
    let value = parser.value()?;
    parser.skip_space();
    parser.chars.peek().is_none().then_some(value)
}

/// A recursive-descent parser over the literal's characters.
struct Parser<'a> {
    chars: Peekable<Chars<'a>>,
}

impl Parser<'_> {
    /// Any literal.
    fn value(&mut self) -> Option<Value> {
        self.skip_space();
        match *self.chars.peek()? {
            '(' => self.tuple(),
            '[' => self.list(),
            '{' => self.dict(),
            '\'' | '"' => self.string(false),
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number(),
            c if c.is_alphabetic() || c == '_' => self.word(),
            _ => None,
        }
    }

    /// `( … )`: a tuple, or just the inner value when it has one element
    /// and no trailing comma, as in Python.
    fn tuple(&mut self) -> Option<Value> {
        let (mut items, trailing_comma) = self.items('(', ')')?;
        if items.len() == 1 && !trailing_comma {
            return items.pop();
        }
        Some(Value::Array(items))
    }

    /// `[ … ]`.
    fn list(&mut self) -> Option<Value> {
        self.items('[', ']').map(|(items, _)| Value::Array(items))
    }

    /// Comma-separated values between `open` and `close`; also says whether
    /// the last one was followed by a comma.
    fn items(&mut self, open: char, close: char) -> Option<(Vec<Value>, bool)> {
        self.consume(open)?;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_space();
            if self.chars.next_if_eq(&close).is_some() {
                return Some((items, trailing_comma));
            }
            items.push(self.value()?);
            self.skip_space();
            trailing_comma = self.chars.next_if_eq(&',').is_some();
            if !trailing_comma {
                self.skip_space();
                self.consume(close)?;
                return Some((items, false));
            }
        }
    }

    /// `{ key: value, … }`.
    fn dict(&mut self) -> Option<Value> {
        self.consume('{')?;
        let mut map = Map::new();
        loop {
            self.skip_space();
            if self.chars.next_if_eq(&'}').is_some() {
                return Some(Value::Object(map));
            }
            // kwargs keys are parameter names: strings.
            let Value::String(key) = self.value()? else {
                return None;
            };
            self.skip_space();
            self.consume(':')?;
            let value = self.value()?;
            map.insert(key, value);
            self.skip_space();
            if self.chars.next_if_eq(&',').is_none() {
                self.skip_space();
                self.consume('}')?;
                return Some(Value::Object(map));
            }
        }
    }

    /// A quoted string; `raw` turns off backslash escapes (`r'…'`).
    fn string(&mut self, raw: bool) -> Option<Value> {
        let quote = self.chars.next()?;
        let mut text = String::new();
        loop {
            match self.chars.next()? {
                c if c == quote => return Some(Value::String(text)),
                '\\' if !raw => text.push_str(&self.escape()?),
                c => text.push(c),
            }
        }
    }

    /// The character(s) a backslash escape stands for; unknown escapes
    /// keep their backslash, as in Python.
    fn escape(&mut self) -> Option<String> {
        let c = self.chars.next()?;
        let text = match c {
            'n' => "\n".to_owned(),
            't' => "\t".to_owned(),
            'r' => "\r".to_owned(),
            '0' => "\0".to_owned(),
            '\\' | '\'' | '"' => c.to_string(),
            other => format!("\\{other}"),
        };
        Some(text)
    }

    /// An integer or float.
    fn number(&mut self) -> Option<Value> {
        let mut text = String::new();
        while let Some(c) = self
            .chars
            .next_if(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.' | '_'))
        {
            if c != '_' {
                text.push(c);
            }
        }
        if let Ok(int) = text.parse::<i64>() {
            return Some(Value::from(int));
        }
        text.parse::<f64>().ok().map(Value::from)
    }

    /// `True`, `False`, `None`, a string prefix (`r'…'`) or a dotted name.
    fn word(&mut self) -> Option<Value> {
        let mut word = String::new();
        while let Some(c) = self
            .chars
            .next_if(|c| c.is_alphanumeric() || matches!(c, '_' | '.'))
        {
            word.push(c);
        }
        if matches!(self.chars.peek(), Some('\'' | '"')) {
            let prefix = word.to_ascii_lowercase();
            return match prefix.as_str() {
                "r" | "rb" | "br" => self.string(true),
                "u" | "b" => self.string(false),
                _ => None,
            };
        }
        let value = match word.as_str() {
            "True" => Value::Bool(true),
            "False" => Value::Bool(false),
            "None" => Value::Null,
            _ => Value::String(word),
        };
        Some(value)
    }

    /// Consumes `c` or fails.
    fn consume(&mut self, c: char) -> Option<()> {
        self.chars.next_if_eq(&c).map(|_| ())
    }

    /// Skips whitespace.
    fn skip_space(&mut self) {
        while self.chars.next_if(|c| c.is_whitespace()).is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    #[test]
    fn literals_parse() {
        let cases = [
            ("(sys.stdout,)", Some(Value::Array(vec![s("sys.stdout")]))),
            ("(sys.stderr)", Some(s("sys.stderr"))),
            ("()", Some(Value::Array(vec![]))),
            (
                "('logFile.log', 'D', 1, 30, 'utf-8')",
                Some(Value::Array(vec![
                    s("logFile.log"),
                    s("D"),
                    Value::from(1),
                    Value::from(30),
                    s("utf-8"),
                ])),
            ),
            (
                r#"( "a\"b\\c" , r'C:\x', u'é', -5, 1_000, 2.5, True, False, None )"#,
                Some(Value::Array(vec![
                    s("a\"b\\c"),
                    s("C:\\x"),
                    s("é"),
                    Value::from(-5),
                    Value::from(1000),
                    Value::from(2.5),
                    Value::Bool(true),
                    Value::Bool(false),
                    Value::Null,
                ])),
            ),
            (
                "[1, [2]]",
                Some(Value::Array(vec![
                    Value::from(1),
                    Value::Array(vec![Value::from(2)]),
                ])),
            ),
            ("{'maxBytes': 1024,}", {
                let mut map = Map::new();
                map.insert("maxBytes".to_owned(), Value::from(1024));
                Some(Value::Object(map))
            }),
            ("os.path.join('a', 'b')", None),
            ("('unterminated", None),
            ("(1, 2", None),
            ("1 + 2", None),
            ("x'abc'", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "{text:?}");
        }
    }
}
