//! One error type for every user-facing failure. Each kind maps to exactly
//! one SQLSTATE in the pgrx layer, so the mapping lives in one place.

use std::fmt;

/// What went wrong, in the terms of PostgreSQL's error classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 22P02: a value whose text cannot be read (an email, a number).
    InvalidText,
    /// 42601: a rule or query that does not follow the grammar.
    Syntax,
    /// 42704: an unknown tenant, field, segment or contact.
    UndefinedObject,
    /// 22023: an option or argument outside what is accepted.
    InvalidParameter,
    /// 23505: a name that is already taken.
    Duplicate,
    /// 42P17: a segment that would refer to itself through other segments.
    CyclicReference,
    /// 42804: a value of the wrong type for a field.
    DatatypeMismatch,
    /// 54001: input nested or sized beyond what is accepted.
    TooComplex,
    /// 42501: a tenant the session's role may not select, a server file
    /// it may not read.
    InsufficientPrivilege,
    /// 58P01: a file on the server that does not exist.
    UndefinedFile,
    /// 42809: a directory where a file was expected.
    WrongObjectType,
    /// 58030: a file on the server that could not be read.
    Io,
    /// 22P04: bytes that are not (or no longer) a file of the expected
    /// format, such as a workbook.
    BadFileFormat,
}

/// A user error: what happened, and optionally a detail and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
