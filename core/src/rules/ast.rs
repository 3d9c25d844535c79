//! The rule syntax tree, and its canonical text form (`Display`), which
//! parses back to the same tree.

use std::fmt;

/// A rule: a condition on a contact.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Everyone,
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Compare {
        field: Field,
        op: CompareOp,
        value: Literal,
    },
    In {
        field: Field,
        values: Vec<Literal>,
        negated: bool,
    },
    Between {
        field: Field,
        low: Literal,
        high: Literal,
    },
    Text {
        field: Field,
        op: TextOp,
        value: String,
    },
    IsNull {
        field: Field,
        negated: bool,
    },
    /// `field within N unit`: the time lies in the last N units.
    Within {
        field: Field,
        span: Span,
    },
    /// `field before N unit ago`: the time lies further back than N units.
    Before {
        field: Field,
        span: Span,
    },
    Tag(String),
    InSegment(String),
    Event(EventCondition),
}

/// A field as written: `custom.name` forces a custom field; a bare name is
/// a standard field when one has that name, else a custom field.
#[derive(Debug, Clone, Eq)]
pub struct Field {
    pub name: String,
    pub custom: bool,
    /// Where the field stands in the rule text (1-based; 0 when the rule
    /// came from JSON), for error messages. Not part of the rule's meaning.
    pub position: usize,
}

impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.custom == other.custom
    }
}

impl Field {
    /// `" at position N"`, or nothing when the position is unknown.
    pub fn at(&self) -> String {
        if self.position > 0 {
            format!(" at position {}", self.position)
        } else {
            String::new()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    pub fn parse(text: &str) -> Option<CompareOp> {
        Some(match text {
            "=" => CompareOp::Eq,
            "!=" | "<>" => CompareOp::Ne,
            "<" => CompareOp::Lt,
            "<=" => CompareOp::Le,
            ">" => CompareOp::Gt,
            ">=" => CompareOp::Ge,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

impl TextOp {
    pub fn as_str(self) -> &'static str {
        match self {
            TextOp::Contains => "contains",
            TextOp::StartsWith => "starts with",
            TextOp::EndsWith => "ends with",
        }
    }
}

/// A literal value. Numbers keep their text so that printing is exact.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(String),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Hours,
    Days,
    Weeks,
    Months,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Hours => "hours",
            Unit::Days => "days",
            Unit::Weeks => "weeks",
            Unit::Months => "months",
        }
    }

    pub fn parse(word: &str) -> Option<Unit> {
        Some(match word {
            "hour" | "hours" => Unit::Hours,
            "day" | "days" => Unit::Days,
            "week" | "weeks" => Unit::Weeks,
            "month" | "months" => Unit::Months,
            _ => return None,
        })
    }
}

/// A length of time: `30 days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub amount: u32,
    pub unit: Unit,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.unit.as_str())
    }
}

/// The engagement words of the language; `event 'kind'` names any other.
pub const EVENT_KEYWORDS: &[&str] = &[
    "opened",
    "clicked",
    "replied",
    "visited",
    "bounced",
    "unsubscribed",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Campaign {
    Named(String),
    /// The tenant's most recently sent campaign.
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountBound {
    AtLeast(u32),
    AtMost(u32),
}

/// `clicked '/pricing' campaign 'x' at least 3 times within 90 days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCondition {
    /// Lower-case event kind (`opened`, or the word given to `event`).
    pub kind: String,
    pub url: Option<String>,
    pub campaign: Option<Campaign>,
    pub count: Option<CountBound>,
    pub within: Option<Span>,
}

impl EventCondition {
    /// How many matching events the condition asks for, as `(min, max)`.
    pub fn count_range(&self) -> (u32, Option<u32>) {
        match self.count {
            None => (1, None),
            Some(CountBound::AtLeast(n)) => (n, None),
            Some(CountBound::AtMost(n)) => (0, Some(n)),
        }
    }
}

/// Writes a string literal with `''` escaping.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.custom {
            write!(f, "custom.{}", self.name)
        } else {
            f.write_str(&self.name)
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => f.write_str(&quote(s)),
            Literal::Number(n) => f.write_str(n),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for EventCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if EVENT_KEYWORDS.contains(&self.kind.as_str()) {
            f.write_str(&self.kind)?;
        } else {
            write!(f, "event {}", quote(&self.kind))?;
        }
        if let Some(url) = &self.url {
            write!(f, " {}", quote(url))?;
        }
        match &self.campaign {
            Some(Campaign::Named(name)) => write!(f, " campaign {}", quote(name))?,
            Some(Campaign::Last) => f.write_str(" last campaign")?,
            None => {}
        }
        match self.count {
            Some(CountBound::AtLeast(n)) => write!(f, " at least {n} times")?,
            Some(CountBound::AtMost(n)) => write!(f, " at most {n} times")?,
            None => {}
        }
        if let Some(span) = self.within {
            write!(f, " within {span}")?;
        }
        Ok(())
    }
}

impl Rule {
    /// Binding strength when printed: `or` < `and` < `not` < the rest.
    fn precedence(&self) -> u8 {
        match self {
            Rule::Or(_) => 1,
            Rule::And(_) => 2,
            Rule::Not(_) => 3,
            _ => 4,
        }
    }

    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Everyone => f.write_str("everyone"),
            Rule::And(parts) | Rule::Or(parts) => {
                let (word, min) = if matches!(self, Rule::And(_)) {
                    (" and ", 3)
                } else {
                    (" or ", 2)
                };
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    part.fmt_operand(f, min)?;
                }
                Ok(())
            }
            Rule::Not(inner) => {
                f.write_str("not ")?;
                inner.fmt_operand(f, 3)
            }
            Rule::Compare { field, op, value } => write!(f, "{field} {} {value}", op.as_str()),
            Rule::In {
                field,
                values,
                negated,
            } => {
                let list: Vec<String> = values.iter().map(Literal::to_string).collect();
                write!(
                    f,
                    "{field} {}in ({})",
                    if *negated { "not " } else { "" },
                    list.join(", ")
                )
            }
            Rule::Between { field, low, high } => write!(f, "{field} between {low} and {high}"),
            Rule::Text { field, op, value } => {
                write!(f, "{field} {} {}", op.as_str(), quote(value))
            }
            Rule::IsNull { field, negated } => {
                write!(f, "{field} is {}null", if *negated { "not " } else { "" })
            }
            Rule::Within { field, span } => write!(f, "{field} within {span}"),
            Rule::Before { field, span } => write!(f, "{field} before {span} ago"),
            Rule::Tag(tag) => write!(f, "tag {}", quote(tag)),
            Rule::InSegment(name) => write!(f, "in segment {}", quote(name)),
            Rule::Event(event) => write!(f, "{event}"),
        }
    }
}

impl Rule {
    /// The rule with every `in segment 'old'` (any case) naming `new`, so
    /// that renaming a segment keeps the rules that refer to it working.
    pub fn rename_segment(&self, old: &str, new: &str) -> Rule {
        let rename = |rule: &Rule| rule.rename_segment(old, new);
        match self {
            Rule::InSegment(name) if crate::fold::same(name, old) => {
                Rule::InSegment(new.to_string())
            }
            Rule::And(parts) => Rule::And(parts.iter().map(rename).collect()),
            Rule::Or(parts) => Rule::Or(parts.iter().map(rename).collect()),
            Rule::Not(inner) => Rule::Not(Box::new(rename(inner))),
            other => other.clone(),
        }
    }
}

impl Rule {
    /// Whether the rule's truth changes with the passing of time alone
    /// (`within`, `before … ago`), so that stored membership needs refresh.
    pub fn is_time_relative(&self) -> bool {
        match self {
            Rule::Within { .. } | Rule::Before { .. } => true,
            Rule::Event(event) => event.within.is_some(),
            Rule::And(parts) | Rule::Or(parts) => parts.iter().any(Rule::is_time_relative),
            Rule::Not(inner) => inner.is_time_relative(),
            _ => false,
        }
    }

    /// Whether the rule has an `in segment` condition.
    pub fn refers_to_segments(&self) -> bool {
        match self {
            Rule::InSegment(_) => true,
            Rule::And(parts) | Rule::Or(parts) => parts.iter().any(Rule::refers_to_segments),
            Rule::Not(inner) => inner.refers_to_segments(),
            _ => false,
        }
    }

    /// Whether the passing of time alone can only take contacts out of
    /// the rule, never bring one in: each `within` counts as it is, each
    /// `before … ago` negated, as `and`, `or` and `not` carry them. Event
    /// conditions over a span and segment references are not judged
    /// (false).
    pub fn time_only_removes(&self) -> bool {
        self.time_moves_out(true)
    }

    /// `time_only_removes` for this part, where `kept` says whether the
    /// part counts as it is (true) or negated.
    fn time_moves_out(&self, kept: bool) -> bool {
        match self {
            Rule::Within { .. } => kept,
            Rule::Before { .. } => !kept,
            Rule::Event(event) => event.within.is_none(),
            Rule::InSegment(_) => false,
            Rule::And(parts) | Rule::Or(parts) => parts.iter().all(|p| p.time_moves_out(kept)),
            Rule::Not(inner) => inner.time_moves_out(!kept),
            _ => true,
        }
    }
}
