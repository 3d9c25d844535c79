//! The SQL surface written in Rust, one file per SPEC area. Everything else
//! (tables, policies, plpgsql glue) is in `sql/schema.sql`.

mod contacts;
pub mod rules;
mod search;
