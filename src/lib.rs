//! # tower-llm-log
//!
//! A [tower] layer that logs LLM API traffic: every prompt, completion and token count that
//! passes through an axum or hyper gateway, or through a tower HTTP client, as typed
//! [`LlmLogRecord`]s handed to a sink you choose. It is the in-process counterpart of Azure API
//! Management's LLM logging, with the same record schema: prompts and completions up to a
//! configured size, messages cut into 32 KiB chunks with sequence numbers, request and response
//! joined by a correlation id, model, deployment and token usage, streamed completions included.
//!
//! The traffic is never in the logger's hands: response frames pass through unchanged and at
//! once, bodies are parsed as they stream with memory bounded by the caps whatever their
//! framing, and nothing the logger fails to read, nor a panicking sink, affects a request. A
//! recognised request's body is read before the inner service is called (up to
//! [`LogConfigBuilder::request_read_ahead`]), so requests it rejects or never reads are logged
//! with their prompt too; the service then receives the same bytes.
//!
//! ## Quick start
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! tower-llm-log = "0.1"
//! axum = "0.8"
//! tokio = { version = "1", features = ["rt-multi-thread", "macros", "net"] }
//! ```
//!
//! `src/main.rs` (the README's, also `examples/quick_start.rs`):
//!
//! ```no_run
#![doc = include_str!("../examples/quick_start.rs")]
//! ```
//!
//! ## In production
//!
//! Put the sink behind [`NonBlocking`]: records go to a worker thread through a bounded queue,
//! so a slow disk or collector costs records (counted in [`SinkStats`]), never request time;
//! keep its guard and call `shutdown` at exit to deliver what is queued. Write files with
//! [`sink::JsonLinesFile`] (rotation by size and age); metrics with
//! [`sink::MetricsSink`](crate::sink) (feature `metrics`); OpenTelemetry logs with the `otlp`
//! feature. See [`privacy`] for what is kept out of the log (credentials by default, personal
//! data and media on request), [`attribution`] and [`cost`] for who used what at what cost.
//!
//! ```no_run
//! use tower_llm_log::sink::JsonLinesFile;
//! use tower_llm_log::{LlmLogLayer, NonBlocking};
//!
//! # fn main() -> std::io::Result<()> {
//! let file = JsonLinesFile::builder("llm-log.jsonl").max_bytes(64 << 20).max_files(24).build()?;
//! let (sink, guard) = NonBlocking::new(file);
//! let layer = LlmLogLayer::new(sink);
//! # let _ = layer;
//! // ... serve; then, at exit:
//! let report = guard.shutdown();
//! eprintln!("{report:?}");
//! # Ok(())
//! # }
//! ```
//!
//! ## The gateway
//!
//! For those who do not write Rust, the workspace's `gateway` package is a binary,
//! `llm-log-gateway` (`cargo install --path gateway`): a streaming reverse proxy with this layer,
//! settings by flag, environment or TOML file, `/metrics` and `/healthz`, and a built-in mock
//! upstream so it runs offline (`cargo run -p llm-log-gateway`).
//!
//! ## The record
//!
//! One [`LlmLogRecord`] per chunk of a message, serialized with the column names of Azure API
//! Management's `ApiManagementGatewayLlmLog` table (`CorrelationId`, `SequenceNumber`,
//! `RequestMessages`, `PromptTokens`, ...) plus this crate's own (`Outcome`, `Dimensions`,
//! `CostUsd`, `Redactions`, ...); the README's "The record" section lists every field. Records
//! read back with serde, [`reassemble`] rebuilds exchanges, [`analytics`] sums usage and cost.
//!
//! What is recognised: `POST` requests to OpenAI chat completions, the Responses API,
//! embeddings and legacy completions (OpenAI, Azure OpenAI `/openai/deployments/{deployment}/...`,
//! `/openai/v1/...`, `/models/...`, and OpenAI-compatible servers), Anthropic's Messages API,
//! Google Gemini, AWS Bedrock Converse and Ollama; and agents' tool calls over MCP's streamable
//! HTTP transport (`.../mcp`, [`api::McpApi`]). See [`api`] for the paths, and for adding API
//! families of one's own. Everything else passes untouched. Compressed bodies are decoded for the logger only (feature `decompress`).
//!
//! ## Features
//! - `decompress` (default): decode gzip, deflate, br and zstd bodies for the tap.
//! - `tokenizer`: estimate token counts with OpenAI's tokenizers when the provider reports none.
//! - `otlp`: export records as OpenTelemetry logs.
//! - `cli`: the `llmlog` command.
//! - `metrics` (default): [`sink::MetricsSink`](crate::sink), through the `metrics` facade.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod analytics;
pub mod api;
pub mod attribution;
mod body;
mod capture;
pub mod chunk;
pub mod config;
pub mod control;
mod correlation;
pub mod cost;
mod decode;
#[cfg(feature = "tokenizer")]
mod estimate;
mod exchange;
#[cfg(feature = "unstable-scan")]
pub mod framing;
#[cfg(not(feature = "unstable-scan"))]
mod framing;
mod future;
mod json_line;
mod layer;
pub mod privacy;
mod problem;
mod read_ahead;
pub mod reassemble;
mod record;
#[cfg(feature = "unstable-scan")]
pub mod scan;
#[cfg(not(feature = "unstable-scan"))]
mod scan;
mod service;
pub mod sink;
mod stats;
mod stream_usage;
mod tap;

pub use attribution::{DimensionSource, Dimensions};
pub use body::LlmLogBody;
pub use config::{ConfigError, LogConfig, LogConfigBuilder};
pub use control::{ContentOmitted, LogControl};
pub use correlation::CorrelationId;
pub use future::ResponseFuture;
pub use layer::LlmLogLayer;
pub use record::{ApiFamily, LlmLogRecord, Outcome, RecordKind};
pub use service::LlmLog;
pub use sink::{JsonLinesSink, LlmLogSink, MemorySink, NonBlocking, NonBlockingGuard, SinkStats};
pub use stats::LogStats;

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc(hidden)]
pub mod bench_support {
    //! Entry points for the crate's own benchmarks; not part of the public API.
    use bytes::Bytes;

    /// Scans a chat request body given as frames; returns (model found, captured bytes).
    pub fn scan_chat_request(frames: &[Bytes], cap: usize) -> (Option<String>, usize) {
        let mut s = crate::scan::json::JsonScanner::new(&crate::api::chat::REQUEST, cap);
        for f in frames {
            s.feed(f);
        }
        let mut r = s.finish();
        let model = r.scalar(0).and_then(crate::scan::json::scalar_string);
        (
            model,
            r.take_capture()
                .map(|c| c.segments.iter().map(Bytes::len).sum())
                .unwrap_or(0),
        )
    }

    /// Frames a stream given as frames, as the tap does, calling `on_event` for each event.
    pub fn frame_stream(
        framing: crate::api::Framing,
        frames: &[Bytes],
        on_event: &mut dyn FnMut(&crate::api::StreamEvent<'_>),
    ) {
        let mut framer = crate::framing::Framer::new(framing, 64 * 1024);
        for f in frames {
            framer.feed(f, &mut |e| on_event(&e));
        }
        framer.finish(true, &mut |e| on_event(&e));
    }

    /// Runs the media elider over a body given as frames, as the tap does; returns (payloads
    /// elided, bytes passed on).
    pub fn elide_frames(frames: &[Bytes], threshold: usize) -> (u32, usize) {
        let mut elider = crate::privacy::MediaElider::new(threshold);
        let mut out = 0;
        for f in frames {
            elider.feed(f, &mut |b| out += b.len());
        }
        elider.finish(&mut |b| out += b.len());
        (elider.elided(), out)
    }
}
