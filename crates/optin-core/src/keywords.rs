//! Opt-out and opt-in keywords in inbound WhatsApp texts: "STOP", "BAJA", "ARRÊT", "बंद करो", "İPTAL"...
//!
//! A [`KeywordMatcher`] reads a message the way a careful person would, and only acts on clear commands:
//!
//! - The message must **start** with a keyword, and may go on only with polite words ("STOP. Thank you",
//!   "Unsubscribe me please"), which makes an opt-out or opt-in of everything, or with the business's
//!   category names and aliases ("STOP OFFERS", "BAJA PROMOCIONES", "stop order updates and offers please"),
//!   which limits it to those categories.
//! - Any other message in which an opt-out word appears as a whole word ("don't stop my order",
//!   "how do I unsubscribe?", "stop sending the wrong size") is [`Intent::Unclear`]: worth a human look
//!   (the FCC's "reasonable person" test), never acted on automatically.
//! - Case, accents, punctuation, emoji and spacing never matter; see `normalize.rs` for the exact folding,
//!   which is applied identically to the data and to the message.
//!
//! The built-in words live in `data/keywords.toml`, one table per language, and always include the FCC and
//! CTIA set (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPT OUT, OPTOUT). A business can add its
//! own words with [`KeywordMatcher::new`]; they add to the built-in ones and never replace them.
//!
//! Everything is normalized when the matcher is built, so [`KeywordMatcher::classify`] costs one pass over
//! the message plus a hash lookup per word, and allocates only the normalized copy of the message.

mod data;
mod normalize;
mod phrases;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::business::CategoryName;
use normalize::{normalize, normalize_into};
use phrases::{PhraseTable, rest_after};

/// How many custom keywords a business may add.
pub const MAX_CUSTOM_KEYWORDS: usize = 100;
/// How long (in characters) a custom keyword may be.
pub const MAX_CUSTOM_KEYWORD_CHARS: usize = 64;
/// The `language` reported for a business's own keywords.
pub const CUSTOM_LANGUAGE: &str = "custom";

/// Whether a button label/payload is the platform's localized marketing opt-out button ("Stop promotions",
/// "Parar promoções", ...). The whole text must be the label; case, accents and punctuation do not matter.
pub fn is_stop_promotions_label(text: &str) -> bool {
    stop_promotions_language(text).is_some()
}

/// The language of a localized "Stop promotions" label (so the confirmation can use it), or
/// `None` if the text is not one.
pub fn stop_promotions_language(text: &str) -> Option<&'static str> {
    KeywordMatcher::builtin().stop_promotions_labels.get(normalize(text).as_str()).copied()
}

/// Whether a text (e.g. a template footer) tells the reader how to opt out ("Reply STOP to unsubscribe",
/// "Not interested? Tap Stop promotions", "Envía BAJA para..."): it mentions an opt-out keyword or the
/// stop-promotions label in any supported language, as whole words.
pub fn mentions_opt_out(text: &str) -> bool {
    KeywordMatcher::builtin().mentions.find_anywhere(&normalize(text)).is_some()
}

/// The language codes of the built-in keyword tables (`en` first).
pub fn supported_languages() -> impl Iterator<Item = &'static str> {
    data::languages().iter().map(|(code, _)| code.as_str())
}

/// A keyword a business adds to the built-in ones (business configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomKeyword {
    pub text: String,
    pub intent: KeywordIntent,
}

/// What a keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeywordIntent {
    OptOut,
    OptIn,
}

/// A business category as people may name it in a reply. The category's own name always counts, with
/// underscores read as spaces (`order_updates` matches "order updates").
#[derive(Debug, Clone, Copy)]
pub struct CategoryAliases<'a> {
    pub category: &'a CategoryName,
    pub aliases: &'a [String],
}

/// What an inbound text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// No keyword: an ordinary message.
    None,
    /// A clear opt-out command. `keyword` is spelled as in the data (or as the business configured it).
    OptOut { scope: Scope, keyword: String, language: &'static str },
    /// A clear re-subscribe command (the START/UNSTOP/JOIN family).
    OptIn { scope: Scope, keyword: String, language: &'static str },
    /// An opt-out word appears but not as a clear command ("don't stop my order", "how do I unsubscribe?"):
    /// worth a human look, never acted on.
    Unclear { keyword: String },
}

/// Which messages a command is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// The named categories, de-duplicated, in the order the message names them.
    Categories(Vec<CategoryName>),
}

/// Why a business's custom keywords were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeywordError {
    #[error("a custom keyword must contain at least one letter or digit")]
    Empty,
    #[error("the custom keyword {keyword:?} is longer than {max} characters")]
    TooLong { keyword: String, max: usize },
    #[error("at most {max} custom keywords are allowed")]
    TooMany { max: usize },
    #[error("the custom keyword {keyword:?} has the opposite meaning of the keyword {existing:?}")]
    Conflict { keyword: String, existing: String },
}

impl KeywordError {
    pub fn code(&self) -> &'static str {
        match self {
            KeywordError::Empty => "keyword_empty",
            KeywordError::TooLong { .. } => "keyword_too_long",
            KeywordError::TooMany { .. } => "too_many_keywords",
            KeywordError::Conflict { .. } => "keyword_conflict",
        }
    }
}

/// Classifies inbound texts; built from the built-in data plus a business's own keywords.
#[derive(Debug, Clone)]
pub struct KeywordMatcher {
    keywords: Vec<Keyword>,
    /// Opt-out and opt-in keywords, to match at the start of a message.
    commands: PhraseTable<usize>,
    /// Opt-out keywords and stop-promotions labels, to find anywhere in a message.
    mentions: PhraseTable<usize>,
    /// Words allowed after a keyword.
    followers: PhraseTable<Follower>,
    /// Normalized label → its language.
    stop_promotions_labels: HashMap<Box<str>, &'static str>,
}

#[derive(Debug, Clone)]
struct Keyword {
    text: Cow<'static, str>,
    language: &'static str,
    intent: KeywordIntent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follower {
    Polite,
    And,
}

impl KeywordMatcher {
    /// The built-in keywords plus `custom` ones. Custom keywords equal to a built-in one with the same
    /// meaning are accepted (and change nothing); one with the opposite meaning is refused.
    pub fn new(custom: &[CustomKeyword]) -> Result<KeywordMatcher, KeywordError> {
        if custom.len() > MAX_CUSTOM_KEYWORDS {
            return Err(KeywordError::TooMany { max: MAX_CUSTOM_KEYWORDS });
        }
        let mut matcher = KeywordMatcher::builtin().clone();
        for keyword in custom {
            matcher.add_custom(keyword)?;
        }
        Ok(matcher)
    }

    /// The built-in keywords only.
    pub fn builtin() -> &'static KeywordMatcher {
        static BUILTIN: LazyLock<KeywordMatcher> = LazyLock::new(KeywordMatcher::from_builtin_data);
        &BUILTIN
    }

    /// What `text` asks for, given the business's categories and their aliases.
    pub fn classify(&self, text: &str, categories: &[CategoryAliases<'_>]) -> Intent {
        let normalized = normalize(text);
        for (index, tail) in self.commands.matches_at(&normalized) {
            let keyword = &self.keywords[index];
            if let Some(scope) = self.scope_of_tail(tail, keyword.intent, categories) {
                let (keyword_text, language) = (keyword.text.to_string(), keyword.language);
                return match keyword.intent {
                    KeywordIntent::OptOut => Intent::OptOut { scope, keyword: keyword_text, language },
                    KeywordIntent::OptIn => Intent::OptIn { scope, keyword: keyword_text, language },
                };
            }
        }
        match self.mentions.find_anywhere(&normalized) {
            Some(index) => Intent::Unclear { keyword: self.keywords[index].text.to_string() },
            None => Intent::None,
        }
    }

    /// The scope of a command followed by `tail`, or `None` when the tail is more than polite words,
    /// categories and the words joining them. Allocates only once a category name is possible.
    fn scope_of_tail(&self, tail: &str, intent: KeywordIntent, categories: &[CategoryAliases<'_>]) -> Option<Scope> {
        let mut named: Vec<CategoryName> = Vec::new();
        let mut aliases: Option<Aliases> = None;
        let (mut after_category, mut needs_category) = (false, false);
        let mut rest = tail;
        while !rest.is_empty() {
            if !categories.is_empty() {
                let aliases = aliases.get_or_insert_with(|| Aliases::new(categories));
                if let Some((index, after)) = aliases.match_at(rest) {
                    let category = categories[index].category;
                    if !named.contains(category) {
                        named.push(category.clone());
                    }
                    (rest, after_category, needs_category) = (after, true, false);
                    continue;
                }
            }
            let (follower, after) = self.follower_at(rest, intent)?;
            match follower {
                Follower::And if after_category => (after_category, needs_category) = (false, true),
                Follower::Polite if !needs_category => after_category = false,
                _ => return None,
            }
            rest = after;
        }
        match (needs_category, named.is_empty()) {
            (true, _) => None,
            (false, true) => Some(Scope::All),
            (false, false) => Some(Scope::Categories(named)),
        }
    }

    /// A polite word or joining word at the start of `rest`; repeating a command with the same intent
    /// ("stop, unsubscribe") counts as polite.
    fn follower_at<'text>(&self, rest: &'text str, intent: KeywordIntent) -> Option<(Follower, &'text str)> {
        self.followers.longest_at(rest).or_else(|| {
            let same_intent = |(index, _): &(usize, &str)| self.keywords[*index].intent == intent;
            self.commands.matches_at(rest).find(same_intent).map(|(_, after)| (Follower::Polite, after))
        })
    }

    fn from_builtin_data() -> KeywordMatcher {
        let mut matcher = KeywordMatcher {
            keywords: Vec::new(),
            commands: PhraseTable::default(),
            mentions: PhraseTable::default(),
            followers: PhraseTable::default(),
            stop_promotions_labels: HashMap::new(),
        };
        for (language, words) in data::languages() {
            let language = language.as_str();
            for (list, intent) in [(&words.opt_out, KeywordIntent::OptOut), (&words.opt_in, KeywordIntent::OptIn)] {
                for text in list {
                    // A word listed by several languages keeps the first (checked for conflicts by a test).
                    let _ = matcher.add_keyword(Cow::Borrowed(text.as_str()), language, intent, &normalize(text));
                }
            }
            for label in &words.stop_promotions {
                let normalized = normalize(label);
                let index = matcher.keywords.len();
                matcher.keywords.push(Keyword { text: Cow::Borrowed(label), language, intent: KeywordIntent::OptOut });
                let _ = matcher.mentions.insert(&normalized, index);
                matcher.stop_promotions_labels.entry(normalized.into()).or_insert(language);
            }
            for (list, follower) in [(&words.polite, Follower::Polite), (&words.and, Follower::And)] {
                for text in list {
                    let _ = matcher.followers.insert(&normalize(text), follower);
                }
            }
        }
        matcher
    }

    fn add_custom(&mut self, custom: &CustomKeyword) -> Result<(), KeywordError> {
        let text = custom.text.trim();
        if text.chars().count() > MAX_CUSTOM_KEYWORD_CHARS {
            return Err(KeywordError::TooLong { keyword: text.to_owned(), max: MAX_CUSTOM_KEYWORD_CHARS });
        }
        let normalized = normalize(text);
        if normalized.is_empty() {
            return Err(KeywordError::Empty);
        }
        let added = self.add_keyword(Cow::Owned(text.to_owned()), CUSTOM_LANGUAGE, custom.intent, &normalized);
        match added {
            Err(existing) if self.keywords[existing].intent != custom.intent => Err(KeywordError::Conflict {
                keyword: text.to_owned(),
                existing: self.keywords[existing].text.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Adds a command keyword; `Err` holds the index of the keyword already stored for `normalized`.
    fn add_keyword(
        &mut self,
        text: Cow<'static, str>,
        language: &'static str,
        intent: KeywordIntent,
        normalized: &str,
    ) -> Result<(), usize> {
        let index = self.keywords.len();
        self.commands.insert(normalized, index)?;
        self.keywords.push(Keyword { text, language, intent });
        if intent == KeywordIntent::OptOut {
            let _ = self.mentions.insert(normalized, index);
        }
        Ok(())
    }
}

/// Every name the categories go by, normalized into one buffer (two allocations per message at most).
struct Aliases {
    text: String,
    /// (start, end) of a name in `text`, and the index of its category.
    names: Vec<(usize, usize, usize)>,
}

impl Aliases {
    fn new(categories: &[CategoryAliases<'_>]) -> Aliases {
        let mut aliases = Aliases { text: String::with_capacity(256), names: Vec::with_capacity(categories.len() * 4) };
        for (index, category) in categories.iter().enumerate() {
            let names = std::iter::once(category.category.as_str()).chain(category.aliases.iter().map(String::as_str));
            for name in names {
                let start = aliases.text.len();
                normalize_into(&mut aliases.text, name);
                if aliases.text.len() > start {
                    aliases.names.push((start, aliases.text.len(), index));
                }
            }
        }
        aliases
    }

    /// The category named (longest name first) at the start of `rest`, and the text after it. An Arabic
    /// "و" ("and") written joined to the name ("والعروض") is accepted too.
    fn match_at<'text>(&self, rest: &'text str) -> Option<(usize, &'text str)> {
        self.longest_at(rest).or_else(|| self.longest_at(rest.strip_prefix('و')?))
    }

    fn longest_at<'text>(&self, rest: &'text str) -> Option<(usize, &'text str)> {
        let matches = self
            .names
            .iter()
            .filter_map(|&(start, end, index)| Some((end - start, index, rest_after(rest, &self.text[start..end])?)));
        matches.max_by_key(|(length, _, _)| *length).map(|(_, index, after)| (index, after))
    }
}
