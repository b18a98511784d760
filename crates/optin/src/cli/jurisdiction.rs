//! `optin jurisdiction`: a business's jurisdiction rules (quiet hours and the rest), as a TOML
//! file laid over the shipped defaults.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use jiff::Timestamp;
use optin_core::jurisdiction::SHIPPED_RULES;
use optin_http::views::JurisdictionView;
use optin_store::jurisdiction::{self, JurisdictionSettings};
use optin_store::tenancy;

use super::business::BusinessArg;
use super::{Failure, GlobalArgs, Output};

#[derive(Debug, Subcommand)]
pub enum JurisdictionCommand {
    /// Replace the business's rules with those in FILE (the format of `optin jurisdiction defaults`).
    Set {
        #[command(flatten)]
        business: BusinessArg,
        /// IANA zone for numbers whose zone is ambiguous (used when it is one of their candidates).
        #[arg(long)]
        default_time_zone: Option<String>,
        file: PathBuf,
    },
    /// Print the business's rules.
    Show {
        #[command(flatten)]
        business: BusinessArg,
    },
    /// Print the shipped defaults, with the format documented in their comments.
    Defaults,
}

pub async fn run(global: &GlobalArgs, output: Output, command: JurisdictionCommand) -> Result<ExitCode, Failure> {
    if let JurisdictionCommand::Defaults = command {
        output.print(&serde_json::json!({ "shipped_rules": SHIPPED_RULES }), SHIPPED_RULES);
        return Ok(ExitCode::SUCCESS);
    }
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    let settings = match command {
        JurisdictionCommand::Set { business, default_time_zone, file } => {
            let business = tenancy::require_business(store, business.parse()?).await?;
            let rules = std::fs::read_to_string(&file)
                .map_err(|e| Failure::rejected("unreadable_file", format!("{}: {e}", file.display())))?;
            let settings = JurisdictionSettings { rules, default_time_zone };
            jurisdiction::set_jurisdiction_policy(store, &business, &settings, Timestamp::now()).await?;
            settings
        }
        JurisdictionCommand::Show { business } => jurisdiction::jurisdiction_settings(store, business.parse()?).await?,
        JurisdictionCommand::Defaults => unreachable!("answered above"),
    };
    let text = if settings.rules.trim().is_empty() {
        "(the shipped defaults only)".to_owned()
    } else {
        settings.rules.clone()
    };
    output.print(&JurisdictionView::new(settings), text);
    Ok(ExitCode::SUCCESS)
}
