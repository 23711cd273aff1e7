//! A mock upstream, so the gateway works offline: every API family the crate logs.
//!
//! Chat completions are answered here; the Responses API, embeddings, legacy completions and
//! Anthropic's Messages API in `mock_apis.rs`; Gemini (`/v1beta/models/...`, Vertex AI's
//! `/v1/projects/.../publishers/google/models/...`), Bedrock Converse (`/model/.../converse`,
//! `/converse-stream`) and Ollama (`/api/chat`, `/api/generate`) in `mock_native.rs`; an MCP
//! server (`/mcp`) in `mock_mcp.rs`. This file answers chat completions on the OpenAI paths (`/v1/chat/completions`, `/chat/completions`,
//! `/openai/v1/chat/completions`, `/models/chat/completions`) and the Azure OpenAI path
//! (`/openai/deployments/{deployment}/chat/completions`), as JSON or as server-sent events when
//! the request says `"stream": true`, with usage in the last event when it asks for
//! `stream_options.include_usage`.
//!
//! Everything is deterministic: the reply is "Mock reply to: " and the last user message's first
//! words; `max_tokens` makes the reply that many words long (finish reason `length` when it cuts
//! the reply short); prompt tokens are the words of all messages plus 3 per message; completion
//! tokens are the words of the reply. The model `mock-error` gets a 429 error.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::{mock_apis, mock_mcp, mock_native};

/// The mock's routes.
pub fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/openai/v1/chat/completions", post(chat))
        .route("/models/chat/completions", post(chat))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure_chat),
        )
        .route("/v1/responses", post(mock_apis::responses))
        .route("/openai/responses", post(mock_apis::responses))
        .route("/openai/v1/responses", post(mock_apis::responses))
        .route("/v1/embeddings", post(mock_apis::embeddings))
        .route("/openai/v1/embeddings", post(mock_apis::embeddings))
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(mock_apis::embeddings),
        )
        .route("/v1/completions", post(mock_apis::completions))
        .route(
            "/openai/deployments/{deployment}/completions",
            post(mock_apis::completions),
        )
        .route("/v1/messages", post(mock_apis::messages))
        .route("/v1beta/models/{call}", post(mock_native::gemini))
        .route("/v1/models/{call}", post(mock_native::gemini))
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{call}",
            post(mock_native::vertex),
        )
        .route("/model/{model}/converse", post(mock_native::converse))
        .route(
            "/model/{model}/converse-stream",
            post(mock_native::converse_stream),
        )
        .route("/api/chat", post(mock_native::ollama_chat))
        .route("/api/generate", post(mock_native::ollama_generate))
        .route("/anthropic/v1/messages", post(mock_apis::messages))
        .route("/mcp", axum::routing::any(mock_mcp::mcp))
}

async fn chat(body: Bytes) -> Response {
    answer(None, &body)
}

async fn azure_chat(Path(deployment): Path<String>, body: Bytes) -> Response {
    answer(Some(deployment), &body)
}

pub fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "code": status.as_u16().to_string()}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The text of a message's `content`: a string, or the text parts of a list.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The text of the last message with the `user` role.
pub fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default()
}

/// Prompt tokens as the mock counts them: the words of every message, plus 3 per message.
pub fn message_tokens(messages: &[Value]) -> u64 {
    messages
        .iter()
        .map(|m| 3 + m.get("content").map(|c| words(&content_text(c))).unwrap_or(0))
        .sum()
}

/// A stable hash of some bytes (FNV-1a), for ids and embeddings.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// A stable id derived from the request body.
fn id_for(body: &[u8]) -> String {
    format!("chatcmpl-mock-{:016x}", fnv(body))
}

fn answer(deployment: Option<String>, body: &[u8]) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("invalid JSON: {e}"),
            )
        }
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "'messages' is required",
        );
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(deployment)
        .unwrap_or_else(|| "mock-gpt-4o".to_string());
    if model == "mock-error" {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "Rate limit reached (mock)",
        );
    }
    let last_user = last_user_text(messages);
    let mut reply: Vec<String> = "Mock reply to:".split(' ').map(str::to_string).collect();
    reply.extend(last_user.split_whitespace().take(12).map(str::to_string));
    let mut finish_reason = "stop";
    if let Some(max) = request.get("max_tokens").and_then(Value::as_u64) {
        let max = max.clamp(1, 1_000_000) as usize;
        if max < reply.len() {
            finish_reason = "length";
        }
        reply = reply.iter().cycle().take(max).cloned().collect();
    }
    let prompt_tokens = message_tokens(messages);
    let completion_tokens = reply.len() as u64;
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    });
    let id = id_for(body);
    let created = 1_700_000_000u64;
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let chunk = |choices: Value, usage: Value| {
            let mut c = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": choices,
            });
            if include_usage {
                c["usage"] = usage;
            }
            Bytes::from(format!("data: {c}\n\n"))
        };
        let mut events = vec![chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            Value::Null,
        )];
        for (i, word) in reply.iter().enumerate() {
            let text = if i + 1 < reply.len() {
                format!("{word} ")
            } else {
                word.clone()
            };
            events.push(chunk(
                json!([{"index": 0, "delta": {"content": text}, "finish_reason": null}]),
                Value::Null,
            ));
        }
        events.push(chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": finish_reason}]),
            Value::Null,
        ));
        if include_usage {
            events.push(chunk(json!([]), usage));
        }
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        let stream = futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>));
        return (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::from_stream(stream),
        )
            .into_response();
    }
    let body = json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.join(" "), "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage,
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
