//! Media elision, personal data, a redactor of one's own, per-request control and content
//! sampling, through the layer: what records carry, what they say was done, and that the
//! traffic passes as it came.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::privacy::Edit;
use tower_llm_log::{
    control::sampled_in, ContentOmitted, LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, LogControl,
    MemorySink, RecordKind,
};

type Inner = Request<LlmLogBody<Frames>>;

/// What one exchange made: what the inner service received, what the client received, the
/// records.
struct Seen {
    upstream: Bytes,
    upstream_headers: http::HeaderMap,
    client: Bytes,
    records: Vec<LlmLogRecord>,
}

/// One chat exchange through `layer`: `request` cut at `cuts`, answered with `status`,
/// `content_type` and `response`; `control` inserted as an extension and `headers` added.
async fn exchange(
    layer: LlmLogLayer,
    sink: &MemorySink,
    request: &[u8],
    cuts: &[usize],
    (status, content_type, response): (u16, &'static str, &[u8]),
    control: Option<LogControl>,
    headers: &[(&str, &str)],
) -> Seen {
    let response = Frames::split(response, &[]);
    let upstream = Arc::new(std::sync::Mutex::new((Bytes::new(), http::HeaderMap::new())));
    let seen = upstream.clone();
    let inner = service_fn(move |req: Inner| {
        let response = response.clone();
        let seen = seen.clone();
        async move {
            let headers = req.headers().clone();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            *seen.lock().unwrap() = (body, headers);
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .header(CONTENT_TYPE, content_type)
                    .body(response)
                    .unwrap(),
            )
        }
    });
    let mut req = Request::post("/v1/chat/completions").header(CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut req = req.body(Frames::split(request, cuts)).unwrap();
    if let Some(control) = control {
        req.extensions_mut().insert(control);
    }
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let client = res.into_body().collect().await.unwrap().to_bytes();
    let (upstream, upstream_headers) = upstream.lock().unwrap().clone();
    Seen {
        upstream,
        upstream_headers,
        client,
        records: sink.take(),
    }
}

fn layer(config: LogConfig) -> (LlmLogLayer, MemorySink) {
    let sink = MemorySink::new();
    (LlmLogLayer::new(sink.clone()).with_config(config), sink)
}

fn side(records: &[LlmLogRecord], kind: RecordKind) -> (String, LlmLogRecord) {
    let r = of_kind(records, kind);
    (message(&r), r.last().cloned().expect("a record of that kind"))
}

const COMPLETION: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"It is a cat."},"finish_reason":"stop"}],"usage":{"prompt_tokens":900,"completion_tokens":5,"total_tokens":905}}"#;

fn ok() -> (u16, &'static str, &'static [u8]) {
    (200, "application/json", COMPLETION.as_bytes())
}

/// A PNG-looking base64 payload of `len` characters.
fn png_base64(len: usize) -> String {
    let mut s = "iVBORw0KGgoAAAANSUhEUg".to_string();
    let mut i = 0u32;
    while s.len() < len {
        s.push(char::from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i % 64) as usize],
        ));
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    s.truncate(len);
    s
}

fn image_prompt(base64: &str, text_after: &str) -> String {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{base64}"), "detail": "low"}},
            {"type": "text", "text": text_after},
        ]}]
    })
    .to_string()
}

#[tokio::test]
async fn an_image_in_a_prompt_is_elided_however_the_body_is_cut_and_the_traffic_is_untouched() {
    let base64 = png_base64(6000);
    let request = image_prompt(&base64, "and after it, the question");
    let at = request.find("iVBOR").unwrap();
    let mut cuttings: Vec<Vec<usize>> = vec![vec![], vec![at - 10], vec![at + 3, at + 1500, at + 5990]];
    cuttings.push((1..request.len()).collect());
    let mut logged = None;
    for cuts in cuttings {
        let (layer, sink) = layer(LogConfig::default());
        let seen = exchange(layer, &sink, request.as_bytes(), &cuts, ok(), None, &[]).await;
        assert_eq!(
            seen.upstream,
            request.as_bytes(),
            "the inner service gets the body as sent"
        );
        assert_eq!(seen.client, COMPLETION.as_bytes());
        let (prompt, record) = side(&seen.records, RecordKind::Request);
        assert_eq!(record.media_elided, 1);
        let sent: serde_json::Value = serde_json::from_str(&request).unwrap();
        assert_eq!(
            record.message_bytes,
            sent["messages"].to_string().len() as u64,
            "MessageBytes is the size as it passed, media included"
        );
        assert!(!prompt.contains(&base64[..64]), "{prompt}");
        let messages: serde_json::Value = serde_json::from_str(&prompt).expect("still JSON");
        let url = messages[0]["content"][1]["image_url"]["url"].as_str().unwrap();
        assert!(url.starts_with("[media image/png 4500 bytes sha256:"), "{url}");
        assert_eq!(messages[0]["content"][2]["text"], "and after it, the question");
        if let Some(previous) = logged.replace(prompt.clone()) {
            assert_eq!(previous, prompt, "cut at {cuts:?}");
        }
    }
}

#[tokio::test]
async fn a_20_mb_image_with_default_caps_costs_no_cap_the_text_after_it_is_logged() {
    let base64 = png_base64(20 << 20);
    let request = image_prompt(&base64, "the text after the image");
    // 64 KiB frames, as a client writes them.
    let cuts: Vec<usize> = (1..request.len() / 65536).map(|i| i * 65536).collect();
    let (layer, sink) = layer(LogConfig::default());
    let seen = exchange(layer, &sink, request.as_bytes(), &cuts, ok(), None, &[]).await;
    assert_eq!(seen.upstream.len(), request.len());
    let (prompt, record) = side(&seen.records, RecordKind::Request);
    assert!(!record.truncated, "the image used none of the 32 KiB cap");
    assert!(record.message_bytes > 20 << 20);
    assert_eq!(record.media_elided, 1);
    let messages: serde_json::Value = serde_json::from_str(&prompt).unwrap();
    assert_eq!(messages[0]["content"][2]["text"], "the text after the image");
    assert!(prompt.len() < 1024, "{}", prompt.len());
}

#[tokio::test]
async fn every_listed_shape_is_elided() {
    let b64 = png_base64(3000);
    let audio = format!("UklGRiQAAABXQVZF{}", &png_base64(3000)[20..]);
    let shapes = [
        // Responses input_image and input_file.
        serde_json::json!({"type": "input_image", "image_url": format!("data:image/jpeg;base64,{b64}")}),
        serde_json::json!({"type": "input_file", "filename": "a.pdf", "file_data": format!("data:application/pdf;base64,{b64}")}),
        // Chat input_audio: plain base64, its format after it.
        serde_json::json!({"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}),
        // Anthropic image and document blocks.
        serde_json::json!({"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": b64}}),
        serde_json::json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64}}),
        // Gemini inline data, both spellings.
        serde_json::json!({"inline_data": {"mime_type": "image/png", "data": b64}}),
        serde_json::json!({"inlineData": {"mimeType": "image/png", "data": b64}}),
    ];
    for shape in shapes {
        let request =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [shape]}]}).to_string();
        let (layer, sink) = layer(LogConfig::default());
        let seen = exchange(layer, &sink, request.as_bytes(), &[], ok(), None, &[]).await;
        let (prompt, record) = side(&seen.records, RecordKind::Request);
        assert_eq!(record.media_elided, 1, "{shape}");
        assert!(!prompt.contains(&b64[30..90]), "{prompt}");
        assert!(prompt.contains("[media "), "{prompt}");
        serde_json::from_str::<serde_json::Value>(&prompt).unwrap();
    }
    // Outputs: image generation's b64_json and audio output, in a JSON response.
    let response = serde_json::json!({"id": "x", "model": "m", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": null, "audio": {"id": "a", "data": audio, "transcript": "hi"}}, "finish_reason": "stop"}],
        "data": [{"b64_json": b64}]})
    .to_string();
    let (layer, sink) = layer(LogConfig::default());
    let request = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let seen = exchange(
        layer,
        &sink,
        request,
        &[],
        (200, "application/json", response.as_bytes()),
        None,
        &[],
    )
    .await;
    assert_eq!(seen.client, response.as_bytes());
    let (completion, record) = side(&seen.records, RecordKind::Response);
    // Both payloads in the body count, the logged `choices` shows the one inside it.
    assert_eq!(record.media_elided, 2, "{completion}");
    assert!(completion.contains("[media audio/wav "), "{completion}");
}

#[tokio::test]
async fn media_in_a_streamed_completion_and_elision_turned_off() {
    let b64 = png_base64(5000);
    let chunk = |delta: serde_json::Value| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        )
    };
    // Audio output streamed in deltas: the client gets every byte; the assembled completion
    // keeps the transcript, never the audio.
    let stream = format!(
        "{}{}data: [DONE]\n\n",
        chunk(serde_json::json!({"role": "assistant", "content": "see "})),
        chunk(serde_json::json!({"audio": {"id": "a1", "data": b64, "transcript": "hello"}})),
    );
    let request = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"draw"}]}"#;
    let (layer_on, sink) = layer(LogConfig::default());
    let seen = exchange(
        layer_on,
        &sink,
        request,
        &[],
        (200, "text/event-stream", stream.as_bytes()),
        None,
        &[],
    )
    .await;
    assert_eq!(seen.client, stream.as_bytes());
    let (completion, _) = side(&seen.records, RecordKind::Response);
    assert!(completion.contains("see "), "{completion}");
    assert!(!completion.contains(&b64[30..90]), "{completion}");

    let image = png_base64(3000);
    let request = image_prompt(&image, "x");
    let (layer_off, sink) = layer(
        LogConfig::builder()
            .no_media_elision()
            .prompt_bytes(1 << 20)
            .build()
            .unwrap(),
    );
    let seen = exchange(layer_off, &sink, request.as_bytes(), &[], ok(), None, &[]).await;
    let (prompt, record) = side(&seen.records, RecordKind::Request);
    assert_eq!(record.media_elided, 0);
    assert!(prompt.contains(&image));
}

fn pii_prompt() -> String {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 4111111111111111u64,
        "messages": [{"role": "user", "content":
            "I am jane.doe@example.com, phone +1 415-555-2671, card 4111 1111 1111 1111, iban GB82 WEST 1234 5698 7654 32, from 10.1.2.3. Order 4111111111111112 caf\u{e9} \"quoted\""}]
    })
    .to_string()
}

#[tokio::test]
async fn personal_data_is_replaced_when_asked_and_not_by_default() {
    let request = pii_prompt();
    let (off, sink) = layer(LogConfig::default());
    let seen = exchange(off, &sink, request.as_bytes(), &[], ok(), None, &[]).await;
    let (prompt, record) = side(&seen.records, RecordKind::Request);
    assert!(prompt.contains("jane.doe@example.com"));
    assert!(record.redactions.is_empty());

    let at = request.find("jane").unwrap();
    for cuts in [vec![], vec![at + 4], (1..request.len()).collect()] {
        let (on, sink) = layer(LogConfig::builder().redact_pii(true).build().unwrap());
        let seen = exchange(on, &sink, request.as_bytes(), &cuts, ok(), None, &[]).await;
        assert_eq!(seen.upstream, request.as_bytes());
        let (prompt, record) = side(&seen.records, RecordKind::Request);
        let messages: serde_json::Value = serde_json::from_str(&prompt).unwrap();
        assert_eq!(
            messages[0]["content"],
            "I am [REDACTED:email], phone [REDACTED:phone], card [REDACTED:card], iban [REDACTED:iban], from [REDACTED:ip_address]. Order 4111111111111112 caf\u{e9} \"quoted\""
        );
        let counts: Vec<(&str, u32)> = record.redactions.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            counts,
            [
                ("card", 1),
                ("email", 1),
                ("iban", 1),
                ("ip_address", 1),
                ("phone", 1)
            ]
        );
        let sent: serde_json::Value = serde_json::from_str(&request).unwrap();
        assert_eq!(record.message_bytes, sent["messages"].to_string().len() as u64);
    }
}

#[tokio::test]
async fn keyed_tags_correlate_the_same_value_without_storing_it() {
    let config = LogConfig::builder()
        .pii_hash_key(*b"a secret key of 32 bytes, random")
        .build()
        .unwrap();
    let mut tags = Vec::new();
    for email in ["Jane.Doe@Example.com", "jane.doe@example.com", "john@example.com"] {
        let request = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": format!("mail {email}")}]}).to_string();
        let (on, sink) = layer(config.clone());
        let seen = exchange(on, &sink, request.as_bytes(), &[], ok(), None, &[]).await;
        let (prompt, _) = side(&seen.records, RecordKind::Request);
        assert!(!prompt.to_lowercase().contains("example.com"), "{prompt}");
        let tag = prompt
            .split("mail ")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        assert!(
            tag.starts_with("[email:") && tag.len() == "[email:]".len() + 16,
            "{tag}"
        );
        tags.push(tag);
    }
    assert_eq!(tags[0], tags[1], "the same address in another case");
    assert_ne!(tags[0], tags[2]);
    // The key is never printed.
    assert!(!format!("{config:?}").contains("secret key"));
    assert!(LogConfig::builder().pii_hash_key(*b"short").build().is_err());
}

#[tokio::test]
async fn a_redactor_of_ones_own_runs_after_the_built_in_ones() {
    let request = br#"{"model":"m","messages":[{"role":"user","content":"ticket ORD-123456 from a@b.io"}]}"#;
    let sink = MemorySink::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let layer = LlmLogLayer::new(sink.clone())
        .with_config(LogConfig::builder().redact_pii(true).build().unwrap())
        .with_redactor(move |text: &str| {
            counted.fetch_add(1, Ordering::Relaxed);
            // It sees the text after the built-in redaction.
            assert!(!text.contains("a@b.io"));
            text.find("ORD-")
                .map(|at| vec![Edit::new(at..at + 10, "order_id")])
                .unwrap_or_default()
        });
    let seen = exchange(layer, &sink, request, &[], ok(), None, &[]).await;
    let (prompt, record) = side(&seen.records, RecordKind::Request);
    assert!(
        prompt.contains("ticket [REDACTED:order_id] from [REDACTED:email]"),
        "{prompt}"
    );
    assert_eq!(record.redactions.get("order_id"), Some(&1));
    assert_eq!(calls.load(Ordering::Relaxed), 2, "once per side");
}

#[tokio::test]
async fn a_failing_redactor_withholds_the_content_never_the_request() {
    let request = br#"{"model":"m","messages":[{"role":"user","content":"secret plan"}]}"#;
    for panics in [true, false] {
        let sink = MemorySink::new();
        let layer = LlmLogLayer::new(sink.clone()).with_redactor(move |_text: &str| {
            if panics {
                panic!("redactor bug");
            }
            // An edit that reaches outside a string value.
            vec![Edit::new(0..5, "bad")]
        });
        let stats = layer.clone();
        let seen = exchange(layer, &sink, request, &[], ok(), None, &[]).await;
        assert_eq!(seen.client, COMPLETION.as_bytes(), "the request went through");
        assert_eq!(seen.upstream, &request[..]);
        let (prompt, record) = side(&seen.records, RecordKind::Request);
        assert_eq!(prompt, "");
        assert_eq!(record.content_omitted, Some(ContentOmitted::RedactorFailed));
        assert!(
            record.error.as_deref().unwrap().contains("redactor"),
            "{:?}",
            record.error
        );
        let (_, response) = side(&seen.records, RecordKind::Response);
        assert_eq!(response.prompt_tokens, Some(900), "usage is still logged");
        assert_eq!(stats.stats().redactor_failures, 2);
    }
}

#[tokio::test]
async fn each_control_level_from_server_code() {
    let request = br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#;
    let cases = [
        (LogControl::Full, Some(None), Some(None)),
        (
            LogControl::Metadata,
            Some(Some(ContentOmitted::Metadata)),
            Some(Some(ContentOmitted::Metadata)),
        ),
        (
            LogControl::NoPrompt,
            Some(Some(ContentOmitted::Metadata)),
            Some(None),
        ),
        (
            LogControl::NoCompletion,
            Some(None),
            Some(Some(ContentOmitted::Metadata)),
        ),
        (LogControl::Off, None, None),
    ];
    for (control, prompt_omitted, completion_omitted) in cases {
        let (layer, sink) = layer(LogConfig::default());
        let stats = layer.clone();
        let seen = exchange(layer, &sink, request, &[], ok(), Some(control), &[]).await;
        assert_eq!(seen.client, COMPLETION.as_bytes());
        let records = seen.records;
        if prompt_omitted.is_none() {
            assert!(records.is_empty(), "{control:?}");
            assert_eq!(stats.stats().exchanges_not_logged, 1);
            continue;
        }
        let (prompt, request_record) = side(&records, RecordKind::Request);
        let (completion, response_record) = side(&records, RecordKind::Response);
        assert_eq!(
            Some(request_record.content_omitted),
            prompt_omitted,
            "{control:?}"
        );
        assert_eq!(
            Some(response_record.content_omitted),
            completion_omitted,
            "{control:?}"
        );
        assert_eq!(prompt.is_empty(), request_record.content_omitted.is_some());
        assert_eq!(completion.is_empty(), response_record.content_omitted.is_some());
        assert_eq!(
            response_record.total_tokens,
            Some(905),
            "usage is logged at every level"
        );
        assert_eq!(request_record.model_name.as_deref(), Some("m"));
    }
}

#[tokio::test]
async fn the_client_header_is_honoured_only_when_allowed_and_never_forwarded() {
    let request = br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#;
    // Not allowed: logged in full, with a note; the header still does not reach upstream.
    let (layer_default, sink) = layer(LogConfig::default());
    let seen = exchange(
        layer_default,
        &sink,
        request,
        &[],
        ok(),
        None,
        &[("x-llm-log", "off")],
    )
    .await;
    assert!(!seen.upstream_headers.contains_key("x-llm-log"));
    let (prompt, record) = side(&seen.records, RecordKind::Request);
    assert!(prompt.contains("hello"));
    assert!(record.error.unwrap().contains("x-llm-log header was ignored"));

    let allowed = LogConfig::builder()
        .allow_client_log_control(true)
        .build()
        .unwrap();
    for (value, prompt_omitted, completion_omitted) in [
        ("metadata", true, true),
        ("no-prompt", true, false),
        ("No-Completion", false, true),
    ] {
        let (l, sink) = layer(allowed.clone());
        let seen = exchange(l, &sink, request, &[], ok(), None, &[("x-llm-log", value)]).await;
        assert!(!seen.upstream_headers.contains_key("x-llm-log"));
        let (_, req) = side(&seen.records, RecordKind::Request);
        let (_, res) = side(&seen.records, RecordKind::Response);
        assert_eq!(
            req.content_omitted == Some(ContentOmitted::Client),
            prompt_omitted,
            "{value}"
        );
        assert_eq!(
            res.content_omitted == Some(ContentOmitted::Client),
            completion_omitted,
            "{value}"
        );
        assert_eq!(res.total_tokens, Some(905));
    }
    let (l, sink) = layer(allowed.clone());
    let stats = l.clone();
    let seen = exchange(l, &sink, request, &[], ok(), None, &[("x-llm-log", "off")]).await;
    assert!(seen.records.is_empty());
    assert_eq!(stats.stats().exchanges_not_logged, 1);
    // A hostile value: logged in full, with a note.
    let (l, sink) = layer(allowed);
    let seen = exchange(
        l,
        &sink,
        request,
        &[],
        ok(),
        None,
        &[("x-llm-log", "off;\tdrop table")],
    )
    .await;
    let (prompt, record) = side(&seen.records, RecordKind::Request);
    assert!(prompt.contains("hello"));
    assert!(record.error.unwrap().contains("not one of"));
}

#[tokio::test]
async fn the_header_is_removed_on_other_routes_and_the_strictest_value_wins() {
    let sink = MemorySink::new();
    let seen_headers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = seen_headers.clone();
    let inner = service_fn(move |req: Inner| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(req.headers().clone());
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(
                Response::builder()
                    .header(CONTENT_TYPE, "application/json")
                    .body(Frames::split(COMPLETION.as_bytes(), &[]))
                    .unwrap(),
            )
        }
    });
    let config = LogConfig::builder()
        .allow_client_log_control(true)
        .build()
        .unwrap();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let service = layer.layer(inner);
    let models = Request::get("/v1/models")
        .header("x-llm-log", "off")
        .body(Frames::split(b"", &[]))
        .unwrap();
    let _ = service.clone().oneshot(models).await.unwrap();
    let chat = Request::post("/v1/chat/completions")
        .header(CONTENT_TYPE, "application/json")
        .header("x-llm-log", "full")
        .header("x-llm-log", "off")
        .body(Frames::split(br#"{"model":"m","messages":[]}"#, &[]))
        .unwrap();
    let res = service.oneshot(chat).await.unwrap();
    let _ = res.into_body().collect().await;
    let headers = seen_headers.lock().unwrap().clone();
    assert_eq!(headers.len(), 2);
    assert!(headers.iter().all(|h| !h.contains_key("x-llm-log")));
    assert!(sink.take().is_empty(), "`off` among the values wins");
    assert_eq!(layer.stats().exchanges_not_logged, 1);
}

#[tokio::test]
async fn a_zero_cap_says_why_the_content_is_absent() {
    let request = br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#;
    let (l, sink) = layer(LogConfig::builder().prompt_bytes(0).build().unwrap());
    let seen = exchange(l, &sink, request, &[], ok(), None, &[]).await;
    let (_, req) = side(&seen.records, RecordKind::Request);
    let (completion, res) = side(&seen.records, RecordKind::Response);
    assert_eq!(req.content_omitted, Some(ContentOmitted::CapZero));
    assert_eq!(res.content_omitted, None);
    assert!(completion.contains("It is a cat."));
}

#[tokio::test]
async fn sampling_agrees_across_replicas_and_keeps_failures_and_usage() {
    let config = LogConfig::builder().content_sample_rate(0.5).build().unwrap();
    let request = br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#;
    let mut kept = 0;
    for i in 0..40 {
        let id = format!("req-{i}");
        // Two replicas, each with its own layer: the same answer for the same id.
        let mut answers = Vec::new();
        for _replica in 0..2 {
            let (l, sink) = layer(config.clone());
            let seen = exchange(l, &sink, request, &[], ok(), None, &[("x-request-id", &id)]).await;
            assert_eq!(seen.records.len(), 2);
            let omitted: Vec<_> = seen.records.iter().map(|r| r.content_omitted).collect();
            assert_eq!(omitted[0], omitted[1], "both sides agree");
            assert_eq!(
                seen.records[0].kind,
                RecordKind::Request,
                "the request record still comes first"
            );
            let (_, res) = side(&seen.records, RecordKind::Response);
            assert_eq!(res.total_tokens, Some(905), "usage is never sampled away");
            answers.push(omitted[0]);
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0].is_none(), sampled_in(&id, 0.5));
        kept += usize::from(answers[0].is_none());
    }
    assert!((5..=35).contains(&kept), "{kept} of 40 kept at 0.5");

    // An id sampled out that fails keeps its content.
    let id = (0..)
        .map(|i| format!("fail-{i}"))
        .find(|id| !sampled_in(id, 0.5))
        .unwrap();
    let error = (500, "application/json", &br#"{"error":{"message":"boom"}}"#[..]);
    let (l, sink) = layer(config.clone());
    let seen = exchange(l, &sink, request, &[], error, None, &[("x-request-id", &id)]).await;
    let (prompt, req) = side(&seen.records, RecordKind::Request);
    let (completion, res) = side(&seen.records, RecordKind::Response);
    assert_eq!((req.content_omitted, res.content_omitted), (None, None));
    assert!(prompt.contains("hello") && completion.contains("boom"));
    assert!(LogConfig::builder().content_sample_rate(1.5).build().is_err());
    assert!(LogConfig::builder()
        .content_sample_rate(f64::NAN)
        .build()
        .is_err());
}
