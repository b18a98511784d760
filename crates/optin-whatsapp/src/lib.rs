//! The WhatsApp shell around optin's core: sending through the Cloud API or 360dialog, and
//! processing webhook deliveries from the inbox.

pub mod inbox;
pub mod outbound;
#[cfg(feature = "testing")]
pub mod testing;
mod thread;

pub use inbox::{Processor, ProcessorConfig};
