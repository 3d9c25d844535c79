use super::arbitrary::{self, Rng};
use super::check::{check, Catalogue};
use super::compile::{compile, Scope};
use super::json::{from_json, to_json};
use super::*;
use crate::error::ErrorKind;
use crate::fields::FieldType;
use proptest::prelude::*;

/// Every example of the language in the product specification.
const SPEC_EXAMPLES: &[&str] = &[
    "country = 'US' and reachability >= 70",
    "status in ('active') and (lead_status = 'hot' or score > 50)",
    "tag 'VIP' and not tag 'Invalid_Phone'",
    "source = 'facebook' and created_at within 30 days",
    "industry = 'Technology' and custom.budget > 500000 and city = 'Toronto'",
    "phone_type = 'mobile' and assigned_to = 'agent-7'",
    "email ends with '@example.com' and company contains 'acme'",
    "last_activity_at before 90 days ago",
    "opened within 30 days",
    "clicked at least 3 times within 90 days",
    "visited '/pricing' within 7 days",
    "not opened last campaign",
    "in segment 'Hot leads in Ontario' and not in segment 'Suppressed'",
    "everyone",
];

fn catalogue() -> Catalogue {
    Catalogue {
        custom: Some(vec![
            ("budget".into(), FieldType::Number),
            ("industry".into(), FieldType::Text),
            ("signed_up".into(), FieldType::Date),
            ("newsletter".into(), FieldType::Boolean),
        ]),
        segments: Some(vec![
            (
                "Hot leads in Ontario".into(),
                "00000000-0000-0000-0000-000000000001".into(),
            ),
            (
                "Suppressed".into(),
                "00000000-0000-0000-0000-000000000002".into(),
            ),
            (
                "Everyone".into(),
                "00000000-0000-0000-0000-000000000003".into(),
            ),
        ]),
        everyone: Some("00000000-0000-0000-0000-000000000003".into()),
        live: Default::default(),
    }
}

#[test]
fn spec_examples_parse_print_and_parse_back() {
    for example in SPEC_EXAMPLES {
        let rule = parse(example).unwrap_or_else(|e| panic!("{example}: {e}"));
        let printed = rule.to_string();
        assert_eq!(printed, *example, "the examples are already canonical");
        assert_eq!(parse(&printed).unwrap(), rule);
        assert_eq!(from_json(&to_json(&rule)).unwrap(), rule, "{example}");
        compile(&rule, &catalogue(), 2, Scope::Few).unwrap_or_else(|e| panic!("{example}: {e}"));
    }
}

#[test]
fn canonical_form_normalises_case_spacing_and_numbers() {
    let rule = parse("  COUNTRY='US'  AND(Score>050.10 OR Tag 'x')").unwrap();
    assert_eq!(
        rule.to_string(),
        "country = 'US' and (score > 50.1 or tag 'x')"
    );
    let rule = parse("custom.budget <> -0 and city = 'O''Hare'").unwrap();
    assert_eq!(rule.to_string(), "custom.budget != 0 and city = 'O''Hare'");
    assert_eq!(
        parse("not not everyone").unwrap().to_string(),
        "not not everyone"
    );
    assert_eq!(
        parse("(a = 'x' or b = 'y') and c = 'z'")
            .unwrap()
            .to_string(),
        "(a = 'x' or b = 'y') and c = 'z'"
    );
    assert_eq!(
        parse("clicked within 2 day at most 1 time")
            .unwrap()
            .to_string(),
        "clicked at most 1 times within 2 days"
    );
}

#[test]
fn syntax_errors_give_the_position_and_what_was_expected() {
    let cases = [
        ("country = ", "position 11: expected a value"),
        ("country 'US'", "position 9: expected an operator"),
        ("country = 'US' and", "position 19: expected a condition"),
        ("(score > 1", "position 11: expected \")\""),
        ("city = 'Toronto", "position 8: unterminated string literal"),
        (
            "score > 1 score < 2",
            "position 11: expected \"and\", \"or\" or the end",
        ),
        ("score ! 3", "position 7: expected \"!=\""),
        (
            "opened within 3 fortnights",
            "position 17: expected hours, days, weeks or months",
        ),
        ("", "position 1: empty rule"),
        ("email @ 'x'", "position 7: unexpected character \"@\""),
    ];
    for (text, expected) in cases {
        let error = parse(text).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Syntax, "{text}");
        assert!(
            error.message.contains(expected),
            "{text}: {}",
            error.message
        );
    }
}

#[test]
fn hostile_sizes_are_errors_not_crashes() {
    let deep = format!("{}everyone{}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(parse(&deep).unwrap_err().kind, ErrorKind::TooComplex);
    let nots = format!("{}everyone", "not ".repeat(10_000));
    assert_eq!(parse(&nots).unwrap_err().kind, ErrorKind::TooComplex);
    let huge = format!("city = '{}'", "x".repeat(1 << 20));
    assert_eq!(parse(&huge).unwrap_err().kind, ErrorKind::TooComplex);
    let wide = vec!["score > 1"; 2000].join(" and ");
    assert!(parse(&wide).is_ok(), "long flat rules are fine");
}

#[test]
fn checker_names_unknown_fields_and_lists_known_ones() {
    let error = check(&parse("shoe_size = 42").unwrap(), &catalogue()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::UndefinedObject);
    assert!(
        error.message.contains("\"shoe_size\" at position 1"),
        "{}",
        error.message
    );
    let hint = error.hint.unwrap();
    assert!(
        hint.contains("budget, industry, signed_up, newsletter") && hint.contains("reachability"),
        "{hint}"
    );
    // Without a tenant's catalogue (the type input), unknown names may be
    // custom fields of any type.
    assert!(check(&parse("shoe_size = '42'").unwrap(), &Catalogue::default()).is_ok());
    assert!(check(
        &parse("custom.budget > 500000 and signed_up within 3 days").unwrap(),
        &Catalogue::default()
    )
    .is_ok());
}

#[test]
fn checker_rejects_values_of_the_wrong_type() {
    for text in [
        "score > 'high'",
        "custom.budget = 'lots'",
        "city = 5",
        "created_at >= 'yesterday'",
        "city within 3 days",
        "score contains '5'",
        "newsletter = 'yes'",
        "tags = 'VIP'",
    ] {
        let error = check(&parse(text).unwrap(), &catalogue()).unwrap_err();
        assert_eq!(
            error.kind,
            ErrorKind::DatatypeMismatch,
            "{text}: {}",
            error.message
        );
    }
    // Standard fields are checked even without the tenant's catalogue.
    assert!(check(&parse("score > 'high'").unwrap(), &Catalogue::default()).is_err());
    assert!(check(&parse("created_at >= '2025-01-01'").unwrap(), &catalogue()).is_ok());
}

#[test]
fn unknown_segments_are_named() {
    let error = check(&parse("in segment 'Nope'").unwrap(), &catalogue()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::UndefinedObject);
    assert!(error.hint.unwrap().contains("Hot leads in Ontario"));
    assert!(
        check(&parse("in segment 'suppressed'").unwrap(), &catalogue()).is_ok(),
        "names compare case-insensitively"
    );
}

#[test]
fn compiled_sql_binds_every_value() {
    let rule =
        parse("city = 'x''; DROP TABLE audience.contacts; --' and custom.industry contains '%_\\'")
            .unwrap();
    let compiled = compile(&rule, &catalogue(), 2, Scope::Few).unwrap();
    assert_eq!(
        compiled.predicate,
        "((audience.fold(c.city) = $2::text) AND (audience.fold(c.attributes ->> $3::text) LIKE $4::text))"
    );
    assert_eq!(
        compiled.params,
        vec![
            "x'; drop table audience.contacts; --",
            "industry",
            "%\\%\\_\\\\%"
        ]
    );
    assert_eq!(
        compiled.plan.columns.iter().collect::<Vec<_>>(),
        vec!["attributes", "city"]
    );
    assert!(!compiled.plan.time_relative);
}

#[test]
fn compiled_sql_uses_stored_case_and_index_forms() {
    let compiled = compile(
        &parse("country = 'us' and tag 'VIP' and status in ('Active')").unwrap(),
        &catalogue(),
        2,
        Scope::Few,
    )
    .unwrap();
    assert_eq!(
        compiled.predicate,
        "((c.country = $2::text) AND (c.tag_keys @> ARRAY[$3::text]) AND (c.status IN ($4::text)))"
    );
    assert_eq!(compiled.params, vec!["US", "vip", "active"]);
    let compiled = compile(
        &parse("not opened last campaign").unwrap(),
        &catalogue(),
        2,
        Scope::Few,
    )
    .unwrap();
    assert!(
        compiled
            .predicate
            .starts_with("((EXISTS (SELECT FROM audience.events e"),
        "{}",
        compiled.predicate
    );
    assert!(compiled.predicate.ends_with(") IS NOT TRUE)"));
    let compiled = compile(
        &parse("clicked at least 3 times within 90 days").unwrap(),
        &catalogue(),
        2,
        Scope::Few,
    )
    .unwrap();
    assert!(compiled.predicate.contains(">= 3)") && compiled.plan.time_relative);
    let compiled = compile(
        &parse("in segment 'suppressed'").unwrap(),
        &catalogue(),
        2,
        Scope::Few,
    )
    .unwrap();
    assert_eq!(
        compiled.params,
        vec!["00000000-0000-0000-0000-000000000002"]
    );
    assert_eq!(compiled.plan.segments.len(), 1);
    let compiled = compile(
        &parse("in segment 'everyone'").unwrap(),
        &catalogue(),
        2,
        Scope::Few,
    )
    .unwrap();
    assert_eq!(
        (compiled.predicate.as_str(), compiled.plan.segments.len()),
        ("true", 0),
        "Everyone is not stored"
    );
}

#[test]
fn grouped_scope_counts_each_contacts_events_once() {
    let rule = parse("opened at least 2 times and not clicked '/pricing' within 7 days and not opened last campaign").unwrap();
    let compiled = compile(&rule, &catalogue(), 4, Scope::Grouped).unwrap();
    let aliases: Vec<&str> = compiled
        .event_counts
        .iter()
        .map(|(alias, _)| alias.as_str())
        .collect();
    assert_eq!(aliases, vec!["n4", "n5"]);
    assert!(
        compiled
            .predicate
            .starts_with("((ev.n4 >= 2) AND (((ev.n5 >= 1)) IS NOT TRUE)"),
        "{}",
        compiled.predicate
    );
    assert_eq!(compiled.event_counts[1].1, "e.kind = $5::text AND audience.fold(e.url) LIKE $6::text AND e.occurred_at >= (now() - '7 days'::interval)");
    // The last campaign is a subquery: probed per contact, as with Few.
    assert!(
        compiled
            .predicate
            .contains("((EXISTS (SELECT FROM audience.events e"),
        "{}",
        compiled.predicate
    );
}

#[test]
fn json_form_matches_the_specification() {
    let rule = parse("country = 'US' and not tag 'VIP' or clicked at least 3 times within 30 days")
        .unwrap();
    assert_eq!(
        to_json(&rule),
        serde_json::json!({"or": [
            {"and": [{"field": "country", "op": "=", "value": "US"}, {"not": {"tag": "VIP"}}]},
            {"event": "clicked", "within": "30 days", "min_count": 3}
        ]})
    );
    let error =
        from_json(&serde_json::json!({"field": "score", "op": "~", "value": 1})).unwrap_err();
    assert!(error.message.contains("unknown op"), "{}", error.message);
    assert!(from_json(&serde_json::json!({"and": []})).is_err());
    assert!(from_json(&serde_json::json!([1])).is_err());
}

#[test]
fn json_field_names_are_ones_the_text_form_can_write() {
    for name in [
        "c:untry", "opened", "everyone", "not", "custom.", "a b", "", "İ",
    ] {
        let error = from_json(&serde_json::json!({"field": name, "op": "is null"})).unwrap_err();
        assert!(
            error.message.contains("is not a field name"),
            "{name}: {}",
            error.message
        );
    }
    for name in ["City", "custom.opened", "custom.Budget_2", "event"] {
        let rule = from_json(&serde_json::json!({"field": name, "op": "is null"})).unwrap();
        assert_eq!(parse(&rule.to_string()).unwrap(), rule, "{name}");
    }
    assert!(parse("İ = 'x'")
        .unwrap_err()
        .message
        .contains("unexpected character"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn print_then_parse_is_the_identity(seed in any::<u64>()) {
        let rule = arbitrary::rule(&mut Rng::new(seed), 4);
        let printed = rule.to_string();
        prop_assert_eq!(parse(&printed).unwrap(), rule.clone(), "{}", printed);
        prop_assert_eq!(from_json(&to_json(&rule)).unwrap(), rule.clone());
        compile(&rule, &catalogue(), 2, Scope::Few).unwrap();
    }

    #[test]
    fn the_parser_never_panics(text in ".{0,300}") {
        let _ = parse(&text);
    }

    #[test]
    fn the_parser_never_panics_on_rule_like_text(words in proptest::collection::vec(
        prop::sample::select(vec!["(", ")", "and", "or", "not", "'x'", "3", "-1.5", "=", "<=", "in", ",", "tag",
            "segment", "opened", "within", "days", "at", "least", "times", "score", "custom", ".", "city",
            "between", "is", "null", "before", "ago", "last", "campaign", "event", "everyone", "'", "ends", "with"]),
        0..40)) {
        let text = words.join(" ");
        if let Ok(rule) = parse(&text) {
            prop_assert_eq!(parse(&rule.to_string()).unwrap(), rule);
        }
    }
}

#[test]
fn renaming_a_segment_rewrites_references_in_any_case() {
    let rule = parse("in segment 'VIP' and not (in segment 'vip' or in segment 'Other')").unwrap();
    assert_eq!(
        rule.rename_segment("Vip", "Top customers").to_string(),
        "in segment 'Top customers' and not (in segment 'Top customers' or in segment 'Other')"
    );
}

#[test]
fn whole_tenant_scope_reads_matching_events_once() {
    let all = |text: &str| {
        compile(&parse(text).unwrap(), &catalogue(), 2, Scope::All)
            .unwrap()
            .predicate
    };
    assert_eq!(all("opened within 30 days"), "c.id IN (SELECT e.contact_id FROM audience.events e WHERE e.tenant_id = $1::uuid AND e.kind = $2::text AND e.occurred_at >= (now() - '30 days'::interval))");
    assert!(
        all("clicked at least 3 times").ends_with("GROUP BY e.contact_id HAVING count(*) >= 3)")
    );
    assert!(
        all("clicked at most 2 times").starts_with("c.id NOT IN (")
            && all("clicked at most 2 times").ends_with("HAVING count(*) > 2)")
    );
    assert_eq!(all("clicked at least 0 times"), "true");
    assert!(all("not opened last campaign")
        .contains("(SELECT s.campaign FROM audience.events s WHERE s.tenant_id = $1::uuid"));
    let few = compile(
        &parse("score > 5 and score < 5.5").unwrap(),
        &catalogue(),
        2,
        Scope::Few,
    )
    .unwrap();
    assert_eq!(
        few.predicate, "((c.score > $2::bigint) AND (c.score < $3::numeric))",
        "integer columns compare with integers"
    );
}

#[test]
fn time_only_removes_follows_negation() {
    let judged = |text: &str| parse(text).unwrap().time_only_removes();
    assert!(judged("last_activity_at within 30 days"));
    assert!(judged(
        "country = 'US' and (created_at within 7 days or score > 3)"
    ));
    assert!(judged("not last_activity_at before 90 days ago"));
    assert!(judged("not (tag 'x' or not created_at within 7 days)"));
    assert!(judged("country = 'US'"));
    assert!(!judged("last_activity_at before 90 days ago"));
    assert!(!judged("not created_at within 7 days"));
    assert!(!judged(
        "created_at within 7 days and last_activity_at before 9 days ago"
    ));
    assert!(!judged("clicked at least 3 times within 90 days"));
    assert!(!judged(
        "created_at within 7 days and in segment 'Suppressed'"
    ));
}

#[test]
fn json_everyone_must_be_true() {
    use serde_json::json;
    assert_eq!(
        json::from_json(&json!({"everyone": true})).unwrap(),
        Rule::Everyone
    );
    for refused in [
        json!({"everyone": false}),
        json!({"everyone": null}),
        json!({"everyone": "yes"}),
    ] {
        let error = json::from_json(&refused).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidText, "{refused}");
        assert!(
            error.message.contains("\"everyone\" must be true"),
            "{}",
            error.message
        );
    }
}

#[test]
fn json_text_nested_beyond_any_limit_is_too_complex() {
    for depth in [101, 127, 128, 129, 5000] {
        let text = format!(
            "{}{{\"tag\": \"x\"}}{}",
            "{\"not\": ".repeat(depth),
            "}".repeat(depth)
        );
        let error = json::from_json_text(&text).unwrap_err();
        assert_eq!(error.kind, ErrorKind::TooComplex, "depth {depth}");
    }
    let text = format!(
        "{}{{\"tag\": \"x\"}}{}",
        "{\"not\": ".repeat(100),
        "}".repeat(100)
    );
    assert!(json::from_json_text(&text).is_ok());
    assert_eq!(
        json::from_json_text("{\"tag\": ").unwrap_err().kind,
        ErrorKind::InvalidText
    );
}

/// A catalogue of segments `name` → rule, with ids "id-<name>".
fn catalogue_of(segments: &[(&str, &str)]) -> (Catalogue, Vec<(String, Rule)>) {
    let mut catalogue = catalogue();
    let dynamic: Vec<(String, Rule)> = segments
        .iter()
        .map(|(name, rule)| (format!("id-{name}"), parse(rule).unwrap()))
        .collect();
    for (name, _) in segments {
        catalogue
            .segments
            .as_mut()
            .unwrap()
            .push((name.to_string(), format!("id-{name}")));
    }
    catalogue.mark_live(dynamic.iter().map(|(id, rule)| (id.as_str(), rule)));
    (catalogue, dynamic)
}

#[test]
fn rules_referring_to_clock_based_segments_are_time_relative() {
    let (catalogue, _) = catalogue_of(&[
        ("New1h", "created_at within 1 hours"),
        ("InNew1h", "in segment 'New1h'"),
        ("NotInIt", "not in segment 'InNew1h' and tag 'VIP'"),
        ("Timeless", "tag 'VIP'"),
        ("OnTimeless", "in segment 'Timeless'"),
    ]);
    let live: Vec<&str> = catalogue.live.keys().map(String::as_str).collect();
    assert_eq!(live, vec!["id-InNew1h", "id-New1h", "id-NotInIt"]);
    let rule = parse("in segment 'notinit'").unwrap();
    assert!(catalogue.is_time_relative(&rule));
    assert!(!catalogue.is_time_relative(&parse("in segment 'OnTimeless'").unwrap()));
    // The clock-based segment is read through its rule; the timeless one
    // from stored membership.
    let compiled = compile(
        &parse("in segment 'InNew1h' or in segment 'Timeless'").unwrap(),
        &catalogue,
        2,
        Scope::Few,
    )
    .unwrap();
    assert!(compiled.plan.time_relative);
    assert!(
        compiled.predicate.contains("c.created_at >= "),
        "{}",
        compiled.predicate
    );
    assert_eq!(
        compiled
            .predicate
            .matches("audience.segment_members")
            .count(),
        1,
        "{}",
        compiled.predicate
    );
    assert!(
        compiled.plan.segments.contains("id-New1h")
            && compiled.plan.segments.contains("id-Timeless")
    );
}

#[test]
fn clock_based_references_that_rejoin_are_bounded() {
    // Dn refers to D(n-1) and D(n-2): read through their rules, D40 would
    // repeat D1 2^39 times.
    let mut segments = vec![
        ("D1".to_string(), "created_at within 1 hours".to_string()),
        ("D2".to_string(), "in segment 'D1'".to_string()),
    ];
    for n in 3..=40 {
        segments.push((
            format!("D{n}"),
            format!("in segment 'D{}' or in segment 'D{}'", n - 1, n - 2),
        ));
    }
    let named: Vec<(&str, &str)> = segments
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_str()))
        .collect();
    let (catalogue, _) = catalogue_of(&named);
    assert_eq!(catalogue.live.len(), 40);
    assert!(compile(
        &parse("in segment 'D8'").unwrap(),
        &catalogue,
        2,
        Scope::Few
    )
    .is_ok());
    let error = compile(
        &parse("in segment 'D40'").unwrap(),
        &catalogue,
        2,
        Scope::Few,
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::TooComplex);
}

#[test]
fn params_number_several_rules_and_values_in_one_query() {
    use super::compile::Params;
    let mut params = Params::after(2);
    let first = params
        .compile(
            &parse("city = 'Toronto'").unwrap(),
            &catalogue(),
            Scope::Few,
        )
        .unwrap();
    let points = params.bind("10");
    let second = params
        .compile(
            &parse("tag 'VIP' or country = 'CA'").unwrap(),
            &catalogue(),
            Scope::Few,
        )
        .unwrap();
    assert_eq!(first.predicate, "(audience.fold(c.city) = $3::text)");
    assert_eq!(points, "$4");
    assert_eq!(
        second.predicate,
        "((c.tag_keys @> ARRAY[$5::text]) OR (c.country = $6::text))"
    );
    assert_eq!(params.values(), ["toronto", "10", "vip", "CA"]);
}
