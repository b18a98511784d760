//! The hosted opt-in form and the other pages people see: what a form's settings may be (parsed
//! here, so a stored form is always a valid one), the words of the pages per language (data in
//! `data/page_texts.toml`), the colour contrast rule and the default country from the browser.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::business::CategoryName;

/// A form's id: its last path segment, `/f/{business}/{form}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FormId(String);

impl FormId {
    pub fn parse(text: &str) -> Result<FormId, FormSettingError> {
        let valid = (1..=40).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        valid.then(|| FormId(text.to_owned())).ok_or(FormSettingError::FormId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FormId {
    type Error = FormSettingError;
    fn try_from(text: String) -> Result<FormId, FormSettingError> {
        FormId::parse(&text)
    }
}

impl From<FormId> for String {
    fn from(id: FormId) -> String {
        id.0
    }
}

/// A setting of a form that is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormSettingError {
    #[error("a form id is 1 to 40 characters: a-z, 0-9, - and _")]
    FormId,
    #[error("the page language must be one of: en, de, es, fr, pt")]
    Language,
    #[error("a colour is written #rrggbb")]
    Colour,
    #[error("white text on the accent colour must have a contrast of at least 4.5:1 (WCAG AA)")]
    Contrast,
    #[error("an allowed origin is https://host or https://host:port (http only for localhost), with no path")]
    Origin,
    #[error("the logo must be an https URL of at most 500 characters")]
    Logo,
}

impl FormSettingError {
    pub fn code(&self) -> &'static str {
        match self {
            FormSettingError::FormId => "invalid_form_id",
            FormSettingError::Language => "unsupported_page_language",
            FormSettingError::Colour => "invalid_colour",
            FormSettingError::Contrast => "colour_contrast_too_low",
            FormSettingError::Origin => "invalid_origin",
            FormSettingError::Logo => "invalid_logo_url",
        }
    }
}

/// The languages the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PageLanguage {
    #[default]
    En,
    De,
    Es,
    Fr,
    Pt,
}

impl PageLanguage {
    pub const ALL: [PageLanguage; 5] =
        [PageLanguage::En, PageLanguage::De, PageLanguage::Es, PageLanguage::Fr, PageLanguage::Pt];

    /// `de`, `de-AT`, `DE`: the primary subtag decides.
    pub fn parse(tag: &str) -> Result<PageLanguage, FormSettingError> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
        PageLanguage::ALL.into_iter().find(|l| l.as_str() == primary).ok_or(FormSettingError::Language)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PageLanguage::En => "en",
            PageLanguage::De => "de",
            PageLanguage::Es => "es",
            PageLanguage::Fr => "fr",
            PageLanguage::Pt => "pt",
        }
    }

    pub fn texts(self) -> &'static PageTexts {
        &page_texts()[self.as_str()]
    }
}

/// The words of the pages in one language. `{business}` stands for the business's name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageTexts {
    pub form_title: String,
    pub phone_label: String,
    pub phone_hint: String,
    pub country_label: String,
    pub categories_legend: String,
    pub submit: String,
    pub error_summary: String,
    pub phone_invalid: String,
    pub phone_missing: String,
    pub nothing_ticked: String,
    pub too_many: String,
    pub form_expired: String,
    pub subscribed_title: String,
    pub subscribed_body: String,
    pub pending_title: String,
    pub pending_body: String,
    pub pending_link_body: String,
    pub stop_hint: String,
    pub confirm_title: String,
    pub confirm_body: String,
    pub confirm_button: String,
    pub confirmed_title: String,
    pub link_problem_title: String,
    pub link_problem_body: String,
    pub confirmation_expired: String,
    pub preferences_title: String,
    pub preferences_intro: String,
    pub since: String,
    pub status_on: String,
    pub status_off: String,
    pub status_pending: String,
    pub agree_label: String,
    pub agree_missing: String,
    pub save: String,
    pub saved: String,
    pub method_prefix: String,
}

fn page_texts() -> &'static BTreeMap<String, PageTexts> {
    static TEXTS: OnceLock<BTreeMap<String, PageTexts>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        toml::from_str(include_str!("../data/page_texts.toml")).expect("data/page_texts.toml is valid (unit test)")
    })
}

/// Puts the business's name into a text (the page templates escape the result).
pub fn with_business(text: &str, business: &str) -> String {
    text.replace("{business}", business)
}

/// A colour written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Colour([u8; 3]);

impl Colour {
    pub fn parse(text: &str) -> Result<Colour, FormSettingError> {
        let hex = text.strip_prefix('#').filter(|h| h.len() == 6).ok_or(FormSettingError::Colour)?;
        let bytes = hex::decode(hex).map_err(|_| FormSettingError::Colour)?;
        Ok(Colour([bytes[0], bytes[1], bytes[2]]))
    }

    /// An accent colour carries white text (the button): it must be dark enough to read.
    pub fn parse_accent(text: &str) -> Result<Colour, FormSettingError> {
        let colour = Colour::parse(text)?;
        if colour.contrast_with_white() < 4.5 {
            return Err(FormSettingError::Contrast);
        }
        Ok(colour)
    }

    /// WCAG 2 contrast ratio of white on this colour.
    pub fn contrast_with_white(&self) -> f64 {
        fn channel(value: u8) -> f64 {
            let c = f64::from(value) / 255.0;
            if c <= 0.039_28 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        }
        let [r, g, b] = self.0;
        let luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
        1.05 / (luminance + 0.05)
    }

    pub fn to_hex(self) -> String {
        format!("#{}", hex::encode(self.0))
    }
}

impl TryFrom<String> for Colour {
    type Error = FormSettingError;
    fn try_from(text: String) -> Result<Colour, FormSettingError> {
        Colour::parse(&text)
    }
}

impl From<Colour> for String {
    fn from(colour: Colour) -> String {
        colour.to_hex()
    }
}

/// The default accent: white on it has a contrast of 5.0:1.
pub const DEFAULT_ACCENT: Colour = Colour([0x0b, 0x6e, 0x4f]);

/// A web origin allowed to frame a form: `https://shop.example` or `http://localhost:8080`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    pub fn parse(text: &str) -> Result<Origin, FormSettingError> {
        let lower = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or(FormSettingError::Origin)?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (host, Some(port)),
            _ => (rest, None),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
        let local = host == "localhost" || host == "127.0.0.1";
        let scheme_ok = scheme == "https" || (scheme == "http" && local);
        (host_ok && port_ok && scheme_ok).then_some(Origin(lower)).ok_or(FormSettingError::Origin)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Origin {
    type Error = FormSettingError;
    fn try_from(text: String) -> Result<Origin, FormSettingError> {
        Origin::parse(&text)
    }
}

impl From<Origin> for String {
    fn from(origin: Origin) -> String {
        origin.0
    }
}

/// Checks a logo URL: https, short, no characters that could leave an HTML attribute.
pub fn parse_logo_url(text: &str) -> Result<String, FormSettingError> {
    let ok = text.starts_with("https://")
        && text.len() <= 500
        && text.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'<' | b'>' | b'\\'));
    ok.then(|| text.to_owned()).ok_or(FormSettingError::Logo)
}

/// The `Content-Security-Policy` `frame-ancestors` value: only the allowed origins may frame the
/// page, and with none, nobody may.
pub fn frame_ancestors(allowed: &[Origin]) -> String {
    if allowed.is_empty() {
        return "'none'".to_owned();
    }
    allowed.iter().map(Origin::as_str).collect::<Vec<_>>().join(" ")
}

/// The country the browser suggests, from `Accept-Language` (`de-AT,de;q=0.9` → AT; a bare
/// language whose country is unambiguous, `de` → DE). `None` when nothing says.
pub fn country_from_accept_language(header: &str) -> Option<String> {
    let mut tags: Vec<(f32, &str)> = header
        .split(',')
        .take(20)
        .filter_map(|part| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim();
            let quality =
                pieces.find_map(|p| p.trim().strip_prefix("q=")).map_or(Some(1.0), |q| q.parse::<f32>().ok())?;
            (!tag.is_empty() && quality > 0.0).then_some((quality, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0));
    tags.iter().find_map(|(_, tag)| region_of_tag(tag))
}

fn region_of_tag(tag: &str) -> Option<String> {
    let mut parts = tag.split(['-', '_']);
    let language = parts.next()?.to_ascii_lowercase();
    let region = parts.find(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_alphabetic()));
    if let Some(region) = region {
        return Some(region.to_ascii_uppercase());
    }
    // Languages spoken mainly in one country; `en`, `es`, `pt`, `fr`, `ar` are left out on purpose.
    const SINGLE_COUNTRY: [(&str, &str); 14] = [
        ("de", "DE"),
        ("it", "IT"),
        ("nl", "NL"),
        ("pl", "PL"),
        ("ja", "JP"),
        ("ko", "KR"),
        ("tr", "TR"),
        ("id", "ID"),
        ("hi", "IN"),
        ("uk", "UA"),
        ("cs", "CZ"),
        ("da", "DK"),
        ("sv", "SE"),
        ("he", "IL"),
    ];
    SINGLE_COUNTRY.iter().find(|(l, _)| *l == language).map(|(_, c)| (*c).to_owned())
}

/// A category's name as a person reads it, when the form gives no label: `order_updates` →
/// "Order updates".
pub fn humanize(category: &CategoryName) -> String {
    let spaced = category.as_str().replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn hostile_settings_and_headers_never_panic(text in "\\PC{0,200}") {
            let _ = country_from_accept_language(&text);
            if let Ok(origin) = Origin::parse(&text) {
                // Whatever is accepted can go into a CSP header as one source.
                prop_assert!(!origin.as_str().contains([' ', ';', ',', '\'', '"']));
            }
            if let Ok(url) = parse_logo_url(&text) {
                prop_assert!(!url.contains(['"', '<', '>']));
            }
            let _ = Colour::parse(&text);
            let _ = FormId::parse(&text);
            let _ = PageLanguage::parse(&text);
        }
    }

    #[test]
    fn every_language_has_every_text() {
        assert_eq!(page_texts().len(), PageLanguage::ALL.len());
        for language in PageLanguage::ALL {
            let texts = language.texts();
            assert!(texts.form_title.contains("{business}"), "{language:?}");
            assert!(texts.preferences_title.contains("{business}"), "{language:?}");
            assert!(!texts.submit.is_empty());
        }
    }

    #[test]
    fn page_languages_parse_from_tags() {
        assert_eq!(PageLanguage::parse("de-AT"), Ok(PageLanguage::De));
        assert_eq!(PageLanguage::parse("PT_br"), Ok(PageLanguage::Pt));
        assert_eq!(PageLanguage::parse("xx"), Err(FormSettingError::Language));
        assert_eq!(PageLanguage::parse(""), Err(FormSettingError::Language));
    }

    #[test]
    fn accent_colours_must_carry_white_text() {
        assert!(Colour::parse_accent("#0b6e4f").is_ok());
        assert!(DEFAULT_ACCENT.contrast_with_white() >= 4.5);
        assert_eq!(Colour::parse_accent("#ffff00"), Err(FormSettingError::Contrast));
        assert!((Colour::parse("#000000").unwrap().contrast_with_white() - 21.0).abs() < 0.01);
        for bad in ["", "#fff", "0b6e4f", "#0b6e4g", "#0b6e4f0", "#ééé"] {
            assert_eq!(Colour::parse(bad), Err(FormSettingError::Colour), "{bad}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(Origin::parse("https://Shop.Example/").unwrap().as_str(), "https://shop.example");
        assert_eq!(Origin::parse("http://localhost:8080").unwrap().as_str(), "http://localhost:8080");
        assert_eq!(Origin::parse("http://127.0.0.1:3000").unwrap().as_str(), "http://127.0.0.1:3000");
        for bad in [
            "shop.example",
            "http://shop.example",
            "https://shop.example/path",
            "https://",
            "javascript://x",
            "https://a b",
            "https://x:99999",
            "https://x;frame-ancestors *",
            "*",
        ] {
            assert_eq!(Origin::parse(bad), Err(FormSettingError::Origin), "{bad}");
        }
        assert_eq!(frame_ancestors(&[]), "'none'");
        let two = [Origin::parse("https://a.example").unwrap(), Origin::parse("https://b.example:8443").unwrap()];
        assert_eq!(frame_ancestors(&two), "https://a.example https://b.example:8443");
    }

    #[test]
    fn logo_urls_cannot_break_out_of_an_attribute() {
        assert!(parse_logo_url("https://cdn.example/logo.png").is_ok());
        for bad in ["http://cdn.example/l.png", "https://x/\"onerror=", "https://x/<script>", "javascript:alert(1)"] {
            assert_eq!(parse_logo_url(bad), Err(FormSettingError::Logo), "{bad}");
        }
    }

    #[test]
    fn the_browser_suggests_a_country() {
        let cases = [
            ("de-AT,de;q=0.9,en;q=0.8", Some("AT")),
            ("de", Some("DE")),
            ("en;q=0.9, pt-BR", Some("BR")),
            ("en", None),
            ("es-419", None),
            ("fr-CA;q=0", None),
            ("", None),
            ("*", None),
            ("zh-Hant-TW", Some("TW")),
            ("en-us;q=abc, nl", Some("NL")),
        ];
        for (header, expected) in cases {
            assert_eq!(country_from_accept_language(header).as_deref(), expected, "{header}");
        }
    }

    #[test]
    fn form_ids_and_labels() {
        assert!(FormId::parse("newsletter-2026").is_ok());
        for bad in ["", "Shop", "a/b", "a b", &"x".repeat(41)] {
            assert_eq!(FormId::parse(bad), Err(FormSettingError::FormId), "{bad}");
        }
        assert_eq!(humanize(&CategoryName::parse("order_updates").unwrap()), "Order updates");
        assert_eq!(with_business("Hi {business}!", "Acme"), "Hi Acme!");
    }
}
