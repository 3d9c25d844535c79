//! The statement trigger on contacts: what a statement changed, read from
//! its transition tables, and the membership maintenance that calls for.
//! In Rust rather than plpgsql: comparing old and new rows here is one pass
//! over them, where SQL joined them in a query of its own and a one-row
//! update (every `track`) paid ~100 µs for the trigger.

use crate::api::membership;
use crate::api::plans;
use crate::api::tenant_rules::tenant_rules;
use pgrx::prelude::*;
use pgrx::Uuid;
use std::collections::{BTreeMap, BTreeSet};

/// A contact's `(tenant, id)`.
type Key = ([u8; 16], [u8; 16]);

/// Reads one transition table row by row through a read pointer of its
/// own (other triggers of the statement read the same table).
struct TransitionRows {
    store: *mut pg_sys::Tuplestorestate,
    pointer: i32,
    slot: *mut pg_sys::TupleTableSlot,
}

impl TransitionRows {
    /// None when the statement has no such table.
    unsafe fn open(store: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc) -> Option<Self> {
        if store.is_null() {
            return None;
        }
        let pointer = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(store, pointer);
        pg_sys::tuplestore_rescan(store);
        let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple);
        Some(TransitionRows {
            store,
            pointer,
            slot,
        })
    }

    /// The next row, its columns read into the slot; valid until the next
    /// call.
    unsafe fn next(&mut self) -> Option<*mut pg_sys::TupleTableSlot> {
        pg_sys::tuplestore_select_read_pointer(self.store, self.pointer);
        if !pg_sys::tuplestore_gettupleslot(self.store, true, false, self.slot) {
            return None;
        }
        pg_sys::slot_getallattrs(self.slot);
        Some(self.slot)
    }
}

impl Drop for TransitionRows {
    fn drop(&mut self) {
        unsafe { pg_sys::ExecDropSingleTupleTableSlot(self.slot) };
    }
}

/// Column `attnum`'s value and null flag in a slot whose columns were read.
unsafe fn column(slot: *mut pg_sys::TupleTableSlot, attnum: usize) -> (pg_sys::Datum, bool) {
    (
        *(*slot).tts_values.add(attnum),
        *(*slot).tts_isnull.add(attnum),
    )
}

/// The row's `(tenant, id)`, at the positions `key` gives.
unsafe fn key_at(slot: *mut pg_sys::TupleTableSlot, key: (usize, usize)) -> Key {
    // Both key columns are NOT NULL uuids, passed by reference.
    let uuid = |attnum| *column(slot, attnum).0.cast_mut_ptr::<[u8; 16]>();
    (uuid(key.0), uuid(key.1))
}

unsafe extern "C-unwind" {
    /// PostgreSQL's binary equality of two values of one type (detoasting
    /// them): equal images are equal values; unequal ones are treated as a
    /// change, which at worst re-evaluates a rule for nothing.
    fn datum_image_eq(
        value1: pg_sys::Datum,
        value2: pg_sys::Datum,
        by_value: bool,
        length: i32,
    ) -> bool;
}

/// What an UPDATE changed: the names of the columns that differ in some
/// row (None when rows changed tenant or id: then every rule is
/// evaluated), and the contacts before and after.
struct Update {
    changed: Option<Vec<String>>,
    old: Vec<Key>,
    new: Vec<Key>,
}

/// A column of `desc`: its name, whether its values are passed by value,
/// and its length; None for a dropped column.
unsafe fn column_name(desc: pg_sys::TupleDesc, index: usize) -> Option<(String, bool, i32)> {
    let attribute = &*(*desc).attrs.as_ptr().add(index);
    if attribute.attisdropped {
        return None;
    }
    let name = core::ffi::CStr::from_ptr(attribute.attname.data.as_ptr())
        .to_string_lossy()
        .into_owned();
    Some((name, attribute.attbyval, attribute.attlen as i32))
}

unsafe fn compare_update(data: &pg_sys::TriggerData, key: (usize, usize)) -> Update {
    let desc = (*data.tg_relation).rd_att;
    let columns: Vec<Option<(String, bool, i32)>> = (0..(*desc).natts as usize)
        .map(|i| column_name(desc, i))
        .collect();
    let mut differs = vec![false; columns.len()];
    let (mut old, mut new) = (Vec::new(), Vec::new());
    let mut paired = true;
    if let (Some(mut old_rows), Some(mut new_rows)) = (
        TransitionRows::open(data.tg_oldtable, desc),
        TransitionRows::open(data.tg_newtable, desc),
    ) {
        // PostgreSQL appends each updated row's old and new versions to
        // the two tables together, so they pair up row by row.
        loop {
            let (before, after) = match (old_rows.next(), new_rows.next()) {
                (Some(before), Some(after)) => (before, after),
                (None, None) => break,
                (before, after) => {
                    paired = false;
                    old.extend(before.map(|row| key_at(row, key)));
                    new.extend(after.map(|row| key_at(row, key)));
                    continue;
                }
            };
            let (old_key, new_key) = (key_at(before, key), key_at(after, key));
            paired &= old_key == new_key;
            old.push(old_key);
            new.push(new_key);
            for (i, described) in columns.iter().enumerate() {
                let Some((_, by_value, length)) = described else {
                    continue;
                };
                if differs[i] {
                    continue;
                }
                let ((v1, null1), (v2, null2)) = (column(before, i), column(after, i));
                differs[i] =
                    null1 != null2 || (!null1 && !datum_image_eq(v1, v2, *by_value, *length));
            }
        }
    }
    let changed = paired.then(|| {
        columns
            .iter()
            .zip(&differs)
            .filter(|(_, &differs)| differs)
            .filter_map(|(c, _)| c.as_ref().map(|c| c.0.clone()))
            .collect()
    });
    Update { changed, old, new }
}

/// The 0-based position of a column of `desc`.
unsafe fn position(desc: pg_sys::TupleDesc, name: &str) -> usize {
    (0..(*desc).natts as usize)
        .find(|&i| column_name(desc, i).is_some_and(|(n, _, _)| n == name))
        .unwrap_or_else(|| pgrx::error!("audience.contacts has no column {name}"))
}

unsafe fn keys(
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    key: (usize, usize),
) -> Vec<Key> {
    let mut keys = Vec::new();
    if let Some(mut rows) = TransitionRows::open(store, desc) {
        while let Some(row) = rows.next() {
            keys.push(key_at(row, key));
        }
    }
    keys
}

/// Contact ids by tenant.
type Touched = BTreeMap<[u8; 16], BTreeSet<[u8; 16]>>;

fn by_tenant<'k>(keys: impl IntoIterator<Item = &'k Key>) -> Touched {
    let mut grouped = Touched::new();
    for (tenant, id) in keys {
        grouped.entry(*tenant).or_default().insert(*id);
    }
    grouped
}

/// A uuid as the text the maintenance functions take.
fn text(uuid: [u8; 16]) -> String {
    Uuid::from_bytes(uuid).to_string()
}

/// Whether the tenant has a rule that reads contacts (a dynamic segment
/// or a fit rule); without one, a statement on contacts has no membership
/// or fit points to keep.
fn rules_read_contacts(tenant: &str) -> bool {
    Spi::connect(|client| {
        let rules = tenant_rules(client, tenant);
        !rules.dynamic.is_empty() || !rules.fit.is_empty()
    })
}

/// Brings membership of the touched contacts up to date, tenant by tenant,
/// for the rules that read `changed` columns (all when None). Ids become
/// text only for tenants with such rules.
fn maintain(touched: Touched, changed: Option<Vec<String>>) {
    for (tenant, ids) in touched {
        let tenant = text(tenant);
        if rules_read_contacts(&tenant) {
            membership::maintain_membership(
                &tenant,
                ids.into_iter().map(text).collect(),
                changed.clone(),
            );
        }
    }
}

/// Checks that the tenants of the rows a statement wrote exist and keeps
/// them until the transaction ends: the foreign key of contacts, checked
/// once per statement rather than once per row. On a Citus worker the
/// real foreign key does it (`audience.distribute()` adds it), on the
/// worker's own copy of tenants: locking the rows here would lock every
/// node's copy.
fn hold_tenants(touched: &Touched) {
    let tenants: Vec<Uuid> = touched.keys().map(|t| Uuid::from_bytes(*t)).collect();
    if tenants.is_empty() || crate::api::citus::on_worker() {
        return;
    }
    Spi::connect_mut(|client| {
        plans::update(
            client,
            "SELECT audience.hold_tenants($1)",
            &[tenants.into()],
        )
        .map(|_| ())
    })
    .expect("checking the tenants of written contacts");
}

/// Keeps each tenant's Everyone segment counting every contact: `joined`
/// contacts came into their tenant, `left` ones went. Its row is updated
/// after the other segments' rows, which statements lock in id order, so
/// that every statement locks segments in one order.
fn count_everyone<'k>(
    joined: impl IntoIterator<Item = &'k Key>,
    left: impl IntoIterator<Item = &'k Key>,
) {
    let mut deltas: BTreeMap<[u8; 16], i64> = BTreeMap::new();
    for (tenant, _) in joined {
        *deltas.entry(*tenant).or_default() += 1;
    }
    for (tenant, _) in left {
        *deltas.entry(*tenant).or_default() -= 1;
    }
    // A statement per tenant, in the order of their ids: under Citus each
    // stays on its tenant's worker.
    Spi::connect_mut(|client| {
        for (tenant, delta) in deltas.into_iter().filter(|(_, delta)| *delta != 0) {
            plans::update(
                client,
                "UPDATE audience.segments SET member_count = member_count + $2
                  WHERE tenant_id = $1 AND kind = 'everyone'",
                &[Uuid::from_bytes(tenant).into(), delta.into()],
            )?;
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .expect("counting the tenants' contacts");
}

/// Removes contacts (deleted, or moved to another tenant) from every
/// segment of the tenant they were in.
fn leave<'k>(keys: impl IntoIterator<Item = &'k Key>) {
    let gone: BTreeMap<String, Vec<String>> = by_tenant(keys)
        .into_iter()
        .map(|(tenant, ids)| (text(tenant), ids.into_iter().map(text).collect()))
        .collect();
    if !gone.is_empty() {
        membership::leave_segments(gone);
    }
}

/// Statement trigger on contacts (after INSERT, UPDATE and DELETE, with
/// transition tables): brings segment membership of the contacts the
/// statement wrote up to date. Its SQL declaration is in sql/segments.sql,
/// with the settings its bulk queries run under.
#[pg_trigger(sql = false)]
fn contacts_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, core::convert::Infallible> {
    let data = trigger.trigger_data();
    unsafe {
        let desc = (*data.tg_relation).rd_att;
        let key = (position(desc, "tenant_id"), position(desc, "id"));
        match trigger.op() {
            Ok(PgTriggerOperation::Delete) => {
                let gone = keys(data.tg_oldtable, desc, key);
                leave(&gone);
                count_everyone(&[], &gone);
            }
            // New contacts are in no segment yet: only rules can take them in.
            Ok(PgTriggerOperation::Insert) => {
                let new = keys(data.tg_newtable, desc, key);
                let touched = by_tenant(&new);
                hold_tenants(&touched);
                maintain(touched, None);
                count_everyone(&new, &[]);
            }
            Ok(PgTriggerOperation::Update) => {
                let update = compare_update(data, key);
                let moved = update.changed.is_none();
                if moved {
                    hold_tenants(&by_tenant(&update.new));
                    let staying: std::collections::HashSet<&Key> = update.new.iter().collect();
                    leave(update.old.iter().filter(|k| !staying.contains(k)));
                }
                // Segments whose rules read none of the changed columns
                // keep their membership.
                if update.changed.as_ref().is_some_and(Vec::is_empty) {
                    return Ok(None);
                }
                maintain(
                    by_tenant(update.new.iter().chain(&update.old)),
                    update.changed,
                );
                if moved {
                    count_everyone(&update.new, &update.old);
                }
            }
            _ => {}
        }
    }
    Ok(None)
}
