//! Proof: verifying a business's ledger chain against what the store holds.

use optin_core::ids::BusinessId;
use optin_core::ledger::{ChainBreak, ChainHead, ChainVerifier};

use crate::store::{Store, StoreError};

/// How many entries are read per page while verifying.
const PAGE_SIZE: usize = 1_000;

/// The result of verifying one business's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerReport {
    pub head: Option<ChainHead>,
    /// Events that verified before the first break (all of them when intact).
    pub verified_events: u64,
    pub first_break: Option<ChainBreak>,
}

impl LedgerReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Re-hashes the business's chain up to the head recorded when verification started.
pub async fn verify_ledger(store: &dyn Store, business: BusinessId) -> Result<LedgerReport, StoreError> {
    let head = store.chain_head(business).await?;
    let last_index = head.map_or(0, |h| h.index);
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    let mut verified_events = 0;
    loop {
        let page = store.ledger_page(business, after, PAGE_SIZE).await?;
        let Some(last) = page.last() else { break };
        after = last.index;
        for entry in page.iter().filter(|e| e.index <= last_index) {
            if let Err(first_break) = verifier.check(entry) {
                return Ok(LedgerReport { head, verified_events, first_break: Some(first_break) });
            }
            verified_events += 1;
        }
        if after >= last_index {
            break;
        }
    }
    let first_break = verifier.finish(head).err();
    Ok(LedgerReport { head, verified_events, first_break })
}
