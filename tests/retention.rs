//! What the layer holds per exchange, measured: the live heap of the thread that runs the
//! exchange, counted by a global allocator, while the exchange is open (the request read, the
//! response half streamed). It must stay within
//!
//! ```text
//! prompt cap + completion cap × 5/4 + 128 KiB
//! ```
//!
//! whatever the framing: bodies sent 1 byte, 7 bytes or 64 KiB at a time, or whole; SSE streams
//! of many small events, of a thousand parts, or with one event far past the parse limit. The
//! 5/4 is what an assembled stream's text buffers may grow to when many parts grow at once (one
//! part stays within the cap: `assemble.rs`). The 128 KiB covers the SSE parser's event buffer
//! (at most 64 KiB while an event is being read), the bookkeeping of at most 256 parts (about
//! 50 KiB with every field at its longest), the scanner's scalars (at most 16 KiB) and the
//! exchange's own state (a few KiB); measured, the worst case here is about 120 KiB.
//!
//! Frames are cut from 64 KiB buffers that the body allocates as it goes, as a server's read
//! buffer is cut, so a slice the logger keeps pins its whole buffer, and is counted: with
//! 1-byte frames, the message's first byte is kept without copying (so that a message in one
//! small frame costs no copy) and pins one such buffer, which is most of what 1-byte framing
//! costs beyond whole frames here (133 KB against 67 KB at the default caps). Everything
//! runs on one thread (a current-thread runtime, polled here), so the count is exact: no other
//! test or thread adds to it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::{LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, Outcome, RecordKind};

/// Counts the live heap bytes of each thread (what a thread allocates and frees).
struct PerThread;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn add(bytes: i64) {
    // `try_with`: a thread being torn down has no counter any more.
    let _ = LIVE.try_with(|l| l.set(l.get() + bytes));
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PerThread = PerThread;

thread_local! {
    /// The size of the buffer the response body is cutting frames from right now: the body's
    /// own memory, not the logger's (unless the logger pins it after the body moves on).
    static CUTTING: Cell<i64> = const { Cell::new(0) };
}

/// Live heap bytes of this thread, less the response body's own current buffer.
fn live() -> i64 {
    LIVE.with(Cell::get) - CUTTING.with(Cell::get)
}

const KIB: usize = 1024;
/// The size of the buffers frames are cut from.
const WINDOW: usize = 64 * KIB;

/// A body whose frames are cut `frame` bytes at a time from 64 KiB buffers it allocates as it
/// goes (copied from a source made before the measurement starts).
struct Sliced {
    source: Arc<Vec<u8>>,
    at: usize,
    frame: usize,
    window: Bytes,
    /// Whether this is the response body, whose current buffer `live` leaves out.
    response: bool,
}

impl Sliced {
    fn new(source: Arc<Vec<u8>>, frame: usize) -> Self {
        Sliced {
            source,
            at: 0,
            frame,
            window: Bytes::new(),
            response: false,
        }
    }

    fn response(mut self) -> Self {
        self.response = true;
        self
    }
}

impl Body for Sliced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.window.is_empty() {
            if self.at == self.source.len() {
                return Poll::Ready(None);
            }
            // A frame larger than a window gets a buffer of its own size, as a large read does.
            let size = WINDOW.max(self.frame).min(self.source.len() - self.at);
            let at = self.at;
            self.window = Bytes::copy_from_slice(&self.source[at..at + size]);
            self.at += size;
            if self.response {
                CUTTING.with(|c| c.set(size as i64));
            }
        }
        let n = self.frame.min(self.window.len());
        let frame = self.window.split_to(n);
        if self.response && self.window.is_empty() {
            CUTTING.with(|c| c.set(0));
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.window.is_empty() && self.at == self.source.len()
    }
}

/// What the sink saw, without keeping the records (they would count as held memory).
#[derive(Default)]
struct Seen {
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    records: AtomicU64,
    completed: AtomicU64,
}

fn sink(seen: &Arc<Seen>) -> impl Fn(LlmLogRecord) + Send + Sync + 'static {
    let seen = seen.clone();
    move |r: LlmLogRecord| {
        seen.records.fetch_add(1, Ordering::Relaxed);
        let counter = match r.kind {
            RecordKind::Request => &seen.request_bytes,
            RecordKind::Response => &seen.response_bytes,
        };
        counter.fetch_add(r.messages.len() as u64, Ordering::Relaxed);
        if r.is_last && r.kind == RecordKind::Response && r.outcome == Outcome::Completed {
            seen.completed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A chat request whose one message is `text_bytes` long.
fn chat_request(text_bytes: usize) -> Vec<u8> {
    format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}],"model":"gpt-4o","stream":true}}"#,
        "p".repeat(text_bytes)
    )
    .into_bytes()
}

/// A chat completion stream of `events` chunks of `delta` bytes each.
fn chat_stream(events: usize, delta: usize) -> Vec<u8> {
    let text = "c".repeat(delta);
    let mut s = String::new();
    for i in 0..events {
        s += &format!(
            "data: {{\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":{}}}]}}\n\n",
            if i + 1 == events { "\"stop\"" } else { "null" }
        );
    }
    s += "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\ndata: [DONE]\n\n";
    s.into_bytes()
}

/// A stream of `parts` tool calls with long ids, types, names and arguments, `per_chunk` to a
/// chunk (each chunk within the parse limit).
fn many_parts_stream(parts: usize, per_chunk: usize) -> Vec<u8> {
    let mut s = String::new();
    for c in 0..parts / per_chunk {
        let calls: Vec<String> = (c * per_chunk..(c + 1) * per_chunk)
            .map(|i| {
                format!(
                    r#"{{"index":{i},"id":"call_{c}_{}","type":"{}","function":{{"name":"{}","arguments":"{}"}}}}"#,
                    "i".repeat(300),
                    "t".repeat(300),
                    "n".repeat(300),
                    "a".repeat(400)
                )
            })
            .collect();
        s += &format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"{}\",\"tool_calls\":[{}]}}}}]}}\n\n",
            "r".repeat(300),
            calls.join(",")
        );
    }
    s += "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
    s.into_bytes()
}

/// Small events, one event of `huge` bytes (past the parse limit when over 64 KiB), then small
/// events again.
fn one_huge_event_stream(huge: usize) -> Vec<u8> {
    let mut s = String::from_utf8(chat_stream(20, 10)).unwrap();
    s.truncate(s.find("data: {\"choices\":[]").unwrap());
    s = s.replace("\"stop\"", "null");
    s += &format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
        "h".repeat(huge)
    );
    s += &String::from_utf8(chat_stream(2000, 10)).unwrap();
    s.into_bytes()
}

/// One exchange, measured. Returns the most live heap the layer held at the measuring points
/// (after the request was read, and after each response frame from the middle of the stream
/// on), beyond what was live before it started.
fn held_by_one_exchange(
    caps: usize,
    request: &Arc<Vec<u8>>,
    request_frame: usize,
    response: &Arc<Vec<u8>>,
    response_frame: usize,
) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let seen = Arc::new(Seen::default());
    let config = LogConfig::builder()
        .prompt_bytes(caps)
        .completion_bytes(caps)
        .build()
        .unwrap();
    let layer = LlmLogLayer::new(sink(&seen)).with_config(config);
    let response_len = response.len();
    let response = response.clone();
    let inner = service_fn(move |req: Request<LlmLogBody<Sliced>>| {
        let response = response.clone();
        async move {
            // Read the whole request, keeping nothing, as a proxy forwarding it would.
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                drop(frame);
            }
            Ok::<_, Infallible>(
                Response::builder()
                    .header(CONTENT_TYPE, "text/event-stream")
                    .body(Sliced::new(response, response_frame).response())
                    .unwrap(),
            )
        }
    });
    let request = Request::post("/v1/chat/completions")
        .header(CONTENT_TYPE, "application/json")
        .body(Sliced::new(request.clone(), request_frame))
        .unwrap();
    warm_up_the_secret_detectors();
    let held = runtime.block_on(async move {
        let before = live();
        let service = layer.layer(inner);
        let res = service.oneshot(request).await.unwrap();
        let mut most = live() - before;
        let mut body = res.into_body();
        let mut passed = 0usize;
        while let Some(frame) = body.frame().await {
            passed += frame.unwrap().into_data().map_or(0, |d| d.len());
            if passed >= response_len / 2 {
                most = most.max(live() - before);
            }
        }
        drop(body);
        most
    });
    assert_eq!(
        seen.completed.load(Ordering::Relaxed),
        1,
        "the exchange completed"
    );
    held
}

/// The secret detectors are built once per process, and each keeps a search cache per thread
/// that uses it: memory of the process, not of any exchange. Made here before measuring.
fn warm_up_the_secret_detectors() {
    let every_kind = "-----BEGIN PRIVATE KEY-----x-----END PRIVATE KEY----- sk-ant-abcdefghijklmnopqrstuvwxyz sk-abcdefghijklmnopqrstuvwxyz AIzaSyA1234567890abcdefghijklmnopqrstuv AKIAIOSFODNN7EXAMPLE ghp_abcdefghijklmnopqrstuvwxyz0123456789 xoxb-1234567890-abc eyJabcdefghij.eyJabcdefghij.abcdefghij Bearer abcdefghijklmnopqrstuvwxyz ?key=x";
    assert!(tower_llm_log::privacy::redact_secrets(every_kind.as_bytes()).is_some());
}

fn allowed(caps: usize) -> i64 {
    (caps + caps * 5 / 4 + 128 * KIB) as i64
}

fn check(
    name: &str,
    caps: usize,
    request: &Arc<Vec<u8>>,
    response: &Arc<Vec<u8>>,
    framings: &[(usize, usize)],
) {
    for &(request_frame, response_frame) in framings {
        let held = held_by_one_exchange(caps, request, request_frame, response, response_frame);
        println!(
            "{name}, caps {caps} B, frames of {request_frame} B / {response_frame} B: {held} B held (allowed {} B)",
            allowed(caps)
        );
        assert!(
            held <= allowed(caps),
            "{name}, caps {caps}, frames {request_frame}/{response_frame}: {held} B held, more than {} B",
            allowed(caps)
        );
    }
}

#[test]
fn a_body_sent_one_byte_at_a_time_costs_no_more_than_its_caps() {
    let caps = 32 * KIB;
    let request = Arc::new(chat_request(300 * KIB));
    let response = Arc::new(chat_stream(30_000, 10));
    check(
        "chat, default caps",
        caps,
        &request,
        &response,
        &[(1, 1), (7, 7), (64 * KIB, 64 * KIB), (usize::MAX, usize::MAX)],
    );
}

#[test]
fn bodies_past_the_largest_caps_cost_no_more_than_the_caps_in_any_framing() {
    let caps = tower_llm_log::config::MAX_MESSAGE_BYTES;
    let request = Arc::new(chat_request(caps + 200 * KIB));
    let response = Arc::new(chat_stream(25_000, 100));
    check(
        "chat, 2 MiB caps",
        caps,
        &request,
        &response,
        &[(1, 7), (7, 1), (64 * KIB, 64 * KIB), (usize::MAX, usize::MAX)],
    );
}

#[test]
fn a_thousand_parts_with_long_strings_cost_no_more_than_the_caps() {
    let request = Arc::new(chat_request(1000));
    let response = Arc::new(many_parts_stream(1024, 40));
    assert!(response.len() > 1 << 20);
    for caps in [32 * KIB, 512 * KIB] {
        check(
            "1,024 parts",
            caps,
            &request,
            &response,
            &[(usize::MAX, 7), (usize::MAX, 64 * KIB)],
        );
    }
}

#[test]
fn a_huge_event_leaves_no_parser_buffers_behind() {
    let request = Arc::new(chat_request(1000));
    for huge in [60 * KIB, 250 * KIB, 3 << 20] {
        let response = Arc::new(one_huge_event_stream(huge));
        check(
            "one huge event",
            32 * KIB,
            &request,
            &response,
            &[
                (usize::MAX, 1000),
                (usize::MAX, 64 * KIB),
                (usize::MAX, usize::MAX),
            ],
        );
    }
}

#[test]
fn nothing_is_left_once_the_exchange_and_its_records_are_gone() {
    let request = Arc::new(chat_request(100 * KIB));
    let response = Arc::new(chat_stream(5000, 10));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // A first exchange warms what is made once (the runtime's and the layer's lazy state).
    let seen = Arc::new(Seen::default());
    let layer = LlmLogLayer::new(sink(&seen));
    let run = |layer: &LlmLogLayer| {
        let response = response.clone();
        let inner = service_fn(move |req: Request<LlmLogBody<Sliced>>| {
            let response = response.clone();
            async move {
                let _ = req.into_body().collect().await;
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(CONTENT_TYPE, "text/event-stream")
                        .body(Sliced::new(response, 7).response())
                        .unwrap(),
                )
            }
        });
        let request = Request::post("/v1/chat/completions")
            .body(Sliced::new(request.clone(), 7))
            .unwrap();
        runtime.block_on(async {
            let res = layer.layer(inner).oneshot(request).await.unwrap();
            let _ = res.into_body().collect().await.unwrap();
        });
    };
    run(&layer);
    warm_up_the_secret_detectors();
    let before = live();
    for _ in 0..5 {
        run(&layer);
    }
    assert_eq!(seen.completed.load(Ordering::Relaxed), 6);
    assert_eq!(layer.stats().exchanges_open(), 0);
    assert_eq!(live() - before, 0, "every byte the exchanges took was given back");
}
