//! Why a use case refused its input: a stable code, a detail, and every problem found.

use crate::store::StoreError;

/// How a refusal maps to HTTP: 422, 404 or 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    Invalid,
    NotFound,
    Conflict,
}

/// One problem with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub detail: String,
}

/// A refusal: the first problem's code is the headline, `problems` lists all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectionKind,
    pub problems: Vec<Problem>,
}

impl Rejection {
    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Rejection {
        Rejection { kind: RejectionKind::Invalid, problems: vec![Problem { code, detail: detail.into() }] }
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Rejection {
        Rejection { kind: RejectionKind::NotFound, problems: vec![Problem { code, detail: detail.into() }] }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Rejection {
        Rejection { kind: RejectionKind::Conflict, problems: vec![Problem { code, detail: detail.into() }] }
    }

    pub fn code(&self) -> &'static str {
        self.problems.first().map_or("invalid_request", |p| p.code)
    }

    pub fn detail(&self) -> &str {
        self.problems.first().map_or("", |p| p.detail.as_str())
    }
}

/// One problem with the input is a refusal of it.
impl From<Problem> for Rejection {
    fn from(problem: Problem) -> Rejection {
        Rejection { kind: RejectionKind::Invalid, problems: vec![problem] }
    }
}

/// The error of every use case: a refusal of the input, or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum UseCaseError {
    #[error("{}: {}", .0.code(), .0.detail())]
    Rejected(Rejection),
    #[error(transparent)]
    Store(StoreError),
}

impl From<Rejection> for UseCaseError {
    fn from(rejection: Rejection) -> Self {
        UseCaseError::Rejected(rejection)
    }
}

impl From<StoreError> for UseCaseError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Category(category) => {
                let kind = if matches!(category, optin_core::business::CategoryError::Unknown(_)) {
                    RejectionKind::Invalid
                } else {
                    RejectionKind::Conflict
                };
                UseCaseError::Rejected(Rejection {
                    kind,
                    problems: vec![Problem { code: category.code(), detail: category.to_string() }],
                })
            }
            other => UseCaseError::Store(other),
        }
    }
}

/// Collects independent problems so a client sees all of them at once.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn take<T>(&mut self, result: Result<T, Problem>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }

    pub(crate) fn push(&mut self, code: &'static str, detail: impl Into<String>) {
        self.0.push(Problem { code, detail: detail.into() });
    }

    pub(crate) fn into_result(self) -> Result<(), Rejection> {
        if self.0.is_empty() { Ok(()) } else { Err(Rejection { kind: RejectionKind::Invalid, problems: self.0 }) }
    }
}

pub(crate) fn problem(code: &'static str, detail: impl std::fmt::Display) -> Problem {
    Problem { code, detail: detail.to_string() }
}
