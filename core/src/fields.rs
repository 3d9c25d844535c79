//! Custom fields: their names, their types, and the values they accept.
//! Values live in the contact's `attributes` jsonb; this module decides
//! what a value of each type looks like there.

use crate::columns::names;
use crate::error::{Error, ErrorKind, Result};
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// The standard contact fields, in table order (`columns::Column::field`).
/// Custom fields may not take these names, and rules and searches resolve
/// them before custom fields.
pub static STANDARD_FIELDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| names(|c| c.field));

/// The standard columns a caller may set by name (`columns::Column::upsert`:
/// scores and activity times follow from events; ids, tenants and times
/// are the table's).
pub static WRITABLE_FIELDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| names(|c| c.upsert));

/// What one `upsert_contact` call writes.
#[derive(Debug, PartialEq)]
pub struct Upsert {
    /// The standard columns given, in `WRITABLE_FIELDS` order: the same
    /// keys in any order or case make the same statement.
    pub columns: Vec<&'static str>,
    /// Their values, by column name.
    pub standard: Map<String, Value>,
    /// Every other key, as given: custom fields, checked by the contacts
    /// trigger. An `attributes` object contributes its keys.
    pub custom: Map<String, Value>,
}

/// Splits `upsert_contact`'s argument (None for SQL NULL) into standard
/// columns, matched by name trimmed of spaces and in any case, and custom
/// fields. Keys are taken in jsonb's order (shorter first), so that an
/// `attributes` object and a key of the same name resolve as jsonb_each
/// would.
pub fn split_upsert(data: Option<&Value>) -> Result<Upsert> {
    let object = match data {
        Some(Value::Object(object)) => object,
        other => {
            let kind = match other {
                None | Some(Value::Null) => "null",
                Some(Value::Bool(_)) => "boolean",
                Some(Value::Number(_)) => "number",
                Some(Value::String(_)) => "string",
                Some(Value::Array(_)) => "array",
                Some(Value::Object(_)) => unreachable!("matched above"),
            };
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("upsert_contact expects a JSON object, not {kind}"),
            )
            .with_hint(r#"Pass e.g. '{"email": "ann@example.com", "city": "Toronto"}'."#));
        }
    };
    let mut entries: Vec<(&String, &Value)> = object.iter().collect();
    entries.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    let mut standard = Map::new();
    let mut named: Vec<(&'static str, &str)> = Vec::new();
    let mut custom = Map::new();
    for (key, value) in entries {
        let name = key.trim_matches(' ').to_lowercase();
        if let Some(&column) = WRITABLE_FIELDS.iter().find(|c| **c == name) {
            if let Some((_, first)) = named.iter().find(|(c, _)| *c == column) {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!(r#"upsert_contact got two keys for "{column}": "{first}" and "{key}""#),
                )
                .with_hint("Give each field once."));
            }
            named.push((column, key));
            standard.insert(column.to_string(), value.clone());
        } else if let (true, Value::Object(fields)) = (name == "attributes", value) {
            custom.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        } else {
            custom.insert(key.clone(), value.clone());
        }
    }
    if !standard.contains_key("email") {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "upsert_contact needs an \"email\" key",
        )
        .with_hint("Contacts are matched by email."));
    }
    let columns = WRITABLE_FIELDS
        .iter()
        .copied()
        .filter(|c| standard.contains_key(*c))
        .collect();
    Ok(Upsert {
        columns,
        standard,
        custom,
    })
}

/// The years a date or timestamp may have: those PostgreSQL reads back
/// from `YYYY-MM-DD` (there is no year 0, and rules cast stored values).
pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// The type of a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Number,
    Date,
    Boolean,
}

impl FieldType {
    pub fn parse(name: &str) -> Result<FieldType> {
        match name.trim().to_lowercase().as_str() {
            "text" => Ok(FieldType::Text),
            "number" => Ok(FieldType::Number),
            "date" => Ok(FieldType::Date),
            "boolean" => Ok(FieldType::Boolean),
            other => Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("unknown field type \"{other}\""),
            )
            .with_hint("A custom field's type is one of: text, number, date, boolean.")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Date => "date",
            FieldType::Boolean => "boolean",
        }
    }
}

/// The canonical name of a field or CSV header: lower case, with spaces and
/// dashes read as underscores (`Signed Up` → `signed_up`).
pub fn field_key(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// Checks a name for a new custom field and returns its canonical form.
pub fn custom_field_name(name: &str) -> Result<String> {
    let key = field_key(name);
    let well_formed = key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && key.len() <= 63;
    if !well_formed {
        return Err(Error::new(ErrorKind::InvalidParameter, format!("invalid custom field name \"{name}\""))
            .with_hint("Field names start with a letter and hold letters, digits, spaces, dashes or underscores (at most 63)."));
    }
    if STANDARD_FIELDS.contains(&key.as_str())
        || key == "tenant_id"
        || key == "custom"
        || key == "tag"
    {
        return Err(Error::new(
            ErrorKind::Duplicate,
            format!("\"{key}\" is a standard contact field"),
        )
        .with_hint("Choose another name for the custom field."));
    }
    Ok(key)
}

/// Converts a value to the form a field of type `kind` stores: numbers as
/// JSON numbers, dates as `YYYY-MM-DD` strings, booleans as JSON booleans,
/// text as strings. An empty string or null stores as null.
pub fn coerce(field: &str, kind: FieldType, value: &Value) -> Result<Value> {
    let text = match value {
        Value::Null => return Ok(Value::Null),
        Value::String(s) if s.trim().is_empty() => return Ok(Value::Null),
        Value::String(s) => Some(s.trim()),
        _ => None,
    };
    let wrong = || {
        Error::new(
            ErrorKind::InvalidText,
            format!(
                "invalid value for {} field \"{field}\": {value}",
                kind.as_str()
            ),
        )
        .with_hint(match kind {
            FieldType::Number => "A number field holds numbers such as 42 or 1250.50.",
            FieldType::Date => "A date field holds dates written as YYYY-MM-DD.",
            FieldType::Boolean => "A boolean field holds true or false (also yes/no, 1/0).",
            FieldType::Text => "A text field holds text.",
        })
    };
    match (kind, value, text) {
        (FieldType::Text, Value::String(_), Some(t)) => Ok(Value::String(t.to_string())),
        (FieldType::Text, Value::Number(_) | Value::Bool(_), _) => {
            Ok(Value::String(value.to_string()))
        }
        (FieldType::Number, Value::Number(_), _) => Ok(value.clone()),
        (FieldType::Number, _, Some(t)) => t
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(|_| {
                serde_json::from_str::<serde_json::Number>(t.trim_start_matches('+')).ok()
            })
            .map(Value::Number)
            .ok_or_else(wrong),
        (FieldType::Date, _, Some(t)) => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .filter(|d| YEARS.contains(&chrono::Datelike::year(d)))
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(wrong),
        (FieldType::Boolean, Value::Bool(_), _) => Ok(value.clone()),
        (FieldType::Boolean, _, Some(t)) => match t.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Ok(Value::Bool(true)),
            "false" | "f" | "no" | "n" | "0" => Ok(Value::Bool(false)),
            _ => Err(wrong()),
        },
        (FieldType::Boolean, Value::Number(n), _)
            if n.as_i64() == Some(0) || n.as_i64() == Some(1) =>
        {
            Ok(Value::Bool(n.as_i64() == Some(1)))
        }
        _ => Err(wrong()),
    }
}

/// Checks and converts every key of a contact's `attributes` against the
/// tenant's field catalogue (`name → type`). Unknown keys are errors that
/// list the known fields.
pub fn coerce_attributes(
    attributes: &Map<String, Value>,
    catalogue: &[(String, FieldType)],
) -> Result<Map<String, Value>> {
    let mut result = Map::with_capacity(attributes.len());
    for (name, value) in attributes {
        let key = field_key(name);
        let Some((_, kind)) = catalogue.iter().find(|(known, _)| *known == key) else {
            let known: Vec<&str> = catalogue.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::new(ErrorKind::UndefinedObject, format!("unknown custom field \"{name}\""))
                .with_hint(if known.is_empty() {
                    "This tenant has no custom fields yet; define one with audience.define_field(name, type).".to_string()
                } else {
                    format!("Known custom fields: {}. Define new ones with audience.define_field(name, type).", known.join(", "))
                }));
        };
        let coerced = coerce(&key, *kind, value)?;
        if !coerced.is_null() {
            result.insert(key, coerced);
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upsert_splits_standard_columns_from_custom_fields() {
        let data = json!({" Email ": "a@b.c", "CITY": "Berlin", "Industry": "SaaS",
                          "attributes": {"budget": 5}, "tags": ["VIP"]});
        let upsert = split_upsert(Some(&data)).unwrap();
        assert_eq!(upsert.columns, ["email", "city", "tags"]);
        assert_eq!(
            upsert.standard,
            json!({"email": "a@b.c", "city": "Berlin", "tags": ["VIP"]})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(
            upsert.custom,
            json!({"Industry": "SaaS", "budget": 5})
                .as_object()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn upsert_columns_follow_the_table_whatever_the_key_order() {
        let one = split_upsert(Some(&json!({"city": "x", "email": "a@b.c"}))).unwrap();
        let other = split_upsert(Some(&json!({"email": "a@b.c", "city": "x"}))).unwrap();
        assert_eq!(one.columns, ["email", "city"]);
        assert_eq!(one, other);
    }

    #[test]
    fn upsert_resolves_a_key_and_an_attributes_object_as_jsonb_orders_them() {
        // jsonb_each yields "budget" (shorter) before "attributes".
        let data = json!({"budget": 2, "attributes": {"budget": 1}, "email": "a@b.c"});
        assert_eq!(
            split_upsert(Some(&data)).unwrap().custom["budget"],
            json!(1)
        );
        // An `attributes` key that is not an object is a custom field.
        let data = json!({"attributes": "x", "email": "a@b.c"});
        assert_eq!(
            split_upsert(Some(&data)).unwrap().custom["attributes"],
            json!("x")
        );
    }

    #[test]
    fn upsert_rejects_what_it_cannot_write() {
        let error = |data: Option<&Value>| split_upsert(data).unwrap_err();
        assert_eq!(
            error(Some(&json!([1, 2]))).message,
            "upsert_contact expects a JSON object, not array"
        );
        assert_eq!(
            error(None).message,
            "upsert_contact expects a JSON object, not null"
        );
        assert_eq!(
            error(Some(&json!({"first_name": "Ann"}))).message,
            "upsert_contact needs an \"email\" key"
        );
        let twice = error(Some(&json!({"Email": "a@b.c", "email": "a@b.c"})));
        assert_eq!(twice.kind, ErrorKind::InvalidParameter);
        assert_eq!(
            twice.message,
            "upsert_contact got two keys for \"email\": \"Email\" and \"email\""
        );
    }

    #[test]
    fn keys_read_headers_the_way_people_write_them() {
        assert_eq!(field_key(" Signed Up "), "signed_up");
        assert_eq!(field_key("E-Mail"), "e_mail");
    }

    #[test]
    fn custom_names_must_not_shadow_standard_fields() {
        assert_eq!(custom_field_name("Budget").unwrap(), "budget");
        assert_eq!(
            custom_field_name("Email").unwrap_err().kind,
            ErrorKind::Duplicate
        );
        assert_eq!(
            custom_field_name("1st").unwrap_err().kind,
            ErrorKind::InvalidParameter
        );
        assert_eq!(
            custom_field_name("a;drop").unwrap_err().kind,
            ErrorKind::InvalidParameter
        );
    }

    #[test]
    fn numbers_accept_numeric_text_and_reject_words() {
        assert_eq!(
            coerce("budget", FieldType::Number, &json!("1142500")).unwrap(),
            json!(1142500)
        );
        assert_eq!(
            coerce("budget", FieldType::Number, &json!(" 12.5 ")).unwrap(),
            json!(12.5)
        );
        assert_eq!(
            coerce("budget", FieldType::Number, &json!("")).unwrap(),
            Value::Null
        );
        let error = coerce("budget", FieldType::Number, &json!("about 5k")).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidText);
        assert!(error.message.contains("budget"));
        assert!(coerce("budget", FieldType::Number, &json!("NaN")).is_err());
    }

    #[test]
    fn dates_and_booleans() {
        assert_eq!(
            coerce("d", FieldType::Date, &json!("2026-07-29")).unwrap(),
            json!("2026-07-29")
        );
        assert!(coerce("d", FieldType::Date, &json!("29/07/2026")).is_err());
        // Year 0 does not exist in PostgreSQL: a rule reading it would fail.
        assert!(coerce("d", FieldType::Date, &json!("0000-01-01")).is_err());
        assert!(coerce("d", FieldType::Date, &json!("0001-01-01")).is_ok());
        assert!(coerce("d", FieldType::Date, &json!("9999-12-31")).is_ok());
        assert_eq!(
            coerce("b", FieldType::Boolean, &json!("Yes")).unwrap(),
            json!(true)
        );
        assert!(coerce("b", FieldType::Boolean, &json!("maybe")).is_err());
        assert_eq!(
            coerce("t", FieldType::Text, &json!(42)).unwrap(),
            json!("42")
        );
    }

    #[test]
    fn unknown_attributes_list_the_known_fields() {
        let catalogue = vec![
            ("budget".to_string(), FieldType::Number),
            ("industry".to_string(), FieldType::Text),
        ];
        let attrs = json!({"Industry": "SaaS", "budget": "5"});
        let coerced = coerce_attributes(attrs.as_object().unwrap(), &catalogue).unwrap();
        assert_eq!(
            Value::Object(coerced),
            json!({"industry": "SaaS", "budget": 5})
        );
        let error = coerce_attributes(json!({"colour": "red"}).as_object().unwrap(), &catalogue)
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::UndefinedObject);
        assert!(error.hint.unwrap().contains("budget, industry"));
    }
}
