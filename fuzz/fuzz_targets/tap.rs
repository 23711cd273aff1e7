//! The whole layer: any request and response bodies of every API family, JSON or event stream,
//! success or error, cut into frames anywhere, the response read to its end or dropped part-way.
//!
//! Invariants (a violation panics, which libFuzzer reports as a crash):
//! - no panic on any input;
//! - the traffic passes exactly: the inner service gets the request body unchanged, and the
//!   client reads a prefix of the response body (all of it when read to the end);
//! - each side logs exactly one message: its records have sequence numbers 0, 1, ... in the
//!   order emitted and exactly one `is_last`, the final one;
//! - each chunk is valid UTF-8, at most `chunk_bytes` (or one character, when that is longer),
//!   and the message they make up is at most the cap; `message_bytes` and `truncated` agree
//!   with it and are the same on every chunk;
//! - outcomes and status follow from how the exchange went;
//! - when everything is dropped, no exchange is left open and every record reached the sink.
//!
//! The layer needs no runtime: `block_on` drives it, and records go out synchronously when a
//! body ends or is dropped.

#![no_main]

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use arbitrary::Arbitrary;
use bytes::Bytes;
use futures::executor::block_on;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};
use tower_llm_log::{
    LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, Outcome, RecordKind,
};

#[derive(Debug, Arbitrary)]
struct Input {
    family: u8,
    status_400: bool,
    sse: bool,
    cap: u16,
    request: Vec<u8>,
    req_splits: Vec<u16>,
    response: Vec<u8>,
    res_splits: Vec<u16>,
    /// Drop the response body after this many frames (the client went away).
    drop_after: Option<u8>,
    /// Stop polling once `is_end_stream()` is true, as hyper does, instead of polling to `None`:
    /// the tap must then report when the body is dropped.
    stop_at_end_stream: bool,
}

const PATHS: [&str; 5] = [
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/messages",
];

/// A body of given frames that says it has ended as soon as the last frame is out, as `Full`
/// and hyper's bodies do.
struct Frames(VecDeque<Bytes>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|f| Ok(Frame::data(f))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|f| f.len() as u64).sum())
    }
}

/// The frames of a body. An empty body with no cut points has no frames at all: it has ended
/// before it is polled, which the layer handles apart from a body that yields an empty frame.
fn frames_of(whole: &Bytes, splits: &[u16]) -> Vec<Bytes> {
    if whole.is_empty() && splits.is_empty() {
        return Vec::new();
    }
    common::cut(whole, splits)
}

/// Checks the records of one side; returns them for the side-specific checks.
fn check_side<'a>(
    records: &'a [LlmLogRecord],
    kind: RecordKind,
    cap: usize,
    chunk_bytes: usize,
) -> Vec<&'a LlmLogRecord> {
    let side: Vec<&LlmLogRecord> = records.iter().filter(|r| r.kind == kind).collect();
    assert!(!side.is_empty(), "no {kind:?} record");
    for (i, r) in side.iter().enumerate() {
        assert_eq!(r.sequence_number as usize, i, "{kind:?} sequence numbers");
    }
    assert_eq!(
        side.iter().filter(|r| r.is_last).count(),
        1,
        "{kind:?}: one message, so exactly one is_last"
    );
    assert!(side[side.len() - 1].is_last, "{kind:?}: is_last is not on the final record");

    let first = side[0];
    let mut text = Vec::new();
    for r in &side {
        assert!(
            std::str::from_utf8(&r.messages).is_ok(),
            "{kind:?} chunk {} is not UTF-8: {:?}",
            r.sequence_number,
            r.messages
        );
        // A chunk holds a whole character even when that is longer than chunk_bytes.
        assert!(
            r.messages.len() <= chunk_bytes.max(4),
            "{kind:?} chunk of {} bytes with chunk_bytes {chunk_bytes}",
            r.messages.len()
        );
        // Only an empty message is logged as one empty record.
        assert!(side.len() == 1 || !r.messages.is_empty(), "{kind:?}: an empty chunk");
        assert_eq!(r.message_bytes, first.message_bytes, "{kind:?}: message_bytes varies");
        assert_eq!(r.truncated, first.truncated, "{kind:?}: truncated varies");
        assert_eq!(r.outcome, first.outcome, "{kind:?}: outcome varies");
        text.extend_from_slice(&r.messages);
    }
    assert!(
        text.len() <= cap,
        "{kind:?}: logged {} bytes with a cap of {cap}",
        text.len()
    );
    let text = std::str::from_utf8(&text).expect("chunks cut at character boundaries");
    // Replacing invalid UTF-8 with U+FFFD can make the text longer than the message was, and
    // always marks it truncated; only without replacements must the sizes agree exactly.
    if text.contains('\u{FFFD}') {
        assert!(
            text.len() as u64 <= 3 * first.message_bytes,
            "{kind:?}: {} bytes logged of a {}-byte message",
            text.len(),
            first.message_bytes
        );
    } else {
        assert!(
            text.len() as u64 <= first.message_bytes,
            "{kind:?}: {} bytes logged of a {}-byte message",
            text.len(),
            first.message_bytes
        );
        assert!(
            text.len() as u64 == first.message_bytes || first.truncated,
            "{kind:?}: {} bytes logged of a {}-byte message, not marked truncated",
            text.len(),
            first.message_bytes
        );
    }
    side
}

fuzz_target!(|input: Input| {
    let cap = usize::from(input.cap);
    let chunk_bytes = cap.max(1);
    let config = LogConfig::builder()
        .prompt_bytes(cap)
        .completion_bytes(cap)
        .chunk_bytes(chunk_bytes)
        .build()
        .expect("caps within range");
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);

    let request = Bytes::from(input.request.clone());
    let response = Bytes::from(input.response.clone());
    let req_frames = frames_of(&request, &input.req_splits);
    let res_frames = frames_of(&response, &input.res_splits);
    let status = if input.status_400 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };

    let inner = {
        let request = request.clone();
        let sse = input.sse;
        tower::service_fn(move |req: Request<LlmLogBody<Frames>>| {
            let request = request.clone();
            let res_frames = res_frames.clone();
            async move {
                // The whole request is read, so the request side always ends Completed.
                let got = req
                    .into_body()
                    .collect()
                    .await
                    .unwrap_or_else(|e| match e {})
                    .to_bytes();
                assert_eq!(got, request, "the request body was changed on its way through");
                let mut res = Response::new(Frames(res_frames.into()));
                *res.status_mut() = status;
                if sse {
                    res.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                }
                Ok::<_, Infallible>(res)
            }
        })
    };

    let (read, at_end) = block_on(async {
        let req = Request::post(PATHS[usize::from(input.family % 5)])
            .body(Frames(req_frames.into()))
            .expect("a valid request");
        let res = layer
            .layer(inner)
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(res.status(), status);
        let mut body = res.into_body();
        let mut read = Vec::new();
        let mut frames_read = 0usize;
        loop {
            if input.drop_after.is_some_and(|n| frames_read >= usize::from(n)) {
                break;
            }
            if input.stop_at_end_stream && body.is_end_stream() {
                break;
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    frames_read += 1;
                    if let Ok(data) = frame.into_data() {
                        read.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => match e {},
                None => break,
            }
        }
        // Every frame is out exactly when the body says it has ended (Frames yields no
        // trailers), which is when the tap counts the body as read to its end.
        let at_end = body.is_end_stream();
        drop(body); // the response side reports now
        (read, at_end)
    });

    assert!(
        response.starts_with(&read),
        "the client read bytes that are not the response's"
    );
    if at_end {
        assert_eq!(read.len(), response.len(), "the response was read to its end but is short");
    }

    let records = sink.take();
    let requests = check_side(&records, RecordKind::Request, cap, chunk_bytes);
    let responses = check_side(&records, RecordKind::Response, cap, chunk_bytes);
    assert_eq!(
        requests.len() + responses.len(),
        records.len(),
        "records of another kind"
    );
    let id = &records[0].correlation_id;
    assert!(
        records.iter().all(|r| &r.correlation_id == id),
        "one exchange, one correlation id"
    );

    assert_eq!(requests[0].outcome, Outcome::Completed);
    assert_eq!(requests[0].status_code, None);
    let expected = match (at_end, input.status_400) {
        (false, _) => Outcome::ClientDisconnected,
        (true, true) => Outcome::UpstreamError,
        (true, false) => Outcome::Completed,
    };
    assert_eq!(responses[0].outcome, expected);
    for r in &responses {
        assert_eq!(r.status_code, Some(status.as_u16()));
        // An error body is kept as it is, whatever its content type.
        assert_eq!(r.is_stream_completion, input.sse && !input.status_400);
    }

    let stats = layer.stats();
    assert_eq!(stats.exchanges_open(), 0, "an exchange was left open: {stats:?}");
    assert_eq!(stats.records_emitted, records.len() as u64);
    assert_eq!(stats.sink_panics, 0);
});
