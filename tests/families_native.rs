//! Gemini, Bedrock Converse and Ollama through the layer, against fixtures in their wire formats
//! (`tests/fixtures/{gemini,bedrock,ollama}`, facts and sources in `tests/fixtures/FORMATS.md`):
//! JSON and every streaming framing (SSE, a streamed JSON array, JSON lines, AWS event stream),
//! tool calls, errors, streams split at every byte.
mod common;

use std::convert::Infallible;

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::{ApiFamily, LlmLogBody, LlmLogLayer, LlmLogRecord, MemorySink, Outcome, RecordKind};

type Inner = Request<LlmLogBody<Frames>>;

/// What the upstream answers.
#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
}

fn ok(content_type: &'static str) -> Answer {
    Answer {
        status: 200,
        content_type,
        headers: Vec::new(),
    }
}

/// One exchange at `path`: the request body, and the upstream's answer split into `frames`.
async fn run(path: &str, request: &[u8], answer: Answer, frames: Frames) -> (Bytes, Vec<LlmLogRecord>) {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = service_fn(move |req: Inner| {
        let (frames, answer) = (frames.clone(), answer.clone());
        async move {
            let _ = req.into_body().collect().await;
            let mut res = Response::builder()
                .status(answer.status)
                .header(CONTENT_TYPE, answer.content_type);
            for (name, value) in answer.headers {
                res = res.header(name, value);
            }
            Ok::<_, Infallible>(res.body(frames).unwrap())
        }
    });
    let req = Request::post(path)
        .header(CONTENT_TYPE, "application/json")
        .body(Frames::new([Bytes::copy_from_slice(request)]))
        .unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (bytes, sink.take())
}

/// Runs a stream whole, then split in two at every byte; each run must log what the whole stream
/// logs, and pass the bytes through unchanged. Returns the records of the whole run.
async fn every_split(
    path: &str,
    request: &[u8],
    answer: Answer,
    stream: &[u8],
) -> (LlmLogRecord, LlmLogRecord) {
    let (bytes, records) = run(
        path,
        request,
        answer.clone(),
        Frames::new([Bytes::copy_from_slice(stream)]),
    )
    .await;
    assert_eq!(bytes, stream);
    let whole = one(&records, RecordKind::Response);
    let request_record = one(&records, RecordKind::Request);
    let runs = (1..stream.len())
        .map(|cut| vec![cut])
        .chain(std::iter::once((1..stream.len()).collect::<Vec<_>>()));
    for cuts in runs {
        let (bytes, records) = run(path, request, answer.clone(), Frames::split(stream, &cuts)).await;
        assert_eq!(bytes, stream, "cuts {:?}", &cuts[..cuts.len().min(2)]);
        let r = one(&records, RecordKind::Response);
        assert_eq!(said(&r), said(&whole), "cuts {:?}", &cuts[..cuts.len().min(2)]);
    }
    (request_record, whole)
}

// ---------------------------------------------------------------------------------------------
// Gemini

const GEMINI: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const GEMINI_STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
const GEMINI_SSE: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";

#[tokio::test]
async fn gemini_json() {
    let request = include_str!("fixtures/gemini/request.json");
    let response = include_str!("fixtures/gemini/response.json");
    let (_, records) = run(
        GEMINI,
        request.as_bytes(),
        ok("application/json; charset=UTF-8"),
        Frames::new([Bytes::from_static(response.as_bytes())]),
    )
    .await;
    let rq = one(&records, RecordKind::Request);
    assert_eq!(rq.api, ApiFamily::GeminiGenerateContent);
    assert_eq!(rq.api.as_str(), "gemini_generate_content");
    assert_eq!(
        (
            rq.provider.as_deref(),
            rq.operation_name.as_ref(),
            rq.model_name.as_deref()
        ),
        (Some("gcp.gemini"), "generate_content", Some("gemini-2.5-flash"))
    );
    assert!(!rq.is_stream_completion);
    let req = fixture(request);
    assert_eq!(
        json_of(&rq),
        json!({"systemInstruction": req["systemInstruction"], "contents": req["contents"]})
    );
    let rs = one(&records, RecordKind::Response);
    assert_eq!(rs.outcome, Outcome::Completed);
    assert_eq!(rs.error, None);
    assert_eq!(json_of(&rs), fixture(response)["candidates"]);
    assert_eq!(
        tokens(&rs),
        [
            Some(1250),
            Some(24 + 110),
            Some(1384),
            Some(1024),
            Some(110),
            None
        ]
    );
    assert_eq!(rs.finish_reasons, ["STOP"]);
    assert_eq!(rs.request_id.as_deref(), Some("Zt9kaJ2uFq2W_uMPkoaMwQ4"));
    assert_eq!(rs.model_name.as_deref(), Some("gemini-2.5-flash"));
}

#[tokio::test]
async fn gemini_streamed_json_array_and_sse_log_the_same() {
    let request = include_str!("fixtures/gemini/request.json").as_bytes();
    let array = include_str!("fixtures/gemini/stream.json").as_bytes();
    let (rq, rs) = every_split(
        GEMINI_STREAM,
        request,
        ok("application/json; charset=UTF-8"),
        array,
    )
    .await;
    assert!(rq.is_stream_completion, "the path asks for a stream");
    assert_eq!(rs.error, None);
    assert!(rs.is_stream_completion);
    assert_eq!(
        json_of(&rs),
        json!([{"index": 0, "content": {"role": "model", "parts": [{"text": "Paris is usually mild in May, around 20 C."}]}, "finishReason": "STOP"}])
    );
    assert_eq!(
        tokens(&rs),
        [Some(12), Some(10 + 37), Some(59), None, Some(37), None]
    );
    assert_eq!(rs.finish_reasons, ["STOP"]);
    assert_eq!(rs.request_id.as_deref(), Some("q3lmaPnYBsOnvdIPj7S9qA0"));
    assert!(rs.time_to_first_token.is_some());

    let sse = include_str!("fixtures/gemini/stream.sse").as_bytes();
    let (_, rs_sse) = every_split(GEMINI_SSE, request, ok("text/event-stream"), sse).await;
    assert_eq!(
        (
            rs_sse.messages_str(),
            tokens(&rs_sse),
            &rs_sse.finish_reasons,
            &rs_sse.request_id
        ),
        (rs.messages_str(), tokens(&rs), &rs.finish_reasons, &rs.request_id),
        "one stream, two framings, one record"
    );
}

#[tokio::test]
async fn gemini_stream_with_a_function_call() {
    let request = include_str!("fixtures/gemini/request.json").as_bytes();
    let sse = include_str!("fixtures/gemini/stream_function_call.sse").as_bytes();
    let (_, rs) = every_split(GEMINI_SSE, request, ok("text/event-stream"), sse).await;
    assert_eq!(rs.error, None);
    let parts = &json_of(&rs)[0]["content"]["parts"];
    assert_eq!(parts[0], json!({"text": "Checking now."}));
    assert_eq!(
        parts[1],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}})
    );
    assert_eq!(tokens(&rs)[..3], [Some(58), Some(19 + 43), Some(120)]);
}

#[tokio::test]
async fn gemini_errors() {
    let request = include_str!("fixtures/gemini/request.json").as_bytes();
    // An error element in the middle of a streamed array.
    let cut = include_str!("fixtures/gemini/stream_error.json").as_bytes();
    let (_, rs) = every_split(GEMINI_STREAM, request, ok("application/json"), cut).await;
    let error = rs.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("the stream carried an error") && error.contains("UNAVAILABLE"),
        "{error}"
    );
    assert_eq!(
        json_of(&rs)[0]["content"]["parts"][0]["text"],
        "Paris is usually mild in May,"
    );
    assert_eq!(tokens(&rs)[..3], [Some(12), Some(7 + 37), Some(56)]);
    // An HTTP error: logged as it came.
    let body = include_str!("fixtures/gemini/error.json");
    let answer = Answer {
        status: 400,
        ..ok("application/json")
    };
    let (_, records) = run(
        GEMINI,
        request,
        answer,
        Frames::new([Bytes::from_static(body.as_bytes())]),
    )
    .await;
    let rs = one(&records, RecordKind::Response);
    assert_eq!((rs.outcome, rs.status_code), (Outcome::UpstreamError, Some(400)));
    assert_eq!(json_of(&rs), fixture(body));
    // A streamed array cut inside an element, its end never sent.
    let (_, records) = run(
        GEMINI_STREAM,
        request,
        ok("application/json"),
        Frames::new([Bytes::from_static(
            &include_str!("fixtures/gemini/stream.json").as_bytes()[..700],
        )]),
    )
    .await;
    let error = one(&records, RecordKind::Response).error.unwrap_or_default();
    assert!(error.contains("the JSON array ended inside element"), "{error}");
}

#[tokio::test]
async fn gemini_on_vertex_ai() {
    let request = include_str!("fixtures/gemini/request.json").as_bytes();
    let sse = include_str!("fixtures/gemini/stream.sse").as_bytes();
    let path = "/v1/projects/my-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    let (_, records) = run(
        path,
        request,
        ok("text/event-stream"),
        Frames::new([Bytes::from_static(sse)]),
    )
    .await;
    let rq = one(&records, RecordKind::Request);
    assert_eq!(
        (rq.api.clone(), rq.provider.as_deref(), rq.model_name.as_deref()),
        (
            ApiFamily::GeminiGenerateContent,
            Some("gcp.vertex_ai"),
            Some("gemini-2.5-flash")
        )
    );
    assert_eq!(one(&records, RecordKind::Response).error, None);
}

// ---------------------------------------------------------------------------------------------
// Bedrock Converse

const BEDROCK_MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const BEDROCK: &str = "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
const BEDROCK_STREAM: &str = "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream";
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// A fixture of events, encoded by AWS's own event-stream implementation.
fn event_stream(events_json: &str) -> Vec<u8> {
    let events: Vec<Value> = serde_json::from_str(events_json).unwrap();
    let mut out = Vec::new();
    for e in events {
        let string = |s: &str| HeaderValue::String(s.to_string().into());
        let payload = e["payload"].to_string();
        let message = match (e["event"].as_str(), e["exception"].as_str()) {
            (Some(event), _) => Message::new(payload)
                .add_header(Header::new(":event-type", string(event)))
                .add_header(Header::new(":content-type", string("application/json")))
                .add_header(Header::new(":message-type", string("event"))),
            (None, Some(exception)) => Message::new(payload)
                .add_header(Header::new(":exception-type", string(exception)))
                .add_header(Header::new(":content-type", string("application/json")))
                .add_header(Header::new(":message-type", string("exception"))),
            _ => panic!("an event or an exception: {e}"),
        };
        aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
    }
    out
}

fn bedrock_answer(status: u16, content_type: &'static str) -> Answer {
    Answer {
        status,
        content_type,
        headers: vec![("x-amzn-RequestId", "5d4a2c1e-8b7f-4e3a-9c6d-1f2e3a4b5c6d")],
    }
}

#[tokio::test]
async fn bedrock_json() {
    let request = include_str!("fixtures/bedrock/request.json");
    let response = include_str!("fixtures/bedrock/response.json");
    let (_, records) = run(
        BEDROCK,
        request.as_bytes(),
        bedrock_answer(200, "application/json"),
        Frames::new([Bytes::from_static(response.as_bytes())]),
    )
    .await;
    let rq = one(&records, RecordKind::Request);
    assert_eq!(rq.api.as_str(), "bedrock_converse");
    assert_eq!(
        (
            rq.provider.as_deref(),
            rq.operation_name.as_ref(),
            rq.model_name.as_deref()
        ),
        (Some("aws.bedrock"), "chat", Some(BEDROCK_MODEL))
    );
    let req = fixture(request);
    assert_eq!(
        json_of(&rq),
        json!({"system": req["system"], "messages": req["messages"]})
    );
    let rs = one(&records, RecordKind::Response);
    assert_eq!(rs.error, None);
    assert_eq!(json_of(&rs), fixture(response)["output"]["message"]["content"]);
    assert_eq!(
        tokens(&rs),
        [Some(412), Some(58), Some(1494), Some(1024), None, Some(0)]
    );
    assert_eq!(rs.finish_reasons, ["tool_use"]);
    assert_eq!(
        rs.request_id.as_deref(),
        Some("5d4a2c1e-8b7f-4e3a-9c6d-1f2e3a4b5c6d")
    );
    assert_eq!(rs.model_name.as_deref(), Some(BEDROCK_MODEL));
}

#[tokio::test]
async fn bedrock_stream_with_a_tool_call() {
    let request = include_str!("fixtures/bedrock/request.json").as_bytes();
    let stream = event_stream(include_str!("fixtures/bedrock/stream_events.json"));
    let (rq, rs) = every_split(
        BEDROCK_STREAM,
        request,
        bedrock_answer(200, EVENT_STREAM),
        &stream,
    )
    .await;
    assert!(rq.is_stream_completion);
    assert_eq!(rs.error, None);
    assert_eq!(
        json_of(&rs),
        json!([
            {"text": "Let me check the weather."},
            {"toolUse": {"toolUseId": "tooluse_Qm7sV2nKcR4tYx9LpA3wEd", "name": "get_weather", "input": {"city": "Paris"}}}
        ])
    );
    assert_eq!(tokens(&rs), [Some(405), Some(61), Some(466), None, None, None]);
    assert_eq!(rs.finish_reasons, ["tool_use"]);
    assert_eq!(
        rs.request_id.as_deref(),
        Some("5d4a2c1e-8b7f-4e3a-9c6d-1f2e3a4b5c6d")
    );
    assert!(rs.time_to_first_token.is_some());
}

#[tokio::test]
async fn bedrock_stream_with_reasoning() {
    let request = include_str!("fixtures/bedrock/request.json").as_bytes();
    let stream = event_stream(include_str!("fixtures/bedrock/stream_reasoning_events.json"));
    let (_, rs) = every_split(
        BEDROCK_STREAM,
        request,
        bedrock_answer(200, EVENT_STREAM),
        &stream,
    )
    .await;
    assert_eq!(rs.error, None);
    let content = json_of(&rs);
    assert_eq!(
        content[0]["reasoningContent"]["reasoningText"]["text"],
        "The user says hello. A short greeting fits."
    );
    assert!(content[0]["reasoningContent"]["reasoningText"]["signature"]
        .as_str()
        .is_some_and(|s| s.starts_with("EqoB")));
    assert_eq!(content[1], json!({"text": "Hello! How can I help?"}));
    assert_eq!(tokens(&rs)[..3], [Some(38), Some(52), Some(90)]);
    assert_eq!(rs.finish_reasons, ["end_turn"]);
}

#[tokio::test]
async fn bedrock_stream_exception_and_corrupt_frames_are_reported() {
    let request = include_str!("fixtures/bedrock/request.json").as_bytes();
    let stream = event_stream(include_str!("fixtures/bedrock/stream_exception_events.json"));
    let (_, rs) = every_split(
        BEDROCK_STREAM,
        request,
        bedrock_answer(200, EVENT_STREAM),
        &stream,
    )
    .await;
    let error = rs.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("the stream carried an error: throttlingException: Too many requests"),
        "{error}"
    );
    assert_eq!(json_of(&rs), json!([{"text": "Paris is"}]));

    // A flipped payload byte in the second message: that message is skipped and reported.
    let whole = event_stream(include_str!("fixtures/bedrock/stream_events.json"));
    let first_len = u32::from_be_bytes(whole[..4].try_into().unwrap()) as usize;
    let mut corrupt = whole.clone();
    corrupt[first_len + 100] ^= 0x20;
    let (bytes, records) = run(
        BEDROCK_STREAM,
        request,
        bedrock_answer(200, EVENT_STREAM),
        Frames::new([Bytes::from(corrupt.clone())]),
    )
    .await;
    assert_eq!(bytes, corrupt, "the traffic passes as it came, corrupt or not");
    let rs = one(&records, RecordKind::Response);
    let error = rs.error.clone().unwrap_or_default();
    assert!(
        error.contains("message 2's checksum does not match; it was skipped"),
        "{error}"
    );
    assert_eq!(rs.error_kinds, [tower_llm_log::api::ProblemKind::Stream]);
    assert_eq!(
        json_of(&rs)[0]["text"],
        " the weather.",
        "the good messages are read"
    );

    // A bad prelude: the rest cannot be trusted.
    let mut corrupt = whole.clone();
    corrupt[first_len + 1] ^= 0x01;
    let (_, records) = run(
        BEDROCK_STREAM,
        request,
        bedrock_answer(200, EVENT_STREAM),
        Frames::new([Bytes::from(corrupt)]),
    )
    .await;
    let error = one(&records, RecordKind::Response).error.unwrap_or_default();
    assert!(
        error.contains("message 2's prelude checksum does not match"),
        "{error}"
    );

    // The stream ends inside a message.
    let cut = Bytes::copy_from_slice(&whole[..whole.len() - 5]);
    let (_, records) = run(
        BEDROCK_STREAM,
        request,
        bedrock_answer(200, EVENT_STREAM),
        Frames::new([cut]),
    )
    .await;
    let rs = one(&records, RecordKind::Response);
    let error = rs.error.clone().unwrap_or_default();
    assert!(error.contains("the stream ended inside message 10"), "{error}");
    assert_eq!(
        rs.finish_reasons,
        ["tool_use"],
        "what came before the cut is kept"
    );
}

#[tokio::test]
async fn bedrock_http_error_keeps_the_request_id() {
    let request = include_str!("fixtures/bedrock/request.json").as_bytes();
    let body = include_str!("fixtures/bedrock/error.json");
    let mut answer = bedrock_answer(400, "application/json");
    answer.headers.push((
        "x-amzn-ErrorType",
        "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
    ));
    let (_, records) = run(
        BEDROCK,
        request,
        answer,
        Frames::new([Bytes::from_static(body.as_bytes())]),
    )
    .await;
    let rs = one(&records, RecordKind::Response);
    assert_eq!((rs.outcome, rs.status_code), (Outcome::UpstreamError, Some(400)));
    assert_eq!(
        rs.request_id.as_deref(),
        Some("5d4a2c1e-8b7f-4e3a-9c6d-1f2e3a4b5c6d")
    );
    assert_eq!(json_of(&rs), fixture(body));
}

#[tokio::test]
async fn bedrock_model_ids_as_arns() {
    let arn =
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0";
    let encoded = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
    let raw = format!("/model/{arn}/converse");
    for path in [encoded, raw.as_str()] {
        let (_, records) = run(
            path,
            include_str!("fixtures/bedrock/request.json").as_bytes(),
            bedrock_answer(200, "application/json"),
            Frames::new([Bytes::from_static(
                include_str!("fixtures/bedrock/response.json").as_bytes(),
            )]),
        )
        .await;
        assert_eq!(
            one(&records, RecordKind::Request).model_name.as_deref(),
            Some(arn),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Ollama

const NDJSON: &str = "application/x-ndjson";

fn not_streamed(request: &str) -> Vec<u8> {
    let mut v = fixture(request);
    v["stream"] = json!(false);
    v.to_string().into_bytes()
}

#[tokio::test]
async fn ollama_chat_json() {
    let request = include_str!("fixtures/ollama/chat_request.json");
    let response = include_str!("fixtures/ollama/chat_response.json");
    let (_, records) = run(
        "/api/chat",
        &not_streamed(request),
        ok("application/json; charset=utf-8"),
        Frames::new([Bytes::from_static(response.as_bytes())]),
    )
    .await;
    let rq = one(&records, RecordKind::Request);
    assert_eq!(
        (
            rq.api.as_str(),
            rq.provider.as_deref(),
            rq.operation_name.as_ref(),
            rq.model_name.as_deref()
        ),
        ("ollama_chat", Some("ollama"), "chat", Some("qwen3:8b"))
    );
    assert!(!rq.is_stream_completion);
    assert_eq!(json_of(&rq), fixture(request)["messages"]);
    let rs = one(&records, RecordKind::Response);
    assert_eq!(rs.error, None);
    assert_eq!(json_of(&rs), fixture(response)["message"]);
    assert_eq!(tokens(&rs), [Some(182), Some(41), Some(223), None, None, None]);
    assert_eq!(rs.finish_reasons, ["stop"]);
    assert_eq!(rs.request_id, None, "Ollama gives no id");
}

#[tokio::test]
async fn ollama_chat_streams() {
    let request = include_str!("fixtures/ollama/chat_request.json").as_bytes();
    let stream = include_str!("fixtures/ollama/chat_stream.ndjson").as_bytes();
    let (rq, rs) = every_split("/api/chat", request, ok(NDJSON), stream).await;
    assert!(
        rq.is_stream_completion,
        "Ollama streams when the request does not say"
    );
    assert_eq!(rs.error, None);
    assert_eq!(
        json_of(&rs),
        json!({"role": "assistant", "content": "Paris is mild today.", "thinking": "The user wants a short answer."})
    );
    assert_eq!(tokens(&rs)[..3], [Some(35), Some(12), Some(47)]);
    assert_eq!(rs.finish_reasons, ["stop"]);
    assert_eq!(rs.model_name.as_deref(), Some("qwen3:8b"));

    let stream = include_str!("fixtures/ollama/chat_stream_tool.ndjson").as_bytes();
    let (_, rs) = every_split("/api/chat", request, ok(NDJSON), stream).await;
    assert_eq!(
        json_of(&rs)["tool_calls"],
        json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}])
    );
    assert_eq!(tokens(&rs)[..3], [Some(182), Some(41), Some(223)]);
}

#[tokio::test]
async fn ollama_generate() {
    let request = include_str!("fixtures/ollama/generate_request.json");
    let response = include_str!("fixtures/ollama/generate_response.json");
    let (_, records) = run(
        "/api/generate",
        &not_streamed(request),
        ok("application/json; charset=utf-8"),
        Frames::new([Bytes::from_static(response.as_bytes())]),
    )
    .await;
    let rq = one(&records, RecordKind::Request);
    assert_eq!(
        (rq.api.as_str(), rq.operation_name.as_ref()),
        ("ollama_generate", "text_completion")
    );
    let req = fixture(request);
    assert_eq!(
        json_of(&rq),
        json!({"system": req["system"], "prompt": req["prompt"]})
    );
    let rs = one(&records, RecordKind::Response);
    assert_eq!(json_of(&rs), fixture(response)["response"]);
    assert_eq!(tokens(&rs)[..3], [Some(31), Some(15), Some(46)]);

    let stream = include_str!("fixtures/ollama/generate_stream.ndjson").as_bytes();
    let (_, rs) = every_split("/api/generate", request.as_bytes(), ok(NDJSON), stream).await;
    assert_eq!(rs.error, None);
    assert_eq!(json_of(&rs), json!("Air scatters blue sunlight most."));
    assert_eq!(tokens(&rs)[..3], [Some(31), Some(6), Some(37)]);
}

#[tokio::test]
async fn ollama_errors() {
    let request = include_str!("fixtures/ollama/generate_request.json").as_bytes();
    let stream = include_str!("fixtures/ollama/stream_error.ndjson").as_bytes();
    let (_, rs) = every_split("/api/generate", request, ok(NDJSON), stream).await;
    let error = rs.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("the stream carried an error") && error.contains("llama runner"),
        "{error}"
    );
    assert_eq!(json_of(&rs), json!("Air scatters"));

    let body = include_str!("fixtures/ollama/error.json");
    let answer = Answer {
        status: 404,
        ..ok("application/json; charset=utf-8")
    };
    let (_, records) = run(
        "/api/chat",
        request,
        answer,
        Frames::new([Bytes::from_static(body.as_bytes())]),
    )
    .await;
    let rs = one(&records, RecordKind::Response);
    assert_eq!((rs.outcome, rs.status_code), (Outcome::UpstreamError, Some(404)));
    assert_eq!(json_of(&rs), fixture(body));

    // A stream cut before its `done` line says so; a line that is not JSON is reported.
    let lines = b"{\"model\":\"m\",\"response\":\"a\",\"done\":false}\nnot json\n";
    let (_, records) = run(
        "/api/generate",
        request,
        ok(NDJSON),
        Frames::new([Bytes::from_static(lines)]),
    )
    .await;
    let error = one(&records, RecordKind::Response).error.unwrap_or_default();
    assert!(error.contains("event 2 is not an Ollama chunk"), "{error}");
    assert!(error.contains("ended without its final event"), "{error}");
}
