//! Random, well-typed rules over a small fixed vocabulary, for property and
//! differential tests (here and in the extension's `#[pg_test]`s). Values
//! come from small domains so that random rules match some contacts.

use super::ast::*;
use crate::fields::FieldType;

/// The custom fields random rules use; tests define them on their tenant.
pub const CUSTOM_FIELDS: &[(&str, FieldType)] = &[
    ("industry", FieldType::Text),
    ("budget", FieldType::Number),
    ("signed_up", FieldType::Date),
    ("newsletter", FieldType::Boolean),
];
pub const COUNTRIES: &[&str] = &["US", "CA", "DE", "GB"];
pub const CITIES: &[&str] = &["Toronto", "Berlin", "Paris", "O'Hare", "ΟΔΟΣ", "İzmir"];
pub const INDUSTRIES: &[&str] = &["SaaS", "Retail", "Finance"];
pub const TAGS: &[&str] = &["VIP", "Buyer", "Webinar 2025", "Straße", "ΟΔΟΣ"];
pub const EVENT_KINDS: &[&str] = &["opened", "clicked", "visited", "webinar_attended"];
pub const CAMPAIGNS: &[&str] = &["spring", "autumn"];
pub const URLS: &[&str] = &["/pricing", "/docs"];
pub const LEAD_STATUSES: &[&str] = &["new", "hot", "cold"];

/// A small deterministic generator (SplitMix64), so a failing case can be
/// replayed from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn field(name: &str, custom: bool) -> Field {
    Field {
        name: name.to_string(),
        custom,
        position: 0,
    }
}

fn string(rng: &mut Rng, items: &[&str]) -> Literal {
    Literal::String(rng.pick(items).to_string())
}

fn span(rng: &mut Rng) -> Span {
    let unit = *rng.pick(&[Unit::Hours, Unit::Days, Unit::Weeks, Unit::Months]);
    Span {
        amount: 1 + rng.below(60) as u32,
        unit,
    }
}

fn compare_op(rng: &mut Rng, ordered: bool) -> CompareOp {
    if ordered {
        *rng.pick(&[
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Lt,
            CompareOp::Le,
            CompareOp::Gt,
            CompareOp::Ge,
        ])
    } else {
        *rng.pick(&[CompareOp::Eq, CompareOp::Ne])
    }
}

/// A random condition without `and`/`or`/`not`.
fn leaf(rng: &mut Rng) -> Rule {
    match rng.below(15) {
        0 => Rule::Compare {
            field: field("country", false),
            op: compare_op(rng, false),
            value: string(rng, COUNTRIES),
        },
        1 => Rule::In {
            field: field("lead_status", false),
            values: (0..1 + rng.below(2))
                .map(|_| string(rng, LEAD_STATUSES))
                .collect(),
            negated: rng.chance(30),
        },
        2 => Rule::Compare {
            field: field("city", false),
            op: compare_op(rng, false),
            value: string(rng, CITIES),
        },
        3 => Rule::Compare {
            field: field("score", false),
            op: compare_op(rng, true),
            value: Literal::Number((rng.below(60) as i64 - 10).to_string()),
        },
        4 => Rule::Between {
            field: field("reachability", false),
            low: Literal::Number(rng.below(50).to_string()),
            high: Literal::Number((50 + rng.below(50)).to_string()),
        },
        5 => Rule::Text {
            field: field(*rng.pick(&["email", "company", "city"]), false),
            op: *rng.pick(&[TextOp::Contains, TextOp::StartsWith, TextOp::EndsWith]),
            value: rng
                .pick(&["a", "example", "Ber", "o.com", "%", "_"])
                .to_string(),
        },
        6 => {
            let name = *rng.pick(&["city", "phone", "industry", "budget"]);
            let custom = CUSTOM_FIELDS.iter().any(|(n, _)| *n == name) && rng.chance(50);
            Rule::IsNull {
                field: field(name, custom),
                negated: rng.chance(50),
            }
        }
        7 => Rule::Within {
            field: field(*rng.pick(&["created_at", "last_opened_at"]), false),
            span: span(rng),
        },
        8 => Rule::Before {
            field: field(*rng.pick(&["created_at", "last_activity_at"]), false),
            span: span(rng),
        },
        9 => Rule::Tag(rng.pick(TAGS).to_string()),
        10 => Rule::Compare {
            field: field("industry", rng.chance(50)),
            op: compare_op(rng, false),
            value: string(rng, INDUSTRIES),
        },
        11 => Rule::Compare {
            field: field("budget", rng.chance(50)),
            op: compare_op(rng, true),
            value: Literal::Number(format!(
                "{}{}",
                rng.below(2000),
                if rng.chance(30) { ".5" } else { "" }
            )),
        },
        12 => Rule::Compare {
            field: field("signed_up", false),
            op: compare_op(rng, true),
            value: Literal::String(format!(
                "2025-{:02}-{:02}",
                1 + rng.below(12),
                1 + rng.below(28)
            )),
        },
        13 => Rule::Compare {
            field: field("newsletter", false),
            op: compare_op(rng, false),
            value: Literal::Bool(rng.chance(50)),
        },
        _ => Rule::Event(EventCondition {
            kind: rng.pick(EVENT_KINDS).to_string(),
            url: rng.chance(30).then(|| rng.pick(URLS).to_string()),
            campaign: match rng.below(4) {
                0 => Some(Campaign::Named(rng.pick(CAMPAIGNS).to_string())),
                1 => Some(Campaign::Last),
                _ => None,
            },
            count: match rng.below(4) {
                0 => Some(CountBound::AtLeast(rng.below(4) as u32)),
                1 => Some(CountBound::AtMost(rng.below(3) as u32)),
                _ => None,
            },
            within: rng.chance(40).then(|| span(rng)),
        }),
    }
}

/// A random rule up to `depth` levels of `and`/`or`/`not`.
pub fn rule(rng: &mut Rng, depth: usize) -> Rule {
    if depth == 0 || rng.chance(35) {
        return if rng.chance(3) {
            Rule::Everyone
        } else {
            leaf(rng)
        };
    }
    match rng.below(3) {
        0 => Rule::Not(Box::new(rule(rng, depth - 1))),
        choice => {
            let parts = (0..2 + rng.below(2))
                .map(|_| rule(rng, depth - 1))
                .collect();
            if choice == 1 {
                Rule::And(parts)
            } else {
                Rule::Or(parts)
            }
        }
    }
}
