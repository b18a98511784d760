//! Notices: the exact text a person is shown when opting in, and the check that it is compliant.
//!
//! A notice must name the business (its registered name or one of its brand names) and must say
//! clearly that the person is opting in to receive messages. The phrases that count as such a
//! statement are data (`data/notice_phrases.toml`), per language.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::text::{contains_words, normalize_for_matching};

/// Longest notice text accepted, in characters.
pub const MAX_NOTICE_CHARS: usize = 10_000;

/// The notice's text: non-empty, at most [`MAX_NOTICE_CHARS`], kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoticeText(String);

/// A language tag such as `en`, `pt-BR` or `hi`: letters, digits and hyphens, primary subtag first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeInputError {
    #[error("the notice text is empty")]
    EmptyText,
    #[error("the notice text is longer than {MAX_NOTICE_CHARS} characters")]
    TextTooLong,
    #[error("`{0}` is not a language tag (expected something like `en` or `pt-BR`)")]
    InvalidLanguage(String),
}

impl NoticeInputError {
    pub fn code(&self) -> &'static str {
        match self {
            NoticeInputError::InvalidLanguage(_) => "invalid_language",
            _ => "invalid_notice_text",
        }
    }
}

impl NoticeText {
    pub fn parse(text: &str) -> Result<NoticeText, NoticeInputError> {
        if text.trim().is_empty() {
            return Err(NoticeInputError::EmptyText);
        }
        if text.chars().count() > MAX_NOTICE_CHARS {
            return Err(NoticeInputError::TextTooLong);
        }
        Ok(NoticeText(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the exact text, hex: what the ledger and receipts refer to.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl TryFrom<String> for NoticeText {
    type Error = NoticeInputError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        NoticeText::parse(&text)
    }
}

impl From<NoticeText> for String {
    fn from(text: NoticeText) -> String {
        text.0
    }
}

impl Language {
    pub fn parse(tag: &str) -> Result<Language, NoticeInputError> {
        let invalid = || NoticeInputError::InvalidLanguage(tag.chars().take(16).collect());
        let mut subtags = tag.split(['-', '_']);
        let primary = subtags.next().ok_or_else(invalid)?;
        let primary_ok = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
        let rest_ok = subtags.all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !primary_ok || !rest_ok || tag.len() > 35 {
            return Err(invalid());
        }
        let mut normalized = primary.to_ascii_lowercase();
        for subtag in tag.split(['-', '_']).skip(1) {
            normalized.push('-');
            normalized.push_str(subtag);
        }
        Ok(Language(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary subtag (`pt` for `pt-BR`), which selects the phrase list.
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

impl TryFrom<String> for Language {
    type Error = NoticeInputError;
    fn try_from(tag: String) -> Result<Self, Self::Error> {
        Language::parse(&tag)
    }
}

impl From<Language> for String {
    fn from(language: Language) -> String {
        language.0
    }
}

/// A requirement a notice fails; the notice is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeFailure {
    NoticeMissingBusinessName,
    NoticeMissingOptInStatement,
}

/// Something a good notice has; the notice is accepted without it, and the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeWarning {
    NoticeMissingWhatsapp,
    NoticeMissingOptOutInstructions,
    /// No phrase list exists for the language; the check used every language's phrases.
    NoticeLanguageNotSupported,
}

impl NoticeFailure {
    pub fn code(&self) -> &'static str {
        match self {
            NoticeFailure::NoticeMissingBusinessName => "notice_missing_business_name",
            NoticeFailure::NoticeMissingOptInStatement => "notice_missing_opt_in_statement",
        }
    }

    pub fn detail(&self) -> &'static str {
        match self {
            NoticeFailure::NoticeMissingBusinessName => {
                "the notice must name the business (its registered name or a registered brand name)"
            }
            NoticeFailure::NoticeMissingOptInStatement => {
                "the notice must clearly say that the person is opting in to receive messages"
            }
        }
    }
}

impl NoticeWarning {
    pub fn code(&self) -> &'static str {
        match self {
            NoticeWarning::NoticeMissingWhatsapp => "notice_missing_whatsapp",
            NoticeWarning::NoticeMissingOptOutInstructions => "notice_missing_opt_out_instructions",
            NoticeWarning::NoticeLanguageNotSupported => "notice_language_not_supported",
        }
    }

    pub fn detail(&self) -> &'static str {
        match self {
            NoticeWarning::NoticeMissingWhatsapp => "the notice does not mention WhatsApp",
            NoticeWarning::NoticeMissingOptOutInstructions => "the notice does not say how to stop the messages",
            NoticeWarning::NoticeLanguageNotSupported => {
                "there is no phrase list for this language; phrases of all languages were accepted"
            }
        }
    }
}

/// The outcome of checking a notice: accepted when `failures` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoticeAssessment {
    pub failures: Vec<NoticeFailure>,
    pub warnings: Vec<NoticeWarning>,
}

impl NoticeAssessment {
    pub fn is_accepted(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks a notice text in a language against the requirements, for a business known by `names`.
pub fn check_notice<'a>(
    text: &NoticeText,
    language: &Language,
    names: impl IntoIterator<Item = &'a str>,
) -> NoticeAssessment {
    let normalized_text = normalize_for_matching(text.as_str());
    let mut assessment = NoticeAssessment::default();
    let names_business = names.into_iter().any(|name| contains_words(&normalized_text, &normalize_for_matching(name)));
    if !names_business {
        assessment.failures.push(NoticeFailure::NoticeMissingBusinessName);
    }
    let phrase_lists: Vec<&LanguagePhrases> = match phrasebook().get(language.primary()) {
        Some(phrases) => vec![phrases],
        None => {
            assessment.warnings.push(NoticeWarning::NoticeLanguageNotSupported);
            phrasebook().values().collect()
        }
    };
    let any_phrase = |pick: fn(&LanguagePhrases) -> &Vec<String>| {
        phrase_lists.iter().flat_map(|phrases| pick(phrases)).any(|phrase| contains_words(&normalized_text, phrase))
    };
    if !any_phrase(|p| &p.opt_in) {
        assessment.failures.push(NoticeFailure::NoticeMissingOptInStatement);
    }
    if !any_phrase(|p| &p.platform) {
        assessment.warnings.push(NoticeWarning::NoticeMissingWhatsapp);
    }
    if !any_phrase(|p| &p.opt_out) {
        assessment.warnings.push(NoticeWarning::NoticeMissingOptOutInstructions);
    }
    assessment
}

/// The languages with a phrase list, for documentation and tests.
pub fn supported_languages() -> impl Iterator<Item = &'static str> {
    phrasebook().keys().map(String::as_str)
}

#[derive(Debug, Deserialize)]
struct LanguagePhrases {
    opt_in: Vec<String>,
    opt_out: Vec<String>,
    platform: Vec<String>,
}

fn phrasebook() -> &'static BTreeMap<String, LanguagePhrases> {
    static PHRASEBOOK: OnceLock<BTreeMap<String, LanguagePhrases>> = OnceLock::new();
    PHRASEBOOK.get_or_init(|| {
        let mut book: BTreeMap<String, LanguagePhrases> = toml::from_str(include_str!("../data/notice_phrases.toml"))
            .expect("data/notice_phrases.toml is valid (checked by a unit test)");
        for phrases in book.values_mut() {
            for list in [&mut phrases.opt_in, &mut phrases.opt_out, &mut phrases.platform] {
                for phrase in list.iter_mut() {
                    *phrase = normalize_for_matching(phrase);
                }
            }
        }
        book
    })
}

#[cfg(test)]
mod tests;
