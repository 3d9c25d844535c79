//! Live evaluation where stored membership may lag (time-relative rules),
//! and what the SQL asks of a rule's segments.

use crate::api::citus;
use crate::api::plans;
use crate::api::rules::{arguments, current_tenant, Rule};
use crate::api::tenant_rules::tenant_rules;
use crate::error::{raise, OrRaise};
use audience_core::rules::check::check;
use audience_core::rules::compile::{Compiled, Scope};
use audience_core::rules::{self as core_rules};
use audience_core::{Error, ErrorKind};
use pgrx::prelude::*;

pub fn unknown_segment(name: &str) -> Error {
    Error::new(
        ErrorKind::UndefinedObject,
        format!("unknown segment \"{name}\""),
    )
    .with_hint("audience.segment_overview lists the segments of the current tenant.")
}

/// The contacts that satisfy a dynamic segment's rule now, for rules whose
/// stored membership may lag behind the clock. Under Citus, a query of a
/// segment's members pushes this down to the tenant's worker, where it
/// reads the tenant's rows (as `rule_matches` does).
#[pg_extern(stable, strict)]
fn live_members(rule: Rule) -> Vec<String> {
    let tenant = current_tenant();
    citus::reading_local_rows(|| {
        let compiled: Compiled =
            crate::api::rules::compile_for_tenant(&rule, &tenant, 2, Scope::All);
        let query = format!(
            "SELECT coalesce(array_agg(c.id::text), '{{}}') FROM audience.contacts c WHERE c.tenant_id = $1::uuid AND {}",
            compiled.predicate
        );
        let args = arguments(vec![tenant.as_str().into()], &compiled.params);
        Spi::connect(|client| {
            client
                .select(&query, None, &args)
                .and_then(|rows| rows.first().get_one::<Vec<String>>())
                .expect("evaluating rule")
                .unwrap_or_default()
        })
    })
}

/// Whether one contact satisfies a rule now.
#[pg_extern(stable, strict)]
fn rule_matches(contact: pgrx::Uuid, rule: Rule) -> bool {
    let tenant = current_tenant();
    citus::reading_local_rows(|| {
        let compiled = crate::api::rules::compile_for_tenant(&rule, &tenant, 3, Scope::Few);
        let query = format!(
            "SELECT ({}) IS TRUE FROM audience.contacts c WHERE c.tenant_id = $1::uuid AND c.id = $2::uuid",
            compiled.predicate
        );
        let contact = contact.to_string();
        let args = arguments(
            vec![tenant.as_str().into(), contact.as_str().into()],
            &compiled.params,
        );
        // A kept plan: views call this for every contact.
        Spi::connect(|client| {
            plans::select(&client, &query, &args)
                .and_then(plans::first_value::<bool>)
                .expect("evaluating rule")
                .unwrap_or(false)
        })
    })
}

/// Whether a rule's truth changes with the passing of time: through its
/// own conditions, or a segment it refers to (of the current tenant).
#[pg_extern(stable, strict, parallel_safe)]
fn rule_is_time_relative(rule: Rule) -> bool {
    let rule = rule.ast();
    rule.is_time_relative()
        || rule.refers_to_segments() && {
            let tenant = current_tenant();
            Spi::connect(|client| tenant_rules(client, &tenant).catalogue.reads_live(&rule))
        }
}

/// The ids of the segments a rule refers to (checked against the current
/// tenant's fields and segments).
#[pg_extern(stable, strict)]
fn rule_segments(rule: Rule) -> Vec<String> {
    let tenant = current_tenant();
    check(&rule.ast(), &crate::api::rules::tenant_catalogue(&tenant))
        .or_raise()
        .segments
        .into_iter()
        .collect()
}

/// The rule with references to segment `old` renamed to `new`; raises
/// 54001 when the renamed rule would be longer than a rule may be.
#[pg_extern(immutable, strict, parallel_safe)]
fn rule_rename_segment(rule: Rule, old: &str, new: &str) -> Rule {
    let renamed = rule.ast().rename_segment(old, new);
    let length = renamed.to_string().len();
    if length > core_rules::parser::MAX_RULE_BYTES {
        raise(
            Error::new(
                ErrorKind::TooComplex,
                format!(
                    "renaming segment \"{old}\" to \"{new}\" would make a rule that refers to it {length} bytes long, over the {} a rule may have",
                    core_rules::parser::MAX_RULE_BYTES
                ),
            )
            .with_hint("Choose a shorter name, or shorten the rules that refer to the segment; nothing was changed."),
        );
    }
    Rule::from_ast(&renamed)
}
