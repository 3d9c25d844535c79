//! `audience.search`'s query language, read in Rust; matching is SQL.

use crate::error::OrRaise;
use audience_core::search::{self, SearchTerm};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::json;

/// The terms of a search query as a JSON array of
/// `{"kind": "field"|"tag"|"word", "field": …, "value": …}`.
#[pg_extern(immutable, strict, parallel_safe)]
fn search_terms(query: &str) -> JsonB {
    let terms = search::parse(query).or_raise();
    JsonB(
        terms
            .into_iter()
            .map(|term| match term {
                SearchTerm::Field { name, value } => {
                    json!({"kind": "field", "field": name, "value": value})
                }
                SearchTerm::Tag(value) => json!({"kind": "tag", "value": value}),
                SearchTerm::Word(value) => json!({"kind": "word", "value": value}),
            })
            .collect(),
    )
}
