//! The log record: one per chunk of a logged message, in Azure API Management's LLM log schema.
//!
//! Serialized with serde, a record uses Azure's column names (`TimeGenerated`, `CorrelationId`,
//! `SequenceNumber`, `RequestMessages` on request records, `ResponseMessages` on response
//! records, ...), so a JSON Lines log can be ingested into a table with the same schema. Fields
//! Azure lacks get PascalCase names too. Records also deserialize, so a log can be read back.
//!
//! ```
//! use tower_llm_log::{LlmLogRecord, RecordKind};
//!
//! let line = r#"{"TimeGenerated":"2026-01-02T03:04:05.000000006Z","CorrelationId":"c1",
//!   "Kind":"Request","SequenceNumber":0,"IsLast":true,"Api":"chat_completions",
//!   "OperationName":"chat","IsStreamCompletion":false,"RequestMessages":"[]",
//!   "MessageBytes":2,"Truncated":false,"DurationMs":1.5,"Outcome":"Completed"}"#;
//! let record: LlmLogRecord = serde_json::from_str(line).unwrap();
//! assert_eq!(record.kind, RecordKind::Request);
//! assert_eq!(&record.messages[..], b"[]");
//! assert_eq!(record.duration.as_micros(), 1500);
//! ```

use crate::control::ContentOmitted;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which side of the exchange a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordKind {
    /// The request sent to the model (the prompt).
    Request,
    /// The response from the model (the completion).
    Response,
}

/// How one side of an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Outcome {
    /// The body was read to its end, and for a response, the status was below 400.
    Completed,
    /// The response status was 4xx or 5xx; its body is logged as the completion.
    UpstreamError,
    /// The inner service returned an error instead of a response.
    ServiceError,
    /// The body yielded an error part-way.
    BodyError,
    /// The response (or its body) was dropped before its end: the client went away.
    ClientDisconnected,
    /// The request body was dropped before its end: the inner service did not read all of it.
    RequestNotRead,
    /// The request body was still arriving when the exchange was dropped, while the layer read
    /// it ahead of the inner service (the client stopped sending, and a timeout or the server's
    /// shutdown ended the wait). The record keeps what arrived.
    RequestIncomplete,
    /// The request needs no answer: a JSON-RPC notification, or a client's response to a
    /// server's request (MCP). Its response (`202 Accepted`, no body) is not logged.
    NoResponseExpected,
}

impl Outcome {
    /// Whether this side ended as it should: [`Completed`](Outcome::Completed), or
    /// [`NoResponseExpected`](Outcome::NoResponseExpected).
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Completed | Outcome::NoResponseExpected)
    }

    /// The name used in logs, the same as the serialized form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Completed => "Completed",
            Outcome::UpstreamError => "UpstreamError",
            Outcome::ServiceError => "ServiceError",
            Outcome::BodyError => "BodyError",
            Outcome::ClientDisconnected => "ClientDisconnected",
            Outcome::RequestNotRead => "RequestNotRead",
            Outcome::RequestIncomplete => "RequestIncomplete",
            Outcome::NoResponseExpected => "NoResponseExpected",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API family an exchange belongs to.
///
/// Serialized as its name (`chat_completions`, `responses`, ...); a name the crate does not know
/// reads back as [`ApiFamily::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiFamily {
    /// OpenAI-compatible chat completions (`.../chat/completions`).
    ChatCompletions,
    /// The OpenAI Responses API (`/v1/responses`, Azure `/openai/responses`).
    Responses,
    /// Embeddings (`.../embeddings`).
    Embeddings,
    /// Legacy text completions (`.../completions`).
    Completions,
    /// Anthropic's Messages API (`/v1/messages`).
    AnthropicMessages,
    /// Google's Gemini `generateContent` and `streamGenerateContent` (Google AI and Vertex AI).
    GeminiGenerateContent,
    /// AWS Bedrock's Converse API (`/model/{modelId}/converse`, `/converse-stream`).
    BedrockConverse,
    /// Ollama's native chat API (`/api/chat`).
    OllamaChat,
    /// Ollama's native generate API (`/api/generate`).
    OllamaGenerate,
    /// The Model Context Protocol's streamable HTTP transport (`/mcp`): agents' tool calls,
    /// one exchange per JSON-RPC request.
    Mcp,
    /// A family added by the user with [`LlmApi`](crate::api::LlmApi), by its name.
    Other(Cow<'static, str>),
}

impl ApiFamily {
    /// The name used in logs, the same as the serialized form.
    pub fn as_str(&self) -> &str {
        match self {
            ApiFamily::ChatCompletions => "chat_completions",
            ApiFamily::Responses => "responses",
            ApiFamily::Embeddings => "embeddings",
            ApiFamily::Completions => "completions",
            ApiFamily::AnthropicMessages => "anthropic_messages",
            ApiFamily::GeminiGenerateContent => "gemini_generate_content",
            ApiFamily::BedrockConverse => "bedrock_converse",
            ApiFamily::OllamaChat => "ollama_chat",
            ApiFamily::OllamaGenerate => "ollama_generate",
            ApiFamily::Mcp => "mcp",
            ApiFamily::Other(name) => name,
        }
    }

    /// The family with this name: a built-in one, or [`ApiFamily::Other`].
    pub fn from_name(name: &str) -> ApiFamily {
        match name {
            "chat_completions" => ApiFamily::ChatCompletions,
            "responses" => ApiFamily::Responses,
            "embeddings" => ApiFamily::Embeddings,
            "completions" => ApiFamily::Completions,
            "anthropic_messages" => ApiFamily::AnthropicMessages,
            "gemini_generate_content" => ApiFamily::GeminiGenerateContent,
            "bedrock_converse" => ApiFamily::BedrockConverse,
            "ollama_chat" => ApiFamily::OllamaChat,
            "ollama_generate" => ApiFamily::OllamaGenerate,
            "mcp" => ApiFamily::Mcp,
            other => ApiFamily::Other(Cow::Owned(other.to_string())),
        }
    }
}

impl fmt::Display for ApiFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ApiFamily {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ApiFamily {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(ApiFamily::from_name(&name))
    }
}

/// One log record: one chunk of the request or response message of one exchange, with the
/// exchange's metadata.
///
/// Chunks of a message share `correlation_id` and `kind`, have contiguous `sequence_number`s
/// from 0, and the final one has `is_last`. Concatenating their `messages` gives the logged
/// message exactly. Token counts are set on the last response record of an exchange only, so
/// summing a token column over records counts each exchange once.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LlmLogRecord {
    /// When the request reached the layer (`TimeGenerated`).
    pub time_generated: SystemTime,
    /// Joins the request and response records of one exchange (`CorrelationId`). Shared by the
    /// exchange's records, not copied per record.
    pub correlation_id: crate::CorrelationId,
    /// Request or response.
    pub kind: RecordKind,
    /// 0-based position of this chunk within this kind of this exchange (`SequenceNumber`).
    pub sequence_number: u32,
    /// Whether this is the last chunk of its message.
    pub is_last: bool,
    /// The API family.
    pub api: ApiFamily,
    /// The provider, as OpenTelemetry's `gen_ai.provider.name` names it (`openai`,
    /// `azure.ai.openai`, `azure.ai.inference`).
    /// A name the library knows is borrowed, not copied per record.
    pub provider: Option<Cow<'static, str>>,
    /// The operation (`chat`), as OpenTelemetry's `gen_ai.operation.name` (`OperationName`).
    pub operation_name: Cow<'static, str>,
    /// The `api-version` query parameter, when present (`ApiVersion`).
    pub api_version: Option<String>,
    /// The Azure OpenAI deployment from the path, when present (`DeploymentName`).
    pub deployment_name: Option<String>,
    /// The model: from the response when it names one, else from the request (`ModelName`).
    pub model_name: Option<String>,
    /// The provider's response id (`RequestId`).
    pub request_id: Option<String>,
    /// Whether the response was streamed as server-sent events (`IsStreamCompletion`).
    pub is_stream_completion: bool,
    /// How many events a streamed response carried (`StreamEvents`), on response records of
    /// streams.
    pub stream_events: Option<u64>,
    /// The tool an MCP `tools/call` called (`ToolName`), on both sides' records.
    pub tool_name: Option<String>,
    /// The resource an MCP `resources/read` (or `subscribe`, `unsubscribe`) named
    /// (`ResourceUri`).
    pub resource_uri: Option<String>,
    /// The prompt an MCP `prompts/get` named (`PromptName`).
    pub prompt_name: Option<String>,
    /// Prompt tokens reported by the provider (`PromptTokens`); last response record only.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens (`CompletionTokens`); last response record only.
    pub completion_tokens: Option<u64>,
    /// Total tokens (`TotalTokens`); last response record only.
    pub total_tokens: Option<u64>,
    /// Cached prompt tokens; last response record only.
    pub cached_tokens: Option<u64>,
    /// Reasoning tokens; last response record only.
    pub reasoning_tokens: Option<u64>,
    /// Prompt tokens written to the provider's cache (Anthropic's `cache_creation_input_tokens`).
    pub cache_creation_tokens: Option<u64>,
    /// The token counts are the layer's estimate (the provider reported none), not the
    /// provider's; see the `tokenizer` feature.
    pub tokens_estimated: bool,
    /// This chunk of the logged message: UTF-8 JSON text (`RequestMessages` or
    /// `ResponseMessages`). A chunk is not valid JSON on its own; the concatenation is, unless
    /// `truncated`.
    pub messages: Bytes,
    /// The full size of the message before any cap.
    pub message_bytes: u64,
    /// Whether the logged message was cut at the cap (or could not be read whole).
    pub truncated: bool,
    /// Whether bytes of the message that were not valid UTF-8 were replaced with U+FFFD
    /// (`InvalidUtf8Replaced`, written only when true).
    pub invalid_utf8_replaced: bool,
    /// Whether `messages` is one whole JSON value, as the family's reader found it (a built-in
    /// family's prompt or completion in one record, not cut; the reader checks the structure it
    /// walks and only delimits the values it skips). JSON Lines sinks then check the whole of
    /// it and write `RequestMessages` / `ResponseMessages` as that JSON value rather than as a
    /// string holding it, unless it is not valid JSON or holds a line break; readers take either
    /// form, and a record read from a line written as a value says so here.
    pub messages_are_json: bool,
    /// The response status, once known.
    pub status_code: Option<u16>,
    /// From the request reaching the layer to the end of this side's body.
    pub duration: Duration,
    /// From the request to the first content or tool-call delta of a streamed completion.
    pub time_to_first_token: Option<Duration>,
    /// The choices' finish reasons, in choice order.
    pub finish_reasons: Vec<String>,
    /// How this side of the exchange ended.
    pub outcome: Outcome,
    /// What went wrong reading or parsing this side, if anything: each problem's sentence,
    /// joined with `; `.
    pub error: Option<String>,
    /// The kinds of the problems in `error`, each once, in order (`ErrorKinds`, written only
    /// when there are any).
    pub error_kinds: Vec<crate::api::ProblemKind>,
    /// What was replaced in this side's logged message (and error text) before it was logged,
    /// by kind (`openai_key`, `private_key`, ...), with how many (`Redactions`). `MessageBytes`
    /// stays the size of the message as it passed.
    pub redactions: BTreeMap<String, u32>,
    /// How many media payloads (base64 images, audio, files) were replaced by a placeholder in
    /// this side's body (`MediaElided`), whether or not the logged message includes them.
    pub media_elided: u32,
    /// Why this record carries no content, when it was left out on purpose
    /// (`ContentOmitted`: `metadata`, `client`, `sampled`, `cap_zero`, `redactor_failed`).
    pub content_omitted: Option<ContentOmitted>,
    /// Who made the exchange (`Dimensions`): the operator's dimensions, server code's, and
    /// `api_key` (a fingerprint) and `end_user` (from the body). On every record of the
    /// exchange. See [`attribution`](crate::attribution).
    /// Shared by the records of an exchange (one map, not a copy per record).
    pub dimensions: std::sync::Arc<BTreeMap<String, String>>,
    /// What the exchange cost in USD (`CostUsd`), on its last response record, when its model
    /// has a price. See [`cost`](crate::cost).
    pub cost_usd: Option<f64>,
    /// The cost was computed from estimated tokens (`CostEstimated`).
    pub cost_estimated: bool,
    /// The region from the configuration (`Region`).
    pub region: Option<String>,
    /// The W3C trace id (32 hex digits) from the request's `traceparent` header, if any.
    pub trace_id: Option<String>,
    /// The parent span id (16 hex digits) from the request's `traceparent` header, if any.
    pub span_id: Option<String>,
}

impl LlmLogRecord {
    /// This chunk's text. Chunks are cut at character boundaries, so this is always valid.
    pub fn messages_str(&self) -> &str {
        // The layer only ever builds records from validated UTF-8; a record deserialized from
        // JSON is a `String` too. A hand-built invalid one reads as empty rather than panicking.
        std::str::from_utf8(&self.messages).unwrap_or("")
    }
}

/// A record as read back (owned where it must be).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Wire<'a> {
    time_generated: Cow<'a, str>,
    correlation_id: Cow<'a, str>,
    kind: RecordKind,
    sequence_number: u32,
    is_last: bool,
    api: ApiFamily,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<Cow<'a, str>>,
    operation_name: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment_name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<Cow<'a, str>>,
    is_stream_completion: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_events: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_uri: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prompt_name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_creation_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    tokens_estimated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_messages: Option<Messages<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_messages: Option<Messages<'a>>,
    message_bytes: u64,
    truncated: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    invalid_utf8_replaced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_to_first_token_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    finish_reasons: Vec<Cow<'a, str>>,
    outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    error_kinds: Vec<crate::api::ProblemKind>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    redactions: BTreeMap<Cow<'a, str>, u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    media_elided: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_omitted: Option<ContentOmitted>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    dimensions: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "is_false")]
    cost_estimated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_id: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    span_id: Option<Cow<'a, str>>,
}

/// A record as written: every field borrowed from the record, nothing copied.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireOut<'a> {
    time_generated: Rfc3339,
    correlation_id: &'a str,
    kind: RecordKind,
    sequence_number: u32,
    is_last: bool,
    api: &'a ApiFamily,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    operation_name: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_version: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment_name: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_name: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    is_stream_completion: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_events: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_uri: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prompt_name: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_creation_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    tokens_estimated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_messages: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_messages: Option<&'a str>,
    message_bytes: u64,
    truncated: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    invalid_utf8_replaced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_to_first_token_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    finish_reasons: &'a [String],
    outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    error_kinds: &'a [crate::api::ProblemKind],
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    redactions: &'a BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    media_elided: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_omitted: Option<ContentOmitted>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    dimensions: &'a BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "is_false")]
    cost_estimated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    span_id: Option<&'a str>,
}

/// `TimeGenerated`, written as RFC 3339 with nanoseconds straight into the output.
struct Rfc3339(SystemTime);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_rfc3339_nanos(self.0))
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn millis(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

fn from_millis(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 {
        Duration::from_nanos((ms * 1e6).round() as u64)
    } else {
        Duration::ZERO
    }
}

/// A messages column: a JSON string holding the logged text; or, as JSON Lines sinks write a
/// message that is one whole JSON value, that value itself (read back as its text).
struct Messages<'a> {
    text: Cow<'a, str>,
    json: bool,
}

impl<'de, 'a> Deserialize<'de> for Messages<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The value as written, whatever it is: a string is the text; anything else is the
        // message itself, exactly as it was written.
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        if text.starts_with('"') {
            let text: String = serde_json::from_str(text).map_err(serde::de::Error::custom)?;
            return Ok(Messages {
                text: Cow::Owned(text),
                json: false,
            });
        }
        Ok(Messages {
            text: Cow::Owned(text.to_string()),
            json: true,
        })
    }
}

impl Serialize for LlmLogRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.wire(true).serialize(serializer)
    }
}

impl LlmLogRecord {
    /// Whether a JSON Lines sink writes the message as the JSON value it is rather than as a
    /// string: it is one whole JSON value (see [`messages_are_json`](Self::messages_are_json)).
    ///
    /// Checked here, on the writer's side, before the bytes go into a line: one JSON value,
    /// valid throughout (the readers' scanner only delimits the values it skips), and no line
    /// break (whitespace between a pretty-printed message's tokens, or the `\n` that joins an
    /// event's `data:` lines), which would cut the record in two. Anything else is written as a
    /// string, as it always could be.
    pub(crate) fn writes_messages_as_json(&self) -> bool {
        self.messages_are_json && !self.messages.is_empty() && crate::json_line::fits_one_line(&self.messages)
    }

    /// The record as written; `with_messages: false` leaves the messages column out (the JSON
    /// Lines writer then appends it as JSON).
    fn wire(&self, with_messages: bool) -> WireOut<'_> {
        let text = with_messages.then(|| self.messages_str());
        let (request_messages, response_messages) = match self.kind {
            RecordKind::Request => (text, None),
            RecordKind::Response => (None, text),
        };
        WireOut {
            time_generated: Rfc3339(self.time_generated),
            correlation_id: self.correlation_id.as_str(),
            kind: self.kind,
            sequence_number: self.sequence_number,
            is_last: self.is_last,
            api: &self.api,
            provider: self.provider.as_deref(),
            operation_name: &self.operation_name,
            api_version: self.api_version.as_deref(),
            deployment_name: self.deployment_name.as_deref(),
            model_name: self.model_name.as_deref(),
            request_id: self.request_id.as_deref(),
            is_stream_completion: self.is_stream_completion,
            stream_events: self.stream_events,
            tool_name: self.tool_name.as_deref(),
            resource_uri: self.resource_uri.as_deref(),
            prompt_name: self.prompt_name.as_deref(),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.total_tokens,
            cached_tokens: self.cached_tokens,
            reasoning_tokens: self.reasoning_tokens,
            cache_creation_tokens: self.cache_creation_tokens,
            tokens_estimated: self.tokens_estimated,
            request_messages,
            response_messages,
            message_bytes: self.message_bytes,
            truncated: self.truncated,
            invalid_utf8_replaced: self.invalid_utf8_replaced,
            status_code: self.status_code,
            duration_ms: millis(self.duration),
            time_to_first_token_ms: self.time_to_first_token.map(millis),
            finish_reasons: &self.finish_reasons,
            outcome: self.outcome,
            error: self.error.as_deref(),
            error_kinds: &self.error_kinds,
            redactions: &self.redactions,
            media_elided: self.media_elided,
            content_omitted: self.content_omitted,
            dimensions: &self.dimensions,
            cost_usd: self.cost_usd,
            cost_estimated: self.cost_estimated,
            region: self.region.as_deref(),
            trace_id: self.trace_id.as_deref(),
            span_id: self.span_id.as_deref(),
        }
    }

    /// Appends the record to `out` as one JSON line; a whole JSON message is written as the
    /// JSON value it is (no string escaping, fewer bytes). `false` if it could not be written.
    pub(crate) fn write_json_line(&self, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let written = if self.writes_messages_as_json() {
            serde_json::to_writer(&mut *out, &self.wire(false)).is_ok() && {
                // `{...}` with the column left out: it goes in before the closing brace.
                out.pop();
                out.extend_from_slice(match self.kind {
                    RecordKind::Request => b",\"RequestMessages\":",
                    RecordKind::Response => b",\"ResponseMessages\":",
                });
                out.extend_from_slice(&self.messages);
                out.push(b'}');
                true
            }
        } else {
            serde_json::to_writer(&mut *out, self).is_ok()
        };
        if written {
            out.push(b'\n');
        } else {
            out.truncate(start);
        }
        written
    }
}

impl<'de> Deserialize<'de> for LlmLogRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(deserializer)?;
        let time_generated = humantime::parse_rfc3339_weak(&w.time_generated)
            .map_err(|e| serde::de::Error::custom(format!("TimeGenerated: {e}")))?;
        let messages = match w.kind {
            RecordKind::Request => w.request_messages.or(w.response_messages),
            RecordKind::Response => w.response_messages.or(w.request_messages),
        };
        let messages_are_json = messages.as_ref().is_some_and(|m| m.json);
        let messages = messages.map(|m| m.text);
        let own = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned);
        Ok(LlmLogRecord {
            time_generated,
            correlation_id: crate::CorrelationId::from(w.correlation_id.into_owned()),
            kind: w.kind,
            sequence_number: w.sequence_number,
            is_last: w.is_last,
            api: w.api,
            provider: w.provider.map(|p| Cow::Owned(p.into_owned())),
            operation_name: Cow::Owned(w.operation_name.into_owned()),
            api_version: own(w.api_version),
            deployment_name: own(w.deployment_name),
            model_name: own(w.model_name),
            request_id: own(w.request_id),
            is_stream_completion: w.is_stream_completion,
            stream_events: w.stream_events,
            tool_name: own(w.tool_name),
            resource_uri: own(w.resource_uri),
            prompt_name: own(w.prompt_name),
            prompt_tokens: w.prompt_tokens,
            completion_tokens: w.completion_tokens,
            total_tokens: w.total_tokens,
            cached_tokens: w.cached_tokens,
            reasoning_tokens: w.reasoning_tokens,
            cache_creation_tokens: w.cache_creation_tokens,
            tokens_estimated: w.tokens_estimated,
            messages: messages.map(|m| Bytes::from(m.into_owned())).unwrap_or_default(),
            message_bytes: w.message_bytes,
            truncated: w.truncated,
            invalid_utf8_replaced: w.invalid_utf8_replaced,
            messages_are_json,
            status_code: w.status_code,
            duration: from_millis(w.duration_ms),
            time_to_first_token: w.time_to_first_token_ms.map(from_millis),
            finish_reasons: w.finish_reasons.into_iter().map(Cow::into_owned).collect(),
            outcome: w.outcome,
            error: own(w.error),
            error_kinds: w.error_kinds,
            redactions: w
                .redactions
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v))
                .collect(),
            media_elided: w.media_elided,
            content_omitted: w.content_omitted,
            dimensions: std::sync::Arc::new(
                w.dimensions
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            ),
            cost_usd: w.cost_usd,
            cost_estimated: w.cost_estimated,
            region: own(w.region),
            trace_id: own(w.trace_id),
            span_id: own(w.span_id),
        })
    }
}

/// What the records of one side of an exchange say: one record per chunk of its message, all
/// alike but for the chunk, its number, and the token counts and cost, which only the last
/// chunk of a response carries (so sums over records count each exchange once).
pub(crate) struct SideRecords<'a> {
    pub(crate) time_generated: SystemTime,
    pub(crate) correlation_id: &'a crate::CorrelationId,
    pub(crate) kind: RecordKind,
    pub(crate) route: &'a crate::api::Route,
    pub(crate) model: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) is_stream: bool,
    pub(crate) stream_events: Option<u64>,
    /// What the exchange invoked, when the body names it (MCP): the operation, which replaces
    /// the route's, and the tool, resource or prompt.
    pub(crate) invocation: crate::api::Invocation,
    pub(crate) usage: crate::api::TokenUsage,
    pub(crate) tokens_estimated: bool,
    pub(crate) message_bytes: u64,
    pub(crate) truncated: bool,
    pub(crate) invalid_utf8_replaced: bool,
    /// The message is one whole JSON value (when it is in one record).
    pub(crate) whole_json: bool,
    pub(crate) status: Option<u16>,
    pub(crate) duration: Duration,
    pub(crate) time_to_first_token: Option<Duration>,
    pub(crate) finish_reasons: Vec<String>,
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<String>,
    pub(crate) error_kinds: Vec<crate::api::ProblemKind>,
    pub(crate) redactions: BTreeMap<String, u32>,
    pub(crate) media_elided: u32,
    pub(crate) content_omitted: Option<ContentOmitted>,
    pub(crate) dimensions: std::sync::Arc<BTreeMap<String, String>>,
    /// The exchange's cost in pico-dollars.
    pub(crate) cost: Option<u128>,
    pub(crate) region: Option<&'a str>,
    pub(crate) trace: Option<&'a (String, String)>,
}

impl SideRecords<'_> {
    /// The records, one per chunk (one with an empty message when there are none), handed to
    /// `deliver` in order.
    pub(crate) fn build(mut self, mut chunks: Vec<Bytes>, deliver: &mut dyn FnMut(LlmLogRecord)) {
        if chunks.is_empty() {
            chunks.push(Bytes::new());
        }
        // The last record takes what the others copy (most messages are one record).
        fn last_or_clone<T: Clone + Default>(is_last: bool, value: &mut T) -> T {
            if is_last {
                std::mem::take(value)
            } else {
                value.clone()
            }
        }
        let count = chunks.len();
        for (i, messages) in chunks.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let tokens = is_last && self.kind == RecordKind::Response;
            let token = |n: Option<u64>| if tokens { n } else { None };
            deliver(LlmLogRecord {
                time_generated: self.time_generated,
                correlation_id: self.correlation_id.clone(),
                kind: self.kind,
                sequence_number: i as u32,
                is_last,
                api: self.route.family.clone(),
                provider: Some(self.route.provider.clone()),
                operation_name: match &self.invocation.operation {
                    Some(operation) => Cow::Owned(operation.clone()),
                    None => self.route.operation.clone(),
                },
                api_version: self.route.api_version.clone(),
                deployment_name: self.route.deployment.clone(),
                model_name: last_or_clone(is_last, &mut self.model),
                request_id: last_or_clone(is_last, &mut self.request_id),
                is_stream_completion: self.is_stream,
                stream_events: self.stream_events,
                tool_name: self.invocation.tool_name.clone(),
                resource_uri: self.invocation.resource_uri.clone(),
                prompt_name: self.invocation.prompt_name.clone(),
                prompt_tokens: token(self.usage.prompt),
                completion_tokens: token(self.usage.completion),
                total_tokens: token(self.usage.total),
                cached_tokens: token(self.usage.cached),
                reasoning_tokens: token(self.usage.reasoning),
                cache_creation_tokens: token(self.usage.cache_creation),
                tokens_estimated: tokens && self.tokens_estimated,
                messages,
                message_bytes: self.message_bytes,
                truncated: self.truncated,
                invalid_utf8_replaced: self.invalid_utf8_replaced,
                messages_are_json: self.whole_json && count == 1,
                status_code: self.status,
                duration: self.duration,
                time_to_first_token: self.time_to_first_token,
                finish_reasons: last_or_clone(is_last, &mut self.finish_reasons),
                outcome: self.outcome,
                error: last_or_clone(is_last, &mut self.error),
                error_kinds: last_or_clone(is_last, &mut self.error_kinds),
                redactions: last_or_clone(is_last, &mut self.redactions),
                media_elided: self.media_elided,
                content_omitted: self.content_omitted,
                dimensions: self.dimensions.clone(),
                cost_usd: if tokens {
                    self.cost.map(crate::cost::usd)
                } else {
                    None
                },
                cost_estimated: tokens && self.tokens_estimated && self.cost.is_some(),
                region: self.region.map(str::to_string),
                trace_id: self.trace.map(|t| t.0.clone()),
                span_id: self.trace.map(|t| t.1.clone()),
            });
        }
    }
}

#[cfg(test)]
pub(crate) fn sample(kind: RecordKind) -> LlmLogRecord {
    LlmLogRecord {
        time_generated: SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789),
        correlation_id: "0192f0c1-0000-7000-8000-000000000001".into(),
        kind,
        sequence_number: 0,
        is_last: true,
        api: ApiFamily::ChatCompletions,
        provider: Some("azure.ai.openai".into()),
        operation_name: "chat".into(),
        api_version: Some("2024-10-21".into()),
        deployment_name: Some("gpt-4o-prod".into()),
        model_name: Some("gpt-4o".into()),
        request_id: Some("chatcmpl-1".into()),
        is_stream_completion: true,
        stream_events: Some(3),
        tool_name: None,
        resource_uri: None,
        prompt_name: None,
        prompt_tokens: Some(10),
        completion_tokens: Some(5),
        total_tokens: Some(15),
        cached_tokens: None,
        reasoning_tokens: Some(0),
        cache_creation_tokens: None,
        tokens_estimated: false,
        messages: Bytes::from_static("[{\"content\":\"h\u{e9}\\\"llo\\n\"}]".as_bytes()),
        message_bytes: 40,
        truncated: true,
        invalid_utf8_replaced: false,
        messages_are_json: false,
        error_kinds: Vec::new(),
        status_code: Some(200),
        duration: Duration::from_nanos(12_345_678),
        time_to_first_token: Some(Duration::from_micros(800)),
        finish_reasons: vec!["stop".into()],
        outcome: Outcome::Completed,
        error: Some("x".into()),
        region: Some("westeurope".into()),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        span_id: Some("00f067aa0ba902b7".into()),
        redactions: BTreeMap::new(),
        media_elided: 0,
        content_omitted: None,
        dimensions: Default::default(),
        cost_usd: None,
        cost_estimated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_the_azure_column_names() {
        let v = serde_json::to_value(sample(RecordKind::Request)).unwrap();
        for key in [
            "TimeGenerated",
            "CorrelationId",
            "OperationName",
            "ApiVersion",
            "DeploymentName",
            "ModelName",
            "RequestId",
            "IsStreamCompletion",
            "PromptTokens",
            "CompletionTokens",
            "TotalTokens",
            "RequestMessages",
            "SequenceNumber",
            "Region",
            "Kind",
            "IsLast",
            "Outcome",
            "DurationMs",
            "TraceId",
            "SpanId",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert!(v.get("ResponseMessages").is_none());
        assert!(
            v.get("CachedTokens").is_none(),
            "unknown counts are left out, not 0"
        );
        assert_eq!(v["TimeGenerated"], "2026-09-21T14:13:20.123456789Z");
        assert_eq!(v["DurationMs"], 12.345678);
        let v = serde_json::to_value(sample(RecordKind::Response)).unwrap();
        assert!(v.get("RequestMessages").is_none());
        assert_eq!(v["ResponseMessages"], "[{\"content\":\"h\u{e9}\\\"llo\\n\"}]");
    }

    #[test]
    fn records_round_trip_through_json() {
        for kind in [RecordKind::Request, RecordKind::Response] {
            let r = sample(kind);
            let line = serde_json::to_string(&r).unwrap();
            let back: LlmLogRecord = serde_json::from_str(&line).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn a_bad_timestamp_is_a_clear_error() {
        let mut v = serde_json::to_value(sample(RecordKind::Request)).unwrap();
        v["TimeGenerated"] = "yesterday".into();
        let err = serde_json::from_value::<LlmLogRecord>(v).unwrap_err();
        assert!(err.to_string().contains("TimeGenerated"), "{err}");
    }
}
