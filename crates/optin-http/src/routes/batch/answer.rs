//! Writing the answers: each line written straight from the decision into the chunk's buffer
//! (no view built per line, no serde but for strings that need escaping), in the shape of
//! `BatchDecisionView`.

use std::borrow::Cow;

use axum::body::Bytes;
use optin_core::decision::Reason;
use optin_core::phone::PhoneNumber;
use optin_store::audience::AudienceDecision;

use super::parse::{Parsed, ParsedChunk};

/// The chunk's answers as NDJSON, and how many were allowed (`decisions`: one per request of
/// the chunk, in order).
pub(super) fn write_answers(chunk: &ParsedChunk, decisions: &[AudienceDecision]) -> (Bytes, u64) {
    let mut decisions = decisions.iter();
    // About 75 bytes for an allowed line, 150 for a refused one.
    let mut output = Vec::with_capacity(chunk.lines.len() * 160);
    let mut allowed = 0;
    let mut tails = RefusalTails::default();
    for (line, parsed) in chunk.lines.iter().zip(chunk.parsed()) {
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
        answer.write(&mut output, &mut tails);
    }
    (Bytes::from(output), allowed)
}

/// A response line, written without building a `BatchDecisionView` (same shape).
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

    /// Appends the line (with its newline) to `output`.
    fn write(&self, output: &mut Vec<u8>, tails: &mut RefusalTails) {
        output.extend_from_slice(b"{\"line\":");
        write_number(output, self.line);
        match &self.phone {
            Some(PhoneOut::Valid(number)) => {
                output.extend_from_slice(b",\"phone\":\"+");
                write_number(output, number.key());
                output.push(b'"');
            }
            Some(PhoneOut::Given(text)) => {
                output.extend_from_slice(b",\"phone\":");
                write_string(output, text);
            }
            None => {}
        }
        match self.outcome {
            Outcome::Decided([]) => output.extend_from_slice(b",\"allowed\":true,\"reasons\":[]}\n"),
            Outcome::Decided([reason]) if reason.retry_after().is_none() => match reason.detail() {
                Cow::Borrowed(detail) => tails.write(output, reason.code(), detail),
                Cow::Owned(detail) => write_refusal(output, &[(reason.code(), &detail, None)]),
            },
            Outcome::Decided(reasons) => {
                let details: Vec<_> = reasons.iter().map(|r| (r.code(), r.detail(), r.retry_after())).collect();
                let reasons: Vec<_> = details.iter().map(|(code, detail, at)| (*code, detail.as_ref(), *at)).collect();
                write_refusal(output, &reasons);
            }
            Outcome::Invalid(code, detail) => write_refusal(output, &[(code, detail, None)]),
        }
    }
}

/// A refusal's end of line: `allowed` and its reasons (code, detail, `retry_after`).
fn write_refusal(output: &mut Vec<u8>, reasons: &[(&str, &str, Option<jiff::Timestamp>)]) {
    output.extend_from_slice(b",\"allowed\":false,\"reasons\":[");
    for (index, (code, detail, retry_after)) in reasons.iter().enumerate() {
        if index > 0 {
            output.push(b',');
        }
        write_reason(output, code, detail, *retry_after);
    }
    output.extend_from_slice(b"]}\n");
}

/// The ends of lines refused for one reason with a constant detail (the usual refusals:
/// `no_opt_in`, `opted_out`, `duplicate`), each written once per chunk and then copied.
#[derive(Default)]
struct RefusalTails {
    /// By the code and the detail's address and length (a constant's place names its text).
    written: Vec<(TailKey, Vec<u8>)>,
}

type TailKey = (&'static str, usize, usize);

impl RefusalTails {
    fn write(&mut self, output: &mut Vec<u8>, code: &'static str, detail: &'static str) {
        let key = (code, detail.as_ptr().addr(), detail.len());
        if let Some((_, tail)) = self.written.iter().find(|(known, _)| *known == key) {
            output.extend_from_slice(tail);
            return;
        }
        let mut tail = Vec::new();
        write_refusal(&mut tail, &[(code, detail, None)]);
        output.extend_from_slice(&tail);
        self.written.push((key, tail));
    }
}

/// A reason as `ReasonView` serializes it.
fn write_reason(output: &mut Vec<u8>, code: &str, detail: &str, retry_after: Option<jiff::Timestamp>) {
    output.extend_from_slice(b"{\"code\":");
    write_string(output, code);
    output.extend_from_slice(b",\"detail\":");
    write_string(output, detail);
    if let Some(retry_after) = retry_after {
        output.extend_from_slice(b",\"retry_after\":");
        serde_json::to_writer(&mut *output, &retry_after).expect("a time serializes");
    }
    output.push(b'}');
}

/// A JSON string: as it is when it needs no escape (the usual case), else through serde_json.
fn write_string(output: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|byte| (b' '..=b'~').contains(&byte) && byte != b'"' && byte != b'\\') {
        output.push(b'"');
        output.extend_from_slice(text.as_bytes());
        output.push(b'"');
    } else {
        serde_json::to_writer(&mut *output, text).expect("a string serializes");
    }
}

/// A number in decimal.
fn write_number(output: &mut Vec<u8>, mut number: u64) {
    let mut digits = [0_u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    output.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use optin_core::decision::ReasonView;

    use super::*;
    use crate::routes::batch::BatchDecisionView;

    fn written(answer: &Answer<'_>) -> serde_json::Value {
        let mut output = Vec::new();
        answer.write(&mut output, &mut RefusalTails::default());
        assert_eq!(output.iter().filter(|byte| **byte == b'\n').count(), 1, "one line");
        assert!(output.ends_with(b"\n"));
        serde_json::from_slice(&output).expect("the line is JSON")
    }

    #[test]
    fn answers_have_the_documented_shape() {
        let decided = AudienceDecision {
            phone: PhoneNumber::from_e164("+14155552671"),
            decision: optin_core::decision::Decision { reasons: vec![Reason::NoOptIn] },
        };
        let answer = written(&Answer::decided(3, "+1 415 555 2671", &decided));
        let view = BatchDecisionView {
            line: 3,
            phone: Some("+14155552671".to_owned()),
            allowed: false,
            reasons: vec![ReasonView::from(&Reason::NoOptIn)],
        };
        assert_eq!(answer, serde_json::to_value(view).unwrap());
        let invalid = Answer { line: 4, phone: None, outcome: Outcome::Invalid("invalid_line", "not JSON") };
        let expected = serde_json::json!({"line": 4, "allowed": false, "reasons": [{"code": "invalid_line", "detail": "not JSON"}]});
        assert_eq!(written(&invalid), expected);
    }

    #[test]
    fn refusals_written_again_from_the_chunk_cache_are_the_same() {
        let refusals = [Reason::NoOptIn, Reason::OptedOut, Reason::Duplicate, Reason::NoOptIn, Reason::OptedOut];
        let mut tails = RefusalTails::default();
        for (line, reason) in refusals.iter().enumerate() {
            let decided = AudienceDecision {
                phone: PhoneNumber::from_e164("+14155552671"),
                decision: optin_core::decision::Decision { reasons: vec![reason.clone()] },
            };
            let mut output = Vec::new();
            Answer::decided(line as u64, "x", &decided).write(&mut output, &mut tails);
            let view = BatchDecisionView {
                line: line as u64,
                phone: Some("+14155552671".to_owned()),
                allowed: false,
                reasons: vec![ReasonView::from(reason)],
            };
            let mut expected = serde_json::to_vec(&view).unwrap();
            expected.push(b'\n');
            assert_eq!(String::from_utf8(output).unwrap(), String::from_utf8(expected).unwrap(), "byte for byte");
        }
        assert_eq!(tails.written.len(), 3, "one per reason");
    }

    #[test]
    fn every_reason_and_odd_text_are_written_as_serde_would() {
        let at = "2026-06-10T18:00:00Z".parse().unwrap();
        let reasons = vec![
            Reason::OptedOut,
            Reason::UnknownCategory("off\"ers\\ \u{e9}\n".to_owned()),
            Reason::QuietHours { window: "08:00-21:00".to_owned(), retry_after: Some(at) },
            Reason::FrequencyCap { max: 3, retry_after: None },
            Reason::Duplicate,
        ];
        let decided = AudienceDecision { phone: None, decision: optin_core::decision::Decision { reasons } };
        for (line, given) in [(1, "12"), (u64::MAX, "x\"y\\z\u{1}\u{7f}\u{e9}"), (0, "")] {
            let view = BatchDecisionView {
                line,
                phone: Some(given.to_owned()),
                allowed: false,
                reasons: decided.decision.reasons.iter().map(ReasonView::from).collect(),
            };
            assert_eq!(written(&Answer::decided(line, given, &decided)), serde_json::to_value(view).unwrap());
        }
        let allowed = AudienceDecision {
            phone: PhoneNumber::from_e164("+447400123456"),
            decision: optin_core::decision::Decision { reasons: vec![] },
        };
        let expected = serde_json::json!({"line": 10, "phone": "+447400123456", "allowed": true, "reasons": []});
        assert_eq!(written(&Answer::decided(10, "07400 123456", &allowed)), expected);
    }
}
