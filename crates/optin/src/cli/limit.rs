//! `optin messaging-limit`: a business's messaging limit (unique recipients of business-initiated
//! messages per moving 24 hours), set by hand, and how much of it the last 24 hours used.

use std::process::ExitCode;

use clap::Subcommand;
use jiff::Timestamp;
use optin_http::views::MessagingLimitView;
use optin_store::capacity::{self, LimitSource, MessagingLimitStatus};
use optin_store::tenancy;
use serde_json::Value;

use super::business::BusinessArg;
use super::{Failure, GlobalArgs, Output};

#[derive(Debug, Subcommand)]
pub enum MessagingLimitCommand {
    /// Set the limit by hand (a later limit from a webhook replaces it).
    Set {
        #[command(flatten)]
        business: BusinessArg,
        /// A tier (TIER_250, TIER_2K, TIER_10K, TIER_100K, TIER_UNLIMITED), a number of recipients
        /// (-1 for unlimited) or `unlimited`.
        #[arg(value_name = "LIMIT", allow_hyphen_values = true)]
        limit: String,
    },
    /// Show the limit, where it came from, and the unique recipients of the last 24 hours.
    Show {
        #[command(flatten)]
        business: BusinessArg,
    },
}

pub async fn run(global: &GlobalArgs, output: Output, command: MessagingLimitCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    let now = Timestamp::now();
    let (business, limit) = match command {
        MessagingLimitCommand::Set { business, limit } => (business, Some(limit)),
        MessagingLimitCommand::Show { business } => (business, None),
    };
    let business = tenancy::require_business(store, business.parse()?).await?;
    if let Some(limit) = limit {
        let limit = capacity::parse_messaging_limit(&Value::String(limit)).map_err(Failure::Rejected)?;
        capacity::set_messaging_limit(store, business.id, limit, LimitSource::Manual, now).await?;
    }
    let status = capacity::messaging_limit_status(store, business.id, now).await?;
    output.print(&MessagingLimitView::new(&status), describe(&status));
    Ok(ExitCode::SUCCESS)
}

fn describe(status: &MessagingLimitStatus) -> String {
    let limit = match status.setting {
        Some(setting) => format!("{} (set {} from {})", setting.limit, setting.updated_at, setting.source.as_str()),
        None => "not set (nothing is capped)".to_owned(),
    };
    format!("messaging limit: {limit}\nrecipients in the last 24 hours: {}", status.recipients_last_24h)
}
