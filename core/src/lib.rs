//! The parts of `audience` that need no database: every function here is
//! plain Rust, tested with plain `#[test]`s, and called by the thin pgrx
//! layer in the `audience` crate.

pub mod columns;
pub mod error;
pub mod fields;
pub mod fold;
pub mod graph;
pub mod import;
pub mod membership;
pub mod normalize;
pub mod overlap;
pub mod rules;
pub mod search;
pub mod tiers;

pub use error::{Error, ErrorKind};
