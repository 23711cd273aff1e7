//! What the MCP tests share: the server's answers and the fixtures.

use http::header::CONTENT_TYPE;
use http::Response;

/// A fixture of `tests/fixtures/mcp`.
pub fn mcp_fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/mcp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// What the MCP server answers.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Answer {
    /// The answer with `body`.
    pub fn with<B>(&self, body: B) -> Response<B> {
        let mut res = Response::builder().status(self.status);
        if let Some(ct) = self.content_type {
            res = res.header(CONTENT_TYPE, ct);
        }
        for (name, value) in &self.headers {
            res = res.header(*name, *value);
        }
        res.body(body).expect("a valid answer")
    }
}

/// `200`, `application/json`.
pub fn json() -> Answer {
    Answer {
        status: 200,
        content_type: Some("application/json"),
        headers: Vec::new(),
    }
}

/// `200`, `text/event-stream`.
pub fn sse() -> Answer {
    Answer {
        content_type: Some("text/event-stream"),
        ..json()
    }
}

/// `202 Accepted`, no body.
pub fn accepted() -> Answer {
    Answer {
        status: 202,
        content_type: None,
        headers: Vec::new(),
    }
}

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request};
use http_body::Body;
use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::{LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, RecordKind};

use super::{one, Frames};

/// One exchange through `layer`: `(method, path)` with `request` and `headers`, answered with
/// `answer` in `body`. Returns the first 64 KiB the client got and the records. The answer is
/// drained frame by frame, not collected: a stream of millions of frames must not cost the test
/// their bookkeeping.
pub async fn exchange_with<B>(
    layer: LlmLogLayer,
    sink: &MemorySink,
    (method, path): (Method, &str),
    headers: &[(&str, &str)],
    request: &[u8],
    answer: Answer,
    body: B,
) -> (Bytes, Vec<LlmLogRecord>)
where
    B: Body<Data = Bytes, Error = Infallible> + Send + Sync + Unpin + 'static,
{
    let body = std::sync::Arc::new(std::sync::Mutex::new(Some(body)));
    let inner = service_fn(move |req: Request<LlmLogBody<Frames>>| {
        let (body, answer) = (body.lock().unwrap().take().expect("one request"), answer.clone());
        async move {
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(answer.with(body))
        }
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Frames::new([Bytes::copy_from_slice(request)])).unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let mut body = res.into_body();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            let room = (64usize << 10).saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    drop(body);
    (Bytes::from(kept), sink.take())
}

/// A `POST /mcp` with `headers` through a layer with `config`, answered in `body`.
pub async fn post_config<B>(
    config: LogConfig,
    headers: &[(&str, &str)],
    request: &[u8],
    answer: Answer,
    body: B,
) -> Vec<LlmLogRecord>
where
    B: Body<Data = Bytes, Error = Infallible> + Send + Sync + Unpin + 'static,
{
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    exchange_with(
        layer,
        &sink,
        (Method::POST, "/mcp"),
        headers,
        request,
        answer,
        body,
    )
    .await
    .1
}

/// A `POST /mcp` answered with `body` in one frame.
pub async fn post(request: &[u8], answer: Answer, body: &[u8]) -> Vec<LlmLogRecord> {
    post_with(&[], request, answer, Frames::new([Bytes::copy_from_slice(body)])).await
}

/// A `POST /mcp` with `headers`, answered in `frames`.
pub async fn post_with(
    headers: &[(&str, &str)],
    request: &[u8],
    answer: Answer,
    frames: Frames,
) -> Vec<LlmLogRecord> {
    post_config(LogConfig::default(), headers, request, answer, frames).await
}

/// Runs an answer whole, split in two at every byte (every seventh past 3,000 bytes), and a
/// byte at a time; every run must log what the whole one logs. Returns the whole run's request
/// and response records.
pub async fn every_split(request: &[u8], answer: Answer, body: &[u8]) -> (LlmLogRecord, LlmLogRecord) {
    let records = post(request, answer.clone(), body).await;
    let whole = one(&records, RecordKind::Response);
    let request_record = one(&records, RecordKind::Request);
    let same = |r: &LlmLogRecord, how: &str| {
        assert_eq!(r.messages, whole.messages, "{how}");
        assert_eq!(
            (
                &r.error,
                r.outcome,
                r.stream_events,
                &r.request_id,
                r.media_elided
            ),
            (
                &whole.error,
                whole.outcome,
                whole.stream_events,
                &whole.request_id,
                whole.media_elided
            ),
            "{how}"
        );
    };
    let step = if body.len() > 3000 { 7 } else { 1 };
    for at in (0..=body.len()).step_by(step) {
        let records = post_with(&[], request, answer.clone(), Frames::split(body, &[at])).await;
        same(&one(&records, RecordKind::Response), &format!("split at {at}"));
    }
    let bytes: Vec<Bytes> = body.chunks(1).map(Bytes::copy_from_slice).collect();
    let records = post_with(&[], request, answer, Frames::new(bytes)).await;
    same(&one(&records, RecordKind::Response), "one byte at a time");
    (request_record, whole)
}

/// An event-stream body fed through a channel: open for as long as its sender lives.
pub type OpenStream = http_body_util::StreamBody<
    tokio_stream::wrappers::ReceiverStream<Result<http_body::Frame<Bytes>, Infallible>>,
>;

/// What feeds an [`OpenStream`].
pub type StreamFeed = tokio::sync::mpsc::Sender<Result<http_body::Frame<Bytes>, Infallible>>;

/// An MCP server whose one answer is an event stream it keeps open (a server that has not ended
/// it yet): the sender feeds its frames.
pub fn open_stream_server() -> (
    StreamFeed,
    impl tower::Service<
            Request<LlmLogBody<Frames>>,
            Response = http::Response<OpenStream>,
            Error = Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let rx = std::sync::Arc::new(std::sync::Mutex::new(Some(rx)));
    let inner = service_fn(move |req: Request<LlmLogBody<Frames>>| {
        let rx = rx.lock().unwrap().take().expect("one request");
        async move {
            let _ = req.into_body().collect().await;
            let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
            Ok::<_, Infallible>(sse().with(body))
        }
    });
    (tx, inner)
}
