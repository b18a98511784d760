//! CSV rows from bytes as they arrive (a file read in blocks, a request body in frames), with
//! bounds: no I/O here, so the CLI and the HTTP API read the same way.
//!
//! `csv_core` does the parsing (quotes, quoted newlines, `\r\n`, a UTF-8 BOM, blank lines).
//! Around it, a row longer than [`MAX_ROW_BYTES`] or with more than [`MAX_FIELDS`] fields is
//! skipped as it arrives rather than kept, and comes out as a row marked `too_long`: a hostile
//! file costs a bounded amount of memory per row. Fields are bytes; whether they are UTF-8 is
//! the caller's question.

use csv_core::ReadRecordResult;

/// The longest row kept (its fields' bytes); longer ones are reported, not read.
pub const MAX_ROW_BYTES: usize = 64 * 1024;
/// The most fields a row may have.
pub const MAX_FIELDS: usize = 256;

/// One row: its number (the header is row 0, the first data row 1) and its fields.
#[derive(Debug, Clone, Default)]
pub struct RawRow {
    pub number: u64,
    /// The row exceeded [`MAX_ROW_BYTES`] or [`MAX_FIELDS`]; its fields were dropped.
    pub too_long: bool,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// How much of `bytes` and `ends` holds this row (the rest is spare room).
    bytes_len: usize,
    ends_len: usize,
}

impl RawRow {
    pub fn len(&self) -> usize {
        self.ends_len
    }

    pub fn is_empty(&self) -> bool {
        self.ends_len == 0
    }

    pub fn field(&self, index: usize) -> Option<&[u8]> {
        if index >= self.ends_len {
            return None;
        }
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        self.bytes.get(start..self.ends[index])
    }

    pub fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.ends_len).filter_map(|index| self.field(index))
    }

    fn clear(&mut self) {
        self.too_long = false;
        self.bytes_len = 0;
        self.ends_len = 0;
    }

    /// Replaces this row with `fields`, reusing its buffers.
    pub(crate) fn refill<'a>(&mut self, number: u64, fields: impl IntoIterator<Item = &'a [u8]>) {
        self.number = number;
        self.too_long = false;
        let (mut bytes_len, mut ends_len) = (0, 0);
        for field in fields {
            let end = bytes_len + field.len();
            if self.bytes.len() < end {
                self.bytes.resize(end, 0);
            }
            self.bytes[bytes_len..end].copy_from_slice(field);
            bytes_len = end;
            if self.ends.len() == ends_len {
                self.ends.push(0);
            }
            self.ends[ends_len] = end;
            ends_len += 1;
        }
        (self.bytes_len, self.ends_len) = (bytes_len, ends_len);
    }

    /// Builds a row from fields (tests, callers that already split a line).
    pub fn from_fields<'a>(number: u64, fields: impl IntoIterator<Item = &'a [u8]>) -> RawRow {
        let mut row = RawRow { number, ..RawRow::default() };
        for field in fields {
            row.bytes.extend_from_slice(field);
            row.ends.push(row.bytes.len());
        }
        row.bytes_len = row.bytes.len();
        row.ends_len = row.ends.len();
        row
    }
}

/// What [`CsvRows::next_row`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRow {
    Row,
    /// Feed more bytes (or call [`CsvRows::finish`] at the end of the input).
    NeedInput,
    End,
}

/// The row reader: feed it bytes, take rows.
pub struct CsvRows {
    core: csv_core::Reader,
    input: Vec<u8>,
    consumed: usize,
    finished: bool,
    current: RawRow,
    rows: u64,
    /// Whether the start of the input was checked for a UTF-8 BOM (which may come in pieces).
    bom_checked: bool,
}

impl Default for CsvRows {
    fn default() -> Self {
        CsvRows::new()
    }
}

impl CsvRows {
    pub fn new() -> CsvRows {
        CsvRows {
            core: csv_core::Reader::new(),
            input: Vec::new(),
            consumed: 0,
            finished: false,
            current: RawRow::default(),
            rows: 0,
            bom_checked: false,
        }
    }

    /// Adds input after what was fed before.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.drain(..self.consumed);
        self.consumed = 0;
        self.input.extend_from_slice(bytes);
    }

    /// No more input will come: the last row may end without a newline.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// How many bytes were fed and not yet parsed.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.consumed
    }

    /// Parses the next row into `row` (whose buffers are reused).
    pub fn next_row(&mut self, row: &mut RawRow) -> NextRow {
        if !self.bom_checked {
            if self.input.len() < 3 && !self.finished {
                return NextRow::NeedInput;
            }
            if self.input.starts_with(b"\xef\xbb\xbf") {
                self.consumed = 3;
            }
            self.bom_checked = true;
        }
        loop {
            let input = &self.input[self.consumed..];
            if input.is_empty() && !self.finished {
                return NextRow::NeedInput;
            }
            let current = &mut self.current;
            if current.bytes.len() == current.bytes_len {
                let grown = (current.bytes.len() * 2).clamp(256, MAX_ROW_BYTES);
                current.bytes.resize(grown.max(current.bytes_len + 1), 0);
            }
            if current.ends.len() == current.ends_len {
                current.ends.resize((current.ends.len() * 2).clamp(16, MAX_FIELDS + 1), 0);
            }
            let (result, read, written, ended) = self.core.read_record(
                input,
                &mut current.bytes[current.bytes_len..],
                &mut current.ends[current.ends_len..],
            );
            self.consumed += read;
            current.bytes_len += written;
            current.ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if current.bytes_len >= MAX_ROW_BYTES => current.drop_fields(),
                ReadRecordResult::OutputEndsFull if current.ends_len > MAX_FIELDS => current.drop_fields(),
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => {
                    if current.too_long || current.ends_len > MAX_FIELDS {
                        current.drop_fields();
                    }
                    current.number = self.rows;
                    self.rows += 1;
                    std::mem::swap(row, current);
                    self.current.clear();
                    return NextRow::Row;
                }
                ReadRecordResult::End => return NextRow::End,
            }
        }
    }
}

impl RawRow {
    /// Forgets the fields read so far (the row is too long); the rest of it is skipped.
    fn drop_fields(&mut self) {
        self.too_long = true;
        self.bytes_len = 0;
        self.ends_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(input: &[u8], piece: usize) -> Vec<(bool, Vec<Vec<u8>>)> {
        let mut reader = CsvRows::new();
        let mut pieces = input.chunks(piece.max(1));
        let mut row = RawRow::default();
        let mut found = Vec::new();
        loop {
            match reader.next_row(&mut row) {
                NextRow::Row => found.push((row.too_long, row.fields().map(<[u8]>::to_vec).collect())),
                NextRow::NeedInput => match pieces.next() {
                    Some(bytes) => reader.feed(bytes),
                    None => reader.finish(),
                },
                NextRow::End => return found,
            }
        }
    }

    fn texts(found: &[(bool, Vec<Vec<u8>>)]) -> Vec<Vec<String>> {
        found.iter().map(|(_, f)| f.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()).collect()
    }

    #[test]
    fn quotes_crlf_bom_and_a_missing_final_newline_are_read() {
        let input = "\u{feff}phone,notes\r\n+1415,\"a, \"\"b\"\"\nc\"\r\n\r\n+1416,x";
        for piece in [1, 2, 3, 7, 1000] {
            let found = rows(input.as_bytes(), piece);
            assert_eq!(
                texts(&found),
                vec![vec!["phone", "notes"], vec!["+1415", "a, \"b\"\nc"], vec!["+1416", "x"]],
                "{piece}"
            );
        }
    }

    #[test]
    fn a_huge_row_is_reported_without_being_kept() {
        let mut input = b"a,b\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_ROW_BYTES * 3));
        input.extend_from_slice(b",y\nok,1\n");
        let found = rows(&input, 8192);
        assert_eq!(found.len(), 3);
        assert!(found[1].0 && found[1].1.is_empty());
        assert_eq!(texts(&found[2..]), vec![vec!["ok", "1"]]);
    }

    #[test]
    fn a_row_with_too_many_fields_is_reported() {
        let mut input = b"a\n".to_vec();
        input.extend(std::iter::repeat_n(b',', MAX_FIELDS + 10));
        input.extend_from_slice(b"\nz\n");
        let found = rows(&input, 100);
        assert!(found[1].0);
        assert_eq!(texts(&found[2..]), vec![vec!["z"]]);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_in_any_pieces_give_bounded_rows(input in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), piece in 1usize..300) {
            let found = rows(&input, piece);
            for (_, fields) in &found {
                proptest::prop_assert!(fields.len() <= MAX_FIELDS);
            }
            // The same rows whatever the pieces.
            proptest::prop_assert_eq!(texts(&found), texts(&rows(&input, 4096)));
        }
    }
}
