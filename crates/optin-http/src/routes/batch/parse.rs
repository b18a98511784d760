//! Reading a chunk's lines into requests. A [`ParsedChunk`] owns its text and refers to it by
//! ranges, so it can move from the task that reads the body to the one that decides and on to
//! the one that writes the answers.

use std::borrow::Cow;
use std::ops::Range;

use optin_core::phone::Region;
use optin_store::audience::{AudienceMessage, AudienceRequest};

use super::common::read_common_line;
use super::lines::Line;
use super::{BatchLine, MAX_DETAIL_CHARS, MAX_LINE_BYTES};
use crate::extract::truncate_chars;

/// A chunk of lines, each read as a request or found invalid.
pub(super) struct ParsedChunk {
    /// The chunk's text when it is all UTF-8 (the usual case: fields are ranges of it, checked
    /// once), else empty (fields are copies).
    text: String,
    pub(super) lines: Vec<Line>,
    items: Vec<Item>,
}

/// What a line asks, or why it cannot be decided (borrowed from its chunk).
pub(super) enum Parsed<'a> {
    Request(AudienceRequest<'a>),
    Invalid { phone: Option<&'a str>, code: &'static str, detail: &'a str },
}

/// A line's [`Parsed`], with its text as ranges of the chunk's text.
enum Item {
    Request { phone: Field, region: Option<Region>, message: MessageFields },
    Invalid { phone: Option<Field>, code: &'static str, detail: String },
}

enum MessageFields {
    Category(Field),
    Template { name: Field, language: Field },
}

/// A string of the line: where it is in the chunk's text, or its own text when JSON escapes
/// made it differ from the bytes sent.
enum Field {
    In(Range<usize>),
    Owned(String),
}

impl ParsedChunk {
    /// Reads the lines of `text` (as found by the line reader).
    pub(super) fn parse(text: Vec<u8>, lines: Vec<Line>) -> ParsedChunk {
        match String::from_utf8(text) {
            Ok(text) => {
                let items = lines
                    .iter()
                    .map(|line| Item::of(Some(&text), parse_line(text.as_bytes(), Some(&text), line)))
                    .collect();
                ParsedChunk { text, lines, items }
            }
            Err(error) => {
                let text = error.as_bytes();
                let items = lines.iter().map(|line| Item::of(None, parse_line(text, None, line))).collect();
                ParsedChunk { text: String::new(), lines, items }
            }
        }
    }

    /// Every line's request or problem, in order.
    pub(super) fn parsed(&self) -> impl Iterator<Item = Parsed<'_>> {
        self.items.iter().map(|item| item.resolve(&self.text))
    }
}

impl Item {
    /// The line's item; its fields are ranges of `text` if given (the text it was read from).
    fn of(text: Option<&str>, body: Result<BatchLine<'_>, Cow<'static, str>>) -> Item {
        let invalid = |phone: Option<&str>, code, detail: &str| Item::Invalid {
            phone: phone.map(|phone| Field::of(text, phone)),
            code,
            detail: detail.to_owned(),
        };
        let line = match body {
            Ok(line) => line,
            Err(detail) => return invalid(None, "invalid_line", &detail),
        };
        let phone = Some(line.phone.as_ref());
        let message = match (&line.category, &line.template, &line.message_type) {
            (Some(category), None, None) => MessageFields::Category(Field::of(text, category)),
            (None, Some(template), None) => MessageFields::Template {
                name: Field::of(text, &template.name),
                language: Field::of(text, &template.language),
            },
            (_, _, Some(_)) => {
                return invalid(
                    phone,
                    "invalid_line",
                    "message_type is not accepted: batches are for business-initiated messages (a category or a template)",
                );
            }
            _ => {
                return invalid(
                    phone,
                    "invalid_line",
                    "give exactly one of `category` and `template` ({name, language})",
                );
            }
        };
        let region = match line.country.as_deref().map(Region::parse).transpose() {
            Ok(region) => region,
            Err(error) => return invalid(phone, error.code(), &error.to_string()),
        };
        Item::Request { phone: Field::of(text, &line.phone), region, message }
    }

    fn resolve<'a>(&'a self, text: &'a str) -> Parsed<'a> {
        match self {
            Item::Request { phone, region, message } => {
                let message = match message {
                    MessageFields::Category(name) => AudienceMessage::Category(name.get(text)),
                    MessageFields::Template { name, language } => {
                        AudienceMessage::Template { name: name.get(text), language: language.get(text) }
                    }
                };
                Parsed::Request(AudienceRequest { phone: phone.get(text), region: *region, message })
            }
            Item::Invalid { phone, code, detail } => {
                Parsed::Invalid { phone: phone.as_ref().map(|phone| phone.get(text)), code, detail }
            }
        }
    }
}

impl Field {
    /// The field for `value`: a range of `text` when it is a slice of it (serde borrows strings
    /// without escapes), else a copy.
    fn of(text: Option<&str>, value: &str) -> Field {
        if let Some(text) = text {
            let start = value.as_ptr().addr().wrapping_sub(text.as_ptr().addr());
            if start <= text.len() && value.len() <= text.len() - start {
                return Field::In(start..start + value.len());
            }
        }
        Field::Owned(value.to_owned())
    }

    fn get<'a>(&'a self, text: &'a str) -> &'a str {
        match self {
            Field::In(range) => &text[range.clone()],
            Field::Owned(value) => value,
        }
    }
}

/// The line's request: read by hand when it has the common shape, else by serde (whose error,
/// shortened, is the detail of `invalid_line`). `utf8` is the chunk's text when it is all UTF-8.
fn parse_line<'t>(text: &'t [u8], utf8: Option<&'t str>, line: &Line) -> Result<BatchLine<'t>, Cow<'static, str>> {
    let Some(range) = line.text.clone() else {
        return Err(format!("the line is longer than {MAX_LINE_BYTES} bytes").into());
    };
    // Lines start and end next to a newline (ASCII), so the range is on character boundaries.
    if let Some(line) = utf8.and_then(|utf8| read_common_line(&utf8[range.clone()])) {
        return Ok(line);
    }
    serde_json::from_slice(&text[range]).map_err(|error| truncate_chars(error.to_string(), MAX_DETAIL_CHARS).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `body` as one chunk (lines split on `\n`, numbered from 1).
    fn parse(body: &str) -> ParsedChunk {
        let mut lines = Vec::new();
        let mut start = 0;
        for (index, piece) in body.split('\n').enumerate() {
            lines.push(Line { number: index as u64 + 1, text: Some(start..start + piece.len()) });
            start += piece.len() + 1;
        }
        ParsedChunk::parse(body.as_bytes().to_vec(), lines)
    }

    #[test]
    fn lines_become_requests_or_problems_with_their_text() {
        let chunk = parse(concat!(
            r#"{"phone":"+14155552671","category":"offers"}"#,
            "\n",
            r#"{"phone":"+1 415\u0020555 2671","country":"US","template":{"name":"spring_sale","language":"en_US"}}"#,
            "\n",
            r#"{"phone":"12","message_type":"text"}"#,
            "\n",
            r#"{"phone":"12","category":"offers","country":"XX"}"#,
            "\n",
            "{not json",
        ));
        let parsed: Vec<Parsed<'_>> = chunk.parsed().collect();
        let Parsed::Request(first) = parsed[0] else { panic!("a request") };
        assert_eq!(
            (first.phone, first.region, first.message),
            ("+14155552671", None, AudienceMessage::Category("offers"))
        );
        let Parsed::Request(second) = parsed[1] else { panic!("a request") };
        assert_eq!(second.phone, "+1 415 555 2671", "escapes are read");
        assert_eq!(second.region, Some(Region::parse("US").unwrap()));
        assert_eq!(second.message, AudienceMessage::Template { name: "spring_sale", language: "en_US" });
        let Parsed::Invalid { phone, code, detail } = parsed[2] else { panic!("invalid") };
        assert_eq!((phone, code), (Some("12"), "invalid_line"));
        assert!(detail.contains("message_type"), "{detail}");
        let Parsed::Invalid { phone, code, .. } = parsed[3] else { panic!("invalid") };
        assert_eq!((phone, code), (Some("12"), "invalid_country"));
        let Parsed::Invalid { phone, code, detail } = parsed[4] else { panic!("invalid") };
        assert_eq!((phone, code), (None, "invalid_line"));
        assert!(detail.starts_with("key must be a string"), "serde's error: {detail}");
    }

    #[test]
    fn a_chunk_with_bad_utf8_still_reads_its_good_lines() {
        let mut body = br#"{"phone":"+14155552671","category":"offers"}"#.to_vec();
        let first = 0..body.len();
        body.extend_from_slice(b"\n{\"phone\":\"\xff\"}");
        let second = first.end + 1..body.len();
        let lines = vec![Line { number: 1, text: Some(first) }, Line { number: 2, text: Some(second) }];
        let chunk = ParsedChunk::parse(body, lines);
        let parsed: Vec<Parsed<'_>> = chunk.parsed().collect();
        let Parsed::Request(first) = parsed[0] else { panic!("a request") };
        assert_eq!((first.phone, first.message), ("+14155552671", AudienceMessage::Category("offers")));
        let Parsed::Invalid { phone, code, detail } = parsed[1] else { panic!("invalid") };
        assert_eq!((phone, code), (None, "invalid_line"));
        let by_serde = serde_json::from_slice::<BatchLine<'_>>(b"{\"phone\":\"\xff\"}").unwrap_err().to_string();
        assert_eq!(detail, by_serde, "serde's error");
    }

    #[test]
    fn over_long_lines_and_long_errors_are_reported_briefly() {
        let chunk = ParsedChunk::parse(b"x".to_vec(), vec![Line { number: 1, text: None }]);
        let Some(Parsed::Invalid { detail, .. }) = chunk.parsed().next() else { panic!("invalid") };
        assert_eq!(detail, format!("the line is longer than {MAX_LINE_BYTES} bytes"));
        let long = format!(r#"{{"phone":"+14155552671","{}":1}}"#, "é".repeat(1_000));
        let chunk = parse(&long);
        let Some(Parsed::Invalid { detail, .. }) = chunk.parsed().next() else { panic!("invalid") };
        assert_eq!(detail.chars().count(), MAX_DETAIL_CHARS + 1, "{detail}");
    }
}
