//! A lookup table of normalized phrases (one or more words), indexed by first word so that matching at a
//! position costs one hash lookup and a few `starts_with` checks.

use std::collections::HashMap;

#[derive(Debug, Clone)]
pub(super) struct PhraseTable<T> {
    /// First word -> (whole phrase, value), longest phrase first.
    by_first_word: HashMap<Box<str>, Vec<(Box<str>, T)>>,
}

impl<T> Default for PhraseTable<T> {
    fn default() -> Self {
        PhraseTable { by_first_word: HashMap::new() }
    }
}

impl<T: Copy> PhraseTable<T> {
    /// Adds a normalized phrase; returns the value already stored for it instead, if any (the first wins).
    pub(super) fn insert(&mut self, phrase: &str, value: T) -> Result<(), T> {
        let first_word = first_word(phrase);
        let candidates = self.by_first_word.entry(first_word.into()).or_default();
        if let Some((_, existing)) = candidates.iter().find(|(known, _)| &**known == phrase) {
            return Err(*existing);
        }
        let position = candidates.partition_point(|(known, _)| known.len() >= phrase.len());
        candidates.insert(position, (phrase.into(), value));
        Ok(())
    }

    /// The value stored for exactly this normalized phrase.
    #[cfg(test)]
    pub(super) fn get(&self, phrase: &str) -> Option<T> {
        let candidates = self.by_first_word.get(first_word(phrase))?;
        candidates.iter().find(|(known, _)| &**known == phrase).map(|(_, value)| *value)
    }

    /// The phrases that `text` (normalized) starts with, longest first, each with the rest of the text after it.
    pub(super) fn matches_at<'text>(&self, text: &'text str) -> impl Iterator<Item = (T, &'text str)> {
        let candidates = self.by_first_word.get(first_word(text)).map_or(&[][..], Vec::as_slice);
        candidates.iter().filter_map(move |(phrase, value)| Some((*value, rest_after(text, phrase)?)))
    }

    /// The longest phrase that `text` (normalized) starts with, and the rest of the text after it.
    pub(super) fn longest_at<'text>(&self, text: &'text str) -> Option<(T, &'text str)> {
        self.matches_at(text).next()
    }

    /// The first phrase found anywhere in `text` (normalized) as whole words.
    pub(super) fn find_anywhere(&self, text: &str) -> Option<T> {
        let mut rest = text;
        while !rest.is_empty() {
            if let Some((value, _)) = self.longest_at(rest) {
                return Some(value);
            }
            rest = rest.split_once(' ').map_or("", |(_, after)| after);
        }
        None
    }
}

fn first_word(text: &str) -> &str {
    text.split_once(' ').map_or(text, |(word, _)| word)
}

/// The text after `phrase` when `text` starts with it as whole words, without the separating space.
pub(super) fn rest_after<'text>(text: &'text str, phrase: &str) -> Option<&'text str> {
    let after = text.strip_prefix(phrase)?;
    if after.is_empty() { Some(after) } else { after.strip_prefix(' ') }
}

#[cfg(test)]
mod tests {
    use super::PhraseTable;

    #[test]
    fn longest_phrase_wins_and_words_match_whole() {
        let mut table = PhraseTable::default();
        table.insert("stop", 1).unwrap();
        table.insert("stop all", 2).unwrap();
        assert_eq!(table.insert("stop", 3), Err(1));
        assert_eq!(table.longest_at("stop all please"), Some((2, "please")));
        assert_eq!(table.longest_at("stop"), Some((1, "")));
        assert_eq!(table.longest_at("stopall"), None);
        assert_eq!(table.longest_at("stop allowed"), Some((1, "allowed")));
        assert_eq!(table.matches_at("stop all").collect::<Vec<_>>(), [(2, ""), (1, "all")]);
        assert_eq!(table.find_anywhere("do not stop"), Some(1));
        assert_eq!(table.find_anywhere("unstoppable"), None);
        assert_eq!(table.get("stop all"), Some(2));
        assert_eq!(table.get("stop al"), None);
    }
}
