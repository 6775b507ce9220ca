//! What a file takes from elsewhere: `include` splices another file's keys in place, and
//! `$NAME` copies an earlier key of an enclosing map or parses an environment variable's
//! text as a value. Both re-enter [`parse_source`], so both are bounded here (include depth
//! and cycles, environment nesting) to keep a hostile file from recursing without end.

use std::fs;
use std::path::PathBuf;

use super::super::error::{ConfError, Pos};
use super::super::value::{Value, ValueKind};
use super::{is_nl, parse_source, Parser};

/// How deep `include`s may nest; real configurations use one or two levels.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 10;
/// How deep environment variables may refer to further variables.
const MAX_ENV_DEPTH: usize = 8;

impl Parser<'_, '_, '_> {
    /// `include path`, the keyword already read: parses the file and defines its keys here.
    pub(super) fn include(&mut self) -> Result<(), ConfError> {
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
    pub(super) fn variable(&mut self, name: &str, pos: Pos) -> Result<Value, ConfError> {
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

    pub(super) fn env_value(&mut self, name: &str, text: &str, pos: Pos) -> Result<Value, ConfError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::*;
    use super::*;

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
}
