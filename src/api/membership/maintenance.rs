//! Per-statement maintenance: after a statement on contacts or events,
//! the touched contacts' rules are evaluated in one query per level of
//! segments and only the differences with stored membership are written.

use super::refresh::refresh_chosen;
use super::storage::{apply, segment_uuid, stored_in_segments, Differences};
use super::*;
use crate::api::plans;
use crate::api::rules::arguments;
use crate::api::scoring;
use crate::api::tenant_rules::{tenant_rules, TenantRules};
use crate::error::OrRaise;
use audience_core::rules::compile::{Params, Scope};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

/// Brings stored membership of `contacts` up to date with every dynamic
/// segment of `tenant` whose rule reads one of `columns` (all when null),
/// and with the segments that refer to those. Called by the
/// statement-level triggers on contacts and events, and after list edits.
#[pg_extern]
pub(crate) fn maintain_membership(
    tenant: &str,
    contacts: Vec<String>,
    columns: Option<Vec<String>>,
) -> i64 {
    if contacts.is_empty() {
        return 0;
    }
    // A bulk statement locks every segment it evaluates (see lock_segments).
    let lock_all = Batch::of(contacts.len()) == Batch::Many;
    let (rules, changes, changed_segments) = Spi::connect_mut(|client| {
        lock_rules(tenant, false);
        let rules = tenant_rules(client, tenant);
        // `columns` names contact columns, `events`, or segment ids whose
        // stored membership changed.
        let relevant = |s: &Dynamic| {
            columns.as_ref().is_none_or(|cols| {
                cols.iter()
                    .any(|c| s.reads.contains(c) || s.depends_on.contains(c))
            })
        };
        let mut changes = 0;
        // A segment that refers to a changed segment must be re-evaluated
        // even when it reads none of the changed columns.
        let mut changed_segments: HashSet<String> = HashSet::new();
        for level in &rules.levels {
            let chosen: Vec<usize> = level
                .iter()
                .copied()
                .filter(|&i| {
                    let segment = &rules.dynamic[i];
                    relevant(segment)
                        || segment
                            .depends_on
                            .iter()
                            .any(|d| changed_segments.contains(d))
                })
                .collect();
            if chosen.is_empty() {
                continue;
            }
            lock_segments(client, tenant, &rules, &chosen, lock_all);
            let level_differences = differences(client, tenant, &contacts, &rules, chosen);
            let (changed, applied) = apply(client, tenant, level_differences, lock_all);
            changed_segments.extend(changed);
            changes += applied;
        }
        (rules, changes, changed_segments)
    });
    // Fit points follow when a fit rule reads what the statement changed.
    scoring::refresh_fit(tenant, &rules, Some(&contacts), |rule| {
        columns
            .as_ref()
            .is_none_or(|cols| cols.iter().any(|c| rule.reads.contains(c)))
            || rule.segments.iter().any(|s| changed_segments.contains(s))
    });
    changes
}

/// Locks rows of the chosen segments before they are evaluated, in id
/// order (their levels come in order): those that refer to other
/// segments, or all of them (`all`, for a bulk statement).
///
/// Two statements changing different segments one of them refers to (a
/// list edit and an event, say) would otherwise each evaluate it without
/// the other's uncommitted change and both leave a contact out; holding
/// the row, the later one reads what the earlier committed. Segments
/// without such references need no lock for that: their inputs are the
/// contact's row and events, which the writer holds or wrote. A bulk
/// statement locks them all so that the difference it computes is final
/// and its new members need not be looked up again (~2 µs each); a single
/// contact's writer does not, so that writers of different contacts run
/// side by side.
fn lock_segments(
    client: &mut SpiClient,
    tenant: &str,
    rules: &TenantRules,
    chosen: &[usize],
    all: bool,
) {
    let mut locked: Vec<String> = chosen
        .iter()
        .map(|&i| &rules.dynamic[i])
        .filter(|s| all || !s.depends_on.is_empty())
        .map(|s| s.id.clone())
        .collect();
    if locked.is_empty() {
        return;
    }
    locked.sort_unstable();
    plans::update(
        client,
        "SELECT FROM audience.segments s WHERE s.tenant_id = $1::uuid AND s.id = ANY($2::uuid[])
          ORDER BY s.id FOR NO KEY UPDATE",
        &[tenant.into(), locked.into()],
    )
    .expect("locking segments before evaluating them");
}

/// After a send: re-evaluates, for everyone, the segments whose rules read
/// the tenant's last campaign (and the segments referring to them).
#[pg_extern]
fn campaign_sent(tenant: &str) -> i64 {
    let rules = Spi::connect_mut(|client| {
        lock_rules(tenant, false);
        tenant_rules(client, tenant)
    });
    let moved = refresh_chosen(tenant, &rules, |s| s.reads.contains("last_campaign"));
    let changes: i64 = moved
        .iter()
        .map(|(_, contacts)| contacts.len() as i64)
        .sum();
    let dependents: i64 = moved
        .into_iter()
        .map(|(segment, contacts)| maintain_membership(tenant, contacts, Some(vec![segment])))
        .sum();
    changes
        + dependents
        + scoring::refresh_fit(tenant, &rules, None, |rule| {
            rule.reads.contains("last_campaign")
        })
}

/// Above this many contacts, engagement conditions read the tenant's
/// matching events once rather than probing them contact by contact. An
/// event statement of 10k rows touches ~10k contacts: probing them through
/// the events index is ~10 times cheaper than reading millions of events.
pub(crate) const FEW_CONTACTS: usize = 50_000;

/// Up to this many contacts, maintenance queries and membership writes run
/// on generic plans: planning for them would take about as long as running.
pub(super) const GENERIC_PLAN_CONTACTS: usize = 100;

/// How many contacts a maintenance query is for: its plan, how it reads
/// events, and which segments are locked before it depend on it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Batch {
    /// Up to `GENERIC_PLAN_CONTACTS`: a `track`, an upsert.
    Handful,
    /// Up to `FEW_CONTACTS`.
    Few,
    Many,
}

impl Batch {
    fn of(contacts: usize) -> Batch {
        match contacts {
            n if n <= GENERIC_PLAN_CONTACTS => Batch::Handful,
            n if n <= FEW_CONTACTS => Batch::Few,
            _ => Batch::Many,
        }
    }
}

/// Evaluates the rules of the `chosen` dynamic segments for `contacts` and
/// compares the result with their stored membership.
fn differences(
    client: &SpiClient,
    tenant: &str,
    contacts: &[String],
    rules: &TenantRules,
    chosen: Vec<usize>,
) -> Differences {
    let batch = Batch::of(contacts.len());
    let ids: Vec<String> = chosen
        .iter()
        .map(|&i| rules.dynamic[i].id.clone())
        .collect();
    let key = (chosen, batch);
    let kept = rules.queries.borrow().get(&key).cloned();
    let compiled = kept.unwrap_or_else(|| {
        let compiled = Rc::new(differences_query(rules, &key.0, batch));
        rules.queries.borrow_mut().insert(key, compiled.clone());
        compiled
    });
    let (query, params) = &*compiled;
    let uuids: Vec<pgrx::Uuid> = ids.iter().map(|id| segment_uuid(id)).collect();
    let args = arguments(
        vec![tenant.into(), contacts.to_vec().into(), uuids.into()],
        params,
    );
    // Each contact's rule results and stored segments come back to be
    // compared here: the set operations that compare them in SQL cost more
    // than the query that reads them (100k contacts and 16 segments: 2.0 s
    // with a full join of wanted and stored memberships, 1.35 s so). A
    // handful of contacts plans the same whatever they are; a bulk
    // statement's plan is worth making for its size.
    let rows = if batch == Batch::Handful {
        plans::generic(|| plans::select(client, query, &args))
    } else {
        plans::select(client, query, &args)
    };
    let rows = rows.expect("evaluating rules for contacts");
    let mut changes: BTreeMap<&str, (Vec<pgrx::Uuid>, Vec<pgrx::Uuid>)> = BTreeMap::new();
    for row in rows {
        let Some(contact) = row.get::<pgrx::Uuid>(1).ok().flatten() else {
            continue;
        };
        let matches: Vec<Option<bool>> = row.get(2).ok().flatten().unwrap_or_default();
        let stored: Vec<Option<bool>> = row.get(3).ok().flatten().unwrap_or_default();
        for (i, segment) in ids.iter().enumerate() {
            let wanted = matches.get(i).copied().flatten().unwrap_or(false);
            match (wanted, stored.get(i).copied().flatten().unwrap_or(false)) {
                (true, false) => changes.entry(segment).or_default().0.push(contact),
                (false, true) => changes.entry(segment).or_default().1.push(contact),
                _ => {}
            }
        }
    }
    changes
        .into_iter()
        .map(|(segment, (entered, exited))| (segment.to_string(), entered, exited))
        .collect()
}

/// The query `differences` runs, with its bound values from `$4` on: each
/// contact's rule results and whether it is a stored member, for each of
/// the segments `$3` (contacts come in through `unnest`: `= ANY` of a
/// 10k-element parameter was planned as a scan comparing every stored
/// membership with every element).
fn differences_query(rules: &TenantRules, chosen: &[usize], batch: Batch) -> (String, Vec<String>) {
    let compile_all = |scope: Scope| {
        // $1 the tenant, $2 the contacts, $3 the segments, then each
        // rule's values.
        let (mut params, mut matches, mut counts) = (Params::after(3), Vec::new(), Vec::new());
        for &i in chosen {
            let compiled = params
                .compile(&rules.dynamic[i].rule, &rules.catalogue, scope)
                .or_raise();
            matches.push(format!("({}) IS TRUE", compiled.predicate));
            counts.extend(compiled.event_counts);
        }
        (params.values().to_vec(), matches, counts)
    };
    // Several engagement conditions read each contact's events once; a
    // single one probes just the events it asks about.
    let (params, matches, counts) = match compile_all(if batch == Batch::Many {
        Scope::All
    } else {
        Scope::Grouped
    }) {
        (_, _, counts) if counts.len() == 1 => compile_all(Scope::Few),
        compiled => compiled,
    };
    let event_counts = if counts.is_empty() {
        String::new()
    } else {
        let columns: Vec<String> = counts
            .iter()
            .map(|(alias, filter)| format!("count(*) FILTER (WHERE {filter}) AS {alias}"))
            .collect();
        format!(
            "CROSS JOIN LATERAL (SELECT {} FROM audience.events e WHERE e.tenant_id = $1::uuid AND e.contact_id = c.id) ev",
            columns.join(", ")
        )
    };
    // Each touched contact is looked up through the index (a lateral
    // subquery with OFFSET 0 is not flattened into a join, so it cannot
    // become a scan of the whole table).
    let contact = "(SELECT * FROM audience.contacts c
                     WHERE c.tenant_id = $1::uuid AND c.id = touched.id OFFSET 0) c";
    let (stored, stored_in) = stored_in_segments(chosen.len());
    // A contact that does not exist (any more) matches no rule.
    let query = format!(
        "SELECT touched.id,
                CASE WHEN c.id IS NULL THEN '{{}}'::boolean[] ELSE ARRAY[{matches}] END,
                {stored_in}
           FROM unnest($2::uuid[]) AS touched(id)
           LEFT JOIN LATERAL {contact} ON true
           LEFT JOIN LATERAL {stored} ON true
           {event_counts}",
        matches = matches.join(", "),
    );
    (query, params)
}
