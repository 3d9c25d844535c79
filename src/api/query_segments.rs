//! Query segments (SPEC 7): a segment whose members are the contact ids a
//! read-only SELECT returns. The query is stored with the role that defined
//! it and always runs as that role — its privileges, tenant grants and Row
//! Level Security — in a read-only subtransaction that is rolled back, so
//! it can neither write nor leave anything behind; its result is stored
//! like any segment's membership, through the one maintenance path.

use crate::api::compat;
use crate::api::membership;
use crate::api::rules::current_tenant;
use crate::api::tenants;
use crate::error::raise;
use audience_core::{Error, ErrorKind};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{PgTryBuilder, Uuid};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

/// Creates a query segment from a single read-only SELECT returning one
/// uuid column; its members are the ids it returns that are contacts of
/// the current tenant. Refused, with nothing created, when the query is
/// not such a SELECT or tries to write.
#[pg_extern]
fn create_query_segment(
    name: &str,
    query: &str,
    description: default!(Option<&str>, "NULL"),
) -> Uuid {
    let tenant = current_tenant();
    // The session's role (SET ROLE or login), not the extension's owner this
    // function runs as.
    let definer = unsafe { pg_sys::GetOuterUserId() };
    membership::lock_rules(&tenant, true);
    let started = Instant::now();
    let found = members(&tenant, query, definer);
    Spi::connect_mut(|client| {
        let id = client
            .update(
                "INSERT INTO audience.segments (tenant_id, name, kind, description, query, query_role)
                 VALUES ($1::uuid, audience.check_segment_name($2), 'query', $3, $4, $5::oid::regrole)
                 RETURNING id",
                None,
                &[
                    tenant.as_str().into(),
                    name.into(),
                    description.into(),
                    query.into(),
                    definer.into(),
                ],
            )
            .and_then(|rows| rows.first().get_one::<Uuid>())
            .expect("creating the query segment")
            .expect("the new segment's id");
        store(client, &tenant, &id.to_string(), found, started);
        id
    })
}

/// Brings the tenant's query segments (one by id, or all) up to date;
/// returns each one's moved contacts (entered or exited).
pub(crate) fn refresh(tenant: &str, wanted: Option<&str>) -> Vec<(String, Vec<String>)> {
    // Releases before 0.2.0 have none.
    if compat::installed() < compat::Release::Current {
        return Vec::new();
    }
    let defined: Vec<(String, String, String, Option<pg_sys::Oid>)> = Spi::connect(|client| {
        client
            .select(
                "SELECT s.id::text, s.name, s.query, s.query_role::oid
                   FROM audience.segments s
                  WHERE s.tenant_id = $1::uuid AND s.kind = 'query' AND ($2::uuid IS NULL OR s.id = $2::uuid)
                  ORDER BY s.id",
                None,
                &[tenant.into(), wanted.into()],
            )
            .expect("reading query segments")
            .map(|row| {
                (
                    row.get(1).ok().flatten().unwrap_or_default(),
                    row.get(2).ok().flatten().unwrap_or_default(),
                    row.get(3).ok().flatten().unwrap_or_default(),
                    row.get(4).ok().flatten(),
                )
            })
            .collect()
    });
    defined
        .into_iter()
        .map(|(id, name, query, role)| {
            // Looked up apart from segments, which Citus may distribute:
            // it would ship the catalog to the worker to join them.
            let role = role.filter(|&role| role_exists(role)).unwrap_or_else(|| {
                raise(
                    Error::new(
                        ErrorKind::UndefinedObject,
                        format!("the role that defined query segment \"{name}\" no longer exists"),
                    )
                    .with_hint("Drop the segment and create it again as a role that exists."),
                )
            });
            let started = Instant::now();
            let found = members(tenant, &query, role);
            let moved = Spi::connect_mut(|client| store(client, tenant, &id, found, started));
            (id, moved)
        })
        .collect()
}

fn role_exists(role: pg_sys::Oid) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE oid = $1)",
        &[role.into()],
    )
    .expect("looking up a role")
    .unwrap_or(false)
}

/// Replaces the segment's stored members with `found` (those that are
/// contacts of the tenant) and records how long it took since `started`;
/// returns the contacts that moved.
fn store(
    client: &mut SpiClient,
    tenant: &str,
    segment: &str,
    found: Vec<Uuid>,
    started: Instant,
) -> Vec<String> {
    let query = format!(
        "WITH found AS (SELECT c.id FROM audience.contacts c
                         WHERE c.tenant_id = $1::uuid AND c.id = ANY ($3::uuid[])),
              stored AS ({stored})
         SELECT ARRAY(SELECT id FROM found EXCEPT SELECT id FROM stored ORDER BY 1),
                ARRAY(SELECT id FROM stored EXCEPT SELECT id FROM found ORDER BY 1)",
        stored = membership::storage::stored_members(),
    );
    let (entered, exited) = client
        .select(&query, None, &[tenant.into(), segment.into(), found.into()])
        .and_then(|rows| rows.first().get_two::<Vec<Uuid>, Vec<Uuid>>())
        .expect("comparing a query segment's members");
    let (entered, exited) = (entered.unwrap_or_default(), exited.unwrap_or_default());
    let moved = entered.iter().chain(&exited).map(Uuid::to_string).collect();
    membership::apply_differences(client, tenant, vec![(segment.to_string(), entered, exited)]);
    client
        .update(
            "UPDATE audience.segments SET refreshed_at = now(), refresh_duration = make_interval(secs => $3)
              WHERE tenant_id = $1::uuid AND id = $2::uuid",
            None,
            &[tenant.into(), segment.into(), started.elapsed().as_secs_f64().into()],
        )
        .expect("recording the refresh");
    moved
}

/// The ids `query` returns, run as `role` for `tenant`.
fn members(tenant: &str, query: &str, role: pg_sys::Oid) -> Vec<Uuid> {
    check_single_select(query);
    if !tenants::role_may_select(role, tenant) {
        raise(
            Error::new(
                ErrorKind::InsufficientPrivilege,
                "permission denied for tenant: the role that defined the query segment may not select it",
            )
            .with_hint("Grant the tenant to that role with audience.grant_tenant, or define the segment as a role that may select it."),
        );
    }
    // A subtransaction of its own, ended here whether the query succeeds
    // or fails, so that an error leaves the caller's transaction as a plain
    // error would.
    let (memory, owner) = unsafe {
        (
            pg_sys::CurrentMemoryContext as usize,
            pg_sys::CurrentResourceOwner as usize,
        )
    };
    let end = move || unsafe {
        pg_sys::RollbackAndReleaseCurrentSubTransaction();
        pg_sys::MemoryContextSwitchTo(memory as pg_sys::MemoryContext);
        pg_sys::CurrentResourceOwner = owner as pg_sys::ResourceOwner;
    };
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(memory as pg_sys::MemoryContext);
    }
    let found = PgTryBuilder::new(AssertUnwindSafe(|| {
        // The query's names resolve the same way whoever refreshes it.
        Spi::run("SET LOCAL transaction_read_only = on; SET LOCAL search_path = audience, pg_catalog, pg_temp")
            .expect("making the query read-only");
        tenants::as_restricted_role(role, || run_read_only(query))
    }))
    .catch_others(|error| {
        end();
        error.rethrow()
    })
    .execute();
    // Rolled back: nothing the query did (it could only read) is kept.
    end();
    found
}

fn run_read_only(query: &str) -> Vec<Uuid> {
    Spi::connect_mut(|client| {
        let rows = client.update(query, None, &[]).unwrap_or_else(|error| {
            raise(Error::new(
                ErrorKind::InvalidParameter,
                format!("the query of a query segment failed: {error}"),
            ))
        });
        let columns = rows.columns().unwrap_or(0);
        let uuid = columns == 1
            && rows.column_type_oid(1).ok().map(|oid| oid.value()) == Some(pg_sys::UUIDOID);
        if !uuid {
            raise(
                Error::new(
                    ErrorKind::DatatypeMismatch,
                    "the query of a query segment must return exactly one column, of type uuid",
                )
                .with_hint(
                    "Select the contact ids, as in SELECT id FROM audience.contacts WHERE …",
                ),
            );
        }
        rows.filter_map(|row| row.get::<Uuid>(1).ok().flatten())
            .collect()
    })
}

/// Refuses what is not one plain SELECT: several statements, other
/// commands, SELECT INTO and row locks (a syntax error is PostgreSQL's own).
fn check_single_select(query: &str) {
    let refuse = |why: &str| -> ! {
        raise(
            Error::new(
                ErrorKind::InvalidParameter,
                format!("the query of a query segment must be a single read-only SELECT: {why}"),
            )
            .with_hint("Write one SELECT that returns contact ids, as in SELECT id FROM audience.contacts WHERE …"),
        )
    };
    let text = std::ffi::CString::new(query).unwrap_or_else(|_| refuse("it holds a NUL character"));
    unsafe {
        let parsed = pg_sys::raw_parser(text.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        if parsed.is_null() || (*parsed).length != 1 {
            refuse("it is not exactly one statement");
        }
        let raw = (*(*parsed).elements).ptr_value as *mut pg_sys::RawStmt;
        let statement = (*raw).stmt;
        if (*statement).type_ != pg_sys::NodeTag::T_SelectStmt {
            refuse("it is not a SELECT");
        }
        let select = statement as *mut pg_sys::SelectStmt;
        if !(*select).intoClause.is_null() {
            refuse("SELECT INTO creates a table");
        }
        if !(*select).lockingClause.is_null() {
            refuse("it locks rows");
        }
    }
}
