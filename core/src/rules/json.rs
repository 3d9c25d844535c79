//! The JSON form of rules used by condition-builder UIs:
//! `{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}`, `{"everyone": true}`,
//! `{"field": "country", "op": "=", "value": "US"}`, `{"tag": "VIP"}`,
//! `{"segment": "name"}`, `{"event": "clicked", "url": "/pricing",
//! "campaign": "x" | "last_campaign": true, "min_count": 3, "max_count": 5,
//! "within": "30 days"}`. Text and JSON forms convert both ways losslessly.

use super::ast::*;
use super::lexer::{tokenize, Token};
use super::parser::parse;
use crate::error::{Error, ErrorKind, Result};
use serde_json::{json, Map, Value};

pub fn to_json(rule: &Rule) -> Value {
    match rule {
        Rule::Everyone => json!({"everyone": true}),
        Rule::And(parts) => json!({"and": parts.iter().map(to_json).collect::<Vec<_>>()}),
        Rule::Or(parts) => json!({"or": parts.iter().map(to_json).collect::<Vec<_>>()}),
        Rule::Not(inner) => json!({"not": to_json(inner)}),
        Rule::Compare { field, op, value } => condition(field, op.as_str(), literal_json(value)),
        Rule::In {
            field,
            values,
            negated,
        } => condition(
            field,
            if *negated { "not in" } else { "in" },
            Value::Array(values.iter().map(literal_json).collect()),
        ),
        Rule::Between { field, low, high } => condition(
            field,
            "between",
            Value::Array(vec![literal_json(low), literal_json(high)]),
        ),
        Rule::Text { field, op, value } => {
            condition(field, op.as_str(), Value::String(value.clone()))
        }
        Rule::IsNull { field, negated } => {
            json!({"field": field.to_string(), "op": if *negated { "is not null" } else { "is null" }})
        }
        Rule::Within { field, span } => condition(field, "within", Value::String(span.to_string())),
        Rule::Before { field, span } => condition(field, "before", Value::String(span.to_string())),
        Rule::Tag(tag) => json!({"tag": tag}),
        Rule::InSegment(name) => json!({"segment": name}),
        Rule::Event(event) => {
            let mut object = Map::new();
            object.insert("event".into(), Value::String(event.kind.clone()));
            if let Some(url) = &event.url {
                object.insert("url".into(), Value::String(url.clone()));
            }
            match &event.campaign {
                Some(Campaign::Named(name)) => {
                    object.insert("campaign".into(), Value::String(name.clone()));
                }
                Some(Campaign::Last) => {
                    object.insert("last_campaign".into(), Value::Bool(true));
                }
                None => {}
            }
            match event.count {
                Some(CountBound::AtLeast(n)) => {
                    object.insert("min_count".into(), json!(n));
                }
                Some(CountBound::AtMost(n)) => {
                    object.insert("max_count".into(), json!(n));
                }
                None => {}
            }
            if let Some(span) = event.within {
                object.insert("within".into(), Value::String(span.to_string()));
            }
            Value::Object(object)
        }
    }
}

fn condition(field: &Field, op: &str, value: Value) -> Value {
    json!({"field": field.to_string(), "op": op, "value": value})
}

fn literal_json(literal: &Literal) -> Value {
    match literal {
        Literal::String(s) => Value::String(s.clone()),
        Literal::Number(n) => n
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(n.clone())),
        Literal::Bool(b) => Value::Bool(*b),
    }
}

fn invalid(path: &str, message: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidText,
        format!("invalid rule JSON at {path}: {message}"),
    )
    .with_hint("See audience.rule_to_json of a rule for the expected shape.")
}

pub fn from_json(value: &Value) -> Result<Rule> {
    from_json_at(value, "$", 0)
}

/// A rule from the text of its JSON form. JSON nested deeper than the
/// reader's limit (128 levels) is refused as too complex, as a rule nested
/// deeper than `MAX_DEPTH` is.
pub fn from_json_text(text: &str) -> Result<Rule> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => from_json(&value),
        // serde_json says so only in its message.
        Err(error) if error.to_string().starts_with("recursion limit exceeded") => Err(too_deep()),
        Err(error) => Err(invalid("$", error.to_string())),
    }
}

fn too_deep() -> Error {
    Error::new(
        ErrorKind::TooComplex,
        format!(
            "rule JSON is nested too deeply: at most {} levels",
            super::parser::MAX_DEPTH
        ),
    )
}

fn from_json_at(value: &Value, path: &str, depth: usize) -> Result<Rule> {
    if depth > super::parser::MAX_DEPTH {
        return Err(too_deep());
    }
    let object = value
        .as_object()
        .ok_or_else(|| invalid(path, "expected an object"))?;
    let text = |key: &str| -> Result<String> {
        object
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| invalid(path, format!("\"{key}\" must be a string")))
    };
    if object.contains_key("and") || object.contains_key("or") {
        let key = if object.contains_key("and") {
            "and"
        } else {
            "or"
        };
        let items = object[key]
            .as_array()
            .ok_or_else(|| invalid(path, format!("\"{key}\" must be an array")))?;
        let mut parts = items
            .iter()
            .enumerate()
            .map(|(i, item)| from_json_at(item, &format!("{path}.{key}[{i}]"), depth + 1))
            .collect::<Result<Vec<_>>>()?;
        return match parts.len() {
            0 => Err(invalid(
                path,
                format!("\"{key}\" needs at least one condition"),
            )),
            1 => Ok(parts.pop().unwrap()),
            _ => Ok(if key == "and" {
                Rule::And(parts)
            } else {
                Rule::Or(parts)
            }),
        };
    }
    if let Some(inner) = object.get("not") {
        return Ok(Rule::Not(Box::new(from_json_at(
            inner,
            &format!("{path}.not"),
            depth + 1,
        )?)));
    }
    if let Some(everyone) = object.get("everyone") {
        // The language has no "nobody": only true is a rule.
        return match everyone {
            Value::Bool(true) => Ok(Rule::Everyone),
            _ => Err(invalid(path, "\"everyone\" must be true").with_hint(
                "A rule that matches nobody is written {\"not\": {\"everyone\": true}}.",
            )),
        };
    }
    if object.contains_key("tag") {
        return Ok(Rule::Tag(text("tag")?));
    }
    if object.contains_key("segment") {
        return Ok(Rule::InSegment(text("segment")?));
    }
    if object.contains_key("event") {
        return event_from_json(object, path, &text);
    }
    if object.contains_key("field") {
        return field_from_json(object, path, &text);
    }
    Err(invalid(
        path,
        "expected one of and, or, not, everyone, field, tag, segment, event",
    ))
}

fn event_from_json(
    object: &Map<String, Value>,
    path: &str,
    text: &dyn Fn(&str) -> Result<String>,
) -> Result<Rule> {
    let count = |key: &str| -> Result<Option<u32>> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| invalid(path, format!("\"{key}\" must be a whole number"))),
        }
    };
    let campaign = if object.get("last_campaign").and_then(Value::as_bool) == Some(true) {
        Some(Campaign::Last)
    } else if object.contains_key("campaign") {
        Some(Campaign::Named(text("campaign")?))
    } else {
        None
    };
    let count = match (count("min_count")?, count("max_count")?) {
        (Some(_), Some(_)) => return Err(invalid(path, "give min_count or max_count, not both")),
        (Some(n), None) => Some(CountBound::AtLeast(n)),
        (None, Some(n)) => Some(CountBound::AtMost(n)),
        (None, None) => None,
    };
    let within = match object.get("within") {
        None | Some(Value::Null) => None,
        Some(_) => Some(span(&text("within")?, path)?),
    };
    let url = if object.contains_key("url") {
        Some(text("url")?)
    } else {
        None
    };
    Ok(Rule::Event(EventCondition {
        kind: text("event")?.to_lowercase(),
        url,
        campaign,
        count,
        within,
    }))
}

fn field_from_json(
    object: &Map<String, Value>,
    path: &str,
    text: &dyn Fn(&str) -> Result<String>,
) -> Result<Rule> {
    let written = text("field")?;
    let name = written.trim().to_lowercase();
    let field = match name.strip_prefix("custom.") {
        Some(custom) => Field {
            name: custom.to_string(),
            custom: true,
            position: 0,
        },
        None => Field {
            name,
            custom: false,
            position: 0,
        },
    };
    // The text form must read the field back as the same field.
    if parse(&format!("{field} is null")).ok()
        != Some(Rule::IsNull {
            field: field.clone(),
            negated: false,
        })
    {
        return Err(invalid(path, format!("\"{written}\" is not a field name")));
    }
    let op = text("op")?.trim().to_lowercase();
    let value = object.get("value").unwrap_or(&Value::Null);
    let literal = |v: &Value| -> Result<Literal> {
        match v {
            Value::String(s) => Ok(Literal::String(s.clone())),
            Value::Number(n) => Ok(Literal::Number(n.to_string())),
            Value::Bool(b) => Ok(Literal::Bool(*b)),
            _ => Err(invalid(
                path,
                "\"value\" must be a string, number or boolean",
            )),
        }
    };
    let list = |v: &Value| -> Result<Vec<Literal>> {
        let items = v
            .as_array()
            .ok_or_else(|| invalid(path, format!("\"{op}\" needs an array \"value\"")))?;
        items.iter().map(literal).collect()
    };
    if let Some(compare) = CompareOp::parse(&op) {
        return Ok(Rule::Compare {
            field,
            op: compare,
            value: literal(value)?,
        });
    }
    Ok(match op.as_str() {
        "in" | "not in" => {
            let values = list(value)?;
            if values.is_empty() {
                return Err(invalid(path, "\"in\" needs at least one value"));
            }
            Rule::In {
                field,
                values,
                negated: op == "not in",
            }
        }
        "between" => match list(value)?.as_slice() {
            [low, high] => Rule::Between {
                field,
                low: low.clone(),
                high: high.clone(),
            },
            _ => return Err(invalid(path, "\"between\" needs [low, high]")),
        },
        "contains" | "starts with" | "ends with" => {
            let op = match op.as_str() {
                "contains" => TextOp::Contains,
                "starts with" => TextOp::StartsWith,
                _ => TextOp::EndsWith,
            };
            Rule::Text {
                field,
                op,
                value: text("value")?,
            }
        }
        "is null" => Rule::IsNull {
            field,
            negated: false,
        },
        "is not null" => Rule::IsNull {
            field,
            negated: true,
        },
        "within" => Rule::Within {
            field,
            span: span(&text("value")?, path)?,
        },
        "before" => Rule::Before {
            field,
            span: span(&text("value")?, path)?,
        },
        other => return Err(invalid(path, format!("unknown op \"{other}\""))),
    })
}

/// Reads `"30 days"`.
fn span(text: &str, path: &str) -> Result<Span> {
    let tokens = tokenize(text)?;
    match tokens.as_slice() {
        [amount, unit] => match (&amount.token, &unit.token) {
            (Token::Number(n), Token::Word(w)) => match (n.parse::<u32>(), Unit::parse(w)) {
                (Ok(amount), Some(unit)) => Ok(Span { amount, unit }),
                _ => Err(invalid(
                    path,
                    format!("\"{text}\" is not a span such as \"30 days\""),
                )),
            },
            _ => Err(invalid(
                path,
                format!("\"{text}\" is not a span such as \"30 days\""),
            )),
        },
        _ => Err(invalid(
            path,
            format!("\"{text}\" is not a span such as \"30 days\""),
        )),
    }
}
