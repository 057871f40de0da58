//! Who may stream microdata right now. Each microdata download holds a pooled connection
//! (its snapshot) for as long as the client takes to read it, so downloads are capped: at
//! most half the pool in all, and a few per user, so one user's slow downloads can neither
//! starve submissions of connections nor keep other analysts waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Downloads one user may have under way at once.
pub const PER_USER: u32 = 2;
/// How long a download waits for a free slot before it is told to come back (503).
const WAIT: Duration = Duration::from_secs(2);

pub struct ExportPermits {
    slots: Arc<Semaphore>,
    by_user: Mutex<HashMap<i32, u32>>,
}

/// A download's right to run; dropping it (the stream ended, failed or was abandoned)
/// frees its slot.
pub struct Permit {
    _slot: OwnedSemaphorePermit,
    user: i32,
    permits: Arc<ExportPermits>,
}

impl ExportPermits {
    pub fn new(slots: usize) -> Arc<ExportPermits> {
        Arc::new(ExportPermits { slots: Arc::new(Semaphore::new(slots.max(1))), by_user: Mutex::default() })
    }

    /// A slot for `user`: 429 when they already have `PER_USER` downloads under way, 503
    /// when every slot stays taken for `WAIT`.
    pub async fn acquire(self: &Arc<Self>, user: i32) -> Result<Permit, ApiError> {
        {
            let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
            let mine = by_user.entry(user).or_default();
            if *mine >= PER_USER {
                return Err(ApiError::TooManyRequests(30));
            }
            *mine += 1;
        }
        // From here on a failure must give the user's count back: the permit's drop does.
        let slot = tokio::time::timeout(WAIT, self.slots.clone().acquire_owned()).await;
        match slot {
            Ok(Ok(slot)) => Ok(Permit { _slot: slot, user, permits: self.clone() }),
            _ => {
                self.release(user);
                Err(ApiError::Unavailable)
            }
        }
    }

    fn release(&self, user: i32) {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mine) = by_user.get_mut(&user) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                by_user.remove(&user);
            }
        }
    }

    /// Slots free right now (for tests and `/readyz` detail).
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.permits.release(self.user);
    }
}
