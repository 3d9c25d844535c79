//! Stored membership: the one place it is written (through the SQL
//! function `audience.apply_memberships`, which also logs and announces
//! each change) and read back as differences. A change of storage form
//! starts here and in the SQL it calls (`apply_membership(s)` in
//! sql/segments.sql); what reads storage besides: the differences query of
//! `maintenance`, the whole-tenant scans of `refresh`, query segments'
//! refresh, and in SQL `member_source`, `in_segment`, `segments_of`,
//! `members` and the `segment_membership` view.

use super::maintenance::GENERIC_PLAN_CONTACTS;
use crate::api::compat;
use crate::api::plans;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::{BTreeMap, HashSet};

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
                apply(client, &tenant, gone, false).1
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
