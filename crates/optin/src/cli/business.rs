//! `optin business`, `optin key` and `optin notice`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use optin_core::ids::{ApiKeyId, BusinessId};
use optin_http::views::{
    BusinessList, BusinessView, CreatedBusinessView, IssuedKeyView, KeyList, NoticeList, NoticeView,
};
use optin_store::Rejection;
use optin_store::tenancy::{self, CategoryInput};
use serde_json::json;

use super::{Failure, GlobalArgs, Output};

#[derive(Debug, Subcommand)]
pub enum BusinessCommand {
    /// Create a business and print its first API key (shown once).
    Create {
        /// The registered name, which notices must state.
        #[arg(long)]
        name: String,
        /// A category as NAME:TEMPLATE_CATEGORY (marketing, utility or authentication); repeatable.
        #[arg(long = "category", value_name = "NAME:TEMPLATE_CATEGORY")]
        categories: Vec<String>,
    },
    /// List businesses.
    List,
    /// Add categories to a business.
    AddCategory {
        #[command(flatten)]
        business: BusinessArg,
        /// NAME:TEMPLATE_CATEGORY; repeatable.
        #[arg(long = "category", value_name = "NAME:TEMPLATE_CATEGORY", required = true)]
        categories: Vec<String>,
    },
    /// Replace the extra brand names a notice may use to name the business.
    BrandNames {
        #[command(flatten)]
        business: BusinessArg,
        /// A brand name; repeatable. None clears the list.
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a business (the secret is shown once).
    Create {
        #[command(flatten)]
        business: BusinessArg,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Revoke an API key; it stops working at once.
    Revoke {
        #[command(flatten)]
        business: BusinessArg,
        /// The key's id (not its secret).
        #[arg(long = "key")]
        key: String,
    },
    /// List a business's keys (never their secrets).
    List {
        #[command(flatten)]
        business: BusinessArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum NoticeCommand {
    /// Register a notice text (checked against the opt-in requirements).
    Add {
        #[command(flatten)]
        business: BusinessArg,
        /// Language tag of the text, e.g. en, es, pt-BR.
        #[arg(long)]
        language: String,
        /// The exact text shown to people.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        text: Option<String>,
        /// Read the text from a file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List a business's notices.
    List {
        #[command(flatten)]
        business: BusinessArg,
    },
}

#[derive(Debug, Args)]
pub struct BusinessArg {
    /// The business id.
    #[arg(long = "business", env = "OPTIN_BUSINESS_ID")]
    pub id: String,
}

impl BusinessArg {
    pub fn parse(&self) -> Result<BusinessId, Failure> {
        self.id.trim().parse().map_err(|_| Failure::rejected("invalid_business_id", "the business id is not a UUID"))
    }
}

pub async fn run_business(global: &GlobalArgs, output: Output, command: BusinessCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    match command {
        BusinessCommand::Create { name, categories } => {
            let categories = parse_category_args(&categories)?;
            let (business, key) = tenancy::create_business(store, &name, &categories, Timestamp::now()).await?;
            let text =
                format!("created business {} ({})\nAPI key (shown once): {}", business.name, business.id, key.secret);
            output.print(&CreatedBusinessView::new(&business, key), text);
        }
        BusinessCommand::List => {
            let businesses = store.list_businesses().await?;
            let lines: Vec<String> = businesses.iter().map(|b| format!("{}  {}", b.id, b.name)).collect();
            output.print(&BusinessList::new(&businesses), lines.join("\n"));
        }
        BusinessCommand::AddCategory { business, categories } => {
            let categories =
                tenancy::parse_categories(&parse_category_args(&categories)?).map_err(Failure::Rejected)?;
            let updated = store.add_categories(business.parse()?, &categories).await.map_err(not_found_business)?;
            output.print(
                &BusinessView::from(&updated),
                format!("{} now has {} categories", updated.name, updated.categories.len()),
            );
        }
        BusinessCommand::BrandNames { business, names } => {
            let updated = tenancy::set_brand_names(store, business.parse()?, &names).await?;
            output
                .print(&BusinessView::from(&updated), format!("brand names of {}: {}", updated.name, names.join(", ")));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_key(global: &GlobalArgs, output: Output, command: KeyCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    match command {
        KeyCommand::Create { business, label } => {
            let business = tenancy::require_business(store, business.parse()?).await?;
            let key = tenancy::issue_key(business.id, &label, Timestamp::now());
            store.create_api_key(&key.record).await?;
            let text = format!("API key {} (shown once): {}", key.record.id, key.secret);
            output.print(&IssuedKeyView::from(key), text);
        }
        KeyCommand::Revoke { business, key } => {
            let key_id: ApiKeyId =
                key.trim().parse().map_err(|_| Failure::rejected("invalid_key_id", "the key id is not a UUID"))?;
            store.revoke_api_key(business.parse()?, key_id, Timestamp::now()).await.map_err(|error| match error {
                optin_store::StoreError::NotFound => Failure::Rejected(Rejection::not_found(
                    "key_not_found",
                    "this business has no active key with this id",
                )),
                other => other.into(),
            })?;
            output.print(&json!({"revoked": key_id}), format!("revoked key {key_id}"));
        }
        KeyCommand::List { business } => {
            let keys = store.list_api_keys(business.parse()?).await?;
            let lines: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}  {}  {}",
                        k.id,
                        k.label,
                        k.revoked_at.map_or("active".to_owned(), |t| format!("revoked {t}"))
                    )
                })
                .collect();
            output.print(&KeyList::new(keys), lines.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_notice(global: &GlobalArgs, output: Output, command: NoticeCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    match command {
        NoticeCommand::Add { business, language, text, file } => {
            let text = match (text, file) {
                (Some(text), _) => text,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .map_err(|e| Failure::rejected("unreadable_file", format!("{}: {e}", path.display())))?,
                (None, None) => unreachable!("clap requires --text or --file"),
            };
            let business = tenancy::require_business(store, business.parse()?).await?;
            let notice =
                optin_store::intake::register_notice(store, &business, &text, &language, Timestamp::now()).await?;
            let warnings: Vec<&str> = notice.warnings.iter().map(|w| w.code()).collect();
            let text = format!(
                "registered notice {} (version {}); warnings: {}",
                notice.id,
                notice.version,
                warnings.join(", ")
            );
            output.print(&NoticeView::from(notice), text);
        }
        NoticeCommand::List { business } => {
            let notices = store.list_notices(business.parse()?).await?;
            let lines: Vec<String> = notices
                .iter()
                .map(|n| format!("{}  v{}  {}  {}", n.id, n.version, n.language.as_str(), n.text.as_str()))
                .collect();
            output.print(&NoticeList::new(notices), lines.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `NAME:TEMPLATE_CATEGORY` arguments.
fn parse_category_args(arguments: &[String]) -> Result<Vec<CategoryInput>, Failure> {
    arguments
        .iter()
        .map(|argument| {
            let (name, template_category) = argument.split_once(':').ok_or_else(|| {
                Failure::rejected("invalid_category", format!("`{argument}` is not NAME:TEMPLATE_CATEGORY"))
            })?;
            Ok(CategoryInput { name: name.trim().to_owned(), template_category: template_category.trim().to_owned() })
        })
        .collect()
}

fn not_found_business(error: optin_store::StoreError) -> Failure {
    match error {
        optin_store::StoreError::NotFound => {
            Failure::Rejected(Rejection::not_found("business_not_found", "no business has this id"))
        }
        other => other.into(),
    }
}
