//! The layer in-process, through `tower::ServiceExt::oneshot`: fields, caps, outcomes, passthrough.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::{
    ApiFamily, CorrelationId, LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, Outcome,
    RecordKind,
};

type Inner = Request<LlmLogBody<Frames>>;

/// An upstream that reads the whole request and answers with `body`.
fn upstream(
    status: u16,
    content_type: &'static str,
    body: Frames,
) -> impl tower::Service<Inner, Response = Response<Frames>, Error = Infallible, Future: Send> + Clone {
    service_fn(move |req: Inner| {
        let body = body.clone();
        async move {
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .header(CONTENT_TYPE, content_type)
                    .body(body)
                    .unwrap(),
            )
        }
    })
}

fn post(uri: &str, body: Frames) -> Request<Frames> {
    Request::post(uri)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap()
}

/// Runs one exchange and reads the whole response; returns the response bytes and the records.
async fn exchange(
    layer: &LlmLogLayer,
    sink: &MemorySink,
    inner: impl tower::Service<Inner, Response = Response<Frames>, Error = Infallible> + Clone,
    req: Request<Frames>,
) -> (http::response::Parts, Bytes, Vec<LlmLogRecord>) {
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts, bytes, sink.take())
}

/// An exchange with the standard JSON chat response; returns the records.
async fn logged_chat(layer: &LlmLogLayer, sink: &MemorySink, request: Frames) -> Vec<LlmLogRecord> {
    let inner = upstream(200, "application/json", json_frames(CHAT_RESPONSE));
    exchange(layer, sink, inner, post("/v1/chat/completions", request))
        .await
        .2
}

/// An exchange of the standard chat request with an upstream answering `status`, `content_type`
/// and `body`.
async fn answer_chat(
    layer: &LlmLogLayer,
    sink: &MemorySink,
    status: u16,
    content_type: &'static str,
    body: Frames,
) -> (http::response::Parts, Bytes, Vec<LlmLogRecord>) {
    let inner = upstream(status, content_type, body);
    exchange(
        layer,
        sink,
        inner,
        post("/v1/chat/completions", json_frames(CHAT_REQUEST)),
    )
    .await
}

fn json_frames(s: &str) -> Frames {
    Frames::new([Bytes::copy_from_slice(s.as_bytes())])
}

#[tokio::test]
async fn non_streaming_exchange_field_by_field() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let req = Request::post("/v1/chat/completions")
        .header("x-request-id", "req-42")
        .body(Frames::split(CHAT_REQUEST.as_bytes(), &[7, 50]))
        .unwrap();
    let inner = upstream(
        200,
        "application/json",
        Frames::split(CHAT_RESPONSE.as_bytes(), &[100, 101]),
    );
    let (parts, bytes, records) = exchange(&layer, &sink, inner, req).await;
    assert_eq!(
        bytes,
        CHAT_RESPONSE.as_bytes(),
        "the caller gets the upstream's bytes"
    );
    assert_eq!(parts.headers["x-correlation-id"], "req-42");
    assert_eq!(records.len(), 2);

    let rq = &records[0];
    assert_eq!(rq.kind, RecordKind::Request);
    assert_eq!(rq.correlation_id, "req-42");
    assert_eq!((rq.sequence_number, rq.is_last), (0, true));
    assert_eq!(rq.api, ApiFamily::ChatCompletions);
    assert_eq!(rq.provider.as_deref(), Some("openai"));
    assert_eq!(rq.operation_name, "chat");
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4o-mini"));
    assert!(!rq.is_stream_completion);
    let messages_start = CHAT_REQUEST.find('[').unwrap();
    let messages_end = CHAT_REQUEST.find("],\"model\"").unwrap() + 1;
    assert_eq!(
        rq.messages_str(),
        &CHAT_REQUEST[messages_start..messages_end],
        "raw bytes as sent"
    );
    assert_eq!(rq.message_bytes as usize, messages_end - messages_start);
    assert!(!rq.truncated);
    assert_eq!(rq.outcome, Outcome::Completed);
    assert_eq!(rq.error, None);
    assert_eq!(rq.status_code, None);
    assert_eq!(
        (rq.prompt_tokens, rq.total_tokens),
        (None, None),
        "tokens only on the last response record"
    );

    let rs = &records[1];
    assert_eq!(rs.kind, RecordKind::Response);
    assert_eq!(rs.correlation_id, "req-42");
    assert_eq!(rs.time_generated, rq.time_generated);
    assert_eq!(rs.request_id.as_deref(), Some("chatcmpl-abc123"));
    assert_eq!(
        rs.model_name.as_deref(),
        Some("gpt-4o-mini-2024-07-18"),
        "the response's model wins"
    );
    assert_eq!(rs.status_code, Some(200));
    assert_eq!(rs.prompt_tokens, Some(21));
    assert_eq!(rs.completion_tokens, Some(3));
    assert_eq!(rs.total_tokens, Some(24));
    assert_eq!(rs.cached_tokens, Some(5));
    assert_eq!(rs.reasoning_tokens, Some(1));
    assert_eq!(rs.finish_reasons, ["stop"]);
    let choices: serde_json::Value = serde_json::from_str(rs.messages_str()).unwrap();
    let want: serde_json::Value = serde_json::from_str(CHAT_RESPONSE).unwrap();
    assert_eq!(choices, want["choices"]);
    assert_eq!(rs.outcome, Outcome::Completed);
    assert_eq!(rs.error, None);
    assert_eq!(rs.time_to_first_token, None);
    assert!(rs.duration >= rq.duration);
    assert_eq!(layer.stats().exchanges_open(), 0);
    assert_eq!(layer.stats().records_emitted, 2);
}

#[tokio::test]
async fn streaming_exchange_field_by_field() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let body = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let stream = chat_stream();
    let inner = upstream(
        200,
        "text/event-stream; charset=utf-8",
        Frames::split(stream.as_bytes(), &[10, 200, 201, 555]),
    );
    let (_, bytes, records) = exchange(
        &layer,
        &sink,
        inner,
        post("/v1/chat/completions", json_frames(body)),
    )
    .await;
    assert_eq!(bytes, stream.as_bytes());
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert!(rq.is_stream_completion, "the request asked for a stream");
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert!(rs.is_stream_completion);
    assert_eq!(rs.messages_str(), CHAT_STREAM_COMPLETION);
    assert_eq!(rs.message_bytes as usize, CHAT_STREAM_COMPLETION.len());
    assert_eq!(rs.request_id.as_deref(), Some("chatcmpl-s1"));
    assert_eq!(rs.model_name.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        (rs.prompt_tokens, rs.completion_tokens, rs.total_tokens),
        (Some(9), Some(4), Some(13))
    );
    assert_eq!(rs.finish_reasons, ["stop"]);
    assert!(rs.time_to_first_token.is_some());
    assert!(rs.time_to_first_token.unwrap() <= rs.duration);
    assert_eq!(rs.outcome, Outcome::Completed);
    assert_eq!(rs.error, None);
}

#[tokio::test]
async fn a_stream_without_usage_has_no_token_counts() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let stream = "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]";
    let (_, _, records) = answer_chat(&layer, &sink, 200, "text/event-stream", json_frames(stream)).await;
    let rs = &of_kind(&records, RecordKind::Response)[0];
    if cfg!(feature = "tokenizer") {
        // The model (gpt-4o) has a known tokenizer: estimated, and flagged.
        assert!(rs.tokens_estimated);
        assert_eq!(rs.completion_tokens, Some(1), "\"a\" is one token");
        assert!(rs.prompt_tokens.unwrap() > 0);
    } else {
        assert_eq!(
            (rs.prompt_tokens, rs.completion_tokens, rs.total_tokens),
            (None, None, None)
        );
        assert!(!rs.tokens_estimated);
    }
    assert_eq!(
        rs.error, None,
        "a last event without a blank line is still parsed"
    );
    assert!(rs.messages_str().contains("\"content\":\"a\""));
}

#[tokio::test]
async fn azure_path_gives_deployment_and_api_version() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = upstream(200, "application/json", json_frames(CHAT_RESPONSE));
    let req = post(
        "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
        json_frames(r#"{"messages":[]}"#),
    );
    let (_, _, records) = exchange(&layer, &sink, inner, req).await;
    for r in &records {
        assert_eq!(r.provider.as_deref(), Some("azure.ai.openai"));
        assert_eq!(r.deployment_name.as_deref(), Some("gpt-4o-prod"));
        assert_eq!(r.api_version.as_deref(), Some("2024-10-21"));
    }
    assert_eq!(records[0].model_name, None, "Azure requests often name no model");
    assert_eq!(records[1].model_name.as_deref(), Some("gpt-4o-mini-2024-07-18"));
}

#[tokio::test]
async fn a_large_single_frame_passes_as_the_same_bytes() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_config(
        LogConfig::builder()
            .prompt_bytes(2 << 20)
            .completion_bytes(2 << 20)
            .build()
            .unwrap(),
    );
    let content = "x".repeat(1 << 20);
    let req_body = Bytes::from(format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{content}"}}]}}"#
    ));
    let res_body = Bytes::from(format!(
        r#"{{"id":"r","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"stop"}}]}}"#
    ));
    let (req_ptr, res_ptr) = (req_body.as_ptr() as usize, res_body.as_ptr() as usize);
    let inner = service_fn(move |req: Inner| {
        let res_body = res_body.clone();
        async move {
            let mut body = req.into_body();
            let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(
                frame.as_ptr() as usize,
                req_ptr,
                "the inner service gets the client's Bytes"
            );
            Ok::<_, Infallible>(Response::new(Frames::new([res_body])))
        }
    });
    let res = layer
        .layer(inner)
        .oneshot(post("/v1/chat/completions", Frames::new([req_body.clone()])))
        .await
        .unwrap();
    let mut body = res.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(
        frame.as_ptr() as usize,
        res_ptr,
        "the caller gets the inner service's Bytes"
    );
    drop(body);
    let records = sink.take();
    let rq = &of_kind(&records, RecordKind::Request);
    let rs = &of_kind(&records, RecordKind::Response);
    assert_eq!(rq.len(), 33, "1 MiB + a little in 32 KiB chunks");
    assert_eq!(rs.len(), 33);
    for (records, base, len) in [(rq, req_ptr, req_body.len()), (rs, res_ptr, frame.len())] {
        for r in records.iter() {
            let p = r.messages.as_ptr() as usize;
            assert!(
                p >= base && p + r.messages.len() <= base + len,
                "logged chunks are slices of the frame"
            );
        }
    }
    assert_eq!(rs.last().unwrap().outcome, Outcome::Completed);
}

#[tokio::test]
async fn a_100k_multibyte_prompt_chunks_and_reassembles_exactly() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone())
        .with_config(LogConfig::builder().prompt_bytes(1 << 20).build().unwrap());
    let text: String = "h\u{e9}llo \u{4e16}\u{754c} \u{1F600} "
        .chars()
        .cycle()
        .take(60_000)
        .collect();
    let messages = serde_json::to_string(&serde_json::json!([{"role": "user", "content": text}])).unwrap();
    assert!(messages.len() > 100 * 1024);
    let body = format!(r#"{{"messages":{messages},"model":"m"}}"#);
    // Frames of odd sizes so chunks span frames and characters straddle frame ends.
    let cuts: Vec<usize> = (1..60).map(|i| i * 1733).collect();
    let records = logged_chat(&layer, &sink, Frames::split(body.as_bytes(), &cuts)).await;
    let rq = of_kind(&records, RecordKind::Request);
    assert_eq!(rq.len(), messages.len().div_ceil(32 * 1024).max(rq.len()));
    assert_eq!(message(&rq), messages);
    for (i, r) in rq.iter().enumerate() {
        assert_eq!(r.sequence_number as usize, i);
        assert_eq!(r.is_last, i + 1 == rq.len());
        assert!(r.messages.len() <= 32 * 1024);
        assert!(std::str::from_utf8(&r.messages).is_ok());
        assert_eq!(r.message_bytes as usize, messages.len());
    }
}

#[tokio::test]
async fn a_3mib_prompt_is_capped_with_the_model_found_after_it() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let text = "\u{e9}".repeat(3 << 19); // 3 MiB of 2-byte characters
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":"{text}"}}],"stream":false,"model":"late-model"}}"#
    );
    let cuts: Vec<usize> = (1..200).map(|i| i * 16_381).collect();
    let records = logged_chat(&layer, &sink, Frames::split(body.as_bytes(), &cuts)).await;
    let rq = of_kind(&records, RecordKind::Request);
    assert_eq!(rq.len(), 1, "32 KiB default cap, one chunk");
    let r = &rq[0];
    assert_eq!(r.model_name.as_deref(), Some("late-model"));
    assert!(r.truncated);
    assert_eq!(
        r.message_bytes as usize,
        text.len() + r#"[{"role":"user","content":""}]"#.len()
    );
    assert!(r.messages.len() <= 32 * 1024 && r.messages.len() >= 32 * 1024 - 3);
    assert!(r.messages_str().starts_with(r#"[{"role":"user","content":"éé"#));
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(r.error, None);
}

#[tokio::test]
async fn zero_caps_log_metadata_and_tokens_only() {
    let sink = MemorySink::new();
    let config = LogConfig::builder()
        .prompt_bytes(0)
        .completion_bytes(0)
        .build()
        .unwrap();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let records = logged_chat(&layer, &sink, json_frames(CHAT_REQUEST)).await;
    assert_eq!(records.len(), 2);
    assert!(records
        .iter()
        .all(|r| r.messages.is_empty() && r.truncated && r.message_bytes > 0));
    assert_eq!(records[0].model_name.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(records[1].total_tokens, Some(24));
    assert_eq!(records[1].finish_reasons, ["stop"]);
}

#[tokio::test]
async fn tokens_are_only_on_the_last_response_record() {
    let sink = MemorySink::new();
    let config = LogConfig::builder()
        .completion_bytes(100_000)
        .chunk_bytes(1000)
        .build()
        .unwrap();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let long = CHAT_RESPONSE.replace("Hi \\u00e9!", &"word ".repeat(2000));
    let (_, _, records) = answer_chat(&layer, &sink, 200, "application/json", json_frames(&long)).await;
    let rs = of_kind(&records, RecordKind::Response);
    assert!(rs.len() > 10);
    let with_tokens: Vec<_> = records.iter().filter(|r| r.total_tokens.is_some()).collect();
    assert_eq!(with_tokens.len(), 1);
    assert!(with_tokens[0].is_last && with_tokens[0].kind == RecordKind::Response);
    assert_eq!(records.iter().filter_map(|r| r.total_tokens).sum::<u64>(), 24);
}

#[tokio::test]
async fn upstream_error_status_logs_the_error_body() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let error = r#"{"error":{"message":"Rate limit","type":"rate_limit_error"}}"#;
    let (parts, bytes, records) =
        answer_chat(&layer, &sink, 429, "application/json", json_frames(error)).await;
    assert_eq!(parts.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(bytes, error.as_bytes());
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rs.outcome, Outcome::UpstreamError);
    assert_eq!(rs.status_code, Some(429));
    assert_eq!(rs.messages_str(), error);
    assert_eq!(
        of_kind(&records, RecordKind::Request)[0].outcome,
        Outcome::Completed
    );
    // A non-JSON error body is kept as it is.
    let (_, _, records) = answer_chat(&layer, &sink, 502, "text/plain", json_frames("Bad Gateway")).await;
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(
        (rs.messages_str(), rs.outcome, rs.error.as_deref()),
        ("Bad Gateway", Outcome::UpstreamError, None)
    );
}

#[tokio::test]
async fn invalid_json_request_passes_and_is_reported() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = upstream(200, "application/json", json_frames(CHAT_RESPONSE));
    let bad = r#"{"model":"m","messages":[{"role":"user"}] "stream":true}"#;
    let (_, bytes, records) = exchange(
        &layer,
        &sink,
        inner.clone(),
        post("/v1/chat/completions", json_frames(bad)),
    )
    .await;
    assert_eq!(bytes, CHAT_RESPONSE.as_bytes());
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.model_name.as_deref(), Some("m"), "what could be read is kept");
    assert_eq!(rq.messages_str(), r#"[{"role":"user"}]"#);
    assert_eq!(
        rq.error.as_deref(),
        Some("request: invalid JSON at byte 42: expected ',' or a closing bracket")
    );
    assert_eq!(rq.outcome, Outcome::Completed);
    // Inside a value it only skips (messages), the scanner delimits but does not validate: the
    // error is that the body ended inside the value, and the bytes are kept as sent.
    let bad = r#"{"model":"m","messages":[{"role":"user"} oops"#;
    let (_, _, records) = exchange(
        &layer,
        &sink,
        inner,
        post("/v1/chat/completions", json_frames(bad)),
    )
    .await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.messages_str(), r#"[{"role":"user"} oops"#);
    assert_eq!(
        rq.error.as_deref(),
        Some(&*format!(
            "request: the body ended inside the JSON value after {} bytes",
            bad.len()
        ))
    );
    // A response that is not JSON.
    let (_, _, records) = answer_chat(&layer, &sink, 200, "application/json", json_frames("<html>")).await;
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(
        rs.error.as_deref(),
        Some("response: invalid JSON at byte 0: expected a value")
    );
}

#[tokio::test]
async fn invalid_utf8_is_replaced_and_reported() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let mut body = br#"{"model":"m","messages":[{"role":"user","content":"caf"#.to_vec();
    body.extend_from_slice(b"\xff\xfe");
    body.extend_from_slice(br#""}]}"#);
    let inner = upstream(200, "application/json", json_frames(CHAT_RESPONSE));
    let req = post("/v1/chat/completions", Frames::new([Bytes::from(body)]));
    let (_, bytes, records) = exchange(&layer, &sink, inner, req).await;
    assert_eq!(bytes, CHAT_RESPONSE.as_bytes());
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(
        rq.messages_str(),
        "[{\"role\":\"user\",\"content\":\"caf\u{FFFD}\u{FFFD}\"}]"
    );
    assert!(
        rq.error
            .as_deref()
            .unwrap()
            .contains("not valid UTF-8 (first bad byte at offset 30)"),
        "{:?}",
        rq.error
    );
    assert_eq!(
        rq.message_bytes as usize,
        r#"[{"role":"user","content":"caf"}]"#.len() + 2
    );
    // Replacing is said apart from cutting, and the problem's kind is there to filter on.
    assert!(rq.invalid_utf8_replaced && !rq.truncated);
    assert_eq!(rq.error_kinds, [tower_llm_log::api::ProblemKind::InvalidUtf8]);
    let line = serde_json::to_string(rq).unwrap();
    assert!(
        line.contains(r#""InvalidUtf8Replaced":true"#) && line.contains(r#""ErrorKinds":["invalid_utf8"]"#),
        "{line}"
    );
    let back: tower_llm_log::LlmLogRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (back.invalid_utf8_replaced, back.error_kinds.clone()),
        (true, rq.error_kinds.clone())
    );
    // A record without problems writes neither.
    let rs = &of_kind(&records, RecordKind::Response)[0];
    let line = serde_json::to_string(rs).unwrap();
    assert!(
        !line.contains("ErrorKinds") && !line.contains("InvalidUtf8Replaced"),
        "{line}"
    );
}

#[tokio::test]
async fn bodies_in_unknown_encodings_are_passed_and_not_parsed() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = upstream(200, "application/json", json_frames(CHAT_RESPONSE));
    let req = Request::post("/v1/chat/completions")
        .header("content-encoding", "gzip, br")
        .body(Frames::new([Bytes::from_static(b"\x1f\x8b\x08\x00")]))
        .unwrap();
    let (_, _, records) = exchange(&layer, &sink, inner, req).await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(
        rq.error.as_deref(),
        Some("request: the body is compressed (gzip, br) and was not decoded")
    );
    assert_eq!((rq.message_bytes, rq.truncated, rq.messages.len()), (4, true, 0));
}

/// A body that yields some frames, then an error.
struct Failing(Vec<Bytes>);

impl Body for Failing {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(if self.0.is_empty() {
            Err(std::io::Error::other("connection reset"))
        } else {
            Ok(Frame::data(self.0.remove(0)))
        }))
    }
}

#[tokio::test]
async fn body_errors_pass_through_and_are_logged() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = service_fn(|req: Request<LlmLogBody<Failing>>| async move {
        let err = req.into_body().collect().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection reset",
            "the inner service sees the body's own error"
        );
        Ok::<_, Infallible>(Response::new(Failing(vec![Bytes::from_static(
            b"{\"choices\":[",
        )])))
    });
    let req = Request::post("/v1/chat/completions")
        .body(Failing(vec![Bytes::from_static(b"{\"model\":\"m\"")]))
        .unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let err = res.into_body().collect().await.unwrap_err();
    assert_eq!(err.to_string(), "connection reset");
    let records = sink.take();
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.outcome, Outcome::BodyError);
    assert_eq!(rq.model_name.as_deref(), Some("m"));
    assert_eq!(
        rq.error.as_deref(),
        Some("the request body failed after 12 bytes: connection reset")
    );
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rs.outcome, Outcome::BodyError);
    assert_eq!(rs.messages_str(), "[");
}

/// One exchange with an inner service that fails without reading the request; returns the
/// records.
async fn inner_service_failing(config: LogConfig) -> Vec<LlmLogRecord> {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let inner = service_fn(|_req: Inner| async move {
        Err::<Response<Frames>, _>(std::io::Error::other("upstream refused"))
    });
    let err = layer
        .layer(inner)
        .oneshot(post("/v1/chat/completions", json_frames(CHAT_REQUEST)))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "upstream refused");
    assert_eq!(layer.stats().exchanges_open(), 0);
    sink.take()
}

#[tokio::test]
async fn inner_service_errors_pass_through_and_are_logged_with_the_prompt() {
    let records = inner_service_failing(LogConfig::default()).await;
    assert_eq!(records.len(), 2);
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(
        rq.outcome,
        Outcome::Completed,
        "read ahead: the whole request arrived"
    );
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4o-mini"));
    assert!(rq.messages_str().contains("Be brief."), "{}", rq.messages_str());
    assert_eq!(rq.error, None);
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rs.outcome, Outcome::ServiceError);
    assert_eq!(rs.model_name.as_deref(), Some("gpt-4o-mini"), "from the request");
    assert_eq!(
        rs.error.as_deref(),
        Some("the inner service failed: upstream refused")
    );
    assert_eq!(rs.status_code, None);
}

#[tokio::test]
async fn without_read_ahead_an_inner_service_error_loses_the_unread_prompt() {
    let config = LogConfig::builder().request_read_ahead(0).build().unwrap();
    let records = inner_service_failing(config).await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.outcome, Outcome::RequestNotRead);
    assert_eq!(
        rq.error.as_deref(),
        Some("the request body was dropped after 0 bytes, before its end")
    );
}

#[tokio::test]
async fn a_request_body_never_read_is_logged_whole() {
    for read_ahead in [true, false] {
        let sink = MemorySink::new();
        let config = LogConfig::builder()
            .request_read_ahead(if read_ahead { 1 << 20 } else { 0 })
            .build()
            .unwrap();
        let layer = LlmLogLayer::new(sink.clone()).with_config(config);
        let inner = service_fn(|_req: Inner| async move {
            Ok::<_, Infallible>(Response::new(json_frames(CHAT_RESPONSE)))
        });
        let (_, _, records) = exchange(
            &layer,
            &sink,
            inner,
            post(
                "/v1/chat/completions",
                Frames::split(CHAT_REQUEST.as_bytes(), &[3, 60]),
            ),
        )
        .await;
        let rq = &of_kind(&records, RecordKind::Request)[0];
        if read_ahead {
            assert_eq!(rq.outcome, Outcome::Completed);
            assert_eq!(rq.model_name.as_deref(), Some("gpt-4o-mini"));
            assert_eq!(rq.message_bytes, 100, "the messages value, whole");
            assert!(rq.messages_str().starts_with(r#"[{"role":"system""#));
        } else {
            assert_eq!(rq.outcome, Outcome::RequestNotRead);
            assert!(rq.messages.is_empty());
        }
        assert_eq!(
            of_kind(&records, RecordKind::Response)[0].outcome,
            Outcome::Completed
        );
    }
}

#[tokio::test]
async fn end_of_stream_counts_without_a_final_poll() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = service_fn(|req: Inner| async move {
        // Poll like hyper: stop as soon as is_end_stream() says so.
        let mut body = req.into_body();
        while !body.is_end_stream() {
            body.frame().await.unwrap().unwrap();
        }
        Ok::<_, Infallible>(Response::new(
            Frames::split(CHAT_RESPONSE.as_bytes(), &[40]).strict(),
        ))
    });
    let req = post(
        "/v1/chat/completions",
        Frames::split(CHAT_REQUEST.as_bytes(), &[30]).strict(),
    );
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let mut body = res.into_body();
    while !body.is_end_stream() {
        body.frame().await.unwrap().unwrap();
    }
    drop(body);
    let records = sink.take();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Completed && r.error.is_none()),
        "{records:#?}"
    );
}

#[tokio::test]
async fn dropping_the_response_mid_stream_is_a_disconnect() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let stream = chat_stream();
    let cut = stream.find("\" w").unwrap();
    let inner = upstream(200, "text/event-stream", Frames::split(stream.as_bytes(), &[cut]));
    let res = layer
        .layer(inner)
        .oneshot(post("/v1/chat/completions", json_frames(CHAT_REQUEST)))
        .await
        .unwrap();
    let mut body = res.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    let records = sink.take();
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rs.outcome, Outcome::ClientDisconnected);
    assert_eq!(
        rs.error.as_deref(),
        Some(&*format!(
            "the response body was dropped after {cut} bytes, before its end"
        ))
    );
    assert!(
        rs.messages_str().contains("\"content\":\"Hello\""),
        "what was seen is kept: {}",
        rs.messages_str()
    );
    assert_eq!(rs.total_tokens.is_some(), cfg!(feature = "tokenizer"));
    assert_eq!(rs.tokens_estimated, cfg!(feature = "tokenizer"));
    // Dropped before the inner service answered.
    let inner = service_fn(|_req: Inner| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, Infallible>(Response::new(json_frames("")))
    });
    let fut = layer
        .layer(inner)
        .oneshot(post("/v1/chat/completions", json_frames(CHAT_REQUEST)));
    assert!(tokio::time::timeout(Duration::from_millis(20), fut)
        .await
        .is_err());
    let records = sink.take();
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rs.outcome, Outcome::ClientDisconnected);
    assert_eq!(
        rs.error.as_deref(),
        Some("the response was dropped before the inner service answered")
    );
    assert_eq!(layer.stats().exchanges_open(), 0);
}

#[tokio::test]
async fn other_requests_pass_untouched_and_unlogged() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    for (method, uri) in [
        ("POST", "/v1/models"),
        ("GET", "/v1/chat/completions"),
        ("POST", "/health"),
    ] {
        let inner = upstream(200, "application/json", json_frames("{}"));
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(json_frames(CHAT_REQUEST))
            .unwrap();
        let (parts, bytes, records) = exchange(&layer, &sink, inner, req).await;
        assert_eq!(bytes, "{}");
        assert!(records.is_empty());
        assert!(parts.headers.get("x-correlation-id").is_none());
    }
    let off =
        LlmLogLayer::new(sink.clone()).with_config(LogConfig::builder().enabled(false).build().unwrap());
    let (_, _, records) = answer_chat(&off, &sink, 200, "application/json", json_frames(CHAT_RESPONSE)).await;
    assert!(records.is_empty());
    assert_eq!(layer.stats().exchanges_started, 0);
}

#[tokio::test]
async fn correlation_id_reaches_the_inner_service_and_the_response() {
    let sink = MemorySink::new();
    let config = LogConfig::builder()
        .correlation_header("x-trace")
        .correlation_response_header("x-log-id")
        .region("westeurope")
        .build()
        .unwrap();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let inner = service_fn(|req: Inner| async move {
        let id = req
            .extensions()
            .get::<CorrelationId>()
            .cloned()
            .expect("extension");
        Ok::<_, Infallible>(Response::new(json_frames(&format!(
            "{{\"id\":\"{id}\",\"choices\":[]}}"
        ))))
    });
    let req = Request::post("/v1/chat/completions")
        .header("x-trace", "t-1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(json_frames(CHAT_REQUEST))
        .unwrap();
    let (parts, bytes, records) = exchange(&layer, &sink, inner, req).await;
    assert_eq!(parts.headers["x-log-id"], "t-1");
    assert_eq!(bytes, r#"{"id":"t-1","choices":[]}"#);
    assert!(records
        .iter()
        .all(|r| r.correlation_id == "t-1" && r.region.as_deref() == Some("westeurope")));
    assert!(records.iter().all(
        |r| r.trace_id.as_deref() == Some("4bf92f3577b34da6a3ce929d0e0e4736")
            && r.span_id.as_deref() == Some("00f067aa0ba902b7")
    ));

    // Generated ids differ per exchange; the echo can be turned off.
    let layer = LlmLogLayer::new(sink.clone()).with_config(
        LogConfig::builder()
            .no_correlation_response_header()
            .build()
            .unwrap(),
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (parts, _, records) =
            answer_chat(&layer, &sink, 200, "application/json", json_frames(CHAT_RESPONSE)).await;
        assert!(parts.headers.get("x-correlation-id").is_none());
        assert_eq!(records[0].correlation_id, records[1].correlation_id);
        ids.push(records[0].correlation_id.clone());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[0].len(), 36);
}

#[tokio::test]
async fn a_panicking_sink_does_not_fail_the_request() {
    let layer = LlmLogLayer::new(|_record: LlmLogRecord| panic!("sink is broken"));
    let inner = upstream(200, "application/json", json_frames(CHAT_RESPONSE));
    let res = layer
        .layer(inner)
        .oneshot(post("/v1/chat/completions", json_frames(CHAT_REQUEST)))
        .await
        .unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes, CHAT_RESPONSE.as_bytes());
    let stats = layer.stats();
    assert_eq!(
        (stats.sink_panics, stats.records_emitted, stats.exchanges_open()),
        (2, 0, 0)
    );
}

#[tokio::test]
async fn a_body_polled_after_its_error_reports_once() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = service_fn(|req: Request<LlmLogBody<Failing>>| async move {
        let mut body = req.into_body();
        for _ in 0..3 {
            assert!(body.frame().await.unwrap().is_err());
        }
        Ok::<_, Infallible>(Response::new(Failing(vec![])))
    });
    let req = Request::post("/v1/chat/completions")
        .body(Failing(vec![]))
        .unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let mut body = res.into_body();
    for _ in 0..3 {
        assert!(body.frame().await.unwrap().is_err());
    }
    drop(body);
    let records = sink.take();
    assert_eq!(of_kind(&records, RecordKind::Request).len(), 1);
    assert_eq!(of_kind(&records, RecordKind::Response).len(), 1);
}

#[tokio::test]
async fn duplicate_keys_log_what_the_upstream_reads() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let inner = upstream(200, "application/json", json_frames(CHAT_RESPONSE));
    let body = r#"{"model":"decoy","messages":[{"role":"user","content":"decoy"}],"model":"real","messages":[{"role":"user","content":"real"}]}"#;
    let (_, _, records) = exchange(
        &layer,
        &sink,
        inner,
        post("/v1/chat/completions", json_frames(body)),
    )
    .await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.model_name.as_deref(), Some("real"));
    assert_eq!(rq.messages_str(), r#"[{"role":"user","content":"real"}]"#);
    assert_eq!(
        rq.error.as_deref(),
        Some("request: \"messages\" appears more than once; the last is logged")
    );
}

/// Which messages JSON Lines sinks write as JSON values: a built-in family's whole prompt or
/// completion in one record, JSON or streamed; never an error body, a message cut into chunks
/// or at the cap, an invalid body, or content left out.
#[tokio::test]
async fn whole_json_messages_are_marked_and_nothing_else() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let records = logged_chat(&layer, &sink, json_frames(CHAT_REQUEST)).await;
    for r in &records {
        assert!(r.messages_are_json, "{:?}: {}", r.kind, r.messages_str());
        serde_json::from_str::<serde_json::Value>(r.messages_str()).expect("valid JSON");
    }
    // A stream's assembled completion.
    let (_, _, records) = answer_chat(
        &layer,
        &sink,
        200,
        "text/event-stream",
        Frames::new([Bytes::from(chat_stream())]),
    )
    .await;
    assert!(of_kind(&records, RecordKind::Response)[0].messages_are_json);
    // An error body is kept as it came.
    let (_, _, records) = answer_chat(
        &layer,
        &sink,
        400,
        "application/json",
        json_frames(r#"{"error":{"message":"bad"}}"#),
    )
    .await;
    assert!(!of_kind(&records, RecordKind::Response)[0].messages_are_json);
    // An invalid request body.
    let records = logged_chat(
        &layer,
        &sink,
        json_frames(r#"{"model":"m","messages":[{"role":"user""#),
    )
    .await;
    assert!(!of_kind(&records, RecordKind::Request)[0].messages_are_json);
    // Cut at the cap, or cut into chunks.
    let small = LlmLogLayer::new(sink.clone()).with_config(
        tower_llm_log::LogConfig::builder()
            .prompt_bytes(20)
            .build()
            .unwrap(),
    );
    let records = logged_chat(&small, &sink, json_frames(CHAT_REQUEST)).await;
    assert!(!of_kind(&records, RecordKind::Request)[0].messages_are_json);
    let chunked = LlmLogLayer::new(sink.clone()).with_config(
        tower_llm_log::LogConfig::builder()
            .chunk_bytes(16)
            .build()
            .unwrap(),
    );
    let records = logged_chat(&chunked, &sink, json_frames(CHAT_REQUEST)).await;
    let requests = of_kind(&records, RecordKind::Request);
    assert!(requests.len() > 1 && requests.iter().all(|r| !r.messages_are_json));
}
