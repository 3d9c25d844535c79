//! The current tenant: the setting `audience.tenant` (a tenant's name or
//! id) resolved to the tenant's id. Policies, column defaults and triggers
//! ask for it in every statement, so each backend keeps what it resolved
//! the way PostgreSQL keeps catalog rows: looked up with the latest
//! snapshot, and forgotten on the invalidation that a change of
//! `audience.tenants` queues (its trigger `audience.rules_changed`, see
//! `tenant_rules`).

use crate::api::plans;
use crate::api::tenant_rules::{self, Kept};
use audience_core::{Error, ErrorKind};
use pgrx::prelude::*;
use pgrx::Uuid;
use std::cell::RefCell;

thread_local! {
    /// Tenant ids by the setting that named them, with the invalidation
    /// generation they were looked up in.
    static RESOLVED: RefCell<Kept<Uuid>> = RefCell::new(Kept::new(KEPT_SETTINGS));
}

/// Settings kept at most (a pool switching between tenants); then all are
/// dropped and looked up again as they come.
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

/// The id of the tenant named (by name or id) by `name`; None when there
/// is none.
fn find(name: &str) -> Option<Uuid> {
    // Parallel workers may take no snapshot of their own; they look up
    // without keeping (current_tenant is parallel safe).
    let parallel = unsafe { pg_sys::IsInParallelMode() };
    let generation = if parallel {
        None
    } else {
        tenant_rules::generation()
    };
    if let Some(generation) = generation {
        if let Some(id) = RESOLVED.with(|kept| kept.borrow().get(name, generation)) {
            return Some(id);
        }
    }
    let look_up = || {
        Spi::connect(|client| {
            plans::select(client, "SELECT audience.find_tenant($1)", &[name.into()])
                .and_then(|rows| rows.first().get_one::<Uuid>())
                .expect("looking up the tenant")
        })
    };
    let Some(generation) = generation else {
        return look_up();
    };
    // With the latest snapshot, as catalog caches read: a lookup with an
    // older one could keep a tenant whose deletion this backend has
    // already been told of.
    let found = unsafe {
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
        let found = look_up();
        pg_sys::PopActiveSnapshot();
        found
    };
    if let Some(id) = found {
        RESOLVED.with(|kept| kept.borrow_mut().keep(name, generation, id));
    }
    found
}

/// The tenant the setting names, or None when it names none (unset, or a
/// tenant being dropped): for triggers, which then have no rules to keep.
pub(crate) fn selected_tenant() -> Option<Uuid> {
    setting().and_then(|name| find(&name))
}

/// The tenant named by the setting `audience.tenant`; raises 22023 when it
/// is unset and 42704 when there is no such tenant.
#[pg_extern(stable, parallel_safe)]
pub(crate) fn current_tenant() -> Uuid {
    let Some(name) = setting() else {
        crate::error::raise(
            Error::new(ErrorKind::InvalidParameter, "no tenant selected: the setting audience.tenant is not set")
                .with_hint("Run SET audience.tenant = '<tenant name or id>' or SELECT audience.use_tenant('<tenant name>')."),
        );
    };
    find(&name).unwrap_or_else(|| {
        crate::error::raise(Error::new(ErrorKind::UndefinedObject, format!("unknown tenant \"{name}\"")).with_hint(
            "Check the value of audience.tenant; an administrator creates tenants with audience.create_tenant(name).",
        ))
    })
}
