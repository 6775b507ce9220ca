//! The nats-server configuration syntax, turned into a [`Value`] tree.
//!
//! The grammar follows nats-server's `conf/lex.go` state machine rather than a tidy formal
//! grammar, because files written for nats-server must mean the same thing here:
//!
//! * `key: value`, `key = value` and `key value`; after the key any whitespace (even a new
//!   line) may precede the separator, and inside a `{ }` block also the value.
//! * Maps `{ … }` and arrays `[ … ]`; entries end at a new line, `,` or `;`.
//! * Comments `#` and `//` run to the end of the line.
//! * Strings `"…"` (escapes `\t \n \r \" \\ \xHH`), `'…'` (raw) and bare words, which end at
//!   whitespace, a new line, `,`, `;`, `]` or `}`. Bare `true/false/yes/no/on/off` are
//!   booleans, bare `$NAME` a variable reference.
//! * Numbers: integers with an optional size suffix (`1k` = 1000, `1KB`/`1Ki`/`1KiB` = 1024,
//!   and so on up to `E`), floats, `YYYY-MM-DDTHH:MM:SSZ` datetimes; something that starts
//!   like a number but is not one (`2s`, `127.0.0.1:4222`) is a string.
//! * `( … )` raw blocks end at a `)` alone on its line.
//! * `include path` (quoted or bare, relative to the including file) splices another file's
//!   keys in place.
//!
//! Deliberate differences, all on input nats-server rejects or misreads: a number directly
//! followed by `]` ends there (nats-server swallows the bracket), `1m30s` unquoted is the
//! string `"1m30s"` (nats-server fails), unknown size suffixes and include cycles are errors
//! (nats-server silently drops the value / recurses until it crashes), and nesting depth is
//! bounded so hostile input cannot overflow the stack.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cursor::{Cursor, Mark};
use super::error::{ConfError, Pos};
use super::value::{size_multiplier, Entry, Value, ValueKind};

/// How deep `include`s may nest; real configurations use one or two levels.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 10;
/// How deep maps and arrays may nest.
const MAX_NESTING: usize = 64;
/// How deep environment variables may refer to further variables.
const MAX_ENV_DEPTH: usize = 8;

/// Looks up an environment variable; injectable so tests need not touch the process
/// environment.
pub(crate) type EnvLookup<'e> = &'e dyn Fn(&str) -> Option<String>;

/// State shared by a file and everything it includes.
pub(crate) struct Shared<'e> {
    env: EnvLookup<'e>,
    /// Canonical paths of the files being read, outermost first: including one of them
    /// again would never end.
    include_stack: Vec<PathBuf>,
    /// How many environment-variable values are being parsed inside each other.
    env_depth: usize,
}

impl<'e> Shared<'e> {
    pub(crate) fn new(env: EnvLookup<'e>) -> Self {
        Shared { env, include_stack: Vec::new(), env_depth: 0 }
    }

    /// Marks `canonical` as being read (the top-level file), so it cannot include itself.
    pub(crate) fn enter_file(&mut self, canonical: PathBuf) {
        self.include_stack.push(canonical);
    }
}

/// Parses `src` (named `name` in positions; includes resolve against `dir`, or the current
/// directory without one) into a map value.
pub(crate) fn parse_source(
    src: &str,
    name: &str,
    dir: Option<&Path>,
    shared: &mut Shared<'_>,
) -> Result<Value, ConfError> {
    // Editors on Windows like to start files with a byte-order mark; it is not part of a key.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut parser = Parser {
        cur: Cursor::new(src),
        file: Arc::from(name),
        dir: dir.map(Path::to_path_buf),
        scopes: Vec::new(),
        shared,
    };
    parser.document()
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

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

/// `c` for messages: new lines made visible.
fn shown(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        c => c.to_string(),
    }
}

struct Parser<'s, 'c, 'e> {
    cur: Cursor<'s>,
    file: Arc<str>,
    dir: Option<PathBuf>,
    /// The maps being built, outermost first; `$NAME` looks through them from the inside
    /// out (arrays are not scopes, as in nats-server).
    scopes: Vec<Vec<Entry>>,
    shared: &'c mut Shared<'e>,
}

enum Next {
    More,
    End,
}

impl Parser<'_, '_, '_> {
    fn pos_of(&self, mark: Mark) -> Pos {
        Pos { file: self.file.clone(), line: mark.line, col: mark.col }
    }

    fn pos(&self) -> Pos {
        self.pos_of(self.cur.mark())
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ConfError> {
        Err(ConfError::syntax(self.pos(), message))
    }

    fn skip_ws(&mut self) {
        self.cur.bump_while(is_ws);
    }

    fn at_comment(&self) -> bool {
        match self.cur.peek() {
            Some('#') => true,
            Some('/') => self.cur.peek2() == Some('/'),
            _ => false,
        }
    }

    fn skip_comment(&mut self) {
        self.cur.bump_while(|c| !is_nl(c));
    }

    /// Skips whitespace, new lines and comments.
    fn skip_filler(&mut self) {
        loop {
            self.cur.bump_while(char::is_whitespace);
            if !self.at_comment() {
                return;
            }
            self.skip_comment();
        }
    }

    /// Skips spaces, tabs and a trailing comment, stopping at the new line.
    fn skip_to_terminator(&mut self) {
        self.skip_ws();
        if self.at_comment() {
            self.skip_comment();
        }
    }

    fn document(&mut self) -> Result<Value, ConfError> {
        self.scopes.push(Vec::new());
        let result = self.document_body();
        let entries = self.scopes.pop().unwrap_or_default();
        result?;
        let pos = Pos { file: self.file.clone(), line: 1, col: 1 };
        Ok(Value::new(ValueKind::Map(entries), pos))
    }

    fn document_body(&mut self) -> Result<(), ConfError> {
        loop {
            self.skip_filler();
            match self.cur.peek() {
                None => return Ok(()),
                // A JSON-style file wraps everything in braces; nats-server skips them.
                Some('{' | '}') => {
                    self.cur.bump();
                    continue;
                }
                Some(_) => {}
            }
            self.entry(false, 0)?;
            self.skip_to_terminator();
            match self.cur.peek() {
                None => return Ok(()),
                Some('\n' | '\r' | ';' | ',' | '}') => {
                    self.cur.bump();
                }
                Some(c) => {
                    return self.err(format!(
                        "expected a top-level value to end with a new line, comment or EOF, \
                         but got '{}' instead",
                        shown(c)
                    ))
                }
            }
        }
    }

    /// One `key [sep] value` (or `include path`) inside the current scope.
    fn entry(&mut self, in_map: bool, depth: usize) -> Result<(), ConfError> {
        let key_pos = self.pos();
        let (key, bare) = match self.cur.peek() {
            Some(q @ ('"' | '\'')) => {
                self.cur.bump();
                (self.quoted_raw(q, "quoted key")?, false)
            }
            Some(c @ (':' | '=')) => return self.err(format!("unexpected key separator '{c}'")),
            _ => {
                let start = self.cur.mark();
                self.cur.bump_while(|c| {
                    !(c.is_whitespace() || matches!(c, ':' | '=' | '{' | '}' | '[' | ']' | ',' | ';' | '"' | '\''))
                });
                let key = self.cur.since(start);
                if key.is_empty() {
                    let c = self.cur.peek().map(shown).unwrap_or_default();
                    return self.err(format!("expected a key but got '{c}'"));
                }
                (key.to_string(), true)
            }
        };
        if bare && key.eq_ignore_ascii_case("include") && self.cur.peek().is_some_and(char::is_whitespace) {
            return self.include();
        }

        self.cur.bump_while(char::is_whitespace);
        if matches!(self.cur.peek(), Some(':' | '=')) {
            self.cur.bump();
            if in_map {
                self.cur.bump_while(char::is_whitespace);
            } else {
                self.skip_ws();
            }
        }
        match self.cur.peek() {
            None => {
                return Err(ConfError::syntax(key_pos, format!("key {key:?} has no value (unexpected end of file)")))
            }
            Some('}' | ',') if in_map => return Err(ConfError::syntax(key_pos, format!("key {key:?} has no value"))),
            _ => {}
        }
        let value = self.value(depth)?;
        self.define(Entry { key, key_pos, value, used_as_variable: false });
        Ok(())
    }

    /// Adds an entry to the innermost map; a key written again replaces the earlier value.
    fn define(&mut self, entry: Entry) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.retain(|e| e.key != entry.key);
            scope.push(entry);
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ConfError> {
        if depth >= MAX_NESTING {
            return self.err(format!("maps and arrays nested more than {MAX_NESTING} deep"));
        }
        self.skip_ws();
        let start = self.cur.mark();
        let pos = self.pos_of(start);
        let kind = match self.cur.peek() {
            None => return self.err("expected a value but found end of file"),
            Some('\n' | '\r') => return self.err("expected value but found new line"),
            Some('[') => {
                self.cur.bump();
                return self.array(pos, depth + 1);
            }
            Some('{') => {
                self.cur.bump();
                return self.map(pos, depth + 1);
            }
            Some('\'') => {
                self.cur.bump();
                ValueKind::String(self.quoted_raw('\'', "quoted string")?)
            }
            Some('"') => {
                self.cur.bump();
                ValueKind::String(self.double_quoted(&pos)?)
            }
            Some('(') => {
                self.cur.bump();
                ValueKind::String(self.block()?)
            }
            Some('-') => return self.negative_number(start),
            Some(c) if c.is_ascii_digit() => return self.number(start),
            Some('.') => return self.err("floats must start with a digit"),
            Some(_) => return self.bare(start),
        };
        Ok(Value::new(kind, pos))
    }

    /// The text up to the closing `quote` (already past the opening one), no escapes.
    fn quoted_raw(&mut self, quote: char, what: &str) -> Result<String, ConfError> {
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

    fn double_quoted(&mut self, open: &Pos) -> Result<String, ConfError> {
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

    fn utf8(&self, buf: Vec<u8>) -> Result<String, ConfError> {
        String::from_utf8(buf).or_else(|_| self.err("string is not valid UTF-8 after \\x escapes"))
    }

    /// One escape sequence, the backslash already read.
    fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), ConfError> {
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
    fn block(&mut self) -> Result<String, ConfError> {
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
    fn at_number_end(&self) -> bool {
        match self.cur.peek() {
            None => true,
            Some(c) => c.is_whitespace() || matches!(c, '}' | ']' | ';' | ',' | '#'),
        }
    }

    /// A value starting with a digit: integer, float, datetime, IP-like string, or a bare
    /// string that merely starts with digits (`2s`).
    fn number(&mut self, start: Mark) -> Result<Value, ConfError> {
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

    fn negative_number(&mut self, start: Mark) -> Result<Value, ConfError> {
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

    fn integer(&self, start: Mark) -> Result<Value, ConfError> {
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
    fn float_or_ip(&mut self, start: Mark) -> Result<Value, ConfError> {
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
    fn datetime(&mut self, start: Mark) -> Result<Value, ConfError> {
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
    fn bare(&mut self, start: Mark) -> Result<Value, ConfError> {
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

    fn array(&mut self, pos: Pos, depth: usize) -> Result<Value, ConfError> {
        let mut items = Vec::new();
        loop {
            self.skip_filler();
            match self.cur.peek() {
                None => return self.err("unexpected end of file processing array"),
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                Some(',') => return self.err("unexpected array value terminator ','"),
                Some(_) => {}
            }
            items.push(self.value(depth)?);
            self.skip_to_terminator();
            match self.cur.peek() {
                Some(',' | '\n' | '\r') => {
                    self.cur.bump();
                }
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                None => return self.err("unexpected end of file processing array"),
                Some(c) => {
                    return self.err(format!(
                        "expected an array value terminator ',' or an array terminator ']', \
                         but got '{}' instead",
                        shown(c)
                    ))
                }
            }
        }
        Ok(Value::new(ValueKind::Array(items), pos))
    }

    fn map(&mut self, pos: Pos, depth: usize) -> Result<Value, ConfError> {
        self.scopes.push(Vec::new());
        let result = self.map_body(depth);
        let entries = self.scopes.pop().unwrap_or_default();
        result?;
        Ok(Value::new(ValueKind::Map(entries), pos))
    }

    fn map_body(&mut self, depth: usize) -> Result<(), ConfError> {
        loop {
            self.skip_filler();
            match self.cur.peek() {
                None => return self.err("unexpected end of file processing map"),
                Some('}') => {
                    self.cur.bump();
                    return Ok(());
                }
                Some(']') => return self.err("unexpected array end ']' processing map"),
                Some(_) => {}
            }
            self.entry(true, depth)?;
            if let Next::End = self.map_value_end()? {
                return Ok(());
            }
        }
    }

    fn map_value_end(&mut self) -> Result<Next, ConfError> {
        self.skip_to_terminator();
        match self.cur.peek() {
            Some(',' | ';' | '\n' | '\r') => {
                self.cur.bump();
                Ok(Next::More)
            }
            Some('}') => {
                self.cur.bump();
                Ok(Next::End)
            }
            None => self.err("unexpected end of file processing map"),
            Some(c) => self.err(format!(
                "expected a map value terminator ',' or a map terminator '}}', but got '{}' instead",
                shown(c)
            )),
        }
    }

    /// `include path`, the keyword already read: parses the file and defines its keys here.
    fn include(&mut self) -> Result<(), ConfError> {
        self.skip_ws();
        let pos = self.pos();
        let name = match self.cur.peek() {
            Some(q @ ('"' | '\'')) => {
                self.cur.bump();
                self.quoted_raw(q, "include path")?
            }
            Some('[') => return self.err("expected include value but found start of an array"),
            Some('{') => return self.err("expected include value but found start of a map"),
            Some('(') => return self.err("expected include value but found start of a block"),
            Some(c) if c.is_ascii_digit() || c == '-' => {
                return self.err("expected include value but found start of a number")
            }
            Some('\\') => return self.err("expected include value but found escape sequence"),
            Some(c) if is_nl(c) => return self.err("expected include value but found new line"),
            None => return self.err("expected include value but found end of file"),
            Some(_) => {
                let start = self.cur.mark();
                self.cur.bump_while(|c| !(c.is_whitespace() || matches!(c, ';' | '}' | '\'')));
                let name = self.cur.since(start).to_string();
                if self.cur.peek() == Some('\'') {
                    self.cur.bump();
                }
                name
            }
        };
        let include_err = |reason: String| ConfError::Include { pos: pos.clone(), path: name.clone(), reason };
        if name.is_empty() {
            return Err(include_err("empty path".into()));
        }
        let path = match &self.dir {
            Some(dir) => dir.join(&name),
            None => PathBuf::from(&name),
        };
        if self.shared.include_stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(include_err(format!("includes nested more than {MAX_INCLUDE_DEPTH} deep")));
        }
        let canonical = fs::canonicalize(&path).map_err(|e| include_err(e.to_string()))?;
        if self.shared.include_stack.contains(&canonical) {
            return Err(include_err("include cycle: the file is already being read".into()));
        }
        let src = fs::read_to_string(&path).map_err(|e| include_err(e.to_string()))?;
        self.shared.include_stack.push(canonical);
        let result = parse_source(&src, &path.display().to_string(), path.parent(), self.shared);
        self.shared.include_stack.pop();
        if let ValueKind::Map(entries) = result?.kind {
            for entry in entries {
                self.define(entry);
            }
        }
        Ok(())
    }

    /// Resolves `$name`: the nearest enclosing map's earlier key of that name, else the
    /// environment variable (its text parsed as a value, so `PORT=4223` is an integer).
    fn variable(&mut self, name: &str, pos: Pos) -> Result<Value, ConfError> {
        // A bcrypt hash (`$2a$11$…`) written unquoted is a password, not a reference.
        if ["2a$", "2b$", "2y$"].iter().any(|p| name.starts_with(p)) {
            return Ok(Value::new(ValueKind::String(format!("${name}")), pos));
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.iter_mut().rev().find(|e| e.key == name) {
                entry.used_as_variable = true;
                let mut value = entry.value.clone();
                value.relocate(&pos);
                return Ok(value);
            }
        }
        match (self.shared.env)(name) {
            Some(text) => self.env_value(name, &text, pos),
            None => Err(ConfError::UndefinedVariable { pos, name: name.to_string() }),
        }
    }

    fn env_value(&mut self, name: &str, text: &str, pos: Pos) -> Result<Value, ConfError> {
        if text.trim().is_empty() {
            return Ok(Value::new(ValueKind::String(String::new()), pos));
        }
        let failed = |why: String| ConfError::Syntax {
            pos: pos.clone(),
            message: format!("variable reference for '{name}' could not be parsed: {why}"),
        };
        if self.shared.env_depth >= MAX_ENV_DEPTH {
            return Err(failed("environment variables refer to each other too deeply".into()));
        }
        self.shared.env_depth += 1;
        let result = parse_source(&format!("pk={text}"), &format!("${name}"), None, self.shared);
        self.shared.env_depth -= 1;
        let doc = result.map_err(|e| failed(e.to_string()))?;
        let mut value = doc.get("pk").cloned().ok_or_else(|| failed("no value".into()))?;
        value.relocate(&pos);
        Ok(value)
    }
}

fn push_char(buf: &mut Vec<u8>, c: char) {
    let mut tmp = [0u8; 4];
    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse_env(src: &str, env: EnvLookup<'_>) -> Result<Value, ConfError> {
        parse_source(src, "t.conf", None, &mut Shared::new(env))
    }

    fn parse(src: &str) -> Result<Value, ConfError> {
        parse_env(src, &|_| None)
    }

    fn ok(src: &str) -> Value {
        match parse(src) {
            Ok(v) => v,
            Err(e) => panic!("{src:?} failed: {e}"),
        }
    }

    fn kind<'v>(doc: &'v Value, key: &str) -> &'v ValueKind {
        &doc.get(key).unwrap_or_else(|| panic!("no key {key}")).kind
    }

    fn s(v: &str) -> ValueKind {
        ValueKind::String(v.into())
    }

    fn err_line(src: &str) -> (u32, String) {
        let e = parse(src).expect_err(src);
        (e.pos().map_or(0, |p| p.line), e.to_string())
    }

    #[test]
    fn separators() {
        let doc = ok("a: 1\nb = 2\nc 3\nd:4\ne=5\nf\t6\ng :  7\nh\n8\n");
        for (k, n) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6), ("g", 7), ("h", 8)] {
            assert_eq!(kind(&doc, k), &ValueKind::Integer(n), "{k}");
        }
        // Several entries on one line, separated by `;` or `,`.
        let doc = ok("a: 1; b: 2, c: 3");
        assert_eq!(kind(&doc, "c"), &ValueKind::Integer(3));
        // Quoted keys.
        let doc = ok("\"my key\": 1\n'other key' = 2\n");
        assert_eq!(kind(&doc, "my key"), &ValueKind::Integer(1));
        assert_eq!(kind(&doc, "other key"), &ValueKind::Integer(2));
        // Keys are kept as written; lookups ignore case.
        let doc = ok("Max_Payload: 1");
        assert_eq!(kind(&doc, "max_payload"), &ValueKind::Integer(1));
        // Windows line ends and a byte-order mark.
        let doc = ok("\u{feff}a: 1\r\nb: two\r\nc { d: 3 }\r\n");
        assert_eq!(kind(&doc, "a"), &ValueKind::Integer(1));
        assert_eq!(kind(&doc, "b"), &s("two"));
        assert_eq!(doc.get("c").and_then(|c| c.get("d")).unwrap().kind, ValueKind::Integer(3));
        // Later definitions win.
        let doc = ok("a: 1\na: 2");
        assert_eq!(kind(&doc, "a"), &ValueKind::Integer(2));
    }

    #[test]
    fn maps() {
        for src in [
            "ws { port: 1 }",
            "ws: { port: 1 }",
            "ws = {port=1}",
            "ws{port 1}",
            "ws\n{\n  port\n  1\n}",
            "ws {\n  port:\n    1\n}",
            "ws {\n  # comment\n  port: 1 // trailing\n  // another\n}\n",
            "ws { host: a, port: 1; no_tls: true }",
            "{\n ws { port: 1 }\n}\n",
        ] {
            let doc = ok(src);
            let ws = doc.get("ws").unwrap();
            assert_eq!(ws.get("port").unwrap().kind, ValueKind::Integer(1), "{src}");
        }
        let doc = ok("a { b { c { d: deep } } }");
        let d = doc.get("a").and_then(|v| v.get("b")).and_then(|v| v.get("c")).and_then(|v| v.get("d"));
        assert_eq!(d.unwrap().kind, s("deep"));
        assert_eq!(kind(&ok("e {}"), "e"), &ValueKind::Map(vec![]));
    }

    #[test]
    fn arrays() {
        let strip = |k: &ValueKind| match k {
            ValueKind::Array(items) => items.iter().map(|v| v.kind.clone()).collect::<Vec<_>>(),
            _ => panic!("not an array"),
        };
        let want: Vec<ValueKind> = (1..=3).map(ValueKind::Integer).collect();
        for src in [
            "a: [1, 2, 3]",
            "a: [1,2,3]",
            "a [1 , 2 , 3 ,]",
            "a: [\n  1\n  2\n  3\n]",
            "a: [\n  1, # one\n  2 // two\n  # between\n  3\n]",
        ] {
            assert_eq!(strip(kind(&ok(src), "a")), want, "{src}");
        }
        let doc = ok("a: [x, \"y z\", 'w', [1], {k: v}]");
        let items = strip(kind(&doc, "a"));
        assert_eq!(items[0], s("x"));
        assert_eq!(items[1], s("y z"));
        assert_eq!(items[2], s("w"));
        assert!(matches!(items[3], ValueKind::Array(_)));
        assert!(matches!(items[4], ValueKind::Map(_)));
        assert_eq!(kind(&ok("e: []"), "e"), &ValueKind::Array(vec![]));
    }

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

    #[test]
    fn variables() {
        let doc = ok("TOKEN: \"s3cr3t\"\nauthorization { token: $TOKEN }\n");
        let auth = doc.get("authorization").unwrap();
        assert_eq!(auth.get("token").unwrap().kind, s("s3cr3t"));
        // The referenced key is marked, the value moved to where it is used.
        let ValueKind::Map(entries) = &doc.kind else { panic!() };
        assert!(entries[0].used_as_variable);
        assert!(!entries[1].used_as_variable);
        assert_eq!(auth.get("token").unwrap().pos.line, 2);

        // Same block, and the inner definition shadows the outer.
        let doc = ok("x: 1\nb { x: 2, y: $x }\nc: $x\n");
        assert_eq!(doc.get("b").unwrap().get("y").unwrap().kind, ValueKind::Integer(2));
        assert_eq!(kind(&doc, "c"), &ValueKind::Integer(1));
        // Any value type, maps included.
        let doc = ok("M { a: 1 }\nn: $M\n");
        assert_eq!(doc.get("n").unwrap().get("a").unwrap().kind, ValueKind::Integer(1));
        // Inside arrays.
        let doc = ok("U: bob\nl: [$U, x]\n");
        let ValueKind::Array(items) = kind(&doc, "l") else { panic!() };
        assert_eq!(items[0].kind, s("bob"));
        // A bcrypt hash is not a variable.
        assert_eq!(kind(&ok("p: $2a$11$abcdefg"), "p"), &s("$2a$11$abcdefg"));

        // Environment fallback, parsed as a value.
        let env = |name: &str| match name {
            "E_PORT" => Some("4223".to_string()),
            "E_NAME" => Some("edge one".to_string()),
            "E_QUOTED" => Some("\"edge one\"".to_string()),
            "E_LOOP" => Some("$E_LOOP".to_string()),
            "E_EMPTY" => Some(String::new()),
            "x" => Some("from env".to_string()),
            _ => None,
        };
        let doc = parse_env("port: $E_PORT\nname: $E_QUOTED\ne: $E_EMPTY\nx: 1\ny: $x\n", &env).unwrap();
        assert_eq!(kind(&doc, "port"), &ValueKind::Integer(4223));
        assert_eq!(kind(&doc, "name"), &s("edge one"));
        assert_eq!(kind(&doc, "e"), &s(""));
        assert_eq!(kind(&doc, "y"), &ValueKind::Integer(1), "keys shadow the environment");
        assert!(parse_env("name: $E_NAME", &env).is_err(), "unquoted env text with a space");
        let e = parse_env("\n\nv: $E_LOOP", &env).unwrap_err();
        assert_eq!(e.pos().unwrap().line, 3);

        // Undefined: error naming the variable and its line.
        let e = parse("a: 1\n\nb: $NOPE\n").unwrap_err();
        assert_eq!(
            e,
            ConfError::UndefinedVariable { pos: Pos { file: "t.conf".into(), line: 3, col: 4 }, name: "NOPE".into() }
        );
        assert_eq!(e.to_string(), "t.conf:3:4: variable reference for 'NOPE' can not be found");
        // Only earlier keys count.
        assert!(parse("a: $B\nB: 1").is_err());
    }

    #[test]
    fn errors_have_positions() {
        let cases: &[(&str, u32)] = &[
            ("a: \"open\n\n", 1),
            ("a: 'open", 1),
            ("a {\n b: 1\n", 3),
            ("a: [1,\n 2\n", 3),
            ("port: 4222\nport 4223 4224\n", 2),
            ("a: \"bad \\q escape\"", 1),
            ("a: \"\\x4\"", 1),
            ("a: \"\\xZZ\"", 1),
            ("\n\nfoo\n", 3),
            ("foo:", 1),
            ("port:\n4222\n", 1),
            ("a { b: }", 1),
            ("a { b, c }", 1),
            ("a: [,]", 1),
            ("a { : 1 }", 1),
            ("a: (\nno end", 1),
            ("= 1", 1),
            ("a: 1 b: 2", 1),
            ("a { b: 1 c: 2 }", 1),
            ("a: [1 2]", 1),
            ("a: \"x\\", 1),
        ];
        for (src, line) in cases {
            let (got, msg) = err_line(src);
            assert_eq!(got, *line, "{src:?}: {msg}");
            assert!(msg.starts_with("t.conf:"), "{msg}");
        }
    }

    /// Truncations and mutations of a realistic file: every one must parse or fail cleanly.
    #[test]
    fn garbage_never_panics() {
        let sample = concat!(
            "# comment\nlisten: 127.0.0.1:4222 // c\nhttp_port = 8222\nmax_pending: 4MB\n",
            "TOKEN: \"s3\\x41cr\\\"et\"\nauthorization {\n  token: $TOKEN\n  users: [\n",
            "    {user: a, password: 'b'}, {user: \"c\", pass: $2a$11$xyz}\n  ]\n  timeout: 1.5\n}\n",
            "websocket: { port: 8080; no_tls: yes }\nblock: (\n raw ) text\n)\n",
            "when: 2024-01-02T03:04:05Z\nneg: -12kb\ninclude 'nope.conf'\nws { include \"x\" }\n",
        );
        let chars: Vec<char> = sample.chars().collect();
        for cut in 0..=chars.len() {
            let text: String = chars[..cut].iter().collect();
            let _ = parse(&text);
        }
        // Deterministic pseudo-random mutations drawn from the syntax's special characters.
        let alphabet: Vec<char> = "{}[]()\"'\\$#/:=;, \t\n\rx1.-kKbBiI2aé\u{0}".chars().collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut text = chars.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() as usize) % (text.len() + 1);
                let c = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 => text.insert(at, c),
                    1 if at < text.len() => {
                        text.remove(at);
                    }
                    _ if at < text.len() => text[at] = c,
                    _ => {}
                }
            }
            let text: String = text.into_iter().collect();
            let _ = parse(&text);
        }
        for _ in 0..2000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len).map(|_| alphabet[(next() as usize) % alphabet.len()]).collect();
            let _ = parse(&format!("k: {text}"));
            let _ = parse(&text);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("a: {}", "[".repeat(100_000));
        assert!(parse(&deep).unwrap_err().to_string().contains("nested"));
        let deep = format!("a: {}", "{b: ".repeat(100_000));
        assert!(parse(&deep).is_err());
        let ok_depth = format!("a: {}1{}", "[".repeat(30), "]".repeat(30));
        assert!(parse(&ok_depth).is_ok());
    }
}
