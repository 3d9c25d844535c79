//! Kept plans for the queries that run on every statement: the maintenance
//! triggers run them once per statement, so `track` and `upsert_contact`
//! run them once per call. Parsed and planned once per backend instead of
//! every time; PostgreSQL re-plans them when the tables they read change.
//! A kept plan never runs in parallel (pgrx prepares it without
//! CURSOR_OPT_PARALLEL_OK): a query that scans a whole tenant, as refresh
//! does, is planned each time instead.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

thread_local! {
    /// By query text. Maintenance queries are built from the tenant's rules
    /// and repeat as long as the rules do.
    static PLANS: RefCell<HashMap<String, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// Plans kept at most (rule sets of a few busy tenants); then all are
/// dropped and planned again as they come.
const KEPT_PLANS: usize = 256;

/// Runs `query` (with `args` of the types it is planned for) read-only.
pub fn select<'conn>(
    client: &SpiClient<'conn>,
    query: &str,
    args: &[DatumWithOid],
) -> SpiResult<SpiTupleTable<'conn>> {
    let plan = kept(client, query, args)?;
    client.select(&*plan, None, args)
}

/// Runs `run` with PostgreSQL taking generic plans, also for the queries
/// of the functions it calls. For the few-row statements of `track` and
/// `upsert_contact`, whose custom plans took longer to make than to run:
/// PostgreSQL kept making them because a generic plan's estimate for an
/// array parameter of unknown length is higher.
///
/// Unless the database asks for custom plans, as `audience.distribute()`
/// does: Citus plans a statement reading a parameter only once it has the
/// parameter's value.
pub fn generic<T>(run: impl FnOnce() -> T) -> T {
    if custom_plans_required() {
        return run();
    }
    with_settings(&[(c"plan_cache_mode", c"force_generic_plan")], run)
}

fn custom_plans_required() -> bool {
    // The pointer is PostgreSQL's; the setting always exists.
    let value = unsafe { pg_sys::GetConfigOption(c"plan_cache_mode".as_ptr(), false, false) };
    !value.is_null() && unsafe { CStr::from_ptr(value) }.to_bytes() == b"force_custom_plan"
}

/// Runs `run` with each `(name, value)` setting in force, as a function's
/// SET clause does: a GUC nest level undone on return, and by
/// (sub)transaction abort on error.
pub fn with_settings<T>(settings: &[(&CStr, &CStr)], run: impl FnOnce() -> T) -> T {
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        for (name, value) in settings {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
        let result = run();
        pg_sys::AtEOXact_GUC(true, level);
        result
    }
}

/// The first column of the first row, or None when there is no row
/// (`first().get_one()` fails on an empty result).
pub fn first_value<T: pgrx::FromDatum + pgrx::IntoDatum>(
    rows: SpiTupleTable,
) -> SpiResult<Option<T>> {
    if rows.is_empty() {
        Ok(None)
    } else {
        rows.first().get_one::<T>()
    }
}

/// Runs `query`, which may write, in the current transaction.
pub fn update<'conn>(
    client: &mut SpiClient<'conn>,
    query: &str,
    args: &[DatumWithOid],
) -> SpiResult<SpiTupleTable<'conn>> {
    let plan = kept(client, query, args)?;
    client.update(&*plan, None, args)
}

/// The kept plan of `query`, planned now if there is none. Handed out as
/// an `Rc`: running it may fire triggers that plan other queries.
fn kept(
    client: &SpiClient,
    query: &str,
    args: &[DatumWithOid],
) -> SpiResult<Rc<OwnedPreparedStatement>> {
    if let Some(plan) = PLANS.with(|plans| plans.borrow().get(query).cloned()) {
        return Ok(plan);
    }
    let types: Vec<PgOid> = args
        .iter()
        .map(|arg| PgOid::from_untagged(arg.oid()))
        .collect();
    let plan = Rc::new(client.prepare(query, &types)?.keep());
    PLANS.with(|plans| {
        let mut plans = plans.borrow_mut();
        if plans.len() >= KEPT_PLANS {
            plans.clear();
        }
        plans.insert(query.to_string(), plan.clone());
    });
    Ok(plan)
}
