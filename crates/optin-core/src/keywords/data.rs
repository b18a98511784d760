//! The built-in keyword lists, `data/keywords.toml`, parsed once.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// One language's table in `data/keywords.toml`; the file's header documents each list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LanguageKeywords {
    pub(super) opt_out: Vec<String>,
    pub(super) opt_in: Vec<String>,
    pub(super) polite: Vec<String>,
    #[serde(default)]
    pub(super) and: Vec<String>,
    pub(super) stop_promotions: Vec<String>,
}

/// The languages in matching priority: English first (it holds the FCC words), then by language code.
pub(super) fn languages() -> &'static [(String, LanguageKeywords)] {
    static LANGUAGES: LazyLock<Vec<(String, LanguageKeywords)>> = LazyLock::new(|| {
        let mut by_code: BTreeMap<String, LanguageKeywords> = toml::from_str(include_str!("../../data/keywords.toml"))
            .expect("data/keywords.toml is valid (checked by a unit test)");
        let english = by_code.remove_entry("en");
        english.into_iter().chain(by_code).collect()
    });
    &LANGUAGES
}
