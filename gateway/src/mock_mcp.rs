//! The mock's MCP server (streamable HTTP, protocol 2025-06-18) at `/mcp`: a session to log.
//!
//! - `initialize` assigns a session (`Mcp-Session-Id: mock-session-N`); later requests without
//!   one get `400`, and the session `expired` gets `404`, as the transport says.
//! - `tools/list` lists four tools; `tools/call` answers `get_weather` (text and
//!   `structuredContent`), `render_chart` (text and a PNG image, base64), `flaky` (a tool
//!   error, `isError: true`) and `count_slowly` (an event stream of progress notifications, then
//!   the result); an unknown tool gets the JSON-RPC error `-32602`.
//! - `resources/read` and `prompts/get` answer; other methods get `-32601`.
//! - Notifications and client responses get `202 Accepted`, no body; a batch (2025-03-26) is
//!   answered with the array of its responses.
//! - `GET` is a stream of two notifications; `DELETE` ends the session.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const PROTOCOL: &str = "2025-06-18";
static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// `/mcp`: every method of the transport.
pub async fn mcp(method: Method, headers: HeaderMap, body: Bytes) -> Response {
    match method {
        Method::POST => post(&headers, &body),
        Method::GET => listen(),
        Method::DELETE => StatusCode::OK.into_response(),
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

fn json_reply(value: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn post(headers: &HeaderMap, body: &[u8]) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        let error = rpc_error(&Value::Null, -32700, "Parse error");
        return (StatusCode::BAD_REQUEST, json_reply(&error)).into_response();
    };
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    let initializing = message.get("method").and_then(Value::as_str) == Some("initialize");
    match session {
        Some("expired") => {
            let error = rpc_error(&Value::Null, -32001, "Session not found");
            return (StatusCode::NOT_FOUND, json_reply(&error)).into_response();
        }
        None if !initializing => {
            let error = rpc_error(
                &Value::Null,
                -32000,
                "Bad Request: Mcp-Session-Id header is required",
            );
            return (StatusCode::BAD_REQUEST, json_reply(&error)).into_response();
        }
        _ => {}
    }
    if let Value::Array(batch) = &message {
        let answers: Vec<Value> = batch.iter().filter_map(answer).collect();
        if answers.is_empty() {
            return StatusCode::ACCEPTED.into_response();
        }
        return json_reply(&Value::Array(answers));
    }
    let streamed = message["method"] == "tools/call" && message["params"]["name"] == "count_slowly";
    let Some(answer) = answer(&message) else {
        // A notification, or the client's response to a request of the server's.
        return StatusCode::ACCEPTED.into_response();
    };
    if streamed {
        return count_slowly(&message, answer);
    }
    let mut response = json_reply(&answer);
    if initializing {
        let n = SESSIONS.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(value) = format!("mock-session-{n}").parse() {
            response.headers_mut().insert("mcp-session-id", value);
        }
    }
    response
}

/// The response to one message; `None` for a notification or a response.
fn answer(message: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let method = message.get("method").and_then(Value::as_str)?;
    let params = &message["params"];
    let result = match method {
        "initialize" => json!({
            "protocolVersion": PROTOCOL,
            "capabilities": {"tools": {"listChanged": true}, "resources": {}, "prompts": {}, "logging": {}},
            "serverInfo": {"name": "llm-log-gateway-mock", "version": env!("CARGO_PKG_VERSION")},
        }),
        "ping" => json!({}),
        "tools/list" => json!({"tools": [
            tool("get_weather", "Current weather for a city."),
            tool("render_chart", "A chart of the week's temperatures, as a PNG image."),
            tool("flaky", "Fails: its upstream is down."),
            tool("count_slowly", "Counts to three, reporting progress."),
        ]}),
        "tools/call" => match params["name"].as_str().unwrap_or_default() {
            "get_weather" => {
                let city = params["arguments"]["city"].as_str().unwrap_or("Oslo");
                let weather = json!({"city": city, "temperature": 4.5, "conditions": "Light rain"});
                json!({
                    "content": [{"type": "text", "text": weather.to_string()}],
                    "structuredContent": weather,
                    "isError": false,
                })
            }
            "render_chart" => json!({
                "content": [
                    {"type": "text", "text": "Temperatures, Monday to Sunday."},
                    {"type": "image", "data": base64(&chart_png()), "mimeType": "image/png"},
                ],
                "isError": false,
            }),
            "flaky" => json!({
                "content": [{"type": "text", "text": "Weather service unavailable: upstream timed out"}],
                "isError": true,
            }),
            "count_slowly" => json!({"content": [{"type": "text", "text": "1, 2, 3"}], "isError": false}),
            other => return Some(rpc_error(&id, -32602, &format!("Unknown tool: {other}"))),
        },
        "resources/read" => json!({"contents": [{
            "uri": params["uri"], "mimeType": "text/markdown", "text": "# Mock resource\n",
        }]}),
        "prompts/get" => json!({
            "description": "A mock prompt",
            "messages": [{"role": "user", "content": {"type": "text", "text": "Review this code."}}],
        }),
        _ => return Some(rpc_error(&id, -32601, &format!("Method not found: {method}"))),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn tool(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description, "inputSchema": {"type": "object"}})
}

/// `count_slowly`: progress notifications, then the result, as server-sent events.
fn count_slowly(message: &Value, answer: Value) -> Response {
    let token = message["params"]["_meta"]["progressToken"].clone();
    let mut events: Vec<Result<Bytes, Infallible>> = (1..=3)
        .map(|n| {
            let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                "params": {"progressToken": token, "progress": n, "total": 3}});
            Ok(Bytes::from(format!(
                "event: message\nid: {n}\ndata: {progress}\n\n"
            )))
        })
        .collect();
    events.push(Ok(Bytes::from(format!(
        "event: message\nid: 4\ndata: {answer}\n\n"
    ))));
    stream(events)
}

fn stream(events: Vec<Result<Bytes, Infallible>>) -> Response {
    let body = Body::from_stream(futures_util::stream::iter(events));
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

/// `GET /mcp`: two notifications of the server's, then the stream ends.
fn listen() -> Response {
    let notes = [
        json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
        json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "logger": "mock", "data": "listening"}}),
    ];
    stream(
        notes
            .iter()
            .map(|n| Ok(Bytes::from(format!("event: message\ndata: {n}\n\n"))))
            .collect(),
    )
}

/// A PNG's signature and header, then filler: enough bytes (2 KiB) for the log to elide.
fn chart_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    png.extend((0..2048u32).map(|i| (i * 31 % 251) as u8));
    png
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
