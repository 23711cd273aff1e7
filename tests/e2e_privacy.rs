//! End to end over 127.0.0.1 with the official SDKs, through the gateway example's router and
//! mock upstream, logging JSON Lines with `--redact-pii`: prompts carrying an API key, an
//! e-mail address, a card number and a base64 image leave a log that holds none of them and
//! still parses; the SDKs get their answers.

mod common;

#[allow(dead_code)]
#[path = "../gateway/src/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../gateway/src/mock.rs"]
mod mock;
#[path = "../gateway/src/mock_apis.rs"]
#[allow(dead_code)]
mod mock_apis;
#[allow(dead_code)]
#[path = "../gateway/src/mock_mcp.rs"]
mod mock_mcp;
#[path = "../gateway/src/mock_native.rs"]
#[allow(dead_code)]
mod mock_native;

use std::net::SocketAddr;

use anthropic_ai_sdk::client::AnthropicClient;
use anthropic_ai_sdk::types::message::{
    ContentBlock, CreateMessageParams, ImageSource, Message, MessageClient, MessageContent, MessageError,
    RequiredMessageParams, Role,
};
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::CreateChatCompletionRequest;
use async_openai::Client;
use common::*;
use tower_llm_log::{JsonLinesSink, LlmLogLayer, LlmLogRecord, LogConfig, RecordKind};

const KEY: &str = "sk-proj-Qw3rTy9uIoPaSdFgHjKlZxCvBnM0123456789";
const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";

async fn gateway(buf: &SharedBuf) -> SocketAddr {
    let config = LogConfig::builder().redact_pii(true).build().unwrap();
    let layer = LlmLogLayer::new(JsonLinesSink::new(buf.clone())).with_config(config);
    let mock_addr = serve(mock::router()).await;
    let upstream = app::Upstream::new(&format!("http://{mock_addr}")).expect("upstream");
    serve(app::router(upstream, layer)).await
}

/// A PNG's base64, 40 KB of it.
fn image() -> String {
    let mut s = String::from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ");
    while s.len() < 40_000 {
        s.push_str("AAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg");
    }
    s
}

fn secret_text() -> String {
    format!("My key is {KEY}, mail me at {EMAIL}, card {CARD}. What is in the picture?")
}

/// The log's lines, each parsed; none holds any of `secrets`.
fn check_log(buf: &SharedBuf, n: usize, secrets: &[&str]) -> Vec<LlmLogRecord> {
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).expect("UTF-8");
    for secret in secrets {
        assert!(!text.contains(secret), "the log holds {secret:.40}");
    }
    let records: Vec<LlmLogRecord> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line parses"))
        .collect();
    assert_eq!(records.len(), n, "{text}");
    records
}

#[tokio::test]
async fn async_openai_prompt_with_a_key_an_email_a_card_and_an_image() {
    let buf = SharedBuf::default();
    let gw = gateway(&buf).await;
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://{gw}/v1"))
            .with_api_key(KEY),
    );
    let image = image();
    let request: CreateChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": secret_text()},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{image}")}},
        ]}]
    }))
    .unwrap();
    let answer = client.chat().create(request).await.unwrap();
    assert!(answer.usage.is_some());
    let _ = wait_records_in(&buf, 2).await;
    let records = check_log(&buf, 2, &[KEY, EMAIL, CARD, &image[..64], &image[20_000..20_064]]);
    let rq = &of_kind(&records, RecordKind::Request)[0];
    let messages: serde_json::Value = serde_json::from_str(rq.messages_str()).unwrap();
    assert_eq!(
        messages[0]["content"][0]["text"],
        "My key is [REDACTED:openai_key], mail me at [REDACTED:email], card [REDACTED:card]. What is in the picture?"
    );
    let url = messages[0]["content"][1]["image_url"]["url"].as_str().unwrap();
    assert!(url.starts_with("[media image/png "), "{url}");
    assert_eq!(rq.media_elided, 1);
    assert_eq!(rq.redactions.get("email"), Some(&1));
}

#[tokio::test]
async fn anthropic_sdk_prompt_with_a_key_an_email_a_card_and_an_image() {
    let buf = SharedBuf::default();
    let gw = gateway(&buf).await;
    let client = AnthropicClient::builder("test-key", "2023-06-01")
        .with_api_base_url(format!("http://{gw}/v1"))
        .build::<MessageError>()
        .unwrap();
    let image = image();
    let params = CreateMessageParams::new(RequiredMessageParams {
        model: "claude-sonnet-4-5".into(),
        messages: vec![Message {
            role: Role::User,
            content: MessageContent::Blocks {
                content: vec![
                    ContentBlock::Image {
                        source: ImageSource {
                            type_: "base64".into(),
                            media_type: "image/png".into(),
                            data: image.clone(),
                        },
                    },
                    ContentBlock::Text { text: secret_text() },
                ],
            },
        }],
        max_tokens: 100,
    });
    let answer = client.create_message(Some(&params)).await.unwrap();
    assert!(!answer.content.is_empty());
    let _ = wait_records_in(&buf, 2).await;
    let records = check_log(&buf, 2, &[KEY, EMAIL, CARD, &image[..64], &image[20_000..20_064]]);
    let rq = &of_kind(&records, RecordKind::Request)[0];
    let logged: serde_json::Value = serde_json::from_str(rq.messages_str()).unwrap();
    let data = logged["messages"][0]["content"][0]["source"]["data"]
        .as_str()
        .unwrap();
    assert!(data.starts_with("[media image/png "), "{data}");
    assert_eq!(rq.media_elided, 1);
}

/// Waits until the log has `n` lines.
async fn wait_records_in(buf: &SharedBuf, n: usize) -> usize {
    for _ in 0..6000 {
        let lines = buf.0.lock().unwrap().iter().filter(|&&b| b == b'\n').count();
        if lines >= n {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the log never had {n} lines");
}
