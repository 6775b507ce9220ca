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
//!
//! This file holds the structure (files, entries, maps, arrays, the value dispatch);
//! [`scalar`] reads strings, numbers and bare words, [`resolve`] `include`s and `$NAME`s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cursor::{Cursor, Mark};
use super::error::{ConfError, Pos};
use super::value::{Entry, Value, ValueKind};

mod resolve;
mod scalar;

/// How deep maps and arrays may nest.
const MAX_NESTING: usize = 64;

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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(super) fn parse_env(src: &str, env: EnvLookup<'_>) -> Result<Value, ConfError> {
        parse_source(src, "t.conf", None, &mut Shared::new(env))
    }

    pub(super) fn parse(src: &str) -> Result<Value, ConfError> {
        parse_env(src, &|_| None)
    }

    pub(super) fn ok(src: &str) -> Value {
        match parse(src) {
            Ok(v) => v,
            Err(e) => panic!("{src:?} failed: {e}"),
        }
    }

    pub(super) fn kind<'v>(doc: &'v Value, key: &str) -> &'v ValueKind {
        &doc.get(key).unwrap_or_else(|| panic!("no key {key}")).kind
    }

    pub(super) fn s(v: &str) -> ValueKind {
        ValueKind::String(v.into())
    }

    pub(super) fn err_line(src: &str) -> (u32, String) {
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
        assert!(parse(&deep).unwrap_err().to_string().contains("nested"));
        // 100,000 bare `{` at the top level are the braces of a JSON-style file, skipped one
        // by one as nats-server skips them: an empty configuration (which it warns about)
        let top = parse(&"{".repeat(100_000)).unwrap();
        assert!(matches!(&top.kind, ValueKind::Map(m) if m.is_empty()));
        // as a block or a value: a `{` where a key belongs is a syntax error at once
        for deep in [format!("a {}", "{".repeat(100_000)), format!("a: {}", "{".repeat(100_000))] {
            let e = parse(&deep).unwrap_err().to_string();
            assert!(e.contains("expected a key but got '{'"), "{e}");
        }
        let deep = format!("a {}", "{b ".repeat(100_000));
        assert!(parse(&deep).is_err());
        let ok_depth = format!("a: {}1{}", "[".repeat(30), "]".repeat(30));
        assert!(parse(&ok_depth).is_ok());
    }
}
