//! Walking a delivery: where each item sits, and the list of items left out.
//!
//! Paths are only rendered when an item is skipped, so a clean 1,000-message delivery allocates none.

use super::Skipped;
use super::fields::Fields;
use super::json::Json;

/// One step from a parent: a member name or an array index.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// A JSON path kept as a chain of borrowed steps on the stack.
#[derive(Clone, Copy)]
pub(super) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

impl<'a> Path<'a> {
    pub(super) fn root(key: &'a str) -> Path<'a> {
        Path { parent: None, step: Step::Key(key) }
    }

    pub(super) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path { parent: Some(self), step: Step::Key(key) }
    }

    fn index(&'a self, index: usize) -> Path<'a> {
        Path { parent: Some(self), step: Step::Index(index) }
    }

    /// `entry[0].changes[1].value.messages[3]`.
    fn render(&self) -> String {
        let mut text = self.parent.map(Path::render).unwrap_or_default();
        match self.step {
            Step::Key(key) if text.is_empty() => text.push_str(key),
            Step::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            Step::Index(index) => text.push_str(&format!("[{index}]")),
        }
        text
    }
}

/// The items left out of a delivery so far.
#[derive(Default)]
pub(super) struct Skips(Vec<Skipped>);

impl Skips {
    pub(super) fn record(&mut self, path: &Path, reason: String) {
        self.0.push(Skipped { path: path.render(), reason });
    }

    pub(super) fn into_vec(self) -> Vec<Skipped> {
        self.0
    }
}

/// Parses every element of an array on its own, recording the failures instead of propagating them.
pub(super) fn each<T>(
    items: &[Json],
    path: &Path,
    skips: &mut Skips,
    mut parse: impl FnMut(&Json, &Path, &mut Skips) -> Result<T, String>,
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_path = path.index(index);
        match parse(item, &item_path, skips) {
            Ok(value) => parsed.push(value),
            Err(reason) => skips.record(&item_path, reason),
        }
    }
    parsed
}

/// [`each`] over the array member `key` of an item at `path`. An absent member is an empty list; a
/// member that is not an array is recorded as skipped and read as empty, and the item itself is kept.
pub(super) fn each_member<T>(
    fields: Fields,
    key: &str,
    path: &Path,
    skips: &mut Skips,
    parse: impl FnMut(&Json, &Path, &mut Skips) -> Result<T, String>,
) -> Vec<T> {
    let member_path = path.key(key);
    match fields.raw(key) {
        None => Vec::new(),
        Some(Json::Array(items)) => each(items, &member_path, skips, parse),
        Some(_) => {
            skips.record(&member_path, "not an array".to_owned());
            Vec::new()
        }
    }
}
