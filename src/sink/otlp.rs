//! [`OtlpSink`] (feature `otlp`): records as OpenTelemetry logs over OTLP, to a Collector that
//! fans out to the stores you run (ClickHouse, Loki, Elasticsearch, Azure Monitor, ...).
//!
//! Attributes follow the OpenTelemetry GenAI semantic conventions:
//!
//! | attribute | from |
//! |---|---|
//! | `gen_ai.operation.name` | `operation_name` (`chat`) |
//! | `gen_ai.provider.name` | `provider` |
//! | `gen_ai.request.model` | `model_name` on request records |
//! | `gen_ai.response.model` | `model_name` on response records |
//! | `gen_ai.response.id` | `request_id` |
//! | `gen_ai.response.finish_reasons` | `finish_reasons` (string array) |
//! | `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens` | prompt and completion tokens |
//! | `gen_ai.usage.cache_read.input_tokens` | cached tokens |
//! | `gen_ai.usage.reasoning.output_tokens` | reasoning tokens |
//! | `llm_log.correlation_id`, `llm_log.kind`, `llm_log.sequence_number`, `llm_log.is_last`, `llm_log.outcome`, `llm_log.duration_ms`, `llm_log.time_to_first_token_ms`, `llm_log.message_bytes`, `llm_log.truncated`, `llm_log.error`, `llm_log.api`, `llm_log.api_version`, `llm_log.deployment_name` | the record's fields |
//! | `http.response.status_code` | `status_code` |
//! | `gen_ai.tool.name`, `gen_ai.tool.call.id` | `tool_name` and, for a tool call, `request_id` (MCP `tools/call`, whose `gen_ai.operation.name` is then `execute_tool`) |
//! | `mcp.method.name`, `jsonrpc.request.id`, `mcp.protocol.version`, `mcp.session.id` | MCP exchanges: `operation_name`, `request_id`, `api_version`, the `mcp_session` dimension |
//! | `gen_ai.prompt.name`, `mcp.resource.uri` | `prompt_name`, `resource_uri` |
//!
//! Absent values (a token count the provider did not send) are left out, never sent as 0. The
//! message content goes in the log body only with [`OtlpSinkBuilder::with_content`]. When the
//! request carried a W3C `traceparent`, the log carries its trace and span id.
//!
//! Export runs on the SDK's batch thread; put the sink behind [`NonBlocking`](crate::NonBlocking)
//! anyway, so building log records stays off the request path.
//!
//! ```no_run
//! use tower_llm_log::sink::{OtlpProtocol, OtlpSink};
//! use tower_llm_log::{LlmLogLayer, NonBlocking};
//!
//! let otlp = OtlpSink::builder("http://otel-collector:4318", OtlpProtocol::HttpProtobuf)
//!     .service_name("llm-gateway")
//!     .build()?;
//! let (sink, _guard) = NonBlocking::new(otlp);
//! let layer = LlmLogLayer::new(sink);
//! # Ok::<(), tower_llm_log::sink::OtlpError>(())
//! ```

use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry::Key;
use opentelemetry_otlp::{LogExporter, Protocol, WithExportConfig};
use opentelemetry_sdk::logs::{BatchConfigBuilder, BatchLogProcessor, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::Resource;

use crate::{LlmLogRecord, LlmLogSink, RecordKind};

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// HTTP with protobuf bodies (port 4318 by convention); `/v1/logs` is added to a base URL.
    HttpProtobuf,
    /// gRPC (port 4317 by convention).
    Grpc,
}

/// Why an [`OtlpSink`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// The endpoint is not an http(s) URL.
    #[error("OTLP endpoint {0:?} must be an http:// or https:// URL")]
    InvalidEndpoint(String),
    /// The exporter rejected its configuration.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    /// The runtime for the gRPC client could not start.
    #[error("cannot start the OTLP client runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Configures an [`OtlpSink`].
#[derive(Debug, Clone)]
pub struct OtlpSinkBuilder {
    endpoint: String,
    protocol: OtlpProtocol,
    content: bool,
    service_name: String,
    timeout: Duration,
    queue: usize,
}

impl OtlpSinkBuilder {
    /// How many records the exporter's own batch queue holds (default 65536). Records beyond it
    /// are dropped by the OpenTelemetry SDK, which reports that through its internal logs; keep it
    /// above [`NonBlocking`](crate::NonBlocking)'s queue so drops happen (and are counted) there.
    pub fn queue_size(mut self, records: usize) -> Self {
        self.queue = records.max(1);
        self
    }

    /// Put the message content in each log's body (default: no content, metadata only).
    pub fn with_content(mut self, content: bool) -> Self {
        self.content = content;
        self
    }

    /// The `service.name` resource attribute (default `tower-llm-log`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The export timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the exporter and its batch processor.
    pub fn build(self) -> Result<OtlpSink, OtlpError> {
        let endpoint = self.endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(OtlpError::InvalidEndpoint(self.endpoint));
        }
        let mut runtime = None;
        let built = match self.protocol {
            OtlpProtocol::HttpProtobuf => {
                let url = if endpoint.ends_with("/v1/logs") {
                    endpoint
                } else {
                    format!("{endpoint}/v1/logs")
                };
                LogExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(url)
                    .with_timeout(self.timeout)
                    .build()
            }
            OtlpProtocol::Grpc => {
                // The gRPC client needs a Tokio runtime for its connection; the sink brings its
                // own, so it works from any thread, with or without the application's runtime.
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("tower-llm-log-otlp")
                    .enable_all()
                    .build()?;
                let rt = OwnRuntime(Some(rt));
                let built = {
                    let _entered = rt.enter();
                    LogExporter::builder()
                        .with_tonic()
                        .with_endpoint(endpoint)
                        .with_timeout(self.timeout)
                        .build()
                };
                runtime = Some(rt);
                built
            }
        };
        // On error `runtime` is dropped here, possibly inside the caller's async code: OwnRuntime
        // shuts down without blocking.
        let exporter = built.map_err(|e| OtlpError::Exporter(e.to_string()))?;
        let resource = Resource::builder().with_service_name(self.service_name).build();
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(self.queue)
            .build();
        let processor = BatchLogProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        let provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(processor)
            .build();
        let logger = provider.logger("tower-llm-log");
        Ok(OtlpSink {
            provider,
            logger,
            content: self.content,
            runtime,
        })
    }
}

/// Sends records as OpenTelemetry logs over OTLP.
pub struct OtlpSink {
    provider: SdkLoggerProvider,
    logger: SdkLogger,
    content: bool,
    runtime: Option<OwnRuntime>,
}

/// The gRPC client's runtime. Dropping a Tokio runtime blocks, which panics inside async code
/// (an application may drop the sink there); this one shuts down in the background instead.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(|rt| rt.enter())
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl OtlpSink {
    /// A builder for an endpoint such as `http://localhost:4318` (HTTP) or
    /// `http://localhost:4317` (gRPC).
    pub fn builder(endpoint: impl Into<String>, protocol: OtlpProtocol) -> OtlpSinkBuilder {
        OtlpSinkBuilder {
            endpoint: endpoint.into(),
            protocol,
            content: false,
            service_name: "tower-llm-log".into(),
            timeout: Duration::from_secs(10),
            queue: 65_536,
        }
    }

    /// Exports what is batched now; returns whether the export succeeded.
    pub fn flush(&self) -> bool {
        let _entered = self.runtime.as_ref().and_then(OwnRuntime::enter);
        self.provider.force_flush().is_ok()
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        let _entered = self.runtime.as_ref().and_then(OwnRuntime::enter);
        // Exports what is left; an unreachable collector has had its timeout.
        let _ = self.provider.shutdown();
    }
}

impl std::fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSink")
            .field("content", &self.content)
            .finish_non_exhaustive()
    }
}

fn int(n: u64) -> AnyValue {
    AnyValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> AnyValue {
    AnyValue::Double(d.as_secs_f64() * 1e3)
}

/// The log's attributes for a record, absent values left out.
fn attributes(r: &LlmLogRecord) -> Vec<(Key, AnyValue)> {
    let mut a: Vec<(Key, AnyValue)> = Vec::with_capacity(24);
    let mut put = |key: &'static str, value: Option<AnyValue>| {
        if let Some(v) = value {
            a.push((Key::from_static_str(key), v));
        }
    };
    let text = |s: &Option<String>| s.clone().map(AnyValue::from);
    // MCP: a tool call is GenAI's `execute_tool`; every exchange names its method, as the
    // conventions for MCP say.
    let mcp = r.api == crate::ApiFamily::Mcp;
    let operation = match (mcp, &*r.operation_name) {
        (true, "tools/call") => "execute_tool".to_string(),
        _ => r.operation_name.to_string(),
    };
    put("gen_ai.operation.name", Some(operation.into()));
    if mcp {
        put("mcp.method.name", Some(r.operation_name.clone().into()));
        put("jsonrpc.request.id", text(&r.request_id));
        put("mcp.protocol.version", text(&r.api_version));
        put(
            "mcp.session.id",
            r.dimensions.get("mcp_session").cloned().map(AnyValue::from),
        );
    }
    put("gen_ai.tool.name", text(&r.tool_name));
    put(
        "gen_ai.tool.call.id",
        r.tool_name.as_ref().and(r.request_id.clone()).map(AnyValue::from),
    );
    put("gen_ai.prompt.name", text(&r.prompt_name));
    put("mcp.resource.uri", text(&r.resource_uri));
    put("llm_log.stream_events", r.stream_events.map(int));
    put(
        "gen_ai.provider.name",
        r.provider.as_deref().map(|p| AnyValue::from(p.to_string())),
    );
    let model_key = match r.kind {
        RecordKind::Request => "gen_ai.request.model",
        RecordKind::Response => "gen_ai.response.model",
    };
    put(model_key, text(&r.model_name));
    put("gen_ai.response.id", text(&r.request_id));
    if !r.finish_reasons.is_empty() {
        let reasons = r
            .finish_reasons
            .iter()
            .map(|f| AnyValue::from(f.clone()))
            .collect();
        put(
            "gen_ai.response.finish_reasons",
            Some(AnyValue::ListAny(Box::new(reasons))),
        );
    }
    put("gen_ai.usage.input_tokens", r.prompt_tokens.map(int));
    put("gen_ai.usage.output_tokens", r.completion_tokens.map(int));
    put("gen_ai.usage.cache_read.input_tokens", r.cached_tokens.map(int));
    put(
        "gen_ai.usage.reasoning.output_tokens",
        r.reasoning_tokens.map(int),
    );
    put("llm_log.total_tokens", r.total_tokens.map(int));
    put(
        "llm_log.correlation_id",
        Some(r.correlation_id.to_string().into()),
    );
    put("llm_log.kind", Some(AnyValue::from(format!("{:?}", r.kind))));
    put("llm_log.sequence_number", Some(int(r.sequence_number.into())));
    put("llm_log.is_last", Some(AnyValue::Boolean(r.is_last)));
    put("llm_log.api", Some(r.api.as_str().to_string().into()));
    put("llm_log.api_version", text(&r.api_version));
    put("llm_log.deployment_name", text(&r.deployment_name));
    put("llm_log.stream", Some(AnyValue::Boolean(r.is_stream_completion)));
    put("llm_log.outcome", Some(r.outcome.as_str().into()));
    put("http.response.status_code", r.status_code.map(|s| int(s.into())));
    put("llm_log.duration_ms", Some(millis(r.duration)));
    put(
        "llm_log.time_to_first_token_ms",
        r.time_to_first_token.map(millis),
    );
    put("llm_log.message_bytes", Some(int(r.message_bytes)));
    put("llm_log.truncated", Some(AnyValue::Boolean(r.truncated)));
    put("llm_log.error", text(&r.error));
    put(
        "llm_log.media_elided",
        (r.media_elided > 0).then(|| int(r.media_elided.into())),
    );
    put(
        "llm_log.content_omitted",
        r.content_omitted.map(|c| AnyValue::from(c.as_str())),
    );
    put(
        "error.type",
        (!r.outcome.is_success()).then(|| AnyValue::from(r.outcome.as_str())),
    );
    for (kind, n) in &r.redactions {
        a.push((
            Key::from(format!("llm_log.redactions.{kind}")),
            int(u64::from(*n)),
        ));
    }
    if let Some(cost) = r.cost_usd {
        a.push((Key::from_static_str("llm_log.cost_usd"), AnyValue::Double(cost)));
    }
    // The GenAI conventions' name for the user: the operator's `user`, else the body's
    // `end_user`; every dimension also under its own name.
    if let Some(user) = r.dimensions.get("user").or_else(|| r.dimensions.get("end_user")) {
        a.push((Key::from_static_str("user.id"), AnyValue::from(user.clone())));
    }
    for (name, value) in r.dimensions.iter() {
        a.push((
            Key::from(format!("llm_log.dimension.{name}")),
            AnyValue::from(value.clone()),
        ));
    }
    a
}

fn hex_id<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    if s.len() != N * 2 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl LlmLogSink for OtlpSink {
    fn emit(&self, record: LlmLogRecord) {
        let mut log = self.logger.create_log_record();
        log.set_event_name("gen_ai.client.inference.operation.details");
        log.set_timestamp(record.time_generated);
        log.set_observed_timestamp(SystemTime::now());
        if record.outcome.is_success() && record.error.is_none() {
            log.set_severity_number(Severity::Info);
            log.set_severity_text("INFO");
        } else {
            log.set_severity_number(Severity::Warn);
            log.set_severity_text("WARN");
        }
        if let (Some(trace), Some(span)) = (record.trace_id.as_deref(), record.span_id.as_deref()) {
            if let (Some(t), Some(s)) = (hex_id::<16>(trace), hex_id::<8>(span)) {
                log.set_trace_context(
                    TraceId::from_bytes(t),
                    SpanId::from_bytes(s),
                    Some(TraceFlags::SAMPLED),
                );
            }
        }
        log.add_attributes(attributes(&record));
        if self.content {
            log.set_body(AnyValue::from(record.messages_str().to_string()));
        }
        let _entered = self.runtime.as_ref().and_then(OwnRuntime::enter);
        self.logger.emit(log);
    }
}
