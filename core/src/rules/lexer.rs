//! Splits rule text into tokens, each with its 1-based character position.

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A word: keyword or field name, lower-cased (keywords are
    /// case-insensitive; field names too).
    Word(String),
    /// A single-quoted string, unescaped.
    String(String),
    /// A number as written (`-12.5`).
    Number(String),
    /// `= != <> < <= > >=`
    Operator(String),
    LParen,
    RParen,
    Comma,
    Dot,
}

impl Token {
    pub fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("\"{w}\""),
            Token::String(s) => format!("string '{s}'"),
            Token::Number(n) => format!("number {n}"),
            Token::Operator(o) => format!("\"{o}\""),
            Token::LParen => "\"(\"".into(),
            Token::RParen => "\")\"".into(),
            Token::Comma => "\",\"".into(),
            Token::Dot => "\".\"".into(),
        }
    }
}

/// A token and where it starts (1-based, in characters).
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub token: Token,
    pub position: usize,
}

pub fn syntax_error(position: usize, message: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Syntax,
        format!("invalid rule at position {position}: {message}"),
    )
}

/// A number written without redundant zeros or signs (`-007.50` → `-7.5`),
/// so that equal numbers print alike and survive the JSON form.
pub fn canonical_number(text: &str) -> String {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let mut number = if whole.is_empty() {
        "0".to_string()
    } else {
        whole.to_string()
    };
    if !fraction.is_empty() {
        number.push('.');
        number.push_str(fraction);
    }
    if negative && number != "0" {
        number.insert(0, '-');
    }
    number
}

pub fn tokenize(text: &str) -> Result<Vec<Located>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        let token = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                Token::LParen
            }
            ')' => {
                i += 1;
                Token::RParen
            }
            ',' => {
                i += 1;
                Token::Comma
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                i += 1;
                Token::Dot
            }
            '\'' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax_error(position, "unterminated string literal")
                            .with_hint(
                            "String literals use single quotes; write a quote inside one as ''.",
                        )),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            value.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                Token::String(value)
            }
            '=' | '!' | '<' | '>' => {
                let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
                let op = if ["!=", "<>", "<=", ">="].contains(&two.as_str()) {
                    two
                } else {
                    c.to_string()
                };
                if op == "!" {
                    return Err(syntax_error(position, "expected \"!=\""));
                }
                i += op.chars().count();
                Token::Operator(op)
            }
            c if c.is_ascii_digit()
                || c == '.'
                || (c == '-'
                    && chars
                        .get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let number: String = chars[start..i].iter().collect();
                if number.parse::<f64>().is_err() || number.matches('.').count() > 1 {
                    return Err(syntax_error(
                        position,
                        format!("malformed number \"{number}\""),
                    ));
                }
                Token::Number(canonical_number(&number))
            }
            // Words are keywords and field names, which are ASCII; other
            // text is quoted.
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Token::Word(
                    chars[start..i]
                        .iter()
                        .collect::<String>()
                        .to_ascii_lowercase(),
                )
            }
            other => {
                return Err(syntax_error(
                    position,
                    format!("unexpected character \"{other}\""),
                ))
            }
        };
        tokens.push(Located { token, position });
    }
    Ok(tokens)
}
