//! Databases whose SQL is still that of an earlier release. Installing a
//! new library replaces the Rust at once; the SQL changes only with `ALTER
//! EXTENSION audience UPDATE`. Until then the calls the older SQL makes
//! keep working, and the Rust does not call SQL the older release lacks.
//! Every such difference asks `installed()`, the one check: the version
//! `pg_extension` records. All of it goes in 0.3.0 (CHANGELOG.md), which
//! updates from 0.2.0 only.

use crate::api::membership;
use crate::api::plans;
use pgrx::prelude::*;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

/// Releases whose SQL differs in what the Rust calls, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Release {
    /// No `apply_memberships`, `rules_changed` triggers or three-argument
    /// `import_to_list`; its contacts trigger calls `maintain_rows`.
    V0_1_0,
    /// No tenant grants (`tenant_access`) or query segments.
    V0_1_1,
    /// This library's own SQL.
    Current,
}

thread_local! {
    /// Set once the database is at this library's SQL: it stays there.
    static CURRENT: Cell<bool> = const { Cell::new(false) };
}

/// The release whose SQL the database has. During `ALTER EXTENSION …
/// UPDATE`, the release being updated to.
pub(crate) fn installed() -> Release {
    if CURRENT.get() {
        return Release::Current;
    }
    let version = Spi::connect(|client| {
        client
            .select(
                "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'audience'",
                None,
                &[],
            )
            .and_then(plans::first_value::<String>)
    })
    .expect("reading the installed version of audience");
    let release = match version.as_deref() {
        Some("0.1.0") => Release::V0_1_0,
        Some("0.1.1") => Release::V0_1_1,
        _ => Release::Current,
    };
    CURRENT.set(release == Release::Current);
    release
}

/// Maintains membership for the `(tenant, contact)` pairs a statement
/// touched (parallel arrays, possibly repeating), tenant by tenant: what
/// the contacts trigger of 0.1.0's SQL calls, hence declared by none since.
#[pg_extern(sql = false)]
fn maintain_rows(
    tenants: Option<Vec<String>>,
    contacts: Option<Vec<String>>,
    columns: Option<Vec<String>>,
) -> i64 {
    let mut by_tenant: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (tenant, contact) in tenants
        .unwrap_or_default()
        .into_iter()
        .zip(contacts.unwrap_or_default())
    {
        by_tenant.entry(tenant).or_default().insert(contact);
    }
    by_tenant
        .into_iter()
        .map(|(tenant, contacts)| {
            membership::maintain_membership(
                &tenant,
                contacts.into_iter().collect(),
                columns.clone(),
            )
        })
        .sum()
}

/// Runs an import and returns its id: what `import_csv` of the SQL before
/// 0.2.0 calls, reading the report back from `audience.imports`.
#[pg_extern]
fn import_rows(data: &[u8], options: pgrx::JsonB) -> pgrx::Uuid {
    crate::api::import::import(audience_core::import::Input::Csv(data), options).id
}
