//! Refresh: recomputing a segment from its rule over the whole tenant
//! (time-relative rules, query segments), writing only the difference.

use super::live::unknown_segment;
use super::storage::{apply, current_sql, stored_member};
use super::*;
use crate::api::plans;
use crate::api::rules::{arguments, current_tenant};
use crate::api::scoring;
use crate::api::tenant_rules::{tenant_rules, TenantRules};
use crate::error::{raise, OrRaise};
use audience_core::rules::check::Catalogue;
use audience_core::rules::compile::{compile, Scope};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::BTreeSet;
use std::ffi::CStr;
use std::time::Instant;

/// Recomputes stored membership of one dynamic segment from its rule,
/// applying only the difference. Returns (entered, exited) contact ids.
fn refresh_one(
    client: &mut SpiClient,
    tenant: &str,
    segment: &Dynamic,
    catalogue: &Catalogue,
) -> (Vec<pgrx::Uuid>, Vec<pgrx::Uuid>) {
    let started = Instant::now();
    let compiled = compile(&segment.rule, catalogue, 3, Scope::All).or_raise();
    let args = arguments(
        vec![tenant.into(), segment.id.as_str().into()],
        &compiled.params,
    );
    // A segment holding most of the tenant, whose members the passing of
    // time can only take out, is first checked for members that left.
    let (stored, contacts) = stored_and_contacts(client, tenant, &segment.id);
    let (entered, exited) = contacts
        .filter(|&contacts| {
            stored as f64 * 2.0 >= contacts && segment.rule.time_only_removes() && current_sql()
        })
        .and_then(|_| leavers(client, &compiled.predicate, &args, stored))
        .map(|exited| (Vec::new(), exited))
        .unwrap_or_else(|| difference(client, &compiled.predicate, &args));
    apply(
        client,
        tenant,
        vec![(segment.id.clone(), entered.clone(), exited.clone())],
        false,
    );
    client
        .update(
            "UPDATE audience.segments SET refreshed_at = now(), refresh_duration = make_interval(secs => $3)
              WHERE tenant_id = $1::uuid AND id = $2::uuid",
            None,
            &[tenant.into(), segment.id.as_str().into(), started.elapsed().as_secs_f64().into()],
        )
        .expect("recording the refresh");
    (entered, exited)
}

/// The segment's stored members, and how many contacts the planner
/// expects the tenant to have: None before the first ANALYZE, the whole
/// table's when the tenant's share is not in the statistics.
fn stored_and_contacts(client: &SpiClient, tenant: &str, segment: &str) -> (i64, Option<f64>) {
    let stored = client
        .select(
            "SELECT s.member_count FROM audience.segments s WHERE s.tenant_id = $1::uuid AND s.id = $2::uuid",
            None,
            &[tenant.into(), segment.into()],
        )
        .and_then(|rows| rows.first().get_one::<i64>())
        .expect("reading the segment's size");
    // Apart from segments, which Citus may distribute: it would ship the
    // catalogs to the worker to join them.
    let contacts = client
        .select(
            "SELECT c.reltuples::float8 * coalesce(
                        (SELECT f.freq FROM pg_stats t
                          CROSS JOIN LATERAL unnest(t.most_common_vals::text::uuid[], t.most_common_freqs) f(tenant, freq)
                          WHERE t.schemaname = 'audience' AND t.tablename = 'contacts'
                            AND t.attname = 'tenant_id' AND f.tenant = $1::uuid), 1)
               FROM pg_class c WHERE c.oid = 'audience.contacts'::regclass AND c.reltuples > 0",
            None,
            &[tenant.into()],
        )
        .and_then(plans::first_value::<f64>)
        .expect("reading the tenant's share of contacts");
    (stored.unwrap_or(0), contacts)
}

/// Settings for a refresh's scan of a whole tenant. Few rows differ, but
/// the planner expects half the tenant (the default selectivity of `<>`)
/// and found passing them from parallel workers too dear: a serial join of
/// 1M contacts took 1.5 s, a parallel one 0.8 s. Not JIT compiled, like the
/// maintenance queries (60 ms of compiling for a 1 s query). Planned each
/// time, not kept (see plans): kept plans never run in parallel. Random
/// reads keep their default price: made cheap, they turned the scan of a
/// tenant's contacts into a walk of their index (1.8 s).
const TENANT_SCAN: [(&CStr, &CStr); 2] = [(c"parallel_tuple_cost", c"0"), (c"jit", c"off")];

/// The members that no longer match, found by looking up only the
/// contacts that do not match (the others join on a null key, which skips
/// the lookup), in the one pass that counts those that do. When the count
/// left after they go is the count that matches, nobody new matches
/// (members are existing contacts, and `member_count` counts them), and
/// this is the whole difference; otherwise None. For 1M contacts of which
/// 920k are members: 0.48–0.55 s where comparing every contact took
/// 0.56–0.70 s.
fn leavers(
    client: &SpiClient,
    predicate: &str,
    args: &[DatumWithOid],
    stored: i64,
) -> Option<Vec<pgrx::Uuid>> {
    let query = format!(
        "SELECT count(*) FILTER (WHERE probe.contact IS NULL), audience.uuid_list(m.contact_id) FILTER (WHERE m.contact_id IS NOT NULL)
           FROM audience.contacts c
          CROSS JOIN LATERAL (SELECT CASE WHEN ({predicate}) IS TRUE THEN NULL ELSE c.id END) probe(contact)
           LEFT JOIN {stored}
          WHERE c.tenant_id = $1::uuid",
        stored = stored_member("probe.contact"),
    );
    // One shared hash of the members: looked up per contact through the
    // index instead, even the null keys cost a rescan each (1.0–1.2 s).
    let settings = [
        TENANT_SCAN[0],
        TENANT_SCAN[1],
        (c"enable_nestloop", c"off"),
        (c"enable_mergejoin", c"off"),
    ];
    let (matching, exited) = plans::with_settings(&settings, || {
        client
            .select(&query, None, args)
            .and_then(|rows| rows.first().get_two::<i64, Vec<pgrx::Uuid>>())
    })
    .expect("finding members that left");
    let exited = exited.unwrap_or_default();
    (matching.unwrap_or(0) == stored - exited.len() as i64).then_some(exited)
}

/// The whole difference between the rule and stored membership: one pass
/// over the tenant's contacts joined with the stored members (a left join,
/// which PostgreSQL runs with parallel workers, where a full join it
/// cannot): only the difference is sent back. Members are existing
/// contacts: deleting a contact takes it out of every segment.
fn difference(
    client: &SpiClient,
    predicate: &str,
    args: &[DatumWithOid],
) -> (Vec<pgrx::Uuid>, Vec<pgrx::Uuid>) {
    let query = format!(
        "SELECT coalesce(array_agg(c.id) FILTER (WHERE m.contact_id IS NULL), '{{}}'),
                coalesce(array_agg(c.id) FILTER (WHERE m.contact_id IS NOT NULL), '{{}}')
           FROM audience.contacts c
           LEFT JOIN {stored}
          WHERE c.tenant_id = $1::uuid AND (({predicate}) IS TRUE) <> (m.contact_id IS NOT NULL)",
        stored = stored_member("c.id"),
    );
    // The segment is a subquery's value, which the planner does not know:
    // for a segment created since the last ANALYZE, it expected one member
    // and each process hashed all of them for itself, or sorted them
    // (1.0–2.1 s for 940k members); for a segment it does not know, it
    // expects an average one and shares one parallel hash (0.9 s, in a
    // table of 2M contacts and 12M memberships). Where the statistics make
    // even that estimate tiny, the leader leaves the join to the workers
    // rather than build a third copy of the hash (0.8 s instead of 1.0 s).
    // Always a hash join: with statistics from before a large write to
    // stored membership, a nested loop over every contact was chosen (a
    // refresh of 9k changes among 1M contacts took 273 s).
    let settings = [
        TENANT_SCAN[0],
        TENANT_SCAN[1],
        (c"parallel_leader_participation", c"off"),
        (c"enable_nestloop", c"off"),
    ];
    let (entered, exited) = plans::with_settings(&settings, || {
        client
            .select(&query, None, args)
            .and_then(|rows| rows.first().get_two::<Vec<pgrx::Uuid>, Vec<pgrx::Uuid>>())
    })
    .expect("computing membership difference");
    (entered.unwrap_or_default(), exited.unwrap_or_default())
}

/// Refreshes the tenant's `chosen` dynamic segments in dependency order;
/// returns each one's moved contacts (entered or exited).
pub(super) fn refresh_chosen(
    tenant: &str,
    rules: &TenantRules,
    chosen: impl Fn(&Dynamic) -> bool,
) -> Vec<(String, Vec<String>)> {
    Spi::connect_mut(|client| {
        let mut moved = Vec::new();
        for level in &rules.levels {
            for segment in level
                .iter()
                .map(|&i| &rules.dynamic[i])
                .filter(|s| chosen(s))
            {
                let (entered, exited) = refresh_one(client, tenant, segment, &rules.catalogue);
                moved.push((
                    segment.id.clone(),
                    entered
                        .iter()
                        .chain(&exited)
                        .map(|c| c.to_string())
                        .collect(),
                ));
            }
        }
        moved
    })
}

/// Re-evaluates dynamic and query segments (one by name, or all when null)
/// for the current tenant, applying only the difference; returns how many
/// memberships changed. Segments referring to a refreshed one follow.
#[pg_extern]
fn refresh(segment: default!(Option<&str>, "NULL")) -> i64 {
    let tenant = current_tenant();
    let rules = Spi::connect_mut(|client| {
        lock_rules(&tenant, true);
        tenant_rules(client, &tenant)
    });
    let wanted = segment.map(|name| {
        rules
            .catalogue
            .segment_id(name)
            .map(str::to_string)
            .unwrap_or_else(|| raise(unknown_segment(name)))
    });
    // Query segments first: dynamic segments may refer to them.
    let queried = crate::api::query_segments::refresh(&tenant, wanted.as_deref());
    let moved: BTreeSet<String> = queried
        .into_iter()
        .chain(refresh_chosen(&tenant, &rules, |s| {
            wanted.as_ref().is_none_or(|id| *id == s.id)
        }))
        .flat_map(|(_, contacts)| contacts)
        .collect();
    let changes = moved.len() as i64;
    match wanted {
        Some(id) if !moved.is_empty() => {
            maintain_membership(&tenant, moved.into_iter().collect(), Some(vec![id]));
        }
        // Fit points from time-relative rules age like segments do.
        None => {
            scoring::refresh_fit(&tenant, &rules, None, |rule| {
                rules.catalogue.is_time_relative(&rule.rule)
            });
        }
        _ => {}
    }
    changes
}
