//! `audience`: a marketing/CRM audience inside PostgreSQL.
//!
//! The logic that needs no database lives in the `audience-core` crate; this
//! crate is the thin pgrx layer: SQL functions and error reporting. Tables,
//! policies, grants and views are plain SQL in `sql/`.

use pgrx::prelude::*;

mod api;
mod error;

::pgrx::pg_module_magic!(name, version);

// Rust's own allocations (the importer makes several for each CSV field)
// go through mimalloc: with glibc's malloc, a quarter of reading a 1M-row
// file went to allocating and consolidating freed chunks (4.1 s → 3.1 s).
// PostgreSQL's memory (palloc) is not affected.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

extension_sql_file!(
    "../sql/schema.sql",
    name = "schema",
    requires = [
        api::rules::Rule,
        api::contacts::fold,
        api::contacts::tag_keys,
        api::contacts::normalize_email,
        api::contacts::restoring,
        api::contacts::uuidv7,
        api::import::importing_normalised_rows,
        api::tenant_rules::forget_kept_rules,
        api::tenants::current_tenant
    ]
);
extension_sql_file!(
    "../sql/segments.sql",
    name = "segments",
    requires = [
        "schema",
        api::scoring::score_tier,
        api::membership::reads::segment_names,
        api::membership::locks::rules_for_statement,
        api::membership::storage::merged_segments,
        api::membership::storage::merged_since,
        api::membership::storage::apply_memberships
    ]
);
extension_sql_file!(
    "../sql/scoring.sql",
    name = "scoring",
    requires = [
        "segments",
        api::scoring::maintain_fit,
        api::scoring::check_fit_rule,
        api::scoring::check_event_kind,
        api::membership::maintenance::campaign_sent
    ]
);
extension_sql_file!(
    "../sql/import.sql",
    name = "import",
    requires = ["scoring", api::import::import_contacts]
);
extension_sql_file!(
    "../sql/analysts.sql",
    name = "analysts",
    requires = ["import"]
);
extension_sql_file!("../sql/views.sql", name = "views", requires = ["analysts"]);
extension_sql_file!("../sql/citus.sql", name = "citus", requires = ["views"]);
extension_sql_file!("../sql/security.sql", name = "security", finalize);

#[cfg(any(test, feature = "pg_test"))]
mod differential;
#[cfg(any(test, feature = "pg_test"))]
mod invariants;
#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
