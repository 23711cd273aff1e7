//! [`TracingSink`]: each record as a `tracing` event, for the subscribers a service already has
//! (fmt, JSON, the OpenTelemetry bridge).
//!
//! Events have the target `tower_llm_log` (the stable name to filter on, e.g.
//! `RUST_LOG=tower_llm_log=info`), level INFO, or WARN when the exchange did not complete or
//! something could not be read. Fields are the record's, in snake case; absent values are left
//! out. Message content is included only with [`TracingSink::with_content`].
//!
//! ```
//! use tower_llm_log::sink::TracingSink;
//! use tower_llm_log::LlmLogLayer;
//!
//! let layer = LlmLogLayer::new(TracingSink::new());
//! # let _ = layer;
//! ```

use crate::{LlmLogRecord, LlmLogSink};

/// The target of every event.
pub const TRACING_TARGET: &str = "tower_llm_log";

/// Emits each record as a `tracing` event.
#[derive(Debug, Clone, Default)]
pub struct TracingSink {
    content: bool,
}

impl TracingSink {
    /// Events without message content.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to include the message content as the `messages` field (default false).
    pub fn with_content(mut self, content: bool) -> Self {
        self.content = content;
        self
    }
}

macro_rules! record_event {
    ($level:expr, $r:expr, $messages:expr) => {
        tracing::event!(
            target: "tower_llm_log",
            $level,
            time_generated = %humantime::format_rfc3339_nanos($r.time_generated),
            correlation_id = %$r.correlation_id,
            kind = ?$r.kind,
            sequence_number = $r.sequence_number,
            is_last = $r.is_last,
            api = $r.api.as_str(),
            provider = $r.provider.as_deref(),
            operation_name = %$r.operation_name,
            api_version = $r.api_version.as_deref(),
            deployment_name = $r.deployment_name.as_deref(),
            model_name = $r.model_name.as_deref(),
            request_id = $r.request_id.as_deref(),
            is_stream_completion = $r.is_stream_completion,
            prompt_tokens = $r.prompt_tokens,
            completion_tokens = $r.completion_tokens,
            total_tokens = $r.total_tokens,
            cached_tokens = $r.cached_tokens,
            reasoning_tokens = $r.reasoning_tokens,
            message_bytes = $r.message_bytes,
            truncated = $r.truncated,
            status_code = $r.status_code,
            duration_ms = $r.duration.as_secs_f64() * 1e3,
            time_to_first_token_ms = $r.time_to_first_token.map(|d| d.as_secs_f64() * 1e3),
            finish_reasons = $r.finish_reasons.join(","),
            outcome = $r.outcome.as_str(),
            error = $r.error.as_deref(),
            media_elided = ($r.media_elided > 0).then_some($r.media_elided),
            content_omitted = $r.content_omitted.map(|c| c.as_str()),
            redactions = (!$r.redactions.is_empty()).then(|| {
                $r.redactions.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
            }),
            dimensions = (!$r.dimensions.is_empty()).then(|| {
                $r.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
            }),
            cost_usd = $r.cost_usd,
            region = $r.region.as_deref(),
            trace_id = $r.trace_id.as_deref(),
            span_id = $r.span_id.as_deref(),
            messages = $messages,
            "llm exchange"
        )
    };
}

impl LlmLogSink for TracingSink {
    fn emit(&self, record: LlmLogRecord) {
        self.event(&record);
    }

    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        for record in records {
            self.event(record);
        }
    }
}

impl TracingSink {
    fn event(&self, record: &LlmLogRecord) {
        let messages = self.content.then(|| record.messages_str());
        if record.outcome.is_success() && record.error.is_none() {
            record_event!(tracing::Level::INFO, record, messages);
        } else {
            record_event!(tracing::Level::WARN, record, messages);
        }
    }
}
