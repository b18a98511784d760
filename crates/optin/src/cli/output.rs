//! How commands print results and failures.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use optin_store::{Problem, Rejection, StoreError, UseCaseError};
use serde_json::{Value, json};

/// Exit status of a failed command.
const FAILURE_EXIT: u8 = 2;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints a result: `value` as JSON (the API's shape) with `--json`, otherwise `text`.
    pub fn print(&self, value: &impl serde::Serialize, text: impl std::fmt::Display) {
        if self.json {
            println!("{}", serde_json::to_string(value).expect("views serialize"));
        } else {
            println!("{text}");
        }
    }

    /// Prints a failure to stderr and returns the failure exit status.
    pub fn fail(&self, failure: &Failure) -> ExitCode {
        let problems = failure.problems();
        if self.json {
            let errors: Vec<Value> = problems.iter().map(|p| json!({"code": p.code, "detail": p.detail})).collect();
            let first = &problems[0];
            eprintln!("{}", json!({"code": first.code, "detail": first.detail, "errors": errors}));
        } else {
            for problem in &problems {
                eprintln!("error[{}]: {}", problem.code, problem.detail);
            }
        }
        ExitCode::from(FAILURE_EXIT)
    }
}

/// Why a command failed: refused input (with stable codes) or anything else.
#[derive(Debug)]
pub enum Failure {
    Rejected(Rejection),
    Other(anyhow::Error),
}

impl Failure {
    pub fn rejected(code: &'static str, detail: impl Into<String>) -> Failure {
        Failure::Rejected(Rejection::invalid(code, detail))
    }

    fn problems(&self) -> Vec<Problem> {
        match self {
            Failure::Rejected(rejection) => rejection.problems.clone(),
            Failure::Other(error) => {
                let code = if error.chain().any(|cause| cause.downcast_ref::<StoreError>().is_some()) {
                    "database_unavailable"
                } else {
                    "failed"
                };
                vec![Problem { code, detail: format!("{error:#}") }]
            }
        }
    }
}

impl From<UseCaseError> for Failure {
    fn from(error: UseCaseError) -> Self {
        match error {
            UseCaseError::Rejected(rejection) => Failure::Rejected(rejection),
            UseCaseError::Store(store) => Failure::Other(store.into()),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        UseCaseError::from(error).into()
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Other(error)
    }
}

impl From<tokio::task::JoinError> for Failure {
    fn from(error: tokio::task::JoinError) -> Self {
        Failure::Other(error.into())
    }
}

/// A progress bar over the bytes of `input` on stderr, hidden when stderr is not a terminal.
pub(crate) fn file_progress_bar(input: &Path) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let size = std::fs::metadata(input).map(|m| m.len()).unwrap_or_default();
    let style =
        ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} ({elapsed})").expect("the template is valid");
    ProgressBar::new(size).with_style(style)
}
