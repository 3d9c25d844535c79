//! The SQL surface written in Rust, one file per SPEC area. Everything else
//! (tables, policies, plpgsql glue) is in `sql/schema.sql`.

mod analysts;
pub(crate) mod citus;
mod compat;
pub(crate) mod contact_changes;
pub(crate) mod contacts;
pub(crate) mod import;
pub(crate) mod membership;
mod plans;
pub(crate) mod query_segments;
pub mod rules;
pub(crate) mod scoring;
mod search;
pub(crate) mod tenant_rules;
pub(crate) mod tenants;
