//! The current tenant: the setting `audience.tenant` (a tenant's name or
//! id) resolved to the tenant's id, for the session's role. A role may
//! select the tenants Row Level Security shows it in `audience.tenants`
//! (those granted to it or to a role it is a member of, every tenant for
//! a grant of '*' or audience_admin); any other choice, existing or not,
//! fails alike with 42501.
//!
//! Policies, column defaults and triggers ask for the tenant in every
//! statement, so each backend keeps what it resolved for each role the
//! way PostgreSQL keeps catalog rows: looked up with the latest snapshot,
//! and forgotten on the invalidations that a change of tenants or grants
//! (their trigger `audience.rules_changed`, see `tenant_rules`) or of role
//! memberships queues.

use crate::api::citus;
use crate::api::compat;
use crate::api::plans;
use crate::api::tenant_rules::{self, Kept};
use audience_core::{Error, ErrorKind};
use pgrx::prelude::*;
use pgrx::Uuid;
use std::cell::RefCell;

/// What a setting names, as one role sees it.
#[derive(Clone, Copy)]
struct Resolved {
    /// The tenant, when the role may select it.
    tenant: Option<Uuid>,
    /// Whether the role may select every tenant (so that it may also be
    /// told that one does not exist).
    sees_all: bool,
}

thread_local! {
    /// By role and setting, with the invalidation generation they were
    /// looked up in.
    static RESOLVED: RefCell<Kept<Resolved>> = RefCell::new(Kept::new(KEPT_SETTINGS));
}

/// Settings kept at most (a pool switching between tenants and roles);
/// then all are dropped and looked up again as they come.
const KEPT_SETTINGS: usize = 256;

/// The setting `audience.tenant`, trimmed; None when unset or blank.
fn setting() -> Option<String> {
    // The pointer is PostgreSQL's, valid until the setting changes.
    let value = unsafe { pg_sys::GetConfigOption(c"audience.tenant".as_ptr(), true, false) };
    if value.is_null() {
        return None;
    }
    let value = unsafe { core::ffi::CStr::from_ptr(value) }.to_string_lossy();
    let trimmed = value.trim_matches(' ');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// What `name` (a tenant's name or id) names for the session's role: the
/// role set by SET ROLE or the login, also inside functions that run as
/// the extension's owner, so that none of them widens what it may select.
fn find(name: &str) -> Resolved {
    let role = unsafe { pg_sys::GetOuterUserId() };
    // Parallel workers may take no snapshot of their own; they look up
    // without keeping (current_tenant is parallel safe).
    let parallel = unsafe { pg_sys::IsInParallelMode() };
    let generation = if parallel {
        None
    } else {
        tenant_rules::generation()
    };
    let key = format!("{}:{name}", role.to_u32());
    if let Some(generation) = generation {
        if let Some(resolved) = RESOLVED.with(|kept| kept.borrow().get(&key, generation)) {
            return resolved;
        }
    }
    let Some(generation) = generation else {
        return as_role(role, || look_up(name));
    };
    // With the latest snapshot, as catalog caches read: a lookup with an
    // older one could keep a tenant or grant whose removal this backend
    // has already been told of.
    let resolved = unsafe {
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
        let resolved = as_role(role, || look_up(name));
        pg_sys::PopActiveSnapshot();
        resolved
    };
    RESOLVED.with(|kept| kept.borrow_mut().keep(&key, generation, resolved));
    resolved
}

/// Runs `f` as `role` when the current user is another (inside a function
/// that runs as the extension's owner), as PostgreSQL's foreign key checks
/// switch user; an error in `f` ends the (sub)transaction, whose abort
/// restores the user.
fn as_role<T>(role: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    if user == role {
        return f();
    }
    switch_user(role, pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32, f)
}

/// Runs `f` as `role` under the restrictions PostgreSQL puts on code run
/// for another role (REFRESH MATERIALIZED VIEW runs its query so): no SET
/// ROLE, no temporary tables, nothing that outlives the operation.
pub(crate) fn as_restricted_role<T>(role: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    switch_user(
        role,
        (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32,
        f,
    )
}

fn switch_user<T>(role: pg_sys::Oid, restrictions: i32, f: impl FnOnce() -> T) -> T {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    unsafe { pg_sys::SetUserIdAndSecContext(role, context | restrictions) };
    let result = f();
    unsafe { pg_sys::SetUserIdAndSecContext(user, context) };
    result
}

/// Whether `role` may select the tenant with this id.
pub(crate) fn role_may_select(role: pg_sys::Oid, tenant: &str) -> bool {
    as_role(role, || look_up(tenant)).tenant.is_some()
}

/// Looks `name` up as the current user, through Row Level Security.
fn look_up(name: &str) -> Resolved {
    // A database still at the SQL of a release before tenant grants
    // resolves every tenant.
    let granted = compat::installed() > compat::Release::V0_1_1;
    citus::reading_local_rows(|| {
        Spi::connect(|client| {
            if !granted {
                // Its policy on audience.tenants asks for the current tenant:
                // the tenant is looked up as the table's owner, whom no policy
                // applies to.
                let owner = plans::select(
                    client,
                    "SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'audience.tenants'::regclass",
                    &[],
                )
                .and_then(|rows| rows.first().get_one::<pg_sys::Oid>())
                .expect("finding the owner of audience.tenants")
                .expect("audience.tenants has an owner");
                let tenant = as_role(owner, || {
                    plans::select(
                        client,
                        "SELECT id FROM audience.tenants WHERE id::text = lower($1) OR name = $1",
                        &[name.into()],
                    )
                    .and_then(plans::first_value::<Uuid>)
                    .expect("looking up the tenant")
                });
                return Resolved {
                    tenant,
                    sees_all: true,
                };
            }
            let by_id = uuid::Uuid::parse_str(name).is_ok();
            let query = if by_id {
                "SELECT (SELECT t.id FROM audience.tenants t WHERE t.id = $1::uuid),
                        audience.sees_all_tenants() OR EXISTS (SELECT FROM audience.tenant_access g WHERE g.tenant_id IS NULL)"
            } else {
                "SELECT (SELECT t.id FROM audience.tenants t WHERE t.name = $1),
                        audience.sees_all_tenants() OR EXISTS (SELECT FROM audience.tenant_access g WHERE g.tenant_id IS NULL)"
            };
            let rows = plans::select(client, query, &[name.into()]).expect("looking up the tenant");
            let row = rows.first();
            Resolved {
                tenant: row.get::<Uuid>(1).expect("tenant id"),
                sees_all: row.get::<bool>(2).expect("sees all").unwrap_or(false),
            }
        })
    })
}

/// The tenant the setting names, or None when it names none the role may
/// select (unset, unknown, not granted, or being dropped): for triggers,
/// which then have no rules to keep.
pub(crate) fn selected_tenant() -> Option<Uuid> {
    setting().and_then(|name| find(&name).tenant)
}

/// The tenant named by the setting `audience.tenant`; raises 22023 when it
/// is unset and 42501 when the session's role may not select it (42704
/// when it does not exist, to a role that may select every tenant).
#[pg_extern(stable, parallel_safe)]
pub(crate) fn current_tenant() -> Uuid {
    let Some(name) = setting() else {
        // A Citus worker is sent SET LOCAL and the role's settings, not
        // the session's SET at the coordinator.
        let hint = if citus::on_worker() {
            "On a Citus cluster a session's SET audience.tenant stays at the coordinator: choose the tenant with SET LOCAL in a transaction, or as a setting of the role (ALTER ROLE ... SET audience.tenant = '<tenant name>')."
        } else {
            "Run SET audience.tenant = '<tenant name or id>' or SELECT audience.use_tenant('<tenant name>')."
        };
        crate::error::raise(
            Error::new(
                ErrorKind::InvalidParameter,
                "no tenant selected: the setting audience.tenant is not set",
            )
            .with_hint(hint),
        );
    };
    match find(&name) {
        Resolved { tenant: Some(tenant), .. } => tenant,
        Resolved { sees_all: true, .. } => crate::error::raise(
            Error::new(ErrorKind::UndefinedObject, format!("unknown tenant \"{name}\"")).with_hint(
                "Check the value of audience.tenant; an administrator creates tenants with audience.create_tenant(name).",
            ),
        ),
        Resolved { sees_all: false, .. } => crate::error::raise(
            Error::new(ErrorKind::InsufficientPrivilege, format!("permission denied for tenant \"{name}\""))
                .with_detail("The setting audience.tenant names a tenant this role may not select, or none.")
                .with_hint("audience.tenants lists the tenants this role may select; an administrator grants others with audience.grant_tenant(role, tenant)."),
        ),
    }
}
