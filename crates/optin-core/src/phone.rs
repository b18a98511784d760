//! Phone numbers: the one door from outside text to an E.164 number.
//!
//! Parsing uses the `phonenumber` crate (libphonenumber metadata). Around it we
//! - reject anything that is not a phone number before the crate sees it (letters, huge strings),
//!   since the crate has quirks on such input (it maps letters to keypad digits, issue #100);
//! - parse numbers written with a leading `+` or `00` without a region hint, since a hint can
//!   corrupt foreign numbers (issue #30);
//! - enforce E.164's 15-digit maximum, which the crate misses for some regions (issue #31).
//!
//! Once parsed, a number is kept as its E.164 digits in a `u64`: cheap to hash, compare and store.

use std::fmt;

use phonenumber::country::Id as CountryId;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, Type as PhoneNumberType};

/// Longest input we hand to the parser. Real numbers with formatting fit in far less.
const MAX_INPUT_CHARS: usize = 64;

/// A valid phone number that can receive messages, in E.164.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber {
    digits: u64,
}

/// Why a text is not a usable phone number. `code()` is the stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("the phone number is empty")]
    Empty,
    #[error("the phone number is too long")]
    TooLong,
    #[error("the phone number contains characters that are not digits or separators")]
    InvalidCharacters,
    #[error("the phone number has no country code and no country was given")]
    MissingCountry,
    #[error("the phone number could not be parsed")]
    Unparseable,
    #[error("the phone number is not valid for its region")]
    NotValid,
    #[error("the phone number is a {0} number, which cannot receive messages")]
    NotMobile(&'static str),
}

impl PhoneNumberError {
    pub fn code(&self) -> &'static str {
        match self {
            PhoneNumberError::NotMobile(_) => "not_a_mobile_number",
            _ => "invalid_phone",
        }
    }
}

/// An ISO 3166-1 alpha-2 region, as a hint for numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(CountryId);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO 3166-1 alpha-2 country code")]
pub struct RegionError(pub String);

impl RegionError {
    pub fn code(&self) -> &'static str {
        "invalid_country"
    }
}

impl Region {
    pub fn parse(code: &str) -> Result<Region, RegionError> {
        let upper = code.trim().to_ascii_uppercase();
        if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(RegionError(truncate_for_message(code)));
        }
        upper.parse::<CountryId>().map(Region).map_err(|_| RegionError(truncate_for_message(code)))
    }

    pub fn as_str(&self) -> String {
        self.0.as_ref().to_owned()
    }
}

impl PhoneNumber {
    /// Parses a number in any common format, with an optional region for national formats.
    pub fn parse(input: &str, region: Option<Region>) -> Result<PhoneNumber, PhoneNumberError> {
        let cleaned = clean_input(input)?;
        let international = cleaned.starts_with('+');
        let hint = if international { None } else { region.map(|r| r.0) };
        if !international && hint.is_none() {
            return Err(PhoneNumberError::MissingCountry);
        }
        let parsed = std::panic::catch_unwind(|| phonenumber::parse(hint, &cleaned))
            .map_err(|_| PhoneNumberError::Unparseable)?
            .map_err(|_| PhoneNumberError::Unparseable)?;
        // `is_valid()` is `number_type() != Unknown` computed on the national number written with
        // its leading zeros; without leading zeros (nearly every number) the two calls do the same
        // work (finding the region's metadata, then matching every type's pattern), so the type
        // is computed once. Numbers with leading zeros (Italy) keep the crate's own check.
        let number_type = parsed.number_type(&DATABASE);
        let valid =
            if parsed.national().zeros() == 0 { number_type != PhoneNumberType::Unknown } else { parsed.is_valid() };
        if !valid {
            return Err(PhoneNumberError::NotValid);
        }
        reject_unreachable_type(number_type)?;
        let e164 = parsed.format().mode(Mode::E164).to_string();
        PhoneNumber::from_e164(&e164).ok_or(PhoneNumberError::NotValid)
    }

    /// Accepts only strict E.164 (`+` then 8 to 15 digits) without consulting the metadata.
    /// For numbers that were validated when stored: the hot path looks them up by these digits.
    pub fn from_e164(text: &str) -> Option<PhoneNumber> {
        let digits = text.strip_prefix('+')?;
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if digits.starts_with('0') {
            return None;
        }
        digits.parse().ok().map(|digits| PhoneNumber { digits })
    }

    /// Rebuilds a number from its stored key. The caller vouches that it was validated before.
    pub fn from_key(digits: u64) -> Option<PhoneNumber> {
        (10_000_000..=999_999_999_999_999).contains(&digits).then_some(PhoneNumber { digits })
    }

    /// The E.164 digits as one integer: the key used by indexes.
    pub fn key(&self) -> u64 {
        self.digits
    }

    pub fn e164(&self) -> String {
        format!("+{}", self.digits)
    }

    /// A form safe for logs: the country code area and the last two digits only.
    pub fn redacted(&self) -> String {
        let text = self.digits.to_string();
        let (head, tail) = text.split_at(text.len() - 2);
        let shown = &head[..head.len().min(3)];
        format!("+{shown}{}{tail}", "*".repeat(head.len() - shown.len()))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.digits)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.redacted())
    }
}

/// Keeps digits (mapping other scripts' decimal digits to ASCII), `+` and common separators;
/// refuses everything else, so letters never reach the parser.
fn clean_input(input: &str) -> Result<String, PhoneNumberError> {
    let trimmed = input.trim();
    let trimmed = trimmed.strip_prefix("tel:").unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(PhoneNumberError::Empty);
    }
    if trimmed.chars().count() > MAX_INPUT_CHARS {
        return Err(PhoneNumberError::TooLong);
    }
    let mut cleaned = String::with_capacity(trimmed.len());
    for (position, character) in trimmed.chars().enumerate() {
        match character {
            '+' | '＋' if position == 0 => cleaned.push('+'),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\u{2010}'..='\u{2015}' => {}
            other => cleaned.push(ascii_digit(other).ok_or(PhoneNumberError::InvalidCharacters)?),
        }
    }
    if let Some(rest) = cleaned.strip_prefix("00") {
        cleaned = format!("+{rest}");
    }
    let digit_count = cleaned.bytes().filter(u8::is_ascii_digit).count();
    if digit_count == 0 {
        return Err(PhoneNumberError::InvalidCharacters);
    }
    if digit_count > 17 {
        return Err(PhoneNumberError::TooLong);
    }
    Ok(cleaned)
}

/// Decimal digits of the scripts people commonly type numbers in.
fn ascii_digit(character: char) -> Option<char> {
    const ZEROS: [u32; 5] = [0x30, 0x660, 0x6F0, 0x966, 0xFF10];
    let code = character as u32;
    ZEROS.iter().find(|zero| (**zero..**zero + 10).contains(&code)).map(|zero| char::from(b'0' + (code - zero) as u8))
}

fn reject_unreachable_type(number_type: PhoneNumberType) -> Result<(), PhoneNumberError> {
    let label = match number_type {
        PhoneNumberType::FixedLine => "fixed-line",
        PhoneNumberType::TollFree => "toll-free",
        PhoneNumberType::PremiumRate => "premium-rate",
        PhoneNumberType::SharedCost => "shared-cost",
        PhoneNumberType::Voicemail => "voicemail",
        _ => return Ok(()),
    };
    Err(PhoneNumberError::NotMobile(label))
}

fn truncate_for_message(text: &str) -> String {
    text.chars().take(16).collect()
}

/// Every country with its calling code (`("DE", 49)`), sorted by country code: what a country
/// selector offers.
pub fn countries_with_calling_codes() -> &'static [(String, u16)] {
    static LIST: std::sync::OnceLock<Vec<(String, u16)>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let mut list: Vec<(String, u16)> = (1..=999u16)
            .filter_map(|code| DATABASE.region(&code).map(|regions| (code, regions)))
            .flat_map(|(code, regions)| regions.into_iter().filter(|r| r.len() == 2).map(move |r| (r.to_owned(), code)))
            .collect();
        list.sort();
        list
    })
}

#[cfg(test)]
mod tests;
