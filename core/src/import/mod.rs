//! Imports: options, header mapping, and reading rows into normalised,
//! validated contacts, whatever the input (CSV text or bytes, a CSV file on
//! the server, a workbook's sheet). Writing them is the database's part.
//!
//! Every input gives its rows as records of text cells ([`Records`]); one
//! mapping ([`plan`]) and one validation ([`read_row`]) follow. CSV bytes
//! are read with the `csv` crate and each field is decoded on its own
//! (`encoding_rs` for Latin-1/Windows-1252), so one undecodable row is
//! reported rather than failing the file.

mod csv_records;
mod sheet;

pub use self::csv_records::detect_delimiter;
use self::csv_records::CsvRecords;

use crate::error::{Error, ErrorKind, Result};
use crate::fields::{coerce, custom_field_name, FieldType};
use crate::normalize;
use crate::rules::check::parse_time;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::LazyLock;

/// What to do with a row whose email already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Non-empty cells replace stored values (the default).
    Update,
    /// The stored contact is left as it is.
    Skip,
    /// Only empty stored fields are filled.
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// Latin-1 is read as Windows-1252, its superset, as browsers do.
    Windows1252,
}

/// The two forms of input, which take different options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// An Excel or OpenDocument workbook.
    Workbook,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub segment: Option<String>,
    pub tags: Vec<String>,
    pub source: String,
    pub on_conflict: OnConflict,
    pub insert: bool,
    /// Header → target (`email`, `custom.budget`, `tags`; empty to skip).
    pub mapping: Vec<(String, String)>,
    pub delimiter: Option<u8>,
    pub encoding: Encoding,
    pub create_fields: bool,
    /// A workbook's sheet to read; the first when none.
    pub sheet: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment: None,
            tags: Vec::new(),
            source: "csv_import".to_string(),
            on_conflict: OnConflict::Update,
            insert: true,
            mapping: Vec::new(),
            delimiter: None,
            encoding: Encoding::Utf8,
            create_fields: false,
            sheet: None,
        }
    }
}

const COMMON_OPTIONS: &str = "segment, tags, source, on_conflict, insert, mapping, create_fields";

impl Format {
    /// The options this form takes, for hints.
    fn option_names(self) -> String {
        match self {
            Format::Csv => format!("{COMMON_OPTIONS}, delimiter, encoding"),
            Format::Workbook => format!("{COMMON_OPTIONS}, sheet"),
        }
    }

    /// What imported contacts' `source` is unless the options say.
    fn default_source(self) -> &'static str {
        match self {
            Format::Csv => "csv_import",
            Format::Workbook => "spreadsheet_import",
        }
    }
}

fn bad_option(name: &str, message: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!(
            "invalid value for import option \"{name}\": {}",
            message.into()
        ),
    )
}

impl Options {
    /// Reads the `options` jsonb of an import of `format`; unknown names,
    /// names of the other format's options and ill-typed values are
    /// errors (22023).
    pub fn from_json(json: &Value, format: Format) -> Result<Options> {
        let mut options = Options {
            source: format.default_source().to_string(),
            ..Options::default()
        };
        let object = match json {
            Value::Null => return Ok(options),
            Value::Object(object) => object,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    "import options must be a JSON object",
                )
                .with_hint(format!("Known options: {}.", format.option_names())))
            }
        };
        for (name, value) in object {
            let text = || value.as_str().map(str::trim).filter(|t| !t.is_empty());
            let elsewhere = match (name.as_str(), format) {
                ("delimiter" | "encoding", Format::Workbook) => Some("CSV"),
                ("sheet", Format::Csv) => Some("workbook"),
                _ => None,
            };
            if let Some(other) = elsewhere {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("the import option \"{name}\" applies to {other} imports only"),
                )
                .with_hint(format!("Known options: {}.", format.option_names())));
            }
            match name.as_str() {
                "sheet" => {
                    options.sheet = match value {
                        Value::Null => None,
                        _ => Some(
                            value
                                .as_str()
                                .ok_or_else(|| bad_option(name, "expected the name of a sheet"))?
                                .to_string(),
                        ),
                    }
                }
                "segment" => {
                    options.segment = match value {
                        Value::Null => None,
                        _ => Some(
                            text()
                                .ok_or_else(|| bad_option(name, "expected the name of a list"))?
                                .to_string(),
                        ),
                    }
                }
                "tags" => {
                    let tags = value
                        .as_array()
                        .ok_or_else(|| bad_option(name, "expected an array of tags"))?;
                    let tags: Option<Vec<&str>> = tags.iter().map(Value::as_str).collect();
                    options.tags = normalize::tags(
                        tags.ok_or_else(|| bad_option(name, "every tag must be a string"))?,
                    );
                }
                "source" => {
                    let source = text()
                        .map(|t| t.to_lowercase().replace([' ', '-'], "_"))
                        .ok_or_else(|| bad_option(name, "expected a word"))?;
                    if !is_word(&source) {
                        return Err(bad_option(
                            name,
                            format!("\"{source}\" is not a lower-case word"),
                        ));
                    }
                    options.source = source;
                }
                "on_conflict" => {
                    options.on_conflict = match text() {
                        Some("update") => OnConflict::Update,
                        Some("skip") => OnConflict::Skip,
                        Some("fill") => OnConflict::Fill,
                        _ => {
                            return Err(bad_option(name, format!("{value}"))
                                .with_hint("Use update, skip or fill."))
                        }
                    }
                }
                "insert" => {
                    options.insert = value
                        .as_bool()
                        .ok_or_else(|| bad_option(name, "expected true or false"))?
                }
                "create_fields" => {
                    options.create_fields = value
                        .as_bool()
                        .ok_or_else(|| bad_option(name, "expected true or false"))?
                }
                "mapping" => {
                    let mapping = value.as_object().ok_or_else(|| {
                        bad_option(name, "expected an object of header to field")
                            .with_hint("For example {\"E-mail Address\": \"email\", \"Budget\": \"custom.budget\"}.")
                    })?;
                    for (header, target) in mapping {
                        let target = match target {
                            Value::String(t) => t.trim().to_string(),
                            Value::Null => String::new(),
                            _ => {
                                return Err(bad_option(
                                    name,
                                    format!("the target of \"{header}\" must be a field name"),
                                ))
                            }
                        };
                        options.mapping.push((header.clone(), target));
                    }
                }
                "delimiter" => {
                    options.delimiter = match value.as_str() {
                        None if value.is_null() => None,
                        Some("auto") => None,
                        Some("\\t") | Some("tab") => Some(b'\t'),
                        Some(d)
                            if d.len() == 1
                                && matches!(d.as_bytes()[0], b',' | b';' | b'\t' | b'|') =>
                        {
                            Some(d.as_bytes()[0])
                        }
                        _ => {
                            return Err(bad_option(name, format!("{value}"))
                                .with_hint("Use \",\", \";\", \"|\", \"tab\" or \"auto\"."))
                        }
                    }
                }
                "encoding" => {
                    options.encoding = match text()
                        .map(|t| t.to_lowercase().replace(['-', '_'], ""))
                        .as_deref()
                    {
                        Some("utf8") => Encoding::Utf8,
                        Some("latin1") | Some("iso88591") | Some("windows1252")
                        | Some("cp1252") => Encoding::Windows1252,
                        _ => {
                            return Err(bad_option(name, format!("{value}"))
                                .with_hint("Use utf8, latin1 or windows-1252."))
                        }
                    }
                }
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!("unknown import option \"{other}\""),
                    )
                    .with_hint(format!("Known options: {}.", format.option_names())))
                }
            }
        }
        Ok(options)
    }
}

fn is_word(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The standard columns an import writes (`columns::Column::import`), in
/// the order rows carry them.
pub static COLUMNS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| crate::columns::names(|c| c.import));
/// Where rows carry the phone type, which the importer derives.
static PHONE_TYPE: LazyLock<usize> = LazyLock::new(|| {
    COLUMNS
        .iter()
        .position(|c| *c == "phone_type")
        .expect("imports write phone_type")
});

/// Where a CSV column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Index into [`COLUMNS`].
    Standard(usize),
    Custom(String, FieldType),
    Tags,
    Skip,
}

/// A header compared ignoring case, spaces, dashes and underscores.
fn squash(text: &str) -> String {
    text.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn resolve(name: &str, custom: &[(String, FieldType)]) -> Option<Target> {
    let key = squash(name);
    if key == "tags" || key == "tag" {
        return Some(Target::Tags);
    }
    // phone_type is derived from the phone, never read.
    if let Some(i) = COLUMNS
        .iter()
        .position(|c| squash(c) == key && *c != "phone_type")
    {
        return Some(Target::Standard(i));
    }
    let custom_key = squash(name.trim().strip_prefix("custom.").unwrap_or(name));
    custom
        .iter()
        .find(|(n, _)| squash(n) == custom_key)
        .map(|(n, t)| Target::Custom(n.clone(), *t))
}

/// How the file's columns map to fields, and what mapping found wrong.
#[derive(Debug)]
pub struct Plan {
    pub headers: Vec<String>,
    /// The line of the header, on which skipped columns are reported.
    pub header_line: u64,
    pub targets: Vec<Target>,
    /// Custom text fields to define first (`create_fields`).
    pub new_fields: Vec<String>,
    /// Columns skipped because nothing matched, reported on line 1.
    pub skipped: Vec<Rejection>,
}

impl Plan {
    pub fn reads(&self, column: &str) -> bool {
        let wanted = COLUMNS.iter().position(|c| *c == column);
        self.targets
            .iter()
            .any(|t| matches!(t, Target::Standard(i) if Some(*i) == wanted))
            || (column == "phone_type" && self.reads("phone"))
    }
}

/// Maps headers to fields: the `mapping` option first, then standard and
/// custom field names. Raises when no column holds emails.
pub fn plan(header: Header, options: &Options, custom: &[(String, FieldType)]) -> Result<Plan> {
    let Header {
        names: headers,
        letters,
        line: header_line,
    } = header;
    for (header, _) in &options.mapping {
        if !headers
            .iter()
            .any(|h| h == header || squash(h) == squash(header))
        {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("the mapping names \"{header}\", which is not a column of the file"),
            )
            .with_detail(format!("Columns: {}.", headers.join(", "))));
        }
    }
    let mut targets = Vec::with_capacity(headers.len());
    let mut new_fields: Vec<String> = Vec::new();
    let mut skipped = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        // Blank, or covered by a merged cell to its left in a workbook.
        if header.is_empty() {
            skipped.push(Rejection {
                line: header_line,
                column: format!("column {}", letters[i]),
                value: None,
                message: "the column has no header, skipped".to_string(),
            });
            targets.push(Target::Skip);
            continue;
        }
        let mapped = options
            .mapping
            .iter()
            .find(|(from, _)| from == header)
            .or_else(|| {
                options
                    .mapping
                    .iter()
                    .find(|(from, _)| squash(from) == squash(header))
            });
        let wanted = mapped.map(|(_, to)| to.as_str()).unwrap_or(header.as_str());
        if mapped.is_some_and(|(_, to)| to.is_empty()) {
            targets.push(Target::Skip);
            continue;
        }
        let target = match resolve(wanted, custom) {
            Some(target) => target,
            None if options.create_fields => {
                let name =
                    custom_field_name(wanted.trim().strip_prefix("custom.").unwrap_or(wanted))?;
                if !new_fields.contains(&name) {
                    new_fields.push(name.clone());
                }
                Target::Custom(name, FieldType::Text)
            }
            None if mapped.is_some() => {
                return Err(Error::new(ErrorKind::UndefinedObject, format!("the mapping sends \"{header}\" to an unknown field \"{wanted}\""))
                    .with_hint("Map to a standard field, custom.<name> of a defined custom field, tags, or null to skip the column; or set create_fields."));
            }
            None => {
                skipped.push(Rejection {
                    line: header_line,
                    column: header.clone(),
                    value: None,
                    message: "unknown column, skipped; map it or set create_fields to keep it"
                        .to_string(),
                });
                Target::Skip
            }
        };
        let taken = targets
            .iter()
            .any(|t| *t == target && target != Target::Skip);
        if taken {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("two columns of the file map to the same field as \"{header}\""),
            )
            .with_hint("Skip one of them with \"mapping\": {\"<header>\": null}."));
        }
        targets.push(target);
    }
    if !targets.contains(&Target::Standard(0)) {
        return Err(Error::new(ErrorKind::InvalidParameter, "the file has no email column")
            .with_detail(format!("Columns: {}.", headers.join(", ")))
            .with_hint("Name the column email, or map it: {\"mapping\": {\"E-mail Address\": \"email\"}}."));
    }
    Ok(Plan {
        headers,
        header_line,
        targets,
        new_fields,
        skipped,
    })
}

/// A column's name in a spreadsheet: A, B, …, Z, AA, AB, ….
pub fn column_letters(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        letters.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    letters.iter().rev().map(|b| *b as char).collect()
}

/// How many rows (not cells, not skipped columns) the rejections name.
pub fn rejected_rows(rejections: &[Rejection], plan: &Plan) -> usize {
    rejections
        .iter()
        .filter(|r| r.line > plan.header_line)
        .map(|r| r.line)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// CSV text with a header line, quoted where needed.
pub fn to_csv(header: &[String], records: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for record in std::iter::once(header.to_vec()).chain(records) {
        writer.write_record(record).expect("writing CSV to memory");
    }
    String::from_utf8(writer.into_inner().expect("CSV in memory")).expect("CSV of UTF-8 text")
}

/// A rejected row (or skipped column, on line 1), as the report lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub line: u64,
    pub column: String,
    pub value: Option<String>,
    pub message: String,
}

impl Rejection {
    /// As stored in the report. JSON in PostgreSQL cannot hold a NUL
    /// character: it is shown as U+FFFD, so that a report is always written.
    pub fn to_json(&self) -> Value {
        let shown = |text: &str| text.replace('\0', "\u{fffd}");
        serde_json::json!({"line": self.line, "column": shown(&self.column),
                           "value": self.value.as_deref().map(shown), "message": shown(&self.message)})
    }
}

/// A good row: standard values in [`COLUMNS`] order (None: empty cell),
/// custom values, tags (without the `tags` option's).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub values: Vec<Option<String>>,
    pub attributes: Map<String, Value>,
    pub tags: Vec<String>,
}

impl Row {
    pub fn email(&self) -> &str {
        self.values[0].as_deref().unwrap_or_default()
    }
}

pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> Option<Cow<'_, str>> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        Encoding::Windows1252 => Some(
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0,
        ),
    }
}

/// The names of a file's columns, the line they are on, and what each
/// column is called where it has no name (its spreadsheet letter).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub names: Vec<String>,
    pub letters: Vec<String>,
    pub line: u64,
}

/// The rows of one input, whatever its form: the one pipeline reads every
/// entry point's rows through this, twice (emails first), so a source can
/// start over.
pub trait Records {
    /// The header; none for an empty input.
    fn header(&mut self) -> Result<Option<Header>>;
    /// The next record and the line it starts on; none after the last.
    /// Cells the source could not give (a workbook's formula errors) are
    /// named in `problems`, by column, with why.
    fn next(
        &mut self,
        record: &mut csv::ByteRecord,
        problems: &mut Vec<(usize, String)>,
    ) -> Result<Option<u64>>;
    /// Back to the first record after the header.
    fn rewind(&mut self) -> Result<()>;
    /// How much is read, and of how much, in bytes or rows.
    fn progress(&self) -> (u64, u64);
}

/// Where an import's rows come from.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Csv(&'a [u8]),
    CsvFile(&'a Path),
    Workbook(&'a [u8]),
    WorkbookFile(&'a Path),
}

impl Input<'_> {
    pub fn format(&self) -> Format {
        match self {
            Input::Csv(_) | Input::CsvFile(_) => Format::Csv,
            Input::Workbook(_) | Input::WorkbookFile(_) => Format::Workbook,
        }
    }
}

/// The system's message for a failed file operation, as PostgreSQL words
/// it: without Rust's "(os error N)".
fn system_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.split_once(" (os error") {
        Some((reason, _)) => reason.to_string(),
        None => text,
    }
}

/// A file on the server, opened for reading; a directory or a missing
/// file is an error of its own.
pub fn open_file(path: &Path) -> Result<(File, u64)> {
    let shown = path.display();
    let failed = |error: std::io::Error| {
        let kind = match error.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::UndefinedFile,
            std::io::ErrorKind::PermissionDenied => ErrorKind::InsufficientPrivilege,
            _ => ErrorKind::Io,
        };
        Error::new(
            kind,
            format!(
                "could not open file \"{shown}\" for reading: {}",
                system_reason(&error)
            ),
        )
    };
    let file = File::open(path).map_err(failed)?;
    let metadata = file.metadata().map_err(failed)?;
    if metadata.is_dir() {
        return Err(Error::new(
            ErrorKind::WrongObjectType,
            format!("\"{shown}\" is a directory"),
        ));
    }
    Ok((file, metadata.len()))
}

/// The records of `input`, read as `options` say.
pub fn open<'a>(input: Input<'a>, options: &Options) -> Result<Box<dyn Records + 'a>> {
    Ok(match input {
        Input::Csv(data) => Box::new(CsvRecords::new(
            Cursor::new(data),
            data.len() as u64,
            options.delimiter,
            options.encoding,
        )?),
        Input::CsvFile(path) => {
            let (file, size) = open_file(path)?;
            Box::new(CsvRecords::new(
                file,
                size,
                options.delimiter,
                options.encoding,
            )?)
        }
        Input::Workbook(data) => Box::new(sheet::open(data, options.sheet.as_deref())?),
        Input::WorkbookFile(path) => {
            let (mut file, size) = open_file(path)?;
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!(
                        "could not read file \"{}\": {}",
                        path.display(),
                        system_reason(&e)
                    ),
                )
            })?;
            Box::new(sheet::open(&data, options.sheet.as_deref())?)
        }
    })
}

/// Hashes emails as the importer stores them (trimmed, lower case),
/// without allocating for each: both passes over a file use one.
struct EmailKeys {
    state: foldhash::quality::RandomState,
    folded: String,
}

impl EmailKeys {
    fn new() -> Self {
        EmailKeys {
            state: foldhash::quality::RandomState::default(),
            folded: String::new(),
        }
    }

    fn key(&mut self, email: &str) -> u64 {
        let email = email.trim();
        self.folded.clear();
        if email.is_ascii() {
            self.folded.push_str(email);
            self.folded.make_ascii_lowercase();
        } else {
            // As the email is stored: str::to_lowercase knows final sigma.
            self.folded.push_str(&email.to_lowercase());
        }
        self.state.hash_one(self.folded.as_str())
    }
}

/// Reads rows in batches: `on_batch` gets good rows (at most `batch_size`,
/// the last occurrence of each email only), the rejections found since the
/// previous batch, and how far reading has come. Memory holds one batch,
/// a hash per email while the first pass runs, and the last line of each
/// repeated email. Returns how many rows the input has.
pub fn read(
    records: &mut dyn Records,
    options: &Options,
    plan: &Plan,
    batch_size: usize,
    mut on_batch: impl FnMut(Vec<Row>, Vec<Rejection>, u64) -> Result<()>,
) -> Result<u64> {
    let email_column = plan
        .targets
        .iter()
        .position(|t| *t == Target::Standard(0))
        .expect("planned");
    let mut record = csv::ByteRecord::new();
    let mut problems = Vec::new();
    // First pass: which emails repeat, and the line each of those last
    // occurs on (last wins). Emails that occur once are only hashed into
    // `seen`, which goes after this pass: 8 bytes an email.
    let mut email_keys = EmailKeys::new();
    let mut last_line: HashMap<u64, u64, foldhash::fast::FixedState> = HashMap::default();
    let email_key = |record: &csv::ByteRecord, email_keys: &mut EmailKeys| {
        let email = record
            .get(email_column)
            .and_then(|e| decode(e, options.encoding))
            .unwrap_or_default();
        email_keys.key(&email)
    };
    {
        let mut seen: HashSet<u64, foldhash::fast::FixedState> = HashSet::default();
        while let Some(line) = records.next(&mut record, &mut problems)? {
            problems.clear();
            let key = email_key(&record, &mut email_keys);
            if !seen.insert(key) {
                last_line.insert(key, line);
            }
        }
    }
    // Where an email repeats, the last row that is valid wins (a malformed
    // last row would otherwise leave none): those rows alone are checked
    // in a pass of their own.
    if !last_line.is_empty() {
        records.rewind()?;
        while let Some(line) = records.next(&mut record, &mut problems)? {
            let key = email_key(&record, &mut email_keys);
            if last_line.contains_key(&key)
                && read_row(&record, &problems, line, options, plan).is_ok()
            {
                last_line.insert(key, line);
            }
            problems.clear();
        }
    }
    records.rewind()?;
    let mut rows = Vec::with_capacity(batch_size.min(100_000));
    let mut rejections = plan.skipped.clone();
    let mut total = 0;
    while let Some(line) = records.next(&mut record, &mut problems)? {
        total += 1;
        match read_row(&record, &problems, line, options, plan) {
            Ok(row) => {
                let last = last_line
                    .get(&email_keys.key(row.email()))
                    .copied()
                    .unwrap_or(line);
                if last != line {
                    rejections.push(Rejection {
                        line,
                        column: plan.headers[email_column].clone(),
                        value: Some(row.email().to_string()),
                        message: format!("duplicate email: line {last} has the same one and wins"),
                    });
                } else {
                    rows.push(row);
                }
            }
            Err(mut found) => rejections.append(&mut found),
        }
        problems.clear();
        if rows.len() >= batch_size {
            on_batch(
                std::mem::take(&mut rows),
                std::mem::take(&mut rejections),
                records.progress().0,
            )?;
        }
    }
    on_batch(rows, rejections, records.progress().1)?;
    Ok(total)
}

/// One record as a row, or every problem found in it.
pub fn read_row(
    record: &csv::ByteRecord,
    unreadable: &[(usize, String)],
    line: u64,
    options: &Options,
    plan: &Plan,
) -> std::result::Result<Row, Vec<Rejection>> {
    let mut problems = Vec::new();
    if record.len() != plan.headers.len() {
        let message = format!(
            "the row has {} fields, the header {}; check the quoting of the lines before",
            record.len(),
            plan.headers.len()
        );
        return Err(vec![Rejection {
            line,
            column: String::new(),
            value: None,
            message,
        }]);
    }
    let mut row = Row {
        line,
        values: vec![None; COLUMNS.len()],
        attributes: Map::new(),
        tags: Vec::new(),
    };
    let mut reject = |column: &str, value: &str, message: String| {
        problems.push(Rejection {
            line,
            column: column.to_string(),
            value: Some(value.to_string()),
            message,
        });
    };
    let mut cells: Vec<(usize, Cow<str>)> = Vec::new();
    for (i, bytes) in record.iter().enumerate() {
        if plan.targets[i] == Target::Skip {
            continue;
        }
        if let Some((_, why)) = unreadable.iter().find(|(column, _)| *column == i) {
            reject(
                &plan.headers[i],
                &String::from_utf8_lossy(bytes),
                why.clone(),
            );
            continue;
        }
        match decode(bytes, options.encoding) {
            // Text in PostgreSQL cannot hold a NUL character.
            Some(text) if text.contains('\0') => reject(
                &plan.headers[i],
                &text,
                "contains a NUL character (byte 0), which text cannot hold".to_string(),
            ),
            Some(text) => cells.push((i, text)),
            None => reject(
                &plan.headers[i],
                &String::from_utf8_lossy(bytes),
                "not valid UTF-8; set the encoding option (latin1, windows-1252)".to_string(),
            ),
        }
    }
    for (i, text) in &cells {
        let header = &plan.headers[*i];
        let value = text.trim();
        match &plan.targets[*i] {
            Target::Tags => row.tags = normalize::tags(value.split([',', ';'])),
            Target::Custom(name, kind) => {
                match coerce(name, *kind, &Value::String(value.to_string())) {
                    Ok(Value::Null) => {}
                    Ok(coerced) => {
                        row.attributes.insert(name.clone(), coerced);
                    }
                    Err(error) => reject(header, value, error.message),
                }
            }
            Target::Standard(c) if value.is_empty() => row.values[*c] = None,
            Target::Standard(c) => match standard(COLUMNS[*c], value) {
                Ok(v) => row.values[*c] = Some(v),
                Err(message) => reject(header, value, message),
            },
            Target::Skip => {}
        }
    }
    if row.values[0].is_none() && problems.is_empty() {
        let column = plan
            .targets
            .iter()
            .position(|t| *t == Target::Standard(0))
            .map(|i| plan.headers[i].clone());
        problems.push(Rejection {
            line,
            column: column.unwrap_or_default(),
            value: None,
            message: "no email".to_string(),
        });
    }
    if let Some(phone) = row.values[5].take() {
        let parsed = normalize::phone(&phone, row.values[7].as_deref());
        row.values[5] = Some(parsed.number);
        row.values[*PHONE_TYPE] = Some(parsed.kind.as_str().to_string());
    }
    if problems.is_empty() {
        Ok(row)
    } else {
        Err(problems)
    }
}

/// A standard field's stored form, or why the value is refused.
fn standard(column: &str, value: &str) -> std::result::Result<String, String> {
    let one_of = |allowed: &[&str]| {
        let lower = value.to_lowercase();
        if allowed.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(format!("{column} must be one of: {}", allowed.join(", ")))
        }
    };
    match column {
        "email" => normalize::email(value).map_err(|e| e.message),
        "country" => normalize::country(value).map_err(|e| e.message),
        "status" => one_of(&["active", "unsubscribed", "bounced"]),
        "lead_status" => one_of(&["new", "nurture", "hot", "warm", "cold"]),
        "source" => {
            let lower = value.to_lowercase().replace([' ', '-'], "_");
            if is_word(&lower) {
                Ok(lower)
            } else {
                Err("a source is a lower-case word".to_string())
            }
        }
        "reachability" => match value.parse::<i32>() {
            Ok(n) if (0..=100).contains(&n) => Ok(n.to_string()),
            _ => Err("reachability is a whole number from 0 to 100".to_string()),
        },
        // Checked here, read by PostgreSQL, so fractions of seconds stay.
        "created_at" => parse_time(value).map(|_| value.to_string()).ok_or_else(|| {
            "a timestamp looks like 2026-01-31 or 2026-01-31T09:30:00Z, in the years 1 to 9999"
                .to_string()
        }),
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn custom() -> Vec<(String, FieldType)> {
        vec![
            ("budget".to_string(), FieldType::Number),
            ("signed_up".to_string(), FieldType::Date),
        ]
    }

    fn import(data: &[u8], options: Value) -> Result<(Plan, Vec<Row>, Vec<Rejection>)> {
        import_from(Input::Csv(data), options)
    }

    /// Each rejection's line, column and value.
    fn line_column_value(rejections: &[Rejection]) -> Vec<(u64, &str, Option<&str>)> {
        rejections
            .iter()
            .map(|r| (r.line, r.column.as_str(), r.value.as_deref()))
            .collect()
    }

    fn import_from(input: Input, options: Value) -> Result<(Plan, Vec<Row>, Vec<Rejection>)> {
        let options = Options::from_json(&options, input.format())?;
        read_all(open(input, &options)?, &options)
    }

    /// Every row and rejection of `records`, through the plan of its header.
    fn read_all(
        mut records: Box<dyn Records + '_>,
        options: &Options,
    ) -> Result<(Plan, Vec<Row>, Vec<Rejection>)> {
        let header = records.header()?.unwrap_or(Header {
            names: Vec::new(),
            letters: Vec::new(),
            line: 1,
        });
        let plan = plan(header, options, &custom())?;
        let (mut rows, mut rejections) = (Vec::new(), Vec::new());
        read(&mut *records, options, &plan, 2, |mut r, mut e, _| {
            rows.append(&mut r);
            rejections.append(&mut e);
            Ok(())
        })?;
        Ok((plan, rows, rejections))
    }

    /// What reading `data` as CSV gives: at once, or a byte per read.
    fn csv_read(data: &[u8], trickled: bool) -> Result<(Vec<Row>, Vec<Rejection>)> {
        let options = Options::from_json(&json!({}), Format::Csv)?;
        let records: Box<dyn Records> = if trickled {
            Box::new(CsvRecords::new(
                Trickle(Cursor::new(data)),
                0,
                None,
                Encoding::Utf8,
            )?)
        } else {
            open(Input::Csv(data), &options)?
        };
        read_all(records, &options).map(|(_, rows, rejections)| (rows, rejections))
    }

    #[test]
    fn headers_match_fields_loosely() {
        let data = "\u{feff}E-Mail,First Name,LAST_NAME,Budget,Signed-Up,Tags,Shoe Size\r\nA@Example.com,Ann,Lee,1200.50,2026-01-02,VIP; buyer,42\r\n";
        let (plan, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert_eq!(plan.targets[0], Target::Standard(0));
        assert_eq!(plan.targets[6], Target::Skip);
        assert_eq!(rejections.len(), 1);
        assert_eq!(rejections[0].line, 1);
        assert_eq!(rejections[0].column, "Shoe Size");
        let row = &rows[0];
        assert_eq!(row.email(), "a@example.com");
        assert_eq!(row.values[1].as_deref(), Some("Ann"));
        assert_eq!(row.attributes["budget"].to_string(), "1200.50");
        assert_eq!(row.tags, vec!["VIP", "buyer"]);
    }

    #[test]
    fn semicolons_quotes_and_newlines() {
        let data = "email;city;company\nann@example.com;\"Saint-Denis\";\"Line one\nline two; still\"\nbob@example.com;Paris;\n";
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert!(rejections.is_empty());
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].values[3].as_deref(),
            Some("Line one\nline two; still")
        );
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn bad_rows_are_reported_with_line_column_value() {
        let data = "email,budget,country,lead_status\nnot-an-email,5,DE,hot\nann@example.com,lots,Narnia,hot\ncy@example.com,1,de,HOT\n";
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].values[7].as_deref(), Some("DE"));
        assert_eq!(rows[0].values[10].as_deref(), Some("hot"));
        assert_eq!(
            line_column_value(&rejections),
            vec![
                (2, "email", Some("not-an-email")),
                (3, "budget", Some("lots")),
                (3, "country", Some("Narnia"))
            ]
        );
    }

    #[test]
    fn nul_characters_and_year_zero_reject_their_row_only() {
        let data = "email,city,tags,created_at,signed_up\n\
                    a@example.com,Ro\0me,,,\n\
                    b@example.com,,V\0IP,,\n\
                    c@example.com,,,0000-01-01,\n\
                    d@example.com,,,,0000-01-01\n\
                    e@example.com,Oslo,VIP,2026-01-02,2026-01-03\n";
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].email(), "e@example.com");
        let seen: Vec<(u64, &str)> = rejections
            .iter()
            .map(|r| (r.line, r.column.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (2, "city"),
                (3, "tags"),
                (4, "created_at"),
                (5, "signed_up")
            ]
        );
        // The report shows the NUL as U+FFFD: PostgreSQL's JSON cannot hold it.
        assert_eq!(rejections[0].to_json()["value"], json!("Ro\u{fffd}me"));
    }

    #[test]
    fn duplicate_emails_last_wins() {
        let data =
            "email,city\nann@example.com,Rome\nbob@example.com,Oslo\n ANN@example.com ,Lima\n";
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| r.values[8].clone().unwrap())
                .collect::<Vec<_>>(),
            vec!["Oslo", "Lima"]
        );
        assert_eq!(rejections.len(), 1);
        assert_eq!(rejections[0].line, 2);
        assert!(rejections[0].message.contains("line 4"));
    }

    #[test]
    fn the_last_valid_row_of_an_email_wins() {
        let data = "email,city,reachability\nann@example.com,Rome,1\nann@example.com,Oslo,2\nANN@example.com,Lima,500\n";
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].values[8].as_deref(), Some("Oslo"));
        let seen: Vec<(u64, &str)> = rejections
            .iter()
            .map(|r| (r.line, r.message.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (2, "duplicate email: line 3 has the same one and wins"),
                (4, "reachability is a whole number from 0 to 100")
            ]
        );
        // With no valid row, each is reported for what is wrong with it.
        let data = "email,reachability\nbo@example.com,500\nbo@example.com,600\n";
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert!(rows.is_empty());
        assert_eq!(rejections.len(), 2);
        assert!(rejections.iter().all(|r| r.column == "reachability"));
    }

    #[test]
    fn latin1_bytes_decode_when_asked_and_are_reported_otherwise() {
        let data = b"email,city\nann@example.com,Z\xfcrich\n";
        let (_, rows, rejections) = import(data, json!({"encoding": "latin1"})).unwrap();
        assert!(rejections.is_empty());
        assert_eq!(rows[0].values[8].as_deref(), Some("Zürich"));
        let (_, rows, rejections) = import(data, json!({})).unwrap();
        assert!(rows.is_empty());
        assert_eq!(rejections[0].column, "city");
        assert_eq!(rejections[0].value.as_deref(), Some("Z\u{fffd}rich"));
    }

    #[test]
    fn mapping_and_missing_email() {
        let data = "E-mail Address,Town,Budget\nann@example.com,Rome,7\n";
        let error = import(data.as_bytes(), json!({})).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidParameter);
        assert!(error
            .detail
            .unwrap()
            .contains("E-mail Address, Town, Budget"));
        let (_, rows, _) = import(
            data.as_bytes(),
            json!({"mapping": {"E-mail Address": "email", "Town": "city", "Budget": null}}),
        )
        .unwrap();
        assert_eq!(rows[0].values[8].as_deref(), Some("Rome"));
        assert!(rows[0].attributes.is_empty());
        let error = import(
            data.as_bytes(),
            json!({"mapping": {"E-mail Address": "email", "Town": "custom.town"}}),
        )
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::UndefinedObject);
        let (plan, rows, _) =
            import(data.as_bytes(), json!({"mapping": {"E-mail Address": "email", "Town": "custom.town"}, "create_fields": true})).unwrap();
        assert_eq!(plan.new_fields, vec!["town"]);
        assert_eq!(rows[0].attributes["town"], json!("Rome"));
    }

    #[test]
    fn options_are_checked() {
        for bad in [
            json!({"bogus": 1}),
            json!({"on_conflict": "merge"}),
            json!({"delimiter": "::"}),
            json!({"encoding": "ebcdic"}),
            json!({"tags": "vip"}),
            json!({"insert": "yes"}),
            json!({"source": "Web Form!"}),
            json!({"source": ""}),
            json!([1]),
        ] {
            assert_eq!(
                Options::from_json(&bad, Format::Csv).unwrap_err().kind,
                ErrorKind::InvalidParameter,
                "{bad}"
            );
        }
        let options = Options::from_json(
            &json!({"delimiter": "tab", "on_conflict": "fill", "tags": ["A", "a", "B"]}),
            Format::Csv,
        )
        .unwrap();
        assert_eq!(options.delimiter, Some(b'\t'));
        assert_eq!(options.on_conflict, OnConflict::Fill);
        assert_eq!(options.tags, vec!["A", "B"]);
        assert_eq!(options.source, "csv_import");
        // Each form refuses the other's options, and says which it takes.
        let error = Options::from_json(&json!({"delimiter": ";"}), Format::Workbook).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidParameter);
        assert!(error.hint.unwrap().contains("sheet"));
        let error = Options::from_json(&json!({"sheet": "Leads"}), Format::Csv).unwrap_err();
        assert!(error.message.contains("workbook"), "{}", error.message);
        let options = Options::from_json(&json!({"sheet": "Leads"}), Format::Workbook).unwrap();
        assert_eq!(options.sheet.as_deref(), Some("Leads"));
        assert_eq!(options.source, "spreadsheet_import");
    }

    #[test]
    fn delimiters_are_detected() {
        assert_eq!(detect_delimiter(b"a;b;c\n1;2;3"), b';');
        assert_eq!(detect_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter(b"\"a,b\"|c|d"), b'|');
        assert_eq!(detect_delimiter(b"email"), b',');
    }

    #[test]
    fn lines_count_crlf_and_quoted_newlines() {
        let data = "email,city\r\nann@example.com,\"R\r\nS\"\r\nbob@example.com,x\r\nbad,y\r\n";
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(rejections[0].line, 5);
    }

    #[test]
    fn lone_carriage_returns_end_lines() {
        let data = "email,city\rann@example.com,Rome\rbad,Oslo\r";
        let (plan, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert_eq!(rows[0].line, 2);
        assert_eq!(rejections[0].line, 3);
        assert_eq!(rejected_rows(&rejections, &plan), 1);
        let error = import(b"email,city\rq@example.com,\"Rome\r", json!({})).unwrap_err();
        assert!(error.message.contains("line 2"), "{}", error.message);
    }

    #[test]
    fn an_unterminated_quote_fails_the_file() {
        let data = "email,city\nq1@example.com,\"Rome\nq2@example.com,Oslo\n";
        let error = import(data.as_bytes(), json!({})).unwrap_err();
        assert!(error.message.contains("line 2"), "{}", error.message);
        let fine = "email,company\nq1@example.com,5\" Screens\nq2@example.com,\"Say \"\"hi\"\"\"\n";
        let (_, rows, _) = import(fine.as_bytes(), json!({})).unwrap();
        assert_eq!(rows[0].values[3].as_deref(), Some("5\" Screens"));
        assert_eq!(rows[1].values[3].as_deref(), Some("Say \"hi\""));
    }

    #[test]
    fn ragged_rows_are_rejected() {
        let data = "email,city\nann@example.com,Rome,extra\nbob@example.com\n";
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert!(rows.is_empty());
        assert_eq!(
            rejections.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    /// An .xlsx of two sheets: "Contacts" with every kind of cell, and
    /// "Leads".
    fn workbook() -> Vec<u8> {
        use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
        let mut book = Workbook::new();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let sheet = book.add_worksheet().set_name("Contacts").unwrap();
        // The header is the first row that is not blank, row 2; column E
        // has none, and "Company" is merged over F:G (G holds nothing, so
        // it is no column of the import).
        for (column, name) in ["Email", "Budget", "Signed up", "VIP"].iter().enumerate() {
            sheet.write_string(1, column as u16, *name).unwrap();
        }
        sheet
            .merge_range(1, 5, 1, 6, "Company", &Format::new())
            .unwrap();
        sheet.write_string(1, 7, "Phone").unwrap();
        sheet.write_string(2, 0, "ann@example.com").unwrap();
        sheet.write_number(2, 1, 99000.50000000001).unwrap();
        let signed_up = ExcelDateTime::from_ymd(2026, 1, 2).unwrap();
        sheet
            .write_datetime_with_format(2, 2, &signed_up, &date)
            .unwrap();
        sheet.write_boolean(2, 3, true).unwrap();
        sheet.write_string(2, 4, "no header").unwrap();
        sheet.write_string(2, 5, "Acme").unwrap();
        sheet.write_number(2, 7, 4915112345678.0).unwrap();
        // A blank row is skipped; a formula's cached value is read.
        sheet.write_string(4, 0, "bob@example.com").unwrap();
        sheet
            .write_formula(4, 1, Formula::new("=6*7").set_result("42"))
            .unwrap();
        sheet.write_string(4, 2, "someday").unwrap();
        sheet.write_string(5, 0, "not an email").unwrap();
        let leads = book.add_worksheet().set_name("Leads").unwrap();
        leads.write_string(0, 0, "email").unwrap();
        leads.write_string(1, 0, "cy@example.com").unwrap();
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn workbook_cells_arrive_as_the_fields_read_them() {
        let data = workbook();
        let (plan, rows, rejections) = import_from(Input::Workbook(&data), json!({})).unwrap();
        assert_eq!(plan.header_line, 2);
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3]);
        let ann = &rows[0];
        assert_eq!(ann.email(), "ann@example.com");
        assert_eq!(ann.attributes["budget"].to_string(), "99000.5");
        assert_eq!(ann.attributes["signed_up"], json!("2026-01-02"));
        assert_eq!(ann.values[3].as_deref(), Some("Acme"));
        // All its digits, not 4.91511E+12 as the cell shows in narrow columns.
        assert_eq!(ann.values[5].as_deref(), Some("4915112345678"));
        assert_eq!(
            line_column_value(&rejections),
            vec![
                (2, "VIP", None),
                (2, "column E", None),
                (5, "Signed up", Some("someday")),
                (6, "Email", Some("not an email")),
            ]
        );
        assert_eq!(rejected_rows(&rejections, &plan), 2);
        // Another sheet by name (case aside); an unknown one lists them all.
        let (_, rows, _) = import_from(Input::Workbook(&data), json!({"sheet": "leads"})).unwrap();
        assert_eq!(rows[0].email(), "cy@example.com");
        let error = import_from(Input::Workbook(&data), json!({"sheet": "Deals"})).unwrap_err();
        assert_eq!(error.kind, ErrorKind::UndefinedObject);
        assert_eq!(error.detail.as_deref(), Some("Sheets: Contacts, Leads."));
    }

    #[test]
    fn a_sheet_costs_its_cells_not_the_rectangle_they_span() {
        // A1 and XFD1048576: as a grid, 17 billion cells.
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "email").unwrap();
        sheet.write_string(1, 0, "ann@example.com").unwrap();
        sheet.write_string(1_048_575, 16_383, "far away").unwrap();
        let data = book.save_to_buffer().unwrap();
        let (_, rows, rejections) = import_from(Input::Workbook(&data), json!({})).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            line_column_value(&rejections),
            vec![(1, "column XFD", None), (1048576, "email", None)]
        );
    }

    #[test]
    fn opendocument_spreadsheets_are_read_too() {
        use spreadsheet_ods::{Sheet, WorkBook};
        let mut book = WorkBook::new_empty();
        let mut sheet = Sheet::new("People");
        sheet.set_value(0, 0, "email");
        sheet.set_value(0, 1, "signed_up");
        sheet.set_value(0, 2, "budget");
        sheet.set_value(1, 0, "ann@example.com");
        sheet.set_value(1, 1, chrono::NaiveDate::from_ymd_opt(2026, 3, 4).unwrap());
        sheet.set_value(1, 2, 1250.5);
        book.push_sheet(sheet);
        let data = spreadsheet_ods::write_ods_buf(&mut book, Vec::new()).unwrap();
        let (_, rows, rejections) = import_from(Input::Workbook(&data), json!({})).unwrap();
        assert!(rejections.is_empty(), "{rejections:?}");
        assert_eq!(rows[0].attributes["signed_up"], json!("2026-03-04"));
        assert_eq!(rows[0].attributes["budget"].to_string(), "1250.5");
    }

    #[test]
    fn what_is_no_workbook_is_refused_with_its_reason() {
        for data in [
            &b"email\nann@example.com\n"[..],
            b"",
            b"PK\x03\x04broken",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1broken",
        ] {
            let error = import_from(Input::Workbook(data), json!({})).unwrap_err();
            assert_eq!(error.kind, ErrorKind::BadFileFormat, "{data:?}");
        }
        // Office keeps a password-protected workbook encrypted in an OLE
        // container, as a stream named EncryptedPackage.
        let mut container = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        std::io::Write::write_all(
            &mut container.create_stream("EncryptedPackage").unwrap(),
            b"sealed",
        )
        .unwrap();
        container.flush().unwrap();
        let data = container.into_inner().into_inner();
        let error = import_from(Input::Workbook(&data), json!({})).unwrap_err();
        assert_eq!(error.kind, ErrorKind::BadFileFormat);
        assert!(error.message.contains("password"), "{}", error.message);
        // A sheet without cells is an empty import.
        let mut book = rust_xlsxwriter::Workbook::new();
        book.add_worksheet();
        let data = book.save_to_buffer().unwrap();
        let options = Options::from_json(&json!({}), Format::Workbook).unwrap();
        assert_eq!(
            open(Input::Workbook(&data), &options)
                .unwrap()
                .header()
                .unwrap(),
            None
        );
    }

    #[test]
    fn numbers_show_as_a_spreadsheet_shows_them() {
        assert_eq!(sheet::shown_number(99000.50000000001), "99000.5");
        assert_eq!(sheet::shown_number(0.1 + 0.2), "0.3");
        assert_eq!(sheet::shown_number(4915112345678.0), "4915112345678");
        assert_eq!(sheet::shown_number(-3.0), "-3");
        assert_eq!(sheet::shown_number(1234.5678), "1234.5678");
    }

    #[test]
    fn csv_read_a_byte_at_a_time_reads_the_same() {
        let data =
            "\u{feff}email;city\r\n\r\nann@example.com;\"R\r\nS\"\rbob@example.com;x\r\n\nbad;y";
        let whole = csv_read(data.as_bytes(), false);
        assert_eq!(whole, csv_read(data.as_bytes(), true));
        let (rows, rejections) = whole.unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 5]);
        assert_eq!(rejections[0].line, 7);
    }

    /// A reader that hands over one byte per read, as a slow file might.
    struct Trickle<R>(R);

    impl<R: Read> Read for Trickle<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    impl<R: std::io::Seek> std::io::Seek for Trickle<R> {
        fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
            self.0.seek(to)
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400), latin1 in any::<bool>()) {
            let options = json!({"encoding": if latin1 { "latin1" } else { "utf8" }, "create_fields": true});
            let _ = import(&data, options);
        }

        #[test]
        fn random_csv_text_never_panics(body in "[a-z@.,;\"\n\r \t|0-9é]{0,300}") {
            let data = format!("email,city,budget,tags\n{body}");
            let _ = import(data.as_bytes(), json!({}));
        }

        /// Streaming changes nothing: a file read a byte at a time gives the
        /// rows, lines and rejections of the same bytes read at once.
        #[test]
        fn csv_streamed_reads_as_csv_in_memory(body in "[a-z@.,;\"\n\r \t0-9]{0,300}") {
            let data = format!("email,city,budget\r\n{body}");
            prop_assert_eq!(csv_read(data.as_bytes(), false), csv_read(data.as_bytes(), true));
        }

        #[test]
        fn random_bytes_are_no_workbook_and_no_panic(data in proptest::collection::vec(any::<u8>(), 0..2000), zip in any::<bool>()) {
            let data = if zip { [&b"PK\x03\x04"[..], &data].concat() } else { data };
            let outcome = import_from(Input::Workbook(&data), json!({}));
            prop_assert!(outcome.is_err());
        }
    }
}
