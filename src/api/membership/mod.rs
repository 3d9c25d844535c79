//! Segment membership: the per-statement maintenance that keeps stored
//! membership equal to the rules, refresh, and live evaluation where
//! stored membership may lag (time-relative rules). Every change of
//! stored membership goes through `storage`.

pub(crate) mod graph;
pub(crate) mod live;
pub(crate) mod locks;
pub(crate) mod maintenance;
pub(crate) mod reads;
pub(crate) mod refresh;
pub(crate) mod storage;

pub(crate) use graph::{levels, load_dynamic, reading_through, Dynamic};
pub(crate) use locks::{lock_bulk_writes, lock_rules};
pub(crate) use maintenance::{maintain_membership, Batch, FEW_CONTACTS};
pub(crate) use storage::{apply_differences, leave_segments};
