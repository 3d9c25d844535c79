//! The part of the analysts' functions (sql/analysts.sql) that wants Rust:
//! counting the overlap of every pair of segments in one pass.

use pgrx::prelude::*;
use pgrx::Uuid;

/// For members given as parallel arrays of set numbers and contact ids,
/// the contacts in both sets for every pair of `sets` (a < b).
#[pg_extern(immutable, parallel_safe)]
fn intersections(
    sets: Vec<i32>,
    numbers: Array<i32>,
    members: Array<Uuid>,
) -> TableIterator<'static, (name!(a, i32), name!(b, i32), name!(in_both, i64))> {
    let pairs = numbers
        .iter()
        .zip(members.iter())
        .filter_map(|(number, member)| Some((number?, *member?.as_bytes())));
    TableIterator::new(audience_core::overlap::intersections(&sets, pairs))
}
