//! The common line read without serde: `{"phone":"…","category":"…"}`, keys in any order, an
//! optional `"country":"…"`, JSON whitespace between tokens, and strings of printable ASCII
//! without escapes. That is what clients write for an audience, and reading it by hand costs a
//! fraction of serde's generic path.
//!
//! Anything else (escapes, other keys, other kinds of values, non-ASCII text, a key given twice,
//! malformed JSON) is not read here: [`read_common_line`] returns `None` and the line goes through
//! serde, which gives the same value for the lines read here and its usual error for the others.

use std::borrow::Cow;

use super::BatchLine;

/// The line, if it has the common shape (a line that is not UTF-8 never has it).
pub(super) fn read_common_line(line: &str) -> Option<BatchLine<'_>> {
    let mut cursor = Cursor { text: line, at: 0 };
    cursor.expect(b'{')?;
    let (mut phone, mut country, mut category) = (None, None, None);
    loop {
        let key = cursor.string()?;
        cursor.expect(b':')?;
        let value = cursor.string()?;
        let field = match key {
            "phone" => &mut phone,
            "country" => &mut country,
            "category" => &mut category,
            _ => return None,
        };
        if field.replace(value).is_some() {
            return None;
        }
        cursor.skip_whitespace();
        match cursor.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    cursor.skip_whitespace();
    if cursor.at != line.len() {
        return None;
    }
    Some(BatchLine {
        phone: Cow::Borrowed(phone?),
        country: country.map(Cow::Borrowed),
        category: category.map(Cow::Borrowed),
        template: None,
        message_type: None,
    })
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.as_bytes().get(self.at) {
            self.at += 1;
        }
    }

    fn next(&mut self) -> Option<u8> {
        let byte = *self.text.as_bytes().get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    /// Skips whitespace, then `byte`.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.next()? == byte).then_some(())
    }

    /// A string of printable ASCII without escapes (its text without the quotes).
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match self.next()? {
                // Both ends are ASCII, so they are character boundaries.
                b'"' => return Some(&self.text[start..self.at - 1]),
                b'\\' => return None,
                b' '..=b'~' => {}
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde reads from the line (as comparable text), or its error.
    fn by_serde(line: &str) -> Result<String, String> {
        serde_json::from_str::<BatchLine<'_>>(line).map(|line| describe(&line)).map_err(|error| error.to_string())
    }

    fn describe(line: &BatchLine<'_>) -> String {
        let template = line.template.as_ref().map(|t| (t.name.as_ref(), t.language.as_ref()));
        format!("{:?} {:?} {:?} {template:?} {}", line.phone, line.country, line.category, line.message_type.is_some())
    }

    #[test]
    fn common_lines_are_read_as_serde_reads_them() {
        for line in [
            r#"{"phone":"+14155552671","category":"offers"}"#,
            r#"{"category":"offers","phone":"+14155552671"}"#,
            r#"{"phone": "(415) 555-2671", "country": "US", "category": "offers"}"#,
            " \t{ \"phone\" : \"12\" ,\"category\":\"nope\" } \t",
            r#"{"phone":"","category":""}"#,
            r#"{"phone":"+14155552671"}"#,
        ] {
            let read = read_common_line(line).unwrap_or_else(|| panic!("not read: {line}"));
            assert_eq!(Ok(describe(&read)), by_serde(line), "{line}");
        }
    }

    #[test]
    fn other_lines_are_left_to_serde() {
        for line in [
            "",
            "{}",
            "not json",
            "{not json",
            r#"{"phone":"+14155552671","category":"offers"} trailing"#,
            r#"{"phone":"+14155552671","category":"offers"}}"#,
            r#"{"phone":"+14155552671","category":"offers""#,
            r#"{"phone":"+14155552671","category":"offers",}"#,
            r#"{"phone":"+14155552671" "category":"offers"}"#,
            r#"{"category":"offers"}"#,
            r#"{"country":"US"}"#,
            r#"{"phone":"+14155552671","category":"offers","extra":1}"#,
            r#"{"phone":"+14155552671","category":"offers","extra":"x"}"#,
            r#"{"phone":"+14155552671","phone":"+14155552672","category":"offers"}"#,
            r#"{"phone":"+1415555\u0032671","category":"offers"}"#,
            r#"{"phone":"+14155552671","category":"off\"ers"}"#,
            r#"{"ph\u006fne":"+14155552671","category":"offers"}"#,
            r#"{"phone":"+14155552671","category":null}"#,
            r#"{"phone":"+14155552671","country":null,"category":"offers"}"#,
            r#"{"phone":14155552671,"category":"offers"}"#,
            r#"{"phone":"+14155552671","template":{"name":"a","language":"en"}}"#,
            r#"{"phone":"+14155552671","message_type":"text"}"#,
            "{\"phone\":\"+1415\u{e9}5552671\",\"category\":\"offers\"}",
            "{\"phone\":\"+1415\t5552671\",\"category\":\"offers\"}",
            r#"["phone","category"]"#,
        ] {
            assert!(read_common_line(line).is_none(), "read by hand: {line}");
        }
    }

    #[test]
    fn hostile_text_is_left_to_serde() {
        let long = format!(r#"{{"phone":"{}","category":"offers"}}"#, "9".repeat(100_000));
        assert!(read_common_line(&long).is_some_and(|line| line.phone.len() == 100_000));
        let line = r#"{"phone":"+14155552671","category":"offers"}"#;
        for cut in 0..line.len() {
            assert!(read_common_line(&line[..cut]).is_none(), "{cut}");
        }
        assert!(read_common_line(&"\0".repeat(64)).is_none());
        assert!(read_common_line("{\"phone\":\"+1415\u{7f}5552671\",\"category\":\"offers\"}").is_none());
    }
}
