//! Request read-ahead: requests the inner service rejects, fails on or never reads still log
//! their prompt, model and stream flag; the inner service receives the same bytes (the same
//! `Bytes` for large frames), trailers and errors; tower's readiness contract holds; a client
//! that never finishes its body leaves a record that says so. End to end over 127.0.0.1 where a
//! server is involved, in-process where the frames themselves are inspected.

mod common;

#[allow(dead_code)]
#[path = "../gateway/src/app.rs"]
mod app;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_llm_log::{LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, Outcome, RecordKind};

const STREAM_REQUEST: &str =
    r#"{"messages":[{"role":"user","content":"Say hi"}],"model":"gpt-4o-mini","stream":true}"#;

fn request_record(records: &[LlmLogRecord]) -> LlmLogRecord {
    let rq = of_kind(records, RecordKind::Request);
    assert_eq!(rq.len(), 1, "{records:#?}");
    rq.into_iter().next().unwrap()
}

fn response_record(records: &[LlmLogRecord]) -> LlmLogRecord {
    let rs = of_kind(records, RecordKind::Response);
    assert_eq!(rs.len(), 1, "{records:#?}");
    rs.into_iter().next().unwrap()
}

/// Posts `body` to `addr` in frames of 7 bytes (a chunked request); returns status and body.
async fn post_in_pieces(addr: std::net::SocketAddr, body: &str) -> (StatusCode, Bytes) {
    let pieces: Vec<Result<Frame<Bytes>, Infallible>> = body
        .as_bytes()
        .chunks(7)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let client = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(format!("http://{addr}/v1/chat/completions"))
        .header(CONTENT_TYPE, "application/json")
        .body(StreamBody::new(futures_util::stream::iter(pieces)))
        .unwrap();
    let res = client.request(req).await.expect("answered");
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn a_handler_that_never_reads_the_body_logs_the_prompt_and_model() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route("/v1/chat/completions", post(|| async { "not an LLM at all" }))
        .layer(LlmLogLayer::new(sink.clone()));
    let addr = serve(app).await;
    let (status, body) = post_in_pieces(addr, STREAM_REQUEST).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"not an LLM at all"[..]));
    let records = wait_records(&sink, 2).await;
    let rq = request_record(&records);
    assert_eq!(rq.outcome, Outcome::Completed);
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4o-mini"));
    assert!(rq.is_stream_completion);
    assert_eq!(rq.messages_str(), r#"[{"role":"user","content":"Say hi"}]"#);
    let rs = response_record(&records);
    assert_eq!(rs.model_name.as_deref(), Some("gpt-4o-mini"));
}

/// The gateway example in front of an upstream that is not there: a port nothing listens on
/// (bound, noted and closed).
async fn gateway_to_nowhere(sink: &MemorySink) -> std::net::SocketAddr {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let upstream = app::Upstream::new(&format!("http://{closed}")).unwrap();
    serve(app::router(upstream, LlmLogLayer::new(sink.clone()))).await
}

#[tokio::test]
async fn an_unreachable_upstream_still_logs_the_prompt_of_the_failed_call() {
    let sink = MemorySink::new();
    let addr = gateway_to_nowhere(&sink).await;
    let (status, _) = post_in_pieces(addr, STREAM_REQUEST).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let records = wait_records(&sink, 2).await;
    let rq = request_record(&records);
    assert_eq!(rq.outcome, Outcome::Completed);
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4o-mini"));
    assert!(rq.is_stream_completion);
    assert!(rq.messages_str().contains("Say hi"));
    let rs = response_record(&records);
    assert_eq!(rs.outcome, Outcome::UpstreamError);
    assert_eq!(rs.status_code, Some(502));
    assert!(rs.is_stream_completion, "the request asked for a stream");
}

#[tokio::test]
async fn an_auth_layer_that_rejects_first_still_lets_the_prompt_be_logged() {
    let sink = MemorySink::new();
    let seen_by_handler = Arc::new(Mutex::new(0));
    let handler_count = seen_by_handler.clone();
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(move |body: Bytes| async move {
                *handler_count.lock().unwrap() += 1;
                body
            }),
        )
        .layer(axum::middleware::from_fn(
            |req: axum::extract::Request, next: axum::middleware::Next| async move {
                if req.headers().get("authorization").is_none() {
                    return (StatusCode::UNAUTHORIZED, "no key").into_response_parts();
                }
                next.run(req).await
            },
        ))
        .layer(LlmLogLayer::new(sink.clone()));
    let addr = serve(app).await;
    let (status, _) = post_in_pieces(addr, STREAM_REQUEST).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(*seen_by_handler.lock().unwrap(), 0);
    let records = wait_records(&sink, 2).await;
    let rq = request_record(&records);
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4o-mini"));
    assert!(rq.messages_str().contains("Say hi"));
    let rs = response_record(&records);
    assert_eq!((rs.outcome, rs.status_code), (Outcome::UpstreamError, Some(401)));
}

/// A small helper so the auth middleware above can return early with a plain response.
trait IntoResponseParts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl IntoResponseParts for (StatusCode, &'static str) {
    fn into_response_parts(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

/// A body of given frames, then trailers or an error.
struct Scripted {
    frames: Vec<Bytes>,
    end: End,
}

enum End {
    Trailers(HeaderMap),
    Error(&'static str),
    Done,
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if !self.frames.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(self.frames.remove(0)))));
        }
        Poll::Ready(match std::mem::replace(&mut self.end, End::Done) {
            End::Trailers(t) => Some(Ok(Frame::trailers(t))),
            End::Error(e) => Some(Err(std::io::Error::other(e))),
            End::Done => None,
        })
    }
}

/// What the inner service received: each frame's data (pointer and bytes) or trailers, and
/// the error the body ended with.
#[derive(Default, Debug)]
struct Received {
    frames: Vec<(usize, Bytes)>,
    trailers: Option<HeaderMap>,
    error: Option<String>,
}

async fn receive(body: LlmLogBody<Scripted>) -> Received {
    let mut got = Received::default();
    let mut body = body;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => got.frames.push((data.as_ptr() as usize, data)),
                Err(frame) => got.trailers = frame.into_trailers().ok(),
            },
            Err(e) => {
                got.error = Some(e.to_string());
                break;
            }
        }
    }
    got
}

/// Runs one request with `body` through the layer (read-ahead `bound`) to an inner service
/// that reads it all; returns what the inner service received and the records.
async fn through_the_layer(body: Scripted, bound: usize) -> (Received, Vec<LlmLogRecord>) {
    let sink = MemorySink::new();
    let config = LogConfig::builder().request_read_ahead(bound).build().unwrap();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let received = Arc::new(Mutex::new(None));
    let slot = received.clone();
    let inner = service_fn(move |req: Request<LlmLogBody<Scripted>>| {
        let slot = slot.clone();
        async move {
            *slot.lock().unwrap() = Some(receive(req.into_body()).await);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                CHAT_RESPONSE.as_bytes(),
            ))))
        }
    });
    let req = Request::post("/v1/chat/completions").body(body).unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let _ = res.into_body().collect().await;
    let got = received
        .lock()
        .unwrap()
        .take()
        .expect("the inner service was called");
    (got, sink.take())
}

fn joined(r: &Received) -> Vec<u8> {
    r.frames.iter().flat_map(|(_, b)| b.to_vec()).collect()
}

#[tokio::test]
async fn large_frames_reach_the_inner_service_as_the_same_bytes_with_trailers() {
    let frames: Vec<Bytes> = {
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "x".repeat(200_000)
        );
        body.as_bytes()
            .chunks(64 * 1024)
            .map(Bytes::copy_from_slice)
            .collect()
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "abc".parse().unwrap());
    for bound in [4 << 20, 100_000, 0] {
        let body = Scripted {
            frames: frames.clone(),
            end: End::Trailers(trailers.clone()),
        };
        let (got, records) = through_the_layer(body, bound).await;
        assert_eq!(got.frames.len(), frames.len(), "bound {bound}");
        for ((ptr, data), sent) in got.frames.iter().zip(&frames) {
            assert_eq!(
                *ptr,
                sent.as_ptr() as usize,
                "the very same bytes (bound {bound})"
            );
            assert_eq!(data, sent);
        }
        assert_eq!(got.trailers.as_ref().unwrap()["x-checksum"], "abc");
        let rq = request_record(&records);
        assert_eq!(rq.outcome, Outcome::Completed, "bound {bound}");
        assert_eq!(rq.model_name.as_deref(), Some("m"));
        assert_eq!(rq.message_bytes, 200_030);
    }
}

#[tokio::test]
async fn small_frames_are_joined_but_the_bytes_are_the_same() {
    let body = CHAT_REQUEST.as_bytes().to_vec();
    for size in [1usize, 7, 100] {
        let frames: Vec<Bytes> = body.chunks(size).map(Bytes::copy_from_slice).collect();
        let (got, records) = through_the_layer(
            Scripted {
                frames: frames.clone(),
                end: End::Done,
            },
            4 << 20,
        )
        .await;
        assert_eq!(joined(&got), body, "frames of {size}");
        assert!(got.frames.len() <= frames.len());
        assert!(got.frames.iter().all(|(_, b)| !b.is_empty()));
        assert_eq!(
            request_record(&records).model_name.as_deref(),
            Some("gpt-4o-mini")
        );
    }
}

#[tokio::test]
async fn a_body_error_reaches_the_inner_service_after_the_frames_read_ahead() {
    let frames = vec![Bytes::from_static(br#"{"model":"m","messages":[{"role":"us"#)];
    for bound in [4 << 20, 10] {
        let (got, records) = through_the_layer(
            Scripted {
                frames: frames.clone(),
                end: End::Error("connection reset"),
            },
            bound,
        )
        .await;
        assert_eq!(joined(&got), frames[0], "bound {bound}");
        assert_eq!(got.error.as_deref(), Some("connection reset"));
        let rq = request_record(&records);
        assert_eq!(rq.outcome, Outcome::BodyError);
        assert_eq!(
            rq.error.as_deref(),
            Some("the request body failed after 36 bytes: connection reset")
        );
        assert_eq!(rq.model_name.as_deref(), Some("m"));
    }
}

#[tokio::test]
async fn a_body_longer_than_the_bound_is_read_up_to_it_and_the_rest_streams() {
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}],"model":"late"}}"#,
        "y".repeat(50_000)
    );
    let frames: Vec<Bytes> = body.as_bytes().chunks(5000).map(Bytes::copy_from_slice).collect();
    let (got, records) = through_the_layer(
        Scripted {
            frames,
            end: End::Done,
        },
        12_000,
    )
    .await;
    assert_eq!(joined(&got), body.as_bytes());
    let rq = request_record(&records);
    assert_eq!(rq.outcome, Outcome::Completed);
    assert_eq!(
        rq.model_name.as_deref(),
        Some("late"),
        "the rest was tapped as it streamed"
    );
    assert_eq!(rq.message_bytes, 50_030);
}

/// A tower layer that grants readiness once per instance: calling an instance that was not
/// made ready panics, as `ConcurrencyLimit` and `Buffer` do.
#[derive(Clone)]
struct ReadyOnce<S> {
    inner: S,
    ready: bool,
}

impl<S: tower::Service<R>, R> tower::Service<R> for ReadyOnce<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.ready = true;
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        assert!(std::mem::take(&mut self.ready), "called without poll_ready");
        self.inner.call(req)
    }
}

impl<S: Clone> ReadyOnce<S> {
    fn new(inner: S) -> Self {
        ReadyOnce { inner, ready: false }
    }
}

#[tokio::test]
async fn the_instance_made_ready_serves_the_request_read_ahead() {
    let sink = MemorySink::new();
    let inner = ReadyOnce::new(service_fn(|req: Request<LlmLogBody<Full<Bytes>>>| async move {
        let _ = req.into_body().collect().await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            CHAT_RESPONSE.as_bytes(),
        ))))
    }));
    let mut service = LlmLogLayer::new(sink.clone()).layer(inner);
    for _ in 0..3 {
        let req = Request::post("/v1/chat/completions")
            .body(Full::new(Bytes::from_static(CHAT_REQUEST.as_bytes())))
            .unwrap();
        let ready = service.ready().await.unwrap();
        let res = ready.call(req).await.unwrap();
        let _ = res.into_body().collect().await;
    }
    assert_eq!(sink.take().len(), 6);
}

#[tokio::test]
async fn a_client_that_stops_sending_and_leaves_gets_a_record_of_what_arrived() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route("/v1/chat/completions", post(|body: Bytes| async move { body }))
        .layer(LlmLogLayer::new(sink.clone()));
    let addr = serve(app).await;
    // Half a request, announced longer, then the connection is closed.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let half = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"unfinis"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{half}"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
        .await
        .unwrap();
    // The bytes sent arrive before the close does, so the server reads the half, then the end
    // of the connection where the rest should be.
    drop(stream);
    let records = wait_records(&sink, 2).await;
    let rq = request_record(&records);
    assert_eq!(rq.outcome, Outcome::BodyError, "{:?}", rq.error);
    assert!(
        rq.error
            .as_deref()
            .unwrap()
            .starts_with(&format!("the request body failed after {} bytes", half.len())),
        "{:?}",
        rq.error
    );
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4o"));
    assert!(rq.truncated || rq.messages_str().starts_with(r#"[{"role":"user""#));
}

#[tokio::test]
async fn an_exchange_dropped_while_its_body_is_still_arriving_is_request_incomplete() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Frame<Bytes>, Infallible>>();
    tx.send(Ok(Frame::data(Bytes::from_static(
        br#"{"model":"gpt-4o","messages":["#,
    ))))
    .unwrap();
    let rx = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
    let inner = service_fn(|req: Request<LlmLogBody<StreamBody<_>>>| async move {
        let _ = req.into_body().collect().await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let service = layer.layer(inner);
    let req = Request::post("/v1/chat/completions")
        .body(StreamBody::new(rx))
        .unwrap();
    // As a timeout layer outside would: give up on the exchange while the body is pending.
    let outcome = tokio::time::timeout(Duration::from_millis(20), service.oneshot(req)).await;
    assert!(
        outcome.is_err(),
        "the body never ends, so neither does the exchange"
    );
    let records = sink.take();
    let rq = request_record(&records);
    assert_eq!(rq.outcome, Outcome::RequestIncomplete);
    assert_eq!(
        rq.error.as_deref(),
        Some("the request body was still arriving after 30 bytes when the exchange was dropped")
    );
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4o"));
    assert_eq!(response_record(&records).outcome, Outcome::ClientDisconnected);
    drop(tx);
}

#[tokio::test]
async fn the_gateway_answer_for_an_unreachable_upstream_does_not_echo_the_url() {
    let sink = MemorySink::new();
    let addr = gateway_to_nowhere(&sink).await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(format!(
        "http://{addr}/openai/deployments/d/chat/completions?api-version=2024-10-21&api-key=s3cr3t-key-value"
    ))
    .header(CONTENT_TYPE, "application/json")
    .body(Full::new(Bytes::from_static(CHAT_REQUEST.as_bytes())))
    .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("upstream unreachable"), "{text}");
    assert!(!text.contains("s3cr3t") && !text.contains("api-key"), "{text}");
    let records = wait_records(&sink, 2).await;
    assert!(records.iter().all(|r| !r.messages_str().contains("s3cr3t")));
}
