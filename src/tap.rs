//! The request and response taps: what each side does with the frames that pass, and how it
//! reports when its body ends, fails, or is dropped.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;

use crate::api::openai::{self, ChatStreamAssembler};
use crate::capture::{Capture, Captured};
use crate::exchange::{Exchange, SideReport};
use crate::scan::json::JsonScanner;
use crate::scan::sse::SseParser;
use crate::{Outcome, RecordKind};

/// The smallest limit on one SSE event's data; larger when the completion cap is larger.
const MIN_SSE_EVENT_LIMIT: usize = 256 * 1024;

/// How a side's body ended, as far as the tap knows.
#[derive(Debug)]
enum End {
    Open,
    Ended,
    Failed(String),
    Reported,
}

/// How far a body has got.
#[derive(Debug)]
struct Progress {
    bytes: u64,
    /// The length announced by `Content-Length` (or an exact size hint): a body of known length
    /// has ended when that many bytes have passed, even if nobody polls it again (hyper stops
    /// there).
    expected: Option<u64>,
    end: End,
}

impl Progress {
    fn new(headers: &HeaderMap) -> Self {
        let expected = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        Progress {
            bytes: 0,
            expected,
            end: End::Open,
        }
    }

    /// Marks the side reported and says how it ended: `ended` when the body reached its end,
    /// `dropped` when it was dropped before; `None` when it was reported already.
    fn take_end(&mut self, side: &str, ended: Outcome, dropped: Outcome) -> Option<(Outcome, Vec<String>)> {
        let bytes = self.bytes;
        match std::mem::replace(&mut self.end, End::Reported) {
            End::Reported => None,
            End::Ended => Some((ended, Vec::new())),
            End::Failed(e) => Some((
                Outcome::BodyError,
                vec![format!("the {side} body failed after {bytes} bytes: {e}")],
            )),
            End::Open => Some((
                dropped,
                vec![format!(
                    "the {side} body was dropped after {bytes} bytes, before its end"
                )],
            )),
        }
    }

    fn add(&mut self, n: usize) {
        self.bytes += n as u64;
        if self.expected == Some(self.bytes) {
            self.mark_ended();
        }
    }

    /// The body reached its end (unless it already ended, failed or was reported).
    fn mark_ended(&mut self) {
        if matches!(self.end, End::Open) {
            self.end = End::Ended;
        }
    }
}

/// One side's tap.
pub(crate) enum Tap {
    Request(RequestTap),
    Response(ResponseTap),
}

impl Tap {
    pub(crate) fn data(&mut self, data: &Bytes) {
        match self {
            Tap::Request(t) => t.data(data),
            Tap::Response(t) => t.data(data),
        }
    }

    /// The body reached its end. With `report_now`, records go out at once (no frame waits);
    /// otherwise when the body is dropped, so the last frame is not held up.
    pub(crate) fn ended(&mut self, report_now: bool) {
        self.progress().mark_ended();
        if report_now {
            self.report();
        }
    }

    pub(crate) fn failed(&mut self, error: String) {
        let progress = self.progress();
        // A body polled again after its end or an error must not report twice.
        if !matches!(progress.end, End::Reported) {
            progress.end = End::Failed(error);
            self.report();
        }
    }

    fn progress(&mut self) -> &mut Progress {
        match self {
            Tap::Request(t) => &mut t.progress,
            Tap::Response(t) => &mut t.progress,
        }
    }

    fn report(&mut self) {
        match self {
            Tap::Request(t) => t.report(),
            Tap::Response(t) => t.report(),
        }
    }
}

/// Why a body is not parsed, if it is compressed.
fn encoding_problem(headers: &HeaderMap) -> Option<String> {
    let encoding = headers.get(CONTENT_ENCODING)?.to_str().unwrap_or("?").trim();
    (!encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity"))
        .then(|| format!("the body is compressed ({encoding}) and was not decoded"))
}

/// The request side: scans the JSON body.
pub(crate) struct RequestTap {
    exchange: Arc<Exchange>,
    scanner: Option<JsonScanner>,
    not_scanned: Option<String>,
    progress: Progress,
}

impl RequestTap {
    pub(crate) fn new(exchange: Arc<Exchange>, headers: &HeaderMap) -> Self {
        let not_scanned = encoding_problem(headers);
        let scanner = not_scanned
            .is_none()
            .then(|| JsonScanner::new(&openai::REQUEST, exchange.config().prompt_bytes));
        RequestTap {
            exchange,
            scanner,
            not_scanned,
            progress: Progress::new(headers),
        }
    }

    fn data(&mut self, data: &Bytes) {
        self.progress.add(data.len());
        if let Some(s) = self.scanner.as_mut() {
            s.feed(data);
        }
    }

    fn report(&mut self) {
        let bytes = self.progress.bytes;
        let Some((outcome, mut errors)) =
            self.progress
                .take_end("request", Outcome::Completed, Outcome::RequestNotRead)
        else {
            return;
        };
        let mut side = SideReport::default();
        errors.extend(self.not_scanned.take());
        if let Some(scanner) = self.scanner.take() {
            let scan = scanner.finish();
            let facts = openai::request_facts(&scan);
            side.model = facts.model.clone();
            side.is_stream = facts.stream;
            self.exchange.set_request_facts(facts);
            match (outcome, scan.problem()) {
                (Outcome::Completed, Some(p)) => errors.push(format!("request: {p}")),
                (_, Some(p)) if scan.error.is_some() => errors.push(format!("request: {p}")),
                _ => {}
            }
            if scan.complete && scan.capture.is_none() {
                errors.push("request: no \"messages\" value".into());
            }
            if scan.duplicate_capture {
                errors.push("request: \"messages\" appears more than once; the last is logged".into());
            }
            side.message = scan.capture.unwrap_or_default();
        } else {
            side.message = Captured {
                total: bytes,
                truncated: bytes > 0,
                ..Captured::default()
            };
        }
        side.errors = errors;
        self.exchange.report(RecordKind::Request, outcome, side);
    }
}

impl Drop for RequestTap {
    fn drop(&mut self) {
        self.report();
    }
}

enum ResponseParser {
    Json(JsonScanner),
    Stream {
        sse: SseParser,
        assembler: ChatStreamAssembler,
    },
    Raw(Capture),
    NotScanned(String),
}

/// The response side: scans JSON, assembles a stream, or keeps an error body as it is.
pub(crate) struct ResponseTap {
    exchange: Arc<Exchange>,
    status: u16,
    parser: Option<ResponseParser>,
    progress: Progress,
}

impl ResponseTap {
    pub(crate) fn new(exchange: Arc<Exchange>, status: u16, headers: &HeaderMap) -> Self {
        let cap = exchange.config().completion_bytes;
        let is_sse = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        let parser = if let Some(problem) = encoding_problem(headers) {
            ResponseParser::NotScanned(problem)
        } else if status >= 400 {
            ResponseParser::Raw(Capture::new(cap))
        } else if is_sse {
            ResponseParser::Stream {
                sse: SseParser::new(MIN_SSE_EVENT_LIMIT.max(cap + 16 * 1024)),
                assembler: ChatStreamAssembler::new(cap),
            }
        } else {
            ResponseParser::Json(JsonScanner::new(&openai::RESPONSE, cap))
        };
        ResponseTap {
            exchange,
            status,
            parser: Some(parser),
            progress: Progress::new(headers),
        }
    }

    fn data(&mut self, data: &Bytes) {
        self.progress.add(data.len());
        match self.parser.as_mut() {
            Some(ResponseParser::Json(s)) => s.feed(data),
            Some(ResponseParser::Stream { sse, assembler }) => {
                sse.feed(data, &mut |e| assembler.on_event(e.data, e.oversized))
            }
            Some(ResponseParser::Raw(c)) => c.push_all(data),
            Some(ResponseParser::NotScanned(_)) | None => {}
        }
    }

    fn report(&mut self) {
        let bytes = self.progress.bytes;
        let ended = if self.status >= 400 {
            Outcome::UpstreamError
        } else {
            Outcome::Completed
        };
        let Some((outcome, mut errors)) =
            self.progress
                .take_end("response", ended, Outcome::ClientDisconnected)
        else {
            return;
        };
        let completed = matches!(outcome, Outcome::Completed | Outcome::UpstreamError);
        let cap = self.exchange.config().completion_bytes;
        let mut side = SideReport {
            status: Some(self.status),
            ..SideReport::default()
        };
        match self.parser.take() {
            Some(ResponseParser::Json(scanner)) => {
                let scan = scanner.finish();
                let facts = openai::response_facts(&scan);
                match scan.problem() {
                    Some(p) if completed || scan.error.is_some() => errors.push(format!("response: {p}")),
                    _ => {}
                }
                if scan.complete && scan.capture.is_none() {
                    errors.push("response: no \"choices\" value".into());
                }
                if scan.duplicate_capture {
                    errors.push("response: \"choices\" appears more than once; the last is logged".into());
                }
                errors.extend(facts.error.map(|e| format!("response: {e}")));
                side.message = scan.capture.unwrap_or_default();
                side.request_id = facts.request_id;
                side.model = facts.model;
                side.usage = facts.usage;
                side.finish_reasons = facts.finish_reasons;
            }
            Some(ResponseParser::Stream {
                mut sse,
                mut assembler,
            }) => {
                if completed {
                    // A last event without its blank line counts only when the stream ended;
                    // a stream cut short leaves a partial event, which is not one.
                    sse.finish(&mut |e| assembler.on_event(e.data, e.oversized));
                }
                let (message, facts) = assembler.finish(cap);
                errors.extend(facts.error.map(|e| format!("stream: {e}")));
                if completed && !facts.stream_ended {
                    errors.push("stream: it ended without [DONE] or a finish_reason".into());
                }
                side.is_stream = true;
                side.message = message;
                side.request_id = facts.request_id;
                side.model = facts.model;
                side.usage = facts.usage;
                side.finish_reasons = facts.finish_reasons;
                side.first_token_at = facts.first_token_at;
            }
            Some(ResponseParser::Raw(capture)) => side.message = capture.finish(),
            Some(ResponseParser::NotScanned(problem)) => {
                errors.push(problem);
                side.message = Captured {
                    total: bytes,
                    truncated: bytes > 0,
                    ..Captured::default()
                };
            }
            None => {}
        }
        side.errors = errors;
        self.exchange.report(RecordKind::Response, outcome, side);
    }
}

impl Drop for ResponseTap {
    fn drop(&mut self) {
        self.report();
    }
}

/// The response side before the inner service has answered.
pub(crate) struct PendingResponse {
    exchange: Option<Arc<Exchange>>,
}

impl PendingResponse {
    pub(crate) fn new(exchange: Arc<Exchange>) -> Self {
        PendingResponse {
            exchange: Some(exchange),
        }
    }

    pub(crate) fn exchange(&self) -> Option<&Arc<Exchange>> {
        self.exchange.as_ref()
    }

    /// The inner service answered: the tap for its body.
    pub(crate) fn respond(mut self, status: u16, headers: &HeaderMap) -> Option<ResponseTap> {
        let exchange = self.exchange.take()?;
        Some(ResponseTap::new(exchange, status, headers))
    }

    /// The inner service failed.
    pub(crate) fn fail(mut self, error: String) {
        if let Some(exchange) = self.exchange.take() {
            let side = SideReport {
                errors: vec![format!("the inner service failed: {error}")],
                ..SideReport::default()
            };
            exchange.report(RecordKind::Response, Outcome::ServiceError, side);
        }
    }
}

impl Drop for PendingResponse {
    fn drop(&mut self) {
        if let Some(exchange) = self.exchange.take() {
            let side = SideReport {
                errors: vec!["the response was dropped before the inner service answered".into()],
                ..SideReport::default()
            };
            exchange.report(RecordKind::Response, Outcome::ClientDisconnected, side);
        }
    }
}
