//! An import's good rows, put in phone-number order before anything is written.
//!
//! Why: each imported row updates three B-trees keyed by the number (the contact's state, the
//! events-by-contact index, the dedupe keys, which start with the number). Written in file order,
//! every row dirties pages all over those trees, and every commit rewrites each of them into the
//! WAL: at a million contacts about three random pages per row, which made the import I/O-bound
//! (3,400 rows/s). Written in number order, consecutive rows share pages, and a commit writes each
//! page once for the dozens of rows on it.
//!
//! How: rows (their raw fields, not the checked event: re-checking costs less than serializing an
//! event, and runs beside the writer) are kept in memory up to [`RUN_BYTES`]; a full run is sorted
//! and spilled to an anonymous temporary file (deleted when closed, in `TMPDIR`). Reading merges
//! the runs (or sorts the only one, which never touches the disk). Memory stays bounded whatever
//! the file's size: one run, plus a read buffer per spilled run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use super::csv::RawRow;

/// Raw row bytes kept in memory before a run is spilled (a million web-form rows are ~180 MB).
const RUN_BYTES: usize = 64 * 1024 * 1024;
/// Read buffer per spilled run while merging.
const RUN_READ_BUFFER: usize = 1024 * 1024;

/// A row's place in the current run: its sort key and where its fields are.
#[derive(Debug, Clone, Copy)]
struct Entry {
    phone: u64,
    row: u64,
    start: usize,
    end: usize,
}

/// Rows pushed in any order, read back ordered by (phone number, row number).
pub(super) struct SortedRows {
    entries: Vec<Entry>,
    /// The current run's rows, each as its fields (`u32` length, then the bytes).
    bytes: Vec<u8>,
    runs: Vec<File>,
    run_bytes: usize,
}

impl SortedRows {
    pub(super) fn new() -> SortedRows {
        SortedRows::with_run_bytes(RUN_BYTES)
    }

    fn with_run_bytes(run_bytes: usize) -> SortedRows {
        SortedRows { entries: Vec::new(), bytes: Vec::new(), runs: Vec::new(), run_bytes }
    }

    /// Rows pushed so far.
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.runs.is_empty()
    }

    pub(super) fn push(&mut self, phone: u64, row: &RawRow) -> io::Result<()> {
        let start = self.bytes.len();
        for field in row.fields() {
            self.bytes.extend_from_slice(&field_len(field)?.to_le_bytes());
            self.bytes.extend_from_slice(field);
        }
        self.entries.push(Entry { phone, row: row.number, start, end: self.bytes.len() });
        if self.bytes.len() >= self.run_bytes {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the current run and writes it to a temporary file: phone, row, length, fields.
    fn spill(&mut self) -> io::Result<()> {
        self.entries.sort_unstable_by_key(|entry| (entry.phone, entry.row));
        let mut file = BufWriter::with_capacity(RUN_READ_BUFFER, tempfile::tempfile()?);
        for entry in &self.entries {
            let fields = &self.bytes[entry.start..entry.end];
            file.write_all(&entry.phone.to_le_bytes())?;
            file.write_all(&entry.row.to_le_bytes())?;
            file.write_all(&field_len(fields)?.to_le_bytes())?;
            file.write_all(fields)?;
        }
        let mut file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        self.runs.push(file);
        self.entries.clear();
        self.bytes.clear();
        Ok(())
    }

    /// The rows in order. With spilled runs, the last run is spilled too and all are merged.
    pub(super) fn into_reader(mut self) -> io::Result<SortedReader> {
        if self.runs.is_empty() {
            self.entries.sort_unstable_by_key(|entry| (entry.phone, entry.row));
            self.entries.reverse();
            return Ok(SortedReader(Source::InMemory { entries: self.entries, bytes: self.bytes }));
        }
        if !self.entries.is_empty() {
            self.spill()?;
        }
        let mut runs = Vec::with_capacity(self.runs.len());
        let mut heads = BinaryHeap::with_capacity(self.runs.len());
        for (index, file) in self.runs.into_iter().enumerate() {
            let mut run = Run { reader: BufReader::with_capacity(RUN_READ_BUFFER, file), fields: Vec::new() };
            if let Some(key) = run.advance()? {
                heads.push(Reverse((key, index)));
            }
            runs.push(run);
        }
        Ok(SortedReader(Source::Merged { runs, heads }))
    }
}

/// Reads the sorted rows a chunk at a time.
pub(super) struct SortedReader(Source);

enum Source {
    /// The only run, never spilled: entries sorted in reverse (popped from the end).
    InMemory { entries: Vec<Entry>, bytes: Vec<u8> },
    /// Spilled runs, and the heap of their next rows' keys.
    Merged { runs: Vec<Run>, heads: BinaryHeap<Reverse<((u64, u64), usize)>> },
}

impl SortedReader {
    /// Fills `rows` from the start (their buffers are reused) and sets `phones` to their numbers;
    /// how many were filled, 0 at the end.
    pub(super) fn next_chunk(&mut self, rows: &mut [RawRow], phones: &mut Vec<u64>) -> io::Result<usize> {
        phones.clear();
        for (count, row) in rows.iter_mut().enumerate() {
            match self.next_row(row)? {
                Some(phone) => phones.push(phone),
                None => return Ok(count),
            }
        }
        Ok(rows.len())
    }

    /// The next row, into `row`; its number.
    fn next_row(&mut self, row: &mut RawRow) -> io::Result<Option<u64>> {
        match &mut self.0 {
            Source::InMemory { entries, bytes } => Ok(entries.pop().map(|entry| {
                row.refill(entry.row, Fields(&bytes[entry.start..entry.end]));
                entry.phone
            })),
            Source::Merged { runs, heads } => {
                let Some(Reverse(((phone, number), index))) = heads.pop() else {
                    return Ok(None);
                };
                let run = &mut runs[index];
                row.refill(number, Fields(&run.fields));
                if let Some(key) = run.advance()? {
                    heads.push(Reverse((key, index)));
                }
                Ok(Some(phone))
            }
        }
    }
}

/// A spilled run being merged: its reader and its current row's fields.
struct Run {
    reader: BufReader<File>,
    fields: Vec<u8>,
}

impl Run {
    /// Reads the next row into `fields`; its (phone, row) key, `None` at the end of the run.
    fn advance(&mut self) -> io::Result<Option<(u64, u64)>> {
        let mut head = [0u8; 20];
        match self.reader.read_exact(&mut head) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error),
        }
        let [phone, row] =
            [&head[0..8], &head[8..16]].map(|bytes| u64::from_le_bytes(bytes.try_into().expect("8 bytes")));
        let len = u32::from_le_bytes(head[16..20].try_into().expect("4 bytes")) as usize;
        self.fields.resize(len, 0);
        self.reader.read_exact(&mut self.fields)?;
        Ok(Some((phone, row)))
    }
}

/// A row's encoded fields, decoded one by one.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let (field, rest) = rest.split_at_checked(u32::from_le_bytes(*len) as usize)?;
        self.0 = rest;
        Some(field)
    }
}

fn field_len(field: &[u8]) -> io::Result<u32> {
    u32::try_from(field.len()).map_err(|_| io::Error::other("a row is longer than 4 GiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows read back, each as (row number, fields); checks that each came with its number.
    fn texts(reader: &mut SortedReader) -> Vec<(u64, Vec<String>)> {
        let (mut rows, mut phones) = (vec![RawRow::default(); 3], Vec::new());
        let mut found = Vec::new();
        loop {
            let count = reader.next_chunk(&mut rows, &mut phones).unwrap();
            assert_eq!(phones.len(), count);
            if count == 0 {
                return found;
            }
            for (row, phone) in rows[..count].iter().zip(&phones) {
                let fields: Vec<String> = row.fields().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
                if let Some(first) = fields.first() {
                    assert_eq!(first, &format!("+{phone}"), "row {}", row.number);
                }
                found.push((row.number, fields));
            }
        }
    }

    fn sorted(run_bytes: usize, input: &[(u64, u64, Vec<&str>)]) -> (usize, Vec<(u64, Vec<String>)>) {
        let mut sorter = SortedRows::with_run_bytes(run_bytes);
        for (phone, number, fields) in input {
            sorter.push(*phone, &RawRow::from_fields(*number, fields.iter().map(|f| f.as_bytes()))).unwrap();
        }
        let runs = sorter.runs.len();
        (runs, texts(&mut sorter.into_reader().unwrap()))
    }

    #[test]
    fn rows_come_back_by_number_then_row_with_their_fields_intact() {
        let input = vec![
            (30, 1, vec!["+30", "a,b", ""]),
            (10, 2, vec!["+10", "x\ny"]),
            (30, 3, vec!["+30", "second"]),
            (20, 4, vec![]),
            (10, 5, vec!["+10", "\u{feff}é"]),
        ];
        let expected: Vec<(u64, Vec<String>)> = [2, 5, 4, 1, 3]
            .iter()
            .map(|n| {
                let (_, number, fields) = input.iter().find(|(_, number, _)| number == n).unwrap();
                (*number, fields.iter().map(|f| f.to_string()).collect())
            })
            .collect();
        for run_bytes in [1, 10, 40, RUN_BYTES] {
            let (runs, found) = sorted(run_bytes, &input);
            assert_eq!(found, expected, "runs of {run_bytes} bytes");
            assert_eq!(runs > 0, run_bytes < RUN_BYTES, "runs of {run_bytes} bytes spill: {runs}");
        }
    }

    #[test]
    fn nothing_pushed_reads_nothing() {
        assert_eq!(sorted(RUN_BYTES, &[]), (0, vec![]));
    }

    proptest::proptest! {
        #[test]
        fn any_rows_in_any_run_size_come_back_sorted_and_whole(
            phones in proptest::collection::vec(0u64..20, 0..200),
            run_bytes in 1usize..400,
        ) {
            let input: Vec<(u64, u64, Vec<String>)> = phones.iter().enumerate()
                .map(|(i, phone)| (*phone, i as u64 + 1, vec![format!("+{phone}"), "x".repeat(i % 7)]))
                .collect();
            let borrowed: Vec<(u64, u64, Vec<&str>)> =
                input.iter().map(|(p, n, f)| (*p, *n, f.iter().map(String::as_str).collect())).collect();
            let (_, found) = sorted(run_bytes, &borrowed);
            let mut expected: Vec<(u64, u64, Vec<String>)> = input.clone();
            expected.sort_by_key(|(phone, number, _)| (*phone, *number));
            let expected: Vec<(u64, Vec<String>)> = expected.into_iter().map(|(_, n, f)| (n, f)).collect();
            proptest::prop_assert_eq!(found, expected);
        }
    }
}
