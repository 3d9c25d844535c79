//! Rule text through every stage: parse, print, parse back, JSON round
//! trip, check and compile. Nothing may panic; a rule that parses must
//! print to text that parses to the same rule; compiled SQL must keep
//! every value out of its text.
#![no_main]

use audience_core::fields::FieldType;
use audience_core::rules::check::Catalogue;
use audience_core::rules::compile::{compile, Scope};
use audience_core::rules::json::{from_json, to_json};
use audience_core::rules::parse;
use libfuzzer_sys::fuzz_target;

fn catalogue(custom_known: bool) -> Catalogue {
    Catalogue {
        custom: custom_known.then(|| {
            vec![
                ("budget".into(), FieldType::Number),
                ("industry".into(), FieldType::Text),
                ("signed_up".into(), FieldType::Date),
                ("newsletter".into(), FieldType::Boolean),
            ]
        }),
        segments: Some(vec![
            ("Hot leads".into(), "00000000-0000-0000-0000-000000000001".into()),
            ("Everyone".into(), "00000000-0000-0000-0000-000000000003".into()),
            ("Recent".into(), "00000000-0000-0000-0000-000000000004".into()),
        ]),
        everyone: Some("00000000-0000-0000-0000-000000000003".into()),
        // A clock-based segment: rules referring to it read its rule.
        live: [(
            "00000000-0000-0000-0000-000000000004".to_string(),
            parse("created_at within 1 hours or clicked at least 2 times within 7 days").unwrap(),
        )]
        .into(),
    }
}

/// Whether `sql` keeps to what the compiler itself writes: quotes closed,
/// no statement separators or comments outside them.
fn is_closed_predicate(sql: &str) -> bool {
    let mut in_quote = false;
    let mut previous = ' ';
    for c in sql.chars() {
        if c == '\'' {
            in_quote = !in_quote;
        } else if !in_quote && (c == ';' || (previous == '-' && c == '-') || (previous == '/' && c == '*')) {
            return false;
        }
        previous = c;
    }
    !in_quote
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(json) = serde_json::from_str(text) {
        if let Ok(rule) = from_json(&json) {
            assert_eq!(parse(&rule.to_string()).ok(), Some(rule.clone()), "{text}");
        }
    }
    let Ok(rule) = parse(text) else { return };
    let printed = rule.to_string();
    assert_eq!(parse(&printed).ok(), Some(rule.clone()), "{text} printed as {printed}");
    assert_eq!(from_json(&to_json(&rule)).ok(), Some(rule.clone()), "{text}");
    for custom_known in [true, false] {
        for scope in [Scope::Few, Scope::All] {
            if let Ok(compiled) = compile(&rule, &catalogue(custom_known), 2, scope) {
                assert!(is_closed_predicate(&compiled.predicate), "{text} compiled to {}", compiled.predicate);
            }
        }
    }
});
