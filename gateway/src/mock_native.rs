//! The mock's native provider APIs: Google's Gemini (`generateContent`, streamed as SSE with
//! `alt=sse` or as a JSON array), AWS Bedrock's Converse (JSON, and `converse-stream` as a binary
//! AWS event stream with its checksums), and Ollama's `/api/chat` and `/api/generate` (JSON, or
//! newline-delimited JSON, the default). Replies and token counts as in `mock_apis.rs`.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::mock::{content_text, fnv, last_user_text, message_tokens, words};
use crate::mock_apis::{events, json_response, pieces, reply};

fn streamed(content_type: &'static str, chunks: Vec<Bytes>) -> Response {
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
    ([(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response()
}

fn bad_request(body: Value) -> Response {
    (StatusCode::BAD_REQUEST, json_response(body)).into_response()
}

/// The last user turn's text and the prompt's tokens (words plus 3 per turn) of Gemini's
/// `contents`, whose text is in `parts`.
fn gemini_turns(contents: &[Value]) -> (String, u64) {
    let text = |t: &Value| t.get("parts").map(content_text).unwrap_or_default();
    let last_user = contents
        .iter()
        .rev()
        .find(|t| t.get("role").and_then(Value::as_str) == Some("user"))
        .map(text)
        .unwrap_or_default();
    (last_user, contents.iter().map(|t| words(&text(t)) + 3).sum())
}

/// Gemini: `POST .../models/{model}:generateContent` or `:streamGenerateContent`.
pub async fn gemini(Path(call): Path<String>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    gemini_answer(&call, query.as_deref(), &body)
}

/// Gemini on Vertex AI: `.../publishers/google/models/{model}:...`.
pub async fn vertex(
    Path((_project, _location, call)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    gemini_answer(&call, query.as_deref(), &body)
}

fn gemini_error(status: StatusCode, message: &str, kind: &str) -> Response {
    (
        status,
        json_response(json!({"error": {"code": status.as_u16(), "message": message, "status": kind}})),
    )
        .into_response()
}

fn gemini_answer(call: &str, query: Option<&str>, body: &[u8]) -> Response {
    let Some((model, method)) = call.split_once(':') else {
        return gemini_error(StatusCode::NOT_FOUND, "unknown method", "NOT_FOUND");
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return gemini_error(StatusCode::NOT_FOUND, "unknown method", "NOT_FOUND"),
    };
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return gemini_error(
            StatusCode::BAD_REQUEST,
            "Invalid JSON payload received.",
            "INVALID_ARGUMENT",
        );
    };
    let Some(contents) = request.get("contents").and_then(Value::as_array) else {
        return gemini_error(
            StatusCode::BAD_REQUEST,
            "contents is not specified",
            "INVALID_ARGUMENT",
        );
    };
    let (last_user, mut prompt) = gemini_turns(contents);
    prompt += request
        .pointer("/systemInstruction/parts")
        .map(|p| words(&content_text(p)))
        .unwrap_or(0);
    let max = request
        .pointer("/generationConfig/maxOutputTokens")
        .and_then(Value::as_u64);
    let (reply, cut) = reply(&last_user, max);
    let finish = if cut { "MAX_TOKENS" } else { "STOP" };
    let id = format!("mock-{:016x}", fnv(body));
    let chunk = |text: &str, output: u64, finish: Option<&str>| {
        let mut candidate = json!({"content": {"role": "model", "parts": [{"text": text}]}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        json!({"candidates": [candidate],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output},
            "modelVersion": model, "responseId": id})
    };
    if !stream {
        return json_response(chunk(&reply.join(" "), reply.len() as u64, Some(finish)));
    }
    let pieces = pieces(&reply);
    let chunks: Vec<Value> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| chunk(p, i as u64 + 1, (i + 1 == pieces.len()).then_some(finish)))
        .collect();
    if query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse")) {
        return events(
            chunks
                .iter()
                .map(|c| Bytes::from(format!("data: {c}\r\n\r\n")))
                .collect(),
        );
    }
    // Google's framing of a streamed array: `[`, elements apart by `\r\n,\r\n`, then `\r\n]`.
    let n = chunks.len();
    let frames = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let before = if i == 0 { "[" } else { "\r\n,\r\n" };
            let after = if i + 1 == n { "\r\n]" } else { "" };
            Bytes::from(format!("{before}{c}{after}"))
        })
        .collect();
    streamed("application/json; charset=UTF-8", frames)
}

/// One AWS event-stream message with string headers: a prelude (lengths and their CRC-32), the
/// headers, the payload, and the CRC-32 of all before it.
fn event_stream_message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7); // a string
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 16 + h.len() + payload.len();
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_be_bytes());
    m.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&m);
    m.extend_from_slice(&prelude_crc.to_be_bytes());
    m.extend_from_slice(&h);
    m.extend_from_slice(payload);
    let crc = crc32fast::hash(&m);
    m.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(m)
}

fn bedrock_event(kind: &str, payload: Value) -> Bytes {
    event_stream_message(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn bedrock_error(status: StatusCode, kind: &'static str, message: &str, request_id: &str) -> Response {
    let mut res = (status, json_response(json!({"message": message}))).into_response();
    let headers = res.headers_mut();
    headers.insert("x-amzn-errortype", header::HeaderValue::from_static(kind));
    if let Ok(id) = header::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    res
}

/// Bedrock: `POST /model/{modelId}/converse`.
pub async fn converse(Path(model): Path<String>, body: Bytes) -> Response {
    converse_answer(&model, &body, false)
}

/// Bedrock: `POST /model/{modelId}/converse-stream`.
pub async fn converse_stream(Path(model): Path<String>, body: Bytes) -> Response {
    converse_answer(&model, &body, true)
}

fn converse_answer(model: &str, body: &[u8], stream: bool) -> Response {
    let request_id = format!("{:08x}-mock-{:016x}", body.len(), fnv(body));
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return bedrock_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request",
            &request_id,
        );
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return bedrock_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "messages is required",
            &request_id,
        );
    };
    if model == "mock-throttled" {
        return bedrock_error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests (mock)",
            &request_id,
        );
    }
    let (last_user, mut input) = (last_user_text(messages), message_tokens(messages));
    input += request
        .get("system")
        .map(|s| words(&content_text(s)))
        .unwrap_or(0);
    let max = request
        .pointer("/inferenceConfig/maxTokens")
        .and_then(Value::as_u64);
    let (reply, cut) = reply(&last_user, max);
    let stop = if cut { "max_tokens" } else { "end_turn" };
    let output = reply.len() as u64;
    let usage = json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output});
    let mut res = if !stream {
        json_response(
            json!({"output": {"message": {"role": "assistant", "content": [{"text": reply.join(" ")}]}},
            "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 1}}),
        )
    } else {
        let mut frames = vec![bedrock_event("messageStart", json!({"role": "assistant"}))];
        frames.extend(pieces(&reply).iter().map(|p| {
            bedrock_event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": p}}),
            )
        }));
        frames.push(bedrock_event("contentBlockStop", json!({"contentBlockIndex": 0})));
        frames.push(bedrock_event("messageStop", json!({"stopReason": stop})));
        frames.push(bedrock_event(
            "metadata",
            json!({"usage": usage, "metrics": {"latencyMs": 1}}),
        ));
        streamed("application/vnd.amazon.eventstream", frames)
    };
    if let Ok(id) = header::HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-amzn-requestid", id);
    }
    res
}

/// Ollama: `POST /api/chat`.
pub async fn ollama_chat(body: Bytes) -> Response {
    ollama_answer(&body, false)
}

/// Ollama: `POST /api/generate`.
pub async fn ollama_generate(body: Bytes) -> Response {
    ollama_answer(&body, true)
}

fn ollama_answer(body: &[u8], generate: bool) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return bad_request(json!({"error": "invalid character in request body"}));
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if model.is_empty() {
        return bad_request(json!({"error": "model is required"}));
    }
    if model == "mock-missing" {
        return (
            StatusCode::NOT_FOUND,
            json_response(json!({"error": format!("model \"{model}\" not found, try pulling it first")})),
        )
            .into_response();
    }
    let (last_user, prompt) = if generate {
        let text = request.get("prompt").and_then(Value::as_str).unwrap_or("");
        let system = request.get("system").map(content_text).unwrap_or_default();
        (text.to_string(), words(text) + words(&system))
    } else {
        match request.get("messages").and_then(Value::as_array) {
            Some(messages) => (last_user_text(messages), message_tokens(messages)),
            None => return bad_request(json!({"error": "messages is required"})),
        }
    };
    let max = request.pointer("/options/num_predict").and_then(Value::as_u64);
    let (reply, cut) = reply(&last_user, max);
    let done_reason = if cut { "length" } else { "stop" };
    let created_at = "2026-01-01T00:00:00.000000000Z";
    let piece = |text: &str| {
        if generate {
            json!({"model": model, "created_at": created_at, "response": text, "done": false})
        } else {
            json!({"model": model, "created_at": created_at, "message": {"role": "assistant", "content": text}, "done": false})
        }
    };
    let mut last = piece("");
    last["done"] = json!(true);
    last["done_reason"] = json!(done_reason);
    last["prompt_eval_count"] = json!(prompt);
    last["eval_count"] = json!(reply.len());
    last["total_duration"] = json!(1_000_000);
    if request.get("stream") == Some(&json!(false)) {
        let text = json!(reply.join(" "));
        if generate {
            last["response"] = text;
        } else {
            last["message"]["content"] = text;
        }
        return json_response(last);
    }
    let mut lines: Vec<Bytes> = pieces(&reply)
        .iter()
        .map(|p| Bytes::from(format!("{}\n", piece(p))))
        .collect();
    lines.push(Bytes::from(format!("{last}\n")));
    streamed("application/x-ndjson", lines)
}
