//! Which sender a proxied message goes out from, and with which Graph API version.

use optin_core::business::Business;
use optin_core::whatsapp::Provider;
use optin_store::channel::Sender;

use super::graph::GraphError;
use crate::state::AppState;

/// Which sender a request sends from.
pub(super) enum SenderChoice<'a> {
    /// The Cloud API shape: the path's `phone_number_id`, called with the path's API version.
    Path { version: &'a str, phone_number_id: &'a str },
    /// The 360dialog shape: the one `X-Optin-Phone-Number-Id` names, else the business's only
    /// 360dialog sender.
    Dialog360 { phone_number_id: Option<&'a str> },
}

/// The sender to send from, and the API version to call it with.
pub(super) async fn choose_sender(
    state: &AppState,
    business: &Business,
    choice: &SenderChoice<'_>,
) -> Result<(Sender, String), GraphError> {
    let senders = state.store().senders(business.id).await.map_err(GraphError::store)?;
    let named = |id: &str| {
        let detail = format!("`{id}` is not a sender of this business (register it with POST /v1/senders)");
        senders.iter().find(|s| s.phone_number_id == id).cloned().ok_or_else(|| GraphError::unknown_sender(detail))
    };
    match choice {
        SenderChoice::Path { version, phone_number_id } => {
            if !is_api_version(version) {
                let detail = format!("`{version}` is not a Graph API version such as `v23.0`");
                return Err(GraphError::invalid("invalid_version", detail));
            }
            Ok((named(phone_number_id)?, (*version).to_owned()))
        }
        SenderChoice::Dialog360 { phone_number_id: Some(id) } => {
            let sender = named(id)?;
            let version = sender.api_version.clone();
            Ok((sender, version))
        }
        SenderChoice::Dialog360 { phone_number_id: None } => {
            let mut dialog = senders.iter().filter(|s| s.provider == Provider::Dialog360);
            match (dialog.next(), dialog.next()) {
                (Some(sender), None) => Ok((sender.clone(), sender.api_version.clone())),
                (None, _) => Err(GraphError::unknown_sender("the business has no 360dialog sender".to_owned())),
                (Some(_), Some(_)) => Err(GraphError::invalid(
                    "sender_ambiguous",
                    "the business has several 360dialog senders: name one in `X-Optin-Phone-Number-Id`".to_owned(),
                )),
            }
        }
    }
}

/// `v` and a version number, such as `v23.0` (the path segment the upstream URL gets).
fn is_api_version(version: &str) -> bool {
    let Some(number) = version.strip_prefix('v') else { return false };
    let mut parts = number.split('.');
    let digits = |part: Option<&str>| {
        part.is_some_and(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let major = parts.next();
    digits(major) && parts.next().is_none_or(|minor| digits(Some(minor))) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_v_and_a_number() {
        for good in ["v23.0", "v9", "v16.0"] {
            assert!(is_api_version(good), "{good}");
        }
        for bad in ["23.0", "v", "v23.", "v23.0.1", "v2x", "v23/../x", "latest"] {
            assert!(!is_api_version(bad), "{bad}");
        }
    }
}
