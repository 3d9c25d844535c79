//! The membership invariant under random workloads: after every statement
//! (contact inserts, updates and deletes, tag and list edits, events,
//! segment edits and renames, fit rules, also over segments), each dynamic
//! segment's stored membership equals the live evaluation of its rule, the
//! change log accounts for every member, and every score equals a
//! recompute from the history.

use audience_core::rules::arbitrary::{self, Rng};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use std::collections::BTreeSet;

const STEPS: usize = 150;

/// A segment whose rule depends on the clock, which others may refer to:
/// read through its rule, they change with the clock too.
const CLOCK_BASED: &str = "Recent";

fn run(query: &str, args: &[DatumWithOid]) {
    Spi::run_with_args(query, args).unwrap_or_else(|e| panic!("{query}: {e}"));
}

fn ids(query: &str, args: &[DatumWithOid]) -> BTreeSet<String> {
    Spi::connect(|client| {
        client
            .select(query, None, args)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .map(|row| row.get::<String>(1).unwrap().unwrap_or_default())
            .collect()
    })
}

/// A random rule whose own conditions do not depend on the clock,
/// sometimes built on an existing segment (which may).
fn timeless_rule(rng: &mut Rng, segments: &[String]) -> String {
    loop {
        let rule = arbitrary::rule(rng, 2);
        if rule.is_time_relative() {
            continue;
        }
        return match segments.is_empty() || !rng.chance(30) {
            true => rule.to_string(),
            false => format!("in segment '{}' and ({rule})", rng.pick(segments)),
        };
    }
}

/// Up to `most` random contacts of the tenant (at least one when any exist).
fn contact_ids(rng: &mut Rng, most: usize) -> Vec<String> {
    let count = 1 + rng.below(most);
    let all: Vec<String> = ids("SELECT id::text FROM audience.contacts ORDER BY id", &[])
        .into_iter()
        .collect();
    if all.is_empty() {
        return all;
    }
    (0..count).map(|_| rng.pick(&all).clone()).collect()
}

fn random_statement(rng: &mut Rng, step: usize, segments: &mut Vec<String>) {
    match rng.below(10) {
        0 | 1 => {
            let rows: Vec<String> = (0..1 + rng.below(4))
                .map(|i| {
                    format!(
                        "('s{step}r{i}@example.com', '{}', '{}', {}, '{{{}}}', '{{\"industry\": \"{}\", \"budget\": {}}}')",
                        rng.pick(arbitrary::COUNTRIES),
                        rng.pick(arbitrary::CITIES).replace('\'', "''"),
                        rng.below(101),
                        rng.pick(arbitrary::TAGS),
                        rng.pick(arbitrary::INDUSTRIES),
                        rng.below(2000),
                    )
                })
                .collect();
            run(
                &format!(
                    "INSERT INTO audience.contacts (email, country, city, reachability, tags, attributes) VALUES {}",
                    rows.join(", ")
                ),
                &[],
            );
        }
        2 | 3 => {
            let targets = contact_ids(rng, 5);
            let (change, value) = match rng.below(5) {
                0 => ("country = $2", *rng.pick(arbitrary::COUNTRIES)),
                1 => ("lead_status = $2", *rng.pick(arbitrary::LEAD_STATUSES)),
                2 => ("reachability = length($2)", *rng.pick(arbitrary::CITIES)),
                3 => (
                    "attributes = attributes || jsonb_build_object('industry', $2)",
                    *rng.pick(arbitrary::INDUSTRIES),
                ),
                _ => ("city = NULLIF($2, $2)", "x"),
            };
            run(
                &format!("UPDATE audience.contacts SET {change} WHERE id = ANY($1::uuid[])"),
                &[targets.into(), value.into()],
            );
        }
        4 => {
            let targets = contact_ids(rng, 1);
            run(
                "DELETE FROM audience.contacts WHERE id = ANY($1::uuid[])",
                &[targets.into()],
            );
        }
        5 => {
            for target in contact_ids(rng, 1) {
                let tag = *rng.pick(arbitrary::TAGS);
                let function = if rng.chance(50) { "tag" } else { "untag" };
                run(
                    &format!("SELECT audience.{function}($1::uuid, $2)"),
                    &[target.as_str().into(), tag.into()],
                );
            }
        }
        6 => {
            let targets = contact_ids(rng, 3);
            if !targets.is_empty() {
                let function = if rng.chance(60) {
                    "add_to_list"
                } else {
                    "remove_from_list"
                };
                run(
                    &format!("SELECT audience.{function}('Picked', $1::uuid[])"),
                    &[targets.into()],
                );
            }
        }
        7 => {
            // One statement of events, some back-dated, some resetting the
            // score or starting a new campaign.
            let targets = contact_ids(rng, 3);
            if !targets.is_empty() {
                let kinds: Vec<&str> = targets
                    .iter()
                    .map(|_| {
                        *rng.pick(
                            &[arbitrary::EVENT_KINDS, &["sent", "unsubscribed", "bounced"]]
                                .concat(),
                        )
                    })
                    .collect();
                let campaigns: Vec<&str> = targets
                    .iter()
                    .map(|_| *rng.pick(arbitrary::CAMPAIGNS))
                    .collect();
                let urls: Vec<String> = targets
                    .iter()
                    .map(|_| format!("https://example.com{}", rng.pick(arbitrary::URLS)))
                    .collect();
                let hours_ago: Vec<i32> = targets
                    .iter()
                    .map(|_| {
                        if rng.chance(50) {
                            0
                        } else {
                            rng.below(2000) as i32
                        }
                    })
                    .collect();
                run(
                    "INSERT INTO audience.events (contact_id, kind, campaign, url, occurred_at)
                     SELECT c, k, p, u, now() - make_interval(hours => h)
                       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[]) AS e(c, k, p, u, h)",
                    &[targets.into(), kinds.into(), campaigns.into(), urls.into(), hours_ago.into()],
                );
            }
        }
        8 if step % 10 == 0 => {
            // A fit rule may not read the score it adds to, itself or
            // through the segments it refers to.
            let scoreless: Vec<String> = ids(
                "WITH RECURSIVE reach(root, id) AS (
                     SELECT id, id FROM audience.segments
                     UNION
                     SELECT r.root, d FROM reach r JOIN audience.segments s ON s.id = r.id CROSS JOIN unnest(s.depends_on) d)
                 SELECT s.name FROM audience.segments s
                  WHERE s.kind = 'dynamic'
                    AND NOT EXISTS (SELECT FROM reach r JOIN audience.segments t ON t.id = r.id
                                     WHERE r.root = s.id AND t.rule::text LIKE '%score%')",
                &[],
            )
            .into_iter()
            .collect();
            let rule = loop {
                let rule = timeless_rule(rng, &scoreless);
                if !rule.contains("score") {
                    break rule;
                }
            };
            let points = rng.below(40) as i32 - 10;
            run(
                "SELECT audience.set_fit_score('Fit', $1::audience.rule, $2)",
                &[rule.as_str().into(), points.into()],
            );
        }
        9 if step % 2 == 0 && !segments.is_empty() => {
            // Renames, to non-ASCII names: rules that refer to the segment
            // follow.
            let index = rng.below(segments.len());
            let name = format!("Ä{step} Café");
            run(
                "SELECT audience.update_segment($1, new_name => $2)",
                &[segments[index].as_str().into(), name.as_str().into()],
            );
            segments[index] = name;
        }
        8 if segments.len() < 8 => {
            let name = format!("S{step}");
            let rule = match rng.below(4) {
                0 => format!(
                    "in segment '{CLOCK_BASED}' or ({})",
                    timeless_rule(rng, segments)
                ),
                1 => format!(
                    "not in segment '{CLOCK_BASED}' and ({})",
                    timeless_rule(rng, segments)
                ),
                _ => timeless_rule(rng, segments),
            };
            run(
                "SELECT audience.create_segment($1, $2::audience.rule)",
                &[name.as_str().into(), rule.as_str().into()],
            );
            segments.push(name);
        }
        _ => {
            if let Some(name) = segments.first().cloned() {
                // The first segment may be referred to by others: keep its rule timeless and self-free.
                let rule = timeless_rule(rng, &[]);
                run(
                    "SELECT audience.update_segment($1, rule => $2::audience.rule)",
                    &[name.as_str().into(), rule.as_str().into()],
                );
            }
        }
    }
}

fn check_invariants(step: usize) {
    let segments: Vec<(String, String, String)> = Spi::connect(|client| {
        client
            .select("SELECT id::text, name, coalesce(rule::text, '') FROM audience.segments WHERE kind <> 'everyone'", None, &[])
            .unwrap()
            .map(|row| (row.get(1).unwrap().unwrap(), row.get(2).unwrap().unwrap(), row.get(3).unwrap().unwrap()))
            .collect()
    });
    for (id, name, rule) in segments {
        let stored = ids(
            "SELECT contact_id::text FROM audience.segment_members WHERE segment_id = $1::uuid",
            &[id.as_str().into()],
        );
        if !rule.is_empty() {
            let live = ids(
                "SELECT unnest(audience.live_members($1::audience.rule))",
                &[rule.as_str().into()],
            );
            assert_eq!(stored, live, "step {step}: segment {name} ({rule})");
            let counted =
                Spi::get_one_with_args::<i64>("SELECT audience.count($1)", &[name.as_str().into()])
                    .unwrap()
                    .unwrap();
            assert_eq!(
                counted as usize,
                live.len(),
                "step {step}: count of {name} ({rule})"
            );
        }
        let logged = ids(
            "SELECT contact_id::text FROM audience.membership_changes WHERE segment_id = $1::uuid
              GROUP BY contact_id HAVING sum(CASE change WHEN 'entered' THEN 1 ELSE -1 END) = 1",
            &[id.as_str().into()],
        );
        assert_eq!(
            stored, logged,
            "step {step}: the change log of {name} does not add up"
        );
        let counted = Spi::get_one_with_args::<i64>(
            "SELECT member_count FROM audience.segments WHERE id = $1::uuid",
            &[id.as_str().into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            counted as usize,
            stored.len(),
            "step {step}: member_count of {name}"
        );
    }
    let rescored = Spi::get_one::<i64>("SELECT audience.recompute_scores()")
        .unwrap()
        .unwrap();
    assert_eq!(
        rescored, 0,
        "step {step}: stored scores differ from a recompute from the history"
    );
}

pub fn stored_membership_follows_every_statement(seed: u64) {
    let tenant = Spi::get_one::<String>("SELECT audience.create_tenant('invariants')::text")
        .unwrap()
        .unwrap();
    run(
        "SELECT set_config('audience.tenant', $1, true)",
        &[tenant.as_str().into()],
    );
    for (name, kind) in arbitrary::CUSTOM_FIELDS {
        run(
            "SELECT audience.define_field($1, $2)",
            &[(*name).into(), kind.as_str().into()],
        );
    }
    run("SELECT audience.create_list('Picked')", &[]);
    run(
        "SELECT audience.create_segment($1, 'clicked at least 1 times within 30 days')",
        &[CLOCK_BASED.into()],
    );
    let mut rng = Rng::new(seed);
    let mut segments = vec![];
    for step in 0..STEPS {
        random_statement(&mut rng, step, &mut segments);
        check_invariants(step);
    }
    assert!(segments.len() >= 3, "the workload created segments");
    assert!(
        Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT FROM audience.segments WHERE rule::text LIKE '%in segment ''Recent''%')"
        )
        .unwrap()
        .unwrap(),
        "the workload referred to the clock-based segment"
    );
    assert!(
        segments.iter().any(|name| name.starts_with('Ä')),
        "the workload renamed segments"
    );
}
