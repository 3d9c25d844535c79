//! Recursive descent over the tokens, with a nesting limit so that hostile
//! input gives an error, not a stack overflow.

use super::ast::*;
use super::lexer::{syntax_error, tokenize, Located, Token};
use crate::error::{Error, ErrorKind, Result};

/// Longest rule text accepted, in bytes.
pub const MAX_RULE_BYTES: usize = 64 * 1024;
/// Deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 100;

/// Parses rule text into a syntax tree.
pub fn parse(text: &str) -> Result<Rule> {
    if text.len() > MAX_RULE_BYTES {
        return Err(Error::new(
            ErrorKind::TooComplex,
            format!(
                "rule is too long: {} bytes, at most {MAX_RULE_BYTES} are accepted",
                text.len()
            ),
        ));
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        depth: 0,
        end: text.chars().count() + 1,
    };
    if parser.tokens.is_empty() {
        return Err(syntax_error(1, "empty rule")
            .with_hint("A rule that matches every contact is written: everyone"));
    }
    let rule = parser.or_expr()?;
    match parser.peek() {
        None => Ok(rule),
        Some(found) => {
            Err(parser.unexpected(found.clone(), "\"and\", \"or\" or the end of the rule"))
        }
    }
}

struct Parser {
    tokens: Vec<Located>,
    next: usize,
    depth: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Located> {
        self.tokens.get(self.next)
    }

    fn peek_word(&self, offset: usize) -> Option<&str> {
        match self.tokens.get(self.next + offset) {
            Some(Located {
                token: Token::Word(w),
                ..
            }) => Some(w),
            _ => None,
        }
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |t| t.position)
    }

    fn unexpected(&self, found: Located, expected: &str) -> Error {
        syntax_error(
            found.position,
            format!("expected {expected}, found {}", found.token.describe()),
        )
    }

    fn fail<T>(&self, expected: &str) -> Result<T> {
        Err(match self.peek() {
            Some(found) => self.unexpected(found.clone(), expected),
            None => syntax_error(
                self.end,
                format!("expected {expected}, found the end of the rule"),
            ),
        })
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).map(|t| t.token.clone());
        self.next += 1;
        token
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word(0) == Some(word) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            self.fail(&format!("\"{word}\""))
        }
    }

    fn expect(&mut self, token: Token, expected: &str) -> Result<()> {
        if self.peek().map(|t| &t.token) == Some(&token) {
            self.next += 1;
            Ok(())
        } else {
            self.fail(expected)
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::String(s)) => {
                self.next += 1;
                Ok(s)
            }
            _ => self.fail(what),
        }
    }

    fn count(&mut self, what: &str) -> Result<u32> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::Number(n)) => match n.parse::<u32>() {
                Ok(value) => {
                    self.next += 1;
                    Ok(value)
                }
                Err(_) => self.fail(&format!("{what} (a whole number)")),
            },
            _ => self.fail(what),
        }
    }

    fn nested<T>(&mut self, inner: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::new(
                ErrorKind::TooComplex,
                format!(
                    "rule is nested too deeply at position {}: at most {MAX_DEPTH} levels",
                    self.position()
                ),
            ));
        }
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn or_expr(&mut self) -> Result<Rule> {
        let mut parts = vec![self.and_expr()?];
        while self.eat_word("or") {
            parts.push(self.and_expr()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Rule::Or(parts)
        })
    }

    fn and_expr(&mut self) -> Result<Rule> {
        let mut parts = vec![self.not_expr()?];
        while self.eat_word("and") {
            parts.push(self.not_expr()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Rule::And(parts)
        })
    }

    fn not_expr(&mut self) -> Result<Rule> {
        if self.peek_word(0) == Some("not") {
            self.next += 1;
            return self.nested(|p| Ok(Rule::Not(Box::new(p.not_expr()?))));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Rule> {
        if self.peek().map(|t| &t.token) == Some(&Token::LParen) {
            self.next += 1;
            let inner = self.nested(Self::or_expr)?;
            self.expect(Token::RParen, "\")\"")?;
            return Ok(inner);
        }
        let Some(word) = self.peek_word(0).map(str::to_string) else {
            return self.fail("a condition (a field name, tag, in segment, an event, or everyone)");
        };
        match word.as_str() {
            "everyone" => {
                self.next += 1;
                Ok(Rule::Everyone)
            }
            "tag"
                if matches!(
                    self.tokens.get(self.next + 1),
                    Some(Located {
                        token: Token::String(_),
                        ..
                    })
                ) =>
            {
                self.next += 1;
                Ok(Rule::Tag(self.string("a tag in quotes")?))
            }
            "in" if self.peek_word(1) == Some("segment") => {
                self.next += 2;
                Ok(Rule::InSegment(self.string("a segment name in quotes")?))
            }
            "event"
                if matches!(
                    self.tokens.get(self.next + 1),
                    Some(Located {
                        token: Token::String(_),
                        ..
                    })
                ) =>
            {
                self.next += 1;
                let kind = self.string("an event kind in quotes")?.to_lowercase();
                self.event_tail(kind)
            }
            kind if EVENT_KEYWORDS.contains(&kind) => {
                self.next += 1;
                self.event_tail(word)
            }
            _ => self.field_condition(),
        }
    }

    fn event_tail(&mut self, kind: String) -> Result<Rule> {
        let mut event = EventCondition {
            kind,
            url: None,
            campaign: None,
            count: None,
            within: None,
        };
        loop {
            match self.peek().map(|t| t.token.clone()) {
                Some(Token::String(url)) if event.url.is_none() => {
                    self.next += 1;
                    event.url = Some(url);
                }
                Some(Token::Word(w)) if w == "campaign" && event.campaign.is_none() => {
                    self.next += 1;
                    event.campaign = Some(Campaign::Named(self.string("a campaign id in quotes")?));
                }
                Some(Token::Word(w)) if w == "last" && event.campaign.is_none() => {
                    self.next += 1;
                    self.expect_word("campaign")?;
                    event.campaign = Some(Campaign::Last);
                }
                Some(Token::Word(w)) if w == "at" && event.count.is_none() => {
                    self.next += 1;
                    let least = if self.eat_word("least") {
                        true
                    } else if self.eat_word("most") {
                        false
                    } else {
                        return self.fail("\"least\" or \"most\"");
                    };
                    let n = self.count("a number of times")?;
                    if !self.eat_word("times") {
                        self.expect_word("time")?;
                    }
                    event.count = Some(if least {
                        CountBound::AtLeast(n)
                    } else {
                        CountBound::AtMost(n)
                    });
                }
                Some(Token::Word(w)) if w == "within" && event.within.is_none() => {
                    self.next += 1;
                    event.within = Some(self.span()?);
                }
                _ => return Ok(Rule::Event(event)),
            }
        }
    }

    fn span(&mut self) -> Result<Span> {
        let amount = self.count("a number")?;
        let unit = self.peek_word(0).and_then(Unit::parse);
        match unit {
            Some(unit) => {
                self.next += 1;
                Ok(Span { amount, unit })
            }
            None => self.fail("hours, days, weeks or months"),
        }
    }

    fn literal(&mut self) -> Result<Literal> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::String(s)) => {
                self.next += 1;
                Ok(Literal::String(s))
            }
            Some(Token::Number(n)) => {
                self.next += 1;
                Ok(Literal::Number(n))
            }
            Some(Token::Word(w)) if w == "true" || w == "false" => {
                self.next += 1;
                Ok(Literal::Bool(w == "true"))
            }
            _ => self.fail("a value (a 'string', a number, true or false)"),
        }
    }

    fn field(&mut self) -> Result<Field> {
        let position = self.position();
        let Some(Token::Word(first)) = self.advance() else {
            self.next -= 1;
            return self.fail("a field name");
        };
        if first == "custom" && self.peek().map(|t| &t.token) == Some(&Token::Dot) {
            self.next += 1;
            match self.advance() {
                Some(Token::Word(name)) => Ok(Field {
                    name,
                    custom: true,
                    position,
                }),
                _ => {
                    self.next -= 1;
                    self.fail("a custom field name after \"custom.\"")
                }
            }
        } else {
            Ok(Field {
                name: first,
                custom: false,
                position,
            })
        }
    }

    fn field_condition(&mut self) -> Result<Rule> {
        let field = self.field()?;
        if let Some(Located {
            token: Token::Operator(op),
            ..
        }) = self.peek().cloned()
        {
            self.next += 1;
            let op = CompareOp::parse(&op).expect("the lexer yields only known operators");
            return Ok(Rule::Compare {
                field,
                op,
                value: self.literal()?,
            });
        }
        let Some(word) = self.peek_word(0).map(str::to_string) else {
            return self.fail("an operator (=, !=, <, in, between, contains, is null, within, …)");
        };
        self.next += 1;
        match word.as_str() {
            "in" => Ok(Rule::In {
                field,
                values: self.list()?,
                negated: false,
            }),
            "not" => {
                self.expect_word("in")?;
                Ok(Rule::In {
                    field,
                    values: self.list()?,
                    negated: true,
                })
            }
            "between" => {
                let low = self.literal()?;
                self.expect_word("and")?;
                Ok(Rule::Between {
                    field,
                    low,
                    high: self.literal()?,
                })
            }
            "contains" => Ok(Rule::Text {
                field,
                op: TextOp::Contains,
                value: self.string("a 'string'")?,
            }),
            "starts" | "ends" => {
                self.expect_word("with")?;
                let op = if word == "starts" {
                    TextOp::StartsWith
                } else {
                    TextOp::EndsWith
                };
                Ok(Rule::Text {
                    field,
                    op,
                    value: self.string("a 'string'")?,
                })
            }
            "is" => {
                let negated = self.eat_word("not");
                self.expect_word("null")?;
                Ok(Rule::IsNull { field, negated })
            }
            "within" => Ok(Rule::Within {
                field,
                span: self.span()?,
            }),
            "before" => {
                let span = self.span()?;
                self.expect_word("ago")?;
                Ok(Rule::Before { field, span })
            }
            _ => {
                self.next -= 1;
                self.fail("an operator (=, !=, <, in, between, contains, is null, within, …)")
            }
        }
    }

    fn list(&mut self) -> Result<Vec<Literal>> {
        self.expect(Token::LParen, "\"(\"")?;
        let mut values = vec![self.literal()?];
        while self.peek().map(|t| &t.token) == Some(&Token::Comma) {
            self.next += 1;
            values.push(self.literal()?);
        }
        self.expect(Token::RParen, "\",\" or \")\"")?;
        Ok(values)
    }
}
