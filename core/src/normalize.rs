//! Normalisation of what people type into a CRM: emails, phones, countries
//! and tags. Every write path (SQL INSERT/UPDATE, upsert, import) goes
//! through these functions, so a contact looks the same however it arrived.

use crate::error::{Error, ErrorKind, Result};
use crate::fold::fold;
use email_address::EmailAddress;
use rlibphonenumber::enums::{PhoneNumberType, Region};
use rlibphonenumber::{PhoneNumberFormat, PHONE_NUMBER_UTIL};
use std::collections::HashSet;
use std::str::FromStr;

/// Trims and lower-cases an email address, and rejects what is not one.
///
/// Beyond RFC 5322 syntax, the domain must contain a dot: an address such
/// as `user@localhost` cannot receive marketing mail.
pub fn email(raw: &str) -> Result<String> {
    let candidate = raw.trim().to_lowercase();
    let valid = EmailAddress::from_str(&candidate)
        .map(|address| address.domain().contains('.') && !address.domain().ends_with('.'))
        .unwrap_or(false);
    if valid {
        Ok(candidate)
    } else {
        Err(Error::new(
            ErrorKind::InvalidText,
            format!(
                "invalid email address in field \"email\": \"{}\"",
                raw.trim()
            ),
        )
        .with_hint("An email address looks like name@example.com."))
    }
}

/// What kind of line a phone number is, as far as its number plan tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneType {
    Mobile,
    Landline,
    Voip,
    Unknown,
}

impl PhoneType {
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneType::Mobile => "mobile",
            PhoneType::Landline => "landline",
            PhoneType::Voip => "voip",
            PhoneType::Unknown => "unknown",
        }
    }
}

/// A phone number as stored: E.164 when it parses and is valid, otherwise
/// the text as given (trimmed) with type `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    pub number: String,
    pub kind: PhoneType,
}

/// Normalises a phone number. Numbers without a leading `+` (or `00`
/// international prefix) are read in the contact's country when known.
/// Extensions (`x123`) are dropped: E.164 has no place for them.
pub fn phone(raw: &str, country: Option<&str>) -> Phone {
    let given = raw.trim();
    let region = country.and_then(|code| code.trim().to_uppercase().parse::<Region>().ok());
    let parsed = PHONE_NUMBER_UTIL
        .parse(given, region)
        .ok()
        .filter(|number| number.is_valid());
    match parsed {
        Some(number) => {
            let kind = match number.get_type() {
                PhoneNumberType::Mobile => PhoneType::Mobile,
                PhoneNumberType::FixedLine => PhoneType::Landline,
                PhoneNumberType::VoIP => PhoneType::Voip,
                // In number plans such as North America's, a number does
                // not tell whether it is a mobile: say so rather than guess.
                _ => PhoneType::Unknown,
            };
            Phone {
                number: number.format_as(PhoneNumberFormat::E164).into_owned(),
                kind,
            }
        }
        None => Phone {
            number: given.to_string(),
            kind: PhoneType::Unknown,
        },
    }
}

/// Reads a country as an ISO 3166-1 alpha-2 code in upper case. Accepts
/// alpha-2 and alpha-3 codes and English names, in any case.
pub fn country(raw: &str) -> Result<String> {
    let given = raw.trim();
    celes::Country::from_str(given)
        .or_else(|_| celes::Country::from_str(&given.to_uppercase()))
        .map(|found| found.alpha2.to_string())
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidText,
                format!("unknown country in field \"country\": \"{given}\""),
            )
            .with_hint("Use an ISO 3166-1 code such as 'US' or 'DE', or an English country name.")
        })
}

/// Trims tags, drops empty ones and keeps the first spelling of tags that
/// differ only in case, so a contact never holds the same tag twice.
pub fn tags<'a>(given: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    given
        .into_iter()
        .map(str::trim)
        .filter(|tag| !tag.is_empty() && seen.insert(fold(tag).into_owned()))
        .map(str::to_string)
        .collect()
}

/// The case-folded form tags are compared and indexed by.
pub fn tag_key(tag: &str) -> String {
    fold(tag.trim()).into_owned()
}

/// An event kind trimmed and lower-cased; rejects what is not a word
/// (a letter, then letters, digits and underscores).
pub fn event_kind(raw: Option<&str>) -> Result<String> {
    let kind = raw.map(|raw| raw.trim_matches(' ').to_lowercase());
    match kind {
        Some(kind)
            if kind.starts_with(|c: char| c.is_ascii_lowercase())
                && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') =>
        {
            Ok(kind)
        }
        _ => Err(Error::new(ErrorKind::InvalidParameter, format!("invalid event kind \"{}\"", raw.unwrap_or("<NULL>")))
            .with_hint("Kinds are lower-case words: sent, opened, clicked, replied, visited, bounced, unsubscribed or your own.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            email("  KIMBERLY.HENRY461@ALEXANDER.COM ").unwrap(),
            "kimberly.henry461@alexander.com"
        );
    }

    #[test]
    fn invalid_emails_name_the_field_and_value() {
        for bad in [
            "not-an-email",
            "",
            "a@b",
            "two@@example.com",
            "user@localhost",
            "a b@example.com",
        ] {
            let error = email(bad).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidText, "{bad}");
            assert!(error.message.contains("\"email\""), "{}", error.message);
        }
    }

    #[test]
    fn phones_become_e164_in_the_contacts_country() {
        let p = phone("030 1234567", Some("de"));
        assert_eq!(p.number, "+49301234567");
        assert_eq!(p.kind, PhoneType::Landline);
        let p = phone("07911 123456", Some("GB"));
        assert_eq!(p.number, "+447911123456");
        assert_eq!(p.kind, PhoneType::Mobile);
        let p = phone("+1 (416) 555-0142 x12", None);
        assert_eq!(p.number, "+14165550142");
    }

    #[test]
    fn phones_that_do_not_parse_are_kept_as_given() {
        let p = phone("  call me maybe ", Some("US"));
        assert_eq!(
            p,
            Phone {
                number: "call me maybe".into(),
                kind: PhoneType::Unknown
            }
        );
        let p = phone("12", None);
        assert_eq!(p.kind, PhoneType::Unknown);
    }

    #[test]
    fn countries_become_alpha2_upper_case() {
        assert_eq!(country("us").unwrap(), "US");
        assert_eq!(country(" DEU ").unwrap(), "DE");
        assert_eq!(country("Germany").unwrap(), "DE");
        assert_eq!(country("Narnia").unwrap_err().kind, ErrorKind::InvalidText);
    }

    #[test]
    fn tags_are_deduplicated_case_insensitively() {
        assert_eq!(
            tags([" VIP", "vip", "", "Buyer", "buyer ", "Webinar 2025"]),
            vec!["VIP", "Buyer", "Webinar 2025"]
        );
    }

    #[test]
    fn event_kinds_are_words() {
        assert_eq!(event_kind(Some(" Opened ")).unwrap(), "opened");
        assert_eq!(event_kind(Some("form_2")).unwrap(), "form_2");
        for bad in [
            Some("Opened Twice!"),
            Some("2fa"),
            Some(""),
            Some("_x"),
            Some("ü"),
            None,
        ] {
            let error = event_kind(bad).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidParameter);
            assert!(
                error.message.starts_with("invalid event kind"),
                "{}",
                error.message
            );
        }
    }
}
