//! Fit points: the part of a score that rules over contact fields add.
//! Engagement points are plain SQL (`sql/scoring.sql`); fit rules need the
//! rule compiler, so their maintenance lives here, with the check of event
//! kinds that every event write path calls.

use crate::api::membership::{self, FEW_CONTACTS};
use crate::api::plans;
use crate::api::rules::{arguments, current_tenant, Rule};
use crate::api::tenant_rules::{tenant_rules, TenantRules};
use crate::error::{raise, OrRaise};
use audience_core::rules::check::{check, Catalogue};
use audience_core::rules::compile::{Params, Scope};
use audience_core::rules::{self as core_rules};
use audience_core::{Error, ErrorKind};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::BTreeSet;

/// Columns a fit rule may not read: the score it adds to.
const SCORE_COLUMNS: [&str; 3] = ["score", "fit_score", "engagement_score"];

pub(crate) struct FitRule {
    pub rule: core_rules::Rule,
    points: i32,
    pub reads: BTreeSet<String>,
    pub segments: BTreeSet<String>,
}

pub(crate) fn load_fit_rules(
    client: &SpiClient,
    tenant: &str,
    catalogue: &Catalogue,
) -> Vec<FitRule> {
    plans::select(
        client,
        "SELECT rule::text, points FROM audience.fit_rules WHERE tenant_id = $1::uuid ORDER BY created_at, name",
        &[tenant.into()],
    )
    .expect("reading fit rules")
    .map(|row| {
        let text: String = row.get(1).ok().flatten().unwrap_or_default();
        let rule = core_rules::parse(&text).or_raise();
        let plan = check(&rule, catalogue).or_raise();
        FitRule {
            rule,
            points: row.get(2).ok().flatten().unwrap_or_default(),
            reads: plan.columns,
            segments: plan.segments,
        }
    })
    .collect()
}

/// Raises unless `rule` can be a fit rule of the current tenant: it must
/// check against the tenant's fields and must not read the score, neither
/// itself nor through the segments it refers to, at any depth.
#[pg_extern(stable, strict)]
fn check_fit_rule(rule: Rule) -> bool {
    let tenant = current_tenant();
    let rules = Spi::connect(|client| tenant_rules(client, &tenant.to_string()));
    let plan = check(&rule.ast(), &rules.catalogue).or_raise();
    let hint = "Fit rules describe who a contact is: fields, tags, custom fields, engagement.";
    if let Some(column) = SCORE_COLUMNS.iter().find(|c| plan.columns.contains(**c)) {
        raise(
            Error::new(
                ErrorKind::CyclicReference,
                format!("a fit rule cannot read {column}, the score it adds to"),
            )
            .with_hint(hint),
        );
    }
    if let Some((segment, column)) =
        membership::reading_through(&rules, &plan.segments, &SCORE_COLUMNS)
    {
        raise(
            Error::new(
                ErrorKind::CyclicReference,
                format!("a fit rule cannot read {column}, the score it adds to, through segment \"{segment}\""),
            )
            .with_hint(hint),
        );
    }
    true
}

/// Sets `fit_score` of `contacts` (all of the tenant's when null) to the
/// points of the fit rules they match; returns how many changed.
#[pg_extern]
fn maintain_fit(tenant: &str, contacts: Option<Vec<String>>) -> i64 {
    let rules = Spi::connect(|client| tenant_rules(client, tenant));
    write_fit(tenant, contacts.as_deref(), &rules.fit, &rules.catalogue)
}

/// Re-evaluates fit points of `contacts` (all of the tenant's when null)
/// when one of the tenant's fit rules is `stale`: reads what a statement
/// changed, the time, or the last campaign. Returns how many changed.
pub fn refresh_fit(
    tenant: &str,
    rules: &TenantRules,
    contacts: Option<&[String]>,
    stale: impl Fn(&FitRule) -> bool,
) -> i64 {
    if !rules.fit.iter().any(stale) {
        return 0;
    }
    write_fit(tenant, contacts, &rules.fit, &rules.catalogue)
}

fn write_fit(
    tenant: &str,
    contacts: Option<&[String]>,
    rules: &[FitRule],
    catalogue: &Catalogue,
) -> i64 {
    let scope = match contacts {
        Some(few) if few.len() <= FEW_CONTACTS => Scope::Few,
        _ => Scope::All,
    };
    // $1 the tenant, $2 the contacts, then each rule's values and points.
    let mut params = Params::after(2);
    let mut terms = vec!["0".to_string()];
    for fit in rules {
        let compiled = params.compile(&fit.rule, catalogue, scope).or_raise();
        let points = params.bind(fit.points.to_string());
        terms.push(format!(
            "CASE WHEN ({}) IS TRUE THEN {points}::integer ELSE 0 END",
            compiled.predicate
        ));
    }
    let query = format!(
        "UPDATE audience.contacts target SET fit_score = f.total
           FROM (SELECT c.id, {} AS total FROM audience.contacts c
                  WHERE c.tenant_id = $1::uuid
                    AND ($2::uuid[] IS NULL OR c.id IN (SELECT unnest($2::uuid[])))) f
          WHERE target.tenant_id = $1::uuid AND target.id = f.id AND target.fit_score <> f.total",
        terms.join(" + ")
    );
    let args = arguments(
        vec![tenant.into(), contacts.map(<[String]>::to_vec).into()],
        params.values(),
    );
    Spi::connect_mut(|client| {
        client
            .update(&query, None, &args)
            .map(|done| done.len() as i64)
    })
    .expect("writing fit scores")
}

/// The kind trimmed and lower-cased; raises 22023 when it is not a word.
#[pg_extern(immutable, parallel_safe)]
fn check_event_kind(kind: Option<&str>) -> String {
    audience_core::normalize::event_kind(kind).or_raise()
}

/// `audience.tier_of(score, hot, warm)`: the tier by given thresholds (null:
/// the defaults), for queries that join the tenant's settings.
#[pg_extern(immutable, parallel_safe)]
fn tier_of(score: Option<i32>, hot: Option<i32>, warm: Option<i32>) -> &'static str {
    audience_core::tiers::tier(score, hot, warm)
}

thread_local! {
    /// The thresholds last read, with the tenant and the moment (command of
    /// a statement of a transaction) they hold for.
    static THRESHOLDS: std::cell::Cell<Option<(Moment, pgrx::Uuid, Option<i32>, Option<i32>)>> =
        const { std::cell::Cell::new(None) };
}

type Moment = (pg_sys::TimestampTz, pg_sys::TimestampTz, pg_sys::CommandId);

/// `audience.score_tier(score)`: the tier by the current tenant's
/// thresholds. Views call it for every row: the thresholds are read once
/// per command, which is as long as a stable function may assume they hold.
#[pg_extern(stable, parallel_safe)]
fn score_tier(score: Option<i32>) -> &'static str {
    let tenant = crate::api::tenants::current_tenant();
    let now: Moment = unsafe {
        (
            pg_sys::GetCurrentTransactionStartTimestamp(),
            pg_sys::GetCurrentStatementStartTimestamp(),
            pg_sys::GetCurrentCommandId(false),
        )
    };
    let (hot, warm) = match THRESHOLDS.get() {
        Some((at, kept, hot, warm)) if at == now && kept == tenant => (hot, warm),
        _ => {
            let (hot, warm) = crate::api::citus::reading_local_rows(|| {
                Spi::connect(|client| {
                    let rows = plans::select(
                        client,
                        "SELECT hot_score, warm_score FROM audience.settings WHERE tenant_id = $1",
                        &[tenant.into()],
                    )?;
                    if rows.is_empty() {
                        Ok((None, None))
                    } else {
                        rows.first().get_two::<i32, i32>()
                    }
                })
            })
            .expect("reading the tenant's tier thresholds");
            THRESHOLDS.set(Some((now, tenant, hot, warm)));
            (hot, warm)
        }
    };
    audience_core::tiers::tier(score, hot, warm)
}
