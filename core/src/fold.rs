//! The one case-folding rule of the extension. Tags, segment and fit-rule
//! names, rule comparisons of text, search terms and URL patterns are all
//! compared by their folded form — in Rust, and in SQL through
//! `audience.fold(text)`, which calls this same function. PostgreSQL's
//! `lower()` and Rust's `str::to_lowercase` disagree outside ASCII (`İ`,
//! a word-final `Σ`), so neither is used for comparisons.

use std::borrow::Cow;

/// Unicode default case folding (CaseFolding.txt, full mappings): `ΟΔΟΣ`
/// and `οδος` fold alike, `Straße` to `strasse`. ASCII text takes a fast
/// path with the same result.
pub fn fold(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(caseless::default_case_fold_str(text))
    }
}

/// Whether two texts are equal once folded.
pub fn same(a: &str, b: &str) -> bool {
    a == b || fold(a) == fold(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn folds_what_lower_and_to_lowercase_disagree_on() {
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
        assert_eq!(fold("ΟΔΟΣ"), "οδοσ");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("İzmir"), fold("İZMIR"));
        assert!(same("Newsletter", "NEWSLETTER"));
        assert!(!same("izmir", "İzmir"));
    }

    proptest! {
        #[test]
        fn ascii_fast_path_agrees_with_full_folding(text in "[ -~]{0,40}") {
            prop_assert_eq!(fold(&text).into_owned(), caseless::default_case_fold_str(&text));
        }

        #[test]
        fn folding_is_idempotent(text in "\\PC{0,24}") {
            let once = fold(&text).into_owned();
            prop_assert_eq!(fold(&once).into_owned(), once.clone());
        }
    }
}
