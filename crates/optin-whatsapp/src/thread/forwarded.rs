//! Attributing statuses to the messages the send proxy forwarded: a status webhook names only
//! the message id, so the template and business category come from the proxy's record.

use std::collections::HashMap;

use optin_store::channel::{ForwardedMessage, NewSignal, SignalKind};

use super::ThreadActions;
use crate::inbox::ProcessError;

impl ThreadActions<'_> {
    /// Adds the template and category to the statuses of forwarded messages: one lookup per
    /// message id in the group (a message's `sent`, `delivered` and `read` often come together).
    /// Statuses of other messages (optin's own, or sent around the proxy) are left as they are.
    pub(crate) async fn attribute_forwarded(&self, signals: &mut [NewSignal]) -> Result<(), ProcessError> {
        let mut known: HashMap<String, Option<ForwardedMessage>> = HashMap::new();
        for signal in signals.iter_mut().filter(|signal| signal.kind == SignalKind::MessageStatus) {
            let Some(message_id) = signal.message_id.as_deref() else { continue };
            if !known.contains_key(message_id) {
                let forwarded = self.store.forwarded_message(self.context.business.id, message_id).await?;
                known.insert(message_id.to_owned(), forwarded);
            }
            let Some(Some(forwarded)) = known.get(message_id) else { continue };
            if let Some((name, language)) = &forwarded.template {
                signal.template_name = Some(name.as_str().to_owned());
                signal.template_language = Some(language.as_str().to_owned());
            }
            signal.category.clone_from(&forwarded.category);
        }
        Ok(())
    }
}
