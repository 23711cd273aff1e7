//! Per-exchange state shared by the request and response taps, and the turning of what a side
//! saw into records.
//!
//! Each side (request, response) reports once, when its body ends, fails or is dropped; the
//! report is chunked and handed to the sink right there, on that task, under no lock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::api::openai::{RequestFacts, Usage};
use crate::api::Route;
use crate::capture::Captured;
use crate::chunk::chunk_captured;
use crate::correlation::CorrelationId;
use crate::{LlmLogRecord, LlmLogSink, LogConfig, Outcome, RecordKind};

/// What a layer and all its services share.
pub(crate) struct Shared {
    pub(crate) sink: Arc<dyn LlmLogSink>,
    pub(crate) config: LogConfig,
    pub(crate) stats: Arc<Counters>,
}

/// Counters kept by a layer; read them with [`LlmLogLayer::stats`](crate::LlmLogLayer::stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) exchanges_started: AtomicU64,
    pub(crate) exchanges_finished: AtomicU64,
    pub(crate) records_emitted: AtomicU64,
    pub(crate) sink_panics: AtomicU64,
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
        }
    }
}

/// One request/response exchange being logged.
pub(crate) struct Exchange {
    pub(crate) shared: Arc<Shared>,
    pub(crate) route: Route,
    pub(crate) correlation_id: CorrelationId,
    pub(crate) time_generated: SystemTime,
    pub(crate) started: Instant,
    pub(crate) trace: Option<(String, String)>,
    /// Set when the request side reports; read by the response side for the model fallback.
    pub(crate) request_facts: Mutex<Option<RequestFacts>>,
}

/// What one side saw, ready to become records.
#[derive(Default)]
pub(crate) struct SideReport {
    pub(crate) message: Captured,
    pub(crate) errors: Vec<String>,
    pub(crate) status: Option<u16>,
    pub(crate) model: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) is_stream: bool,
    pub(crate) usage: Usage,
    pub(crate) first_token_at: Option<Instant>,
    pub(crate) finish_reasons: Vec<String>,
}

impl Exchange {
    pub(crate) fn new(
        shared: Arc<Shared>,
        route: Route,
        correlation_id: CorrelationId,
        trace: Option<(String, String)>,
    ) -> Self {
        shared.stats.exchanges_started.fetch_add(1, Ordering::Relaxed);
        Exchange {
            shared,
            route,
            correlation_id,
            time_generated: SystemTime::now(),
            started: Instant::now(),
            trace,
            request_facts: Mutex::new(None),
        }
    }

    pub(crate) fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    pub(crate) fn set_request_facts(&self, facts: RequestFacts) {
        *self.request_facts.lock().unwrap_or_else(|p| p.into_inner()) = Some(facts);
    }

    fn request_model(&self) -> Option<String> {
        let facts = self.request_facts.lock().unwrap_or_else(|p| p.into_inner());
        facts.as_ref().and_then(|f| f.model.clone())
    }

    /// Turns one side's report into records and hands them to the sink.
    pub(crate) fn report(&self, kind: RecordKind, outcome: Outcome, mut side: SideReport) {
        let duration = self.started.elapsed();
        let cap = match kind {
            RecordKind::Request => self.config().prompt_bytes,
            RecordKind::Response => self.config().completion_bytes,
        };
        let chunked = chunk_captured(&side.message, self.config().chunk_bytes, cap);
        if let Some(at) = chunked.invalid_utf8_at {
            side.errors.push(format!(
                "the message is not valid UTF-8 (first bad byte at offset {at}); bad bytes were replaced with U+FFFD"
            ));
        }
        let error = (!side.errors.is_empty()).then(|| side.errors.join("; "));
        let model = match kind {
            RecordKind::Request => side.model,
            RecordKind::Response => side.model.or_else(|| self.request_model()),
        };
        let mut chunks = chunked.chunks;
        if chunks.is_empty() {
            chunks.push(Bytes::new());
        }
        let count = chunks.len();
        for (i, messages) in chunks.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let tokens = is_last && kind == RecordKind::Response;
            let token = |n: Option<u64>| if tokens { n } else { None };
            let record = LlmLogRecord {
                time_generated: self.time_generated,
                correlation_id: self.correlation_id.as_str().to_string(),
                kind,
                sequence_number: i as u32,
                is_last,
                api: self.route.family,
                provider: Some(self.route.provider.to_string()),
                operation_name: self.route.operation.to_string(),
                api_version: self.route.api_version.clone(),
                deployment_name: self.route.deployment.clone(),
                model_name: model.clone(),
                request_id: side.request_id.clone(),
                is_stream_completion: side.is_stream,
                prompt_tokens: token(side.usage.prompt_tokens),
                completion_tokens: token(side.usage.completion_tokens),
                total_tokens: token(side.usage.total_tokens),
                cached_tokens: token(side.usage.cached_tokens),
                reasoning_tokens: token(side.usage.reasoning_tokens),
                messages,
                message_bytes: side.message.total,
                truncated: chunked.cut,
                status_code: side.status,
                duration,
                time_to_first_token: side
                    .first_token_at
                    .map(|t| t.saturating_duration_since(self.started)),
                finish_reasons: side.finish_reasons.clone(),
                outcome,
                error: error.clone(),
                region: self.shared.config.region.clone(),
                trace_id: self.trace.as_ref().map(|t| t.0.clone()),
                span_id: self.trace.as_ref().map(|t| t.1.clone()),
            };
            self.deliver(record);
        }
    }

    fn deliver(&self, record: LlmLogRecord) {
        // Records are delivered even while the thread unwinds (a handler panicked and dropped the
        // body): those exchanges are the ones most worth logging. The cost is that a sink that
        // also panics then aborts the process, as any panic during unwinding does.
        let sink = &self.shared.sink;
        match catch_unwind(AssertUnwindSafe(|| sink.emit(record))) {
            Ok(()) => self.shared.stats.records_emitted.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.shared.stats.sink_panics.fetch_add(1, Ordering::Relaxed),
        };
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.shared
            .stats
            .exchanges_finished
            .fetch_add(1, Ordering::Relaxed);
    }
}
