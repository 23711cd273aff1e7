//! API families of one's own (`LlmLogLayer::with_api`, the example's Cohere family, built on the
//! stable surface only), recognition replaced (`with_recognizer`) and narrowed (`only_when`).
#[path = "../examples/custom_api/cohere.rs"]
mod cohere;
mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::api::{self, Route};
use tower_llm_log::{ApiFamily, LlmLogBody, LlmLogLayer, LlmLogRecord, MemorySink, RecordKind};

type Inner = Request<LlmLogBody<Frames>>;

async fn run(
    layer: &LlmLogLayer,
    sink: &MemorySink,
    path: &str,
    request: &str,
    content_type: &'static str,
    answer: &str,
) -> Vec<LlmLogRecord> {
    let answer = Bytes::copy_from_slice(answer.as_bytes());
    let inner = service_fn(move |req: Inner| {
        let answer = answer.clone();
        async move {
            let _ = req.into_body().collect().await;
            let body = Frames::split(&answer, &[answer.len() / 3, answer.len() / 2]);
            Ok::<_, Infallible>(
                Response::builder()
                    .header(CONTENT_TYPE, content_type)
                    .body(body)
                    .unwrap(),
            )
        }
    });
    let req = Request::post(path)
        .body(Frames::new([Bytes::copy_from_slice(request.as_bytes())]))
        .unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let _ = res.into_body().collect().await.unwrap();
    sink.take()
}

const COHERE_REQUEST: &str =
    r#"{"model":"command-a-03-2025","messages":[{"role":"user","content":"Say hello."}],"temperature":0}"#;
const COHERE_RESPONSE: &str = r#"{"id":"c14c80c3","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"Hello."}]},"usage":{"billed_units":{"input_tokens":3,"output_tokens":2},"tokens":{"input_tokens":65,"output_tokens":2}}}"#;

#[tokio::test]
async fn a_family_of_ones_own_is_logged_like_the_built_in_ones() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_api(cohere::CohereChatApi);
    let records = run(
        &layer,
        &sink,
        "/v2/chat",
        COHERE_REQUEST,
        "application/json",
        COHERE_RESPONSE,
    )
    .await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.api, ApiFamily::Other("cohere_chat".into()));
    assert_eq!(
        (
            rq.provider.as_deref(),
            rq.operation_name.as_ref(),
            rq.model_name.as_deref()
        ),
        (Some("cohere"), "chat", Some("command-a-03-2025"))
    );
    assert_eq!(rq.messages_str(), r#"[{"content":"Say hello.","role":"user"}]"#);
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(
        rs.model_name.as_deref(),
        Some("command-a-03-2025"),
        "the request's model"
    );
    assert_eq!(
        (rs.prompt_tokens, rs.completion_tokens, rs.total_tokens),
        (Some(65), Some(2), Some(67))
    );
    assert_eq!(rs.finish_reasons, ["COMPLETE"]);
    assert_eq!(rs.request_id.as_deref(), Some("c14c80c3"));
    assert_eq!(rs.messages_str(), r#"[{"text":"Hello.","type":"text"}]"#);
    assert_eq!(rs.error, None);
    // The family's name reads back from JSON.
    let back: LlmLogRecord = serde_json::from_str(&serde_json::to_string(rs).unwrap()).unwrap();
    assert_eq!(back.api, rs.api);

    let stream = concat!(
        "event: message-start\ndata: {\"id\":\"c2\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\n",
        "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hel\"}}}}\n\n",
        "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"lo.\"}}}}\n\n",
        "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"tokens\":{\"input_tokens\":65,\"output_tokens\":2}}}}\n\n",
    );
    let records = run(
        &layer,
        &sink,
        "/v2/chat",
        COHERE_REQUEST,
        "text/event-stream",
        stream,
    )
    .await;
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert!(rs.is_stream_completion);
    assert_eq!(rs.messages_str(), r#"[{"text":"Hello.","type":"text"}]"#);
    assert_eq!(
        (rs.total_tokens, rs.request_id.as_deref()),
        (Some(67), Some("c2"))
    );
    assert_eq!(rs.error, None);
    // A body over the cap is logged as it came, and says why it was not read.
    let small = LlmLogLayer::new(sink.clone())
        .with_api(cohere::CohereChatApi)
        .with_config(
            tower_llm_log::LogConfig::builder()
                .prompt_bytes(10)
                .build()
                .unwrap(),
        );
    let records = run(
        &small,
        &sink,
        "/v2/chat",
        COHERE_REQUEST,
        "application/json",
        COHERE_RESPONSE,
    )
    .await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.messages_str(), &COHERE_REQUEST[..10]);
    assert!(
        rq.error.as_deref().is_some_and(|e| e.contains("over the cap")),
        "{:?}",
        rq.error
    );
    // The built-in families still work beside it.
    let records = run(
        &layer,
        &sink,
        "/v1/chat/completions",
        CHAT_REQUEST,
        "application/json",
        CHAT_RESPONSE,
    )
    .await;
    assert_eq!(records[0].api, ApiFamily::ChatCompletions);
}

#[tokio::test]
async fn a_recognizer_maps_paths_of_ones_own() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_recognizer(|head| match head.path() {
        "/llm/chat" => Some(Route::new(ApiFamily::ChatCompletions, "openai").with_deployment("team-a")),
        "/llm/mystery" => Some(Route::new(ApiFamily::Other("mystery".into()), "acme")),
        "/v1/embeddings" => None,
        _ => api::recognize(head),
    });
    let records = run(
        &layer,
        &sink,
        "/llm/chat",
        CHAT_REQUEST,
        "application/json",
        CHAT_RESPONSE,
    )
    .await;
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(
        (rs.api.clone(), rs.deployment_name.as_deref()),
        (ApiFamily::ChatCompletions, Some("team-a"))
    );
    assert_eq!(rs.total_tokens, Some(24));
    assert!(
        run(&layer, &sink, "/v1/embeddings", "{}", "application/json", "{}")
            .await
            .is_empty()
    );
    assert_eq!(
        run(&layer, &sink, "/v1/responses", "{}", "application/json", "{}")
            .await
            .len(),
        2
    );
    // A family nobody added: the bodies are kept as they are, and the record says why.
    let records = run(
        &layer,
        &sink,
        "/llm/mystery",
        "{\"q\":1}",
        "application/json",
        "{\"a\":2}",
    )
    .await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.messages_str(), "{\"q\":1}");
    assert!(rq
        .error
        .as_deref()
        .unwrap()
        .contains("no reader for the API family \"mystery\""));
}

#[tokio::test]
async fn only_when_leaves_requests_out() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).only_when(|head| !head.path().starts_with("/internal/"));
    assert!(run(
        &layer,
        &sink,
        "/internal/v1/chat/completions",
        CHAT_REQUEST,
        "application/json",
        CHAT_RESPONSE
    )
    .await
    .is_empty());
    assert_eq!(
        run(
            &layer,
            &sink,
            "/v1/chat/completions",
            CHAT_REQUEST,
            "application/json",
            CHAT_RESPONSE
        )
        .await
        .len(),
        2
    );
}
