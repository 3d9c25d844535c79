//! The tenant-wide locks of rules and bulk writes, and the statement
//! trigger that takes the rules before a statement locks any row.

use crate::api::tenants;
use pgrx::prelude::*;

/// Takes the tenant's rules for this transaction: shared to maintain
/// membership by them, exclusive to re-evaluate them (rule changes and
/// refresh). Queries after it read with a fresh snapshot, which sees every
/// change committed by the holders it waited for.
pub(crate) fn lock_rules(tenant: &str, exclusive: bool) {
    advisory_xact_lock(RULES, tenant, exclusive);
}

const RULES: &str = "audience rules";
const BULK_WRITES: &str = "audience bulk writes";

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
    advisory_xact_lock(BULK_WRITES, tenant, true);
}

/// `audience.lock_bulk_writes(tenant)`, for the events trigger (internal).
#[pg_extern(name = "lock_bulk_writes")]
fn lock_bulk_writes_sql(tenant: pgrx::Uuid) {
    lock_bulk_writes(&tenant.to_string());
}

/// `pg_advisory_xact_lock(hashtext(class), hashtext(tenant))`, or its
/// shared form. At the coordinator of a Citus cluster, taken on the
/// tenant's worker instead, where the triggers that maintain membership
/// take theirs: the call runs there in a query routed to the tenant's
/// rows, and holds until the distributed transaction ends.
fn advisory_xact_lock(class: &str, tenant: &str, exclusive: bool) {
    if crate::api::citus::coordinates_tenants() {
        // The lock's SQL function, in a query of one row of the tenant's.
        let call = if class == RULES {
            "audience.lock_rules(s.tenant_id, $2)"
        } else {
            "audience.lock_bulk_writes(s.tenant_id)"
        };
        let query = format!(
            "SELECT {call} FROM audience.segments s WHERE s.tenant_id = $1::uuid AND s.kind = 'everyone'"
        );
        Spi::connect(|client| {
            client
                .select(&query, None, &[tenant.into(), exclusive.into()])
                .map(|_| ())
        })
        .expect("locking the tenant on its worker");
        return;
    }
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
