//! The columns of `audience.contacts`, once: in table order, with their
//! types, who writes them and what each feature does with them. The lists
//! the rest of the code uses (standard fields, what `upsert_contact` sets,
//! what an import writes, what a rule compares) are derived from this one,
//! and a `#[pg_test]` checks it against the table and its column
//! privileges.

/// A column's SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Uuid,
    Text,
    Integer,
    BigInt,
    TextArray,
    Jsonb,
    Timestamp,
}

impl SqlType {
    /// As `format_type` names it.
    pub fn name(self) -> &'static str {
        match self {
            SqlType::Uuid => "uuid",
            SqlType::Text => "text",
            SqlType::Integer => "integer",
            SqlType::BigInt => "bigint",
            SqlType::TextArray => "text[]",
            SqlType::Jsonb => "jsonb",
            SqlType::Timestamp => "timestamp with time zone",
        }
    }
}

/// Who writes a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Applications (SQL, `upsert_contact`, imports), through the
    /// normalising trigger; `audience_user` holds the column privileges.
    Application,
    /// The extension's triggers and generated columns: scores, activity
    /// times, counts, folded forms. Applications may not write them.
    Triggers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub sql_type: SqlType,
    pub writer: Writer,
    /// A field of a contact as rules, search and breakdowns name it (no
    /// custom field may take its name).
    pub field: bool,
    /// Set by name through `upsert_contact`.
    pub upsert: bool,
    /// Written by imports, from a CSV column.
    pub import: bool,
}

const fn column(
    name: &'static str,
    sql_type: SqlType,
    writer: Writer,
    field: bool,
    upsert: bool,
    import: bool,
) -> Column {
    Column {
        name,
        sql_type,
        writer,
        field,
        upsert,
        import,
    }
}

use SqlType::*;
use Writer::*;

/// `audience.contacts`, in table order.
pub const CONTACT_COLUMNS: &[Column] = &[
    column("tenant_id", Uuid, Application, false, false, false),
    column("id", Uuid, Application, true, false, false),
    column("email", Text, Application, true, true, true),
    column("first_name", Text, Application, true, true, true),
    column("last_name", Text, Application, true, true, true),
    column("company", Text, Application, true, true, true),
    column("job_title", Text, Application, true, true, true),
    column("phone", Text, Application, true, true, true),
    column("phone_type", Text, Application, true, false, true),
    column("country", Text, Application, true, true, true),
    column("city", Text, Application, true, true, true),
    column("status", Text, Application, true, true, true),
    column("lead_status", Text, Application, true, true, true),
    column("source", Text, Application, true, true, true),
    column("assigned_to", Text, Application, true, true, true),
    column("score", Integer, Triggers, true, false, false),
    column("reachability", Integer, Application, true, true, true),
    column("tags", TextArray, Application, true, true, false),
    column("attributes", Jsonb, Application, true, false, false),
    column("created_at", Timestamp, Application, true, false, true),
    column("updated_at", Timestamp, Triggers, true, false, false),
    column("last_activity_at", Timestamp, Triggers, true, false, false),
    column("last_opened_at", Timestamp, Triggers, true, false, false),
    column("last_clicked_at", Timestamp, Triggers, true, false, false),
    column("fit_score", Integer, Triggers, false, false, false),
    column("engagement_score", Integer, Triggers, false, false, false),
    column("score_reset_at", Timestamp, Triggers, false, false, false),
    column("event_count", BigInt, Triggers, false, false, false),
    column("tag_keys", TextArray, Triggers, false, false, false),
];

/// The names of the columns `keep` selects, in table order.
pub fn names(keep: impl Fn(&Column) -> bool) -> Vec<&'static str> {
    CONTACT_COLUMNS
        .iter()
        .filter(|c| keep(c))
        .map(|c| c.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::check::{ValueType, STANDARD};

    #[test]
    fn what_each_feature_uses() {
        assert_eq!(crate::import::COLUMNS.first(), Some(&"email"));
        assert!(crate::fields::WRITABLE_FIELDS.contains(&"tags"));
        assert!(!crate::fields::STANDARD_FIELDS.contains(&"fit_score"));
        let comparable: Vec<&str> = STANDARD.iter().map(|(name, _)| *name).collect();
        assert!(comparable.contains(&"score") && !comparable.contains(&"tags"));
        assert_eq!(
            STANDARD
                .iter()
                .find(|(n, _)| *n == "score")
                .map(|(_, t)| *t),
            Some(ValueType::Number)
        );
    }

    #[test]
    fn applications_write_no_column_the_triggers_keep() {
        for c in CONTACT_COLUMNS {
            if c.upsert || c.import {
                assert_eq!(c.writer, Application, "{}", c.name);
            }
        }
    }
}
