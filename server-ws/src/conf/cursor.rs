//! A character cursor over configuration text that keeps line and column up to date, so
//! the parser can stamp every token with its position without recomputing it.

/// A saved cursor position; restoring it undoes any reads since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    pub(crate) offset: usize,
    pub(crate) line: u32,
    pub(crate) col: u32,
}

pub(crate) struct Cursor<'s> {
    src: &'s str,
    at: Mark,
}

impl<'s> Cursor<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Cursor { src, at: Mark { offset: 0, line: 1, col: 1 } }
    }

    /// Everything not read yet.
    pub(crate) fn rest(&self) -> &'s str {
        self.src.get(self.at.offset..).unwrap_or("")
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The character after the next one.
    pub(crate) fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at.offset += c.len_utf8();
        if c == '\n' {
            self.at.line = self.at.line.saturating_add(1);
            self.at.col = 1;
        } else {
            self.at.col = self.at.col.saturating_add(1);
        }
        Some(c)
    }

    /// Consumes characters while `f` holds.
    pub(crate) fn bump_while(&mut self, mut f: impl FnMut(char) -> bool) {
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.bump();
        }
    }

    pub(crate) fn mark(&self) -> Mark {
        self.at
    }

    pub(crate) fn reset(&mut self, mark: Mark) {
        self.at = mark;
    }

    /// The text between `from` and the current position.
    pub(crate) fn since(&self, from: Mark) -> &'s str {
        self.src.get(from.offset..self.at.offset).unwrap_or("")
    }
}
