//! The request and response taps: what each side does with the frames that pass, and how it
//! reports when its body ends, fails, or is dropped.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;

use crate::api::{BodyFacts, BodyReader, LoggedMessage, Problem, ProblemKind, RawReader, StreamReader};
use crate::decode::{self, Decoder};
use crate::exchange::{Exchange, SideReport};
use crate::framing::Framer;
use crate::privacy::MediaElider;
use crate::{LogConfig, Outcome, RecordKind};

/// The limit on one stream event's data. Events of every family are small (a delta, a usage
/// object); the large ones (a Responses API final event carrying the whole response) are read
/// from their start and end, which the framer keeps. Fixed, not scaled with the caps, so a
/// stream being read holds at most this much beyond its caps.
pub(crate) const STREAM_EVENT_LIMIT: usize = 64 * 1024;

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
            // `Content-Length: 0` (a `202 Accepted`, a `204`): ended before any frame, whether
            // or not anyone polls the body (clients drop such bodies unread).
            end: match expected {
                Some(0) => End::Ended,
                _ => End::Open,
            },
        }
    }

    /// Marks the side reported and says how it ended: `ended` when the body reached its end,
    /// `dropped` when it was dropped before; `None` when it was reported already.
    fn take_end(&mut self, side: &str, ended: Outcome, dropped: Outcome) -> Option<(Outcome, Vec<Problem>)> {
        let bytes = self.bytes;
        match std::mem::replace(&mut self.end, End::Reported) {
            End::Reported => None,
            End::Ended => Some((ended, Vec::new())),
            End::Failed(e) => Some((
                Outcome::BodyError,
                vec![Problem::new(
                    ProblemKind::Cut,
                    format!("the {side} body failed after {bytes} bytes: {e}"),
                )],
            )),
            End::Open if dropped == Outcome::RequestIncomplete => Some((
                dropped,
                vec![Problem::new(
                    ProblemKind::Cut,
                    format!("the {side} body was still arriving after {bytes} bytes when the exchange was dropped"),
                )],
            )),
            End::Open => Some((
                dropped,
                vec![Problem::new(
                    ProblemKind::Cut,
                    format!("the {side} body was dropped after {bytes} bytes, before its end"),
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

/// Which side a tap reads, and what only that side knows.
enum Side {
    /// The request: the outcome when its body is dropped before its end (the inner service did
    /// not read it all, or, while the layer reads it ahead, the client had not sent it all).
    Request { dropped: Outcome },
    /// The response: its status, and the request id a header carries (families that name one).
    Response { status: u16, request_id: Option<String> },
}

/// One side's tap: reads the body as it passes, and reports once, when the body ends, fails or
/// is dropped. Where the body has got is `progress`, its state one [`End`].
pub(crate) struct Tap {
    exchange: Arc<Exchange>,
    side: Side,
    reading: Option<Reading>,
    progress: Progress,
}

impl Tap {
    /// The request side: reads the body with the family's request reader.
    pub(crate) fn request(exchange: Arc<Exchange>, headers: &HeaderMap) -> Self {
        let config = exchange.config();
        let reader = exchange
            .api
            .request_reader(&exchange.route, exchange.cap(RecordKind::Request));
        let reading = Reading::new(Target::body(reader, config), headers, config.decoded_bytes);
        Tap {
            exchange,
            side: Side::Request {
                dropped: Outcome::RequestNotRead,
            },
            reading: Some(reading),
            progress: Progress::new(headers),
        }
    }

    /// The response side: reads JSON or a stream with the family's readers, or keeps an error
    /// body as it is.
    pub(crate) fn response(exchange: Arc<Exchange>, status: u16, headers: &HeaderMap) -> Self {
        let config = exchange.config();
        let cap = exchange.cap(RecordKind::Response);
        let route = &exchange.route;
        let target = if status >= 400 {
            Target::body(Box::new(RawReader::new(cap)), config)
        } else {
            let content_type = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            match exchange.api.stream_framing(route, &content_type) {
                Some(framing) => Target::Stream {
                    framer: Framer::new(framing, STREAM_EVENT_LIMIT),
                    reader: exchange.api.stream_reader(route, cap),
                    events: 0,
                },
                None => Target::body(exchange.api.response_reader(route, cap), config),
            }
        };
        let reading = Reading::new(target, headers, config.decoded_bytes);
        exchange.add_header_dimensions(headers);
        let request_id = exchange
            .api
            .request_id_header()
            .and_then(|name| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(crate::api::clip_field);
        Tap {
            exchange,
            side: Side::Response { status, request_id },
            reading: Some(reading),
            progress: Progress::new(headers),
        }
    }

    pub(crate) fn data(&mut self, data: &Bytes) {
        self.progress.add(data.len());
        if let Some(r) = self.reading.as_mut() {
            r.feed(data);
        }
    }

    /// The body reached its end. With `report_now`, records go out at once (no frame waits);
    /// otherwise when the body is dropped, so the last frame is not held up.
    pub(crate) fn ended(&mut self, report_now: bool) {
        self.progress.mark_ended();
        if report_now {
            self.report();
        }
    }

    /// Whether the layer is reading the body ahead of the inner service: a drop then means the
    /// client had not sent all of it.
    pub(crate) fn set_reading_ahead(&mut self, reading_ahead: bool) {
        if let Side::Request { dropped } = &mut self.side {
            *dropped = match reading_ahead {
                true => Outcome::RequestIncomplete,
                false => Outcome::RequestNotRead,
            };
        }
    }

    /// The exchange this tap belongs to.
    pub(crate) fn exchange(&self) -> &Arc<Exchange> {
        &self.exchange
    }

    pub(crate) fn failed(&mut self, error: String) {
        // A body polled again after its end or an error must not report twice.
        if !matches!(self.progress.end, End::Reported) {
            self.progress.end = End::Failed(error);
            self.report();
        }
    }

    /// Reports the side once: what its reader found, and how its body ended.
    fn report(&mut self) {
        let bytes = self.progress.bytes;
        let (name, ended, dropped) = match &self.side {
            Side::Request { dropped } => ("request", Outcome::Completed, *dropped),
            Side::Response { status, .. } if *status >= 400 => {
                ("response", Outcome::UpstreamError, Outcome::ClientDisconnected)
            }
            Side::Response { .. } => ("response", Outcome::Completed, Outcome::ClientDisconnected),
        };
        let Some((outcome, errors)) = self.progress.take_end(name, ended, dropped) else {
            return;
        };
        let Some(reading) = self.reading.take() else {
            return;
        };
        let completed = matches!(outcome, Outcome::Completed | Outcome::UpstreamError);
        let facts = reading.finish(completed, bytes);
        // A stream dropped after it had said all it had to (MCP's clients drop an event
        // stream once its response is in): it ended, as far as the log is concerned.
        let (outcome, errors) = match outcome {
            Outcome::ClientDisconnected if facts.complete => (ended, Vec::new()),
            _ => (outcome, errors),
        };
        match &mut self.side {
            Side::Request { .. } => {
                let mut side = SideReport::from_facts(facts, name, errors);
                self.exchange.redact_invocation(&mut side);
                self.exchange.set_request_facts(&side);
                self.exchange.report(RecordKind::Request, outcome, side);
            }
            Side::Response { status, request_id } => {
                let unfinished_stream = facts.stream && !facts.stream_ended && completed && *status < 400;
                let mut side = SideReport::from_facts(facts, name, errors);
                if unfinished_stream {
                    side.errors.push(Problem::new(
                        ProblemKind::Stream,
                        "stream: it ended without its final event ([DONE], a finish reason or a stop event)",
                    ));
                }
                side.status = Some(*status);
                if side.request_id.is_none() {
                    side.request_id = request_id.take();
                }
                self.exchange.report(RecordKind::Response, outcome, side);
            }
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.report();
    }
}

/// What reads one side's body: a body reader, or an SSE parser feeding a stream reader.
enum Target {
    /// A body reader, behind the media elider when media is elided.
    Body(Box<dyn BodyReader>, Option<MediaElider>),
    Stream {
        framer: Framer,
        reader: Box<dyn StreamReader>,
        events: u64,
    },
}

impl Target {
    fn body(reader: Box<dyn BodyReader>, config: &LogConfig) -> Self {
        let media = config.media_inline_bytes.map(MediaElider::new);
        Target::Body(reader, media)
    }

    fn feed(&mut self, data: &Bytes) {
        match self {
            Target::Body(reader, None) => reader.feed(data),
            Target::Body(reader, Some(media)) => media.feed(data, &mut |b| reader.feed(b)),
            Target::Stream {
                framer,
                reader,
                events,
            } => framer.feed(data, &mut |e| {
                *events += 1;
                reader.event(&e)
            }),
        }
    }

    fn finish(self, ended: bool) -> BodyFacts {
        match self {
            Target::Body(reader, None) => reader.finish(ended),
            Target::Body(mut reader, Some(mut media)) => {
                media.finish(&mut |b| reader.feed(b));
                let mut facts = reader.finish(ended);
                facts.media_elided = media.elided();
                if facts.message.total > 0 {
                    // `MessageBytes` is the size as it passed, media included.
                    facts.message.total += media.saved();
                }
                facts
            }
            Target::Stream {
                mut framer,
                mut reader,
                mut events,
            } => {
                let problems = framer.finish(ended, &mut |e| {
                    events += 1;
                    reader.event(&e)
                });
                let mut facts = reader.finish(ended);
                facts.events = facts.events.or(Some(events));
                facts
                    .errors
                    .extend(problems.into_iter().map(|p| Problem::new(ProblemKind::Stream, p)));
                facts.stream = true;
                facts
            }
        }
    }
}

/// A side's body being read: decoded first when it is compressed, or not read at all when its
/// encoding is unknown.
enum Reading {
    Plain(Target),
    Decoded(Box<Decoder>, Target),
    NotRead(String),
}

impl Reading {
    fn new(target: Target, headers: &HeaderMap, decoded_bytes: u64) -> Self {
        match decode::encoding(headers) {
            Ok(None) => Reading::Plain(target),
            Ok(Some(codec)) if decoded_bytes > 0 => {
                Reading::Decoded(Box::new(Decoder::new(codec, decoded_bytes)), target)
            }
            Ok(Some(_)) => Reading::NotRead("the body is compressed and decoding is off".into()),
            Err(problem) => Reading::NotRead(problem),
        }
    }

    fn feed(&mut self, data: &Bytes) {
        match self {
            Reading::Plain(target) => target.feed(data),
            Reading::Decoded(decoder, target) => decoder.push(data, &mut |b| target.feed(b)),
            Reading::NotRead(_) => {}
        }
    }

    /// What the body said; `bytes` is how much of it passed.
    fn finish(self, ended: bool, bytes: u64) -> BodyFacts {
        match self {
            Reading::Plain(target) => target.finish(ended),
            Reading::Decoded(mut decoder, mut target) => {
                let (complete, error) = decoder.finish(ended, &mut |b| target.feed(b));
                let mut facts = target.finish(ended && complete);
                facts
                    .errors
                    .extend(error.map(|e| Problem::new(ProblemKind::Encoding, e)));
                facts
            }
            Reading::NotRead(problem) => BodyFacts {
                message: LoggedMessage::not_kept(bytes),
                errors: vec![Problem::new(ProblemKind::Encoding, problem)],
                ..BodyFacts::default()
            },
        }
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
    pub(crate) fn respond(mut self, status: u16, headers: &HeaderMap) -> Option<Tap> {
        let exchange = self.exchange.take()?;
        Some(Tap::response(exchange, status, headers))
    }

    /// The inner service failed.
    pub(crate) fn fail(mut self, error: String) {
        if let Some(exchange) = self.exchange.take() {
            let side = SideReport {
                errors: vec![Problem::new(
                    ProblemKind::Cut,
                    format!("the inner service failed: {error}"),
                )],
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
                errors: vec![Problem::new(
                    ProblemKind::Cut,
                    "the response was dropped before the inner service answered",
                )],
                ..SideReport::default()
            };
            exchange.report(RecordKind::Response, Outcome::ClientDisconnected, side);
        }
    }
}
