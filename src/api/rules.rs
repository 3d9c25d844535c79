//! `audience.rule`, the type whose text is the rule language, and the
//! functions that turn a rule into JSON, SQL and a live count.

use crate::api::tenant_rules::tenant_rules;
use crate::error::{raise, OrRaise};
use audience_core::rules::check::{check, Catalogue};
use audience_core::rules::compile::{compile, Compiled, Scope};
use audience_core::rules::{self, json};
use audience_core::{Error, ErrorKind};
use pgrx::datum::DatumWithOid;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use pgrx::{InOutFuncs, JsonB, StringInfo};
use serde::{Deserialize, Serialize};

/// A rule, stored in its canonical text form. Its input checks the syntax
/// and standard fields only, so a stored rule always loads again; checks
/// that need the tenant run when the rule is used.
#[derive(PostgresType, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[inoutfuncs]
pub struct Rule {
    canonical: String,
}

impl Rule {
    /// Checks a parsed rule against the standard fields and keeps its
    /// canonical text. Type errors found here are errors of the input text.
    /// A rule whose canonical text the type's input would refuse (too long
    /// or too deep: a rename can lengthen it, JSON can nest it) is refused
    /// too, so that every stored rule loads again (pg_dump and restore).
    pub fn from_ast(ast: &rules::Rule) -> Rule {
        if let Err(error) = check(ast, &Catalogue::default()) {
            raise(Error {
                kind: ErrorKind::InvalidText,
                ..error
            });
        }
        let canonical = ast.to_string();
        if let Err(error) = rules::parse(&canonical) {
            raise(error.with_hint("A rule is stored in its canonical form, which must itself be a rule the type accepts."));
        }
        Rule { canonical }
    }

    pub fn ast(&self) -> rules::Rule {
        rules::parse(&self.canonical).or_raise()
    }
}

impl InOutFuncs for Rule {
    fn input(input: &core::ffi::CStr) -> Self {
        let text = input.to_str().unwrap_or_else(|_| {
            raise(Error::new(
                ErrorKind::InvalidText,
                "rule text is not valid UTF-8",
            ))
        });
        Rule::from_ast(&rules::parse(text).or_raise())
    }

    fn output(&self, buffer: &mut StringInfo) {
        buffer.push_str(&self.canonical);
    }
}

/// The JSON form of a rule, for condition-builder UIs.
#[pg_extern(immutable, strict, parallel_safe)]
fn rule_to_json(rule: Rule) -> JsonB {
    JsonB(json::to_json(&rule.ast()))
}

/// A rule from its JSON form.
#[pg_extern(immutable, strict, parallel_safe)]
fn rule_from_json(rule: JsonbText) -> Rule {
    Rule::from_ast(&json::from_json_text(&rule.0).or_raise())
}

/// A jsonb argument as its text. pgrx's `JsonB` parses the text with
/// serde_json, which stops at 128 levels of nesting with an internal error
/// before the function runs; this leaves reading it to the function.
pub struct JsonbText(String);

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // jsonb_out detoasts its argument and returns a palloc'd C string.
        let text = unsafe {
            pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)])
        }?;
        Some(JsonbText(text.to_string_lossy().into_owned()))
    }
}

unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for JsonbText {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }
}

unsafe impl SqlTranslatable for JsonbText {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbText);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}

/// The current tenant's id, as text (raises when none is set or the
/// session's role may not select it). Called directly, not through SQL:
/// pgrx's one-value queries take a transaction id, which read paths must
/// not (a hot standby has none to give).
pub fn current_tenant() -> String {
    crate::api::tenants::current_tenant().to_string()
}

/// The tenant's custom fields and segments, for checking and compiling.
pub fn tenant_catalogue(tenant: &str) -> Catalogue {
    Spi::connect(|client| tenant_rules(client, tenant).catalogue.clone())
}

/// Compiles a rule for a tenant, numbering its parameters from
/// `first_param` (the caller binds the tenant and others before them).
pub fn compile_for_tenant(rule: &Rule, tenant: &str, first_param: usize, scope: Scope) -> Compiled {
    let rule = rule.ast();
    // Against the kept catalogue, not a copy: views compile a rule for
    // every contact (rule_matches).
    Spi::connect(|client| {
        compile(
            &rule,
            &tenant_rules(client, tenant).catalogue,
            first_param,
            scope,
        )
    })
    .or_raise()
}

/// A compiled query's arguments: the caller's own values (`$1` up to
/// where the rule's parameters start), then the rule's bound values, each
/// passed as text and cast in the SQL.
pub fn arguments<'a>(
    mut leading: Vec<DatumWithOid<'a>>,
    params: &'a [String],
) -> Vec<DatumWithOid<'a>> {
    leading.extend(params.iter().map(|p| p.as_str().into()));
    leading
}

/// The count query of a compiled rule.
fn count_query(compiled: &Compiled) -> String {
    format!(
        "SELECT count(*) FROM audience.contacts c WHERE c.tenant_id = $1::uuid AND {}",
        compiled.predicate
    )
}

/// How many of the current tenant's contacts match `rule` now. Under
/// Citus, `segment_overview` calls it on the tenant's worker, where it
/// reads the tenant's rows.
#[pg_extern(stable, strict)]
fn preview(rule: Rule) -> i64 {
    let tenant = current_tenant();
    crate::api::citus::reading_local_rows(|| {
        let compiled = compile_for_tenant(&rule, &tenant, 2, Scope::All);
        let args = arguments(vec![tenant.as_str().into()], &compiled.params);
        Spi::connect(|client| {
            client
                // No row limit: PostgreSQL plans limited queries without parallel workers.
                .select(&count_query(&compiled), None, &args)
                .and_then(|rows| rows.first().get_one::<i64>())
                .expect("count query")
                .unwrap_or(0)
        })
    })
}

/// The SQL the rule runs as for the current tenant, with its parameters.
#[pg_extern(stable, strict)]
fn explain(rule: Rule) -> String {
    let tenant = current_tenant();
    let compiled = compile_for_tenant(&rule, &tenant, 2, Scope::All);
    let mut text = count_query(&compiled);
    text.push_str(&format!("\n-- $1 = '{tenant}' (the current tenant)"));
    for (i, value) in compiled.params.iter().enumerate() {
        text.push_str(&format!("\n-- ${} = {}", i + 2, rules::ast::quote(value)));
    }
    text
}
