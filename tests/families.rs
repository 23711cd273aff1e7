//! Every API family through the layer, against recorded-format fixtures (`tests/fixtures/`,
//! written from the providers' API references): JSON and streaming exchanges checked field by
//! field, streams split at every byte boundary.
mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::json;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::{ApiFamily, LlmLogBody, LlmLogLayer, LlmLogRecord, MemorySink, Outcome, RecordKind};

type Inner = Request<LlmLogBody<Frames>>;

/// One exchange at `path`: the request body, and the upstream's answer split into `frames`.
async fn run(
    path: &str,
    request: &str,
    content_type: &'static str,
    frames: Frames,
) -> (Bytes, Vec<LlmLogRecord>) {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = service_fn(move |req: Inner| {
        let frames = frames.clone();
        async move {
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(
                Response::builder()
                    .header(CONTENT_TYPE, content_type)
                    .body(frames)
                    .unwrap(),
            )
        }
    });
    let req = Request::post(path)
        .header(CONTENT_TYPE, "application/json")
        .body(Frames::new([Bytes::copy_from_slice(request.as_bytes())]))
        .unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (bytes, sink.take())
}

/// Runs a stream split in two at every byte; each run must log what the whole stream logs, and
/// pass the bytes through unchanged.
async fn every_split(path: &str, request: &str, stream: &str) -> LlmLogRecord {
    let (bytes, records) = run(
        path,
        request,
        "text/event-stream",
        Frames::new([Bytes::copy_from_slice(stream.as_bytes())]),
    )
    .await;
    assert_eq!(bytes, stream.as_bytes());
    let whole = one(&records, RecordKind::Response);
    for cut in 1..stream.len() {
        let (bytes, records) = run(
            path,
            request,
            "text/event-stream",
            Frames::split(stream.as_bytes(), &[cut]),
        )
        .await;
        assert_eq!(bytes, stream.as_bytes(), "cut at {cut}");
        let r = one(&records, RecordKind::Response);
        assert_eq!(said(&r), said(&whole), "cut at {cut}");
    }
    whole
}

#[tokio::test]
async fn responses_api_json() {
    let request = include_str!("fixtures/responses/request.json");
    let response = include_str!("fixtures/responses/response.json");
    let (bytes, records) = run(
        "/v1/responses",
        request,
        "application/json",
        Frames::split(response.as_bytes(), &[100, 2000]),
    )
    .await;
    assert_eq!(bytes, response.as_bytes());
    let rq = one(&records, RecordKind::Request);
    assert_eq!(rq.api, ApiFamily::Responses);
    assert_eq!(rq.provider.as_deref(), Some("openai"));
    assert_eq!(rq.operation_name, "chat");
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4.1-2025-04-14"));
    let req = fixture(request);
    assert_eq!(
        json_of(&rq),
        json!({"instructions": req["instructions"], "input": req["input"]})
    );
    assert_eq!(rq.error, None);
    let rs = one(&records, RecordKind::Response);
    assert_eq!(
        rs.request_id.as_deref(),
        Some("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b")
    );
    assert_eq!(rs.model_name.as_deref(), Some("gpt-4.1-2025-04-14"));
    assert_eq!(
        tokens(&rs),
        [Some(328), Some(52), Some(380), Some(128), Some(12), None]
    );
    assert!(!rs.tokens_estimated);
    assert_eq!(rs.finish_reasons, ["completed"]);
    assert_eq!(json_of(&rs), fixture(response)["output"]);
    assert!(!rs.is_stream_completion);
    assert_eq!((rs.outcome, rs.error.as_deref()), (Outcome::Completed, None));
}

#[tokio::test]
async fn responses_api_stream_at_every_split() {
    let request = include_str!("fixtures/responses/request_string.json");
    let rs = every_split(
        "/openai/v1/responses",
        request,
        include_str!("fixtures/responses/stream.sse"),
    )
    .await;
    assert_eq!(rs.provider.as_deref(), Some("azure.ai.openai"));
    assert!(rs.is_stream_completion);
    assert_eq!(
        rs.request_id.as_deref(),
        Some("resp_68a1f0c2d4e88190a3b5c7d9e1f2a3b40c5d6e7f8a9b0c1d")
    );
    assert_eq!(
        tokens(&rs),
        [Some(37), Some(11), Some(48), Some(0), Some(0), None]
    );
    assert_eq!(rs.finish_reasons, ["completed"]);
    assert_eq!(rs.error, None);
    assert!(rs.time_to_first_token.is_some());
    let output = json_of(&rs);
    assert_eq!(
        output,
        json!([
            {"type": "message", "id": "msg_68a1f0c3a1b28190b2c4d6e8f0a1b2c30c5d6e7f8a9b0c1d", "role": "assistant",
             "content": [{"type": "output_text", "text": "Bonjour! Let me check the weather — café 🥐 first."}]},
            {"type": "function_call", "id": "fc_68a1f0c3f9e08190c1d3e5f7a9b1c2d30c5d6e7f8a9b0c1d",
             "call_id": "call_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2", "name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}
        ]),
        "the same shape as the JSON response's output"
    );
}

#[tokio::test]
async fn responses_api_incomplete_and_failed_streams() {
    let request = include_str!("fixtures/responses/request_string.json");
    let rs = every_split(
        "/v1/responses",
        request,
        include_str!("fixtures/responses/stream_incomplete.sse"),
    )
    .await;
    assert_eq!(rs.finish_reasons, ["max_output_tokens"]);
    assert_eq!(tokens(&rs)[..3], [Some(14), Some(16), Some(30)]);
    assert_eq!(
        json_of(&rs)[0]["content"][0]["text"],
        "Paris is the capital of France and is famous for"
    );
    assert_eq!(rs.error, None);

    let (_, records) = run(
        "/v1/responses",
        request,
        "text/event-stream",
        Frames::new([Bytes::from_static(include_bytes!(
            "fixtures/responses/stream_failed.sse"
        ))]),
    )
    .await;
    let rs = one(&records, RecordKind::Response);
    assert_eq!(rs.finish_reasons, ["failed"]);
    let error = rs.error.clone().unwrap();
    assert!(
        error.contains("the response failed: server_error: The model failed to generate a response."),
        "{error}"
    );
    assert!(
        !error.contains("ended without"),
        "response.failed ends the stream: {error}"
    );
    assert_eq!(json_of(&rs)[0]["content"][0]["text"], "Once upon");
    assert_eq!(
        rs.tokens_estimated,
        cfg!(feature = "tokenizer"),
        "no usage: estimated only with the feature"
    );
    assert_eq!(rs.total_tokens.is_some(), cfg!(feature = "tokenizer"));
}

#[tokio::test]
async fn embeddings_log_input_and_a_summary_never_vectors() {
    let request = include_str!("fixtures/embeddings/request.json");
    for (body, encoding) in [
        (include_str!("fixtures/embeddings/response.json"), "float"),
        (include_str!("fixtures/embeddings/response_base64.json"), "base64"),
    ] {
        for cut in (1..body.len()).step_by(7) {
            let (bytes, records) = run(
                "/openai/deployments/emb/embeddings?api-version=2024-10-21",
                request,
                "application/json",
                Frames::split(body.as_bytes(), &[cut]),
            )
            .await;
            assert_eq!(bytes, body.as_bytes());
            let rq = one(&records, RecordKind::Request);
            assert_eq!(rq.api, ApiFamily::Embeddings);
            assert_eq!(rq.operation_name, "embeddings");
            assert_eq!(rq.deployment_name.as_deref(), Some("emb"));
            assert_eq!(json_of(&rq), fixture(request)["input"]);
            let rs = one(&records, RecordKind::Response);
            assert_eq!(
                json_of(&rs),
                json!({"vectors": 2, "dimensions": 8, "encoding": encoding}),
                "cut {cut}"
            );
            assert_eq!(rs.model_name.as_deref(), Some("text-embedding-3-small"));
            assert_eq!(tokens(&rs), [Some(12), None, Some(12), None, None, None]);
            assert_eq!(rs.error, None);
        }
    }
}

#[tokio::test]
async fn legacy_completions_json_and_stream() {
    let response = include_str!("fixtures/completions/response.json");
    let (_, records) = run(
        "/v1/completions",
        include_str!("fixtures/completions/request.json"),
        "application/json",
        Frames::split(response.as_bytes(), &[33]),
    )
    .await;
    let rq = one(&records, RecordKind::Request);
    assert_eq!(
        (rq.api.clone(), rq.operation_name.as_ref()),
        (ApiFamily::Completions, "text_completion")
    );
    assert_eq!(rq.messages_str(), "\"Say this is a test\"");
    let rs = one(&records, RecordKind::Response);
    assert_eq!(json_of(&rs), fixture(response)["choices"]);
    assert_eq!(rs.finish_reasons, ["length"]);
    assert_eq!(tokens(&rs)[..3], [Some(5), Some(7), Some(12)]);
    assert_eq!(rs.request_id.as_deref(), Some("cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7"));

    let request = include_str!("fixtures/completions/request_stream.json");
    let rs = every_split(
        "/v1/completions",
        request,
        include_str!("fixtures/completions/stream.sse"),
    )
    .await;
    assert_eq!(
        json_of(&rs),
        json!([{"index": 0, "text": "\n\nThis is indeed a test", "finish_reason": "length"}])
    );
    assert_eq!(tokens(&rs)[..3], [Some(5), Some(7), Some(12)]);
    assert_eq!(
        rs.request_id.as_deref(),
        Some("cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe")
    );
    assert_eq!(rs.error, None);
}

#[tokio::test]
async fn anthropic_messages_json() {
    let request = include_str!("fixtures/anthropic/request.json");
    let response = include_str!("fixtures/anthropic/response.json");
    let (_, records) = run(
        "/v1/messages",
        request,
        "application/json",
        Frames::split(response.as_bytes(), &[1, 500]),
    )
    .await;
    let rq = one(&records, RecordKind::Request);
    assert_eq!(
        (rq.api.clone(), rq.provider.as_deref()),
        (ApiFamily::AnthropicMessages, Some("anthropic"))
    );
    let req = fixture(request);
    assert_eq!(
        json_of(&rq),
        json!({"system": req["system"], "messages": req["messages"]})
    );
    assert_eq!(rq.model_name.as_deref(), Some("claude-sonnet-4-5-20250929"));
    let rs = one(&records, RecordKind::Response);
    assert_eq!(json_of(&rs), fixture(response)["content"]);
    assert_eq!(rs.finish_reasons, ["tool_use"]);
    assert_eq!(
        tokens(&rs),
        [Some(2095), Some(503), Some(2598), Some(1500), None, Some(0)]
    );
    assert_eq!(rs.request_id.as_deref(), Some("msg_01XFDUDYJgAACzvnptvVoYEL"));
    assert_eq!(rs.error, None);
}

#[tokio::test]
async fn anthropic_messages_stream_at_every_split() {
    let request = include_str!("fixtures/anthropic/request_stream.json");
    let rs = every_split(
        "/v1/messages",
        request,
        include_str!("fixtures/anthropic/stream.sse"),
    )
    .await;
    assert_eq!(rs.request_id.as_deref(), Some("msg_01Vb3CXwEMqqDbHDmFo9fHs2"));
    assert_eq!(
        tokens(&rs),
        [Some(472), Some(89), Some(561), Some(100), None, Some(20)]
    );
    assert_eq!(rs.finish_reasons, ["tool_use"]);
    assert_eq!(rs.error, None);
    let blocks = json_of(&rs);
    assert_eq!(blocks[0]["type"], "thinking");
    assert_eq!(
        blocks[0]["thinking"],
        "The user is asking about the weather in San Francisco. I'll call get_weather with the location and fahrenheit."
    );
    assert!(blocks[0]["signature"]
        .as_str()
        .unwrap()
        .starts_with("ErUBCkYIBRgCIkCc2mN3x8J7"));
    assert_eq!(
        blocks[1],
        json!({"type": "text", "text": "Sure! Let me look up the weather — it's a café-au-lait 🌉 kind of city."})
    );
    assert_eq!(
        blocks[2],
        json!({"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
               "input": {"location": "San Francisco, CA", "unit": "fahrenheit"}})
    );
}

#[tokio::test]
async fn anthropic_error_event_is_reported() {
    let request = include_str!("fixtures/anthropic/request_stream.json");
    let rs = every_split(
        "/v1/messages",
        request,
        include_str!("fixtures/anthropic/stream_error.sse"),
    )
    .await;
    let error = rs.error.clone().unwrap();
    assert!(error.contains("overloaded_error"), "{error}");
    assert!(
        !error.contains("ended without"),
        "an error event ends the stream: {error}"
    );
    assert_eq!(json_of(&rs), json!([{"type": "text", "text": "Hello"}]));
    assert_eq!((rs.prompt_tokens, rs.completion_tokens), (Some(25), Some(1)));
}

#[tokio::test]
async fn a_stream_cut_short_says_so_and_keeps_what_came() {
    let stream = include_str!("fixtures/anthropic/stream.sse");
    let cut = stream.find("event: message_delta").unwrap();
    let (_, records) = run(
        "/v1/messages",
        include_str!("fixtures/anthropic/request_stream.json"),
        "text/event-stream",
        Frames::new([Bytes::copy_from_slice(&stream.as_bytes()[..cut])]),
    )
    .await;
    let rs = one(&records, RecordKind::Response);
    assert!(
        rs.error
            .as_deref()
            .unwrap()
            .contains("ended without its final event"),
        "{:?}",
        rs.error
    );
    assert_eq!(json_of(&rs)[1]["type"], "text");
    assert!(rs.finish_reasons.is_empty());
}

#[tokio::test]
async fn estimates_only_with_the_feature_and_only_when_wanted() {
    let request = include_str!("fixtures/responses/request_string.json");
    let stream = include_bytes!("fixtures/responses/stream_failed.sse");
    for estimate in [true, false] {
        let sink = MemorySink::new();
        let config = tower_llm_log::LogConfig::builder()
            .estimate_tokens(estimate)
            .build()
            .unwrap();
        let layer = LlmLogLayer::new(sink.clone()).with_config(config);
        let inner = service_fn(move |req: Inner| async move {
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(
                Response::builder()
                    .header(CONTENT_TYPE, "text/event-stream")
                    .body(Frames::new([Bytes::from_static(stream)]))
                    .unwrap(),
            )
        });
        let req = Request::post("/v1/responses")
            .body(Frames::new([Bytes::from_static(request.as_bytes())]))
            .unwrap();
        let res = layer.layer(inner).oneshot(req).await.unwrap();
        let _ = res.into_body().collect().await.unwrap();
        let rs = one(&sink.take(), RecordKind::Response);
        let expected = estimate && cfg!(feature = "tokenizer");
        assert_eq!(rs.tokens_estimated, expected);
        if expected {
            // "Once upon" is 2 tokens with o200k; the prompt is the input text.
            assert_eq!(rs.completion_tokens, Some(2));
            assert!(rs.prompt_tokens.unwrap() > 5);
            let line = serde_json::to_string(&rs).unwrap();
            assert!(line.contains("\"TokensEstimated\":true"), "{line}");
        } else {
            assert_eq!(
                (rs.prompt_tokens, rs.completion_tokens, rs.total_tokens),
                (None, None, None)
            );
            assert!(!serde_json::to_string(&rs).unwrap().contains("TokensEstimated"));
        }
    }
}

/// A Responses stream of 300 KB of text in small deltas, then `.done` and `response.completed`
/// events that each repeat all of it: past the parse limit (64 KiB).
/// `after_usage` is what the response object says after its usage.
fn large_responses_stream(after_usage: &str) -> String {
    let text = "word ".repeat(60_000);
    let mut stream = String::from(
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_big\",\"model\":\"gpt-4.1\",\"status\":\"in_progress\"}}\n\n",
    );
    for piece in text.as_bytes().chunks(5000) {
        let piece = std::str::from_utf8(piece).unwrap();
        stream.push_str(&format!(
            "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":\"{piece}\"}}\n\n"
        ));
    }
    stream.push_str(&format!(
        "event: response.output_text.done\ndata: {{\"type\":\"response.output_text.done\",\"output_index\":0,\"content_index\":0,\"text\":\"{text}\"}}\n\n"
    ));
    stream.push_str(&format!(
        "event: response.completed\ndata: {{\"type\":\"response.completed\",\"response\":{{\"id\":\"resp_big\",\"status\":\"completed\",\"output\":[{{\"type\":\"message\",\"content\":[{{\"type\":\"output_text\",\"text\":\"{text}\"}}]}}],\"tools\":[{{\"type\":\"function\",\"name\":\"f\",\"parameters\":{{\"properties\":{{\"usage\":{{\"type\":\"string\"}}}}}}}}],\"usage\":{{\"input_tokens\":1,\"output_tokens\":60000,\"total_tokens\":60001}}{after_usage}}},\"sequence_number\":99}}\n\n"
    ));
    stream
}

#[tokio::test]
async fn a_responses_stream_whose_final_event_is_too_large_still_ends_with_its_usage() {
    let request = include_str!("fixtures/responses/request_string.json");
    let (_, records) = run(
        "/v1/responses",
        request,
        "text/event-stream",
        Frames::new([Bytes::from(large_responses_stream(""))]),
    )
    .await;
    let rs = of_kind(&records, RecordKind::Response)
        .into_iter()
        .find(|r| r.is_last)
        .unwrap();
    assert_eq!(
        rs.finish_reasons,
        ["completed"],
        "the final event's name still ends the stream"
    );
    assert_eq!(rs.request_id.as_deref(), Some("resp_big"));
    assert_eq!(
        tokens(&rs)[..3],
        [Some(1), Some(60000), Some(60001)],
        "usage from the end of the event"
    );
    assert!(!rs.tokens_estimated);
    assert_eq!(
        rs.error, None,
        "a repeated .done event is no error, and the stream did end"
    );
    assert!(rs.truncated, "the 300 KB completion is cut at the 32 KiB cap");

    // Usage followed by more than the kept tail: the stream still ends, and the record says why
    // there is no usage.
    let after = format!(",\"metadata\":{{\"note\":\"{}\"}}", "m".repeat(20_000));
    let (_, records) = run(
        "/v1/responses",
        request,
        "text/event-stream",
        Frames::new([Bytes::from(large_responses_stream(&after))]),
    )
    .await;
    let rs = of_kind(&records, RecordKind::Response)
        .into_iter()
        .find(|r| r.is_last)
        .unwrap();
    assert_eq!(rs.finish_reasons, ["completed"]);
    assert_eq!(
        rs.error.as_deref(),
        Some("response: the final event (response.completed) is larger than the parse limit, and its usage was not found in its last 16384 bytes")
    );
}

/// A Responses stream as an agent with 200 tools gets it: `response.created` and
/// `response.completed` each carry the tools (about 400 KB), far past the parse limit.
/// `named` chooses whether events have `event:` lines (OpenAI sends them; not every server does).
fn agent_responses_stream(named: bool) -> String {
    let tools: Vec<String> = (0..200)
        .map(|i| {
            format!(
                r#"{{"type":"function","name":"tool_{i}","description":"{}","parameters":{{"type":"object","properties":{{}}}}}}"#,
                "d".repeat(2000)
            )
        })
        .collect();
    let tools = tools.join(",");
    let response = |status: &str, usage: &str| {
        format!(
            r#"{{"id":"resp_agent","object":"response","created_at":1,"status":"{status}","error":null,"instructions":"Be useful.","model":"gpt-4.1-2025-04-14","output":[],"tools":[{tools}],"usage":{usage}}}"#
        )
    };
    let event = |kind: &str, data: String| match named {
        true => format!("event: {kind}\ndata: {data}\n\n"),
        false => format!("data: {data}\n\n"),
    };
    let mut s = event(
        "response.created",
        format!(
            r#"{{"type":"response.created","sequence_number":0,"response":{}}}"#,
            response("in_progress", "null")
        ),
    );
    s += &event(
        "response.output_text.delta",
        r#"{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"Done."}"#.into(),
    );
    s += &event(
        "response.completed",
        format!(
            r#"{{"type":"response.completed","sequence_number":2,"response":{}}}"#,
            response(
                "completed",
                r#"{"input_tokens":90000,"input_tokens_details":{"cached_tokens":0},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":90002}"#
            )
        ),
    );
    s
}

#[tokio::test]
async fn oversized_responses_events_still_yield_the_model_and_id_from_their_start() {
    let request = r#"{"model":"gpt-4.1","input":"go","stream":true}"#;
    for named in [true, false] {
        let stream = agent_responses_stream(named);
        assert!(stream.len() > 800_000);
        let (bytes, records) = run(
            "/v1/responses",
            request,
            "text/event-stream",
            Frames::split(stream.as_bytes(), &[1000, 300_000, 500_001]),
        )
        .await;
        assert_eq!(bytes, stream.as_bytes());
        let rs = one(&records, RecordKind::Response);
        assert_eq!(
            rs.request_id.as_deref(),
            Some("resp_agent"),
            "named events: {named}"
        );
        assert_eq!(
            rs.model_name.as_deref(),
            Some("gpt-4.1-2025-04-14"),
            "the response's own model"
        );
        assert_eq!(rs.finish_reasons, ["completed"]);
        assert_eq!(tokens(&rs)[..3], [Some(90000), Some(2), Some(90002)]);
        assert_eq!(rs.outcome, Outcome::Completed);
        assert_eq!(rs.error, None, "named events: {named}");
        assert!(rs.messages_str().contains("Done."));
    }
}

#[tokio::test]
async fn an_error_event_with_nested_details_reports_its_code_and_message() {
    let request = r#"{"model":"gpt-4.1","input":"go","stream":true}"#;
    for error in [
        r#"{"type":"error","error":{"type":"invalid_request_error","code":"context_length_exceeded","message":"Your input exceeds the context window of this model.","param":"input"},"sequence_number":1}"#,
        r#"{"type":"error","code":"context_length_exceeded","message":"Your input exceeds the context window of this model.","param":null,"sequence_number":1}"#,
    ] {
        let stream = format!(
            "event: response.created\ndata: {{\"type\":\"response.created\",\"response\":{{\"id\":\"resp_e\",\"model\":\"gpt-4.1\",\"status\":\"in_progress\"}}}}\n\nevent: error\ndata: {error}\n\n"
        );
        let r = every_split("/v1/responses", request, &stream).await;
        assert_eq!(
            r.error.as_deref(),
            Some("response: the stream carried an error: context_length_exceeded: Your input exceeds the context window of this model."),
            "{error}"
        );
    }
    // A numeric code, and only a type.
    let stream = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"server_error\",\"code\":500,\"message\":\"boom\"}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded\",\"message\":\"later\"}}\n\n";
    let (_, records) = run(
        "/v1/responses",
        request,
        "text/event-stream",
        Frames::new([Bytes::from_static(stream.as_bytes())]),
    )
    .await;
    let rs = one(&records, RecordKind::Response);
    assert_eq!(
        rs.error.as_deref(),
        Some("response: the stream carried an error: 500: boom (and 1 more problems)")
    );
}

#[tokio::test]
async fn a_streaming_request_answered_by_an_error_body_is_still_a_stream_completion() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = service_fn(|req: Inner| async move {
        let _ = req.into_body().collect().await;
        Ok::<_, Infallible>(
            Response::builder()
                .status(429)
                .header(CONTENT_TYPE, "application/json")
                .body(Frames::new([Bytes::from_static(
                    br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
                )]))
                .unwrap(),
        )
    });
    for (request, stream) in [
        (r#"{"model":"gpt-4o","stream":true,"messages":[]}"#, true),
        (r#"{"model":"gpt-4o","stream":false,"messages":[]}"#, false),
    ] {
        let req = Request::post("/v1/chat/completions")
            .body(Frames::new([Bytes::from_static(request.as_bytes())]))
            .unwrap();
        let res = layer.layer(inner).oneshot(req).await.unwrap();
        assert_eq!(res.status(), 429);
        let _ = res.into_body().collect().await;
        let records = sink.take();
        let rs = one(&records, RecordKind::Response);
        assert_eq!(rs.outcome, Outcome::UpstreamError);
        assert_eq!(rs.is_stream_completion, stream, "{request}");
        assert!(rs.messages_str().contains("rate_limit_exceeded"));
    }
}
