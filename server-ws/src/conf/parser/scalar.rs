//! The scalar values of the syntax: quoted strings and their escapes, `( … )` blocks,
//! numbers with size suffixes, floats, datetimes, and bare words (booleans, `$` references
//! and plain strings). Kept apart from the structure (entries, maps, arrays) in
//! [`super`] because this is where nats-server's lexer is most particular, and where most of
//! the deliberate differences live.

use super::super::error::{ConfError, Pos};
use super::super::value::{size_multiplier, Value, ValueKind};
use super::{is_nl, shown, Mark, Parser};

fn is_bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Letters that may start a size suffix right after digits (`k`, `M`, `g`, …).
fn is_suffix_start(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

impl Parser<'_, '_, '_> {
    /// The text up to the closing `quote` (already past the opening one), no escapes.
    pub(super) fn quoted_raw(&mut self, quote: char, what: &str) -> Result<String, ConfError> {
        let open = self.pos();
        let start = self.cur.mark();
        loop {
            match self.cur.bump() {
                None => return Err(ConfError::syntax(open, format!("unexpected end of file in {what}"))),
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        let text = self.cur.since(start);
        Ok(text.strip_suffix(quote).unwrap_or(text).to_string())
    }

    pub(super) fn double_quoted(&mut self, open: &Pos) -> Result<String, ConfError> {
        let mut buf = Vec::new();
        loop {
            match self.cur.bump() {
                None => return Err(ConfError::syntax(open.clone(), "unexpected end of file in quoted string")),
                Some('"') => break,
                Some('\\') => self.escape(&mut buf)?,
                Some(c) => push_char(&mut buf, c),
            }
        }
        self.utf8(buf)
    }

    pub(super) fn utf8(&self, buf: Vec<u8>) -> Result<String, ConfError> {
        String::from_utf8(buf).or_else(|_| self.err("string is not valid UTF-8 after \\x escapes"))
    }

    /// One escape sequence, the backslash already read.
    pub(super) fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), ConfError> {
        let c = match self.cur.bump() {
            None => return self.err("unexpected end of file after '\\'"),
            Some(c) => c,
        };
        match c {
            't' => buf.push(b'\t'),
            'n' => buf.push(b'\n'),
            'r' => buf.push(b'\r'),
            '"' => buf.push(b'"'),
            '\\' => buf.push(b'\\'),
            'x' => {
                let hi = self.cur.bump().filter(|c| !is_nl(*c));
                let lo = self.cur.bump().filter(|c| !is_nl(*c));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return self.err("expected two hexadecimal digits after '\\x', but hit end of line");
                };
                match (hi.to_digit(16), lo.to_digit(16)) {
                    (Some(h), Some(l)) => buf.push((h * 16 + l) as u8),
                    _ => return self.err(format!("expected two hexadecimal digits after '\\x', but got '{hi}{lo}'")),
                }
            }
            c => {
                return self.err(format!(
                    "invalid escape character '{}'. Only the following escape characters are \
                     allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\",
                    shown(c)
                ))
            }
        }
        Ok(())
    }

    /// A `( … )` block: raw text up to a `)` alone on its line.
    pub(super) fn block(&mut self) -> Result<String, ConfError> {
        let open = self.pos();
        let start = self.cur.mark();
        let rest = self.cur.rest();
        let mut from = 0;
        let end = loop {
            let Some(found) = rest.get(from..).and_then(|r| r.find("\n)")) else {
                return Err(ConfError::syntax(open, "unexpected end of file processing block"));
            };
            let nl = from + found;
            let after = rest.get(nl + 2..).unwrap_or("");
            if after.is_empty() || after.starts_with('\n') || after.starts_with('\r') {
                break nl;
            }
            from = nl + 1;
        };
        let text = rest.get(..end).unwrap_or("");
        let text = text.strip_suffix('\r').unwrap_or(text).to_string();
        while self.cur.mark().offset < start.offset + end + 2 {
            if self.cur.bump().is_none() {
                break;
            }
        }
        Ok(text)
    }

    /// Whether a number may end here.
    pub(super) fn at_number_end(&self) -> bool {
        match self.cur.peek() {
            None => true,
            Some(c) => c.is_whitespace() || matches!(c, '}' | ']' | ';' | ',' | '#'),
        }
    }

    /// A value starting with a digit: integer, float, datetime, IP-like string, or a bare
    /// string that merely starts with digits (`2s`).
    pub(super) fn number(&mut self, start: Mark) -> Result<Value, ConfError> {
        self.cur.bump_while(|c| c.is_ascii_digit());
        match self.cur.peek() {
            Some('-') => {
                if self.cur.since(start).len() == 4 {
                    self.datetime(start)
                } else {
                    self.err("all ISO8601 dates must be in full Zulu form")
                }
            }
            Some('.') => {
                self.cur.bump();
                self.float_or_ip(start)
            }
            Some(c) if is_suffix_start(c) => {
                self.cur.bump();
                self.cur.bump_while(|c| matches!(c, 'b' | 'B' | 'i' | 'I'));
                if self.at_number_end() {
                    self.integer(start)
                } else {
                    self.bare(start)
                }
            }
            _ if self.at_number_end() => self.integer(start),
            _ => self.bare(start),
        }
    }

    pub(super) fn negative_number(&mut self, start: Mark) -> Result<Value, ConfError> {
        self.cur.bump();
        match self.cur.peek() {
            Some(c) if c.is_ascii_digit() => {}
            Some('.') => return self.err("floats must start with a digit, not '.'"),
            c => {
                let c = c.map(shown).unwrap_or_default();
                return self.err(format!("expected a digit but got '{c}'"));
            }
        }
        self.cur.bump_while(|c| c.is_ascii_digit());
        match self.cur.peek() {
            Some('.') => {
                self.cur.bump();
                self.float_or_ip(start)
            }
            Some(c) if is_suffix_start(c) => {
                self.cur.bump();
                self.cur.bump_while(|c| matches!(c, 'b' | 'B' | 'i' | 'I'));
                if self.at_number_end() {
                    self.integer(start)
                } else {
                    self.bare(start)
                }
            }
            _ => self.integer(start),
        }
    }

    pub(super) fn integer(&self, start: Mark) -> Result<Value, ConfError> {
        let pos = self.pos_of(start);
        let text = self.cur.since(start);
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(text.len());
        let (digits, suffix) = text.split_at(split);
        let out_of_range = || ConfError::syntax(pos.clone(), format!("integer '{text}' is out of the range"));
        let n: i64 = digits.parse().map_err(|_| out_of_range())?;
        let mult = size_multiplier(suffix)
            .ok_or_else(|| ConfError::syntax(pos.clone(), format!("invalid size suffix {suffix:?} in '{text}'")))?;
        let n = n.checked_mul(mult).ok_or_else(out_of_range)?;
        let mut value = Value::new(ValueKind::Integer(n), pos.clone());
        if !suffix.is_empty() {
            value.raw = Some(text.to_string());
        }
        Ok(value)
    }

    /// After `digits.`: a float, or (after a second dot) an IP address / `ip:port` string.
    pub(super) fn float_or_ip(&mut self, start: Mark) -> Result<Value, ConfError> {
        let pos = self.pos_of(start);
        match self.cur.peek() {
            Some(c) if c.is_ascii_digit() => {}
            c => {
                let c = c.map(shown).unwrap_or_default();
                return self.err(format!("floats must have a digit after the '.', but got '{c}' instead"));
            }
        }
        self.cur.bump_while(|c| c.is_ascii_digit());
        if self.cur.peek() == Some('.') {
            self.cur.bump_while(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'));
            return Ok(Value::new(ValueKind::String(self.cur.since(start).to_string()), pos));
        }
        let text = self.cur.since(start);
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::new(ValueKind::Float(f), pos)),
            _ => Err(ConfError::syntax(pos, format!("float '{text}' is out of the range"))),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the year already read.
    pub(super) fn datetime(&mut self, start: Mark) -> Result<Value, ConfError> {
        for expected in "-00-00T00:00:00Z".chars() {
            let got = self.cur.peek();
            let ok = match (expected, got) {
                ('0', Some(c)) => c.is_ascii_digit(),
                (e, Some(c)) => e == c,
                (_, None) => false,
            };
            if !ok {
                let what = if expected == '0' { "digit".to_string() } else { format!("'{expected}'") };
                let got = got.map(shown).unwrap_or_else(|| "end of file".into());
                return self.err(format!("expected {what} in ISO8601 datetime, but found '{got}' instead"));
            }
            self.cur.bump();
        }
        let pos = self.pos_of(start);
        Ok(Value::new(ValueKind::Datetime(self.cur.since(start).to_string()), pos))
    }

    /// An unquoted word from `start`: a boolean, a `$variable`, or a string.
    pub(super) fn bare(&mut self, start: Mark) -> Result<Value, ConfError> {
        self.cur.reset(start);
        let pos = self.pos_of(start);
        let mut buf = Vec::new();
        let mut escaped = false;
        loop {
            match self.cur.peek() {
                None => break,
                Some(c) if c.is_whitespace() || matches!(c, ';' | ',' | ']' | '}') => break,
                Some('\\') => {
                    self.cur.bump();
                    self.escape(&mut buf)?;
                    escaped = true;
                }
                // nats-server ends a bare word at a single quote and drops the quote.
                Some('\'') => {
                    self.cur.bump();
                    break;
                }
                Some(c) => {
                    self.cur.bump();
                    push_char(&mut buf, c);
                }
            }
        }
        if self.cur.mark().offset == start.offset {
            let c = self.cur.peek().map(shown).unwrap_or_default();
            return self.err(format!("expected a value but got '{c}'"));
        }
        let text = self.utf8(buf)?;
        if !escaped {
            if let Some(b) = is_bool_word(&text) {
                return Ok(Value::new(ValueKind::Bool(b), pos));
            }
            if let Some(name) = text.strip_prefix('$') {
                return self.variable(name, pos);
            }
        }
        Ok(Value::new(ValueKind::String(text), pos))
    }
}

fn push_char(buf: &mut Vec<u8>, c: char) {
    let mut tmp = [0u8; 4];
    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::*;
    use super::*;

    #[test]
    fn strings() {
        let doc = ok(concat!(
            "a: \"tab\\there \\\"q\\\" \\\\ \\x41\\n\"\n",
            "b: 'raw \\t $x'\n",
            "c: bare-word_1.x\n",
            "d: \"multi\nline\"\n",
            "e: localhost:4222\n",
            "f: :4222\n",
            "g: \"true\"\n",
            "h: nats://u:p@host:4222\n",
            "i: \"\"\n",
            "j: \"ünï\"\n",
        ));
        assert_eq!(kind(&doc, "a"), &s("tab\there \"q\" \\ A\n"));
        assert_eq!(kind(&doc, "b"), &s("raw \\t $x"));
        assert_eq!(kind(&doc, "c"), &s("bare-word_1.x"));
        assert_eq!(kind(&doc, "d"), &s("multi\nline"));
        assert_eq!(kind(&doc, "e"), &s("localhost:4222"));
        assert_eq!(kind(&doc, "f"), &s(":4222"));
        assert_eq!(kind(&doc, "g"), &s("true"));
        assert_eq!(kind(&doc, "h"), &s("nats://u:p@host:4222"));
        assert_eq!(kind(&doc, "i"), &s(""));
        assert_eq!(kind(&doc, "j"), &s("ünï"));
        // A bare word ends at whitespace; what follows on the line is an error.
        let (line, msg) = err_line("name: my server\n");
        assert_eq!(line, 1);
        assert!(msg.contains("but got 's'"), "{msg}");
        // Block strings.
        let doc = ok("a: (\nline one\n  line ) two\n)\nb: 1\n");
        assert_eq!(kind(&doc, "a"), &s("\nline one\n  line ) two"));
        assert_eq!(kind(&doc, "b"), &ValueKind::Integer(1));
    }

    #[test]
    fn booleans() {
        for (word, b) in [
            ("true", true),
            ("TRUE", true),
            ("yes", true),
            ("On", true),
            ("false", false),
            ("no", false),
            ("OFF", false),
        ] {
            assert_eq!(kind(&ok(&format!("a: {word}")), "a"), &ValueKind::Bool(b), "{word}");
        }
        assert_eq!(kind(&ok("a: truex"), "a"), &s("truex"));
    }

    #[test]
    fn numbers_and_units() {
        let int = |src: &str| match kind(&ok(&format!("a: {src}")), "a") {
            ValueKind::Integer(n) => *n,
            other => panic!("{src}: {other:?}"),
        };
        assert_eq!(int("42"), 42);
        assert_eq!(int("-7"), -7);
        assert_eq!(int("4MB"), 4 * 1024 * 1024);
        assert_eq!(int("64mb"), 64 << 20);
        assert_eq!(int("1KB"), 1024);
        assert_eq!(int("1KiB"), 1024);
        assert_eq!(int("1Ki"), 1024);
        assert_eq!(int("1k"), 1000);
        assert_eq!(int("1K"), 1000);
        assert_eq!(int("2m"), 2_000_000);
        assert_eq!(int("1G"), 1_000_000_000);
        assert_eq!(int("1GB"), 1 << 30);
        assert_eq!(int("3TiB"), 3 << 40);
        assert_eq!(int("-2kb"), -2048);
        assert_eq!(ok("a: 4MB").get("a").unwrap().raw.as_deref(), Some("4MB"));
        assert_eq!(ok("a: 4").get("a").unwrap().raw, None);
        assert_eq!(kind(&ok("a: 1.5"), "a"), &ValueKind::Float(1.5));
        assert_eq!(kind(&ok("a: -0.25"), "a"), &ValueKind::Float(-0.25));
        // Things that start like numbers but are strings.
        assert_eq!(kind(&ok("a: 127.0.0.1"), "a"), &s("127.0.0.1"));
        assert_eq!(kind(&ok("a: 127.0.0.1:4222"), "a"), &s("127.0.0.1:4222"));
        assert_eq!(kind(&ok("a: 2s"), "a"), &s("2s"));
        assert_eq!(kind(&ok("a: 500ms"), "a"), &s("500ms"));
        assert_eq!(kind(&ok("a: 1m30s"), "a"), &s("1m30s"));
        assert_eq!(kind(&ok("a: 3abc"), "a"), &s("3abc"));
        assert_eq!(kind(&ok("a: 2024-01-02T03:04:05Z"), "a"), &ValueKind::Datetime("2024-01-02T03:04:05Z".into()));
        // Numbers end at `]`, `}`, `,`, `;` and comments.
        assert_eq!(
            kind(&ok("a: [1, 2]"), "a"),
            &ValueKind::Array(vec![
                Value::new(ValueKind::Integer(1), Pos { file: "t.conf".into(), line: 1, col: 5 }),
                Value::new(ValueKind::Integer(2), Pos { file: "t.conf".into(), line: 1, col: 8 }),
            ])
        );
        assert_eq!(ok("a {b: 1}").get("a").and_then(|a| a.get("b")).unwrap().kind, ValueKind::Integer(1));
        assert_eq!(int("5# five"), 5);
        // Errors.
        for bad in [
            "a: 99999999999999999999",
            "a: 9999999999999999E",
            "a: 1kbbb",
            "a: .5",
            "a: 1.x",
            "a: -x",
            "a: 2024-01-0",
            "a: 123-4",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
        assert!(parse("a: 99999999999999999999").unwrap_err().to_string().contains("out of the range"));
    }
}
