//! One row of an import file, checked: every problem is reported at once, with the codes the API
//! uses for the same mistakes.

use std::collections::HashMap;

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName};
use optin_core::evidence::{Evidence, Method};
use optin_core::phone::{PhoneNumber, Region};
use optin_core::truncate_to_microseconds;
use serde_json::{Map, Value};

use crate::intake::{CLOCK_SKEW_ALLOWANCE, EARLIEST_COLLECTED_AT};
use crate::rejection::{Problem, problem};

use super::csv::RawRow;
use super::header::{ImportHeader, NoticeColumns};

/// Distinct `categories` cells remembered (most files repeat a handful).
const MAX_REMEMBERED_CATEGORIES: usize = 10_000;

/// What a row's notice cell names.
#[derive(Debug, Clone, Copy)]
pub(super) enum NoticeRequest<'r> {
    Id(&'r str),
    Text(&'r str, &'r str),
}

/// A row whose own cells passed every check (its notice is resolved next, from its request).
#[derive(Debug)]
pub(super) struct CheckedRow {
    pub(super) phone: PhoneNumber,
    pub(super) categories: Vec<CategoryName>,
    pub(super) method: Method,
    pub(super) collected_at: Timestamp,
    /// The evidence columns' non-empty cells, checked as the original method requires.
    pub(super) evidence: Map<String, Value>,
}

/// Checks rows against one header and business; remembers category cells it has seen.
#[derive(Clone)]
pub(super) struct RowChecker {
    pub(super) now: Timestamp,
    categories: HashMap<String, Result<Vec<CategoryName>, Problem>>,
}

impl RowChecker {
    pub(super) fn new(now: Timestamp) -> RowChecker {
        RowChecker { now: truncate_to_microseconds(now), categories: HashMap::new() }
    }

    /// The row's cells checked, or its problems. The notice is only named here, not looked up;
    /// it is named (second) whenever its cells are readable, so that a failing notice is
    /// reported beside the row's other problems. `parsed_phone`: the number an earlier check of
    /// this row found (libphonenumber is most of a check's cost; the write phase re-checks rows).
    pub(super) fn check<'r>(
        &mut self,
        header: &ImportHeader,
        business: &Business,
        (row, parsed_phone): (&'r RawRow, Option<Result<PhoneNumber, Problem>>),
        problems: &mut Vec<Problem>,
    ) -> (Option<CheckedRow>, Option<NoticeRequest<'r>>) {
        if row.too_long {
            problems.push(problem("row_too_long", "the row is longer than 64 KiB or has more than 256 fields"));
            return (None, None);
        }
        if row.len() != header.len() {
            let detail = format!("the row has {} fields, the header {}", row.len(), header.len());
            problems.push(problem("invalid_row", detail));
            return (None, None);
        }
        let mut cell = |index: usize, column: &str| -> Option<&'r str> {
            let bytes = row.field(index).unwrap_or_default();
            match std::str::from_utf8(bytes) {
                Ok(text) => Some(text.trim()),
                Err(_) => {
                    problems.push(problem("invalid_encoding", format!("`{column}` is not UTF-8 text")));
                    None
                }
            }
        };
        let phone_text = cell(header.phone, "phone");
        let country = header.country.and_then(|index| cell(index, "country")).filter(|c| !c.is_empty());
        let categories = cell(header.categories, "categories");
        let method = cell(header.method, "method");
        let collected_at = cell(header.collected_at, "collected_at");
        let notice = notice_request(header, &mut cell);
        let evidence = evidence_cells(header, &mut cell);
        let phone = match parsed_phone {
            Some(parsed) => phone_text.and_then(|_| take(problems, parsed)),
            None => phone_text.and_then(|text| take(problems, parse_phone(text, country))),
        };
        let categories = categories.and_then(|text| take(problems, self.categories(business, text)));
        let method = method.and_then(|text| take(problems, parse_method(text)));
        let collected_at = collected_at.and_then(|text| take(problems, self.collected_at(text)));
        let notice = notice.and_then(|request| take(problems, request));
        let evidence = match (method, evidence) {
            (Some(method), Some(evidence)) => take(problems, check_evidence(method, evidence)),
            _ => None,
        };
        let checked = (|| {
            Some(CheckedRow {
                phone: phone?,
                categories: categories?,
                method: method?,
                collected_at: collected_at?,
                evidence: evidence?,
            })
        })();
        (checked, notice)
    }

    fn categories(&mut self, business: &Business, text: &str) -> Result<Vec<CategoryName>, Problem> {
        if let Some(found) = self.categories.get(text) {
            return found.clone();
        }
        let names: Vec<String> =
            text.split([';', '|']).map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned).collect();
        let resolved = if names.is_empty() {
            Err(problem("categories_missing", "name at least one category"))
        } else {
            business.resolve_categories(&names).map_err(|e| problem(e.code(), e))
        };
        if self.categories.len() < MAX_REMEMBERED_CATEGORIES {
            self.categories.insert(text.to_owned(), resolved.clone());
        }
        resolved
    }

    fn collected_at(&self, text: &str) -> Result<Timestamp, Problem> {
        if text.is_empty() {
            return Err(problem("collected_at_missing", "collected_at is empty: give the original collection time"));
        }
        let time = text.parse::<Timestamp>().map_err(|_| {
            problem(
                "invalid_time",
                "collected_at must be an RFC 3339 time with an offset, such as 2024-05-01T10:00:00Z",
            )
        })?;
        let time = truncate_to_microseconds(time);
        if time > self.now + CLOCK_SKEW_ALLOWANCE {
            return Err(problem("collected_at_in_future", "collected_at is in the future"));
        }
        if time < EARLIEST_COLLECTED_AT {
            return Err(problem("collected_at_out_of_range", "collected_at is before the year 2000"));
        }
        Ok(time)
    }
}

fn take<T>(problems: &mut Vec<Problem>, result: Result<T, Problem>) -> Option<T> {
    result.map_err(|p| problems.push(p)).ok()
}

fn parse_phone(text: &str, country: Option<&str>) -> Result<PhoneNumber, Problem> {
    let region = country.map(Region::parse).transpose().map_err(|e| problem(e.code(), e))?;
    PhoneNumber::parse(text, region).map_err(|e| problem(e.code(), e))
}

fn parse_method(text: &str) -> Result<Method, Problem> {
    let method = Method::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Method::ALL.iter().filter(|m| **m != Method::Import).map(|m| m.as_str()).collect();
        problem("unknown_method", format!("method (the original one) must be one of: {}", names.join(", ")))
    })?;
    if method == Method::Import {
        // What `POST /v1/opt-ins` answers for an import whose original method is `import`.
        return Err(problem(
            "evidence_invalid",
            "method must be how the opt-in was originally collected, not `import`",
        ));
    }
    Ok(method)
}

fn check_evidence(method: Method, cells: Map<String, Value>) -> Result<Map<String, Value>, Problem> {
    Evidence::for_method(method, cells.clone()).map_err(|e| problem(e.code(), e))?;
    Ok(cells)
}

type Cell<'c, 'r> = dyn FnMut(usize, &str) -> Option<&'r str> + 'c;

fn notice_request<'r>(header: &ImportHeader, cell: &mut Cell<'_, 'r>) -> Option<Result<NoticeRequest<'r>, Problem>> {
    let (id, text) = match header.notice {
        NoticeColumns::Id(id) => (Some(id), None),
        NoticeColumns::Text { text, language } => (None, Some((text, language))),
        NoticeColumns::Both { id, text, language } => (Some(id), Some((text, language))),
    };
    let id = match id {
        Some(index) => Some(cell(index, "notice_id")?).filter(|id| !id.is_empty()),
        None => None,
    };
    let text = match text {
        Some((text, language)) => {
            let (text, language) = (cell(text, "notice_text")?, cell(language, "notice_language")?);
            Some((text, language)).filter(|(text, _)| !text.is_empty())
        }
        None => None,
    };
    Some(match (id, text) {
        (Some(id), None) => Ok(NoticeRequest::Id(id)),
        (None, Some((text, language))) => Ok(NoticeRequest::Text(text, language)),
        (Some(_), Some(_)) => Err(problem("notice_conflict", "give either notice_id or notice_text, not both")),
        (None, None) => Err(problem("notice_missing", "the row names no notice (notice_id or notice_text)")),
    })
}

fn evidence_cells<'r>(header: &ImportHeader, cell: &mut Cell<'_, 'r>) -> Option<Map<String, Value>> {
    let mut evidence = Map::new();
    let mut readable = true;
    for (name, index) in &header.evidence {
        match cell(*index, name) {
            Some("") => {}
            Some(text) => {
                evidence.insert(name.clone(), Value::String(text.to_owned()));
            }
            None => readable = false,
        }
    }
    readable.then_some(evidence)
}

#[cfg(test)]
mod tests {
    use optin_core::business::{BusinessName, Category, CategoryName, TemplateCategory};
    use optin_core::ids::BusinessId;

    use super::*;

    fn business() -> Business {
        Business {
            id: BusinessId::from_uuid(uuid::Uuid::nil()),
            name: BusinessName::parse("Acme Shoes").unwrap(),
            brand_names: Vec::new(),
            categories: vec![Category {
                name: CategoryName::parse("offers").unwrap(),
                template_category: TemplateCategory::Marketing,
            }],
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn header() -> ImportHeader {
        let names = ["phone", "country", "categories", "method", "collected_at", "notice_id", "page_url", "ip"];
        ImportHeader::parse(&RawRow::from_fields(0, names.map(str::as_bytes))).unwrap()
    }

    /// What a check finds: the problems' codes and the number.
    fn outcome(row: &RawRow, parsed: Option<Result<PhoneNumber, Problem>>) -> (Vec<&'static str>, Option<u64>) {
        let mut checker = RowChecker::new("2026-01-01T00:00:00Z".parse().unwrap());
        let mut problems = Vec::new();
        let (checked, _) = checker.check(&header(), &business(), (row, parsed), &mut problems);
        (problems.iter().map(|p| p.code).collect(), checked.map(|c| c.phone.key()))
    }

    /// The property below compares only rows that pass; this one does, and a kept number is what
    /// the recheck uses (so the property could fail).
    #[test]
    fn a_recheck_takes_the_kept_number() {
        let cells: [&[u8]; 8] = [
            b"(415) 555-0101",
            b"US",
            b"offers",
            b"web_form",
            b"2024-01-01T00:00:00Z",
            b"3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            b"https://a.example",
            b"192.0.2.1",
        ];
        let row = RawRow::from_fields(1, cells);
        assert_eq!(outcome(&row, None), (vec![], Some(14_155_550_101)));
        let other = PhoneNumber::from_e164("+14155550199").unwrap();
        assert_eq!(outcome(&row, Some(Ok(other))), (vec![], Some(14_155_550_199)));
    }

    proptest::proptest! {
        /// A row checked again with the number its first check found (as the write phase does)
        /// gives exactly the first check's answer.
        #[test]
        fn a_recheck_with_the_kept_number_gives_the_same_check(
            phone in proptest::sample::select(vec![
                b"+14155550101".to_vec(), b"(415) 555-0101".to_vec(), b"+1415".to_vec(), b"".to_vec(),
                b"\xff\xfe".to_vec(), b" +49 1512 3456789 ".to_vec(), b"0151 23456789".to_vec(),
            ]),
            country in proptest::sample::select(vec![
                b"".to_vec(), b"US".to_vec(), b"de".to_vec(), b"ZZ".to_vec(), b"\xc3".to_vec(),
            ]),
            fields in 7usize..10,
        ) {
            let mut cells: Vec<&[u8]> = vec![&phone, &country, b"offers", b"web_form", b"2024-01-01T00:00:00Z",
                b"3f2504e0-4f89-11d3-9a0c-0305e82c3301", b"https://a.example", b"192.0.2.1", b"extra"];
            cells.truncate(fields);
            let row = RawRow::from_fields(1, cells);
            let first = outcome(&row, None);
            if let Some(key) = first.1 {
                proptest::prop_assert_eq!(outcome(&row, PhoneNumber::from_key(key).map(Ok)), first);
            }
        }
    }
}
