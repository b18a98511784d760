//! The gate: may this business send this message to this person now, and if not, why.
//!
//! "No" is a normal answer, not an error, so a decision carries every reason that applies
//! instead of failing on the first one.

use serde::Serialize;

use crate::business::CategorySlot;
use crate::consent::ConsentBits;
use crate::phone::{PhoneNumber, PhoneNumberError};

/// Why a message may not be sent. `code()` is stable and documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    InvalidPhone(PhoneNumberError),
    UnknownCategory(String),
    NoOptIn,
    OptedOut,
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::InvalidPhone(error) => error.code(),
            Reason::UnknownCategory(_) => "unknown_category",
            Reason::NoOptIn => "no_opt_in",
            Reason::OptedOut => "opted_out",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Reason::InvalidPhone(error) => error.to_string(),
            Reason::UnknownCategory(name) => format!("the business has no category `{name}`"),
            Reason::NoOptIn => "the contact has not opted in to this category".to_owned(),
            Reason::OptedOut => "the contact opted out of this category".to_owned(),
        }
    }
}

/// What the gate answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reasons: Vec<Reason>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// The serializable form of a reason, as the API and CLI print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReasonView {
    pub code: &'static str,
    pub detail: String,
}

impl From<&Reason> for ReasonView {
    fn from(reason: &Reason) -> ReasonView {
        ReasonView { code: reason.code(), detail: reason.detail() }
    }
}

/// Decides one send. `consent` is the contact's stored consent (empty bits when unknown).
pub fn decide(
    phone: Result<&PhoneNumber, &PhoneNumberError>,
    category: Result<CategorySlot, &str>,
    consent: ConsentBits,
) -> Decision {
    let mut reasons = Vec::new();
    if let Err(error) = phone {
        reasons.push(Reason::InvalidPhone(error.clone()));
    }
    match category {
        Err(name) => reasons.push(Reason::UnknownCategory(name.chars().take(64).collect())),
        Ok(slot) if phone.is_ok() => {
            if consent.opted_out & slot.bit() != 0 {
                reasons.push(Reason::OptedOut);
            } else if consent.opted_in & slot.bit() == 0 {
                reasons.push(Reason::NoOptIn);
            }
        }
        Ok(_) => {}
    }
    Decision { reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(decision: &Decision) -> Vec<&'static str> {
        decision.reasons.iter().map(Reason::code).collect()
    }

    fn phone() -> PhoneNumber {
        PhoneNumber::from_e164("+14155552671").unwrap()
    }

    #[test]
    fn reasons_cover_every_combination() {
        let offers = CategorySlot::new(1).unwrap();
        let opted_in = ConsentBits { opted_in: 0b10, opted_out: 0 };
        let opted_out = ConsentBits { opted_in: 0, opted_out: 0b10 };
        let only_other = ConsentBits { opted_in: 0b01, opted_out: 0 };
        let bad_phone = PhoneNumberError::NotValid;
        type Case<'a> =
            (Result<&'a PhoneNumber, &'a PhoneNumberError>, Result<CategorySlot, &'a str>, ConsentBits, Vec<&'a str>);
        let cases: [Case; 6] = [
            (Ok(&phone()), Ok(offers), opted_in, vec![]),
            (Ok(&phone()), Ok(offers), opted_out, vec!["opted_out"]),
            (Ok(&phone()), Ok(offers), only_other, vec!["no_opt_in"]),
            (Ok(&phone()), Ok(offers), ConsentBits::default(), vec!["no_opt_in"]),
            (Ok(&phone()), Err("nope"), opted_in, vec!["unknown_category"]),
            (Err(&bad_phone), Err("nope"), ConsentBits::default(), vec!["invalid_phone", "unknown_category"]),
        ];
        for (phone, category, consent, expected) in cases {
            let decision = decide(phone, category, consent);
            assert_eq!(codes(&decision), expected);
            assert_eq!(decision.allowed(), expected.is_empty());
        }
    }

    #[test]
    fn a_fixed_line_is_reported_with_its_own_code() {
        let error = PhoneNumberError::NotMobile("fixed-line");
        let decision = decide(Err(&error), Ok(CategorySlot::new(0).unwrap()), ConsentBits::default());
        assert_eq!(codes(&decision), ["not_a_mobile_number"]);
    }
}
