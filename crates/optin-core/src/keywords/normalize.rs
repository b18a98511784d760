//! The one normalization applied to keyword data and to inbound texts alike.
//!
//! It differs from `text::normalize_for_matching` in three ways that matter for short replies in many
//! scripts: it keeps the vowel signs of Indic scripts (dropping them would make "रोकें" and "रक" equal), it
//! folds Arabic letter variants and the Turkish dotless i, and it has an allocation-light ASCII fast path.
//! The result has single spaces between words and no leading or trailing space.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Normalizes `text` for keyword matching; see the module documentation.
pub(super) fn normalize(text: &str) -> String {
    let mut normalized = String::with_capacity(text.len());
    normalize_into(&mut normalized, text);
    normalized
}

/// Appends the normalized `text` to `normalized`.
///
/// Characters are decomposed one by one (NFKD without canonical reordering): the reordering only moves
/// combining marks, which are dropped, except in the Indic scripts where the kept marks are in order.
pub(super) fn normalize_into(normalized: &mut String, text: &str) {
    let start = normalized.len();
    let mut last_was_space = true;
    for character in text.chars() {
        if character.is_ascii() {
            if character.is_ascii_alphanumeric() {
                normalized.push(character.to_ascii_lowercase());
                last_was_space = false;
            } else if !last_was_space {
                normalized.push(' ');
                last_was_space = true;
            }
        } else {
            decompose_compatible(character, |part| push_folded(normalized, part, &mut last_was_space));
        }
    }
    if normalized.len() > start && normalized.ends_with(' ') {
        normalized.pop();
    }
}

fn push_folded(normalized: &mut String, character: char, last_was_space: &mut bool) {
    if is_invisible(character) {
        return;
    }
    if is_combining_mark(character) {
        if let Some(mark) = kept_mark(character) {
            normalized.push(mark);
            *last_was_space = false;
        }
        return;
    }
    if character.is_alphanumeric() {
        match character {
            'ı' => normalized.push('i'),
            'ß' => normalized.push_str("ss"),
            'ى' | 'ی' => normalized.push('ي'),
            'ة' => normalized.push('ه'),
            'ک' => normalized.push('ك'),
            _ => normalized.extend(character.to_lowercase()),
        }
        *last_was_space = false;
    } else if !*last_was_space {
        normalized.push(' ');
        *last_was_space = true;
    }
}

/// Characters that join or shape letters without being a word break: zero-width (non-)joiners, which are
/// common inside Devanagari and Arabic words, the soft hyphen, the byte-order mark and the Arabic tatweel.
fn is_invisible(character: char) -> bool {
    matches!(character, '\u{00AD}' | '\u{034F}' | '\u{0640}' | '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}')
}

/// The combining marks that carry meaning and are kept: the vowel signs, viramas and nasal signs of the
/// Indic, Thai, Lao, Tibetan and Myanmar scripts. Nuktas are dropped (people often omit them) and the
/// Devanagari chandrabindu is read as an anusvara. Every other mark (Latin accents, Arabic harakat and
/// hamza seats, emoji variation selectors) is dropped.
fn kept_mark(mark: char) -> Option<char> {
    match mark {
        '\u{093C}' | '\u{09BC}' | '\u{0A3C}' | '\u{0ABC}' | '\u{0B3C}' | '\u{0CBC}' => None,
        '\u{0901}' => Some('\u{0902}'),
        '\u{0900}'..='\u{0DFF}' | '\u{0E00}'..='\u{0FFF}' | '\u{1000}'..='\u{109F}' => Some(mark),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn latin_case_accents_punctuation_and_emoji_are_ignored() {
        assert_eq!(normalize("  Stop!!! 🙏"), "stop");
        assert_eq!(normalize("ARRÊT"), normalize("arret"));
        assert_eq!(normalize("Opt-Out,  please."), "opt out please");
        assert_eq!(normalize("ＳＴＯＰ"), "stop");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("🙏 !!"), "");
    }

    #[test]
    fn turkish_dotted_and_dotless_i_fold_to_i() {
        for text in ["İPTAL", "iptal", "IPTAL", "ıptal"] {
            assert_eq!(normalize(text), "iptal", "{text}");
        }
    }

    #[test]
    fn devanagari_keeps_vowel_signs_and_drops_nukta() {
        assert_eq!(normalize("रोकें"), "रोकें");
        assert_ne!(normalize("रोकें"), normalize("रोक"));
        assert_eq!(normalize("बंद  करो।"), "बंद करो");
        assert_eq!(normalize("ज़रूर"), normalize("जरूर"));
        assert_eq!(normalize("बँद"), normalize("बंद"));
        assert_eq!(normalize("प्र\u{200D}मोशन"), "प्रमोशन");
    }

    #[test]
    fn arabic_drops_diacritics_and_folds_letter_variants() {
        assert_eq!(normalize("إلغاء الاشتراك"), normalize("الغاء الاشتراك"));
        assert_eq!(normalize("شكراً"), "شكرا");
        assert_eq!(normalize("تـوقـف"), "توقف");
        assert_eq!(normalize("توقف، من فضلك"), "توقف من فضلك");
        assert_eq!(normalize("ترويجية"), normalize("ترويجيه"));
    }
}
