//! Every API family end to end over 127.0.0.1: real client libraries (async-openai for the
//! Responses API, embeddings and legacy completions; anthropic-ai-sdk for Anthropic's Messages
//! API) driving the gateway example's router in front of its mock upstream.

mod common;

#[allow(dead_code)]
#[path = "../gateway/src/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../gateway/src/mock.rs"]
mod mock;
#[allow(dead_code)]
#[path = "../gateway/src/mock_apis.rs"]
mod mock_apis;
#[allow(dead_code)]
#[path = "../gateway/src/mock_mcp.rs"]
mod mock_mcp;
#[path = "../gateway/src/mock_native.rs"]
mod mock_native;

use std::net::SocketAddr;

use anthropic_ai_sdk::client::AnthropicClient;
use anthropic_ai_sdk::types::message::{
    ContentBlock, ContentBlockDelta, CreateMessageParams, Message, MessageClient, MessageError,
    RequiredMessageParams, Role, StreamEvent,
};
use async_openai::config::OpenAIConfig;
use async_openai::types::completions::CreateCompletionRequestArgs;
use async_openai::types::embeddings::CreateEmbeddingRequestArgs;
use async_openai::types::responses::{CreateResponseArgs, ResponseStreamEvent};
use async_openai::Client;
use common::*;
use futures_util::StreamExt;
use serde_json::Value;
use tower_llm_log::{ApiFamily, LlmLogLayer, LlmLogRecord, MemorySink, Outcome, RecordKind};

async fn gateway(sink: &MemorySink) -> SocketAddr {
    let mock_addr = serve(mock::router()).await;
    let upstream = app::Upstream::new(&format!("http://{mock_addr}")).expect("upstream");
    serve(app::router(upstream, LlmLogLayer::new(sink.clone()))).await
}

/// Waits for `n` records and takes them out of the sink.
async fn take_records(sink: &MemorySink, n: usize) -> Vec<LlmLogRecord> {
    wait_records(sink, n).await;
    sink.take()
}

fn openai(addr: SocketAddr) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://{addr}/v1"))
            .with_api_key("test"),
    )
}

fn response_of(records: &[LlmLogRecord]) -> LlmLogRecord {
    let r = of_kind(records, RecordKind::Response);
    assert_eq!(r.len(), 1, "{records:?}");
    r.into_iter().next().unwrap()
}

fn json_of(r: &LlmLogRecord) -> Value {
    serde_json::from_str(r.messages_str()).unwrap()
}

#[tokio::test]
async fn responses_api_with_async_openai() {
    let sink = MemorySink::new();
    let client = openai(gateway(&sink).await);
    let request = CreateResponseArgs::default()
        .model("gpt-4.1-mini")
        .instructions("Be brief.")
        .input("Tell me about caf\u{e9} culture")
        .build()
        .unwrap();
    let answer = client.responses().create(request.clone()).await.unwrap();
    let records = take_records(&sink, 2).await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.api, ApiFamily::Responses);
    assert_eq!(
        json_of(rq),
        serde_json::json!({"instructions": "Be brief.", "input": "Tell me about caf\u{e9} culture"})
    );
    let rs = response_of(&records);
    assert_eq!(rs.request_id.as_deref(), Some(answer.id.as_str()));
    let usage = answer.usage.clone().unwrap();
    assert_eq!(rs.prompt_tokens, Some(u64::from(usage.input_tokens)));
    assert_eq!(rs.completion_tokens, Some(u64::from(usage.output_tokens)));
    assert_eq!(
        json_of(&rs)[0]["content"][0]["text"].as_str(),
        answer.output_text().as_deref()
    );
    assert_eq!(rs.finish_reasons, ["completed"]);

    // Streaming: the client reads every event; the log assembles the same output.
    let mut streamed = CreateResponseArgs::default();
    streamed
        .model("gpt-4.1-mini")
        .input("Tell me about caf\u{e9} culture")
        .stream(true);
    let mut stream = client
        .responses()
        .create_stream(streamed.build().unwrap())
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let ResponseStreamEvent::ResponseOutputTextDelta(d) = event.unwrap() {
            text.push_str(&d.delta);
        }
    }
    let records = take_records(&sink, 2).await;
    let rs = response_of(&records);
    assert!(rs.is_stream_completion);
    assert_eq!(
        json_of(&rs)[0]["content"][0]["text"].as_str(),
        Some(text.as_str())
    );
    assert!(rs.total_tokens.is_some());
    assert_eq!((rs.outcome, rs.error.as_deref()), (Outcome::Completed, None));
}

#[tokio::test]
async fn embeddings_with_async_openai() {
    let sink = MemorySink::new();
    let client = openai(gateway(&sink).await);
    let request = CreateEmbeddingRequestArgs::default()
        .model("text-embedding-3-small")
        .input(vec!["first text", "second text here"])
        .dimensions(16u32)
        .build()
        .unwrap();
    let answer = client.embeddings().create(request).await.unwrap();
    assert_eq!((answer.data.len(), answer.data[0].embedding.len()), (2, 16));
    let records = take_records(&sink, 2).await;
    let rs = response_of(&records);
    assert_eq!(
        json_of(&rs),
        serde_json::json!({"vectors": 2, "dimensions": 16, "encoding": "float"})
    );
    assert_eq!(rs.prompt_tokens, Some(u64::from(answer.usage.prompt_tokens)));
    assert_eq!(rs.completion_tokens, None);
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(json_of(rq), serde_json::json!(["first text", "second text here"]));
}

#[tokio::test]
async fn legacy_completions_with_async_openai() {
    let sink = MemorySink::new();
    let client = openai(gateway(&sink).await);
    let request = CreateCompletionRequestArgs::default()
        .model("gpt-3.5-turbo-instruct")
        .prompt("Say this is a test")
        .max_tokens(5u32)
        .build()
        .unwrap();
    let answer = client.completions().create(request).await.unwrap();
    let records = take_records(&sink, 2).await;
    let rs = response_of(&records);
    assert_eq!(
        json_of(&rs)[0]["text"].as_str(),
        Some(answer.choices[0].text.as_str())
    );
    assert_eq!(rs.finish_reasons, ["length"]);
    assert_eq!(rs.completion_tokens, Some(5));

    let request = CreateCompletionRequestArgs::default()
        .model("gpt-3.5-turbo-instruct")
        .prompt("Say this is a test")
        .build()
        .unwrap();
    let mut stream = client.completions().create_stream(request).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        for c in chunk.unwrap().choices {
            text.push_str(&c.text);
        }
    }
    let records = take_records(&sink, 2).await;
    let rs = response_of(&records);
    assert!(rs.is_stream_completion);
    assert_eq!(json_of(&rs)[0]["text"].as_str(), Some(text.as_str()));
    assert_eq!(rs.finish_reasons, ["stop"]);
    assert_eq!(rs.error, None);
}

#[tokio::test]
async fn anthropic_messages_with_anthropic_ai_sdk() {
    let sink = MemorySink::new();
    let addr = gateway(&sink).await;
    let client = AnthropicClient::builder("test-key", "2023-06-01")
        .with_api_base_url(format!("http://{addr}/v1"))
        .build::<MessageError>()
        .unwrap();
    let params = CreateMessageParams::new(RequiredMessageParams {
        model: "claude-sonnet-4-5".into(),
        messages: vec![Message::new_text(Role::User, "Tell me about caf\u{e9} culture")],
        max_tokens: 100,
    })
    .with_system("Be brief.");
    let answer = client.create_message(Some(&params)).await.unwrap();
    let records = take_records(&sink, 2).await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(
        (rq.api.clone(), rq.provider.as_deref()),
        (ApiFamily::AnthropicMessages, Some("anthropic"))
    );
    assert_eq!(json_of(rq)["system"], "Be brief.");
    let rs = response_of(&records);
    assert_eq!(rs.request_id.as_deref(), Some(answer.id.as_str()));
    let ContentBlock::Text { text, .. } = &answer.content[0] else {
        panic!("{:?}", answer.content)
    };
    assert_eq!(json_of(&rs)[0]["text"].as_str(), Some(text.as_str()));
    assert_eq!(rs.prompt_tokens, Some(u64::from(answer.usage.input_tokens)));
    assert_eq!(rs.completion_tokens, Some(u64::from(answer.usage.output_tokens)));
    assert_eq!(rs.finish_reasons, ["end_turn"]);

    let params = CreateMessageParams::new(RequiredMessageParams {
        model: "claude-sonnet-4-5".into(),
        messages: vec![Message::new_text(Role::User, "Tell me about caf\u{e9} culture")],
        max_tokens: 4,
    })
    .with_stream(true);
    let stream = client.create_message_streaming(&params).await.unwrap();
    let mut stream = std::pin::pin!(stream);
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let StreamEvent::ContentBlockDelta {
            delta: ContentBlockDelta::TextDelta { text: t },
            ..
        } = event.unwrap()
        {
            text.push_str(&t);
        }
    }
    let records = take_records(&sink, 2).await;
    let rs = response_of(&records);
    assert!(rs.is_stream_completion);
    assert_eq!(json_of(&rs)[0]["text"].as_str(), Some(text.as_str()));
    assert_eq!(rs.finish_reasons, ["max_tokens"]);
    assert_eq!(rs.completion_tokens, Some(4));
    assert_eq!(rs.error, None);
}
