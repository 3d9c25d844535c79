//! Type checking of a rule against the standard contact fields and, when
//! given, the tenant's custom fields and segments.

use super::ast::*;
use crate::columns::{SqlType, CONTACT_COLUMNS};
use crate::error::{Error, ErrorKind, Result};
use crate::fields::FieldType;
use crate::fold::fold;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// The type of a value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Text,
    Number,
    Timestamp,
    Date,
    Boolean,
    Uuid,
    /// A custom field whose type is not known yet (the type input checks
    /// rules without the tenant's catalogue): any value and operator fit.
    Unchecked,
}

impl ValueType {
    fn name(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Number => "number",
            ValueType::Timestamp => "timestamp",
            ValueType::Date => "date",
            ValueType::Boolean => "boolean",
            ValueType::Uuid => "uuid",
            ValueType::Unchecked => "unknown",
        }
    }

    fn of_custom(kind: FieldType) -> ValueType {
        match kind {
            FieldType::Text => ValueType::Text,
            FieldType::Number => ValueType::Number,
            FieldType::Date => ValueType::Date,
            FieldType::Boolean => ValueType::Boolean,
        }
    }
}

/// The standard fields a rule may compare, with their types: every field
/// of `columns::CONTACT_COLUMNS` but tags and attributes (tag conditions
/// and custom fields read those).
pub static STANDARD: LazyLock<Vec<(&'static str, ValueType)>> = LazyLock::new(|| {
    CONTACT_COLUMNS
        .iter()
        .filter(|c| c.field)
        .filter_map(|c| {
            let kind = match c.sql_type {
                SqlType::Uuid => ValueType::Uuid,
                SqlType::Text => ValueType::Text,
                SqlType::Integer | SqlType::BigInt => ValueType::Number,
                SqlType::Timestamp => ValueType::Timestamp,
                SqlType::TextArray | SqlType::Jsonb => return None,
            };
            Some((c.name, kind))
        })
        .collect()
});

pub fn standard_type(name: &str) -> Option<ValueType> {
    STANDARD.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// What a rule's field names resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Standard(&'static str, ValueType),
    Custom(String, ValueType),
}

impl Resolved {
    pub fn value_type(&self) -> ValueType {
        match self {
            Resolved::Standard(_, t) | Resolved::Custom(_, t) => *t,
        }
    }
}

/// The tenant's catalogue. `None` parts are not checked (the type input
/// function knows neither custom fields nor segments).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub custom: Option<Vec<(String, FieldType)>>,
    /// Segment names with their ids.
    pub segments: Option<Vec<(String, String)>>,
    /// The id of the tenant's built-in Everyone segment, whose membership
    /// is every contact and is not stored.
    pub everyone: Option<String>,
    /// Dynamic segments whose membership changes with the clock (their
    /// rules, by id): time-relative rules, and rules referring to such
    /// segments. Their stored membership lags until a refresh, so a rule
    /// that refers to one reads its rule instead (see `Catalogue::live`).
    pub live: BTreeMap<String, Rule>,
}

impl Catalogue {
    /// Resolves a field: standard first (unless written `custom.x`), then
    /// custom. Unknown custom fields are accepted when custom fields are not
    /// known (`custom: None`), as text.
    pub fn resolve(&self, field: &Field) -> Result<Resolved> {
        if !field.custom {
            if let Some(t) = standard_type(&field.name) {
                let name = STANDARD.iter().find(|(n, _)| *n == field.name).unwrap().0;
                return Ok(Resolved::Standard(name, t));
            }
            if field.name == "tags" || field.name == "attributes" || field.name == "tenant_id" {
                return Err(Error::new(
                    ErrorKind::DatatypeMismatch,
                    format!(
                        "field \"{}\"{} cannot be compared in a rule",
                        field.name,
                        field.at()
                    ),
                )
                .with_hint("Use tag 'name' for tags and custom.name for custom fields."));
            }
        }
        let Some(custom) = &self.custom else {
            return Ok(Resolved::Custom(field.name.clone(), ValueType::Unchecked));
        };
        match custom.iter().find(|(n, _)| *n == field.name) {
            Some((name, kind)) => Ok(Resolved::Custom(name.clone(), ValueType::of_custom(*kind))),
            None => {
                let standard: Vec<&str> = STANDARD.iter().map(|(n, _)| *n).collect();
                let known: Vec<&str> = custom.iter().map(|(n, _)| n.as_str()).collect();
                Err(Error::new(
                    ErrorKind::UndefinedObject,
                    format!("unknown field \"{field}\"{}", field.at()),
                )
                .with_hint(format!(
                    "Standard fields: {}. Custom fields: {}.",
                    standard.join(", "),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )))
            }
        }
    }
}

impl Catalogue {
    /// Marks the dynamic segments (id, rule) that change with the clock:
    /// time-relative rules, and those referring to such a segment at any
    /// depth.
    pub fn mark_live<'a>(
        &mut self,
        dynamic: impl IntoIterator<Item = (&'a str, &'a Rule)> + Clone,
    ) {
        self.live.clear();
        loop {
            let before = self.live.len();
            for (id, rule) in dynamic.clone() {
                if !self.live.contains_key(id) && (rule.is_time_relative() || self.reads_live(rule))
                {
                    self.live.insert(id.to_string(), rule.clone());
                }
            }
            if self.live.len() == before {
                break;
            }
        }
    }

    /// Whether the rule refers to a segment that changes with the clock.
    pub fn reads_live(&self, rule: &Rule) -> bool {
        match rule {
            Rule::InSegment(name) => self
                .segment_id(name)
                .is_some_and(|id| self.live.contains_key(id)),
            Rule::And(parts) | Rule::Or(parts) => parts.iter().any(|part| self.reads_live(part)),
            Rule::Not(inner) => self.reads_live(inner),
            _ => false,
        }
    }

    /// Whether the rule's truth changes with the passing of time alone,
    /// through its own conditions or the segments it refers to.
    pub fn is_time_relative(&self, rule: &Rule) -> bool {
        rule.is_time_relative() || self.reads_live(rule)
    }

    /// The id of a segment, named case-insensitively.
    pub fn segment_id(&self, name: &str) -> Option<&str> {
        let wanted = fold(name);
        self.segments
            .as_ref()?
            .iter()
            .find(|(n, _)| fold(n) == wanted)
            .map(|(_, id)| id.as_str())
    }

    /// The name of the segment with that id.
    pub fn segment_name(&self, id: &str) -> Option<&str> {
        self.segments
            .as_ref()?
            .iter()
            .find(|(_, known)| known == id)
            .map(|(name, _)| name.as_str())
    }
}

/// A checked rule: its fields resolved (what `compile` builds on), and what
/// it reads — what maintenance needs to know of a rule without its SQL.
/// Clock-based segments it refers to are read through their rules (see
/// `Catalogue::live`), so their fields and what they read count too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Each field the rule names, once, with what it resolved to.
    pub fields: Vec<(Field, Resolved)>,
    /// Contact columns: standard columns by name, `attributes` for custom
    /// fields, `tags` for tag conditions, `event_count` for engagement
    /// conditions (every event statement moves it) and `last_campaign` for
    /// the last campaign (every send moves it).
    pub columns: BTreeSet<String>,
    /// Ids of the segments it refers to (not Everyone, whose membership is
    /// every contact).
    pub segments: BTreeSet<String>,
    /// Whether its truth changes with the passing of time alone.
    pub time_relative: bool,
}

/// How many references to clock-based segments one rule may read through
/// their rules (counted with repeats: references that branch and rejoin
/// would otherwise grow the SQL exponentially).
pub const MAX_INLINED: usize = 100;

impl Plan {
    /// What a field of the rule resolved to.
    pub fn resolved(&self, field: &Field) -> Option<&Resolved> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, resolved)| resolved)
    }
}

/// Checks a rule: field names, value types, segment names; returns its plan.
pub fn check(rule: &Rule, catalogue: &Catalogue) -> Result<Plan> {
    let mut checker = Checker {
        catalogue,
        plan: Plan::default(),
        inlined: 0,
    };
    checker.rule(rule)?;
    Ok(checker.plan)
}

struct Checker<'a> {
    catalogue: &'a Catalogue,
    plan: Plan,
    inlined: usize,
}

impl Checker<'_> {
    /// Resolves a field and notes the column it reads.
    fn field(&mut self, field: &Field) -> Result<ValueType> {
        let resolved = self.catalogue.resolve(field)?;
        let column = match &resolved {
            Resolved::Standard(column, _) => column,
            Resolved::Custom(..) => "attributes",
        };
        self.plan.columns.insert(column.to_string());
        let kind = resolved.value_type();
        if self.plan.resolved(field).is_none() {
            self.plan.fields.push((field.clone(), resolved));
        }
        Ok(kind)
    }

    fn value(&mut self, field: &Field, value: &Literal) -> Result<()> {
        let expected = self.field(field)?;
        check_value(field, expected, value)
    }

    fn rule(&mut self, rule: &Rule) -> Result<()> {
        match rule {
            Rule::Everyone => Ok(()),
            Rule::Tag(_) => {
                self.plan.columns.insert("tags".to_string());
                Ok(())
            }
            Rule::And(parts) | Rule::Or(parts) => parts.iter().try_for_each(|part| self.rule(part)),
            Rule::Not(inner) => self.rule(inner),
            Rule::Compare { field, value, .. } => self.value(field, value),
            Rule::In { field, values, .. } => {
                values.iter().try_for_each(|value| self.value(field, value))
            }
            Rule::Between { field, low, high } => {
                self.value(field, low)?;
                self.value(field, high)
            }
            Rule::Text { field, op, .. } => match self.field(field)? {
                ValueType::Text | ValueType::Unchecked => Ok(()),
                other => Err(mismatch(
                    field,
                    other,
                    &format!("\"{}\" applies to text fields only", op.as_str()),
                )),
            },
            Rule::IsNull { field, .. } => self.field(field).map(|_| ()),
            Rule::Within { field, .. } | Rule::Before { field, .. } => {
                self.plan.time_relative = true;
                match self.field(field)? {
                    ValueType::Timestamp | ValueType::Date | ValueType::Unchecked => Ok(()),
                    other => Err(mismatch(
                        field,
                        other,
                        "within and before … ago apply to date and time fields only",
                    )),
                }
            }
            Rule::InSegment(name) => self.segment(name),
            Rule::Event(event) => {
                self.plan.columns.insert("event_count".to_string());
                if matches!(event.campaign, Some(Campaign::Last)) {
                    self.plan.columns.insert("last_campaign".to_string());
                }
                if event.within.is_some() {
                    self.plan.time_relative = true;
                }
                check_event_kind(&event.kind)
            }
        }
    }

    fn segment(&mut self, name: &str) -> Result<()> {
        let Some(known) = &self.catalogue.segments else {
            return Ok(());
        };
        let Some(id) = self.catalogue.segment_id(name) else {
            return Err(Error::new(
                ErrorKind::UndefinedObject,
                format!("unknown segment \"{name}\" in rule"),
            )
            .with_hint(if known.is_empty() {
                "This tenant has no segments yet.".to_string()
            } else {
                let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
                format!("Known segments: {}.", names.join(", "))
            }));
        };
        if self.catalogue.everyone.as_deref() == Some(id) {
            return Ok(());
        }
        self.plan.segments.insert(id.to_string());
        if let Some(rule) = self.catalogue.live.get(id) {
            // Its stored membership lags the clock: it is read through its rule.
            self.inlined += 1;
            if self.inlined > MAX_INLINED {
                return Err(Error::new(
                    ErrorKind::TooComplex,
                    format!("rule reads more than {MAX_INLINED} clock-based segments"),
                )
                .with_hint(
                    "A segment whose rule depends on the clock (within, before … ago) is read through its rule wherever it is referred to; refer to fewer of them.",
                ));
            }
            self.plan.time_relative = true;
            self.rule(rule)?;
        }
        Ok(())
    }
}

fn check_event_kind(kind: &str) -> Result<()> {
    let valid = kind.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("invalid event kind '{kind}'"),
        )
        .with_hint("Event kinds are lower-case words such as opened, clicked or webinar_attended."))
    }
}

fn mismatch(field: &Field, actual: ValueType, why: &str) -> Error {
    Error::new(
        ErrorKind::DatatypeMismatch,
        format!(
            "field \"{field}\"{} is of type {}: {why}",
            field.at(),
            actual.name()
        ),
    )
}

fn check_value(field: &Field, expected: ValueType, value: &Literal) -> Result<()> {
    let fits = match (expected, value) {
        (ValueType::Text, Literal::String(_)) => true,
        (ValueType::Number, Literal::Number(_)) => true,
        (ValueType::Boolean, Literal::Bool(_)) => true,
        (ValueType::Timestamp | ValueType::Date, Literal::String(s)) => parse_time(s).is_some(),
        (ValueType::Uuid, Literal::String(s)) => is_uuid(s),
        (ValueType::Unchecked, _) => true,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::DatatypeMismatch,
            format!(
                "field \"{field}\"{} of type {} cannot be compared with {value}",
                field.at(),
                expected.name()
            ),
        )
        .with_hint(match expected {
            ValueType::Text => "Write text values in single quotes: city = 'Toronto'.",
            ValueType::Number => "Write numbers without quotes: score > 50.",
            ValueType::Timestamp | ValueType::Date => {
                "Write dates as strings: created_at >= '2025-01-01'."
            }
            ValueType::Boolean => "Compare boolean fields with true or false.",
            ValueType::Uuid | ValueType::Unchecked => "Write contact ids as quoted uuids.",
        }))
    }
}

/// Reads a date or timestamp literal: `2025-01-01`, `2025-01-01 10:00`,
/// `2025-01-01T10:00:00Z`, … Returns seconds since the epoch (UTC). Only
/// years PostgreSQL reads back (`crate::fields::YEARS`).
pub fn parse_time(text: &str) -> Option<i64> {
    use chrono::Datelike;
    let text = text.trim();
    let moment = if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0)?.and_utc()
    } else if let Ok(moment) = chrono::DateTime::parse_from_rfc3339(text) {
        moment.to_utc()
    } else {
        [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())?
        .and_utc()
    };
    crate::fields::YEARS
        .contains(&moment.year())
        .then(|| moment.timestamp())
}

fn is_uuid(text: &str) -> bool {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}
