//! `#[pg_test]`s of the Rust functions as SQL sees them: errors, nulls and
//! the shapes of results. SQLSTATEs and scenarios are checked in
//! tests/pg_regress.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test(error = "invalid email address in field \"email\": \"not-an-email\"")]
    fn invalid_emails_are_rejected() {
        Spi::run("SELECT audience.normalize_email('not-an-email')").unwrap();
    }

    #[pg_test]
    fn normalize_email_is_strict() {
        assert_eq!(
            Spi::get_one::<String>("SELECT audience.normalize_email(NULL)"),
            Ok(None)
        );
    }

    #[pg_test]
    fn phones_return_number_and_type() {
        let phone =
            Spi::get_one::<Vec<String>>("SELECT audience.normalize_phone('030 1234567', 'DE')");
        assert_eq!(
            phone,
            Ok(Some(vec![
                "+49301234567".to_string(),
                "landline".to_string()
            ]))
        );
    }

    #[pg_test(error = "invalid value for number field \"budget\": \"abc\"")]
    fn custom_numbers_reject_words() {
        Spi::run(
            r#"SELECT audience.coerce_attributes('{"budget": "abc"}', '{"budget": "number"}')"#,
        )
        .unwrap();
    }

    #[pg_test(error = "unknown field type \"colour\"")]
    fn unknown_field_types_are_rejected() {
        Spi::run("SELECT audience.field_type('colour')").unwrap();
    }

    #[pg_test(error = "no tenant selected: the setting audience.tenant is not set")]
    fn missing_tenant_is_an_error_not_an_empty_result() {
        Spi::run("SELECT count(*) FROM audience.search('anything')").unwrap();
    }

    #[pg_test]
    fn tag_keys_fold_case_for_the_index() {
        let keys =
            Spi::get_one::<Vec<String>>("SELECT audience.tag_keys(ARRAY['VIP', 'Webinar 2025'])");
        assert_eq!(
            keys,
            Ok(Some(vec!["vip".to_string(), "webinar 2025".to_string()]))
        );
    }

    #[pg_test]
    fn search_terms_are_json() {
        let terms = Spi::get_one::<pgrx::JsonB>(
            r#"SELECT audience.search_terms('tag:"Very Important" acme')"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            terms.0,
            serde_json::json!([{"kind": "tag", "value": "Very Important"}, {"kind": "word", "value": "acme"}])
        );
    }

    /// The one list of contact columns (core/src/columns.rs) is the table:
    /// names, order and types, and the columns applications may write.
    #[pg_test]
    fn contact_columns_are_the_table() {
        use audience_core::columns::{names, Writer, CONTACT_COLUMNS};
        let rows = |query: &str| -> Vec<(String, String)> {
            Spi::connect(|client| {
                client
                    .select(query, None, &[])
                    .unwrap()
                    .map(|row| (row.get(1).unwrap().unwrap(), row.get(2).unwrap().unwrap()))
                    .collect()
            })
        };
        let table = rows(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = 'audience.contacts'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        );
        let listed: Vec<(String, String)> = CONTACT_COLUMNS
            .iter()
            .map(|c| (c.name.to_string(), c.sql_type.name().to_string()))
            .collect();
        assert_eq!(table, listed);
        let insertable: Vec<String> = rows(
            "SELECT attname::text, '' FROM pg_attribute
              WHERE attrelid = 'audience.contacts'::regclass AND attnum > 0 AND NOT attisdropped
                AND has_column_privilege('audience_user', 'audience.contacts', attname, 'INSERT')
              ORDER BY attnum",
        )
        .into_iter()
        .map(|(name, _)| name)
        .collect();
        assert_eq!(insertable, names(|c| c.writer == Writer::Application));
        // The normalising trigger runs on updates of what applications
        // write (and updated_at, which it sets), not of what triggers keep.
        let trigger_columns: Vec<String> = rows(
            "SELECT a.attname::text, '' FROM pg_trigger t
               JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])
              WHERE t.tgrelid = 'audience.contacts'::regclass AND t.tgname = 'normalize_contact_update'
              ORDER BY a.attnum",
        )
        .into_iter()
        .map(|(name, _)| name)
        .collect();
        let mut expected =
            names(|c| c.writer == Writer::Application && c.name != "tenant_id" && c.name != "id");
        expected.push("updated_at");
        expected.sort_by_key(|name| CONTACT_COLUMNS.iter().position(|c| c.name == *name));
        assert_eq!(trigger_columns, expected);
        // contact_profile shows every column but the folded tags, then tier
        // and segments.
        let profile: Vec<String> = rows(
            "SELECT attname::text, '' FROM pg_attribute
              WHERE attrelid = 'audience.contact_profile'::regclass AND attnum > 0 ORDER BY attnum",
        )
        .into_iter()
        .map(|(name, _)| name)
        .collect();
        let mut shown = names(|c| c.name != "tag_keys");
        shown.extend(["tier", "segments"]);
        assert_eq!(profile, shown);
    }

    #[pg_test]
    fn compiled_rules_agree_with_the_evaluator() {
        for seed in [1, 2, 3] {
            crate::differential::compiled_rules_agree_with_the_evaluator(seed);
            Spi::run("DELETE FROM audience.tenants WHERE name = 'differential'").unwrap();
        }
    }

    #[pg_test]
    fn stored_membership_follows_every_statement() {
        for seed in [7, 8] {
            crate::invariants::stored_membership_follows_every_statement(seed);
            Spi::run("DELETE FROM audience.tenants WHERE name = 'invariants'").unwrap();
        }
    }
}
