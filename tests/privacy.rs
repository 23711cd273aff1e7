//! Secrets never reach a record by default: in prompts, in completions (JSON and streamed), in
//! upstream error bodies, split across frames however the body is cut; the logged message
//! stays valid JSON, `MessageBytes` stays the size that passed, and `Redactions` says what was
//! replaced. The traffic itself is never touched.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::{LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, RecordKind};

type Inner = Request<LlmLogBody<Frames>>;

const OPENAI_KEY: &str = "sk-proj-Zx9aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

/// One exchange: `request` cut at `cuts`, answered with `status`, `content_type` and `response`.
/// Returns what the caller received and the records.
async fn exchange(
    config: LogConfig,
    request: &str,
    cuts: &[usize],
    status: u16,
    content_type: &'static str,
    response: &str,
) -> (Bytes, Vec<LlmLogRecord>) {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let response = Frames::split(response.as_bytes(), &[]);
    let inner = service_fn(move |req: Inner| {
        let response = response.clone();
        async move {
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .header(CONTENT_TYPE, content_type)
                    .body(response)
                    .unwrap(),
            )
        }
    });
    let req = Request::post("/v1/chat/completions")
        .header(CONTENT_TYPE, "application/json")
        .body(Frames::split(request.as_bytes(), cuts))
        .unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (bytes, sink.take())
}

fn side(records: &[LlmLogRecord], kind: RecordKind) -> (String, LlmLogRecord) {
    let r = of_kind(records, kind);
    (message(&r), r.last().cloned().unwrap())
}

fn prompt_with_secrets() -> String {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": format!("Use {OPENAI_KEY} for the API and \"quote\" it\nnever")},
            {"role": "user", "content": format!("my AWS id is {AWS_KEY}, caf\u{e9}")},
        ]
    })
    .to_string()
}

#[tokio::test]
async fn secrets_in_a_prompt_are_replaced_however_the_body_is_cut() {
    let request = prompt_with_secrets();
    let at = request.find("sk-proj").unwrap();
    // Whole, cut inside each secret, and one byte at a time.
    let mut cuttings: Vec<Vec<usize>> = vec![vec![], vec![at + 5], vec![at + 3, at + 20]];
    cuttings.push((1..request.len()).collect());
    for cuts in cuttings {
        let (_, records) = exchange(
            LogConfig::default(),
            &request,
            &cuts,
            200,
            "application/json",
            CHAT_RESPONSE,
        )
        .await;
        let (text, last) = side(&records, RecordKind::Request);
        assert!(!text.contains(OPENAI_KEY) && !text.contains(AWS_KEY), "{text}");
        let logged: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(
            logged[0]["content"],
            "Use [REDACTED:openai_key] for the API and \"quote\" it\nnever"
        );
        assert_eq!(
            logged[1]["content"],
            "my AWS id is [REDACTED:aws_access_key_id], caf\u{e9}"
        );
        let original =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&request).unwrap()["messages"])
                .unwrap();
        assert_eq!(last.message_bytes, original.len() as u64, "the size that passed");
        assert_eq!(last.redactions.get("openai_key"), Some(&1));
        assert_eq!(last.redactions.get("aws_access_key_id"), Some(&1));
        assert!(!last.truncated);
    }
}

#[tokio::test]
async fn the_traffic_keeps_its_secrets_only_the_log_loses_them() {
    let request = prompt_with_secrets();
    let answer = CHAT_RESPONSE.replace("Hi \\u00e9!", &format!("your key {OPENAI_KEY}"));
    let (bytes, records) = exchange(
        LogConfig::default(),
        &request,
        &[],
        200,
        "application/json",
        &answer,
    )
    .await;
    assert_eq!(bytes, answer.as_bytes(), "the caller gets the upstream's bytes");
    let (text, last) = side(&records, RecordKind::Response);
    assert!(text.contains("your key [REDACTED:openai_key]"), "{text}");
    assert_eq!(last.redactions.get("openai_key"), Some(&1));
    let line = serde_json::to_string(&last).unwrap();
    assert!(line.contains(r#""Redactions":{"openai_key":1}"#), "{line}");
    let back: LlmLogRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back.redactions, last.redactions, "the log reads back");
}

#[tokio::test]
async fn secrets_in_a_stream_and_in_an_error_body_are_replaced() {
    let stream = "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"the token is ghp_abcdefghij\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"klmnopqrstuvwxyz0123456789 ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let (_, records) = exchange(
        LogConfig::default(),
        r#"{"model":"m","stream":true,"messages":[]}"#,
        &[],
        200,
        "text/event-stream",
        stream,
    )
    .await;
    let (text, last) = side(&records, RecordKind::Response);
    assert!(
        text.contains("the token is [REDACTED:github_token] ok"),
        "a secret split across deltas: {text}"
    );
    assert_eq!(last.redactions.get("github_token"), Some(&1));

    let error = r#"{"error":{"message":"upstream https://acct.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21&api-key=0123456789abcdef failed","type":"bad_gateway"}}"#;
    let (_, records) = exchange(
        LogConfig::default(),
        r#"{"model":"m","messages":[]}"#,
        &[],
        502,
        "application/json",
        error,
    )
    .await;
    let (text, last) = side(&records, RecordKind::Response);
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert!(
        text.contains("api-key=[REDACTED:url_credential] failed"),
        "{text}"
    );
    serde_json::from_str::<serde_json::Value>(&text).expect("still JSON");
    assert_eq!(last.redactions.get("url_credential"), Some(&1));
}

#[tokio::test]
async fn turned_off_the_text_is_logged_as_it_passed() {
    let config = LogConfig::builder().redact_secrets(false).build().unwrap();
    assert!(!config.redact_secrets());
    assert!(LogConfig::default().redact_secrets(), "on by default");
    let (_, records) = exchange(
        config,
        &prompt_with_secrets(),
        &[],
        200,
        "application/json",
        CHAT_RESPONSE,
    )
    .await;
    let (text, last) = side(&records, RecordKind::Request);
    assert!(text.contains(OPENAI_KEY));
    assert!(last.redactions.is_empty());
}

#[tokio::test]
async fn replacements_never_take_a_message_past_its_cap() {
    // `&key=a` (6 bytes) becomes `&key=[REDACTED:url_credential]` (30 bytes).
    let content = "https://x.example/?a=1&key=a ".repeat(200);
    let request =
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": content}]}).to_string();
    let config = LogConfig::builder()
        .prompt_bytes(4096)
        .chunk_bytes(1024)
        .build()
        .unwrap();
    let (_, records) = exchange(config, &request, &[], 200, "application/json", CHAT_RESPONSE).await;
    let (text, last) = side(&records, RecordKind::Request);
    assert!(text.len() <= 4096, "{} bytes logged", text.len());
    assert!(last.truncated);
    assert!(!text.contains("&key=a "));
    assert!(of_kind(&records, RecordKind::Request)
        .iter()
        .all(|r| r.messages.len() <= 1024));
}

#[tokio::test]
async fn a_credential_the_cap_cuts_short_is_replaced() {
    let request = r#"{"model":"m","messages":[{"role":"user","content":"token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and more"}]}"#;
    // The cap falls inside the token: 35 of its 40 characters would be kept.
    let cut = request.find("ghp_").unwrap() - request.find("[{").unwrap() + 35;
    let config = LogConfig::builder().prompt_bytes(cut).build().unwrap();
    let (_, records) = exchange(config, request, &[], 200, "application/json", CHAT_RESPONSE).await;
    let (text, last) = side(&records, RecordKind::Request);
    assert!(text.ends_with("token [REDACTED:cut_short]"), "{text}");
    assert!(!text.contains("ghp_abc"));
    assert_eq!(last.redactions.get("cut_short"), Some(&1));
    assert!(last.truncated);
}

#[tokio::test]
async fn a_key_split_over_three_frames_of_a_long_message_is_found() {
    // Large frames around a one-byte frame: the message is kept in three pieces, and the key's
    // `sk-` prefix is split across all three.
    let before = "b".repeat(5000);
    let after = "a".repeat(5000);
    let request = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{before} sk-proj-Zx9aBcDeFgHiJkLmNoPqRsTuVwXyZ0123 {after}"}}]}}"#
    );
    let s = request.find(" sk-").unwrap() + 1;
    let config = LogConfig::builder().prompt_bytes(1 << 20).build().unwrap();
    let (_, records) = exchange(
        config,
        &request,
        &[s + 1, s + 2],
        200,
        "application/json",
        CHAT_RESPONSE,
    )
    .await;
    let (text, last) = side(&records, RecordKind::Request);
    assert!(!text.contains("Zx9aBc"), "the key was logged");
    assert_eq!(last.redactions.get("openai_key"), Some(&1));
}
