//! Membership read once for each row of a query over a tenant's contacts,
//! as views do (`contact_profile`, published segment views). Under Citus
//! such a query runs on the tenant's worker, which holds every row these
//! read: they read there (`citus::reading_local_rows`), through the one
//! membership read path (`member_ids`, `storage::SEGMENT_NAMES`). The
//! contact's segments are also the API's `segments_of`.

use super::storage;
use crate::api::citus;
use crate::api::plans;
use crate::api::tenants::current_tenant;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// The members of one of the current tenant's segments, by id (nothing for
/// another tenant's): what published views read, as whoever reads them.
#[pg_extern(stable, strict)]
fn segment_member_ids(segment: pgrx::Uuid) -> SetOfIterator<'static, pgrx::Uuid> {
    // The row by its columns: on a worker, the query reads a shard, whose
    // rows are of the shard's own type.
    SetOfIterator::new(column_here(
        "SELECT audience.member_ids(ROW(s.*)::audience.segments) FROM audience.segments s
          WHERE s.tenant_id = $1 AND s.id = $2",
        &[current_tenant().into(), segment.into()],
    ))
}

/// The names of the segments a contact of the current tenant is in now,
/// in order, as one value.
#[pg_extern(stable, strict)]
fn segment_names(contact: pgrx::Uuid) -> Vec<String> {
    names_of(contact)
}

/// The same as rows.
#[pg_extern(stable, strict)]
fn segments_of(contact: pgrx::Uuid) -> SetOfIterator<'static, String> {
    SetOfIterator::new(names_of(contact))
}

fn names_of(contact: pgrx::Uuid) -> Vec<String> {
    column_here(
        storage::SEGMENT_NAMES,
        &[current_tenant().into(), contact.into()],
    )
}

/// The first column of the rows of `query`, read on this node.
fn column_here<T: FromDatum + IntoDatum>(query: &str, args: &[DatumWithOid]) -> Vec<T> {
    citus::reading_local_rows(|| {
        Spi::connect(|client| {
            plans::select(&client, query, args)
                .expect("reading membership")
                .filter_map(|row| row.get::<T>(1).expect("a value of membership"))
                .collect()
        })
    })
}
