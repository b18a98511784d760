//! `optin opt-in`, `optin confirm`, `optin opt-out`, `optin check` and `optin contact`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::consent::OptOutSource;
use optin_core::phone::Region;
use optin_http::views::{ContactEvents, ContactView, DecisionView, RecordedView};
use optin_store::intake::{self, ConfirmationInput, ConsentTerms, OptInInput, OptOutInput, PhoneInput};
use optin_store::{Recorded, Store, tenancy};
use serde_json::{Map, Value, json};

use super::business::BusinessArg;
use super::{Failure, GlobalArgs, Output};

#[derive(Debug, Args)]
pub struct PhoneArgs {
    /// The phone number, in any common format.
    #[arg(long)]
    pub phone: String,
    /// ISO country code for numbers written without a country code (e.g. US).
    #[arg(long)]
    pub country: Option<String>,
}

impl PhoneArgs {
    fn input(&self) -> PhoneInput {
        PhoneInput { phone: self.phone.clone(), country: self.country.clone() }
    }
}

#[derive(Debug, Args)]
pub struct OptInArgs {
    #[command(flatten)]
    business: BusinessArg,
    #[command(flatten)]
    phone: PhoneArgs,
    /// A category the person opted in to; repeatable.
    #[arg(long = "category", required = true)]
    categories: Vec<String>,
    /// How the opt-in was collected: sms, web_form, ivr, paper, in_person, messaging_channel, whatsapp_thread, import, api.
    #[arg(long)]
    method: String,
    /// The id of the registered notice the person was shown.
    #[arg(long)]
    notice: String,
    /// When the person opted in (RFC 3339); default now.
    #[arg(long)]
    collected_at: Option<String>,
    /// The evidence as a JSON object.
    #[arg(long)]
    evidence: Option<String>,
    /// One evidence field as KEY=VALUE; repeatable, merged into --evidence.
    #[arg(long = "evidence-field", value_name = "KEY=VALUE")]
    evidence_fields: Vec<String>,
    /// What the consent rests on: express (default), implied_purchase or implied_inquiry.
    #[arg(long)]
    basis: Option<String>,
    /// For implied consent: when the purchase or inquiry happened (RFC 3339); default --collected-at.
    #[arg(long)]
    basis_at: Option<String>,
    /// Keep the opt-in pending until the person confirms it (`optin confirm`).
    #[arg(long)]
    double_opt_in: bool,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    business: BusinessArg,
    #[command(flatten)]
    phone: PhoneArgs,
    /// A category the person confirmed; repeatable. None: every category waiting for confirmation.
    #[arg(long = "category")]
    categories: Vec<String>,
    /// How the person confirmed: whatsapp_thread, sms, web_form (a link)...
    #[arg(long)]
    method: String,
    /// Evidence as a JSON object.
    #[arg(long)]
    evidence: Option<String>,
}

#[derive(Debug, Args)]
pub struct OptOutArgs {
    #[command(flatten)]
    business: BusinessArg,
    #[command(flatten)]
    phone: PhoneArgs,
    /// A category to opt out of; repeatable. None means all categories.
    #[arg(long = "category")]
    categories: Vec<String>,
    /// Where the opt-out came from: keyword, agent, api, email, platform, sms, ivr, web,
    /// preference_page, support_desk or other.
    #[arg(long, default_value = "agent", value_parser = parse_source)]
    source: OptOutSource,
    /// Who recorded it (an agent's name, a system).
    #[arg(long)]
    recorded_by: String,
    /// Evidence as a JSON object.
    #[arg(long)]
    evidence: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    business: BusinessArg,
    #[command(flatten)]
    phone: PhoneArgs,
    /// The category of the message.
    #[arg(long)]
    category: String,
    /// When the message would go out (RFC 3339); default now.
    #[arg(long)]
    at: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Show the contact's current consent per category.
    Show {
        #[command(flatten)]
        business: BusinessArg,
        #[command(flatten)]
        phone: PhoneArgs,
        /// Also show the full history of consent events with their evidence.
        #[arg(long)]
        events: bool,
    },
}

async fn open_business(
    global: &GlobalArgs,
    business: &BusinessArg,
) -> Result<(std::sync::Arc<dyn Store>, Business), Failure> {
    let store = global.database()?.open().await?;
    let business = tenancy::require_business(store.as_ref(), business.parse()?).await?;
    Ok((store, business))
}

/// An optional RFC 3339 argument, refused with `invalid_{name}`.
fn parse_time_arg(text: Option<&str>, code: &'static str, name: &str) -> Result<Option<Timestamp>, Failure> {
    text.map(|text| {
        text.parse::<Timestamp>()
            .map_err(|_| Failure::rejected(code, format!("{name} must be an RFC 3339 time, e.g. 2026-01-31T09:30:00Z")))
    })
    .transpose()
}

pub async fn opt_in(global: &GlobalArgs, output: Output, args: OptInArgs) -> Result<ExitCode, Failure> {
    let collected_at = parse_time_arg(args.collected_at.as_deref(), "invalid_collected_at", "collected_at")?;
    let basis_at = parse_time_arg(args.basis_at.as_deref(), "invalid_basis_at", "basis_at")?;
    let evidence = parse_evidence(args.evidence.as_deref(), &args.evidence_fields)?;
    let (store, business) = open_business(global, &args.business).await?;
    let input = OptInInput {
        phone: args.phone.input(),
        categories: args.categories,
        method: args.method,
        notice_id: args.notice,
        collected_at,
        evidence,
        terms: ConsentTerms { basis: args.basis, basis_at, double_opt_in: args.double_opt_in },
    };
    let recorded = intake::record_opt_in(store.as_ref(), &business, input, Timestamp::now()).await?;
    print_recorded(output, recorded, "opt-in");
    Ok(ExitCode::SUCCESS)
}

pub async fn confirm(global: &GlobalArgs, output: Output, args: ConfirmArgs) -> Result<ExitCode, Failure> {
    let evidence = parse_evidence(args.evidence.as_deref(), &[])?;
    let (store, business) = open_business(global, &args.business).await?;
    let input = ConfirmationInput {
        phone: args.phone.input(),
        categories: (!args.categories.is_empty()).then_some(args.categories),
        method: args.method,
        evidence,
    };
    let recorded = intake::record_confirmation(store.as_ref(), &business, input, Timestamp::now()).await?;
    print_recorded(output, recorded, "confirmation");
    Ok(ExitCode::SUCCESS)
}

pub async fn opt_out(global: &GlobalArgs, output: Output, args: OptOutArgs) -> Result<ExitCode, Failure> {
    let evidence = parse_evidence(args.evidence.as_deref(), &[])?;
    let (store, business) = open_business(global, &args.business).await?;
    let input = OptOutInput {
        phone: args.phone.input(),
        categories: (!args.categories.is_empty()).then_some(args.categories),
        source: args.source,
        recorded_by: args.recorded_by,
        evidence,
    };
    let recorded = intake::record_opt_out(store.as_ref(), &business, input, Timestamp::now()).await?;
    print_recorded(output, recorded, "opt-out");
    Ok(ExitCode::SUCCESS)
}

pub async fn check(global: &GlobalArgs, output: Output, args: CheckArgs) -> Result<ExitCode, Failure> {
    let region = parse_region(args.phone.country.as_deref())?;
    let at = match args.at.as_deref() {
        Some(text) => text.parse::<Timestamp>().map_err(|_| {
            Failure::rejected("invalid_time", "--at must be an RFC 3339 time, such as 2026-12-01T15:00:00Z")
        })?,
        None => Timestamp::now(),
    };
    let (store, business) = open_business(global, &args.business).await?;
    let decision =
        optin_store::gate::decide_send(store.as_ref(), &business, &args.phone.phone, region, &args.category, at)
            .await?;
    let text = if decision.allowed() {
        "allowed".to_owned()
    } else {
        let lines: Vec<String> = decision.reasons.iter().map(|r| format!("  {}: {}", r.code(), r.detail())).collect();
        format!("refused\n{}", lines.join("\n"))
    };
    output.print(&DecisionView::from(&decision), text);
    Ok(if decision.allowed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub async fn run_contact(global: &GlobalArgs, output: Output, command: ContactCommand) -> Result<ExitCode, Failure> {
    let ContactCommand::Show { business, phone, events } = command;
    let (store, business) = open_business(global, &business).await?;
    let number = phone.input().parse().map_err(|p| Failure::rejected(p.code, p.detail))?;
    let consent = store.contact_consent(business.id, number).await?;
    let mut lines = vec![number.e164()];
    for category in &business.categories {
        let state = consent.get(&category.name);
        let status = state.map_or("none", |s| s.status.as_str());
        let since = state.map(|s| s.since.to_string()).unwrap_or_default();
        let method = state.and_then(|s| s.method).map(|m| m.as_str()).unwrap_or_default();
        lines.push(format!("  {:<24} {:<20} {since} {method}", category.name.as_str(), status));
    }
    let contact = ContactView::new(&business, number, &consent);
    if !events {
        output.print(&contact, lines.join("\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let entries = store.contact_events(business.id, number).await?;
    for entry in &entries {
        let event = entry.event().map_err(|e| Failure::Other(anyhow::anyhow!("unreadable ledger entry: {e}")))?;
        let change = serde_json::to_string(&event.change).unwrap_or_default();
        lines.push(format!("  #{} {} {} {change}", entry.index, event.recorded_at, event.kind()));
    }
    let history = ContactEvents::new(number, entries)?;
    output.print(&json!({"contact": contact, "history": history}), lines.join("\n"));
    Ok(ExitCode::SUCCESS)
}

fn print_recorded(output: Output, recorded: Recorded, what: &str) {
    let lines: Vec<String> = recorded.outcomes.iter().map(|(c, o)| format!("  {c}: {o:?}")).collect();
    let text =
        format!("recorded {what} {} (ledger #{})\n{}", recorded.event_id, recorded.chain_index, lines.join("\n"));
    output.print(&RecordedView::new(recorded), text);
}

fn parse_region(country: Option<&str>) -> Result<Option<Region>, Failure> {
    country.map(|c| Region::parse(c).map_err(|e| Failure::rejected(e.code(), e.to_string()))).transpose()
}

fn parse_evidence(json_text: Option<&str>, fields: &[String]) -> Result<Map<String, Value>, Failure> {
    let mut evidence = match json_text {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Failure::rejected("invalid_evidence", "--evidence must be a JSON object")),
        },
        None => Map::new(),
    };
    for field in fields {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| Failure::rejected("invalid_evidence", format!("`{field}` is not KEY=VALUE")))?;
        evidence.insert(key.trim().to_owned(), Value::String(value.to_owned()));
    }
    Ok(evidence)
}

/// Opt-out sources have the same names on the command line as in the API.
fn parse_source(text: &str) -> Result<OptOutSource, String> {
    serde_json::from_value(Value::String(text.to_owned())).map_err(|_| format!("unknown source `{text}`"))
}
