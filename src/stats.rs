//! The counters a layer keeps, and their snapshot, [`LogStats`].

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters kept by a layer; read them with [`LlmLogLayer::stats`](crate::LlmLogLayer::stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) exchanges_started: AtomicU64,
    pub(crate) exchanges_finished: AtomicU64,
    pub(crate) records_emitted: AtomicU64,
    pub(crate) sink_panics: AtomicU64,
    pub(crate) exchanges_not_logged: AtomicU64,
    pub(crate) redactor_failures: AtomicU64,
}

/// A snapshot of a layer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Exchanges the layer recognised and logged.
    pub exchanges_started: u64,
    /// Exchanges whose request and response sides have both reported.
    pub exchanges_finished: u64,
    /// Records handed to the sink without a panic.
    pub records_emitted: u64,
    /// Records whose `emit` panicked (each such record is lost).
    pub sink_panics: u64,
    /// Recognised exchanges not logged because a [`LogControl`](crate::LogControl) (or the
    /// client's header, where allowed) said `Off`.
    pub exchanges_not_logged: u64,
    /// Messages whose content was withheld because the [`Redactor`](crate::privacy::Redactor) panicked or asked for an
    /// edit that would break the message.
    pub redactor_failures: u64,
}

impl LogStats {
    /// Exchanges still in flight.
    pub fn exchanges_open(&self) -> u64 {
        self.exchanges_started.saturating_sub(self.exchanges_finished)
    }
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LogStats {
        LogStats {
            exchanges_started: self.exchanges_started.load(Ordering::Relaxed),
            exchanges_finished: self.exchanges_finished.load(Ordering::Relaxed),
            records_emitted: self.records_emitted.load(Ordering::Relaxed),
            sink_panics: self.sink_panics.load(Ordering::Relaxed),
            exchanges_not_logged: self.exchanges_not_logged.load(Ordering::Relaxed),
            redactor_failures: self.redactor_failures.load(Ordering::Relaxed),
        }
    }
}
