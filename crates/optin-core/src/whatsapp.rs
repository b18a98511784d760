//! WhatsApp Business Platform wire formats and rules: webhook deliveries, their signatures, and
//! the providers a business sends through. Pure: bytes in, typed values out.

pub mod signature;
pub mod webhook;

use serde::{Deserialize, Serialize};

/// Who a business sends through: Meta's Cloud API directly, or 360dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Provider {
    #[serde(rename = "cloud_api")]
    CloudApi,
    #[serde(rename = "360dialog")]
    Dialog360,
}

impl Provider {
    pub fn as_str(&self) -> &'static str {
        match self {
            Provider::CloudApi => "cloud_api",
            Provider::Dialog360 => "360dialog",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        match text {
            "cloud_api" => Some(Provider::CloudApi),
            "360dialog" => Some(Provider::Dialog360),
            _ => None,
        }
    }
}
