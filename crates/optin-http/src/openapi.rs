//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes and the
//! request and response types' `ToSchema` derives.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    batch, business, businesses, channel, consent, contacts, decisions, documents, forms, imports, inbox, ivr,
    jurisdiction, keys, ledger, limit, notices, proxy, signals, sms, system, templates, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "optin",
        description = "Consent ledger and send gate for WhatsApp businesses. Errors are \
            `application/problem+json` documents with a stable `code`. Phone numbers are accepted in \
            any common format and returned in E.164; times are RFC 3339 in UTC."
    ),
    paths(
        system::healthz,
        system::readyz,
        system::openapi_json,
        system::metrics,
        businesses::create_business,
        businesses::list_businesses,
        businesses::add_categories,
        keys::issue_key,
        keys::list_keys,
        keys::revoke_key,
        business::get_business,
        business::set_brand_names,
        notices::register_notice,
        notices::list_notices,
        notices::get_notice,
        consent::record_opt_in,
        consent::record_opt_out,
        consent::record_confirmation,
        ivr::record_ivr_opt_in,
        documents::upload,
        documents::download,
        sms::set_settings,
        sms::get_settings,
        sms::receive,
        forms::put_form,
        forms::get_form,
        forms::list,
        forms::delete_form,
        forms::create_preference_link,
        forms::create_confirmation_link,
        decisions::decide,
        batch::decide_batch,
        imports::import_opt_ins,
        contacts::get_contact,
        contacts::list_contact_events,
        ledger::verify_ledger,
        jurisdiction::set_policy,
        jurisdiction::get_policy,
        channel::add_sender,
        channel::list_senders,
        channel::update_webhook_settings,
        channel::get_webhook_settings,
        channel::set_policy,
        channel::get_policy,
        webhooks::verify,
        webhooks::receive,
        templates::import_templates,
        templates::list_templates,
        templates::get_template,
        signals::list_signals,
        inbox::list_deliveries,
        inbox::get_delivery,
        inbox::replay_delivery,
        limit::set_messaging_limit,
        limit::get_messaging_limit,
        proxy::send_cloud_api,
        proxy::send_360dialog,
    ),
    modifiers(&BearerSchemes),
    tags(
        (name = "operator", description = "Across businesses; `Authorization: Bearer <operator token>`"),
        (name = "business", description = "One business; `Authorization: Bearer <business API key>`"),
        (name = "system", description = "Health, readiness, metrics and this document"),
        (name = "whatsapp", description = "One business's WhatsApp setup, templates, signals and webhook inbox; `Authorization: Bearer <business API key>`"),
        (name = "webhooks", description = "Where Meta or 360dialog deliver webhooks: authenticated by the business's webhook settings"),
        (name = "forms", description = "One business's hosted opt-in forms (`/f/{business}/{form}`, HTML for people) and preference links (`/p/{token}`); `Authorization: Bearer <business API key>`"),
        (name = "proxy", description = "The send proxy: a drop-in base URL for WhatsApp clients; the business API key where the client puts its platform token; errors in the platform's shape"),
    )
)]
struct ApiDoc;

/// The two bearer schemes: the operator token and a business's API key.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["operator_token", "business_key"] {
            components.add_security_scheme(name, SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        }
        let d360 =
            ApiKeyValue::with_description("D360-API-KEY", "A business API key, where 360dialog clients put theirs");
        components.add_security_scheme("d360_api_key", SecurityScheme::ApiKey(ApiKey::Header(d360)));
    }
}

/// The OpenAPI document of the API (also served at `GET /openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
