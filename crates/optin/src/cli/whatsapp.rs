//! `optin sender`, `optin webhook-settings`, `optin policy`, `optin template`, `optin inbox` and
//! `optin signals`: a business's WhatsApp setup and what its webhooks brought.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use optin_http::views::{
    DeliveryList, DeliveryView, SenderList, SenderView, SignalList, TemplateImportView, TemplateList,
    WebhookSettingsView,
};
use optin_store::channel::{DeliveryFilter, DeliveryState, SignalFilter, SignalKind};
use optin_store::whatsapp::{self, ChannelPolicy, SenderInput, SharedSecretInput, WebhookSettingsInput};
use optin_store::{Rejection, Store, tenancy};
use optin_whatsapp::outbound::{OutboundClient, RetryPolicy};
use optin_whatsapp::{Processor, ProcessorConfig};

use super::business::BusinessArg;
use super::{Failure, GlobalArgs, Output};

#[derive(Debug, Subcommand)]
pub enum SenderCommand {
    /// Register a WhatsApp business number (Cloud API or 360dialog) of a business.
    Add(SenderArgs),
    /// List a business's senders (never their credentials).
    List {
        #[command(flatten)]
        business: BusinessArg,
    },
}

#[derive(Debug, Args)]
pub struct SenderArgs {
    #[command(flatten)]
    business: BusinessArg,
    #[arg(long)]
    phone_number_id: String,
    #[arg(long)]
    display_phone_number: String,
    #[arg(long)]
    waba_id: String,
    /// `cloud_api` or `360dialog`.
    #[arg(long)]
    provider: String,
    /// Default: the provider's public endpoint.
    #[arg(long)]
    base_url: Option<String>,
    /// Cloud API version, default v23.0.
    #[arg(long)]
    api_version: Option<String>,
    /// The access token or API key (better given through the environment).
    #[arg(long, env = "OPTIN_SENDER_CREDENTIAL", hide_env_values = true)]
    credential: String,
}

#[derive(Debug, Subcommand)]
pub enum WebhookSettingsCommand {
    /// Set the verify token, the app secret and/or the shared secret header (others are kept).
    Set(WebhookSettingsArgs),
    /// Show which settings are set (never their values) and the callback path.
    Show {
        #[command(flatten)]
        business: BusinessArg,
    },
}

#[derive(Debug, Args)]
pub struct WebhookSettingsArgs {
    #[command(flatten)]
    business: BusinessArg,
    #[arg(long, env = "OPTIN_WEBHOOK_VERIFY_TOKEN", hide_env_values = true)]
    verify_token: Option<String>,
    #[arg(long, env = "OPTIN_WEBHOOK_APP_SECRET", hide_env_values = true)]
    app_secret: Option<String>,
    /// Header name of the shared secret (with --shared-secret-value).
    #[arg(long, requires = "shared_secret_value")]
    shared_secret_header: Option<String>,
    #[arg(long, env = "OPTIN_WEBHOOK_SHARED_SECRET", hide_env_values = true, requires = "shared_secret_header")]
    shared_secret_value: Option<String>,
    /// Remove the app secret.
    #[arg(long, conflicts_with = "app_secret")]
    clear_app_secret: bool,
    /// Remove the shared secret.
    #[arg(long, conflicts_with = "shared_secret_header")]
    clear_shared_secret: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Replace the WhatsApp channel policy with the JSON in FILE.
    Set {
        #[command(flatten)]
        business: BusinessArg,
        file: PathBuf,
    },
    /// Print the policy (the defaults if never set).
    Show {
        #[command(flatten)]
        business: BusinessArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Import templates from a file in the Cloud API's JSON format.
    Import {
        #[command(flatten)]
        business: BusinessArg,
        file: PathBuf,
    },
    /// List the business's templates.
    List {
        #[command(flatten)]
        business: BusinessArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// List webhook deliveries, newest first.
    List {
        #[command(flatten)]
        business: BusinessArg,
        /// `pending`, `processed` or `failed`.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one delivery, with its body as received.
    Show {
        #[command(flatten)]
        business: BusinessArg,
        /// The delivery's id.
        #[arg(value_name = "DELIVERY_ID")]
        delivery: i64,
    },
    /// Process a delivery again, now (and anything else waiting in the inbox).
    Replay {
        #[command(flatten)]
        business: BusinessArg,
        /// The delivery's id.
        #[arg(value_name = "DELIVERY_ID")]
        delivery: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum SignalsCommand {
    /// List signals, oldest first.
    List {
        #[command(flatten)]
        business: BusinessArg,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        message_id: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub async fn run_sender(global: &GlobalArgs, output: Output, command: SenderCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    match command {
        SenderCommand::Add(args) => {
            let business = tenancy::require_business(store, args.business.parse()?).await?;
            let input = SenderInput {
                phone_number_id: args.phone_number_id,
                display_phone_number: args.display_phone_number,
                waba_id: args.waba_id,
                provider: args.provider,
                base_url: args.base_url,
                api_version: args.api_version,
                credential: args.credential,
            };
            let sender = whatsapp::register_sender(store, &business, &input, Timestamp::now()).await?;
            let text = format!("registered sender {} ({})", sender.phone_number_id, sender.provider.as_str());
            output.print(&SenderView::from(&sender), text);
        }
        SenderCommand::List { business } => {
            let senders = store.senders(business.parse()?).await?;
            let lines: Vec<String> = senders
                .iter()
                .map(|s| {
                    format!(
                        "{}  {}  {}  {}",
                        s.phone_number_id,
                        s.display_phone_number,
                        s.provider.as_str(),
                        s.base_url
                    )
                })
                .collect();
            output.print(&SenderList::new(&senders), lines.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_webhook_settings(
    global: &GlobalArgs,
    output: Output,
    command: WebhookSettingsCommand,
) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    let (business, settings) = match command {
        WebhookSettingsCommand::Set(args) => {
            let business = tenancy::require_business(store, args.business.parse()?).await?;
            let shared_secret = match (args.shared_secret_header, args.shared_secret_value) {
                (Some(header), Some(value)) => Some(Some(SharedSecretInput { header, value })),
                _ if args.clear_shared_secret => Some(None),
                _ => None,
            };
            let input = WebhookSettingsInput {
                verify_token: args.verify_token.map(Some),
                app_secret: if args.clear_app_secret { Some(None) } else { args.app_secret.map(Some) },
                shared_secret,
            };
            let settings = whatsapp::update_webhook_settings(store, &business, &input, Timestamp::now()).await?;
            (business, settings)
        }
        WebhookSettingsCommand::Show { business } => {
            let business = tenancy::require_business(store, business.parse()?).await?;
            let settings = whatsapp::webhook_settings(store, &business).await?;
            (business, settings)
        }
    };
    let view = WebhookSettingsView::new(&business, &settings);
    let text = format!(
        "callback: /webhooks/whatsapp/{}\nverify token: {}\napp secret: {}\nshared secret header: {}",
        business.id,
        set_or_not(settings.verify_token.is_some()),
        set_or_not(settings.app_secret.is_some()),
        settings.shared_secret.as_ref().map_or("not set", |s| s.header.as_str()),
    );
    output.print(&view, text);
    Ok(ExitCode::SUCCESS)
}

fn set_or_not(set: bool) -> &'static str {
    if set { "set" } else { "not set" }
}

pub async fn run_policy(global: &GlobalArgs, output: Output, command: PolicyCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    match command {
        PolicyCommand::Set { business, file } => {
            let business = tenancy::require_business(store, business.parse()?).await?;
            let bytes = read_file(&file)?;
            let policy: ChannelPolicy = serde_json::from_slice(&bytes)
                .map_err(|e| Failure::rejected("invalid_policy", format!("{}: {e}", file.display())))?;
            whatsapp::set_channel_policy(store, &business, &policy, Timestamp::now()).await?;
            output.print(&policy, format!("policy of {} replaced", business.name));
        }
        PolicyCommand::Show { business } => {
            let business = tenancy::require_business(store, business.parse()?).await?;
            let policy = whatsapp::channel_policy(store, &business).await?;
            let pretty = serde_json::to_string_pretty(&policy).expect("policies serialize");
            output.print(&policy, pretty);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_template(global: &GlobalArgs, output: Output, command: TemplateCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let store = store.as_ref();
    match command {
        TemplateCommand::Import { business, file } => {
            let business = tenancy::require_business(store, business.parse()?).await?;
            let bytes = read_file(&file)?;
            let import = whatsapp::import_templates(store, &business, &bytes, Timestamp::now()).await?;
            let mut lines = vec![format!("imported {} templates", import.imported.len())];
            for imported in &import.imported {
                for warning in &imported.warnings {
                    let name = imported.template.name.as_str();
                    lines.push(format!("warning[{}]: {name}: {}", warning.code(), warning.detail()));
                }
            }
            for problem in &import.problems {
                lines.push(format!("skipped[{}]: {}", problem.code, problem.detail));
            }
            output.print(&TemplateImportView::new(&import), lines.join("\n"));
        }
        TemplateCommand::List { business } => {
            let templates = store.list_templates(business.parse()?).await?;
            let lines: Vec<String> = templates
                .iter()
                .map(|t| {
                    let linked = t.linked_category.as_ref().map_or("-".to_owned(), ToString::to_string);
                    format!(
                        "{}  {}  {}  {}  {linked}",
                        t.name.as_str(),
                        t.language.as_str(),
                        t.category.as_str(),
                        t.status.as_str()
                    )
                })
                .collect();
            output.print(&TemplateList::new(&templates), lines.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_inbox(global: &GlobalArgs, output: Output, command: InboxCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    match command {
        InboxCommand::List { business, state, limit } => {
            let state = match state.as_deref() {
                Some(text) => Some(DeliveryState::parse(text).ok_or_else(|| {
                    Failure::rejected("invalid_state", "state must be `pending`, `processed` or `failed`")
                })?),
                None => None,
            };
            let filter = DeliveryFilter { state, before: None, limit: limit.clamp(1, 500) };
            let deliveries = store.list_deliveries(business.parse()?, &filter).await?;
            let lines: Vec<String> = deliveries
                .iter()
                .map(|d| {
                    let note = d.note.as_deref().unwrap_or("");
                    format!("{}  {}  {}  {} bytes  {note}", d.id, d.received_at, d.state.as_str(), d.body.len())
                })
                .collect();
            output.print(&DeliveryList::new(&deliveries), lines.join("\n"));
        }
        InboxCommand::Show { business, delivery: id } => {
            let delivery = store.delivery(business.parse()?, id).await?.ok_or_else(delivery_not_found)?;
            let view = DeliveryView::new(&delivery, true);
            let text = format!(
                "delivery {id}: {} ({} attempts){}\n{}",
                delivery.state.as_str(),
                delivery.attempts,
                delivery.note.as_deref().map(|n| format!(", {n}")).unwrap_or_default(),
                String::from_utf8_lossy(&delivery.body)
            );
            output.print(&view, text);
        }
        InboxCommand::Replay { business, delivery: id } => {
            let business = business.parse()?;
            store.requeue_delivery(business, id).await.map_err(|error| match error {
                optin_store::StoreError::NotFound => delivery_not_found(),
                other => other.into(),
            })?;
            process_inbox_now(Arc::clone(&store)).await?;
            let delivery = store.delivery(business, id).await?.ok_or_else(delivery_not_found)?;
            let text = format!(
                "delivery {id}: {}{}",
                delivery.state.as_str(),
                delivery.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
            );
            output.print(&DeliveryView::new(&delivery, false), text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn delivery_not_found() -> Failure {
    Failure::Rejected(Rejection::not_found("delivery_not_found", "this business has no delivery with this id"))
}

/// Processes what is in the inbox in this process (as the server would), including sending
/// confirmations and questions, and waits for those sends.
async fn process_inbox_now(store: Arc<dyn Store>) -> Result<(), Failure> {
    let client = OutboundClient::new(RetryPolicy::default()).map_err(|e| Failure::Other(e.into()))?;
    let processor = Processor::new(store, client, ProcessorConfig::default());
    processor.drain().await?;
    processor.wait_for_sends().await;
    Ok(())
}

pub async fn run_signals(global: &GlobalArgs, output: Output, command: SignalsCommand) -> Result<ExitCode, Failure> {
    let store = global.database()?.open().await?;
    let SignalsCommand::List { business, kind, message_id, limit } = command;
    let kind = match kind.as_deref() {
        Some(text) => Some(
            SignalKind::parse(text)
                .ok_or_else(|| Failure::rejected("unknown_signal_kind", format!("no signal kind `{text}`")))?,
        ),
        None => None,
    };
    let limit = limit.clamp(1, 1000);
    let filter = SignalFilter { kind, message_id, limit, ..SignalFilter::default() };
    let signals = store.signals(business.parse()?, &filter).await?;
    let lines: Vec<String> = signals
        .iter()
        .map(|s| {
            let signal = &s.signal;
            let who = signal.phone.map(|p| p.redacted()).or_else(|| signal.template_name.clone()).unwrap_or_default();
            format!(
                "{}  {}  {}  {}  {who}",
                s.id,
                signal.occurred_at,
                signal.kind.as_str(),
                signal.status.as_deref().unwrap_or("-")
            )
        })
        .collect();
    output.print(&SignalList::new(&signals, limit), lines.join("\n"));
    Ok(ExitCode::SUCCESS)
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::rejected("unreadable_file", format!("{}: {e}", path.display())))
}
