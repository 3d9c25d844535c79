//! The query language of `audience.search`: `field:value`, `tag:VIP`,
//! free words, and double quotes around values with spaces. All terms
//! must match; matching itself happens in SQL.

use crate::error::{Error, ErrorKind, Result};

/// One term of a search query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchTerm {
    /// `name:value` on a standard or custom field (name lower-cased).
    Field { name: String, value: String },
    /// `tag:value`.
    Tag(String),
    /// A word matched against email, names and company.
    Word(String),
}

/// Every term is a condition on every contact: a pasted document must not
/// become a query that runs for hours.
pub const MAX_TERMS: usize = 32;

/// Splits a query into terms. A quote left open is an error, not a guess.
pub fn parse(query: &str) -> Result<Vec<SearchTerm>> {
    let mut terms = Vec::new();
    let mut chars = query.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut name: Option<String> = None;
        let mut value = String::new();
        let mut quoted = false;
        while let Some(&(position, c)) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' {
                quoted = true;
                let mut closed = false;
                for (_, inner) in chars.by_ref() {
                    if inner == '"' {
                        closed = true;
                        break;
                    }
                    value.push(inner);
                }
                if !closed {
                    return Err(Error::new(
                        ErrorKind::Syntax,
                        format!(
                            "unterminated quoted value in search query at position {}",
                            position + 1
                        ),
                    )
                    .with_hint(
                        "Close the value with a double quote, as in tag:\"Very Important\".",
                    ));
                }
            } else if c == ':' && name.is_none() && !quoted && !value.is_empty() {
                name = Some(std::mem::take(&mut value).to_lowercase());
            } else {
                value.push(c);
            }
        }
        let term = match name {
            Some(name) if value.is_empty() => {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    format!(
                        "search term \"{name}:\" at position {} has no value",
                        start + 1
                    ),
                ))
            }
            Some(name) if name == "tag" => SearchTerm::Tag(value),
            Some(name) => SearchTerm::Field { name, value },
            None if value.is_empty() => continue,
            None => SearchTerm::Word(value),
        };
        if terms.len() == MAX_TERMS {
            return Err(Error::new(
                ErrorKind::TooComplex,
                format!("a search query has at most {MAX_TERMS} terms"),
            )
            .with_hint("Narrow the search with field:value terms, or build a segment rule."));
        }
        terms.push(term);
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields_tags_and_words() {
        assert_eq!(
            parse("industry:SaaS  Country:US tag:\"Very Important\" acme").unwrap(),
            vec![
                SearchTerm::Field {
                    name: "industry".into(),
                    value: "SaaS".into()
                },
                SearchTerm::Field {
                    name: "country".into(),
                    value: "US".into()
                },
                SearchTerm::Tag("Very Important".into()),
                SearchTerm::Word("acme".into()),
            ]
        );
    }

    #[test]
    fn quoted_words_and_colons_in_values() {
        assert_eq!(
            parse("\"New York\" url:https://x.io").unwrap(),
            vec![
                SearchTerm::Word("New York".into()),
                SearchTerm::Field {
                    name: "url".into(),
                    value: "https://x.io".into()
                },
            ]
        );
        assert_eq!(parse("   ").unwrap(), vec![]);
    }

    #[test]
    fn long_queries_are_refused() {
        let words = vec!["word"; MAX_TERMS].join(" ");
        assert_eq!(parse(&words).unwrap().len(), MAX_TERMS);
        assert_eq!(
            parse(&format!("{words} one-more")).unwrap_err().kind,
            ErrorKind::TooComplex
        );
    }

    #[test]
    fn open_quotes_and_empty_values_are_errors() {
        assert_eq!(parse("tag:\"VIP").unwrap_err().kind, ErrorKind::Syntax);
        assert_eq!(parse("city:").unwrap_err().kind, ErrorKind::Syntax);
    }

    proptest! {
        #[test]
        fn never_panics(query in ".{0,200}") {
            let _ = parse(&query);
        }
    }
}
