//! Errors and source positions for configuration files.
//!
//! Every error that can be tied to a place in a file carries that place (file, line, column),
//! because a configuration error without a line number sends the operator hunting.

use std::fmt;
use std::sync::Arc;

/// A place in a configuration source: file name as given (or a label such as `<string>`),
/// 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// Everything that can go wrong while reading a configuration file or applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfError {
    /// The top-level file could not be read.
    Read { path: String, reason: String },
    /// The text does not follow the format.
    Syntax { pos: Pos, message: String },
    /// `$NAME` names neither an earlier key nor an environment variable.
    UndefinedVariable { pos: Pos, name: String },
    /// An `include` could not be followed (missing file, cycle, too deep).
    Include { pos: Pos, path: String, reason: String },
    /// A known key has a value of the wrong type or out of range.
    InvalidValue { pos: Pos, key: String, message: String },
    /// The options as a whole are inconsistent (no single place to blame).
    Invalid { message: String },
}

impl ConfError {
    /// The position the error points at, when it has one.
    pub fn pos(&self) -> Option<&Pos> {
        match self {
            ConfError::Syntax { pos, .. }
            | ConfError::UndefinedVariable { pos, .. }
            | ConfError::Include { pos, .. }
            | ConfError::InvalidValue { pos, .. } => Some(pos),
            ConfError::Read { .. } | ConfError::Invalid { .. } => None,
        }
    }

    pub(crate) fn syntax(pos: Pos, message: impl Into<String>) -> Self {
        ConfError::Syntax { pos, message: message.into() }
    }

    pub(crate) fn value(pos: &Pos, key: &str, message: impl Into<String>) -> Self {
        ConfError::InvalidValue { pos: pos.clone(), key: key.to_string(), message: message.into() }
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfError::Read { path, reason } => {
                write!(f, "error opening config file {path}: {reason}")
            }
            ConfError::Syntax { pos, message } => write!(f, "{pos}: {message}"),
            ConfError::UndefinedVariable { pos, name } => {
                write!(f, "{pos}: variable reference for '{name}' can not be found")
            }
            ConfError::Include { pos, path, reason } => {
                write!(f, "{pos}: error parsing include file '{path}': {reason}")
            }
            ConfError::InvalidValue { pos, key, message } => write!(f, "{pos}: {key}: {message}"),
            ConfError::Invalid { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for ConfError {}
