//! The outbox's async face (part of `batcher → outbox → transport`): the batcher and the
//! transport share one [`Outbox`] through it; each call runs on the blocking pool.

use super::{Outbox, OutboxCounters, OutboxDepth, OutboxError, Record};

/// The async face of the outbox shared by the batcher (writer) and the transport (reader): runs
/// each call on the blocking pool and wakes the transport when a record is added.
#[derive(Clone)]
pub struct OutboxHandle {
    inner: std::sync::Arc<std::sync::Mutex<Outbox>>,
    added: std::sync::Arc<tokio::sync::Notify>,
}

impl OutboxHandle {
    /// Wraps an opened outbox.
    pub fn new(outbox: Outbox) -> Self {
        Self {
            inner: std::sync::Arc::new(std::sync::Mutex::new(outbox)),
            added: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Outbox) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the data on disk intact; keep going.
            let mut outbox = inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut outbox)
        })
        .await
        .map_err(|e| OutboxError::Task(e.to_string()))?
    }

    /// Appends a batch and wakes the transport; `None` when the batch was dropped (counted).
    pub async fn append(
        &self,
        payload: Vec<u8>,
        sample_count: u32,
    ) -> Result<Option<u64>, OutboxError> {
        let seq = self.call(move |o| o.append(&payload, sample_count)).await?;
        self.added.notify_one();
        Ok(seq)
    }

    /// The oldest unacknowledged record (skipping, counted, any that fail their checksum).
    pub async fn oldest(&self) -> Result<Option<Record>, OutboxError> {
        self.call(|o| o.oldest()).await
    }

    /// Waits until a record may have been added.
    pub async fn wait_for_more(&self) {
        self.added.notified().await;
    }

    /// Acknowledges up to `seq`.
    pub async fn ack(&self, seq: u64) -> Result<(), OutboxError> {
        self.call(move |o| o.ack(seq)).await
    }

    /// Drops a record that can never be delivered, counting its samples.
    pub async fn discard(&self, seq: u64) -> Result<(), OutboxError> {
        self.call(move |o| o.discard(seq)).await
    }

    /// Epoch, depth and counters in one consistent read.
    pub async fn status(&self) -> Result<(u64, OutboxDepth, OutboxCounters), OutboxError> {
        self.call(|o| Ok((o.epoch(), o.depth(), o.counters())))
            .await
    }
}
