//! The mock's other API families: the Responses API, embeddings, legacy completions and
//! Anthropic's Messages API, JSON and streaming, as deterministic as the chat mock.
//!
//! Replies are "Mock reply to: " and the first words of the last user text; `max_output_tokens`
//! / `max_tokens` cut them (status `incomplete`, finish reason `length`, stop reason
//! `max_tokens`). Input tokens are the words of the input plus 3 per message; output tokens are
//! the reply's words. Embeddings are `dimensions` (default 8) numbers derived from the input's
//! hash, as floats or, with `"encoding_format": "base64"`, base64.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::mock::{content_text, error, fnv, last_user_text, message_tokens, words};

pub(crate) fn events(chunks: Vec<Bytes>) -> Response {
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

pub(crate) fn json_response(body: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn parse(body: &[u8]) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("invalid JSON: {e}"),
        ))
    })
}

/// The reply to `text`, cut to `max` words; whether it was cut.
pub(crate) fn reply(text: &str, max: Option<u64>) -> (Vec<String>, bool) {
    let mut reply: Vec<String> = "Mock reply to:".split(' ').map(str::to_string).collect();
    reply.extend(text.split_whitespace().take(12).map(str::to_string));
    match max.map(|m| m.clamp(1, 1_000_000) as usize) {
        Some(max) if max < reply.len() => {
            reply.truncate(max);
            (reply, true)
        }
        _ => (reply, false),
    }
}

/// The reply as stream pieces: each word with the space before the next.
pub(crate) fn pieces(reply: &[String]) -> Vec<String> {
    reply
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i + 1 < reply.len() {
                format!("{w} ")
            } else {
                w.clone()
            }
        })
        .collect()
}

fn model_of(request: &Value, default: &str) -> String {
    request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

fn is_stream(request: &Value) -> bool {
    request.get("stream").and_then(Value::as_bool) == Some(true)
}

/// The OpenAI Responses API.
pub async fn responses(body: Bytes) -> Response {
    let request = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (last_user, input_tokens) = match request.get("input") {
        Some(Value::String(s)) => (s.clone(), words(s) + 3),
        Some(Value::Array(items)) => (last_user_text(items), message_tokens(items)),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "'input' is required",
            )
        }
    };
    let input_tokens = input_tokens
        + request
            .get("instructions")
            .and_then(Value::as_str)
            .map(words)
            .unwrap_or(0);
    let model = model_of(&request, "mock-gpt-4.1");
    let (reply, cut) = reply(
        &last_user,
        request.get("max_output_tokens").and_then(Value::as_u64),
    );
    let text = reply.join(" ");
    let id = format!("resp_mock_{:016x}", fnv(&body));
    let msg_id = format!("msg_mock_{:016x}", fnv(&body));
    let output_tokens = reply.len() as u64;
    let status = if cut { "incomplete" } else { "completed" };
    let message = |text: &str, status: &str| {
        json!({"type": "message", "id": msg_id, "status": status, "role": "assistant",
               "content": [{"type": "output_text", "text": text, "annotations": []}]})
    };
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": id, "object": "response", "created_at": 1_700_000_000u64, "status": status,
               "model": model, "output": output, "usage": usage,
               "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null }})
    };
    let usage = json!({"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                       "total_tokens": input_tokens + output_tokens});
    let done = response(status, json!([message(&text, status)]), usage);
    if !is_stream(&request) {
        return json_response(done);
    }
    let mut seq = 0u64;
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
    };
    let mut out = vec![
        event(
            "response.created",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        event(
            "response.in_progress",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        event(
            "response.output_item.added",
            json!({"output_index": 0, "item": {"type": "message", "id": msg_id, "status": "in_progress", "role": "assistant", "content": []}}),
        ),
        event(
            "response.content_part.added",
            json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
        ),
    ];
    for piece in pieces(&reply) {
        out.push(event(
            "response.output_text.delta",
            json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": piece}),
        ));
    }
    out.push(event(
        "response.output_text.done",
        json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "text": text}),
    ));
    out.push(event(
        "response.output_item.done",
        json!({"output_index": 0, "item": message(&text, status)}),
    ));
    let last = if cut {
        "response.incomplete"
    } else {
        "response.completed"
    };
    out.push(event(last, json!({"response": done})));
    events(out)
}

/// Standard base64 (RFC 4648), for base64 embeddings.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Embeddings.
pub async fn embeddings(body: Bytes) -> Response {
    let request = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
            .collect(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "'input' is required",
            )
        }
    };
    let dimensions = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(8)
        .clamp(1, 4096) as usize;
    let base64_wanted = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let seed = fnv(text.as_bytes());
            let vector: Vec<f32> = (0..dimensions)
                .map(|d| ((seed.rotate_left(d as u32 * 7) % 2001) as f32 - 1000.0) / 1000.0)
                .collect();
            let embedding = if base64_wanted {
                json!(base64(
                    &vector.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<_>>()
                ))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|s| words(s)).sum();
    json_response(
        json!({"object": "list", "data": data, "model": model_of(&request, "mock-embedding-3-small"),
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// Legacy text completions.
pub async fn completions(body: Bytes) -> Response {
    let request = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let prompt = match request.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "'prompt' is required",
            )
        }
    };
    let model = model_of(&request, "mock-gpt-3.5-turbo-instruct");
    let (reply, cut) = reply(&prompt, request.get("max_tokens").and_then(Value::as_u64));
    let finish = if cut { "length" } else { "stop" };
    let id = format!("cmpl-mock-{:016x}", fnv(&body));
    let (prompt_tokens, completion_tokens) = (words(&prompt), reply.len() as u64);
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
    let chunk = |choices: Value, usage: Value| json!({"id": id, "object": "text_completion", "created": 1_700_000_000u64, "model": model, "choices": choices, "usage": usage});
    if !is_stream(&request) {
        return json_response(chunk(
            json!([{"text": reply.join(" "), "index": 0, "logprobs": null, "finish_reason": finish}]),
            usage,
        ));
    }
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let words = pieces(&reply);
    let mut out: Vec<Bytes> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let reason = if i + 1 == words.len() {
                json!(finish)
            } else {
                Value::Null
            };
            let c = chunk(
                json!([{"text": w, "index": 0, "logprobs": null, "finish_reason": reason}]),
                Value::Null,
            );
            Bytes::from(format!("data: {c}\n\n"))
        })
        .collect();
    if include_usage {
        out.push(Bytes::from(format!("data: {}\n\n", chunk(json!([]), usage))));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events(out)
}

fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Anthropic's Messages API.
pub async fn messages(body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", "invalid JSON");
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "messages: Field required",
        );
    };
    let Some(max_tokens) = request.get("max_tokens").and_then(Value::as_u64) else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        );
    };
    let model = model_of(&request, "mock-claude");
    if model == "mock-overloaded" {
        return anthropic_error(
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded (mock)",
        );
    }
    let last_user = last_user_text(messages);
    let system_tokens = request
        .get("system")
        .map(|s| words(&content_text(s)))
        .unwrap_or(0);
    let input_tokens = system_tokens + message_tokens(messages);
    let (reply, cut) = reply(&last_user, Some(max_tokens));
    let stop = if cut { "max_tokens" } else { "end_turn" };
    let id = format!("msg_mock_{:016x}", fnv(&body));
    let output_tokens = reply.len() as u64;
    let usage = |output: u64| json!({"input_tokens": input_tokens, "output_tokens": output, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    if !is_stream(&request) {
        return json_response(
            json!({"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": reply.join(" ")}], "stop_reason": stop, "stop_sequence": null,
            "usage": usage(output_tokens)}),
        );
    }
    let event = |kind: &str, data: Value| Bytes::from(format!("event: {kind}\ndata: {data}\n\n"));
    let mut out = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage(1)}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    for piece in pieces(&reply) {
        out.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})));
    }
    out.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}})));
    out.push(event("message_stop", json!({"type": "message_stop"})));
    events(out)
}
