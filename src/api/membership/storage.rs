//! Stored membership: the one place it is written (through the SQL
//! function `audience.apply_memberships`, which also logs and announces
//! each change) and the SQL that reads it. Since 0.2.0 it is a row per
//! contact, `audience.contact_segments`, holding the numbers of its
//! segments (`core::membership`); before, a row per pair in the table
//! `audience.segment_members`, now a view over it. What reads storage
//! besides: the differences query of `maintenance`, the whole-tenant
//! scans of `refresh` and query segments' refresh (through the fragments
//! below), and in SQL `member_source`, `in_segment`, `segments_of`,
//! `edit_list` and `segments_dropped`.

use super::maintenance::GENERIC_PLAN_CONTACTS;
use crate::api::compat;
use crate::api::plans;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::{BTreeMap, HashSet};

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
        (
            "(SELECT m.segments FROM audience.contact_segments m
               WHERE m.tenant_id = $1::uuid AND m.contact_id = touched.id) m",
            format!("ARRAY[{}]", (1..=count).map(member).collect::<Vec<_>>().join(", ")),
        )
    } else {
        let member = |i: usize| {
            format!(
                "EXISTS (SELECT FROM audience.segment_members m
                          WHERE m.tenant_id = $1::uuid AND m.segment_id = ($3::uuid[])[{i}]
                            AND m.contact_id = touched.id)"
            )
        };
        (
            "(SELECT) m",
            format!("ARRAY[{}]", (1..=count).map(member).collect::<Vec<_>>().join(", ")),
        )
    }
}

/// A relation to `LEFT JOIN` as `m`, with a `contact_id` when `contact`
/// is a stored member of segment `$2` (tenant `$1`).
pub(super) fn stored_member(contact: &str) -> String {
    if per_contact() {
        format!(
            "audience.contact_segments m
               ON m.tenant_id = $1::uuid AND m.contact_id = {contact}
              AND m.segments @> ARRAY[(SELECT s.number FROM audience.segments s
                                        WHERE s.tenant_id = $1::uuid AND s.id = $2::uuid)]"
        )
    } else {
        format!(
            "audience.segment_members m
               ON m.tenant_id = $1::uuid AND m.segment_id = (SELECT $2::uuid) AND m.contact_id = {contact}"
        )
    }
}

/// A query of the stored members (`id`) of segment `$2` of tenant `$1`.
pub(crate) fn stored_members() -> &'static str {
    if per_contact() {
        "SELECT m.contact_id AS id FROM audience.contact_segments m
          WHERE m.tenant_id = $1::uuid
            AND m.segments @> ARRAY[(SELECT s.number FROM audience.segments s
                                      WHERE s.tenant_id = $1::uuid AND s.id = $2::uuid)]"
    } else {
        "SELECT m.contact_id AS id FROM audience.segment_members m
          WHERE m.tenant_id = $1::uuid AND m.segment_id = $2::uuid"
    }
}

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
/// number of changes. `known_new`: the segments were locked before
/// `entered` was computed, so none of them is a member (nobody else could
/// have added one since); `audience.apply_memberships` then does not look
/// them up.
pub(super) fn apply(
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
