//! CSV records from bytes in memory or a file on the server, streamed: the
//! reader holds one buffer, and lines and quotes are counted as bytes pass
//! through it, so a file is never read whole.

use super::{column_letters, decode, Encoding, Header, Records};
use crate::error::{Error, ErrorKind, Result};
use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};

/// How much of the input the delimiter is detected from, and how much the
/// csv reader reads at a time.
const BUFFER: usize = 256 * 1024;

/// The delimiter that splits the first line into the most columns.
pub fn detect_delimiter(data: &[u8]) -> u8 {
    let first_line = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut best = (0, b',');
    for candidate in [b',', b';', b'\t', b'|'] {
        let mut in_quotes = false;
        let count = first_line
            .iter()
            .filter(|&&b| {
                if b == b'"' {
                    in_quotes = !in_quotes;
                }
                !in_quotes && b == candidate
            })
            .count();
        if count > best.0 {
            best = (count, candidate);
        }
    }
    best.1
}

fn malformed(line: u64, error: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidText,
        format!("malformed CSV at line {line}: {error}"),
    )
}

/// A file that could not be read to its end.
fn unreadable(error: &dyn std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, format!("could not read the file: {error}"))
}

/// The input as the csv reader sees it (after a UTF-8 BOM), noting where
/// lines end and whether a quoted field is left open, as bytes go by.
struct Scanned<R> {
    inner: R,
    delimiter: u8,
    scan: Scan,
}

/// What is known of the bytes handed to the csv reader since it started.
struct Scan {
    /// Bytes handed over.
    offset: u64,
    /// Line ends handed over but not yet behind a record's start:
    /// (first byte, byte after), so a CRLF is one.
    ends: VecDeque<(u64, u64)>,
    /// A CR at this offset, waiting for the next byte to tell CRLF.
    pending_cr: Option<u64>,
    /// Lines begun so far, and the line of the last record's start.
    line: u64,
    record_line: u64,
    // Quotes count only at the start of a field, as the csv crate reads them.
    quoted: bool,
    quote_in_quoted: bool,
    field_start: bool,
    opened_on: u64,
}

impl Default for Scan {
    fn default() -> Self {
        Scan {
            offset: 0,
            ends: VecDeque::new(),
            pending_cr: None,
            line: 1,
            record_line: 1,
            quoted: false,
            quote_in_quoted: false,
            field_start: true,
            opened_on: 0,
        }
    }
}

impl Scan {
    fn line_end(&mut self, begin: u64, end: u64) {
        self.ends.push_back((begin, end));
        self.line += 1;
    }

    fn bytes(&mut self, bytes: &[u8], delimiter: u8) {
        for (i, &byte) in bytes.iter().enumerate() {
            let at = self.offset + i as u64;
            if let Some(cr) = self.pending_cr.take() {
                if byte == b'\n' {
                    self.line_end(cr, at + 1);
                } else {
                    self.line_end(cr, cr + 1);
                }
            } else if byte == b'\n' {
                self.line_end(at, at + 1);
            }
            if byte == b'\r' {
                self.pending_cr = Some(at);
            }
            if self.quote_in_quoted {
                self.quote_in_quoted = false;
                if byte == b'"' {
                    // A doubled quote inside a quoted field.
                    self.field_start = false;
                    continue;
                }
                self.quoted = false;
            }
            if self.quoted {
                self.quote_in_quoted = byte == b'"';
            } else if self.field_start && byte == b'"' {
                self.quoted = true;
                self.opened_on = self.line;
            }
            self.field_start = byte == delimiter || byte == b'\n' || byte == b'\r';
        }
        self.offset += bytes.len() as u64;
    }

    fn end_of_input(&mut self) {
        if let Some(cr) = self.pending_cr.take() {
            self.line_end(cr, cr + 1);
        }
        if self.quote_in_quoted {
            self.quote_in_quoted = false;
            self.quoted = false;
        }
    }

    /// The line on which a record starting at byte `start` begins: after
    /// the line ends before it, and after blank lines it starts with.
    fn line_at(&mut self, start: u64) -> u64 {
        let mut start = start;
        while let Some(&(begin, end)) = self.ends.front() {
            if begin > start {
                break;
            }
            self.ends.pop_front();
            self.record_line += 1;
            start = start.max(end);
        }
        self.record_line
    }
}

impl<R: Read> Read for Scanned<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.scan.end_of_input();
        }
        self.scan.bytes(&buf[..n], self.delimiter);
        Ok(n)
    }
}

/// Seeking starts the count over: the csv reader counts bytes from there.
impl<R: Seek> Seek for Scanned<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let at = self.inner.seek(to)?;
        self.scan = Scan::default();
        Ok(at)
    }
}

/// The records of a CSV input. Starting over seeks back to its first byte.
pub struct CsvRecords<R> {
    reader: csv::Reader<Scanned<R>>,
    encoding: Encoding,
    /// Bytes of the BOM skipped, and of the whole input.
    bom: u64,
    size: u64,
    record: csv::ByteRecord,
}

/// Reads until `buf` is full or the input ends; how many bytes it holds.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Positions `input` after a UTF-8 BOM, if it starts with one; returns
/// its length.
fn skip_bom(input: &mut (impl Read + Seek)) -> io::Result<u64> {
    input.seek(SeekFrom::Start(0))?;
    let mut start = [0u8; 3];
    let n = read_up_to(input, &mut start)?;
    let bom = if start[..n] == *b"\xEF\xBB\xBF" { 3 } else { 0 };
    input.seek(SeekFrom::Start(bom))?;
    Ok(bom)
}

impl<R: Read + Seek> CsvRecords<R> {
    /// Opens `input` of `size` bytes with the given or detected delimiter.
    pub fn new(mut input: R, size: u64, delimiter: Option<u8>, encoding: Encoding) -> Result<Self> {
        let io_error = |e: io::Error| unreadable(&e);
        let bom = skip_bom(&mut input).map_err(io_error)?;
        let delimiter = match delimiter {
            Some(d) => d,
            None => {
                let mut start = vec![0; BUFFER];
                let n = read_up_to(&mut input, &mut start).map_err(io_error)?;
                input.seek(SeekFrom::Start(bom)).map_err(io_error)?;
                detect_delimiter(&start[..n])
            }
        };
        Ok(CsvRecords {
            reader: Self::reader(Scanned {
                inner: input,
                delimiter,
                scan: Scan::default(),
            }),
            encoding,
            bom,
            size,
            record: csv::ByteRecord::new(),
        })
    }

    fn reader(scanned: Scanned<R>) -> csv::Reader<Scanned<R>> {
        csv::ReaderBuilder::new()
            .delimiter(scanned.delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(BUFFER)
            .from_reader(scanned)
    }

    fn next_byte_record(&mut self) -> Result<Option<u64>> {
        let line = self.reader.get_ref().scan.line;
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|e| {
                if e.is_io_error() {
                    unreadable(&e)
                } else {
                    malformed(line, &e)
                }
            })?;
        let scan = &mut self.reader.get_mut().scan;
        if !more {
            if scan.quoted {
                return Err(Error::new(
                    ErrorKind::InvalidText,
                    format!(
                        "malformed CSV: the quoted field opened on line {} never ends",
                        scan.opened_on
                    ),
                )
                .with_hint(
                    "A quote inside a quoted field is written twice (\"\"); nothing was imported.",
                ));
            }
            return Ok(None);
        }
        let start = self.record.position().map_or(0, |p| p.byte());
        Ok(Some(scan.line_at(start)))
    }
}

impl<R: Read + Seek> Records for CsvRecords<R> {
    fn header(&mut self) -> Result<Option<Header>> {
        if self.next_byte_record()?.is_none() {
            return Ok(None);
        }
        let names = self
            .record
            .iter()
            .map(|h| {
                decode(h, self.encoding)
                    .map(|h| h.trim().to_string())
                    .ok_or_else(|| {
                        Error::new(ErrorKind::InvalidText, "the header line is not valid UTF-8")
                            .with_hint(
                            "Set the encoding option: {\"encoding\": \"latin1\"} (or windows-1252).",
                        )
                    })
            })
            .collect::<Result<Vec<String>>>()?;
        let letters = (0..names.len()).map(column_letters).collect();
        Ok(Some(Header {
            names,
            letters,
            line: 1,
        }))
    }

    fn next(
        &mut self,
        record: &mut csv::ByteRecord,
        _problems: &mut Vec<(usize, String)>,
    ) -> Result<Option<u64>> {
        let line = self.next_byte_record()?;
        std::mem::swap(record, &mut self.record);
        Ok(line)
    }

    fn rewind(&mut self) -> Result<()> {
        self.reader
            .seek_raw(SeekFrom::Start(self.bom), csv::Position::new())
            .map_err(|e| unreadable(&e))?;
        self.header().map(|_| ())
    }

    fn progress(&self) -> (u64, u64) {
        (self.bom + self.reader.position().byte(), self.size)
    }
}
