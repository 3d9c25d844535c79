//! What changes when the tables are distributed by Citus (`sql/citus.sql`,
//! `audience.distribute()`): a tenant's rows, and the triggers on them,
//! live on the tenant's worker; tenants and grants have a copy on every
//! node.

use crate::api::plans;
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    /// What this node is, once known; forgotten with the watch on
    /// `audience.segments` (see `tenant_rules`).
    static NODE: Cell<Option<Node>> = const { Cell::new(None) };
}

#[derive(Clone, Copy, PartialEq)]
enum Node {
    /// One server: Citus is not loaded or not created in this database.
    Alone,
    /// A Citus coordinator, and whether the tenants' tables are distributed.
    Coordinator {
        distributed: bool,
    },
    Worker,
}

/// Whether Citus is loaded in this backend.
fn loaded() -> bool {
    // The pointer is PostgreSQL's; null when no such setting exists.
    !unsafe {
        pg_sys::GetConfigOption(
            c"citus.allow_nested_distributed_execution".as_ptr(),
            true,
            false,
        )
    }
    .is_null()
}

/// Runs `read`, which reads only rows this node holds: tenants and grants
/// (reference tables, with a copy on every node), or a tenant's rules and
/// settings from inside a query on the tenant's rows (co-located with
/// them). On a worker, inside a query the coordinator sent, Citus refuses
/// any query of its tables as possibly remote.
pub(crate) fn reading_local_rows<T>(read: impl FnOnce() -> T) -> T {
    if loaded() {
        plans::with_settings(
            &[(c"citus.allow_nested_distributed_execution", c"on")],
            read,
        )
    } else {
        read()
    }
}

/// Whether this backend may keep a tenant's rules between statements. A
/// change of rules announces itself on the node that holds the tenant's
/// rows, where the triggers that use the rules run; the coordinator of
/// distributed tables is never told, and reads them every time.
pub(crate) fn may_keep_rules() -> bool {
    !coordinates_tenants()
}

/// Whether this node is the coordinator of distributed tenants' tables:
/// their rows, and the triggers on them, are on the workers.
pub(crate) fn coordinates_tenants() -> bool {
    node() == Node::Coordinator { distributed: true }
}

/// Whether this node is a Citus worker. Membership changes made there
/// (by the triggers on a tenant's rows) are not announced with NOTIFY:
/// listeners connect to the coordinator, and Citus commits a transaction
/// that wrote on several workers with PREPARE TRANSACTION, which refuses
/// one that notified.
pub(crate) fn on_worker() -> bool {
    node() == Node::Worker
}

fn node() -> Node {
    if let Some(node) = NODE.get() {
        return node;
    }
    let node = if !loaded() || !created() {
        Node::Alone
    } else {
        let (coordinator, distributed) = Spi::get_two::<bool, bool>(
            "SELECT pg_catalog.citus_is_coordinator(),
                    EXISTS (SELECT FROM pg_catalog.pg_dist_partition
                             WHERE logicalrelid = 'audience.segments'::regclass)",
        )
        .expect("asking Citus which node this is");
        match coordinator {
            Some(true) => Node::Coordinator {
                distributed: distributed == Some(true),
            },
            Some(false) => Node::Worker,
            None => Node::Alone,
        }
    };
    NODE.set(Some(node));
    node
}

/// Whether the citus extension is created in this database.
fn created() -> bool {
    Spi::get_one::<bool>("SELECT to_regproc('pg_catalog.citus_is_coordinator') IS NOT NULL")
        .expect("looking for Citus")
        .unwrap_or(false)
}

/// Forgets what was learnt of Citus: `audience.segments` changed, and may
/// have been distributed.
pub(crate) fn forget() {
    NODE.set(None);
}
