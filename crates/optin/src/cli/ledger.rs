//! `optin ledger verify`.

use std::process::ExitCode;

use clap::Subcommand;
use optin_core::ids::BusinessId;
use optin_http::views::LedgerVerification;
use optin_store::ledger::{LedgerReport, verify_ledger};
use serde_json::json;

use super::{Failure, GlobalArgs, Output};

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the hash chain; exit status 1 if any event was changed or removed.
    Verify {
        /// Only this business (default: every business).
        #[arg(long = "business", env = "OPTIN_BUSINESS_ID")]
        business: Option<String>,
    },
}

pub async fn run(global: &GlobalArgs, output: Output, command: LedgerCommand) -> Result<ExitCode, Failure> {
    let LedgerCommand::Verify { business } = command;
    let store = global.database()?.open().await?;
    let businesses = match business {
        Some(id) => vec![super::business::BusinessArg { id }.parse()?],
        None => store.list_businesses().await?.into_iter().map(|b| b.id).collect(),
    };
    let mut all_intact = true;
    let mut reports = Vec::new();
    let mut lines = Vec::new();
    for business in businesses {
        let report = verify_ledger(store.as_ref(), business).await?;
        all_intact &= report.is_intact();
        lines.push(describe(&business.to_string(), &report));
        reports.push(BusinessLedger { business_id: business, verification: LedgerVerification::from(report) });
    }
    output.print(&json!({"intact": all_intact, "businesses": reports}), lines.join("\n"));
    Ok(if all_intact { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn describe(business: &str, report: &LedgerReport) -> String {
    match &report.first_break {
        None => format!("{business}: intact ({} events)", report.verified_events),
        Some(broken) => format!(
            "{business}: BROKEN at event #{} ({:?}); {} events verified before it",
            broken.index, broken.kind, report.verified_events
        ),
    }
}

/// One business's verification, in the API's shape, with the business it is about.
#[derive(serde::Serialize)]
struct BusinessLedger {
    business_id: BusinessId,
    #[serde(flatten)]
    verification: LedgerVerification,
}
