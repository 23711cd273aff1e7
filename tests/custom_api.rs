//! API families of one's own (`LlmLogLayer::with_api`, the Gemini example's family), recognition
//! replaced (`with_recognizer`) and narrowed (`only_when`).
mod common;
#[path = "../examples/gemini_api/gemini.rs"]
mod gemini;

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

const GEMINI_REQUEST: &str = r#"{"systemInstruction":{"parts":[{"text":"Be brief."}]},"contents":[{"role":"user","parts":[{"text":"Say hello."}]}],"generationConfig":{"temperature":0}}"#;
const GEMINI_RESPONSE: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2,"totalTokenCount":9,"thoughtsTokenCount":0},"modelVersion":"gemini-2.0-flash-001","responseId":"r-1"}"#;

#[tokio::test]
async fn a_family_of_ones_own_is_logged_like_the_built_in_ones() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_api(gemini::GeminiApi);
    let records = run(
        &layer,
        &sink,
        "/v1beta/models/gemini-2.0-flash:generateContent",
        GEMINI_REQUEST,
        "application/json",
        GEMINI_RESPONSE,
    )
    .await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.api, ApiFamily::Other("gemini.generate_content".into()));
    assert_eq!(rq.api.as_str(), "gemini.generate_content");
    assert_eq!(
        (rq.provider.as_deref(), rq.operation_name.as_str()),
        (Some("gcp.gemini"), "generate_content")
    );
    assert_eq!(
        rq.model_name.as_deref(),
        Some("gemini-2.0-flash"),
        "the model named in the path"
    );
    assert_eq!(
        rq.messages_str(),
        r#"{"systemInstruction":{"parts":[{"text":"Be brief."}]},"contents":[{"role":"user","parts":[{"text":"Say hello."}]}]}"#
    );
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rs.model_name.as_deref(), Some("gemini-2.0-flash-001"));
    assert_eq!(
        (
            rs.prompt_tokens,
            rs.completion_tokens,
            rs.total_tokens,
            rs.reasoning_tokens
        ),
        (Some(7), Some(2), Some(9), Some(0))
    );
    assert_eq!(rs.finish_reasons, ["STOP"]);
    assert_eq!(rs.request_id.as_deref(), Some("r-1"));
    assert_eq!(rs.error, None);
    // The family's name reads back from JSON.
    let back: LlmLogRecord = serde_json::from_str(&serde_json::to_string(rs).unwrap()).unwrap();
    assert_eq!(back.api, rs.api);

    let stream = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.0-flash-001\"}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo.\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":2,\"totalTokenCount\":9}}\r\n\r\n";
    let records = run(
        &layer,
        &sink,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        GEMINI_REQUEST,
        "text/event-stream",
        stream,
    )
    .await;
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert!(rs.is_stream_completion);
    assert_eq!(
        rs.messages_str(),
        r#"[{"content":{"parts":[{"text":"Hello."}],"role":"model"},"finishReason":"STOP","index":0}]"#
    );
    assert_eq!(rs.total_tokens, Some(9));
    assert_eq!(rs.error, None);
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
