//! Compiles a checked rule to one SQL predicate over `audience.contacts`
//! aliased `c`, in a query whose `$1` is the tenant's id. Every value,
//! custom field name and segment id is a bound parameter (`$n`); only our
//! own column names are written into the text.
//!
//! Semantics: a condition on a field that is null is not true (as in SQL),
//! and `not X` is true whenever X is not true, so `not city = 'Paris'`
//! includes contacts without a city.

use super::ast::*;
use super::check::{check, parse_time, Catalogue, Plan, Resolved, ValueType};
use crate::error::{Error, ErrorKind, Result};
use crate::fold::fold;

/// A rule as SQL: the predicate, its parameter values (all passed as text
/// and cast in the SQL), and what the predicate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub predicate: String,
    /// The values bound to `$first_param`, `$first_param + 1`, … in order.
    pub params: Vec<String>,
    /// The rule as `check` resolved it, and what it reads.
    pub plan: Plan,
    /// With `Scope::Grouped`: the event counts the predicate reads, as
    /// (alias, filter on `e`); the caller computes them per contact as
    /// `count(*) FILTER (WHERE filter) AS alias` over the contact's events,
    /// in a lateral subquery named `ev`.
    pub event_counts: Vec<(String, String)>,
}

/// The values bound to one query's parameters, in one numbering: the
/// caller's own come first (`$1` to `$leading`), then every value bound or
/// rule compiled here, in turn — so that several rules, and values of the
/// caller's between them, share one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    leading: usize,
    values: Vec<String>,
}

impl Params {
    /// Numbering that starts after the caller's `leading` parameters.
    pub fn after(leading: usize) -> Self {
        Params {
            leading,
            values: Vec::new(),
        }
    }

    /// Binds a value; returns its placeholder.
    pub fn bind(&mut self, value: impl Into<String>) -> String {
        self.values.push(value.into());
        format!("${}", self.leading + self.values.len())
    }

    /// Compiles a rule whose values take the next numbers.
    pub fn compile(
        &mut self,
        rule: &Rule,
        catalogue: &Catalogue,
        scope: Scope,
    ) -> Result<Compiled> {
        let compiled = compile(rule, catalogue, self.leading + self.values.len() + 1, scope)?;
        self.values.extend(compiled.params.iter().cloned());
        Ok(compiled)
    }

    /// The bound values, in order: `$leading + 1` first.
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// For how many contacts a predicate is evaluated, which decides the form
/// of engagement conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A few contacts (per-statement maintenance): engagement conditions
    /// probe each contact's events through the index.
    Few,
    /// The whole tenant (preview, refresh): engagement conditions read the
    /// matching events once into a hashed set.
    All,
    /// A few contacts, with several engagement conditions: each contact's
    /// events are read once and counted per condition (`event_counts`),
    /// instead of one index probe per condition.
    Grouped,
}

/// Compiles `rule`; parameters are numbered from `first_param` (the caller
/// binds the tenant as `$1`, and others before `first_param`).
pub fn compile(
    rule: &Rule,
    catalogue: &Catalogue,
    first_param: usize,
    scope: Scope,
) -> Result<Compiled> {
    let plan = check(rule, catalogue)?;
    let mut compiler = Compiler {
        catalogue,
        first_param,
        scope,
        out: Compiled {
            predicate: String::new(),
            params: Vec::new(),
            plan,
            event_counts: Vec::new(),
        },
    };
    compiler.out.predicate = compiler.rule(rule)?;
    Ok(compiler.out)
}

struct Compiler<'a> {
    catalogue: &'a Catalogue,
    first_param: usize,
    scope: Scope,
    out: Compiled,
}

/// Standard text columns stored in one case by the contacts trigger, and
/// the case they are stored in: comparing them needs no folding in SQL, so
/// their plain indexes serve.
fn stored_case(column: &str) -> Option<fn(&str) -> String> {
    match column {
        "country" => Some(str::to_uppercase),
        "email" => Some(str::to_lowercase),
        "status" | "lead_status" | "source" | "phone_type" => Some(|text| fold(text).into_owned()),
        _ => None,
    }
}

/// Escapes `%`, `_` and `\` for LIKE.
fn like_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if matches!(c, '%' | '_' | '\\') {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

impl Compiler<'_> {
    fn bind(&mut self, value: impl Into<String>) -> String {
        self.out.params.push(value.into());
        format!("${}", self.first_param + self.out.params.len() - 1)
    }

    /// A typed SQL expression for a field, and how text values compare with it.
    fn column(&mut self, field: &Field) -> Result<(String, ValueType, Case)> {
        // Resolved once, by `check`.
        let resolved = match self.out.plan.resolved(field) {
            Some(resolved) => resolved.clone(),
            None => self.catalogue.resolve(field)?,
        };
        Ok(match resolved {
            Resolved::Standard(column, kind) => {
                let case = match (kind, stored_case(column)) {
                    (ValueType::Text, Some(fold)) => Case::Stored(fold),
                    (ValueType::Text, None) => Case::Lower,
                    (ValueType::Number, _) => Case::Integer,
                    _ => Case::Exact,
                };
                let expression = match (kind, &case) {
                    (ValueType::Text, Case::Lower) => format!("audience.fold(c.{column})"),
                    _ => format!("c.{column}"),
                };
                (expression, kind, case)
            }
            Resolved::Custom(name, kind) => {
                let key = self.bind(name);
                let raw = format!("(c.attributes ->> {key}::text)");
                let expression = match kind {
                    ValueType::Text | ValueType::Unchecked => format!("audience.fold{raw}"),
                    ValueType::Number => format!("{raw}::numeric"),
                    ValueType::Date => format!("{raw}::date"),
                    ValueType::Boolean => format!("{raw}::boolean"),
                    ValueType::Timestamp => format!("{raw}::timestamptz"),
                    ValueType::Uuid => format!("{raw}::uuid"),
                };
                (
                    expression,
                    kind,
                    if kind == ValueType::Text {
                        Case::Lower
                    } else {
                        Case::Exact
                    },
                )
            }
        })
    }

    fn value(&mut self, kind: ValueType, case: &Case, literal: &Literal) -> Result<String> {
        let (text, cast) = match (kind, literal) {
            (ValueType::Text, Literal::String(s)) => (case.apply(s), "text"),
            // Integer columns compare with integers without casting the column.
            (ValueType::Number, Literal::Number(n))
                if case.is_integer() && n.parse::<i64>().is_ok() =>
            {
                (n.clone(), "bigint")
            }
            (ValueType::Number, Literal::Number(n)) => (n.clone(), "numeric"),
            (ValueType::Boolean, Literal::Bool(b)) => (b.to_string(), "boolean"),
            (ValueType::Date, Literal::String(s)) => (s.trim().to_string(), "date"),
            (ValueType::Timestamp, Literal::String(s)) => (s.trim().to_string(), "timestamptz"),
            (ValueType::Uuid, Literal::String(s)) => (s.trim().to_lowercase(), "uuid"),
            _ => {
                return Err(Error::new(
                    ErrorKind::DatatypeMismatch,
                    format!("cannot compare {kind:?} with {literal}"),
                ));
            }
        };
        if matches!(kind, ValueType::Date | ValueType::Timestamp) && parse_time(&text).is_none() {
            return Err(Error::new(
                ErrorKind::InvalidText,
                format!("invalid date {literal}"),
            ));
        }
        let placeholder = self.bind(text);
        Ok(format!("{placeholder}::{cast}"))
    }

    fn interval(&mut self, span: Span) -> String {
        // Quoted, not bound: a bound text cast to interval is cast again for
        // every row (the cast is not immutable), a literal is a constant.
        // The text is the span's canonical form, a number and a unit.
        format!("(now() - {}::interval)", quote(&span.to_string()))
    }

    fn rule(&mut self, rule: &Rule) -> Result<String> {
        Ok(match rule {
            Rule::Everyone => "true".to_string(),
            Rule::And(parts) | Rule::Or(parts) => {
                let joiner = if matches!(rule, Rule::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let sql: Result<Vec<String>> = parts.iter().map(|p| self.rule(p)).collect();
                format!("({})", sql?.join(joiner))
            }
            Rule::Not(inner) => format!("(({}) IS NOT TRUE)", self.rule(inner)?),
            Rule::Compare { field, op, value } => {
                let (column, kind, case) = self.column(field)?;
                let value = self.value(kind, &case, value)?;
                let op = if *op == CompareOp::Ne {
                    "<>"
                } else {
                    op.as_str()
                };
                format!("({column} {op} {value})")
            }
            Rule::In {
                field,
                values,
                negated,
            } => {
                let (column, kind, case) = self.column(field)?;
                let list: Result<Vec<String>> =
                    values.iter().map(|v| self.value(kind, &case, v)).collect();
                format!(
                    "({column} {}IN ({}))",
                    if *negated { "NOT " } else { "" },
                    list?.join(", ")
                )
            }
            Rule::Between { field, low, high } => {
                let (column, kind, case) = self.column(field)?;
                let low = self.value(kind, &case, low)?;
                let high = self.value(kind, &case, high)?;
                format!("({column} BETWEEN {low} AND {high})")
            }
            Rule::Text { field, op, value } => {
                let (column, _, case) = self.column(field)?;
                let (folded, escaped) = match case {
                    Case::Stored(fold) => (column, like_escape(&fold(value))),
                    _ => (
                        if matches!(case, Case::Lower) {
                            column
                        } else {
                            format!("audience.fold({column})")
                        },
                        like_escape(&fold(value)),
                    ),
                };
                let pattern = match op {
                    TextOp::Contains => format!("%{escaped}%"),
                    TextOp::StartsWith => format!("{escaped}%"),
                    TextOp::EndsWith => format!("%{escaped}"),
                };
                let placeholder = self.bind(pattern);
                format!("({folded} LIKE {placeholder}::text)")
            }
            Rule::IsNull { field, negated } => {
                let (column, _, _) = self.column(field)?;
                format!("({column} IS {}NULL)", if *negated { "NOT " } else { "" })
            }
            Rule::Within { field, span } => {
                let (column, _, _) = self.column(field)?;
                format!("({column} >= {})", self.interval(*span))
            }
            Rule::Before { field, span } => {
                let (column, _, _) = self.column(field)?;
                format!("({column} < {})", self.interval(*span))
            }
            Rule::Tag(tag) => {
                let placeholder = self.bind(crate::normalize::tag_key(tag));
                format!("(c.tag_keys @> ARRAY[{placeholder}::text])")
            }
            Rule::InSegment(name) => {
                let id = self
                    .catalogue
                    .segment_id(name)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::UndefinedObject,
                            format!("unknown segment \"{name}\" in rule"),
                        )
                    })?
                    .to_string();
                if self.catalogue.everyone.as_deref() == Some(id.as_str()) {
                    return Ok("true".to_string());
                }
                if let Some(rule) = self.catalogue.live.get(&id) {
                    // Its stored membership lags the clock: read its rule
                    // (`check` bounded how often).
                    return Ok(format!("({})", self.rule(rule)?));
                }
                let placeholder = self.bind(id);
                format!(
                    "EXISTS (SELECT FROM audience.segment_members m WHERE m.tenant_id = $1::uuid \
                     AND m.segment_id = {placeholder}::uuid AND m.contact_id = c.id)"
                )
            }
            Rule::Event(event) => self.event(event),
        })
    }

    fn event(&mut self, event: &EventCondition) -> String {
        let kind_param = self.out.params.len();
        let mut filters = vec![format!("e.kind = {}::text", self.bind(event.kind.clone()))];
        if let Some(url) = &event.url {
            let pattern = format!("%{}%", like_escape(&fold(url)));
            filters.push(format!(
                "audience.fold(e.url) LIKE {}::text",
                self.bind(pattern)
            ));
        }
        match &event.campaign {
            Some(Campaign::Named(name)) => {
                filters.push(format!("e.campaign = {}::text", self.bind(name.clone())))
            }
            // Uncorrelated, so PostgreSQL computes it once per query.
            Some(Campaign::Last) => {
                filters.push(
                "e.campaign = (SELECT s.campaign FROM audience.events s WHERE s.tenant_id = $1::uuid \
                 AND s.kind = 'sent' AND s.campaign IS NOT NULL ORDER BY s.occurred_at DESC, s.id DESC LIMIT 1)"
                    .to_string(),
                )
            }
            None => {}
        }
        if let Some(span) = event.within {
            filters.push(format!("e.occurred_at >= {}", self.interval(span)));
        }
        let filters = filters.join(" AND ");
        let (min, max) = event.count_range();
        // The last campaign is a subquery, which an aggregate's FILTER
        // cannot hold: such conditions probe as with `Few`.
        let scope = match self.scope {
            Scope::Grouped if matches!(event.campaign, Some(Campaign::Last)) => Scope::Few,
            scope => scope,
        };
        match scope {
            Scope::Grouped => {
                // Named after the kind's parameter, unique in the query.
                let alias = format!("n{}", self.first_param + kind_param);
                self.out.event_counts.push((alias.clone(), filters));
                match (min, max) {
                    (min, None) => format!("(ev.{alias} >= {min})"),
                    (_, Some(max)) => format!("(ev.{alias} <= {max})"),
                }
            }
            Scope::Few => {
                let scope = format!("FROM audience.events e WHERE e.tenant_id = $1::uuid AND e.contact_id = c.id AND {filters}");
                match (min, max) {
                    // OFFSET 0 keeps the probe per contact: without it
                    // PostgreSQL may turn EXISTS into a hashed scan of
                    // every matching event of the tenant.
                    (1, None) => format!("EXISTS (SELECT {scope} OFFSET 0)"),
                    (min, None) => format!("((SELECT count(*) {scope}) >= {min})"),
                    (_, Some(max)) => format!("((SELECT count(*) {scope}) <= {max})"),
                }
            }
            Scope::All => {
                let matching = format!("SELECT e.contact_id FROM audience.events e WHERE e.tenant_id = $1::uuid AND {filters}");
                match (min, max) {
                    (0, None) => "true".to_string(),
                    (1, None) => format!("c.id IN ({matching})"),
                    (min, None) => format!(
                        "c.id IN ({matching} GROUP BY e.contact_id HAVING count(*) >= {min})"
                    ),
                    (_, Some(max)) => format!(
                        "c.id NOT IN ({matching} GROUP BY e.contact_id HAVING count(*) > {max})"
                    ),
                }
            }
        }
    }
}

/// How text values are folded before comparison.
enum Case {
    /// The column is stored folded this way; fold the value the same way.
    Stored(fn(&str) -> String),
    /// The column is folded in SQL (`audience.fold`); fold the value.
    Lower,
    /// Not text: compare as is.
    Exact,
    /// A standard integer column (score, reachability).
    Integer,
}

impl Case {
    fn apply(&self, text: &str) -> String {
        match self {
            Case::Stored(fold) => fold(text),
            Case::Lower => fold(text).into_owned(),
            Case::Exact | Case::Integer => text.to_string(),
        }
    }

    fn is_integer(&self) -> bool {
        matches!(self, Case::Integer)
    }
}
