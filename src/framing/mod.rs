//! How a streamed response is cut into events before a family's
//! [`StreamReader`](crate::api::StreamReader) reads them.
//!
//! A family says how its streams are framed ([`LlmApi::stream_framing`](crate::api::LlmApi::stream_framing));
//! the layer runs the framer over the frames as they pass and hands the reader one
//! [`StreamEvent`] at a time, so a family writes only what is its own:
//!
//! | [`Framing`] | used by | an event is |
//! |---|---|---|
//! | [`ServerSentEvents`](Framing::ServerSentEvents) | OpenAI, Anthropic, Gemini `alt=sse` | an SSE event: its `event:` name and its `data:` lines |
//! | [`JsonLines`](Framing::JsonLines) | Ollama | one line of newline-delimited JSON |
//! | [`JsonArray`](Framing::JsonArray) | Gemini's default stream | one element of a JSON array streamed element by element |
//! | [`AwsEventStream`](Framing::AwsEventStream) | Bedrock `converse-stream` | one binary `application/vnd.amazon.eventstream` message, its checksums checked; named by its `:event-type` (or `:exception-type`) header |
//!
//! Every framer bounds what it holds the same way: an event larger than the limit (64 KiB in the
//! layer) is handed on as `oversized`, with its first [`HEAD_BYTES`] and last [`TAIL_BYTES`]
//! only. What a framer could not read (a bad checksum, a truncated message, bytes after the end
//! of an array) is reported in the response record's `Error`, never trusted.

mod event_stream;
mod json_array;
mod lines;
pub(crate) mod sse;
mod sse_slices;

pub(crate) use event_stream::EventStreamFramer;
pub(crate) use json_array::JsonArrayFramer;
pub(crate) use lines::JsonLinesFramer;
pub(crate) use sse::SseParser;
pub(crate) use sse_slices::{SsePiece, SseSlicer};

/// How much of the end of an oversized event's data is kept.
pub const TAIL_BYTES: usize = 16 * 1024;
/// How much of the start of an oversized event's data is kept.
pub const HEAD_BYTES: usize = 8 * 1024;
/// A buffer that grew past this for one large event is given back after it.
const KEPT_CAPACITY: usize = 4 * 1024;
/// How much a kept tail may grow past [`TAIL_BYTES`] before its start is let go (a trade of
/// memory against the bytes moved each time).
const TAIL_SLACK: usize = 4 * 1024;

/// How a family's streamed responses are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// Server-sent events (`text/event-stream`).
    ServerSentEvents,
    /// Newline-delimited JSON (`application/x-ndjson`): one event per non-blank line.
    JsonLines,
    /// A JSON array sent element by element: one event per element. A body that is not an
    /// array (an error object) is one event.
    JsonArray,
    /// AWS event stream (`application/vnd.amazon.eventstream`): binary messages with a prelude
    /// and a message CRC32, and typed headers.
    AwsEventStream,
}

/// One event of a stream, as a family's stream reader sees it.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamEvent<'a> {
    /// The event's name: an SSE `event:` field, an event stream's `:event-type` (or, for an
    /// exception, its `:exception-type`; for an error message, `error`). Empty when the framing
    /// has none.
    pub name: &'a [u8],
    /// The event's data (an SSE event's `data:` lines joined with `\n`, a line, an array
    /// element, a message's payload). Empty when `oversized`.
    pub data: &'a [u8],
    /// The data passed the limit and was dropped but for its head and its tail.
    pub oversized: bool,
    /// For an oversized event, the last bytes of its data (at most [`TAIL_BYTES`]); empty
    /// otherwise.
    pub tail: &'a [u8],
    /// For an oversized event, the first bytes of its data (at most [`HEAD_BYTES`]); empty
    /// otherwise.
    pub head: &'a [u8],
}

impl<'a> StreamEvent<'a> {
    /// An event with its whole data.
    pub fn new(name: &'a [u8], data: &'a [u8]) -> Self {
        StreamEvent {
            name,
            data,
            oversized: false,
            tail: &[],
            head: &[],
        }
    }
}

/// The framer of one stream.
#[derive(Debug)]
pub struct Framer(Inner);

#[derive(Debug)]
enum Inner {
    Sse(SseParser),
    Lines(JsonLinesFramer),
    Array(JsonArrayFramer),
    EventStream(Box<EventStreamFramer>),
}

impl Framer {
    /// A framer for `framing` that hands on at most `limit` bytes of one event's data.
    pub fn new(framing: Framing, limit: usize) -> Self {
        Framer(match framing {
            Framing::ServerSentEvents => Inner::Sse(SseParser::new(limit)),
            Framing::JsonLines => Inner::Lines(JsonLinesFramer::new(limit)),
            Framing::JsonArray => Inner::Array(JsonArrayFramer::new(limit)),
            Framing::AwsEventStream => Inner::EventStream(Box::new(EventStreamFramer::new(limit))),
        })
    }

    /// The next bytes of the stream; `on_event` is called for each complete event.
    pub fn feed(&mut self, bytes: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) {
        match &mut self.0 {
            Inner::Sse(f) => f.feed(bytes, on_event),
            Inner::Lines(f) => f.feed(bytes, on_event),
            Inner::Array(f) => f.feed(bytes, on_event),
            Inner::EventStream(f) => f.feed(bytes, on_event),
        }
    }

    /// The stream ended (`ended`) or stopped before its end: a last event without its
    /// terminator is handed on only when it ended. Returns what could not be read.
    pub fn finish(&mut self, ended: bool, on_event: &mut impl FnMut(StreamEvent<'_>)) -> Vec<String> {
        match &mut self.0 {
            Inner::Sse(f) => {
                // A stream cut short leaves a partial event, which is not one.
                if ended {
                    f.finish(on_event);
                }
                Vec::new()
            }
            Inner::Lines(f) => f.finish(ended, on_event),
            Inner::Array(f) => f.finish(ended, on_event),
            Inner::EventStream(f) => f.finish(ended),
        }
    }
}

/// Appends `bytes` to a buffer that keeps at least the last [`TAIL_BYTES`] + 1 of all it was
/// given (the one for a line end that may be taken off), and at most [`TAIL_SLACK`] more.
pub(crate) fn keep_tail(buf: &mut Vec<u8>, bytes: &[u8]) {
    const MOST: usize = TAIL_BYTES + 1 + TAIL_SLACK;
    let bytes = &bytes[bytes.len().saturating_sub(MOST)..];
    if buf.len() + bytes.len() > MOST {
        buf.drain(..(buf.len() + bytes.len() - (TAIL_BYTES + 1)).min(buf.len()));
    }
    if buf.capacity() < MOST {
        buf.reserve_exact(MOST - buf.len());
    }
    buf.extend_from_slice(bytes);
}

/// Frees a buffer that grew for one large event, so it is not held for the rest of the stream.
pub(crate) fn give_back(buf: &mut Vec<u8>) {
    if buf.capacity() > KEPT_CAPACITY && buf.is_empty() {
        *buf = Vec::new();
    }
}

/// The data of an event that arrives in pieces, held up to a limit; past it, only its head and
/// its tail. The framers other than SSE (whose lines need more) gather events in one.
#[derive(Debug)]
pub(crate) struct EventData {
    data: Vec<u8>,
    head: Vec<u8>,
    tail: Vec<u8>,
    oversized: bool,
    limit: usize,
    /// Whether any byte was pushed since the last event.
    started: bool,
}

impl EventData {
    pub(crate) fn new(limit: usize) -> Self {
        EventData {
            data: Vec::new(),
            head: Vec::new(),
            tail: Vec::new(),
            oversized: false,
            limit,
            started: false,
        }
    }

    /// Whether the event being gathered has any bytes yet.
    pub(crate) fn is_empty(&self) -> bool {
        !self.started
    }

    /// Whether a whole event of `len` bytes may be handed on as it is (a slice of its frame,
    /// nothing gathered): nothing is gathered yet, and it is within the limit.
    pub(crate) fn passes_whole(&self, len: usize) -> bool {
        !self.started && len <= self.limit
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.started |= !bytes.is_empty();
        if self.oversized {
            keep_tail(&mut self.tail, bytes);
        } else if self.data.len() + bytes.len() > self.limit {
            self.oversized = true;
            self.head.clear();
            for part in [&self.data[..], bytes] {
                let room = HEAD_BYTES - self.head.len();
                self.head.extend_from_slice(&part[..part.len().min(room)]);
            }
            keep_tail(&mut self.tail, &self.data);
            keep_tail(&mut self.tail, bytes);
            self.data.clear();
            give_back(&mut self.data);
        } else {
            self.data.extend_from_slice(bytes);
        }
    }

    /// Hands the gathered event on as `name`, with `trim` applied to the end of its data (and
    /// of its tail), and starts the next.
    pub(crate) fn dispatch(
        &mut self,
        name: &[u8],
        trim: impl Fn(&[u8]) -> &[u8],
        on_event: &mut impl FnMut(StreamEvent<'_>),
    ) {
        let tail = trim(&self.tail);
        on_event(StreamEvent {
            name,
            data: trim(&self.data),
            oversized: self.oversized,
            tail: &tail[tail.len().saturating_sub(TAIL_BYTES)..],
            head: &self.head,
        });
        self.clear();
    }

    /// Drops the event being gathered.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.head.clear();
        self.tail.clear();
        give_back(&mut self.data);
        give_back(&mut self.tail);
        give_back(&mut self.head);
        self.oversized = false;
        self.started = false;
    }
}

/// No trimming.
pub(crate) fn whole(b: &[u8]) -> &[u8] {
    b
}

#[cfg(test)]
pub(crate) mod testing {
    //! Runs a framer over a body cut at given offsets.
    use super::*;

    /// (name, data, oversized, tail) of each event, and the problems.
    pub(crate) type Events = Vec<(Vec<u8>, Vec<u8>, bool, Vec<u8>)>;

    pub(crate) fn run(
        framing: Framing,
        limit: usize,
        body: &[u8],
        cuts: &[usize],
        ended: bool,
    ) -> (Events, Vec<String>) {
        let mut framer = Framer::new(framing, limit);
        let mut out = Events::new();
        let mut on =
            |e: StreamEvent<'_>| out.push((e.name.to_vec(), e.data.to_vec(), e.oversized, e.tail.to_vec()));
        let mut at = 0;
        for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
            framer.feed(&body[at..cut], &mut on);
            at = cut;
        }
        let problems = framer.finish(ended, &mut on);
        (out, problems)
    }

    /// The same events and problems whether the body comes whole, one byte at a time, or cut
    /// in two at every offset.
    pub(crate) fn same_at_every_split(framing: Framing, limit: usize, body: &[u8]) -> (Events, Vec<String>) {
        let whole = run(framing, limit, body, &[], true);
        let bytes: Vec<usize> = (1..body.len()).collect();
        assert_eq!(
            run(framing, limit, body, &bytes, true),
            whole,
            "fed one byte at a time"
        );
        for cut in 1..body.len() {
            assert_eq!(run(framing, limit, body, &[cut], true), whole, "cut at {cut}");
        }
        whole
    }
}
