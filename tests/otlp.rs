//! OtlpSink against OTLP receivers started here on 127.0.0.1 that decode real OTLP protobuf,
//! over HTTP and over gRPC.
#![cfg(feature = "otlp")]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use bytes::Bytes;
use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use tower_llm_log::sink::{OtlpProtocol, OtlpSink};
use tower_llm_log::{LlmLogRecord, LlmLogSink, MemorySink, RecordKind};

type Received = Arc<Mutex<Vec<(Vec<(String, String)>, LogRecord)>>>;

fn keep(received: &Received, request: ExportLogsServiceRequest) {
    for resource_logs in request.resource_logs {
        let resource: Vec<(String, String)> = resource_logs
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .map(|kv| {
                (
                    kv.key.clone(),
                    format!("{:?}", kv.value.as_ref().and_then(|v| v.value.clone())),
                )
            })
            .collect();
        for scope in resource_logs.scope_logs {
            for log in scope.log_records {
                received.lock().unwrap().push((resource.clone(), log));
            }
        }
    }
}

async fn http_receiver(received: Received) -> SocketAddr {
    let app = axum::Router::new().route(
        "/v1/logs",
        post(move |body: Bytes| {
            let received = received.clone();
            async move {
                let request = ExportLogsServiceRequest::decode(body).expect("OTLP protobuf");
                keep(&received, request);
                (
                    [("content-type", "application/x-protobuf")],
                    ExportLogsServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    serve(app).await
}

struct Grpc(Received);

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        keep(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

async fn grpc_receiver(received: Received) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(LogsServiceServer::new(Grpc(received)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    addr
}

/// Real records: one exchange through the layer with a traceparent.
async fn records() -> Vec<LlmLogRecord> {
    use http::Request;
    use http_body_util::BodyExt;
    use tower::{Layer, ServiceExt};
    let sink = MemorySink::new();
    let layer = tower_llm_log::LlmLogLayer::new(sink.clone());
    let inner = tower::service_fn(|req: Request<tower_llm_log::LlmLogBody<Frames>>| async move {
        let _ = req.into_body().collect().await;
        Ok::<_, std::convert::Infallible>(
            http::Response::builder()
                .header("content-type", "application/json")
                .body(Frames::split(CHAT_RESPONSE.as_bytes(), &[]))
                .unwrap(),
        )
    });
    let req = Request::post("/v1/chat/completions")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Frames::split(CHAT_REQUEST.as_bytes(), &[]))
        .unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    sink.take()
}

fn attr(log: &LogRecord, key: &str) -> Option<Value> {
    log.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.clone())
}

async fn wait_for(received: &Received, n: usize) -> Vec<(Vec<(String, String)>, LogRecord)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    received.lock().unwrap().clone()
}

/// Exports `records` through a sink built by `builder`. Emitting and flushing block (the
/// exporter's own thread and runtime do the work), so they run off this runtime, as
/// NonBlocking's worker thread would.
async fn export(builder: tower_llm_log::sink::OtlpSinkBuilder, records: Vec<LlmLogRecord>) {
    tokio::task::spawn_blocking(move || {
        let sink = builder.build().unwrap();
        for r in records {
            sink.emit(r);
        }
        assert!(sink.flush(), "export succeeded");
    })
    .await
    .unwrap();
}

async fn check(protocol: OtlpProtocol, content: bool) {
    // The test build's reqwest has TLS without a default crypto provider (a dev-dependency's
    // features are shared with the exporter's client); install one as an application would.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let received: Received = Arc::default();
    let endpoint = match protocol {
        OtlpProtocol::HttpProtobuf => format!("http://{}", http_receiver(received.clone()).await),
        _ => format!("http://{}", grpc_receiver(received.clone()).await),
    };
    let records = records().await;
    assert_eq!(records.len(), 2);
    let builder = OtlpSink::builder(endpoint, protocol)
        .service_name("otlp-test")
        .with_content(content);
    export(builder, records.clone()).await;
    let got = wait_for(&received, 2).await;
    assert_eq!(got.len(), 2);
    let (resource, _) = &got[0];
    assert!(
        resource
            .iter()
            .any(|(k, v)| k == "service.name" && v.contains("otlp-test")),
        "{resource:?}"
    );
    let response = records.iter().find(|r| r.kind == RecordKind::Response).unwrap();
    let (_, log) = got
        .iter()
        .find(|(_, l)| attr(l, "llm_log.kind") == Some(Value::StringValue("Response".into())))
        .unwrap();
    let s = |v: &str| Some(Value::StringValue(v.into()));
    assert_eq!(attr(log, "gen_ai.operation.name"), s("chat"));
    assert_eq!(attr(log, "gen_ai.provider.name"), s("openai"));
    assert_eq!(attr(log, "gen_ai.response.model"), s("gpt-4o-mini-2024-07-18"));
    assert_eq!(attr(log, "gen_ai.response.id"), s("chatcmpl-abc123"));
    assert_eq!(attr(log, "gen_ai.usage.input_tokens"), Some(Value::IntValue(21)));
    assert_eq!(attr(log, "gen_ai.usage.output_tokens"), Some(Value::IntValue(3)));
    assert_eq!(
        attr(log, "gen_ai.usage.cache_read.input_tokens"),
        Some(Value::IntValue(5))
    );
    assert_eq!(
        attr(log, "gen_ai.usage.reasoning.output_tokens"),
        Some(Value::IntValue(1))
    );
    assert_eq!(attr(log, "llm_log.correlation_id"), s(&response.correlation_id));
    assert_eq!(attr(log, "llm_log.sequence_number"), Some(Value::IntValue(0)));
    assert_eq!(attr(log, "llm_log.outcome"), s("Completed"));
    assert_eq!(attr(log, "http.response.status_code"), Some(Value::IntValue(200)));
    assert!(matches!(attr(log, "llm_log.duration_ms"), Some(Value::DoubleValue(d)) if d > 0.0));
    match attr(log, "gen_ai.response.finish_reasons") {
        Some(Value::ArrayValue(a)) => assert_eq!(a.values[0].value, s("stop")),
        other => panic!("finish reasons: {other:?}"),
    }
    assert_eq!(log.trace_id, hex("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(log.span_id, hex("00f067aa0ba902b7"));
    assert_eq!(log.severity_text, "INFO");
    // The request record: its model, and no token counts at all (not zeros).
    let (_, req_log) = got
        .iter()
        .find(|(_, l)| attr(l, "llm_log.kind") == s("Request"))
        .unwrap();
    assert_eq!(attr(req_log, "gen_ai.request.model"), s("gpt-4o-mini"));
    assert_eq!(attr(req_log, "gen_ai.usage.input_tokens"), None);
    assert_eq!(attr(req_log, "gen_ai.response.id"), None);
    // Content only when asked for.
    let body = log.body.as_ref().and_then(|b| b.value.clone());
    if content {
        assert_eq!(body, s(response.messages_str()));
    } else {
        assert_eq!(body, None);
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_http_protobuf() {
    check(OtlpProtocol::HttpProtobuf, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_http_with_content() {
    check(OtlpProtocol::HttpProtobuf, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_grpc() {
    check(OtlpProtocol::Grpc, true).await;
}

#[test]
fn a_bad_endpoint_is_a_clear_error() {
    let err = OtlpSink::builder("collector:4317", OtlpProtocol::Grpc)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("must be an http:// or https:// URL"),
        "{err}"
    );
}

#[tokio::test]
async fn a_grpc_sink_can_be_built_and_dropped_inside_async_code() {
    // Its own runtime must not be dropped the blocking way here (that panics inside async code).
    let sink = OtlpSink::builder("http://127.0.0.1:9", OtlpProtocol::Grpc)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    drop(sink);
    // An endpoint the gRPC client rejects: the error path drops the runtime too.
    let rejected = OtlpSink::builder("http://bad host:4317", OtlpProtocol::Grpc).build();
    assert!(rejected.is_err());
}

/// An MCP tool call through the layer, as OTLP logs: GenAI's `execute_tool` with the tool's
/// name and call id, and the MCP conventions' method, session and JSON-RPC id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tool_calls_are_execute_tool() {
    use http::Request;
    use http_body_util::BodyExt;
    use tower::{Layer, ServiceExt};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sink = MemorySink::new();
    let layer = tower_llm_log::LlmLogLayer::new(sink.clone());
    let inner = tower::service_fn(|req: Request<tower_llm_log::LlmLogBody<Frames>>| async move {
        let _ = req.into_body().collect().await;
        let body = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"4.5 C"}]}}"#;
        Ok::<_, std::convert::Infallible>(
            http::Response::builder()
                .header("content-type", "application/json")
                .body(Frames::split(body, &[]))
                .unwrap(),
        )
    });
    let req = Request::post("/mcp")
        .header("mcp-session-id", "s-77")
        .header("mcp-protocol-version", "2025-06-18")
        .body(Frames::split(
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo"}}}"#,
            &[],
        ))
        .unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    let records = sink.take();
    assert_eq!(records.len(), 2);

    let received: Received = Arc::default();
    let endpoint = format!("http://{}", http_receiver(received.clone()).await);
    export(OtlpSink::builder(endpoint, OtlpProtocol::HttpProtobuf), records).await;
    let got = wait_for(&received, 2).await;
    assert_eq!(got.len(), 2);
    let s = |v: &str| Some(Value::StringValue(v.into()));
    for (_, log) in &got {
        assert_eq!(attr(log, "gen_ai.operation.name"), s("execute_tool"));
        assert_eq!(attr(log, "gen_ai.tool.name"), s("get_weather"));
        assert_eq!(attr(log, "gen_ai.tool.call.id"), s("3"));
        assert_eq!(attr(log, "mcp.method.name"), s("tools/call"));
        assert_eq!(attr(log, "jsonrpc.request.id"), s("3"));
        assert_eq!(attr(log, "mcp.session.id"), s("s-77"));
        assert_eq!(attr(log, "mcp.protocol.version"), s("2025-06-18"));
        assert_eq!(attr(log, "llm_log.api"), s("mcp"));
    }
}
