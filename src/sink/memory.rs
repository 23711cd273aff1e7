//! [`MemorySink`]: keeps records in memory, for tests.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{LlmLogRecord, LlmLogSink};

/// Keeps every record in memory. Clones share the same records, so keep one clone and give the
/// other to the layer.
///
/// Records of a response are emitted when its body ends or is dropped, which on a server can be
/// a moment after the client has read the last byte: in tests, use
/// [`wait_for`](MemorySink::wait_for) rather than reading at once.
///
/// ```
/// use tower_llm_log::{LlmLogLayer, MemorySink};
///
/// let sink = MemorySink::new();
/// let layer = LlmLogLayer::new(sink.clone());
/// # let _ = layer;
/// assert!(sink.take().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    records: Mutex<Vec<LlmLogRecord>>,
    added: Condvar,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<LlmLogRecord>> {
        // A panic while holding this lock cannot leave the Vec half-written; keep going.
        self.shared.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes and returns all records so far.
    pub fn take(&self) -> Vec<LlmLogRecord> {
        std::mem::take(&mut *self.lock())
    }

    /// A copy of all records so far, leaving them in place.
    pub fn records(&self) -> Vec<LlmLogRecord> {
        self.lock().clone()
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks until at least `count` records are held or `timeout` passes; returns whether the
    /// count was reached. Blocking: in async tests, call it from `spawn_blocking` or keep the
    /// timeout short.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut records = self.lock();
        while records.len() < count {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            records = match self.shared.added.wait_timeout(records, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

impl LlmLogSink for MemorySink {
    fn emit(&self, record: LlmLogRecord) {
        self.lock().push(record);
        self.shared.added.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use crate::RecordKind;

    #[test]
    fn take_drains_and_wait_for_sees_other_threads() {
        let sink = MemorySink::new();
        let writer = sink.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            writer.emit(sample(RecordKind::Request));
            writer.emit(sample(RecordKind::Response));
        });
        assert!(sink.wait_for(2, Duration::from_secs(5)));
        t.join().unwrap();
        assert_eq!(sink.len(), 2);
        assert_eq!(sink.records().len(), 2);
        let taken = sink.take();
        assert_eq!(taken[1].kind, RecordKind::Response);
        assert!(sink.is_empty());
        assert!(!sink.wait_for(1, Duration::from_millis(10)));
    }
}
