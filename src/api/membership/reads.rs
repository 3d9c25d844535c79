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
use pgrx::prelude::*;

/// The members of one of the current tenant's segments, by id (nothing for
/// another tenant's): what published views read, as whoever reads them.
#[pg_extern(stable, strict)]
fn segment_member_ids(segment: pgrx::Uuid) -> SetOfIterator<'static, pgrx::Uuid> {
    let tenant = current_tenant();
    let members: Vec<pgrx::Uuid> = citus::reading_local_rows(|| {
        Spi::connect(|client| {
            // The row by its columns: on a worker, the query reads a
            // shard, whose rows are of the shard's own type.
            plans::select(
                &client,
                "SELECT audience.member_ids(ROW(s.*)::audience.segments) FROM audience.segments s
                  WHERE s.tenant_id = $1 AND s.id = $2",
                &[tenant.into(), segment.into()],
            )
            .expect("reading a segment's members")
            .filter_map(|row| row.get::<pgrx::Uuid>(1).expect("a member's id"))
            .collect()
        })
    });
    SetOfIterator::new(members)
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
    let tenant = current_tenant();
    citus::reading_local_rows(|| {
        Spi::connect(|client| {
            plans::select(
                &client,
                storage::SEGMENT_NAMES,
                &[tenant.into(), contact.into()],
            )
            .expect("reading a contact's segments")
            .filter_map(|row| row.get::<String>(1).expect("a segment's name"))
            .collect()
        })
    })
}
