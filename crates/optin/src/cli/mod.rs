//! The command line. Every command except `serve` works directly on the database, so it needs
//! no running server; every command can print JSON (`--json`); errors go to stderr with the
//! same stable codes as the API, and a non-zero exit status.

mod audience;
mod business;
mod consent;
mod import;
mod jurisdiction;
mod ledger;
mod limit;
mod output;
mod whatsapp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use output::{Failure, Output};

use crate::database::DatabaseUrl;

/// optin: consent ledger and send gate for WhatsApp business messaging.
#[derive(Debug, Parser)]
#[command(name = "optin", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory for the embedded database and generated secrets.
    #[arg(long, global = true, env = "OPTIN_DATA_DIR", default_value = "./optin-data")]
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL, or `sqlite://PATH`; default: `optin.db` in the data directory.
    #[arg(long, global = true, env = "OPTIN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Print results (and errors, on stderr) as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

impl GlobalArgs {
    pub fn database(&self) -> anyhow::Result<DatabaseUrl> {
        DatabaseUrl::resolve(self.database_url.as_deref(), &self.data_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP API server.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage businesses (tenants).
    #[command(subcommand)]
    Business(business::BusinessCommand),
    /// Manage business API keys.
    #[command(subcommand)]
    Key(business::KeyCommand),
    /// Manage opt-in notices.
    #[command(subcommand)]
    Notice(business::NoticeCommand),
    /// Record an opt-in.
    OptIn(consent::OptInArgs),
    /// Record that a person confirmed their pending opt-ins (double opt-in).
    Confirm(consent::ConfirmArgs),
    /// Record an opt-out.
    OptOut(consent::OptOutArgs),
    /// Decide whether a message may be sent (exit status 0 allowed, 1 refused, 2 error).
    Check(consent::CheckArgs),
    /// Show contacts.
    #[command(subcommand)]
    Contact(consent::ContactCommand),
    /// Verify the tamper-evident ledger.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Manage a business's WhatsApp senders.
    #[command(subcommand)]
    Sender(whatsapp::SenderCommand),
    /// How a business's webhook deliveries are authenticated.
    #[command(subcommand)]
    WebhookSettings(whatsapp::WebhookSettingsCommand),
    /// A business's WhatsApp channel policy (opt-out scope, keywords, confirmations, in-thread opt-in).
    #[command(subcommand)]
    Policy(whatsapp::PolicyCommand),
    /// A business's template registry.
    #[command(subcommand)]
    Template(whatsapp::TemplateCommand),
    /// Webhook deliveries as received: list, replay.
    #[command(subcommand)]
    Inbox(whatsapp::InboxCommand),
    /// Quality signals from webhooks.
    #[command(subcommand)]
    Signals(whatsapp::SignalsCommand),
    /// A business's messaging limit (unique recipients per 24 hours) and its use.
    #[command(subcommand)]
    MessagingLimit(limit::MessagingLimitCommand),
    /// A business's jurisdiction rules (quiet hours by the recipient's place).
    #[command(subcommand)]
    Jurisdiction(jurisdiction::JurisdictionCommand),
    /// Campaign audiences: filter a CSV of numbers through the gate.
    #[command(subcommand)]
    Audience(audience::AudienceCommand),
    /// Bulk imports: existing opt-ins from a CSV file.
    #[command(subcommand)]
    Import(import::ImportCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "OPTIN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Operator token (at least 16 characters); without it one is generated on first start.
    #[arg(long, env = "OPTIN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Create a demo business (once) and print its API key.
    #[arg(long)]
    pub demo: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "OPTIN_BODY_LIMIT", default_value_t = 65_536)]
    pub body_limit: usize,
    /// Largest accepted webhook delivery or template file, in bytes (Meta sends up to 3 MB).
    #[arg(long, env = "OPTIN_WEBHOOK_BODY_LIMIT", default_value_t = 8 * 1024 * 1024)]
    pub webhook_body_limit: usize,
    /// Posts to the hosted pages (form, confirmation, preferences) one client address may make per minute.
    #[arg(long, env = "OPTIN_PAGE_POSTS_PER_IP_PER_MINUTE", default_value_t = 20)]
    pub page_posts_per_ip_per_minute: u32,
    /// Form submissions for one phone number per hour.
    #[arg(long, env = "OPTIN_FORM_POSTS_PER_NUMBER_PER_HOUR", default_value_t = 5)]
    pub form_posts_per_number_per_hour: u32,
    /// Take the client's address and scheme from X-Forwarded-For / X-Forwarded-Proto: only behind
    /// a reverse proxy that sets them.
    #[arg(long, env = "OPTIN_TRUST_FORWARDED_HEADERS")]
    pub trust_forwarded_headers: bool,
    /// Where people reach this server (https://optin.example): the base of the links it sends and
    /// shows (confirmation links, preference links, form URLs). Default: http://<listen address>.
    #[arg(long, env = "OPTIN_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// Runs a CLI command that is not `serve` and returns the process exit status.
pub async fn run(global: &GlobalArgs, command: Command) -> ExitCode {
    let output = Output { json: global.json };
    let result = match command {
        Command::Serve(_) => unreachable!("serve is dispatched by main"),
        Command::Migrate => migrate(global, output).await,
        Command::Business(command) => business::run_business(global, output, command).await,
        Command::Key(command) => business::run_key(global, output, command).await,
        Command::Notice(command) => business::run_notice(global, output, command).await,
        Command::OptIn(args) => consent::opt_in(global, output, args).await,
        Command::Confirm(args) => consent::confirm(global, output, args).await,
        Command::OptOut(args) => consent::opt_out(global, output, args).await,
        Command::Check(args) => consent::check(global, output, args).await,
        Command::Contact(command) => consent::run_contact(global, output, command).await,
        Command::Ledger(command) => ledger::run(global, output, command).await,
        Command::Sender(command) => whatsapp::run_sender(global, output, command).await,
        Command::WebhookSettings(command) => whatsapp::run_webhook_settings(global, output, command).await,
        Command::Policy(command) => whatsapp::run_policy(global, output, command).await,
        Command::Template(command) => whatsapp::run_template(global, output, command).await,
        Command::Inbox(command) => whatsapp::run_inbox(global, output, command).await,
        Command::Signals(command) => whatsapp::run_signals(global, output, command).await,
        Command::MessagingLimit(command) => limit::run(global, output, command).await,
        Command::Jurisdiction(command) => jurisdiction::run(global, output, command).await,
        Command::Audience(command) => audience::run(global, output, command).await,
        Command::Import(command) => import::run(global, output, command).await,
    };
    match result {
        Ok(code) => code,
        Err(failure) => output.fail(&failure),
    }
}

async fn migrate(global: &GlobalArgs, output: Output) -> Result<ExitCode, Failure> {
    let database = global.database()?;
    let applied = database.migrate().await?;
    let text = if applied.is_empty() {
        format!("{database:?} is up to date")
    } else {
        format!("applied to {database:?}: {}", applied.join(", "))
    };
    output.print(&serde_json::json!({ "database": database.redacted(), "applied": applied }), text);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
