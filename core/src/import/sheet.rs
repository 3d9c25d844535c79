//! Workbooks (Excel .xlsx/.xlsm/.xlsb/.xls, OpenDocument .ods) read with
//! `calamine`: one sheet's cells become the text records every import
//! reads, written as the field types read them (dates as YYYY-MM-DD,
//! numbers as shown, booleans as true/false), with the sheet's own row
//! numbers as lines.

use super::{Header, Records};
use crate::error::{Error, ErrorKind, Result};
use calamine::{Data, Ods, Range, Reader, Xls, XlsError, Xlsb, Xlsx, XlsxError};
use chrono::{NaiveDateTime, NaiveTime};
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The signatures of the two containers workbooks come in.
const OLE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
const ZIP: &[u8] = b"PK\x03\x04";

/// One sheet of a workbook, as records.
pub struct SheetRecords {
    range: Range<Data>,
    /// The sheet's row number of the range's first row, less one.
    first_line: u64,
    /// The next row of the range to read.
    next: usize,
    /// Where the first row after the header is.
    body: usize,
    /// The workbook's bytes, which progress is shown in.
    size: u64,
}

fn not_a_workbook() -> Error {
    Error::new(
        ErrorKind::BadFileFormat,
        "the data is not a workbook: an Excel (.xlsx, .xlsm, .xlsb, .xls) or OpenDocument (.ods) file was expected",
    )
    .with_hint("CSV files are imported with audience.import_csv.")
}

fn corrupt(format: &str, error: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::BadFileFormat,
        format!("the {format} workbook cannot be read: {error}"),
    )
}

fn password_protected() -> Error {
    Error::new(
        ErrorKind::BadFileFormat,
        "the workbook is protected by a password, which cannot be imported",
    )
    .with_hint("Save a copy without the password (File, Info, Protect Workbook) and import that.")
}

/// The sheet the options name (the first when none) of the workbook in
/// `data`, whose form is read from its first bytes.
pub fn open(data: &[u8], sheet: Option<&str>) -> Result<SheetRecords> {
    // A corrupt workbook may trip an assertion in the reader: that is the
    // workbook's fault, and the backend carries on.
    catch_unwind(AssertUnwindSafe(|| read_sheet(data, sheet)))
        .unwrap_or_else(|_| Err(corrupt("", "its structure is inconsistent")))
}

fn read_sheet(data: &[u8], sheet: Option<&str>) -> Result<SheetRecords> {
    let cursor = || Cursor::new(data);
    let size = data.len() as u64;
    if data.starts_with(OLE) {
        // Excel 97-2003, or an encrypted (password-protected) .xlsx, which
        // Office stores in the same container.
        return match Xls::new(cursor()) {
            Ok(mut book) => range(&mut book, sheet, "xls", size),
            Err(XlsError::Password) => Err(password_protected()),
            Err(error) => match Xlsx::new(cursor()) {
                Err(XlsxError::Password) => Err(password_protected()),
                _ => Err(corrupt("xls", error)),
            },
        };
    }
    if !data.starts_with(ZIP) {
        return Err(not_a_workbook());
    }
    match Xlsx::new(cursor()) {
        Ok(mut book) => range(&mut book, sheet, "xlsx", size),
        Err(XlsxError::Password) => Err(password_protected()),
        Err(xlsx_error) => {
            if let Ok(mut book) = Ods::new(cursor()) {
                return range(&mut book, sheet, "ods", size);
            }
            if let Ok(mut book) = Xlsb::new(cursor()) {
                return range(&mut book, sheet, "xlsb", size);
            }
            Err(if is_ods(data) {
                corrupt("ods", "its content cannot be read")
            } else {
                corrupt("xlsx", xlsx_error)
            })
        }
    }
}

/// Whether a zip's first entry declares an OpenDocument spreadsheet, as
/// its specification requires (an uncompressed `mimetype` entry).
fn is_ods(data: &[u8]) -> bool {
    data.windows(46)
        .take(100)
        .any(|w| w == b"application/vnd.oasis.opendocument.spreadsheet")
}

fn range<'a, R: Reader<Cursor<&'a [u8]>>>(
    book: &mut R,
    sheet: Option<&str>,
    format: &str,
    size: u64,
) -> Result<SheetRecords>
where
    R::Error: std::fmt::Display,
{
    let names = book.sheet_names();
    let name = match sheet {
        Some(wanted) => names
            .iter()
            .find(|n| *n == wanted)
            .or_else(|| {
                names
                    .iter()
                    .find(|n| n.to_lowercase() == wanted.to_lowercase())
            })
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedObject,
                    format!("the workbook has no sheet \"{wanted}\""),
                )
                .with_detail(format!("Sheets: {}.", names.join(", ")))
            })?,
        None => names
            .first()
            .ok_or_else(|| corrupt(format, "it has no sheets"))?,
    }
    .clone();
    let range = book
        .worksheet_range(&name)
        .map_err(|e| corrupt(format, e))?;
    let first_line = range.start().map_or(0, |(row, _)| u64::from(row));
    Ok(SheetRecords {
        range,
        first_line,
        next: 0,
        body: 0,
        size,
    })
}

/// A number as a spreadsheet shows it by default: whole numbers with all
/// their digits (phone numbers, ids), others to Excel's 15 significant
/// digits, so that binary noise (99000.50000000001) is not imported.
pub fn shown_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    let rounded: f64 = format!("{value:.14e}").parse().unwrap_or(value);
    rounded.to_string()
}

/// A date as a date field reads it, a date with a time as a timestamp.
fn shown_moment(moment: NaiveDateTime) -> String {
    if moment.time() == NaiveTime::MIN {
        moment.format("%Y-%m-%d").to_string()
    } else {
        moment.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// A cell as text, or why it has none.
fn cell_text(cell: &Data) -> std::result::Result<String, String> {
    Ok(match cell {
        Data::Empty => String::new(),
        Data::String(text) => text.clone(),
        Data::Int(n) => n.to_string(),
        Data::Float(n) => shown_number(*n),
        Data::Bool(b) => b.to_string(),
        Data::DurationIso(text) => text.clone(),
        Data::DateTimeIso(text) => match text.parse::<NaiveDateTime>() {
            Ok(moment) => shown_moment(moment),
            Err(_) => text.clone(),
        },
        Data::DateTime(moment) if moment.is_duration() => shown_number(moment.as_f64()),
        Data::DateTime(moment) => match moment.as_datetime() {
            // A time of day alone is stored as a fraction of day zero.
            Some(t) if moment.as_f64() < 1.0 => t.format("%H:%M:%S").to_string(),
            Some(t) => shown_moment(t),
            None => shown_number(moment.as_f64()),
        },
        Data::Error(error) => {
            return Err(format!(
            "the cell shows the error {error}, not a value; correct the formula or clear the cell"
        ))
        }
    })
}

fn is_blank(cell: &Data) -> bool {
    matches!(cell, Data::Empty) || matches!(cell, Data::String(s) if s.trim().is_empty())
}

impl SheetRecords {
    /// The cells of the range's row `index`.
    fn cells(&self, index: usize) -> impl Iterator<Item = &Data> {
        (0..self.range.width())
            .map(move |column| self.range.get((index, column)).unwrap_or(&Data::Empty))
    }

    /// The index of the next row that is not blank.
    fn next_row(&mut self) -> Option<usize> {
        while self.next < self.range.height() {
            let index = self.next;
            self.next += 1;
            if !self.cells(index).all(is_blank) {
                return Some(index);
            }
        }
        None
    }

    /// A row index as the sheet numbers it.
    fn line(&self, index: usize) -> u64 {
        self.first_line + index as u64 + 1
    }
}

impl Records for SheetRecords {
    fn header(&mut self) -> Result<Option<Header>> {
        let Some(index) = self.next_row() else {
            return Ok(None);
        };
        let names = self
            .cells(index)
            .map(|cell| cell_text(cell).unwrap_or_default().trim().to_string())
            .collect();
        self.body = self.next;
        Ok(Some(Header {
            names,
            line: self.line(index),
        }))
    }

    fn next(
        &mut self,
        record: &mut csv::ByteRecord,
        problems: &mut Vec<(usize, String)>,
    ) -> Result<Option<u64>> {
        let Some(index) = self.next_row() else {
            return Ok(None);
        };
        record.clear();
        for (column, cell) in self.cells(index).enumerate() {
            match cell_text(cell) {
                Ok(text) => record.push_field(text.as_bytes()),
                Err(why) => {
                    record.push_field(cell.to_string().as_bytes());
                    problems.push((column, why));
                }
            }
        }
        Ok(Some(self.line(index)))
    }

    fn rewind(&mut self) -> Result<()> {
        self.next = self.body;
        Ok(())
    }

    /// In the workbook's bytes, as the share of its rows read.
    fn progress(&self) -> (u64, u64) {
        let height = self.range.height().max(1) as u64;
        (self.size * self.next as u64 / height, self.size)
    }
}
