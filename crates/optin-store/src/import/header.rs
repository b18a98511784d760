//! The header row of an import file: which column holds what. A header that cannot be used
//! stops the import before any row is read (`missing_column`, `duplicate_column`,
//! `invalid_header`).

use crate::rejection::{Problem, Rejection, RejectionKind, problem};

use super::csv::RawRow;

/// Evidence fields the import itself writes; a column may not use their names.
const RESERVED: [&str; 3] = ["batch_id", "original_method", "source_row"];

/// Where the notice of each row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoticeColumns {
    Id(usize),
    Text {
        text: usize,
        language: usize,
    },
    /// Both kinds of column: each row gives one of them.
    Both {
        id: usize,
        text: usize,
        language: usize,
    },
}

/// The columns of an import file, found by name (any case, surrounding spaces ignored).
#[derive(Debug, Clone)]
pub struct ImportHeader {
    /// The header as read (for the report of rejected rows).
    pub names: Vec<String>,
    pub(super) phone: usize,
    pub(super) country: Option<usize>,
    pub(super) categories: usize,
    pub(super) method: usize,
    pub(super) collected_at: usize,
    pub(super) notice: NoticeColumns,
    /// Every other named column, as (evidence field, column), sorted by field name.
    pub(super) evidence: Vec<(String, usize)>,
}

impl ImportHeader {
    pub fn parse(row: &RawRow) -> Result<ImportHeader, Rejection> {
        if row.too_long {
            return Err(invalid("invalid_header", "the header row is too long (at most 256 columns, 64 KiB)"));
        }
        let mut names = Vec::with_capacity(row.len());
        for (index, field) in row.fields().enumerate() {
            let name = std::str::from_utf8(field)
                .map_err(|_| invalid("invalid_header", format!("column {} of the header is not UTF-8", index + 1)))?;
            names.push(name.trim().to_owned());
        }
        let mut problems = Vec::new();
        let mut find = |wanted: &str| find_column(&names, wanted, &mut problems);
        let (phone, country, categories) = (find("phone"), find("country"), find("categories"));
        let (method, collected_at) = (find("method"), find("collected_at"));
        let (notice_id, notice_text, notice_language) =
            (find("notice_id"), find("notice_text"), find("notice_language"));
        for (wanted, found) in
            [("phone", phone), ("categories", categories), ("method", method), ("collected_at", collected_at)]
        {
            if found.is_none() {
                problems.push(missing(wanted));
            }
        }
        let notice = match (notice_id, notice_text, notice_language) {
            (Some(id), None, None) => Some(NoticeColumns::Id(id)),
            (id, Some(text), Some(language)) => Some(match id {
                Some(id) => NoticeColumns::Both { id, text, language },
                None => NoticeColumns::Text { text, language },
            }),
            (_, Some(_), None) => {
                problems.push(missing("notice_language"));
                None
            }
            (_, None, Some(_)) => {
                problems.push(missing("notice_text"));
                None
            }
            (None, None, None) => {
                problems.push(problem(
                    "missing_column",
                    "the header needs a `notice_id` column, or `notice_text` and `notice_language`",
                ));
                None
            }
        };
        let evidence = evidence_columns(&names, &mut problems);
        if !problems.is_empty() {
            return Err(Rejection { kind: RejectionKind::Invalid, problems });
        }
        let (Some(phone), Some(categories), Some(method), Some(collected_at), Some(notice)) =
            (phone, categories, method, collected_at, notice)
        else {
            unreachable!("every missing column was reported")
        };
        Ok(ImportHeader { names, phone, country, categories, method, collected_at, notice, evidence })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

const KNOWN: [&str; 8] =
    ["phone", "country", "categories", "method", "collected_at", "notice_id", "notice_text", "notice_language"];

fn find_column(names: &[String], wanted: &str, problems: &mut Vec<Problem>) -> Option<usize> {
    let mut found = names.iter().enumerate().filter(|(_, name)| name.eq_ignore_ascii_case(wanted)).map(|(i, _)| i);
    let first = found.next();
    if found.next().is_some() {
        problems.push(problem("duplicate_column", format!("the header has more than one `{wanted}` column")));
    }
    first
}

/// The columns that are not known ones; unnamed columns are left out (their cells are ignored).
fn evidence_columns(names: &[String], problems: &mut Vec<Problem>) -> Vec<(String, usize)> {
    let mut evidence: Vec<(String, usize)> = Vec::new();
    for (index, name) in names.iter().enumerate() {
        if name.is_empty() || KNOWN.iter().any(|known| name.eq_ignore_ascii_case(known)) {
            continue;
        }
        let shown: String = name.chars().take(64).collect();
        if RESERVED.iter().any(|reserved| name.eq_ignore_ascii_case(reserved)) {
            problems.push(problem(
                "invalid_header",
                format!("`{shown}` is written by the import itself; rename the column"),
            ));
        } else if evidence.iter().any(|(other, _)| other.eq_ignore_ascii_case(name)) {
            problems.push(problem("duplicate_column", format!("the header has more than one `{shown}` column")));
        } else {
            evidence.push((name.clone(), index));
        }
    }
    evidence.sort();
    evidence
}

fn missing(column: &str) -> Problem {
    problem("missing_column", format!("the header has no `{column}` column"))
}

fn invalid(code: &'static str, detail: impl Into<String>) -> Rejection {
    Rejection::invalid(code, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str) -> Result<ImportHeader, Vec<&'static str>> {
        let row = RawRow::from_fields(0, line.split(',').map(str::as_bytes));
        ImportHeader::parse(&row).map_err(|r| r.problems.iter().map(|p| p.code).collect())
    }

    #[test]
    fn columns_are_found_in_any_case_and_the_rest_is_evidence() {
        let found = header(" Phone ,categories,METHOD,collected_at,notice_id,page_url,ip,").unwrap();
        assert_eq!((found.phone, found.categories, found.method), (0, 1, 2));
        assert_eq!(found.notice, NoticeColumns::Id(4));
        assert_eq!(found.evidence, vec![("ip".to_owned(), 6), ("page_url".to_owned(), 5)]);
    }

    #[test]
    fn unusable_headers_say_why() {
        assert_eq!(header("phone,categories,method,collected_at").unwrap_err(), vec!["missing_column"]);
        assert_eq!(header("phone,categories,method,notice_id").unwrap_err(), vec!["missing_column"]);
        assert_eq!(
            header("phone,phone,categories,method,collected_at,notice_id").unwrap_err(),
            vec!["duplicate_column"]
        );
        assert_eq!(header("phone,categories,method,collected_at,notice_text").unwrap_err(), vec!["missing_column"]);
        assert_eq!(
            header("phone,categories,method,collected_at,notice_id,batch_id").unwrap_err(),
            vec!["invalid_header"]
        );
    }
}
