//! The differential test of the rule compiler: random rules (some over
//! list membership) run as SQL over random contacts must pick exactly the
//! contacts that the in-memory evaluator picks.

use crate::api::rules::tenant_catalogue;
use audience_core::rules::arbitrary::{self, Rng};
use audience_core::rules::compile::{compile, Scope};
use audience_core::rules::eval::{evaluate, Contact, Event, World};
use audience_core::rules::Rule;
use chrono::{DateTime, TimeDelta, Utc};
use pgrx::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

const CONTACTS: usize = 60;
const RULES: usize = 400;
/// The static lists rules refer to, beside the built-in Everyone.
const LISTS: [&str; 2] = ["List A", "List B"];

/// `rule`, three times in ten combined with membership of a list or of
/// Everyone.
fn with_segments(rng: &mut Rng, rule: Rule) -> Rule {
    if !rng.chance(30) {
        return rule;
    }
    let segment = Rule::InSegment(rng.pick(&[LISTS[0], LISTS[1], "Everyone"]).to_string());
    match rng.below(3) {
        0 => Rule::And(vec![segment, rule]),
        1 => Rule::Or(vec![rule, Rule::Not(Box::new(segment))]),
        _ => Rule::Not(Box::new(Rule::And(vec![rule, segment]))),
    }
}

fn maybe<T>(rng: &mut Rng, percent: usize, value: impl FnOnce(&mut Rng) -> T) -> Option<T> {
    if rng.chance(percent) {
        Some(value(rng))
    } else {
        None
    }
}

fn timestamp(now: DateTime<Utc>, hours_ago: usize) -> String {
    (now - TimeDelta::hours(hours_ago as i64)).to_rfc3339()
}

/// A random contact as the JSON row inserted into audience.contacts, and
/// its events.
fn random_contact(
    rng: &mut Rng,
    i: usize,
    tenant: &str,
    now: DateTime<Utc>,
) -> (Value, Vec<Event>) {
    let mut tags = Vec::new();
    for tag in arbitrary::TAGS {
        if rng.chance(35) {
            tags.push(if rng.chance(30) {
                tag.to_lowercase()
            } else {
                tag.to_string()
            });
        }
    }
    let mut attributes = Map::new();
    if let Some(industry) = maybe(rng, 70, |r| r.pick(arbitrary::INDUSTRIES).to_string()) {
        attributes.insert(
            "industry".into(),
            json!(if rng.chance(30) {
                industry.to_uppercase()
            } else {
                industry
            }),
        );
    }
    if let Some(budget) = maybe(rng, 60, |r| r.below(2000)) {
        attributes.insert(
            "budget".into(),
            if rng.chance(30) {
                json!(budget as f64 + 0.5)
            } else {
                json!(budget)
            },
        );
    }
    if let Some(day) = maybe(rng, 60, |r| (1 + r.below(12), 1 + r.below(28))) {
        attributes.insert(
            "signed_up".into(),
            json!(format!("2025-{:02}-{:02}", day.0, day.1)),
        );
    }
    if let Some(flag) = maybe(rng, 60, |r| r.chance(50)) {
        attributes.insert("newsletter".into(), json!(flag));
    }
    let city = maybe(rng, 80, |r| {
        let city = r.pick(arbitrary::CITIES).to_string();
        if r.chance(30) {
            city.to_lowercase()
        } else {
            city
        }
    });
    let row = json!({
        "tenant_id": tenant,
        "id": format!("00000000-0000-4000-8000-{i:012}"),
        "email": format!("c{i}@{}", rng.pick(&["example.com", "acme.io", "mail.example.org"])),
        "company": maybe(rng, 70, |r| r.pick(&["Acme", "Example Ltd", "50% Off", "under_score", "Berlin Bakery"]).to_string()),
        "city": city,
        "country": rng.pick(arbitrary::COUNTRIES),
        "lead_status": rng.pick(arbitrary::LEAD_STATUSES),
        "status": "active",
        "source": "manual",
        "updated_at": timestamp(now, 0),
        "engagement_score": rng.below(60) as i64 - 10,
        "reachability": maybe(rng, 80, |r| r.below(101)),
        "phone": maybe(rng, 50, |_| "+14165550142".to_string()),
        "created_at": timestamp(now, rng.below(3000)),
        "last_opened_at": maybe(rng, 50, |r| timestamp(now, r.below(3000))),
        "last_activity_at": maybe(rng, 50, |r| timestamp(now, r.below(3000))),
        "tags": tags,
        "attributes": attributes,
    });
    let events = (0..rng.below(6))
        .map(|_| {
            let sent = rng.chance(25);
            Event {
                kind: if sent {
                    "sent".to_string()
                } else {
                    rng.pick(arbitrary::EVENT_KINDS).to_string()
                },
                url: maybe(rng, 40, |r| {
                    format!("https://example.com{}", r.pick(arbitrary::URLS))
                }),
                campaign: maybe(rng, if sent { 100 } else { 60 }, |r| {
                    r.pick(arbitrary::CAMPAIGNS).to_string()
                }),
                occurred_at: (now - TimeDelta::hours(rng.below(3000) as i64)).timestamp(),
            }
        })
        .collect();
    (row, events)
}

/// The evaluator's view of a stored contact.
fn as_contact(row: &Value, events: Vec<Event>) -> Contact {
    let object = row.as_object().unwrap();
    Contact {
        id: object["id"].as_str().unwrap().to_string(),
        standard: object.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        attributes: object["attributes"].as_object().unwrap().clone(),
        tags: object["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
        events,
        segments: BTreeSet::new(),
    }
}

fn matching_ids(predicate: &str, tenant: &str, params: &[String]) -> BTreeSet<String> {
    let query = format!(
        "SELECT c.id::text FROM audience.contacts c WHERE c.tenant_id = $1::uuid AND {predicate}"
    );
    let mut args: Vec<pgrx::datum::DatumWithOid> = vec![tenant.into()];
    args.extend(params.iter().map(|p| p.as_str().into()));
    Spi::connect(|client| {
        client
            .select(&query, None, &args)
            .expect("rule query runs")
            .map(|row| row.get::<String>(1).unwrap().unwrap())
            .collect()
    })
}

pub fn compiled_rules_agree_with_the_evaluator(seed: u64) {
    Spi::run("SET LOCAL timezone = 'UTC'").unwrap();
    let tenant = Spi::get_one::<String>("SELECT audience.create_tenant('differential')::text")
        .unwrap()
        .unwrap();
    Spi::run_with_args(
        "SELECT set_config('audience.tenant', $1, true)",
        &[tenant.as_str().into()],
    )
    .unwrap();
    for (name, kind) in arbitrary::CUSTOM_FIELDS {
        Spi::run_with_args(
            "SELECT audience.define_field($1, $2)",
            &[(*name).into(), kind.as_str().into()],
        )
        .unwrap();
    }
    // Rounded up: contacts sit whole hours before this instant, so one exactly a
    // span old stays inside `within` for both the evaluator and SQL's `now()`,
    // which carries microseconds.
    let now_seconds = Spi::get_one::<i64>("SELECT ceil(extract(epoch FROM now()))::bigint")
        .unwrap()
        .unwrap();
    let now = DateTime::from_timestamp(now_seconds, 0).unwrap();
    let mut rng = Rng::new(seed);
    let mut events_of = Vec::new();
    let mut last_sent: Option<(i64, String)> = None;
    for i in 0..CONTACTS {
        let (row, events) = random_contact(&mut rng, i, &tenant, now);
        let columns = row
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        Spi::run_with_args(
            &format!(
                "INSERT INTO audience.contacts ({columns})
                 SELECT {columns} FROM jsonb_populate_record(NULL::audience.contacts, $1::jsonb)"
            ),
            &[row.to_string().as_str().into()],
        )
        .unwrap();
        for event in &events {
            Spi::run_with_args(
                "INSERT INTO audience.events (contact_id, kind, url, campaign, occurred_at)
                 VALUES ($1::uuid, $2, $3, $4, to_timestamp($5))",
                &[
                    row["id"].as_str().unwrap().into(),
                    event.kind.as_str().into(),
                    event.url.clone().into(),
                    event.campaign.clone().into(),
                    (event.occurred_at as f64).into(),
                ],
            )
            .unwrap();
            if event.kind == "sent"
                && last_sent
                    .as_ref()
                    .is_none_or(|(at, _)| event.occurred_at >= *at)
            {
                last_sent = Some((event.occurred_at, event.campaign.clone().unwrap()));
            }
        }
        events_of.push(events);
    }
    // Events moved scores and activity times: the evaluator reads the rows
    // as stored.
    let stored = Spi::get_one_with_args::<pgrx::JsonB>(
        "SELECT jsonb_agg(to_jsonb(c) ORDER BY c.id) FROM audience.contacts c WHERE c.tenant_id = $1::uuid",
        &[tenant.as_str().into()],
    );
    let mut contacts: Vec<Contact> = match stored {
        Ok(Some(pgrx::JsonB(Value::Array(rows)))) => rows
            .iter()
            .zip(events_of)
            .map(|(row, events)| as_contact(row, events))
            .collect(),
        other => panic!("reading contacts back: {other:?}"),
    };
    // Two lists with random members, for `in segment` (and Everyone).
    for (list, percent) in LISTS.iter().zip([40, 25]) {
        let id = Spi::get_one_with_args::<String>(
            "SELECT audience.create_list($1)::text",
            &[(*list).into()],
        )
        .unwrap()
        .unwrap();
        let members: Vec<String> = contacts
            .iter_mut()
            .filter(|_| rng.chance(percent))
            .map(|contact| {
                contact.segments.insert(id.clone());
                contact.id.clone()
            })
            .collect();
        Spi::run_with_args(
            "SELECT audience.add_to_list($1, $2::uuid[])",
            &[(*list).into(), members.into()],
        )
        .unwrap();
    }
    let catalogue = tenant_catalogue(&tenant);
    let world = World {
        catalogue: &catalogue,
        now: now_seconds,
        last_campaign: last_sent.map(|(_, c)| c),
    };
    for _ in 0..RULES {
        let rule = arbitrary::rule(&mut rng, 3);
        let rule = with_segments(&mut rng, rule);
        let from_evaluator: BTreeSet<String> = contacts
            .iter()
            .filter(|c| evaluate(&rule, c, &world) == Some(true))
            .map(|c| c.id.clone())
            .collect();
        for scope in [Scope::Few, Scope::All] {
            let compiled = compile(&rule, &catalogue, 2, scope).unwrap();
            let from_sql = matching_ids(&compiled.predicate, &tenant, &compiled.params);
            assert_eq!(
                from_sql, from_evaluator,
                "rule: {rule}\nscope: {scope:?}\nsql: {}\nparams: {:?}",
                compiled.predicate, compiled.params
            );
        }
    }
}
