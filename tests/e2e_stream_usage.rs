//! `ensure_stream_usage` end to end over 127.0.0.1, through the gateway example's router and
//! mock upstream: the official openai SDK streaming without `include_usage` receives no usage
//! chunk and the same bytes it would have got, while the record has the provider's exact usage
//! and cost; a client that asks for usage itself gets its stream untouched.

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

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::CreateChatCompletionRequest;
use async_openai::Client;
use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tower_llm_log::{LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, RecordKind};

async fn gateway(ensure: bool, sink: &MemorySink) -> (SocketAddr, SocketAddr) {
    let config = LogConfig::builder().ensure_stream_usage(ensure).build().unwrap();
    let mock = serve(mock::router()).await;
    let upstream = app::Upstream::new(&format!("http://{mock}")).unwrap();
    (
        serve(app::router(
            upstream,
            LlmLogLayer::new(sink.clone()).with_config(config),
        ))
        .await,
        mock,
    )
}

fn request(include_usage: bool) -> String {
    let mut v = serde_json::json!({
        "model": "gpt-4o-mini",
        "stream": true,
        "messages": [{"role": "user", "content": "Tell me about streams"}],
    });
    if include_usage {
        v["stream_options"] = serde_json::json!({"include_usage": true});
    }
    v.to_string()
}

/// The raw bytes of a streamed answer.
async fn raw(addr: SocketAddr, body: &str) -> (http::HeaderMap, Bytes) {
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-test")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let res = client.request(req).await.unwrap();
    let headers = res.headers().clone();
    (headers, res.into_body().collect().await.unwrap().to_bytes())
}

fn response_record(records: &[LlmLogRecord]) -> LlmLogRecord {
    of_kind(records, RecordKind::Response)
        .into_iter()
        .find(|r| r.is_last)
        .unwrap()
}

/// The `id` of the first chunk of a stream.
fn chunk_id(stream: &[u8]) -> String {
    let text = String::from_utf8_lossy(stream);
    let line = text.lines().find(|l| l.starts_with("data: {")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line[6..]).unwrap();
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_sdk_gets_no_usage_chunk_and_the_record_gets_exact_usage() {
    let sink = MemorySink::new();
    let (gw, mock) = gateway(true, &sink).await;
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://{gw}/v1"))
            .with_api_key("sk-test"),
    );
    let req: CreateChatCompletionRequest = serde_json::from_str(&request(false)).unwrap();
    let mut stream = client.chat().create_stream(req).await.unwrap();
    let (mut text, mut chunks) = (String::new(), 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        chunks += 1;
        assert!(chunk.usage.is_none(), "the SDK must see no usage");
        assert!(!chunk.choices.is_empty(), "no chunk without choices");
        text += chunk.choices[0].delta.content.as_deref().unwrap_or("");
    }
    assert!(chunks > 2 && !text.is_empty());
    let records = wait_records(&sink, 2).await;
    let rs = response_record(&records);
    assert!(!rs.tokens_estimated, "exact usage from the provider");
    // The mock's usage for this prompt, as it reports it to a client that asks.
    let (_, direct) = raw(mock, &request(true)).await;
    let direct = String::from_utf8_lossy(&direct).to_string();
    let usage_line = direct.lines().find(|l| l.contains(r#""choices":[]"#)).unwrap();
    let usage: serde_json::Value = serde_json::from_str(&usage_line[6..]).unwrap();
    assert_eq!(rs.prompt_tokens, usage["usage"]["prompt_tokens"].as_u64());
    assert_eq!(rs.completion_tokens, usage["usage"]["completion_tokens"].as_u64());
    assert!(rs.cost_usd.is_some_and(|c| c > 0.0) && !rs.cost_estimated);
    // The request record is the client's request, as sent.
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert!(!rq.messages_str().contains("stream_options"));
}

#[tokio::test]
async fn the_client_gets_the_bytes_it_would_have_got() {
    let sink = MemorySink::new();
    let (gw, mock) = gateway(true, &sink).await;
    let (_, direct) = raw(mock, &request(false)).await;
    let (headers, via) = raw(gw, &request(false)).await;
    assert!(headers.get("content-length").is_none());
    // The upstream saw another body (with stream_options), so the mock named its chunks
    // differently; everything else is byte for byte.
    let via = String::from_utf8(via.to_vec())
        .unwrap()
        .replace(&chunk_id(&via), &chunk_id(&direct));
    assert_eq!(via, String::from_utf8(direct.to_vec()).unwrap());
    let rs = response_record(&wait_records(&sink, 2).await);
    assert!(rs.total_tokens.is_some() && !rs.tokens_estimated);
}

#[tokio::test]
async fn a_client_that_asks_for_usage_gets_its_stream_untouched() {
    let sink = MemorySink::new();
    let (gw, mock) = gateway(true, &sink).await;
    let (_, direct) = raw(mock, &request(true)).await;
    let (_, via) = raw(gw, &request(true)).await;
    assert_eq!(via, direct, "byte for byte, usage chunk included");
    assert!(response_record(&wait_records(&sink, 2).await)
        .total_tokens
        .is_some());

    // Turned off (the default), a stream without usage stays without it.
    let sink = MemorySink::new();
    let (gw, mock) = gateway(false, &sink).await;
    let (_, direct) = raw(mock, &request(false)).await;
    let (_, via) = raw(gw, &request(false)).await;
    assert_eq!(via, direct);
    let rs = response_record(&wait_records(&sink, 2).await);
    assert!(rs.total_tokens.is_none() || rs.tokens_estimated);
}
