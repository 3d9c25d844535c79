//! A plain in-memory evaluator of rules, written for clarity rather than
//! speed. The compiled SQL is tested against it: both must pick the same
//! contacts. Like SQL, a condition on a missing value is unknown (`None`),
//! and `not` turns anything but true into true.

use super::ast::*;
use super::check::{parse_time, Catalogue, Resolved, ValueType};
use crate::fold::fold;
use chrono::{DateTime, Months, TimeDelta, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A contact as the evaluator sees it. Timestamps are seconds since the
/// epoch, custom field values as stored in `attributes`.
#[derive(Debug, Clone, Default)]
pub struct Contact {
    pub id: String,
    pub standard: BTreeMap<String, Value>,
    pub attributes: serde_json::Map<String, Value>,
    pub tags: Vec<String>,
    pub events: Vec<Event>,
    pub segments: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: String,
    pub url: Option<String>,
    pub campaign: Option<String>,
    pub occurred_at: i64,
}

/// What a rule is evaluated against besides the contact.
pub struct World<'a> {
    pub catalogue: &'a Catalogue,
    pub now: i64,
    /// The tenant's most recently sent campaign.
    pub last_campaign: Option<String>,
}

pub fn evaluate(rule: &Rule, contact: &Contact, world: &World) -> Option<bool> {
    match rule {
        Rule::Everyone => Some(true),
        Rule::And(parts) => parts.iter().fold(Some(true), |acc, part| {
            match (acc, evaluate(part, contact, world)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }
        }),
        Rule::Or(parts) => parts.iter().fold(Some(false), |acc, part| {
            match (acc, evaluate(part, contact, world)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }
        }),
        Rule::Not(inner) => Some(evaluate(inner, contact, world) != Some(true)),
        Rule::Compare { field, op, value } => {
            let (actual, kind) = field_value(field, contact, world)?;
            let ordering = compare(&actual, &literal_value(value, kind)?, kind)?;
            Some(match op {
                CompareOp::Eq => ordering.is_eq(),
                CompareOp::Ne => ordering.is_ne(),
                CompareOp::Lt => ordering.is_lt(),
                CompareOp::Le => ordering.is_le(),
                CompareOp::Gt => ordering.is_gt(),
                CompareOp::Ge => ordering.is_ge(),
            })
        }
        Rule::In {
            field,
            values,
            negated,
        } => {
            let (actual, kind) = field_value(field, contact, world)?;
            let found = values.iter().any(|v| {
                literal_value(v, kind)
                    .and_then(|v| compare(&actual, &v, kind))
                    .is_some_and(|o| o.is_eq())
            });
            Some(found != *negated)
        }
        Rule::Between { field, low, high } => {
            let (actual, kind) = field_value(field, contact, world)?;
            let above = compare(&actual, &literal_value(low, kind)?, kind)?.is_ge();
            let below = compare(&actual, &literal_value(high, kind)?, kind)?.is_le();
            Some(above && below)
        }
        Rule::Text { field, op, value } => {
            let (actual, _) = field_value(field, contact, world)?;
            let haystack = fold(actual.as_str()?);
            let needle = fold(value);
            Some(match op {
                TextOp::Contains => haystack.contains(needle.as_ref()),
                TextOp::StartsWith => haystack.starts_with(needle.as_ref()),
                TextOp::EndsWith => haystack.ends_with(needle.as_ref()),
            })
        }
        Rule::IsNull { field, negated } => {
            Some(field_value(field, contact, world).is_none() != *negated)
        }
        Rule::Within { field, span } => {
            Some(time_of(field, contact, world)? >= since(world.now, *span))
        }
        Rule::Before { field, span } => {
            Some(time_of(field, contact, world)? < since(world.now, *span))
        }
        Rule::Tag(tag) => Some(contact.tags.iter().any(|t| crate::fold::same(t, tag))),
        Rule::InSegment(name) => Some(world.catalogue.segment_id(name).is_some_and(|id| {
            world.catalogue.everyone.as_deref() == Some(id) || contact.segments.contains(id)
        })),
        Rule::Event(event) => {
            let matching = contact
                .events
                .iter()
                .filter(|e| event_matches(event, e, world))
                .count() as u32;
            let (min, max) = event.count_range();
            Some(matching >= min && max.is_none_or(|max| matching <= max))
        }
    }
}

fn event_matches(condition: &EventCondition, event: &Event, world: &World) -> bool {
    let url_ok = match &condition.url {
        None => true,
        Some(part) => event
            .url
            .as_ref()
            .is_some_and(|url| fold(url).contains(fold(part).as_ref())),
    };
    let campaign_ok = match &condition.campaign {
        None => true,
        Some(Campaign::Named(name)) => event.campaign.as_deref() == Some(name.as_str()),
        Some(Campaign::Last) => {
            world.last_campaign.is_some() && event.campaign == world.last_campaign
        }
    };
    let time_ok = condition
        .within
        .is_none_or(|span| event.occurred_at >= since(world.now, span));
    event.kind == condition.kind && url_ok && campaign_ok && time_ok
}

/// `now - span`, with months as calendar months (as PostgreSQL does).
fn since(now: i64, span: Span) -> i64 {
    let now: DateTime<Utc> = DateTime::from_timestamp(now, 0).expect("valid time");
    let amount = i64::from(span.amount);
    let then = match span.unit {
        Unit::Hours => now - TimeDelta::hours(amount),
        Unit::Days => now - TimeDelta::days(amount),
        Unit::Weeks => now - TimeDelta::weeks(amount),
        Unit::Months => now
            .checked_sub_months(Months::new(span.amount))
            .expect("in range"),
    };
    then.timestamp()
}

fn field_value(field: &Field, contact: &Contact, world: &World) -> Option<(Value, ValueType)> {
    let resolved = world.catalogue.resolve(field).ok()?;
    let kind = resolved.value_type();
    let value = match resolved {
        Resolved::Standard(name, _) => contact.standard.get(name),
        Resolved::Custom(name, _) => contact.attributes.get(&name),
    };
    value.filter(|v| !v.is_null()).map(|v| (v.clone(), kind))
}

fn time_of(field: &Field, contact: &Contact, world: &World) -> Option<i64> {
    let (value, _) = field_value(field, contact, world)?;
    as_time(&value)
}

fn as_time(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_time(s),
        _ => None,
    }
}

fn literal_value(literal: &Literal, kind: ValueType) -> Option<Value> {
    Some(match (literal, kind) {
        (Literal::String(s), ValueType::Timestamp | ValueType::Date) => Value::from(parse_time(s)?),
        (Literal::String(s), _) => Value::String(s.clone()),
        (Literal::Number(n), _) => Value::Number(n.parse().ok()?),
        (Literal::Bool(b), _) => Value::Bool(*b),
    })
}

fn compare(actual: &Value, expected: &Value, kind: ValueType) -> Option<std::cmp::Ordering> {
    match kind {
        ValueType::Text | ValueType::Uuid | ValueType::Unchecked => {
            Some(fold(actual.as_str()?).cmp(&fold(expected.as_str()?)))
        }
        ValueType::Number => {
            let a: f64 = actual.as_f64().or_else(|| actual.as_str()?.parse().ok())?;
            a.partial_cmp(&expected.as_f64()?)
        }
        ValueType::Timestamp | ValueType::Date => Some(as_time(actual)?.cmp(&as_time(expected)?)),
        ValueType::Boolean => Some(actual.as_bool()?.cmp(&expected.as_bool()?)),
    }
}
