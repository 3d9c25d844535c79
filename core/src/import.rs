//! CSV import: options, header mapping, and reading rows into normalised,
//! validated contacts. Writing them is the database's part.
//!
//! Bytes are read with the `csv` crate and each field is decoded on its own
//! (`encoding_rs` for Latin-1/Windows-1252), so one undecodable row is
//! reported rather than failing the file.

use crate::error::{Error, ErrorKind, Result};
use crate::fields::{coerce, custom_field_name, FieldType};
use crate::normalize;
use crate::rules::check::parse_time;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::Cursor;
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
        }
    }
}

const OPTION_NAMES: &str =
    "segment, tags, source, on_conflict, insert, mapping, delimiter, encoding, create_fields";

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
    /// Reads the `options` jsonb of `import_csv`; unknown names and
    /// ill-typed values are errors (22023).
    pub fn from_json(json: &Value) -> Result<Options> {
        let mut options = Options::default();
        let object = match json {
            Value::Null => return Ok(options),
            Value::Object(object) => object,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    "import options must be a JSON object",
                )
                .with_hint(format!("Known options: {OPTION_NAMES}.")))
            }
        };
        for (name, value) in object {
            let text = || value.as_str().map(str::trim).filter(|t| !t.is_empty());
            match name.as_str() {
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
                    .with_hint(format!("Known options: {OPTION_NAMES}.")))
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
pub fn plan(
    headers: Vec<String>,
    options: &Options,
    custom: &[(String, FieldType)],
) -> Result<Plan> {
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
    for header in &headers {
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
                    line: 1,
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
        targets,
        new_fields,
        skipped,
    })
}

/// How many rows (not cells, not skipped columns) the rejections name.
pub fn rejected_rows(rejections: &[Rejection]) -> usize {
    rejections
        .iter()
        .filter(|r| r.line > 1)
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

fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data)
}

/// The delimiter option's, or the one detected in `data` (without a BOM).
fn delimiter(data: &[u8], options: &Options) -> u8 {
    options.delimiter.unwrap_or_else(|| detect_delimiter(data))
}

fn reader<'a>(data: &'a [u8], options: &Options) -> csv::Reader<Cursor<&'a [u8]>> {
    let data = strip_bom(data);
    csv::ReaderBuilder::new()
        .delimiter(delimiter(data, options))
        .has_headers(true)
        .flexible(true)
        .from_reader(Cursor::new(data))
}

fn decode(bytes: &[u8], encoding: Encoding) -> Option<Cow<'_, str>> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        Encoding::Windows1252 => Some(
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0,
        ),
    }
}

/// The file's headers; an empty file has none.
pub fn headers(data: &[u8], options: &Options) -> Result<Vec<String>> {
    let mut reader = reader(data, options);
    let record = reader.byte_headers().map_err(|e| malformed(1, &e))?;
    record
        .iter()
        .map(|h| {
            decode(h, options.encoding)
                .map(|h| h.trim().to_string())
                .ok_or_else(|| {
                    Error::new(ErrorKind::InvalidText, "the header line is not valid UTF-8")
                        .with_hint(
                        "Pass the file as bytea with {\"encoding\": \"latin1\"} (or windows-1252).",
                    )
                })
        })
        .collect()
}

fn malformed(line: u64, error: &csv::Error) -> Error {
    Error::new(
        ErrorKind::InvalidText,
        format!("malformed CSV at line {line}: {error}"),
    )
}

/// How many lines end in `bytes`: at LF, CRLF or a lone CR, as the csv
/// crate ends records.
fn line_ends(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'\n' || (**b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count() as u64
}

/// Line numbers of record starts. The csv crate's own count is one short
/// after CRLF line ends, so lines are counted from byte offsets instead.
struct Lines<'a> {
    data: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(data: &'a [u8]) -> Self {
        Lines {
            data,
            offset: 0,
            line: 1,
        }
    }

    /// The line on which the record starting at byte `start` begins.
    fn at(&mut self, start: u64) -> u64 {
        let mut start = (start as usize).min(self.data.len());
        while start < self.data.len() && matches!(self.data[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.offset {
            self.line += line_ends(&self.data[self.offset..start]);
            self.offset = start;
        }
        self.line
    }
}

/// Raises when a quoted field never ends, which the csv crate reads as one
/// field running to the end of the file. Quotes count only at the start of
/// a field, as the csv crate reads them.
fn check_quotes(data: &[u8], delimiter: u8) -> Result<()> {
    let (mut quoted, mut field_start, mut line, mut opened_on) = (false, true, 1, 0);
    let mut bytes = data.iter().peekable();
    while let Some(&byte) = bytes.next() {
        if quoted {
            if byte == b'"' {
                if bytes.peek() == Some(&&b'"') {
                    bytes.next();
                } else {
                    quoted = false;
                }
            }
        } else if field_start && byte == b'"' {
            quoted = true;
            opened_on = line;
        }
        field_start = byte == delimiter || byte == b'\n' || byte == b'\r';
        if byte == b'\n' || (byte == b'\r' && bytes.peek() != Some(&&b'\n')) {
            line += 1;
        }
    }
    if quoted {
        return Err(Error::new(
            ErrorKind::InvalidText,
            format!("malformed CSV: the quoted field opened on line {opened_on} never ends"),
        )
        .with_hint(
            "A quote inside a quoted field is written twice (\"\"); nothing was imported.",
        ));
    }
    Ok(())
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
/// previous batch, and how many bytes are read. Memory holds one batch plus
/// a hash per email. Returns how many rows the file has.
pub fn read(
    data: &[u8],
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
    let data_without_bom = strip_bom(data);
    check_quotes(data_without_bom, delimiter(data_without_bom, options))?;
    let start_line = |record: &csv::ByteRecord, lines: &mut Lines| {
        lines.at(record.position().map_or(0, |p| p.byte()))
    };
    // First pass: the line on which each email last occurs (last wins).
    let mut email_keys = EmailKeys::new();
    let mut last_line: HashMap<u64, u64, foldhash::fast::FixedState> = HashMap::default();
    let mut repeated: HashSet<u64, foldhash::fast::FixedState> = HashSet::default();
    let mut reader = reader(data, options);
    reader.byte_headers().map_err(|e| malformed(1, &e))?;
    let first_record = reader.position().clone();
    let mut lines = Lines::new(data_without_bom);
    let mut record = csv::ByteRecord::new();
    let email_key = |record: &csv::ByteRecord, email_keys: &mut EmailKeys| {
        let email = record
            .get(email_column)
            .and_then(|e| decode(e, options.encoding))
            .unwrap_or_default();
        email_keys.key(&email)
    };
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| malformed(lines.line, &e))?
    {
        let key = email_key(&record, &mut email_keys);
        if last_line
            .insert(key, start_line(&record, &mut lines))
            .is_some()
        {
            repeated.insert(key);
        }
    }
    // Where an email repeats, the last row that is valid wins (a malformed
    // last row would otherwise leave none): those rows alone are checked
    // in a pass of their own.
    if !repeated.is_empty() {
        reader
            .seek(first_record.clone())
            .map_err(|e| malformed(1, &e))?;
        let mut lines = Lines::new(data_without_bom);
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| malformed(lines.line, &e))?
        {
            let line = start_line(&record, &mut lines);
            let key = email_key(&record, &mut email_keys);
            if repeated.contains(&key) && read_row(&record, line, options, plan).is_ok() {
                last_line.insert(key, line);
            }
        }
    }
    reader.seek(first_record).map_err(|e| malformed(1, &e))?;
    let mut lines = Lines::new(data_without_bom);
    let mut rows = Vec::with_capacity(batch_size.min(100_000));
    let mut rejections = plan.skipped.clone();
    let mut total = 0;
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| malformed(lines.line, &e))?
    {
        total += 1;
        let line = start_line(&record, &mut lines);
        match read_row(&record, line, options, plan) {
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
        if rows.len() >= batch_size {
            on_batch(
                std::mem::take(&mut rows),
                std::mem::take(&mut rejections),
                reader.position().byte(),
            )?;
        }
    }
    on_batch(rows, rejections, data.len() as u64)?;
    Ok(total)
}

/// One record as a row, or every problem found in it.
pub fn read_row(
    record: &csv::ByteRecord,
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
                "not valid UTF-8; pass the file as bytea with the encoding option".to_string(),
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
        let options = Options::from_json(&options)?;
        let plan = plan(headers(data, &options)?, &options, &custom())?;
        let (mut rows, mut rejections) = (Vec::new(), Vec::new());
        read(data, &options, &plan, 2, |mut r, mut e, _| {
            rows.append(&mut r);
            rejections.append(&mut e);
            Ok(())
        })?;
        Ok((plan, rows, rejections))
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
        let seen: Vec<(u64, &str, Option<&str>)> = rejections
            .iter()
            .map(|r| (r.line, r.column.as_str(), r.value.as_deref()))
            .collect();
        assert_eq!(
            seen,
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
                Options::from_json(&bad).unwrap_err().kind,
                ErrorKind::InvalidParameter,
                "{bad}"
            );
        }
        let options = Options::from_json(
            &json!({"delimiter": "tab", "on_conflict": "fill", "tags": ["A", "a", "B"]}),
        )
        .unwrap();
        assert_eq!(options.delimiter, Some(b'\t'));
        assert_eq!(options.on_conflict, OnConflict::Fill);
        assert_eq!(options.tags, vec!["A", "B"]);
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
        let (_, rows, rejections) = import(data.as_bytes(), json!({})).unwrap();
        assert_eq!(rows[0].line, 2);
        assert_eq!(rejections[0].line, 3);
        assert_eq!(rejected_rows(&rejections), 1);
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
    }
}
