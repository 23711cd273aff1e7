//! Per-exchange state shared by the request and response taps, and the turning of what a side
//! saw into records.
//!
//! Each side (request, response) reports once, when its body ends, fails or is dropped; the
//! report is chunked and handed to the sink right there, on that task, under no lock.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::api::{ApiRef, Apis, BodyFacts, Route, TokenUsage};
use crate::capture::LoggedMessage;
use crate::chunk::chunk_captured;
use crate::correlation::CorrelationId;
use crate::privacy;
use crate::{LlmLogRecord, LlmLogSink, LogConfig, Outcome, RecordKind};

/// What a layer and all its services share.
pub(crate) struct Shared {
    pub(crate) sink: Arc<dyn LlmLogSink>,
    pub(crate) config: LogConfig,
    pub(crate) stats: Arc<Counters>,
    pub(crate) apis: Apis,
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
    pub(crate) api: ApiRef,
    pub(crate) correlation_id: CorrelationId,
    pub(crate) time_generated: SystemTime,
    pub(crate) started: Instant,
    pub(crate) trace: Option<(String, String)>,
    /// Set when the request side reports; read by the response side for the model fallback
    /// (and the token estimate).
    pub(crate) request_facts: Mutex<Option<RequestFacts>>,
}

/// What the response side needs to know of the request.
#[derive(Debug, Default)]
pub(crate) struct RequestFacts {
    pub(crate) model: Option<String>,
    /// The request asked for a stream: its response is a streamed completion even when the
    /// upstream answered with an error body instead.
    pub(crate) stream: bool,
    /// The logged prompt, kept for the token estimate only.
    #[cfg_attr(not(feature = "tokenizer"), allow(dead_code))]
    pub(crate) prompt: Option<LoggedMessage>,
}

/// What one side saw, ready to become records.
#[derive(Default)]
pub(crate) struct SideReport {
    pub(crate) message: LoggedMessage,
    pub(crate) errors: Vec<String>,
    pub(crate) status: Option<u16>,
    pub(crate) model: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) is_stream: bool,
    pub(crate) usage: TokenUsage,
    pub(crate) first_token_at: Option<Instant>,
    pub(crate) finish_reasons: Vec<String>,
}

impl SideReport {
    /// A side's report from what its reader found; `side` prefixes the reader's errors.
    pub(crate) fn from_facts(facts: BodyFacts, side: &str, mut errors: Vec<String>) -> Self {
        errors.extend(facts.errors.into_iter().map(|e| format!("{side}: {e}")));
        SideReport {
            message: facts.message,
            errors,
            status: None,
            model: facts.model,
            request_id: facts.request_id,
            is_stream: facts.stream,
            usage: facts.usage,
            first_token_at: facts.first_token_at,
            finish_reasons: facts.finish_reasons,
        }
    }
}

impl Exchange {
    pub(crate) fn new(
        shared: Arc<Shared>,
        route: Route,
        api: ApiRef,
        correlation_id: CorrelationId,
        trace: Option<(String, String)>,
    ) -> Self {
        shared.stats.exchanges_started.fetch_add(1, Ordering::Relaxed);
        Exchange {
            shared,
            route,
            api,
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

    pub(crate) fn set_request_facts(&self, side: &SideReport) {
        let facts = RequestFacts {
            model: side.model.clone().or_else(|| self.route.model.clone()),
            stream: side.is_stream,
            prompt: cfg!(feature = "tokenizer").then(|| side.message.clone()),
        };
        *self.request_facts.lock().unwrap_or_else(|p| p.into_inner()) = Some(facts);
    }

    /// Turns one side's report into records and hands them to the sink.
    pub(crate) fn report(&self, kind: RecordKind, outcome: Outcome, mut side: SideReport) {
        let duration = self.started.elapsed();
        let cap = match kind {
            RecordKind::Request => self.config().prompt_bytes,
            RecordKind::Response => self.config().completion_bytes,
        };
        let estimated = kind == RecordKind::Response && self.estimate_tokens(outcome, &mut side);
        let redactions = match self.config().redact_secrets {
            true => redact_secrets(&mut side, cap),
            false => BTreeMap::new(),
        };
        let chunked = chunk_captured(&side.message, self.config().chunk_bytes, cap);
        if let Some(at) = chunked.invalid_utf8_at {
            side.errors.push(format!(
                "the message is not valid UTF-8 (first bad byte at offset {at}); bad bytes were replaced with U+FFFD"
            ));
        }
        let error = (!side.errors.is_empty()).then(|| side.errors.join("; "));
        let model = match kind {
            RecordKind::Request => side.model.or_else(|| self.route.model.clone()),
            RecordKind::Response => {
                // What the request said, once its side has reported: whether it asked for a
                // stream, and its model where the response names none (cloned only then).
                let facts = self.request_facts.lock().unwrap_or_else(|p| p.into_inner());
                let request = facts.as_ref();
                side.is_stream |= request.is_some_and(|f| f.stream);
                side.model.or_else(|| request.and_then(|f| f.model.clone()))
            }
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
                api: self.route.family.clone(),
                provider: Some(self.route.provider.to_string()),
                operation_name: self.route.operation.to_string(),
                api_version: self.route.api_version.clone(),
                deployment_name: self.route.deployment.clone(),
                model_name: model.clone(),
                request_id: side.request_id.clone(),
                is_stream_completion: side.is_stream,
                prompt_tokens: token(side.usage.prompt),
                completion_tokens: token(side.usage.completion),
                total_tokens: token(side.usage.total),
                cached_tokens: token(side.usage.cached),
                reasoning_tokens: token(side.usage.reasoning),
                cache_creation_tokens: token(side.usage.cache_creation),
                tokens_estimated: tokens && estimated,
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
                redactions: redactions.clone(),
                region: self.shared.config.region.clone(),
                trace_id: self.trace.as_ref().map(|t| t.0.clone()),
                span_id: self.trace.as_ref().map(|t| t.1.clone()),
            };
            self.deliver(record);
        }
    }

    /// Fills in estimated token counts when the provider reported none and the model's
    /// tokenizer is known (`tokenizer` feature); whether it did.
    fn estimate_tokens(&self, outcome: Outcome, side: &mut SideReport) -> bool {
        let answered = side.status.is_some_and(|s| s < 400) && outcome != Outcome::ServiceError;
        if !answered || !side.usage.is_empty() || !self.config().estimate_tokens {
            return false;
        }
        #[cfg(feature = "tokenizer")]
        {
            let facts = self.request_facts.lock().unwrap_or_else(|p| p.into_inner());
            let model = side
                .model
                .clone()
                .or_else(|| facts.as_ref().and_then(|f| f.model.clone()));
            let prompt = facts.as_ref().and_then(|f| f.prompt.as_ref());
            let estimate =
                crate::estimate::estimate(model.as_deref(), &self.route.family, prompt, &side.message);
            if let Some(usage) = estimate {
                side.usage = usage;
                return true;
            }
        }
        false
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

/// Replaces the credentials in a side's logged message and error texts (see
/// [`privacy`](crate::privacy)); what was replaced, by kind. The message keeps its full size
/// (`MessageBytes` is the size as it passed), stays within `cap` (a replacement can be longer
/// than what it replaces), and a credential the cap cut short at its end is replaced too.
fn redact_secrets(side: &mut SideReport, cap: usize) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    if privacy::segments_may_hold_secrets(side.message.segments()) {
        let whole = side.message.to_bytes();
        let mut text = match privacy::redact_secrets(&whole) {
            Some((text, found)) => {
                counts = found;
                text
            }
            None => whole.to_vec(),
        };
        let mut truncated = side.message.truncated;
        if truncated {
            if let Some(at) = privacy::secret_cut_at_the_end(&text) {
                text.truncate(at);
                text.extend_from_slice(b"[REDACTED:cut_short]");
                *counts.entry("cut_short").or_insert(0) += 1;
            }
        }
        if text.len() > cap {
            // Longer than the cap after replacements: cut at the cap, at a character start.
            let mut end = cap;
            while end > 0 && (text[end] & 0xC0) == 0x80 {
                end -= 1;
            }
            text.truncate(end);
            truncated = true;
        }
        if !counts.is_empty() {
            side.message = LoggedMessage {
                segments: vec![Bytes::from(text)],
                total: side.message.total,
                truncated,
            };
        }
    }
    for error in &mut side.errors {
        if let Some(redacted) = privacy::redact_secrets_in(error, &mut counts) {
            *error = redacted;
        }
    }
    counts.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.shared
            .stats
            .exchanges_finished
            .fetch_add(1, Ordering::Relaxed);
    }
}
