//! Stored membership: the one place it is written (`write`, which also
//! logs, counts and announces each change; SQL calls it as
//! `audience.apply_memberships`) and the SQL that reads it. Since 0.2.0 it
//! is a row per contact, `audience.contact_segments`, holding the numbers
//! of its segments (`core::membership`); `audience.segment_members` is a
//! view of it with a row per pair. Databases still at an earlier release's
//! SQL keep their table of pairs, written by that SQL (see `compat`; those
//! paths go in 0.3.0). What reads storage besides: the differences query
//! of `maintenance`, the whole-tenant scans of `refresh` and query
//! segments' refresh (through the fragments below), `segment_names`
//! and `segments_of` (`SEGMENT_NAMES`), and in SQL
//! `member_source`, `in_segment`, `edit_list` and `segments_dropped`.

use super::maintenance::{FEW_CONTACTS, GENERIC_PLAN_CONTACTS};
use crate::api::citus;
use crate::api::compat;
use crate::api::plans;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::CStr;

/// Whether stored membership is a row per contact: the database's SQL is
/// this release's (see `compat`), not one with a row per pair.
fn per_contact() -> bool {
    compat::installed() == compat::Release::Current
}

/// A contact's segment numbers after it enters and leaves some
/// (`core::membership::merge`).
#[pg_extern(immutable, parallel_safe)]
fn merged_segments(
    segments: Option<Vec<i32>>,
    entered: Option<Vec<i32>>,
    exited: Option<Vec<i32>>,
) -> Vec<i32> {
    let segments = segments.unwrap_or_default();
    let times = vec![(); segments.len()];
    let (entered, exited) = (entered.unwrap_or_default(), exited.unwrap_or_default());
    audience_core::membership::merge(&segments, &times, &entered, &exited, ()).0
}

/// When a contact entered each of its segments after it enters (at `now`)
/// and leaves some: `added_at` beside `merged_segments`.
#[pg_extern(immutable, parallel_safe)]
fn merged_since(
    segments: Option<Vec<i32>>,
    added_at: Option<Vec<TimestampWithTimeZone>>,
    entered: Option<Vec<i32>>,
    exited: Option<Vec<i32>>,
    now: TimestampWithTimeZone,
) -> Vec<TimestampWithTimeZone> {
    let (segments, added_at) = (segments.unwrap_or_default(), added_at.unwrap_or_default());
    let (entered, exited) = (entered.unwrap_or_default(), exited.unwrap_or_default());
    audience_core::membership::merge(&segments, &added_at, &entered, &exited, now).1
}

/// For a query over contacts `touched.id` (tenant `$1`): a lateral join
/// (`LEFT JOIN LATERAL … ON true`) and an expression giving, for each of
/// `count` segments whose ids are `$3::uuid[]`, whether the contact is a
/// stored member.
pub(super) fn stored_in_segments(count: usize) -> (&'static str, String) {
    if per_contact() {
        // The segments' numbers are uncorrelated subqueries: found once.
        let member = |i: usize| {
            format!(
                "coalesce((SELECT s.number FROM audience.segments s
                            WHERE s.tenant_id = $1::uuid AND s.id = ($3::uuid[])[{i}]) = ANY (m.segments), false)"
            )
        };
        // OFFSET 0 keeps it a lookup per contact: flattened into a join,
        // it was planned as a hash of every row of the tenant.
        (
            "(SELECT m.segments FROM audience.contact_segments m
               WHERE m.tenant_id = $1::uuid AND m.contact_id = touched.id OFFSET 0) m",
            format!(
                "ARRAY[{}]",
                (1..=count).map(member).collect::<Vec<_>>().join(", ")
            ),
        )
    } else {
        let member = |i: usize| {
            format!(
                "EXISTS (SELECT FROM audience.segment_members m
                          WHERE m.tenant_id = $1::uuid AND m.segment_id = ($3::uuid[])[{i}]
                            AND m.contact_id = touched.id)"
            )
        };
        // Nothing to join: the table of pairs is probed per segment.
        (
            "(SELECT) m",
            format!(
                "ARRAY[{}]",
                (1..=count).map(member).collect::<Vec<_>>().join(", ")
            ),
        )
    }
}

/// The number of segment `$2` of tenant `$1`, found once per query.
const SEGMENT_NUMBER: &str =
    "(SELECT s.number FROM audience.segments s WHERE s.tenant_id = $1::uuid AND s.id = $2::uuid)";

/// A relation to `LEFT JOIN` as `m`, with a `contact_id` when `contact`
/// is a stored member of segment `$2` (tenant `$1`).
pub(super) fn stored_member(contact: &str) -> String {
    if per_contact() {
        format!(
            "audience.contact_segments m
               ON m.tenant_id = $1::uuid AND m.contact_id = {contact}
              AND m.segments @> ARRAY[{SEGMENT_NUMBER}]"
        )
    } else {
        format!(
            "audience.segment_members m
               ON m.tenant_id = $1::uuid AND m.segment_id = (SELECT $2::uuid) AND m.contact_id = {contact}"
        )
    }
}

/// A query of the stored members (`id`) of segment `$2` of tenant `$1`.
pub(crate) fn stored_members() -> String {
    if per_contact() {
        format!(
            "SELECT m.contact_id AS id FROM audience.contact_segments m
              WHERE m.tenant_id = $1::uuid AND m.segments @> ARRAY[{SEGMENT_NUMBER}]"
        )
    } else {
        "SELECT m.contact_id AS id FROM audience.segment_members m
          WHERE m.tenant_id = $1::uuid AND m.segment_id = $2::uuid"
            .to_string()
    }
}

/// The names of the segments contact `$2` of tenant `$1` is in now, in
/// order: Everyone, stored membership, and rules that depend on the clock
/// evaluated for the contact. Each table is read by the tenant itself (not
/// through `s.tenant_id`), so that Citus routes the query to the tenant's
/// worker.
pub(crate) const SEGMENT_NAMES: &str = "SELECT s.name FROM audience.segments s
     WHERE s.tenant_id = $1
       AND CASE
             WHEN s.kind = 'everyone' THEN
                 EXISTS (SELECT FROM audience.contacts c WHERE c.tenant_id = $1 AND c.id = $2)
             WHEN s.kind = 'dynamic' AND audience.rule_is_time_relative(s.rule) THEN
                 audience.rule_matches($2, s.rule)
             ELSE s.number = ANY (coalesce((SELECT m.segments FROM audience.contact_segments m
                                             WHERE m.tenant_id = $1 AND m.contact_id = $2), '{}'))
           END
     ORDER BY lower(s.name)";

/// A segment's id (kept as text in the rules) as a uuid.
pub(super) fn segment_uuid(id: &str) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(
        uuid::Uuid::parse_str(id)
            .expect("segment ids are uuids")
            .into_bytes(),
    )
}

/// Applies differences (segment, entered, exited) of stored membership,
/// for membership computed elsewhere (query segments).
pub(crate) fn apply_differences(client: &mut SpiClient, tenant: &str, differences: Differences) {
    apply(client, tenant, differences, false);
}

/// Applies segments' changes through the single write path, in one call
/// for all of them; returns the segments whose membership changed and the
/// number of changes. `known_new`: the segments were locked before the
/// differences were computed, so every pair moves (nobody else could have
/// moved one since) and none is looked up again.
pub(super) fn apply(
    client: &mut SpiClient,
    tenant: &str,
    differences: Differences,
    known_new: bool,
) -> (HashSet<String>, i64) {
    if differences.is_empty() {
        return (HashSet::new(), 0);
    }
    if per_contact() {
        let written = write(client, tenant, &uuid_differences(differences), known_new);
        let changes = written.iter().map(|(_, n)| n).sum();
        return (
            written
                .into_iter()
                .map(|(segment, _)| segment.to_string())
                .collect(),
            changes,
        );
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

/// Differences with segment ids as uuids, in id order: the order in which
/// writers lock segments.
fn uuid_differences(
    differences: Differences,
) -> Vec<(pgrx::Uuid, Vec<pgrx::Uuid>, Vec<pgrx::Uuid>)> {
    let mut by_uuid: Vec<_> = differences
        .into_iter()
        .map(|(id, entered, exited)| (segment_uuid(&id), entered, exited))
        .collect();
    by_uuid.sort_unstable_by_key(|(id, _, _)| *id);
    by_uuid
}

/// Adds and removes stored members of several segments (`segments`; the
/// pairs `entered_to`/`entered` and `exited_from`/`exited`): the SQL form
/// of `write`, which lists and imports call.
#[pg_extern]
fn apply_memberships(
    tenant: pgrx::Uuid,
    segments: Vec<pgrx::Uuid>,
    entered_to: Vec<pgrx::Uuid>,
    entered: Vec<pgrx::Uuid>,
    exited_from: Vec<pgrx::Uuid>,
    exited: Vec<pgrx::Uuid>,
    known_new: default!(bool, false),
) -> TableIterator<'static, (name!(segment, pgrx::Uuid), name!(changes, i64))> {
    let mut by_segment: BTreeMap<pgrx::Uuid, (Vec<pgrx::Uuid>, Vec<pgrx::Uuid>)> = segments
        .into_iter()
        .map(|s| (s, Default::default()))
        .collect();
    for (segment, contact) in entered_to.into_iter().zip(entered) {
        by_segment.entry(segment).or_default().0.push(contact);
    }
    for (segment, contact) in exited_from.into_iter().zip(exited) {
        by_segment.entry(segment).or_default().1.push(contact);
    }
    let differences: Vec<_> = by_segment
        .into_iter()
        .map(|(segment, (came, gone))| (segment, came, gone))
        .collect();
    let tenant = tenant.to_string();
    let written = Spi::connect_mut(|client| write(client, &tenant, &differences, known_new));
    TableIterator::new(written)
}

/// The write of stored membership (a row per contact): locks the segments
/// in id order, keeps the changes that move someone (all of them when
/// `known`: the caller computed them holding the segments), rewrites each
/// contact's row once, then logs, counts and announces each segment's
/// changes. Returns the changes per segment that had any.
fn write(
    client: &mut SpiClient,
    tenant: &str,
    differences: &[(pgrx::Uuid, Vec<pgrx::Uuid>, Vec<pgrx::Uuid>)],
    known: bool,
) -> Vec<(pgrx::Uuid, i64)> {
    let pairs: usize = differences.iter().map(|(_, e, x)| e.len() + x.len()).sum();
    let few = pairs <= GENERIC_PLAN_CONTACTS;
    let many = pairs > FEW_CONTACTS;
    // Up to 50k pairs, rows are looked up contact by contact: hashing every
    // row of the tenant for a statement of a few hundred contacts cost the
    // concurrency test 60% of its throughput. Larger writes hash, which
    // costs them little (0.5 s against 0.2 s for 74k contacts among 1M)
    // and never walks every row for every contact, as a lookup plan made
    // with statistics from before a tenant grew did (29 s for 10k; smaller
    // writes keep that risk, as the maintenance query does: BENCHMARKS.md).
    let run = |write: &mut dyn FnMut()| {
        if few {
            plans::generic(write)
        } else if many {
            plans::with_settings(&HASHED, write)
        } else {
            plans::with_settings(&BY_CONTACT, write)
        }
    };
    // Holding the segments, this writer sees every change other writers
    // made to them, and nobody changes them meanwhile. A segment deleted
    // meanwhile (its tenant being dropped) has no membership left to keep.
    let segments: Vec<pgrx::Uuid> = differences.iter().map(|(id, _, _)| *id).collect();
    let mut numbers: HashMap<pgrx::Uuid, i32> = HashMap::new();
    run(&mut || {
        numbers = plans::update(
            client,
            "SELECT s.id, s.number FROM audience.segments s
              WHERE s.tenant_id = $1::uuid AND s.id = ANY ($2)
              ORDER BY s.id FOR NO KEY UPDATE",
            &[tenant.into(), segments.clone().into()],
        )
        .expect("locking segments to write their members")
        .filter_map(|row| Some((row.get(1).ok()??, row.get(2).ok()??)))
        .collect();
    });
    let held: Vec<_> = differences
        .iter()
        .filter(|(id, _, _)| numbers.contains_key(id))
        .collect();
    // Which pairs move: without `known`, those entering that are not
    // members and those leaving that are, read without locking the rows.
    let stored: HashMap<pgrx::Uuid, Vec<i32>> = if known {
        HashMap::new()
    } else {
        let touched: Vec<pgrx::Uuid> = held
            .iter()
            .flat_map(|(_, e, x)| e.iter().chain(x))
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut stored = HashMap::new();
        run(&mut || {
            stored = plans::select(
                client,
                "SELECT m.contact_id, m.segments FROM unnest($2::uuid[]) AS touched(id)
                   JOIN audience.contact_segments m ON m.tenant_id = $1::uuid AND m.contact_id = touched.id",
                &[tenant.into(), touched.clone().into()],
            )
            .expect("reading stored membership")
            .filter_map(|row| Some((row.get(1).ok()??, row.get(2).ok()??)))
            .collect();
        });
        stored
    };
    let is_member = |contact: &pgrx::Uuid, number: i32| {
        stored
            .get(contact)
            .is_some_and(|segments: &Vec<i32>| segments.contains(&number))
    };
    // Per segment the contacts that move; per contact the numbers.
    let mut moved: Vec<(pgrx::Uuid, Vec<pgrx::Uuid>, Vec<pgrx::Uuid>)> = Vec::new();
    let mut by_contact: BTreeMap<pgrx::Uuid, (Vec<i32>, Vec<i32>)> = BTreeMap::new();
    // Each contact once, in order, when it moves: members leave, others enter.
    let moving = |contacts: &[pgrx::Uuid], number: i32, members: bool| -> Vec<pgrx::Uuid> {
        let distinct: BTreeSet<pgrx::Uuid> = contacts.iter().copied().collect();
        distinct
            .into_iter()
            .filter(|c| known || is_member(c, number) == members)
            .collect()
    };
    for (segment, entered, exited) in held {
        let number = numbers[segment];
        let came = moving(entered, number, false);
        let gone = moving(exited, number, true);
        if came.is_empty() && gone.is_empty() {
            continue;
        }
        for contact in &came {
            by_contact.entry(*contact).or_default().0.push(number);
        }
        for contact in &gone {
            by_contact.entry(*contact).or_default().1.push(number);
        }
        moved.push((*segment, came, gone));
    }
    if moved.is_empty() {
        return Vec::new();
    }
    // Each contact's row is rewritten once, whatever number of segments
    // it enters and leaves. Its other segments may be changing at the same
    // moment (writers holding other segments): the merge is computed from
    // the row as it is when the write gets it. Ragged lists travel as one
    // array and each contact's bounds in it.
    let (contacts, entering, leaving) = ragged(&by_contact);
    let mut rewritten: HashSet<pgrx::Uuid> = HashSet::new();
    run(&mut || {
        rewritten = plans::update(
            client,
            "UPDATE audience.contact_segments m
                SET segments = audience.merged_segments(m.segments, d.entering, d.leaving),
                    added_at = audience.merged_since(m.segments, m.added_at, d.entering, d.leaving, now())
               FROM (SELECT d.contact, ($3::integer[])[d.entering_from:d.entering_to] AS entering,
                            ($4::integer[])[d.leaving_from:d.leaving_to] AS leaving
                       FROM unnest($2::uuid[], $5::integer[], $6::integer[], $7::integer[], $8::integer[])
                            AS d(contact, entering_from, entering_to, leaving_from, leaving_to)) d
              WHERE m.tenant_id = $1::uuid AND m.contact_id = d.contact
             RETURNING m.contact_id",
            &[
                tenant.into(),
                contacts.clone().into(),
                entering.values.clone().into(),
                leaving.values.clone().into(),
                entering.from.clone().into(),
                entering.to.clone().into(),
                leaving.from.clone().into(),
                leaving.to.clone().into(),
            ],
        )
        .expect("writing stored membership")
        .filter_map(|row| row.get(1).ok().flatten())
        .collect();
    });
    // Contacts without a row yet only enter; another writer may be adding
    // their row at the same moment.
    let (new_contacts, new_entering, _) = ragged(
        &by_contact
            .into_iter()
            .filter(|(contact, _)| !rewritten.contains(contact))
            .collect(),
    );
    if !new_contacts.is_empty() {
        run(&mut || {
            plans::update(
                client,
                "INSERT INTO audience.contact_segments AS m (tenant_id, contact_id, segments, added_at)
                 SELECT $1::uuid, d.contact, audience.merged_segments('{}', d.entering, '{}'),
                        audience.merged_since('{}', '{}', d.entering, '{}', now())
                   FROM (SELECT d.contact, ($3::integer[])[d.entering_from:d.entering_to] AS entering
                           FROM unnest($2::uuid[], $4::integer[], $5::integer[])
                                AS d(contact, entering_from, entering_to)) d
                 ON CONFLICT (tenant_id, contact_id) DO UPDATE
                    SET segments = audience.merged_segments(m.segments, excluded.segments, '{}'),
                        -- Now, from the row itself (it entered each of its
                        -- segments now): Citus allows no now() here.
                        added_at = audience.merged_since(m.segments, m.added_at, excluded.segments, '{}', excluded.added_at[1])",
                &[
                    tenant.into(),
                    new_contacts.clone().into(),
                    new_entering.values.clone().into(),
                    new_entering.from.clone().into(),
                    new_entering.to.clone().into(),
                ],
            )
            .expect("writing stored membership");
        });
    }
    // Per segment: a log row for each direction, the count, one NOTIFY
    // (none on a Citus worker, see citus::on_worker). Three statements, not
    // one with CTEs: Citus would plan each CTE apart and send its rows to
    // every worker.
    let written: Vec<(pgrx::Uuid, i64)> = moved
        .iter()
        .map(|(segment, came, gone)| (*segment, (came.len() + gone.len()) as i64))
        .collect();
    let segments: Vec<pgrx::Uuid> = moved.iter().map(|(segment, _, _)| *segment).collect();
    let entered: Vec<i64> = moved.iter().map(|(_, came, _)| came.len() as i64).collect();
    let exited: Vec<i64> = moved.iter().map(|(_, _, gone)| gone.len() as i64).collect();
    let (_, came, gone) = ragged(
        &moved
            .into_iter()
            .map(|(segment, came, gone)| (segment, (came, gone)))
            .collect(),
    );
    run(&mut || {
        plans::update(
            client,
            "INSERT INTO audience.membership_log (tenant_id, segment_id, change, contacts)
             SELECT $1::uuid, p.segment, v.change, v.contacts
               FROM (SELECT p.segment, ($3::uuid[])[p.came_from:p.came_to] AS came,
                            ($4::uuid[])[p.gone_from:p.gone_to] AS gone
                       FROM unnest($2::uuid[], $5::integer[], $6::integer[], $7::integer[], $8::integer[])
                            AS p(segment, came_from, came_to, gone_from, gone_to)) p
              CROSS JOIN LATERAL (VALUES ('entered', p.came), ('exited', p.gone)) v(change, contacts)
              WHERE cardinality(v.contacts) > 0
              ORDER BY p.segment, v.change",
            &[
                tenant.into(),
                segments.clone().into(),
                came.values.clone().into(),
                gone.values.clone().into(),
                came.from.clone().into(),
                came.to.clone().into(),
                gone.from.clone().into(),
                gone.to.clone().into(),
            ],
        )
        .expect("logging membership changes");
        plans::update(
            client,
            "UPDATE audience.segments s SET member_count = s.member_count + d.entered - d.exited
               FROM unnest($2::uuid[], $3::bigint[], $4::bigint[]) AS d(segment, entered, exited)
              WHERE s.tenant_id = $1::uuid AND s.id = d.segment",
            &[
                tenant.into(),
                segments.clone().into(),
                entered.clone().into(),
                exited.clone().into(),
            ],
        )
        .expect("counting segment members");
        if !citus::on_worker() {
            plans::select(
                client,
                "SELECT count(pg_notify(audience.membership_channel($1::uuid), json_build_object(
                            'segment', d.segment, 'entered', d.entered, 'exited', d.exited)::text))
                   FROM unnest($2::uuid[], $3::bigint[], $4::bigint[]) AS d(segment, entered, exited)",
                &[
                    tenant.into(),
                    segments.clone().into(),
                    entered.clone().into(),
                    exited.clone().into(),
                ],
            )
            .expect("announcing membership changes");
        }
    });
    written
}

/// Settings for the statements of `write`: join by looking rows up, or by
/// hashing them, whatever the statistics say.
const BY_CONTACT: [(&CStr, &CStr); 2] =
    [(c"enable_hashjoin", c"off"), (c"enable_mergejoin", c"off")];
const HASHED: [(&CStr, &CStr); 1] = [(c"enable_nestloop", c"off")];

/// Lists of different lengths as one array and each list's 1-based bounds
/// in it (an empty list ends before it starts), for SQL to slice.
struct Ragged<T> {
    values: Vec<T>,
    from: Vec<i32>,
    to: Vec<i32>,
}

impl<T> Ragged<T> {
    fn new() -> Self {
        Ragged {
            values: Vec::new(),
            from: Vec::new(),
            to: Vec::new(),
        }
    }

    fn push(&mut self, list: &[T])
    where
        T: Clone,
    {
        self.from.push(self.values.len() as i32 + 1);
        self.values.extend_from_slice(list);
        self.to.push(self.values.len() as i32);
    }
}

/// Keys, and the two lists of each key as ragged arrays.
fn ragged<K: Ord + Copy, T: Clone>(
    lists: &BTreeMap<K, (Vec<T>, Vec<T>)>,
) -> (Vec<K>, Ragged<T>, Ragged<T>) {
    let (mut keys, mut first, mut second) = (Vec::new(), Ragged::new(), Ragged::new());
    for (key, (a, b)) in lists {
        keys.push(*key);
        first.push(a);
        second.push(b);
    }
    (keys, first, second)
}

/// Whether the database's SQL has `audience.apply_memberships` (0.1.0's
/// has not: see `compat`).
pub(super) fn current_sql() -> bool {
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

/// Removes deleted contacts (or contacts moved to another tenant) from
/// every segment of the tenant they were in, lists included.
pub(crate) fn leave_segments(by_tenant: BTreeMap<String, Vec<String>>) -> i64 {
    Spi::connect_mut(|client| {
        by_tenant
            .into_iter()
            .map(|(tenant, contacts)| {
                let gone = departed(client, &tenant, &contacts);
                let changes = apply(client, &tenant, gone, false).1;
                if per_contact() {
                    forget_departed(client, &tenant, &contacts);
                }
                changes
            })
            .sum()
    })
}

/// `(segment id, entered, exited)` for each segment with a change.
pub(super) type Differences = Vec<(String, Vec<pgrx::Uuid>, Vec<pgrx::Uuid>)>;

pub(super) fn read_differences(
    client: &SpiClient,
    query: &str,
    args: &[DatumWithOid],
) -> Differences {
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

/// Drops the (now empty) rows of `contacts` that no longer exist.
fn forget_departed(client: &mut SpiClient, tenant: &str, contacts: &[String]) {
    client
        .update(
            "DELETE FROM audience.contact_segments m USING unnest($2::uuid[]) AS touched(id)
              WHERE m.tenant_id = $1::uuid AND m.contact_id = touched.id
                AND NOT EXISTS (SELECT FROM audience.contacts c WHERE c.tenant_id = m.tenant_id AND c.id = m.contact_id)",
            None,
            &[tenant.into(), contacts.to_vec().into()],
        )
        .expect("removing the stored membership of departed contacts");
}
