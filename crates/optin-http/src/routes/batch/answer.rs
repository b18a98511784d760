//! Writing the answers: each line serialized straight from the decision (no view built per
//! line), in the shape of `BatchDecisionView`.

use std::borrow::Cow;

use axum::body::Bytes;
use optin_core::decision::{Reason, ReasonView};
use optin_core::phone::PhoneNumber;
use optin_store::audience::AudienceDecision;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::Parsed;
use super::lines::Line;

/// The chunk's answers as NDJSON, and how many were allowed.
pub(super) fn write_answers(lines: &[Line], parsed: &[Parsed<'_>], decisions: &[AudienceDecision]) -> (Bytes, u64) {
    let mut decisions = decisions.iter();
    let mut output = Vec::with_capacity(lines.len() * 96);
    let mut allowed = 0;
    for (line, parsed) in lines.iter().zip(parsed) {
        let answer = match parsed {
            Parsed::Request(request) => {
                let decided = decisions.next().expect("one decision per request");
                allowed += u64::from(decided.decision.allowed());
                Answer::decided(line.number, request.phone, decided)
            }
            Parsed::Invalid { phone, code, detail } => {
                Answer { line: line.number, phone: phone.map(PhoneOut::Given), outcome: Outcome::Invalid(code, detail) }
            }
        };
        serde_json::to_writer(&mut output, &answer).expect("answers serialize");
        output.push(b'\n');
    }
    (Bytes::from(output), allowed)
}

/// A response line, serialized without building a `BatchDecisionView` (same shape).
struct Answer<'a> {
    line: u64,
    phone: Option<PhoneOut<'a>>,
    outcome: Outcome<'a>,
}

enum PhoneOut<'a> {
    Valid(PhoneNumber),
    Given(&'a str),
}

enum Outcome<'a> {
    Decided(&'a [Reason]),
    Invalid(&'static str, &'a str),
}

impl<'a> Answer<'a> {
    fn decided(line: u64, given: &'a str, decided: &'a AudienceDecision) -> Answer<'a> {
        let phone = match decided.phone {
            Some(number) => PhoneOut::Valid(number),
            None => PhoneOut::Given(given),
        };
        Answer { line, phone: Some(phone), outcome: Outcome::Decided(&decided.decision.reasons) }
    }
}

impl Serialize for Answer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("line", &self.line)?;
        match &self.phone {
            Some(PhoneOut::Valid(number)) => map.serialize_entry("phone", &format_args!("{number}"))?,
            Some(PhoneOut::Given(text)) => map.serialize_entry("phone", text)?,
            None => {}
        }
        match self.outcome {
            Outcome::Decided(reasons) => {
                map.serialize_entry("allowed", &reasons.is_empty())?;
                map.serialize_entry("reasons", &ReasonList(reasons))?;
            }
            Outcome::Invalid(code, detail) => {
                map.serialize_entry("allowed", &false)?;
                map.serialize_entry("reasons", &[ReasonView { code, detail: detail.to_owned(), retry_after: None }])?;
            }
        }
        map.end()
    }
}

struct ReasonList<'a>(&'a [Reason]);

impl Serialize for ReasonList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for reason in self.0 {
            seq.serialize_element(&BorrowedReason::from(reason))?;
        }
        seq.end()
    }
}

/// `ReasonView` with its detail borrowed: most details are constant, so a refusal costs no
/// allocation.
#[derive(Serialize)]
struct BorrowedReason {
    code: &'static str,
    detail: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<jiff::Timestamp>,
}

impl From<&Reason> for BorrowedReason {
    fn from(reason: &Reason) -> BorrowedReason {
        BorrowedReason { code: reason.code(), detail: reason.detail(), retry_after: reason.retry_after() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::batch::BatchDecisionView;

    #[test]
    fn answers_have_the_documented_shape() {
        let decided = AudienceDecision {
            phone: PhoneNumber::from_e164("+14155552671"),
            decision: optin_core::decision::Decision { reasons: vec![Reason::NoOptIn] },
        };
        let answer = serde_json::to_value(Answer::decided(3, "+1 415 555 2671", &decided)).unwrap();
        let view = BatchDecisionView {
            line: 3,
            phone: Some("+14155552671".to_owned()),
            allowed: false,
            reasons: vec![ReasonView::from(&Reason::NoOptIn)],
        };
        assert_eq!(answer, serde_json::to_value(view).unwrap());
        let invalid = Answer { line: 4, phone: None, outcome: Outcome::Invalid("invalid_line", "not JSON") };
        let expected = serde_json::json!({"line": 4, "allowed": false, "reasons": [{"code": "invalid_line", "detail": "not JSON"}]});
        assert_eq!(serde_json::to_value(invalid).unwrap(), expected);
    }
}
