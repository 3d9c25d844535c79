//! Workbooks (Excel .xlsx/.xlsm/.xlsb/.xls, OpenDocument .ods) read with
//! `calamine`: one sheet's cells become the text records every import
//! reads, written as the field types read them (dates as YYYY-MM-DD,
//! numbers as shown, booleans as true/false), with the sheet's own row
//! numbers as lines.

use super::{column_letters, Header, Records};
use crate::error::{Error, ErrorKind, Result};
use calamine::{Data, DataRef, Ods, Reader, Xls, XlsError, Xlsb, Xlsx, XlsxError};
use chrono::{NaiveDateTime, NaiveTime};
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The signatures of the two containers workbooks come in.
const OLE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
const ZIP: &[u8] = b"PK\x03\x04";

/// One sheet of a workbook, as records: only the cells that hold
/// something, by row. What a sheet costs is its cells, not the rectangle
/// they span: a cell at A1 and one at XFD1048576 would otherwise make a
/// grid of 17 billion cells (a 5 KB file asking for 550 GB).
pub struct SheetRecords {
    /// The rows that are not blank, in order: the sheet's row (from 0) and
    /// its cells as (column, value), columns in order.
    rows: Vec<(u32, Vec<(u32, Data)>)>,
    /// The sheet's columns that hold anything: the records' fields.
    columns: Vec<u32>,
    /// The next row to read, and the first after the header.
    next: usize,
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
    catch_unwind(AssertUnwindSafe(|| read_sheet(data, sheet))).unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::BadFileFormat,
            "the workbook cannot be read: its structure is inconsistent",
        ))
    })
}

fn read_sheet(data: &[u8], sheet: Option<&str>) -> Result<SheetRecords> {
    let cursor = || Cursor::new(data);
    let size = data.len() as u64;
    if data.starts_with(OLE) {
        // Excel 97-2003, or an encrypted (password-protected) .xlsx, which
        // Office stores in the same container.
        return match Xls::new(cursor()) {
            Ok(mut book) => from_range(&mut book, sheet, "xls", size),
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
        Ok(mut book) => {
            let name = sheet_name(book.sheet_names(), sheet, "xlsx")?;
            let mut reader = book
                .worksheet_cells_reader(&name)
                .map_err(|e| corrupt("xlsx", e))?;
            streamed("xlsx", || reader.next_cell(), size)
        }
        Err(XlsxError::Password) => Err(password_protected()),
        Err(xlsx_error) => {
            if let Ok(mut book) = Ods::new(cursor()) {
                return from_range(&mut book, sheet, "ods", size);
            }
            if let Ok(mut book) = Xlsb::new(cursor()) {
                let name = sheet_name(book.sheet_names(), sheet, "xlsb")?;
                let mut reader = book
                    .worksheet_cells_reader(&name)
                    .map_err(|e| corrupt("xlsb", e))?;
                return streamed("xlsb", || reader.next_cell(), size);
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

/// The sheet the options name (the first when none) among `names`.
fn sheet_name(names: Vec<String>, wanted: Option<&str>, format: &str) -> Result<String> {
    let found = match wanted {
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
    };
    Ok(found.clone())
}

/// Records from a sheet whose cells come one at a time (.xlsx, .xlsb).
fn streamed<'a, E: std::fmt::Display>(
    format: &str,
    mut next_cell: impl FnMut() -> std::result::Result<Option<calamine::Cell<DataRef<'a>>>, E>,
    size: u64,
) -> Result<SheetRecords> {
    let mut cells = Vec::new();
    while let Some(cell) = next_cell().map_err(|e| corrupt(format, e))? {
        let (row, column) = cell.get_position();
        cells.push((row, column, Data::from(cell.get_value().clone())));
    }
    Ok(from_cells(cells, size))
}

/// A sheet of the formats read whole (.ods, whose reader caps its cells,
/// and .xls, whose grid is at most 65,536 by 256).
fn from_range<'a, R: Reader<Cursor<&'a [u8]>>>(
    book: &mut R,
    sheet: Option<&str>,
    format: &str,
    size: u64,
) -> Result<SheetRecords>
where
    R::Error: std::fmt::Display,
{
    let name = sheet_name(book.sheet_names(), sheet, format)?;
    let range = book
        .worksheet_range(&name)
        .map_err(|e| corrupt(format, e))?;
    let (top, left) = range.start().unwrap_or_default();
    let cells = range
        .used_cells()
        .map(|(row, column, value)| (top + row as u32, left + column as u32, value.clone()))
        .collect();
    Ok(from_cells(cells, size))
}

/// Records from cells in any order: blank cells and rows dropped, rows in
/// order, and the columns that hold anything as the fields.
fn from_cells(mut cells: Vec<(u32, u32, Data)>, size: u64) -> SheetRecords {
    cells.retain(|(_, _, value)| !is_blank(value));
    cells.sort_by_key(|(row, column, _)| (*row, *column));
    let mut columns: Vec<u32> = cells.iter().map(|(_, column, _)| *column).collect();
    columns.sort_unstable();
    columns.dedup();
    let mut rows: Vec<(u32, Vec<(u32, Data)>)> = Vec::new();
    for (row, column, value) in cells {
        match rows.last_mut() {
            Some((last, values)) if *last == row => values.push((column, value)),
            _ => rows.push((row, vec![(column, value)])),
        }
    }
    SheetRecords {
        rows,
        columns,
        next: 0,
        body: 0,
        size,
    }
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

/// Whether a cell holds nothing: empty, or only spaces.
fn is_blank(cell: &Data) -> bool {
    matches!(cell, Data::Empty) || matches!(cell, Data::String(s) if s.trim().is_empty())
}

impl SheetRecords {
    /// Row `index`'s value in each of the sheet's columns (None: empty).
    fn fields(&self, index: usize) -> impl Iterator<Item = Option<&Data>> {
        let mut cells = self.rows[index].1.iter().peekable();
        self.columns.iter().map(move |column| {
            cells
                .next_if(|(at, _)| at == column)
                .map(|(_, value)| value)
        })
    }

    /// A row index as the sheet numbers its rows.
    fn line(&self, index: usize) -> u64 {
        u64::from(self.rows[index].0) + 1
    }
}

impl Records for SheetRecords {
    fn header(&mut self) -> Result<Option<Header>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        let names = self
            .fields(0)
            .map(|cell| {
                cell.map(|c| cell_text(c).unwrap_or_default().trim().to_string())
                    .unwrap_or_default()
            })
            .collect();
        let letters = self
            .columns
            .iter()
            .map(|c| column_letters(*c as usize))
            .collect();
        self.next = 1;
        self.body = 1;
        Ok(Some(Header {
            names,
            letters,
            line: self.line(0),
        }))
    }

    fn next(
        &mut self,
        record: &mut csv::ByteRecord,
        problems: &mut Vec<(usize, String)>,
    ) -> Result<Option<u64>> {
        if self.next >= self.rows.len() {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        record.clear();
        for (column, cell) in self.fields(index).enumerate() {
            match cell.map(cell_text) {
                None => record.push_field(b""),
                Some(Ok(text)) => record.push_field(text.as_bytes()),
                Some(Err(why)) => {
                    record.push_field(cell.map(Data::to_string).unwrap_or_default().as_bytes());
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
        let rows = self.rows.len().max(1) as u64;
        (self.size * self.next as u64 / rows, self.size)
    }
}
