//! Splitting a streamed request body into lines, a chunk at a time, without holding more than a
//! chunk: the lines of a chunk stay in one buffer (answered by ranges), and a line longer than
//! the limit is skipped as it arrives rather than kept.

use std::ops::Range;

use axum::body::{BodyDataStream, Bytes};
use futures::{FutureExt, StreamExt};

/// One line of a chunk: its number in the body (from 1) and where its text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub(super) number: u64,
    /// The line's text in [`LineReader::text`] (without the newline), or `None` if it was longer
    /// than the limit.
    pub(super) text: Option<Range<usize>>,
}

pub(super) struct LineReader {
    body: BodyDataStream,
    max_line_bytes: usize,
    /// The current chunk's lines, then the start of the next line.
    buffer: Vec<u8>,
    line_start: usize,
    /// Where to go on looking for the end of the current line.
    search_from: usize,
    /// The current line is longer than the limit: its bytes are dropped as they arrive.
    skipping: bool,
    lines_read: u64,
    at_end: bool,
}

impl LineReader {
    pub(super) fn new(body: BodyDataStream, max_line_bytes: usize) -> LineReader {
        LineReader {
            body,
            max_line_bytes,
            buffer: Vec::new(),
            line_start: 0,
            search_from: 0,
            skipping: false,
            lines_read: 0,
            at_end: false,
        }
    }

    /// The text the last chunk's ranges point into.
    #[cfg(test)]
    fn text(&self) -> &[u8] {
        &self.buffer
    }

    /// Takes the text the last chunk's ranges point into (the start of the next line stays).
    pub(super) fn take_text(&mut self) -> Vec<u8> {
        let mut rest = Vec::with_capacity(self.buffer.capacity());
        rest.extend_from_slice(&self.buffer[self.line_start..]);
        let mut text = std::mem::replace(&mut self.buffer, rest);
        text.truncate(self.line_start);
        self.search_from -= self.line_start;
        self.line_start = 0;
        text
    }

    /// Reads the next chunk into `lines`: up to `max_lines` lines, fewer when the client has sent
    /// no more for now (so a slow client gets answers as it goes), none at the end of the body.
    /// Blank lines are skipped (but counted). A `\r` before the newline is dropped.
    pub(super) async fn read_chunk(&mut self, lines: &mut Vec<Line>, max_lines: usize) -> Result<(), axum::Error> {
        lines.clear();
        self.buffer.drain(..self.line_start);
        self.search_from -= self.line_start;
        self.line_start = 0;
        while lines.len() < max_lines {
            if let Some(offset) = memchr::memchr(b'\n', &self.buffer[self.search_from..]) {
                let end = self.search_from + offset;
                self.end_line(end, lines);
                self.line_start = end + 1;
                self.search_from = self.line_start;
                continue;
            }
            self.search_from = self.buffer.len();
            if self.skipping || self.buffer.len() - self.line_start > self.max_line_bytes {
                self.skipping = true;
                self.buffer.truncate(self.line_start);
                self.search_from = self.line_start;
            }
            if self.at_end {
                if self.skipping || self.line_start < self.buffer.len() {
                    self.end_line(self.buffer.len(), lines);
                    self.line_start = self.buffer.len();
                    self.search_from = self.line_start;
                }
                break;
            }
            let next = if lines.is_empty() { Some(self.body.next().await) } else { self.body.next().now_or_never() };
            match next {
                None => break,
                Some(Some(data)) => self.append(&data?),
                Some(None) => self.at_end = true,
            }
        }
        Ok(())
    }

    fn append(&mut self, data: &Bytes) {
        if !self.skipping {
            self.buffer.extend_from_slice(data);
            return;
        }
        // Only the end of the over-long line matters; keep what follows it.
        if let Some(offset) = memchr::memchr(b'\n', data) {
            self.buffer.extend_from_slice(&data[offset..]);
        }
    }

    /// Ends the current line at `end` (exclusive).
    fn end_line(&mut self, end: usize, lines: &mut Vec<Line>) {
        self.lines_read += 1;
        let number = self.lines_read;
        if std::mem::take(&mut self.skipping) || end - self.line_start > self.max_line_bytes {
            lines.push(Line { number, text: None });
            return;
        }
        let mut text = self.line_start..end;
        if self.buffer[text.clone()].ends_with(b"\r") {
            text.end -= 1;
        }
        if !self.buffer[text.clone()].iter().all(u8::is_ascii_whitespace) {
            lines.push(Line { number, text: Some(text) });
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    /// Reads a body sent in the given pieces, in chunks of `max_lines`, as (number, text) pairs.
    async fn read_all(pieces: &[&str], max_lines: usize) -> Vec<Vec<(u64, Option<String>)>> {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            pieces.iter().map(|p| Ok(Bytes::copy_from_slice(p.as_bytes()))).collect();
        let body = Body::from_stream(futures::stream::iter(pieces));
        let mut reader = LineReader::new(body.into_data_stream(), 8);
        let mut chunks = Vec::new();
        let mut lines = Vec::new();
        loop {
            reader.read_chunk(&mut lines, max_lines).await.unwrap();
            if lines.is_empty() {
                return chunks;
            }
            let text = |range: &Option<Range<usize>>| {
                range.clone().map(|r| String::from_utf8(reader.text()[r].to_vec()).unwrap())
            };
            chunks.push(lines.iter().map(|line| (line.number, text(&line.text))).collect());
        }
    }

    fn line(number: u64, text: &str) -> (u64, Option<String>) {
        (number, Some(text.to_owned()))
    }

    #[tokio::test]
    async fn lines_are_split_across_pieces_and_chunks() {
        let chunks = read_all(&["a\nbb", "b\r\n\n  \ncc", "c\nd"], 2).await;
        assert_eq!(chunks, [vec![line(1, "a"), line(2, "bbb")], vec![line(5, "ccc"), line(6, "d")]]);
    }

    #[tokio::test]
    async fn over_long_lines_are_reported_without_being_kept() {
        let chunks = read_all(&["short\n0123456", "789", "abcdef\nok\n", "0123456789"], 10).await;
        assert_eq!(chunks.concat(), [line(1, "short"), (2, None), line(3, "ok"), (4, None)]);
    }

    #[tokio::test]
    async fn taken_text_holds_the_chunk_and_the_next_line_goes_on() {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            ["a\nbb", "b\nc", "c\n"].iter().map(|p| Ok(Bytes::copy_from_slice(p.as_bytes()))).collect();
        let body = Body::from_stream(futures::stream::iter(pieces));
        let mut reader = LineReader::new(body.into_data_stream(), 8);
        let mut lines = Vec::new();
        let mut read = Vec::new();
        loop {
            reader.read_chunk(&mut lines, 1).await.unwrap();
            if lines.is_empty() {
                break;
            }
            let text = reader.take_text();
            read.extend(lines.iter().map(|line| String::from_utf8(text[line.text.clone().unwrap()].to_vec()).unwrap()));
        }
        assert_eq!(read, ["a", "bbb", "cc"]);
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_kept() {
        let chunks = read_all(&["01234567\n", "0123", "4567"], 10).await;
        assert_eq!(chunks.concat(), [line(1, "01234567"), line(2, "01234567")]);
    }
}
