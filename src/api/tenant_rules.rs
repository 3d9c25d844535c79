//! A tenant's rules, kept per backend: its custom fields and segments (the
//! catalogue rules are checked against), its dynamic segments' parsed rules
//! in dependency order, its fit rules, and the maintenance queries compiled
//! from them. Every statement on contacts or events needs them, and they
//! rarely change.
//!
//! They are forgotten the way PostgreSQL's own caches forget catalog rows:
//! a change of fields, segments or fit rules queues an invalidation of
//! `audience.segments` (the trigger `audience.rules_changed`), which this
//! backend processes at its next command and every other backend once the
//! change commits. Rule changes hold the tenant's rules lock exclusively
//! until after that; maintenance takes it shared and then processes the
//! invalidations that arrived, so it never uses rules older than the ones
//! its snapshot sees.

use crate::api::citus;
use crate::api::compat;
use crate::api::membership::{self, Batch, Dynamic};
use crate::api::plans;
use crate::api::scoring::{self, FitRule};
use audience_core::fields::FieldType;
use audience_core::rules::check::Catalogue;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Maintenance queries and the values they bind from `$4` on, by the
/// segments they evaluate and how many contacts they are for.
type Queries = HashMap<(Vec<usize>, Batch), Rc<(String, Vec<String>)>>;

pub(crate) struct TenantRules {
    pub catalogue: Catalogue,
    pub dynamic: Vec<Dynamic>,
    /// Indexes into `dynamic`, level by level: each segment comes after the
    /// segments its rule refers to.
    pub levels: Vec<Vec<usize>>,
    pub fit: Vec<FitRule>,
    pub queries: RefCell<Queries>,
}

thread_local! {
    /// By tenant id, with the generation they were read in.
    static KEPT: RefCell<Kept<Rc<TenantRules>>> = RefCell::new(Kept::new(KEPT_TENANTS));
    /// Counts the invalidations of `audience.segments` this backend saw.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// The watched `audience.segments`, when it is known and has the
    /// trigger that announces changes (0.1.0's SQL has not, see `compat`:
    /// its rules are read every time).
    static WATCHED: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Tenants kept at most; then all are dropped and read again as they come.
const KEPT_TENANTS: usize = 64;

/// The tenant's rules as the current snapshot sees them.
pub(crate) fn tenant_rules(client: &SpiClient, tenant: &str) -> Rc<TenantRules> {
    let Some(generation) = generation().filter(|_| citus::may_keep_rules()) else {
        return Rc::new(read(client, tenant));
    };
    if let Some(rules) = KEPT.with(|kept| kept.borrow().get(tenant, generation)) {
        return rules;
    }
    let rules = Rc::new(read(client, tenant));
    KEPT.with(|kept| kept.borrow_mut().keep(tenant, generation, rules.clone()));
    rules
}

/// Values kept by key with the invalidation generation they were read in
/// (see `generation`); once `capacity` are kept, all are dropped and read
/// again as they come.
pub(crate) struct Kept<V> {
    values: HashMap<String, (u64, V)>,
    capacity: usize,
}

impl<V: Clone> Kept<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Kept {
            values: HashMap::new(),
            capacity,
        }
    }

    /// The value kept for `key`, if it was read in `generation`.
    pub(crate) fn get(&self, key: &str, generation: u64) -> Option<V> {
        self.values
            .get(key)
            .filter(|(at, _)| *at == generation)
            .map(|(_, value)| value.clone())
    }

    pub(crate) fn keep(&mut self, key: &str, generation: u64, value: V) {
        if self.values.len() >= self.capacity {
            self.values.clear();
        }
        self.values.insert(key.to_string(), (generation, value));
    }
}

/// The generation what is read now may be kept for, after the
/// invalidations that arrived; None when nothing may be kept (no trigger
/// announces changes). Taken before reading: an invalidation that arrives
/// meanwhile makes what is read stale at once.
pub(crate) fn generation() -> Option<u64> {
    // One of the invalidations may stop the watch (a dropped table): then
    // it is looked up again, so that nothing is kept while no invalidation
    // could reach it.
    loop {
        if !watch() {
            return None;
        }
        unsafe { pg_sys::AcceptInvalidationMessages() };
        if WATCHED.get().is_some() {
            return Some(GENERATION.get());
        }
    }
}

/// Makes every backend read the rules again: this one at its next
/// command, the others once the current transaction commits.
#[pg_extern]
fn forget_kept_rules() {
    let segments = Spi::get_one::<pg_sys::Oid>("SELECT 'audience.segments'::regclass::oid")
        .expect("finding audience.segments")
        .expect("audience.segments exists");
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(segments) };
}

/// Whether `audience.segments` is watched for changes, watching it if it
/// can be.
fn watch() -> bool {
    if WATCHED.get().is_some() {
        return true;
    }
    if !CALLBACK_REGISTERED.get() {
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(relation_changed), pg_sys::Datum::from(0));
            // Which tenants a role may select follows its memberships and
            // attributes (audience_admin, superuser) too.
            for roles in [
                pg_sys::SysCacheIdentifier::AUTHMEMROLEMEM,
                pg_sys::SysCacheIdentifier::AUTHOID,
            ] {
                pg_sys::CacheRegisterSyscacheCallback(
                    roles as _,
                    Some(roles_changed),
                    pg_sys::Datum::from(0),
                );
            }
        };
        CALLBACK_REGISTERED.set(true);
    }
    // The triggers that announce changes (rules_changed, on segments and
    // tenants) came with 0.1.1.
    let announced = (compat::installed() > compat::Release::V0_1_0).then(|| {
        // A read-only query: read paths run on hot standbys too.
        Spi::connect(|client| {
            client
                .select("SELECT 'audience.segments'::regclass::oid", None, &[])
                .and_then(|rows| rows.first().get_one::<pg_sys::Oid>())
        })
        .expect("finding audience.segments")
        .expect("audience.segments exists")
    });
    WATCHED.set(announced);
    announced.is_some()
}

/// Relcache invalidation callback: all relations (`InvalidOid`, after a
/// cache reset) or `audience.segments`. Dropping the table also lands
/// here, so that a re-created one is looked up again.
#[pg_guard]
unsafe extern "C-unwind" fn relation_changed(_arg: pg_sys::Datum, relation: pg_sys::Oid) {
    if relation == pg_sys::InvalidOid || Some(relation) == WATCHED.get() {
        GENERATION.set(GENERATION.get() + 1);
        WATCHED.set(None);
        citus::forget();
    }
}

/// Syscache invalidation callback for roles and role memberships.
#[pg_guard]
unsafe extern "C-unwind" fn roles_changed(
    _arg: pg_sys::Datum,
    _cache: core::ffi::c_int,
    _hash: u32,
) {
    GENERATION.set(GENERATION.get() + 1);
}

/// Reads the tenant's rules. Also from a query on the tenant's rows on a
/// Citus worker (a function of the rules called for each row): they are
/// co-located with those rows.
fn read(client: &SpiClient, tenant: &str) -> TenantRules {
    citus::reading_local_rows(|| read_here(client, tenant))
}

fn read_here(client: &SpiClient, tenant: &str) -> TenantRules {
    let mut catalogue = read_catalogue(client, tenant);
    let dynamic = membership::load_dynamic(client, tenant, &catalogue);
    catalogue.mark_live(dynamic.iter().map(Dynamic::id_and_rule));
    let levels = membership::levels(&dynamic);
    let fit = scoring::load_fit_rules(client, tenant, &catalogue);
    TenantRules {
        catalogue,
        dynamic,
        levels,
        fit,
        queries: RefCell::default(),
    }
}

fn read_catalogue(client: &SpiClient, tenant: &str) -> Catalogue {
    let custom = plans::select(
        client,
        "SELECT name, type FROM audience.fields WHERE tenant_id = $1::uuid ORDER BY name",
        &[tenant.into()],
    )
    .expect("reading audience.fields")
    .filter_map(|row| {
        let name: String = row.get(1).ok().flatten().unwrap_or_default();
        let kind: String = row.get(2).ok().flatten().unwrap_or_default();
        FieldType::parse(&kind).ok().map(|kind| (name, kind))
    })
    .collect();
    let mut segments = Vec::new();
    let mut everyone = None;
    let rows = plans::select(
        client,
        "SELECT name, id::text, kind = 'everyone' FROM audience.segments WHERE tenant_id = $1::uuid ORDER BY name",
        &[tenant.into()],
    )
    .expect("reading audience.segments");
    for row in rows {
        let name: String = row.get(1).ok().flatten().unwrap_or_default();
        let id: String = row.get(2).ok().flatten().unwrap_or_default();
        if row.get::<bool>(3).ok().flatten() == Some(true) {
            everyone = Some(id.clone());
        }
        segments.push((name, id));
    }
    Catalogue {
        custom: Some(custom),
        segments: Some(segments),
        everyone,
        live: Default::default(),
    }
}
