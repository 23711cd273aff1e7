//! Where records go: the [`LlmLogSink`] trait and the built-in sinks.
//!
//! A sink is called on the task that finished an exchange's body, outside any lock the traffic
//! waits on. It must not block: hand the record to a channel or a buffer and return. A panic in
//! a sink is caught and counted (see [`LogStats::sink_panics`](crate::LogStats)); the request it
//! belongs to is unaffected.
//!
//! Closures are sinks:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use tower_llm_log::{LlmLogLayer, LlmLogRecord};
//!
//! let tokens = Arc::new(AtomicU64::new(0));
//! let counter = tokens.clone();
//! let layer = LlmLogLayer::new(move |record: LlmLogRecord| {
//!     counter.fetch_add(record.total_tokens.unwrap_or(0), Ordering::Relaxed);
//! });
//! # let _ = layer;
//! ```

use std::sync::Arc;

use crate::LlmLogRecord;

mod compose;
mod file;
mod json_lines;
mod memory;
#[cfg(feature = "metrics")]
mod metrics;
mod non_blocking;
#[cfg(feature = "otlp")]
mod otlp;
mod tracing;

pub use self::tracing::{TracingSink, TRACING_TARGET};

/// The longest `flush` of a file or writer sink waits for a write in progress on another
/// thread before it gives up with [`WouldBlock`](std::io::ErrorKind::WouldBlock): an ordinary
/// write ends well within it; one stuck on a hung mount never does.
pub const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Locks `mutex`, waiting at most `wait` for another holder (a poisoned lock is taken as it is).
fn lock_within<T>(
    mutex: &std::sync::Mutex<T>,
    wait: std::time::Duration,
) -> Option<std::sync::MutexGuard<'_, T>> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match mutex.try_lock() {
            Ok(guard) => return Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}
#[cfg(feature = "metrics")]
pub use self::metrics::{MetricsSink, MAX_KEPT_SERIES, MAX_LABEL_VALUES};
pub use compose::{FanOut, Filtered};
pub use file::{JsonLinesFile, JsonLinesFileBuilder};
pub use json_lines::JsonLinesSink;
pub use memory::MemorySink;
pub use non_blocking::{NonBlocking, NonBlockingBuilder, NonBlockingGuard, ShutdownReport, SinkStats};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpError, OtlpProtocol, OtlpSink, OtlpSinkBuilder};

/// Receives log records. Implemented for closures `Fn(LlmLogRecord)`, `Arc<S>` and
/// `Box<dyn LlmLogSink>`.
pub trait LlmLogSink: Send + Sync + 'static {
    /// Takes one record. Must not block: the caller is a request's task.
    fn emit(&self, record: LlmLogRecord);

    /// Takes several records at once. [`NonBlocking`] hands its queue over in batches; a sink
    /// that can write a batch at once (one flush, one network call) overrides this. The default
    /// calls [`emit`](LlmLogSink::emit) for each.
    fn emit_batch(&self, records: Vec<LlmLogRecord>) {
        for record in records {
            self.emit(record);
        }
    }

    /// Takes several records to read, not to keep. [`FanOut`] hands the batch this way to each
    /// of its sinks but the last, so that a sink that keeps nothing of a record (a file,
    /// metrics, tracing) costs no copy of it: before this, a gateway writing a file with
    /// metrics and tracing beside it deep-copied every record twice. The default copies the
    /// records into [`emit_batch`](LlmLogSink::emit_batch); a sink that only reads records
    /// overrides it.
    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        self.emit_batch(records.to_vec());
    }
}

impl<F> LlmLogSink for F
where
    F: Fn(LlmLogRecord) + Send + Sync + 'static,
{
    fn emit(&self, record: LlmLogRecord) {
        self(record)
    }
}

impl<S: LlmLogSink + ?Sized> LlmLogSink for Arc<S> {
    fn emit(&self, record: LlmLogRecord) {
        (**self).emit(record)
    }

    fn emit_batch(&self, records: Vec<LlmLogRecord>) {
        (**self).emit_batch(records)
    }

    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        (**self).emit_borrowed(records)
    }
}

impl LlmLogSink for Box<dyn LlmLogSink> {
    fn emit(&self, record: LlmLogRecord) {
        (**self).emit(record)
    }

    fn emit_batch(&self, records: Vec<LlmLogRecord>) {
        (**self).emit_batch(records)
    }

    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        (**self).emit_borrowed(records)
    }
}
