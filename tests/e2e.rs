//! End to end over 127.0.0.1: the gateway example's router and mock upstream, real clients
//! (hyper, async-openai), a client that leaves mid-stream, and the layer on the client side.

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

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_openai::config::{AzureConfig, OpenAIConfig};
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, ServiceExt};
use tower_llm_log::{JsonLinesSink, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, Outcome, RecordKind};

/// Starts the mock upstream and a gateway in front of it; returns (gateway, mock) addresses.
async fn gateway(layer: LlmLogLayer) -> (SocketAddr, SocketAddr) {
    let mock_addr = serve(mock::router()).await;
    let upstream = app::Upstream::new(&format!("http://{mock_addr}")).expect("upstream");
    (serve(app::router(upstream, layer)).await, mock_addr)
}

fn chat_request(stream: bool) -> CreateChatCompletionRequest {
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model("gpt-4o-mini")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("Tell me about t\u{e9}a and \"quotes\"")
            .build()
            .unwrap()
            .into()]);
    if stream {
        args.stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            ..Default::default()
        });
    }
    args.build().unwrap()
}

fn openai(addr: SocketAddr) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://{addr}/v1"))
            .with_api_key("sk-test"),
    )
}

#[tokio::test]
async fn async_openai_gets_the_same_answer_through_the_gateway() {
    let sink = MemorySink::new();
    let (gw, mock) = gateway(LlmLogLayer::new(sink.clone())).await;
    let direct = openai(mock).chat().create(chat_request(false)).await.unwrap();
    let via = openai(gw).chat().create(chat_request(false)).await.unwrap();
    assert_eq!(
        serde_json::to_value(&via).unwrap(),
        serde_json::to_value(&direct).unwrap()
    );
    let records = wait_records(&sink, 2).await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rq.correlation_id, rs.correlation_id);
    assert!(
        rq.messages_str()
            .contains("Tell me about t\u{e9}a and \\\"quotes\\\""),
        "{}",
        rq.messages_str()
    );
    assert_eq!(rs.request_id.as_deref(), Some(direct.id.as_str()));
    assert_eq!(rs.model_name.as_deref(), Some("gpt-4o-mini"));
    let usage = direct.usage.unwrap();
    assert_eq!(rs.prompt_tokens, Some(usage.prompt_tokens as u64));
    assert_eq!(rs.completion_tokens, Some(usage.completion_tokens as u64));
    assert_eq!(rs.total_tokens, Some(usage.total_tokens as u64));
    let logged: serde_json::Value = serde_json::from_str(rs.messages_str()).unwrap();
    assert_eq!(
        logged[0]["message"]["content"].as_str(),
        direct.choices[0].message.content.as_deref()
    );
    assert_eq!((rq.outcome, rs.outcome), (Outcome::Completed, Outcome::Completed));
}

#[tokio::test]
async fn async_openai_streams_through_the_gateway() {
    let sink = MemorySink::new();
    let (gw, mock) = gateway(LlmLogLayer::new(sink.clone())).await;
    let mut collect = Vec::new();
    for addr in [mock, gw] {
        let mut stream = openai(addr)
            .chat()
            .create_stream(chat_request(true))
            .await
            .unwrap();
        let (mut text, mut usage) = (String::new(), None);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            for c in &chunk.choices {
                text += c.delta.content.as_deref().unwrap_or("");
            }
            usage = usage.or(chunk.usage);
        }
        collect.push((text, usage.map(|u| u.total_tokens)));
    }
    assert_eq!(
        collect[0], collect[1],
        "same answer direct and through the gateway"
    );
    let records = wait_records(&sink, 2).await;
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert!(rs.is_stream_completion);
    let logged: serde_json::Value = serde_json::from_str(rs.messages_str()).unwrap();
    assert_eq!(
        logged[0]["message"]["content"].as_str(),
        Some(collect[0].0.as_str())
    );
    assert_eq!(logged[0]["message"]["role"], "assistant");
    assert_eq!(rs.total_tokens.map(|t| t as u32), collect[0].1);
    assert_eq!(rs.finish_reasons, ["stop"]);
    assert!(rs.time_to_first_token.is_some());
    assert_eq!(rs.outcome, Outcome::Completed);
}

#[tokio::test]
async fn azure_client_through_the_gateway() {
    let sink = MemorySink::new();
    let (gw, _) = gateway(LlmLogLayer::new(sink.clone())).await;
    let config = AzureConfig::new()
        .with_api_base(format!("http://{gw}"))
        .with_deployment_id("gpt-4o-prod")
        .with_api_version("2024-10-21")
        .with_api_key("key");
    let mut request = chat_request(false);
    request.model = String::new();
    let answer = Client::with_config(config).chat().create(request).await.unwrap();
    let records = wait_records(&sink, 2).await;
    for r in &records {
        assert_eq!(r.deployment_name.as_deref(), Some("gpt-4o-prod"));
        assert_eq!(r.api_version.as_deref(), Some("2024-10-21"));
        assert_eq!(r.provider.as_deref(), Some("azure.ai.openai"));
    }
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rs.request_id.as_deref(), Some(answer.id.as_str()));
    assert_eq!(rs.total_tokens, answer.usage.map(|u| u.total_tokens as u64));
}

#[tokio::test]
async fn json_lines_from_hyper_clients_read_back_with_azure_columns() {
    let buf = SharedBuf::default();
    let sink = Arc::new(JsonLinesSink::new(buf.clone()));
    let config = LogConfig::builder()
        .prompt_bytes(64)
        .chunk_bytes(16)
        .build()
        .unwrap();
    let (gw, _) = gateway(LlmLogLayer::new(sink.clone()).with_config(config)).await;
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"one two three four five six seven eight nine ten"}]}"#;
    let req = Request::post(format!("http://{gw}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-request-id", "hyper-1")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.headers()["x-correlation-id"], "hyper-1");
    let answer = res.into_body().collect().await.unwrap().to_bytes();
    assert!(answer.starts_with(b"{\"choices\""));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sink.written() < 6 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let records: Vec<LlmLogRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let rq = of_kind(&records, RecordKind::Request);
    assert_eq!(rq.len(), 4, "64 bytes in 16-byte chunks");
    assert!(rq.iter().all(|r| r.truncated && r.correlation_id == "hyper-1"));
    assert_eq!(message(&rq), &body[body.find('[').unwrap()..][..64]);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["CorrelationId"], "hyper-1");
    assert_eq!(first["SequenceNumber"], 0);
    assert!(first["RequestMessages"].is_string());
    let last_response = text
        .lines()
        .rev()
        .find(|l| l.contains("\"Kind\":\"Response\""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(last_response).unwrap();
    assert_eq!(
        v["TotalTokens"],
        (10 + 3) + (3 + 10),
        "mock: words + 3 per message, reply = 3 + words"
    );
    assert!(v["ResponseMessages"].is_string());
    assert!(message(&of_kind(&records, RecordKind::Response)).contains("Mock reply to: one two"));
}

/// An upstream that streams one chunk every 5 ms for a long time.
fn slow_stream_upstream() -> axum::Router {
    use axum::routing::post;
    axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let events = futures_util::stream::unfold(0u32, |i| async move {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let e = format!("data: {{\"id\":\"slow\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n");
                (i < 10_000).then(|| (Ok::<_, Infallible>(Bytes::from(e)), i + 1))
            });
            ([("content-type", "text/event-stream")], axum::body::Body::from_stream(events))
        }),
    )
}

#[tokio::test]
async fn a_client_gone_mid_stream_is_logged_as_disconnected() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let upstream_addr = serve(slow_stream_upstream()).await;
    let gw = serve(app::router(
        app::Upstream::new(&format!("http://{upstream_addr}")).unwrap(),
        layer.clone(),
    ))
    .await;
    // A raw client, so the test decides exactly when the connection goes.
    let mut conn = tokio::net::TcpStream::connect(gw).await.unwrap();
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"go"}]}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("w3 ") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "gateway closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(conn);
    let records = wait_records(&sink, 2).await;
    let rs = &of_kind(&records, RecordKind::Response)[0];
    assert_eq!(rs.outcome, Outcome::ClientDisconnected);
    assert!(
        rs.messages_str().contains("w0 w1 w2 w3 "),
        "{}",
        rs.messages_str()
    );
    assert!(rs.is_stream_completion);
    assert_eq!(rs.total_tokens, None);
    assert_eq!(
        of_kind(&records, RecordKind::Request)[0].outcome,
        Outcome::Completed
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while layer.stats().exchanges_open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(layer.stats().exchanges_open(), 0, "no exchange left behind");
}

#[tokio::test]
async fn the_layer_works_around_a_hyper_client() {
    let sink = MemorySink::new();
    let mock = serve(mock::router()).await;
    let client = HyperClient::builder(TokioExecutor::new()).build_http();
    let service = LlmLogLayer::new(sink.clone()).layer(client);
    for stream in [false, true] {
        let body = format!(
            r#"{{"model":"client-side","stream":{stream},"stream_options":{{"include_usage":true}},"messages":[{{"role":"user","content":"a b c"}}]}}"#
        );
        let req = Request::post(format!("http://{mock}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let res = service.clone().oneshot(req).await.unwrap();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        assert!(!bytes.is_empty());
    }
    let records = wait_records(&sink, 4).await;
    let responses = of_kind(&records, RecordKind::Response);
    assert_eq!(responses.len(), 2);
    for r in &responses {
        assert_eq!(r.model_name.as_deref(), Some("client-side"));
        assert_eq!(
            r.total_tokens,
            Some((3 + 3) + (3 + 3)),
            "mock: words + 3 per message, reply = 3 + words"
        );
        assert_eq!(r.outcome, Outcome::Completed);
    }
    assert_eq!(responses.iter().filter(|r| r.is_stream_completion).count(), 1);
    // An unreachable upstream: the client's error passes through and is logged.
    let req = Request::post("http://127.0.0.1:1/v1/chat/completions")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    assert!(service.clone().oneshot(req).await.is_err());
    let records = wait_records(&sink, 6).await;
    let failed = records
        .iter()
        .find(|r| r.outcome == Outcome::ServiceError)
        .expect("a ServiceError record");
    assert!(failed
        .error
        .as_deref()
        .unwrap()
        .starts_with("the inner service failed"));
}
