//! A pull reader over JSON text: the caller asks for the value it expects at each point, so
//! a struct's reader is a loop over its keys with no generated code per type.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a JSON text was refused, with the byte offset where reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    pub kind: JsonErrorKind,
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// Not JSON at all (bad token, unterminated string, bad escape, control character).
    Syntax,
    /// Valid JSON of another type than the field takes.
    Type(&'static str),
    /// A number outside the field's range, or with a fraction where an integer belongs.
    Number,
    /// Something after the value.
    Trailing,
    /// Nested deeper than Go's decoder allows (10,000 levels).
    Depth,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            JsonErrorKind::Syntax => write!(f, "invalid JSON at offset {}", self.offset),
            JsonErrorKind::Type(want) => write!(f, "expected {want} at offset {}", self.offset),
            JsonErrorKind::Number => write!(f, "number out of range at offset {}", self.offset),
            JsonErrorKind::Trailing => write!(f, "trailing characters at offset {}", self.offset),
            JsonErrorKind::Depth => write!(f, "exceeded max depth at offset {}", self.offset),
        }
    }
}

type Result<T> = core::result::Result<T, JsonError>;

/// Reads one JSON text. Values are read in order: each `*_value` call consumes one value.
pub struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Reader { b: text.as_bytes(), i: 0 }
    }

    fn fail<T>(&self, kind: JsonErrorKind) -> Result<T> {
        Err(JsonError { kind, offset: self.i })
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The first byte of the next value (after whitespace), not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.fail(JsonErrorKind::Syntax)
        }
    }

    /// Consumes `null` if that is what comes next.
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Checks that nothing but whitespace follows the value read.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail(JsonErrorKind::Trailing),
        }
    }

    /// Reads an object, calling `field` with each key; `field` must consume the value
    /// (read it, or [`Reader::skip`] it).
    pub fn object(&mut self, mut field: impl FnMut(&mut Self, &str) -> Result<()>) -> Result<()> {
        if self.peek() != Some(b'{') {
            return self.fail(JsonErrorKind::Type("an object"));
        }
        self.i += 1;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return self.fail(JsonErrorKind::Syntax);
            }
            let key = self.raw_string()?;
            if self.peek() != Some(b':') {
                return self.fail(JsonErrorKind::Syntax);
            }
            self.i += 1;
            field(self, &key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.fail(JsonErrorKind::Syntax),
            }
        }
    }

    pub fn bool_value(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|()| true),
            Some(b'f') => self.literal(b"false").map(|()| false),
            _ => self.wrong_type("a boolean"),
        }
    }

    pub fn string_value(&mut self) -> Result<String> {
        match self.peek() {
            Some(b'"') => self.raw_string(),
            _ => self.wrong_type("a string"),
        }
    }

    pub fn i64_value(&mut self) -> Result<i64> {
        let (neg, digits) = self.integer()?;
        let n = i64::try_from(digits).ok().filter(|n| *n != i64::MIN);
        match (neg, n) {
            (false, Some(n)) => Ok(n),
            (true, Some(n)) => Ok(-n),
            (true, None) if digits == 1u64 << 63 => Ok(i64::MIN),
            _ => self.fail(JsonErrorKind::Number),
        }
    }

    pub fn u64_value(&mut self) -> Result<u64> {
        match self.integer()? {
            (false, n) => Ok(n),
            (true, 0) => Ok(0),
            (true, _) => self.fail(JsonErrorKind::Number),
        }
    }

    /// A value of another type than asked: refused as such if it is valid JSON, as a syntax
    /// error otherwise.
    fn wrong_type<T>(&mut self, want: &'static str) -> Result<T> {
        let at = self.i;
        self.skip()?;
        Err(JsonError { kind: JsonErrorKind::Type(want), offset: at })
    }

    /// An integer: its sign and magnitude; a fraction or an exponent is refused.
    fn integer(&mut self) -> Result<(bool, u64)> {
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return self.wrong_type("an integer");
        }
        let start = self.i;
        self.number()?;
        let text = &self.b[start..self.i];
        let (neg, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(JsonError { kind: JsonErrorKind::Number, offset: start });
        }
        let mut n: u64 = 0;
        for d in digits {
            n = match n.checked_mul(10).and_then(|n| n.checked_add(u64::from(d - b'0'))) {
                Some(n) => n,
                None => return Err(JsonError { kind: JsonErrorKind::Number, offset: start }),
            };
        }
        Ok((neg, n))
    }

    /// Consumes a number by JSON's grammar.
    fn number(&mut self) -> Result<()> {
        let digits = |r: &mut Self| {
            let from = r.i;
            while r.b.get(r.i).is_some_and(u8::is_ascii_digit) {
                r.i += 1;
            }
            r.i > from
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.fail(JsonErrorKind::Syntax),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !digits(self) {
                return self.fail(JsonErrorKind::Syntax);
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if !digits(self) {
                return self.fail(JsonErrorKind::Syntax);
            }
        }
        Ok(())
    }

    /// A string at the cursor (its opening quote), unescaped. A lone surrogate escape becomes
    /// U+FFFD, as Go's decoder makes it.
    fn raw_string(&mut self) -> Result<String> {
        self.i += 1;
        let mut out = String::new();
        let mut run = self.i;
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return self.fail(JsonErrorKind::Syntax);
            };
            match c {
                b'"' | b'\\' => {
                    // runs end at ASCII bytes, so each is whole UTF-8
                    out.push_str(core::str::from_utf8(&self.b[run..self.i]).unwrap_or("\u{fffd}"));
                    self.i += 1;
                    if c == b'"' {
                        return Ok(out);
                    }
                    self.escape(&mut out)?;
                    run = self.i;
                }
                0..=0x1f => return self.fail(JsonErrorKind::Syntax),
                _ => self.i += 1,
            }
        }
    }

    /// One escape after its backslash.
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let Some(&c) = self.b.get(self.i) else {
            return self.fail(JsonErrorKind::Syntax);
        };
        self.i += 1;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                if (0xd800..0xdc00).contains(&hi) && self.b[self.i..].starts_with(b"\\u") {
                    let save = self.i;
                    self.i += 2;
                    let lo = self.hex4()?;
                    if (0xdc00..0xe000).contains(&lo) {
                        let c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                        out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                        return Ok(());
                    }
                    self.i = save;
                }
                char::from_u32(hi).unwrap_or('\u{fffd}')
            }
            _ => return self.fail(JsonErrorKind::Syntax),
        };
        out.push(ch);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut n = 0;
        for _ in 0..4 {
            let d = match self.b.get(self.i) {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return self.fail(JsonErrorKind::Syntax),
            };
            n = n * 16 + u32::from(d);
            self.i += 1;
        }
        Ok(n)
    }

    /// Consumes one value of any type, checking its syntax. No recursion: the open brackets
    /// are kept in a list, so any depth is safe.
    pub fn skip(&mut self) -> Result<()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            // a value
            match self.peek() {
                Some(b'{') => {
                    self.i += 1;
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                    } else {
                        open.push(b'}');
                        self.key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    if self.peek() == Some(b']') {
                        self.i += 1;
                    } else {
                        open.push(b']');
                        continue;
                    }
                }
                Some(b'"') => {
                    self.raw_string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => self.number()?,
            }
            // what follows it: the next element, or the end of one or more containers
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if close == b'}' {
                            self.key()?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.i += 1;
                        open.pop();
                    }
                    _ => return self.fail(JsonErrorKind::Syntax),
                }
            }
        }
    }

    /// An object's key and its colon.
    fn key(&mut self) -> Result<()> {
        if self.peek() != Some(b'"') {
            return self.fail(JsonErrorKind::Syntax);
        }
        self.raw_string()?;
        if self.peek() != Some(b':') {
            return self.fail(JsonErrorKind::Syntax);
        }
        self.i += 1;
        Ok(())
    }
}

/// Whether `text` is one valid JSON value and nothing else.
pub fn is_valid(text: &str) -> bool {
    let mut r = Reader::new(text);
    r.skip().and_then(|()| r.end()).is_ok()
}
