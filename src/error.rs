//! Turns the core's user errors into PostgreSQL errors, with the SQLSTATE
//! chosen for each kind in exactly one place.

use audience_core::{Error, ErrorKind};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

fn sqlstate(kind: ErrorKind) -> PgSqlErrorCode {
    match kind {
        ErrorKind::InvalidText => PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        ErrorKind::Syntax => PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
        ErrorKind::UndefinedObject => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        ErrorKind::InvalidParameter => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::Duplicate => PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
        ErrorKind::CyclicReference => PgSqlErrorCode::ERRCODE_INVALID_OBJECT_DEFINITION,
        ErrorKind::DatatypeMismatch => PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        ErrorKind::TooComplex => PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX,
        ErrorKind::InsufficientPrivilege => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        ErrorKind::UndefinedFile => PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
        ErrorKind::WrongObjectType => PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
        ErrorKind::Io => PgSqlErrorCode::ERRCODE_IO_ERROR,
        ErrorKind::BadFileFormat => PgSqlErrorCode::ERRCODE_BAD_COPY_FILE_FORMAT,
    }
}

/// Raises `error` as a PostgreSQL ERROR; never returns.
pub fn raise(error: Error) -> ! {
    let mut report = ErrorReport::new(sqlstate(error.kind), error.message, "audience");
    if let Some(detail) = error.detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = error.hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// `result.or_raise()`: the value, or the error raised in PostgreSQL.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, Error> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|error| raise(error))
    }
}
