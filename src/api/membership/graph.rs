//! The graph of a tenant's dynamic segments: what each rule reads and
//! refers to, the levels segments are evaluated in, and cycles refused.

use crate::api::plans;
use crate::api::tenant_rules::{tenant_rules, TenantRules};
use crate::error::{raise, OrRaise};
use audience_core::rules::check::{check, Catalogue};
use audience_core::rules::{self as core_rules};
use audience_core::{Error, ErrorKind};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::{BTreeSet, HashSet};

/// A tenant's dynamic segment with its parsed rule.
pub(crate) struct Dynamic {
    pub(super) id: String,
    pub(super) rule: core_rules::Rule,
    /// Ids of the segments its rule refers to.
    pub(super) depends_on: BTreeSet<String>,
    /// What its rule reads (contact columns, or `events`).
    pub(super) reads: BTreeSet<String>,
}

impl Dynamic {
    pub(crate) fn id_and_rule(&self) -> (&str, &core_rules::Rule) {
        (&self.id, &self.rule)
    }
}

pub(crate) fn load_dynamic(
    client: &SpiClient,
    tenant: &str,
    catalogue: &Catalogue,
) -> Vec<Dynamic> {
    plans::select(
        client,
        "SELECT id::text, rule::text FROM audience.segments
          WHERE tenant_id = $1::uuid AND kind = 'dynamic' ORDER BY created_at, id",
        &[tenant.into()],
    )
    .expect("reading segments")
    .map(|row| {
        let id: String = row.get(1).ok().flatten().unwrap_or_default();
        let text: String = row.get(2).ok().flatten().unwrap_or_default();
        let rule = core_rules::parse(&text).or_raise();
        let plan = check(&rule, catalogue).or_raise();
        Dynamic {
            id,
            rule,
            depends_on: plan.segments,
            reads: plan.columns,
        }
    })
    .collect()
}

/// The first segment (by name) among `ids` and the segments they refer to,
/// at any depth, whose rule reads one of `columns`, with that column.
pub(crate) fn reading_through(
    rules: &TenantRules,
    ids: &BTreeSet<String>,
    columns: &[&'static str],
) -> Option<(String, &'static str)> {
    let by_id: std::collections::HashMap<&str, &Dynamic> =
        rules.dynamic.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut waiting: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut found = Vec::new();
    while let Some(id) = waiting.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(segment) = by_id.get(id) else {
            continue;
        };
        if let Some(column) = columns.iter().find(|c| segment.reads.contains(**c)) {
            found.push((id, *column));
        }
        waiting.extend(segment.depends_on.iter().map(String::as_str));
    }
    let name = |id: &str| rules.catalogue.segment_name(id).unwrap_or(id).to_string();
    found
        .into_iter()
        .map(|(id, column)| (name(id), column))
        .min()
}

/// Groups segments into levels so that each segment comes after the
/// segments it refers to. Raises 42P17 on a cycle.
pub(crate) fn levels(segments: &[Dynamic]) -> Vec<Vec<usize>> {
    let dynamic: HashSet<&str> = segments.iter().map(|s| s.id.as_str()).collect();
    let mut placed: HashSet<&str> = HashSet::new();
    let mut remaining: Vec<usize> = (0..segments.len()).collect();
    let mut result = Vec::new();
    while !remaining.is_empty() {
        let (ready, waiting): (Vec<usize>, Vec<usize>) = remaining.iter().partition(|&&i| {
            segments[i]
                .depends_on
                .iter()
                .all(|d| !dynamic.contains(d.as_str()) || placed.contains(d.as_str()))
        });
        if ready.is_empty() {
            raise(Error::new(
                ErrorKind::CyclicReference,
                "segments refer to each other in a cycle",
            ));
        }
        placed.extend(ready.iter().map(|&i| segments[i].id.as_str()));
        result.push(ready);
        remaining = waiting;
    }
    result
}

/// Raises 42P17 when `segment` of `tenant` would come to refer to itself
/// through `refs`, the segments its new rule refers to, naming the way
/// back. Each segment is looked at once.
#[pg_extern(stable, strict)]
fn check_no_cycle(tenant: pgrx::Uuid, segment: pgrx::Uuid, refs: Vec<pgrx::Uuid>) {
    let rules = Spi::connect(|client| tenant_rules(client, &tenant.to_string()));
    let edges: std::collections::HashMap<String, Vec<String>> = rules
        .dynamic
        .iter()
        .map(|d| (d.id.clone(), d.depends_on.iter().cloned().collect()))
        .collect();
    let target = segment.to_string();
    let refs: Vec<String> = refs.iter().map(|id| id.to_string()).collect();
    if let Some(path) = audience_core::graph::path_to(&target, &refs, &edges) {
        let name = |id: &String| rules.catalogue.segment_name(id).unwrap_or(id).to_string();
        let own = name(&target);
        let way: Vec<String> = std::iter::once(own.clone())
            .chain(path.iter().map(name))
            .collect();
        raise(
            Error::new(
                ErrorKind::CyclicReference,
                format!("segment \"{own}\" would refer to itself: {}", way.join(" → ")),
            )
            .with_hint("A segment's rule cannot depend on the segment itself, directly or through other segments."),
        );
    }
}
