//! Segment membership: the per-statement maintenance that keeps stored
//! membership equal to the rules, refresh of time-relative rules, and live
//! evaluation where stored membership may lag (time-relative rules).
//! Every change of stored membership goes through the SQL function
//! `audience.apply_memberships`, which also logs and announces it.

use crate::api::compat;
use crate::api::plans;
use crate::api::rules::{arguments, current_tenant, Rule};
use crate::api::scoring;
use crate::api::tenant_rules::{tenant_rules, TenantRules};
use crate::api::tenants;
use crate::error::{raise, OrRaise};
use audience_core::rules::check::{check, Catalogue};
use audience_core::rules::compile::{compile, Compiled, Params, Scope};
use audience_core::rules::{self as core_rules};
use audience_core::{Error, ErrorKind};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::CStr;
use std::rc::Rc;
use std::time::Instant;

/// A tenant's dynamic segment with its parsed rule.
pub(crate) struct Dynamic {
    id: String,
    rule: core_rules::Rule,
    /// Ids of the segments its rule refers to.
    depends_on: BTreeSet<String>,
    /// What its rule reads (contact columns, or `events`).
    reads: BTreeSet<String>,
}

impl Dynamic {
    pub(crate) fn id_and_rule(&self) -> (&str, &core_rules::Rule) {
        (&self.id, &self.rule)
    }
}

pub(crate) fn load_dynamic(
    client: &SpiClient,
    tenant: &str,
    catalogue: &Catalogue,
) -> Vec<Dynamic> {
    plans::select(
        client,
        "SELECT id::text, rule::text FROM audience.segments
          WHERE tenant_id = $1::uuid AND kind = 'dynamic' ORDER BY created_at, id",
        &[tenant.into()],
    )
    .expect("reading segments")
    .map(|row| {
        let id: String = row.get(1).ok().flatten().unwrap_or_default();
        let text: String = row.get(2).ok().flatten().unwrap_or_default();
        let rule = core_rules::parse(&text).or_raise();
        let plan = check(&rule, catalogue).or_raise();
        Dynamic {
            id,
            rule,
            depends_on: plan.segments,
            reads: plan.columns,
        }
    })
    .collect()
}

/// Takes the tenant's rules for this transaction: shared to maintain
/// membership by them, exclusive to re-evaluate them (rule changes and
/// refresh). Queries after it read with a fresh snapshot, which sees every
/// change committed by the holders it waited for.
pub(crate) fn lock_rules(tenant: &str, exclusive: bool) {
    advisory_xact_lock("audience rules", tenant, exclusive);
}

/// `audience.lock_rules(tenant, exclusive)`, for the SQL that changes
/// rules (internal: no application role may call it).
#[pg_extern(name = "lock_rules")]
fn lock_rules_sql(tenant: pgrx::Uuid, exclusive: bool) {
    lock_rules(&tenant.to_string(), exclusive);
}

/// Takes the tenant's bulk writes for this transaction, as imports and
/// multi-row event statements do: one such writer of a tenant at a time,
/// so that they never hold each other's contacts or segments. After
/// `lock_rules`, in the same order as there.
pub(crate) fn lock_bulk_writes(tenant: &str) {
    advisory_xact_lock("audience bulk writes", tenant, true);
}

/// `audience.lock_bulk_writes(tenant)`, for the events trigger (internal).
#[pg_extern(name = "lock_bulk_writes")]
fn lock_bulk_writes_sql(tenant: pgrx::Uuid) {
    lock_bulk_writes(&tenant.to_string());
}

/// `pg_advisory_xact_lock(hashtext(class), hashtext(tenant))`, or its
/// shared form.
fn advisory_xact_lock(class: &str, tenant: &str, exclusive: bool) {
    let lock = if exclusive {
        sql_functions::pg_advisory_xact_lock_int4
    } else {
        sql_functions::pg_advisory_xact_lock_shared_int4
    };
    let key = |text: &str| unsafe {
        pg_sys::DirectFunctionCall1Coll(
            Some(sql_functions::hashtext),
            pg_sys::DEFAULT_COLLATION_OID,
            text.into_datum().expect("text"),
        )
    };
    unsafe {
        pg_sys::DirectFunctionCall2Coll(Some(lock), pg_sys::InvalidOid, key(class), key(tenant))
    };
}

/// PostgreSQL's own SQL-callable functions, called through
/// `DirectFunctionCall` (pgrx binds them only as Rust wrappers).
mod sql_functions {
    use pgrx::pg_sys::{Datum, FunctionCallInfo};
    unsafe extern "C-unwind" {
        pub fn hashtext(fcinfo: FunctionCallInfo) -> Datum;
        pub fn pg_advisory_xact_lock_int4(fcinfo: FunctionCallInfo) -> Datum;
        pub fn pg_advisory_xact_lock_shared_int4(fcinfo: FunctionCallInfo) -> Datum;
    }
}

/// Statement trigger on contacts and events: takes the current tenant's
/// rules shared before the statement locks a single row (taken only in
/// the AFTER trigger, a writer holding contact rows could queue behind a
/// waiting rule change that waits for another writer needing those rows).
/// No error for an unset or unknown tenant (say, one being dropped): it
/// has no rules to take.
#[pg_trigger]
fn rules_for_statement<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, core::convert::Infallible> {
    if let Some(tenant) = tenants::selected_tenant() {
        lock_rules(&tenant.to_string(), false);
    }
    Ok(None)
}

/// The first segment (by name) among `ids` and the segments they refer to,
/// at any depth, whose rule reads one of `columns`, with that column.
pub(crate) fn reading_through(
    rules: &TenantRules,
    ids: &BTreeSet<String>,
    columns: &[&'static str],
) -> Option<(String, &'static str)> {
    let by_id: std::collections::HashMap<&str, &Dynamic> =
        rules.dynamic.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut waiting: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut found = Vec::new();
    while let Some(id) = waiting.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(segment) = by_id.get(id) else {
            continue;
        };
        if let Some(column) = columns.iter().find(|c| segment.reads.contains(**c)) {
            found.push((id, *column));
        }
        waiting.extend(segment.depends_on.iter().map(String::as_str));
    }
    let name = |id: &str| rules.catalogue.segment_name(id).unwrap_or(id).to_string();
    found
        .into_iter()
        .map(|(id, column)| (name(id), column))
        .min()
}

/// Groups segments into levels so that each segment comes after the
/// segments it refers to. Raises 42P17 on a cycle.
pub(crate) fn levels(segments: &[Dynamic]) -> Vec<Vec<usize>> {
    let dynamic: HashSet<&str> = segments.iter().map(|s| s.id.as_str()).collect();
    let mut placed: HashSet<&str> = HashSet::new();
    let mut remaining: Vec<usize> = (0..segments.len()).collect();
    let mut result = Vec::new();
    while !remaining.is_empty() {
        let (ready, waiting): (Vec<usize>, Vec<usize>) = remaining.iter().partition(|&&i| {
            segments[i]
                .depends_on
                .iter()
                .all(|d| !dynamic.contains(d.as_str()) || placed.contains(d.as_str()))
        });
        if ready.is_empty() {
            raise(Error::new(
                ErrorKind::CyclicReference,
                "segments refer to each other in a cycle",
            ));
        }
        placed.extend(ready.iter().map(|&i| segments[i].id.as_str()));
        result.push(ready);
        remaining = waiting;
    }
    result
}

/// Raises 42P17 when `segment` of `tenant` would come to refer to itself
/// through `refs`, the segments its new rule refers to, naming the way
/// back. Each segment is looked at once.
#[pg_extern(stable, strict)]
fn check_no_cycle(tenant: pgrx::Uuid, segment: pgrx::Uuid, refs: Vec<pgrx::Uuid>) {
    let rules = Spi::connect(|client| tenant_rules(client, &tenant.to_string()));
    let edges: std::collections::HashMap<String, Vec<String>> = rules
        .dynamic
        .iter()
        .map(|d| (d.id.clone(), d.depends_on.iter().cloned().collect()))
        .collect();
    let target = segment.to_string();
    let refs: Vec<String> = refs.iter().map(|id| id.to_string()).collect();
    if let Some(path) = audience_core::graph::path_to(&target, &refs, &edges) {
        let name = |id: &String| rules.catalogue.segment_name(id).unwrap_or(id).to_string();
        let own = name(&target);
        let way: Vec<String> = std::iter::once(own.clone())
            .chain(path.iter().map(name))
            .collect();
        raise(
            Error::new(
                ErrorKind::CyclicReference,
                format!("segment \"{own}\" would refer to itself: {}", way.join(" → ")),
            )
            .with_hint("A segment's rule cannot depend on the segment itself, directly or through other segments."),
        );
    }
}

/// A segment's id (kept as text in the rules) as a uuid.
fn segment_uuid(id: &str) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(
        uuid::Uuid::parse_str(id)
            .expect("segment ids are uuids")
            .into_bytes(),
    )
}

/// Applies segments' changes through the single write path, in one call
/// for all of them; returns the segments whose membership changed and the
/// number of changes. `known_new`: the segments were locked before
/// `entered` was computed, so none of them is a member (nobody else could
/// have added one since); `audience.apply_memberships` then does not look
/// them up.
/// Applies differences (segment, entered, exited) of stored membership,
/// for membership computed elsewhere (query segments).
pub(crate) fn apply_differences(client: &mut SpiClient, tenant: &str, differences: Differences) {
    apply(client, tenant, differences, false);
}

fn apply(
    client: &mut SpiClient,
    tenant: &str,
    differences: Differences,
    known_new: bool,
) -> (HashSet<String>, i64) {
    if differences.is_empty() {
        return (HashSet::new(), 0);
    }
    if !current_sql() {
        return apply_one_by_one(client, tenant, differences);
    }
    // New members in contact order, as the write wants them; leavers by
    // segment, as their lookups read the index.
    let segments: Vec<pgrx::Uuid> = differences
        .iter()
        .map(|(id, _, _)| segment_uuid(id))
        .collect();
    let mut entered: Vec<(pgrx::Uuid, pgrx::Uuid)> = Vec::new();
    let mut exited: Vec<(pgrx::Uuid, pgrx::Uuid)> = Vec::new();
    for ((_, came, gone), &segment) in differences.iter().zip(&segments) {
        entered.extend(came.iter().map(|&contact| (contact, segment)));
        exited.extend(gone.iter().map(|&contact| (segment, contact)));
    }
    entered.sort_unstable();
    exited.sort_unstable();
    let few = entered.len() + exited.len() <= GENERIC_PLAN_CONTACTS;
    let (entered_contacts, entered_to): (Vec<pgrx::Uuid>, Vec<pgrx::Uuid>) =
        entered.into_iter().unzip();
    let (exited_from, exited_contacts): (Vec<pgrx::Uuid>, Vec<pgrx::Uuid>) =
        exited.into_iter().unzip();
    let args: Vec<DatumWithOid> = vec![
        tenant.into(),
        segments.into(),
        entered_to.into(),
        entered_contacts.into(),
        exited_from.into(),
        exited_contacts.into(),
        known_new.into(),
    ];
    let mut write = || {
        plans::update(
            client,
            "SELECT a.segment::text, a.changes FROM audience.apply_memberships($1::uuid, $2, $3, $4, $5, $6, $7) a",
            &args,
        )
        .map(|rows| {
            rows.map(|row| {
                (
                    row.get::<String>(1).ok().flatten().unwrap_or_default(),
                    row.get::<i64>(2).ok().flatten().unwrap_or(0),
                )
            })
            .collect::<Vec<_>>()
        })
    };
    let applied = if few { plans::generic(write) } else { write() };
    let applied = applied.expect("applying membership changes");
    let changes = applied.iter().map(|(_, n)| n).sum();
    (
        applied.into_iter().map(|(segment, _)| segment).collect(),
        changes,
    )
}

/// Whether the database's SQL has `audience.apply_memberships` (0.1.0's
/// has not: see `compat`).
fn current_sql() -> bool {
    compat::installed() > compat::Release::V0_1_0
}

/// `apply` through the one-segment write of 0.1.0's SQL.
fn apply_one_by_one(
    client: &mut SpiClient,
    tenant: &str,
    differences: Differences,
) -> (HashSet<String>, i64) {
    let mut changed = HashSet::new();
    let mut changes = 0;
    for (segment, entered, exited) in differences {
        let applied = client
            .update(
                "SELECT audience.apply_membership($1::uuid, $2::uuid, $3, $4)",
                None,
                &[
                    tenant.into(),
                    segment.as_str().into(),
                    entered.into(),
                    exited.into(),
                ],
            )
            .and_then(|rows| rows.first().get_one::<i64>())
            .expect("applying membership changes")
            .unwrap_or(0);
        if applied > 0 {
            changed.insert(segment);
        }
        changes += applied;
    }
    (changed, changes)
}

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

/// Removes deleted contacts (or contacts moved to another tenant) from
/// every segment of the tenant they were in, lists included.
pub(crate) fn leave_segments(by_tenant: BTreeMap<String, Vec<String>>) -> i64 {
    Spi::connect_mut(|client| {
        by_tenant
            .into_iter()
            .map(|(tenant, contacts)| {
                let gone = departed(client, &tenant, &contacts);
                apply(client, &tenant, gone, false).1
            })
            .sum()
    })
}

/// `(segment id, entered, exited)` for each segment with a change.
type Differences = Vec<(String, Vec<pgrx::Uuid>, Vec<pgrx::Uuid>)>;

fn read_differences(client: &SpiClient, query: &str, args: &[DatumWithOid]) -> Differences {
    plans::select(client, query, args)
        .expect("computing membership differences")
        .map(|row| {
            (
                row.get::<String>(1).ok().flatten().unwrap_or_default(),
                row.get::<Vec<pgrx::Uuid>>(2)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                row.get::<Vec<pgrx::Uuid>>(3)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// Above this many contacts, engagement conditions read the tenant's
/// matching events once rather than probing them contact by contact. An
/// event statement of 10k rows touches ~10k contacts: probing them through
/// the events index is ~10 times cheaper than reading millions of events.
pub(crate) const FEW_CONTACTS: usize = 50_000;

/// Up to this many contacts, maintenance queries and membership writes run
/// on generic plans: planning for them would take about as long as running.
const GENERIC_PLAN_CONTACTS: usize = 100;

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
    let args = arguments(vec![tenant.into(), contacts.to_vec().into()], params);
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
    let uuids: Vec<pgrx::Uuid> = ids.iter().map(|id| segment_uuid(id)).collect();
    let mut changes: BTreeMap<&str, (Vec<pgrx::Uuid>, Vec<pgrx::Uuid>)> = BTreeMap::new();
    for row in rows {
        let Some(contact) = row.get::<pgrx::Uuid>(1).ok().flatten() else {
            continue;
        };
        let matches: Vec<Option<bool>> = row.get(2).ok().flatten().unwrap_or_default();
        let stored: Vec<pgrx::Uuid> = row.get(3).ok().flatten().unwrap_or_default();
        for (i, (segment, uuid)) in ids.iter().zip(&uuids).enumerate() {
            let wanted = matches.get(i).copied().flatten().unwrap_or(false);
            match (wanted, stored.contains(uuid)) {
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

/// The query `differences` runs, with its bound values from `$3` on: each
/// contact's rule results and stored segments (contacts come in through
/// `unnest`: `= ANY` of a 10k-element parameter was planned as a scan
/// comparing every stored membership with every element).
fn differences_query(rules: &TenantRules, chosen: &[usize], batch: Batch) -> (String, Vec<String>) {
    let compile_all = |scope: Scope| {
        // $1 the tenant, $2 the contacts, then each rule's values.
        let (mut params, mut matches, mut counts) = (Params::after(2), Vec::new(), Vec::new());
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
    // Its stored memberships, of all segments: picking the chosen ones
    // out is cheaper in Rust (a 100k-contact UPDATE with 15 chosen
    // segments compared ~15M ids one function call each in SQL).
    let stored = "audience.segment_members m
                   WHERE m.tenant_id = $1::uuid AND m.contact_id = touched.id";
    // A contact that does not exist (any more) matches no rule.
    let query = format!(
        "SELECT touched.id,
                CASE WHEN c.id IS NULL THEN '{{}}'::boolean[] ELSE ARRAY[{matches}] END,
                ARRAY(SELECT m.segment_id FROM {stored})
           FROM unnest($2::uuid[]) AS touched(id)
           LEFT JOIN LATERAL {contact} ON true
           {event_counts}",
        matches = matches.join(", "),
    );
    (query, params)
}

/// Stored memberships of `contacts` that no longer exist, per segment.
fn departed(client: &SpiClient, tenant: &str, contacts: &[String]) -> Differences {
    read_differences(
        client,
        "SELECT m.segment_id::text, '{}'::uuid[], array_agg(m.contact_id)
           FROM unnest($2::uuid[]) AS touched(id)
           JOIN audience.segment_members m ON m.tenant_id = $1::uuid AND m.contact_id = touched.id
          WHERE NOT EXISTS (SELECT FROM audience.contacts c WHERE c.tenant_id = m.tenant_id AND c.id = m.contact_id)
          GROUP BY m.segment_id",
        &[tenant.into(), contacts.to_vec().into()],
    )
}

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
    client
        .select(
            "SELECT s.member_count,
                    (SELECT c.reltuples::float8 * coalesce(
                                (SELECT f.freq FROM pg_stats t
                                  CROSS JOIN LATERAL unnest(t.most_common_vals::text::uuid[], t.most_common_freqs) f(tenant, freq)
                                  WHERE t.schemaname = 'audience' AND t.tablename = 'contacts'
                                    AND t.attname = 'tenant_id' AND f.tenant = $1::uuid), 1)
                       FROM pg_class c WHERE c.oid = 'audience.contacts'::regclass AND c.reltuples > 0)
               FROM audience.segments s WHERE s.tenant_id = $1::uuid AND s.id = $2::uuid",
            None,
            &[tenant.into(), segment.into()],
        )
        .and_then(|rows| rows.first().get_two::<i64, f64>())
        .map(|(stored, contacts)| (stored.unwrap_or(0), contacts))
        .expect("reading the segment's size")
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
           LEFT JOIN audience.segment_members m
                  ON m.tenant_id = $1::uuid AND m.segment_id = (SELECT $2::uuid) AND m.contact_id = probe.contact
          WHERE c.tenant_id = $1::uuid"
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
           LEFT JOIN audience.segment_members m
                  ON m.tenant_id = $1::uuid AND m.segment_id = (SELECT $2::uuid) AND m.contact_id = c.id
          WHERE c.tenant_id = $1::uuid AND (({predicate}) IS TRUE) <> (m.contact_id IS NOT NULL)"
    );
    // The segment is a subquery's value, which the planner does not know:
    // for a segment created since the last ANALYZE, it expected one member
    // and each process hashed all of them for itself, or sorted them
    // (1.0–2.1 s for 940k members); for a segment it does not know, it
    // expects an average one and shares one parallel hash (0.9 s, in a
    // table of 2M contacts and 12M memberships). Where the statistics make
    // even that estimate tiny, the leader leaves the join to the workers
    // rather than build a third copy of the hash (0.8 s instead of 1.0 s).
    let settings = [
        TENANT_SCAN[0],
        TENANT_SCAN[1],
        (c"parallel_leader_participation", c"off"),
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
fn refresh_chosen(
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

pub fn unknown_segment(name: &str) -> Error {
    Error::new(
        ErrorKind::UndefinedObject,
        format!("unknown segment \"{name}\""),
    )
    .with_hint("audience.segment_overview lists the segments of the current tenant.")
}

/// The contacts that satisfy a dynamic segment's rule now, for rules whose
/// stored membership may lag behind the clock.
#[pg_extern(stable, strict)]
fn live_members(rule: Rule) -> Vec<String> {
    let tenant = current_tenant();
    let compiled: Compiled = crate::api::rules::compile_for_tenant(&rule, &tenant, 2, Scope::All);
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
}

/// Whether one contact satisfies a rule now.
#[pg_extern(stable, strict)]
fn rule_matches(contact: pgrx::Uuid, rule: Rule) -> bool {
    let tenant = current_tenant();
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
    Spi::connect(|client| {
        client
            .select(&query, Some(1), &args)
            .and_then(|rows| {
                if rows.is_empty() {
                    Ok(None)
                } else {
                    rows.first().get_one::<bool>()
                }
            })
            .expect("evaluating rule")
            .unwrap_or(false)
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
