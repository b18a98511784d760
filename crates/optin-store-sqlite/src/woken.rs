//! A background thread woken after this process's commits: the checkpointer and the snapshot
//! saver each run on one.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use optin_store::StoreError;

/// The thread and the signal that wakes it. Dropping it closes the signal (the thread's receiver
/// then sees the end, does its last work and returns) and waits for the thread.
pub(crate) struct WokenThread {
    signal: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WokenThread {
    /// Starts `run` on a thread named `name`, with the receiving end of the signal.
    pub(crate) fn start(
        name: &str,
        run: impl FnOnce(&Receiver<()>) + Send + 'static,
    ) -> Result<WokenThread, StoreError> {
        // One pending signal is enough: the thread looks at everything committed when it wakes.
        let (signal, signals) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&signals))
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(WokenThread { signal: Some(signal), thread: Some(thread) })
    }

    /// Tells the thread that a transaction committed (never blocks).
    pub(crate) fn committed(&self) {
        if let Some(signal) = &self.signal {
            match signal.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
            }
        }
    }
}

impl Drop for WokenThread {
    fn drop(&mut self) {
        drop(self.signal.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
