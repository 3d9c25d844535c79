//! Imports (CSV text or bytes, CSV files on the server, workbooks) and CSV
//! export. Reading, mapping and validation are in `audience_core::import`,
//! one pipeline for every input; this writes good rows in batches of
//! `INSERT … SELECT FROM unnest(…) ON CONFLICT`, so the contacts triggers
//! (normalisation, segments, fit points) run per batch like any bulk write.

use crate::api::compat;
use crate::api::membership::{lock_bulk_writes, lock_rules};
use crate::api::plans;
use crate::api::rules::{current_tenant, tenant_catalogue};
use crate::error::{raise, OrRaise};
use audience_core::fields::STANDARD_FIELDS;
use audience_core::import::{self, Input, OnConflict, Options, Plan, Rejection, Row, COLUMNS};
use audience_core::{normalize, Error, ErrorKind};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{JsonB, PgMemoryContexts};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;

const BATCH_ROWS: usize = 10_000;
const NOTICE_EVERY: u64 = 100_000;

thread_local! {
    /// Set while this backend's importer writes rows it has normalised
    /// itself, to the start of the transaction doing it.
    static WRITING_NORMALISED: std::cell::Cell<Option<pg_sys::TimestampTz>> = const { std::cell::Cell::new(None) };
}

/// Whether the row being inserted comes from the importer, which has
/// already normalised and checked it (the contacts trigger then skips the
/// same work). Only `import_rows` can make it true, and only within its
/// own transaction, so no caller can use it to skip validation.
#[pg_extern(volatile, parallel_unsafe)]
fn importing_normalised_rows() -> bool {
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    WRITING_NORMALISED.with(|flag| flag.get() == Some(now))
}

/// Marks the importer's own writes for as long as it lives.
struct NormalisedWrites;

impl NormalisedWrites {
    fn start() -> Self {
        let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
        WRITING_NORMALISED.with(|flag| flag.set(Some(now)));
        NormalisedWrites
    }
}

impl Drop for NormalisedWrites {
    fn drop(&mut self) {
        WRITING_NORMALISED.with(|flag| flag.set(None));
    }
}

/// Counts of one import.
#[derive(Default)]
struct Tally {
    rows: u64,
    inserted: i64,
    updated: i64,
    unchanged: i64,
    rejected: i64,
}

/// A PostgreSQL array literal, so that a row's tags travel in one text[].
fn array_literal(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|t| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", quoted.join(","))
}

fn sql_type(column: &str) -> &'static str {
    match column {
        "reachability" => "integer",
        "created_at" => "timestamptz",
        _ => "text",
    }
}

/// The write statement for the file's columns; `$1` tenant, then one
/// text[] per column, attributes, tags (the option's included), and the
/// source option.
fn write_statement(plan: &Plan, options: &Options) -> (String, Vec<&'static str>) {
    let columns: Vec<&'static str> = COLUMNS.iter().copied().filter(|c| plan.reads(c)).collect();
    let n = columns.len();
    let unnest_args: Vec<String> = (0..n + 2).map(|i| format!("${}::text[]", i + 2)).collect();
    let names: Vec<String> = columns.iter().map(|c| format!("r_{c}")).collect();
    let source_param = n + 4;
    let typed: Vec<String> = columns
        .iter()
        .map(|c| match *c {
            "source" => format!("coalesce(r_source, ${source_param}) AS source"),
            "created_at" => "coalesce(r_created_at::timestamptz, now()) AS created_at".to_string(),
            c => format!("r_{c}::{} AS {c}", sql_type(c)),
        })
        .collect();
    let input = format!(
        "(SELECT {}{}, coalesce(r_tags::text[], '{{}}') AS tags,
                 coalesce(r_attributes::jsonb, '{{}}') AS attributes
            FROM unnest({}) AS r({}, r_attributes, r_tags)) AS x",
        typed.join(", "),
        if plan.reads("source") {
            String::new()
        } else {
            format!(", ${source_param}::text AS source")
        },
        unnest_args.join(", "),
        names.join(", ")
    );
    // What a matching stored contact becomes, from the file's row `new`.
    let merge = |new: &str| -> Vec<(String, String)> {
        columns
            .iter()
            .filter(|c| !matches!(**c, "email" | "created_at"))
            .map(|c| {
                let merged = match options.on_conflict {
                    OnConflict::Fill => format!("coalesce(c.{c}, {new}.{c})"),
                    _ => format!("coalesce({new}.{c}, c.{c})"),
                };
                (format!("c.{c}"), merged)
            })
            .chain([
                (
                    "c.tags".to_string(),
                    format!("audience.normalize_tags(c.tags || {new}.tags)"),
                ),
                (
                    "c.attributes".to_string(),
                    match options.on_conflict {
                        OnConflict::Fill => format!("{new}.attributes || c.attributes"),
                        _ => format!("c.attributes || {new}.attributes"),
                    },
                ),
            ])
            .collect()
    };
    let assignments = |new: &str| {
        let updates = merge(new);
        let set = updates
            .iter()
            .map(|(col, value)| format!("{} = {value}", &col[2..]))
            .collect::<Vec<_>>()
            .join(", ");
        let changed = format!(
            "({}) IS DISTINCT FROM ({})",
            updates
                .iter()
                .map(|(col, _)| col.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            updates
                .iter()
                .map(|(_, value)| value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        (set, changed)
    };
    let query = if options.insert {
        let mut target: Vec<&str> = columns.iter().copied().filter(|c| *c != "source").collect();
        target.extend(["source", "tags", "attributes"]);
        let action = match options.on_conflict {
            OnConflict::Skip => "NOTHING".to_string(),
            _ => {
                let (set, changed) = assignments("EXCLUDED");
                format!("UPDATE SET {set} WHERE {changed}")
            }
        };
        // The write's rows read back through a CTE: Citus counts the rows
        // of an INSERT … ON CONFLICT it ran apart from those it returns.
        format!(
            "WITH written AS (
                 INSERT INTO audience.contacts AS c (tenant_id, {targets})
                 SELECT $1::uuid, {values} FROM {input}
                 ON CONFLICT (tenant_id, email) DO {action}
                 RETURNING c.email, c.id, c.xmax = 0 AS inserted)
             SELECT * FROM written",
            targets = target.join(", "),
            values = target
                .iter()
                .map(|c| format!("x.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    } else {
        let (set, changed) = assignments("x");
        format!(
            "WITH written AS (
                 UPDATE audience.contacts AS c SET {set} FROM {input}
                  WHERE c.tenant_id = $1::uuid AND c.email = x.email AND {changed}
                 RETURNING c.email, c.id, false AS inserted)
             SELECT * FROM written"
        )
    };
    (query, columns)
}

/// Progress as `pg_stat_progress_copy` shows it (and `audience.import_progress`).
mod progress {
    use pgrx::pg_sys;

    pub fn start(total_bytes: u64) {
        let contacts = unsafe {
            pg_sys::RangeVarGetRelidExtended(
                pg_sys::makeRangeVar(
                    c"audience".as_ptr().cast_mut(),
                    c"contacts".as_ptr().cast_mut(),
                    -1,
                ),
                pg_sys::NoLock as _,
                0,
                None,
                std::ptr::null_mut(),
            )
        };
        unsafe {
            pg_sys::pgstat_progress_start_command(
                pg_sys::ProgressCommandType::PROGRESS_COMMAND_COPY,
                contacts,
            );
            pg_sys::pgstat_progress_update_param(
                pg_sys::PROGRESS_COPY_COMMAND as _,
                pg_sys::PROGRESS_COPY_COMMAND_FROM as _,
            );
            pg_sys::pgstat_progress_update_param(
                pg_sys::PROGRESS_COPY_TYPE as _,
                pg_sys::PROGRESS_COPY_TYPE_CALLBACK as _,
            );
            pg_sys::pgstat_progress_update_param(
                pg_sys::PROGRESS_COPY_BYTES_TOTAL as _,
                total_bytes as i64,
            );
        }
    }

    pub fn update(bytes: u64, rows: i64, rejected: i64) {
        unsafe {
            pg_sys::pgstat_progress_update_param(
                pg_sys::PROGRESS_COPY_BYTES_PROCESSED as _,
                bytes as i64,
            );
            pg_sys::pgstat_progress_update_param(pg_sys::PROGRESS_COPY_TUPLES_PROCESSED as _, rows);
            pg_sys::pgstat_progress_update_param(
                pg_sys::PROGRESS_COPY_TUPLES_EXCLUDED as _,
                rejected,
            );
        }
    }

    pub fn end() {
        unsafe { pg_sys::pgstat_progress_end_command() }
    }
}

/// Writes one batch; returns the ids of every contact the batch names
/// that exists afterwards, and updates the tally.
fn write_batch(
    query: &str,
    columns: &[&str],
    tenant: &str,
    options: &Options,
    rows: &mut [Row],
    tally: &mut Tally,
    rejections: &mut Vec<Value>,
) -> Written {
    if rows.is_empty() {
        return Written::default();
    }
    // Values move into the argument arrays; only the email stays, for
    // matching what the statement returns.
    let mut args: Vec<DatumWithOid> = vec![tenant.into()];
    for column in columns {
        let at = COLUMNS
            .iter()
            .position(|c| c == column)
            .expect("a known column");
        let kept = *column == "email";
        args.push(
            rows.iter_mut()
                .map(|r| {
                    if kept {
                        r.values[at].clone()
                    } else {
                        r.values[at].take()
                    }
                })
                .collect::<Vec<Option<String>>>()
                .into(),
        );
    }
    let attributes: Vec<Option<String>> = rows
        .iter_mut()
        .map(|r| {
            (!r.attributes.is_empty())
                .then(|| Value::Object(std::mem::take(&mut r.attributes)).to_string())
        })
        .collect();
    let tags: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            let tags = normalize::tags(r.tags.iter().chain(&options.tags).map(String::as_str));
            (!tags.is_empty()).then(|| array_literal(&tags))
        })
        .collect();
    args.push(attributes.into());
    args.push(tags.into());
    args.push(options.source.as_str().into());
    Spi::connect_mut(|client| {
        let written = {
            let _marked = NormalisedWrites::start();
            client.update(query, None, &args).expect("writing contacts")
        };
        let email_and_id = |row: &pgrx::spi::SpiHeapTupleData| {
            Some((row.get::<String>(1).ok()??, row.get::<pgrx::Uuid>(2).ok()??))
        };
        let (mut inserted, mut updated) = (0, 0);
        let mut found: HashMap<String, pgrx::Uuid> = HashMap::with_capacity(rows.len());
        let mut created: HashSet<pgrx::Uuid> = HashSet::new();
        for row in written {
            let Some((email, id)) = email_and_id(&row) else {
                continue;
            };
            match row.get::<bool>(3).ok().flatten() {
                Some(true) => {
                    inserted += 1;
                    created.insert(id);
                }
                _ => updated += 1,
            }
            found.insert(email, id);
        }
        // Rows the statement left alone (unchanged, skipped, or unknown
        // with insert false): looked up only when there are some.
        let untouched: Vec<String> = rows
            .iter()
            .map(Row::email)
            .filter(|e| !found.contains_key(*e))
            .map(str::to_string)
            .collect();
        if !untouched.is_empty() {
            // A join on unnest, on its generic plan: the email index is
            // probed row by row. `= ANY` of 10k emails was planned as a
            // scan of the whole table once it grew, and a custom plan for
            // a tenant new since the table's statistics hashed all of its
            // contacts, or scanned them all for each row.
            let existing = plans::generic(|| {
                plans::select(
                    client,
                    "SELECT c.email, c.id FROM unnest($2::text[]) AS e(email)
                       JOIN audience.contacts c ON c.tenant_id = $1::uuid AND c.email = e.email",
                    &[tenant.into(), untouched.into()],
                )
            })
            .expect("reading imported ids");
            found.extend(existing.filter_map(|row| email_and_id(&row)));
        }
        for row in rows.iter().filter(|r| !found.contains_key(r.email())) {
            rejections.push(
                Rejection {
                    line: row.line,
                    column: "email".to_string(),
                    value: Some(row.email().to_string()),
                    message: "no contact has this email, and the insert option is false"
                        .to_string(),
                }
                .to_json(),
            );
            tally.rejected += 1;
        }
        tally.inserted += inserted;
        tally.updated += updated;
        tally.unchanged += found.len() as i64 - inserted - updated;
        let (created, existing) = found.into_values().partition(|id| created.contains(id));
        Written { created, existing }
    })
}

/// The contacts one batch wrote or found.
#[derive(Default)]
struct Written {
    /// Contacts the batch inserted: in no list yet.
    created: Vec<pgrx::Uuid>,
    /// Contacts it updated or left as they were.
    existing: Vec<pgrx::Uuid>,
}

/// What an import did, as `audience.import_report` shows it.
pub(crate) struct Report {
    pub id: pgrx::Uuid,
    tally: Tally,
    list: Option<String>,
    errors: Vec<Value>,
}

/// Runs an import for the current tenant, records its report in
/// `audience.imports` and returns it (one row, which the import functions
/// return as an `import_report`). `form` says where rows come from: `csv`
/// or `workbook` bytes in `data`, or a `csv_file` or `workbook_file` at
/// `path` on the server.
#[pg_extern]
fn import_contacts(
    form: &str,
    data: Option<&[u8]>,
    path: Option<&str>,
    options: Option<JsonB>,
) -> TableIterator<
    'static,
    (
        name!(import_id, pgrx::Uuid),
        name!(rows, i64),
        name!(inserted, i64),
        name!(updated, i64),
        name!(unchanged, i64),
        name!(rejected, i64),
        name!(segment, Option<String>),
        name!(errors, JsonB),
    ),
> {
    let input = match (form, data, path) {
        ("csv", Some(data), _) => Input::Csv(data),
        ("workbook", Some(data), _) => Input::Workbook(data),
        ("csv_file", _, Some(path)) => Input::CsvFile(server_file(path)),
        ("workbook_file", _, Some(path)) => Input::WorkbookFile(server_file(path)),
        ("csv" | "workbook", None, _) => raise(Error::new(
            ErrorKind::InvalidParameter,
            "the data to import is null",
        )),
        ("csv_file" | "workbook_file", _, None) => raise(Error::new(
            ErrorKind::InvalidParameter,
            "the path of the file to import is null",
        )),
        (other, _, _) => raise(Error::new(
            ErrorKind::InvalidParameter,
            format!("unknown form of import \"{other}\""),
        )),
    };
    let options = options.unwrap_or(JsonB(Value::Object(Map::new())));
    let Report {
        id,
        tally,
        list,
        errors,
    } = import(input, options);
    TableIterator::once((
        id,
        tally.rows as i64,
        tally.inserted,
        tally.updated,
        tally.unchanged,
        tally.rejected,
        list,
        JsonB(Value::Array(errors)),
    ))
}

/// A file on the server the calling role may read: superusers and members
/// of pg_read_server_files only, as for COPY FROM a file, checked before
/// the file is opened. (The import functions run as the extension's
/// owner: the session's role is the one asking.)
fn server_file(path: &str) -> &Path {
    let role = unsafe { pg_sys::GetOuterUserId() };
    let allowed = unsafe {
        pg_sys::superuser_arg(role)
            || pg_sys::has_privs_of_role(role, pg_sys::Oid::from(pg_sys::ROLE_PG_READ_SERVER_FILES))
    };
    if !allowed {
        raise(
            Error::new(
                ErrorKind::InsufficientPrivilege,
                "only superusers and members of pg_read_server_files may import files on the database server",
            )
            .with_hint("Send the file's contents from the client instead, as the bytea argument of audience.import_csv or audience.import_xlsx."),
        );
    }
    Path::new(path)
}

/// Runs an import for the current tenant and records its report in
/// `audience.imports`.
pub(crate) fn import(input: Input, options: JsonB) -> Report {
    let tenant = current_tenant();
    let parsed = Options::from_json(&options.0, input.format()).or_raise();
    let mut tally = Tally::default();
    let mut errors: Vec<Value> = Vec::new();
    let mut records = import::open(input, &parsed).or_raise();
    let header = records.header().or_raise();
    // An empty input has no header, writes nothing and joins no list.
    let list = header.is_some().then(|| import_list(&parsed));
    if let (Some(list), Some(header)) = (&list, header) {
        let custom = tenant_catalogue(&tenant).custom.unwrap_or_default();
        let plan = import::plan(header, &parsed, &custom).or_raise();
        for name in &plan.new_fields {
            Spi::run_with_args(
                "SELECT audience.define_field($1, 'text')",
                &[name.as_str().into()],
            )
            .expect("running SQL");
        }
        // Other imports and bulk event statements of the tenant wait until
        // this one commits: they would lock the same contacts and segments
        // in another order.
        lock_rules(&tenant, false);
        lock_bulk_writes(&tenant);
        let (query, columns) = write_statement(&plan, &parsed);
        // The SQL of 0.1.0 takes a batch's contacts in one array.
        let separates_created = compat::installed() > compat::Release::V0_1_0;
        progress::start(records.progress().1);
        let mut next_notice = NOTICE_EVERY;
        let mut batch_memory = PgMemoryContexts::new("audience import batch");
        tally.rows = import::read(
            &mut *records,
            &parsed,
            &plan,
            BATCH_ROWS,
            |mut rows, rejected, read_so_far| {
                tally.rejected += import::rejected_rows(&rejected, &plan) as i64;
                errors.extend(rejected.iter().map(Rejection::to_json));
                // What PostgreSQL allocates for a batch (argument arrays, SPI
                // results) is freed with it, so memory stays that of one batch.
                unsafe {
                    batch_memory.switch_to(|_| {
                        let written = write_batch(
                            &query,
                            &columns,
                            &tenant,
                            &parsed,
                            &mut rows,
                            &mut tally,
                            &mut errors,
                        );
                        join_list(list, written, separates_created);
                    });
                    batch_memory.reset();
                }
                let done = tally.inserted + tally.updated + tally.unchanged + tally.rejected;
                progress::update(read_so_far, done, tally.rejected);
                if done as u64 >= next_notice {
                    notice!("audience import: {done} rows read");
                    next_notice += NOTICE_EVERY;
                }
                Ok(())
            },
        )
        .or_raise();
        progress::end();
    }
    let id = Spi::get_one_with_args::<pgrx::Uuid>(
        "INSERT INTO audience.imports (tenant_id, rows, inserted, updated, unchanged, rejected, segment, errors, options)
         VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING id",
        &[
            tenant.as_str().into(),
            (tally.rows as i64).into(),
            tally.inserted.into(),
            tally.updated.into(),
            tally.unchanged.into(),
            tally.rejected.into(),
            list.clone().into(),
            JsonB(Value::Array(errors.clone())).into(),
            options.into(),
        ],
    )
    .expect("running SQL")
    .expect("the import's id");
    Report {
        id,
        tally,
        list,
        errors,
    }
}

/// Adds a batch's contacts to the import's list. Those it created need
/// not be looked up there (~1.6 µs each).
fn join_list(list: &str, written: Written, separates_created: bool) {
    let Written {
        created,
        mut existing,
    } = written;
    if created.is_empty() && existing.is_empty() {
        return;
    }
    if separates_created {
        Spi::run_with_args(
            "SELECT audience.import_to_list($1, $2, $3)",
            &[list.into(), existing.into(), created.into()],
        )
    } else {
        existing.extend(created);
        Spi::run_with_args(
            "SELECT audience.import_to_list($1, $2)",
            &[list.into(), existing.into()],
        )
    }
    .expect("running SQL");
}

/// The static list imported contacts join: the `segment` option's (made
/// when missing) or a new `Import <timestamp>` list.
fn import_list(options: &Options) -> String {
    Spi::get_one_with_args::<String>(
        "SELECT audience.import_list($1)",
        &[options.segment.clone().into()],
    )
    .expect("running SQL")
    .expect("a list name")
}

/// The members of a segment as CSV: a header, then one line per member.
/// Columns are standard fields, `tags` (joined with `;`) and custom fields,
/// named as `import_csv` reads them back.
#[pg_extern]
fn export_csv(segment: &str, columns: default!(Option<Vec<String>>, "NULL")) -> String {
    let tenant = current_tenant();
    let custom: Vec<String> = tenant_catalogue(&tenant)
        .custom
        .unwrap_or_default()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let columns: Vec<String> = match columns {
        Some(given) => given.into_iter().map(|c| c.trim().to_lowercase()).collect(),
        None => COLUMNS
            .iter()
            .filter(|c| **c != "phone_type")
            .map(|c| c.to_string())
            .chain(["tags".to_string()])
            .chain(custom.iter().cloned())
            .collect(),
    };
    for column in &columns {
        let known = STANDARD_FIELDS.contains(&column.as_str()) && column != "attributes"
            || custom.contains(column);
        if !known {
            raise(
                Error::new(
                    ErrorKind::UndefinedObject,
                    format!("unknown column \"{column}\""),
                )
                .with_hint(format!(
                    "Standard fields, tags, or custom fields: {}.",
                    custom.join(", ")
                )),
            );
        }
    }
    let members: Vec<Map<String, Value>> = Spi::connect(|client| {
        client
            .select(
                "SELECT to_jsonb(m) FROM audience.members($1) m ORDER BY m.email",
                None,
                &[segment.into()],
            )
            .expect("running SQL")
            .filter_map(|row| match row.get::<JsonB>(1).ok().flatten() {
                Some(JsonB(Value::Object(object))) => Some(object),
                _ => None,
            })
            .collect()
    });
    let records = members.into_iter().map(|member| {
        columns
            .iter()
            .map(|column| {
                let value =
                    if custom.contains(column) && !STANDARD_FIELDS.contains(&column.as_str()) {
                        member
                            .get("attributes")
                            .and_then(|a| a.get(column))
                            .cloned()
                    } else {
                        member.get(column).cloned()
                    };
                match value {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => text,
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(";"),
                    Some(other) => other.to_string(),
                }
            })
            .collect()
    });
    import::to_csv(&columns, records)
}
