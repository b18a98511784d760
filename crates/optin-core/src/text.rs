//! Text normalization for matching people's words: case, accents and punctuation do not matter.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower-cases, strips accents (combining marks after decomposition), turns every run of
/// non-alphanumeric characters into one space, and pads with a space on each side so that
/// `contains(" word ")` matches whole words only.
pub(crate) fn normalize_for_matching(text: &str) -> String {
    let mut normalized = String::with_capacity(text.len() + 2);
    normalized.push(' ');
    let mut last_was_space = true;
    for character in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        if character.is_alphanumeric() {
            normalized.extend(character.to_lowercase());
            last_was_space = false;
        } else if !last_was_space {
            normalized.push(' ');
            last_was_space = true;
        }
    }
    if !last_was_space {
        normalized.push(' ');
    }
    normalized
}

/// Whether `needle` (already normalized) appears as whole words in `haystack` (normalized).
pub(crate) fn contains_words(haystack: &str, needle: &str) -> bool {
    !needle.trim().is_empty() && haystack.contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_and_punctuation_are_ignored() {
        assert_eq!(normalize_for_matching("Café-Brûlé, S.A.!"), " cafe brule s a ");
        assert_eq!(normalize_for_matching("  "), " ");
    }

    #[test]
    fn words_match_only_whole() {
        let text = normalize_for_matching("Messages from Acme Shoes Inc.");
        assert!(contains_words(&text, &normalize_for_matching("acme shoes")));
        assert!(!contains_words(&text, &normalize_for_matching("acme sho")));
        assert!(!contains_words(&text, &normalize_for_matching("")));
    }
}
