//! What a family's readers are: the traits, what they find, and the raw reader for bodies no
//! family reads.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{
    ApiFamily, Framing, LoggedMessage, MessageCapture, Problem, ProblemKind, RequestHead, Route, StreamEvent,
};

/// Token counts as a provider reported them; `None` where it said nothing (unknown is not 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenUsage {
    /// Prompt (input) tokens.
    pub prompt: Option<u64>,
    /// Completion (output) tokens.
    pub completion: Option<u64>,
    /// All tokens billed for the exchange.
    pub total: Option<u64>,
    /// Prompt tokens read from the provider's cache.
    pub cached: Option<u64>,
    /// Completion tokens spent on reasoning.
    pub reasoning: Option<u64>,
    /// Prompt tokens written to the provider's cache.
    pub cache_creation: Option<u64>,
}

impl TokenUsage {
    /// Whether any count is known.
    pub fn is_empty(&self) -> bool {
        *self == TokenUsage::default()
    }
}

/// What a body says it invokes, beyond its route: for MCP, the JSON-RPC method and the tool,
/// resource or prompt it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Invocation {
    /// The operation (`tools/call`), replacing the route's in `OperationName`.
    pub operation: Option<String>,
    /// The tool called (`ToolName`).
    pub tool_name: Option<String>,
    /// The resource named (`ResourceUri`).
    pub resource_uri: Option<String>,
    /// The prompt named (`PromptName`).
    pub prompt_name: Option<String>,
}

/// What a reader found in one body.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BodyFacts {
    /// The logged message: the prompt of a request, the completion of a response.
    pub message: LoggedMessage,
    /// The model the body names.
    pub model: Option<String>,
    /// The provider's response id.
    pub request_id: Option<String>,
    /// Token counts (responses only).
    pub usage: TokenUsage,
    /// Why generation stopped, per choice or output.
    pub finish_reasons: Vec<String>,
    /// A request asked for a stream; a stream was read.
    pub stream: bool,
    /// A stream said it was done (`[DONE]`, a final event); an unfinished stream is reported.
    pub stream_ended: bool,
    /// When the first token arrived (streams).
    pub first_token_at: Option<Instant>,
    /// How many events the stream carried, when the reader counts them itself (the layer counts
    /// the events of the framings it cuts).
    pub events: Option<u64>,
    /// What the body says it invokes (MCP's method, tool, resource or prompt); set on the
    /// request side, it names the operation of both sides' records.
    pub invocation: Invocation,
    /// The body says the call failed though its status did not (a JSON-RPC error, a tool
    /// result with `isError`): the side's outcome is
    /// [`UpstreamError`](crate::Outcome::UpstreamError), with this in `Error`.
    pub failure: Option<String>,
    /// The request needs no response (a JSON-RPC notification, or a client's response): its
    /// outcome says so, and an empty `202 Accepted` answer is not logged.
    pub no_response_expected: bool,
    /// Dimensions the body gives (`mcp_client_name`, ...), added to the exchange's.
    pub dimensions: Vec<(&'static str, String)>,
    /// The body said all it had to before it ended (an MCP event stream once it has carried
    /// its response): a client that drops it after that has not cut it short.
    pub complete: bool,
    /// What was wrong with the body. Plain text converts (`"...".into()`) to a
    /// [`ProblemKind::Body`] problem.
    pub errors: Vec<Problem>,
    /// Media payloads the layer elided before the reader saw the body.
    pub(crate) media_elided: u32,
    /// The end user a request body names (built-in families).
    pub(crate) end_user: Option<String>,
    /// A JSON-RPC id as written (`"3"` and `3` differ), for families whose ids must match.
    pub(crate) raw_id: Option<String>,
    /// The message is one whole, valid JSON value (a built-in reader's capture or assembly, not
    /// cut): JSON Lines sinks may write it as JSON rather than as a string holding JSON.
    pub(crate) whole_json: bool,
}

/// Reads one JSON (or other non-stream) body, frame by frame, keeping at most its cap.
pub trait BodyReader: Send {
    /// The next frame of the body (decoded, if the body was compressed).
    fn feed(&mut self, frame: &Bytes);
    /// The body ended (`ended`), or stopped before its end (the client left, an error):
    /// what was found.
    fn finish(self: Box<Self>, ended: bool) -> BodyFacts;
}

/// Reads one streamed response, event by event (as its family's [`Framing`] cuts it), keeping at
/// most its cap.
pub trait StreamReader: Send {
    /// The next event of the stream.
    fn event(&mut self, event: &StreamEvent<'_>);
    /// The stream ended (`ended`), or stopped before its end: what was found.
    fn finish(self: Box<Self>, ended: bool) -> BodyFacts;
}

/// An API family: which requests are its own, and how to read their bodies.
///
/// Readers are made per exchange and must keep memory within the `cap` they are given (use
/// [`MessageCapture`], or, with the `unstable-scan` feature, the crate's JSON scanner); the
/// layer frames streams ([`stream_framing`](LlmApi::stream_framing)), chunks what the readers
/// return, counts it, and never lets them touch the traffic. A reader that panics is not
/// caught: write readers that do not.
///
/// `examples/custom_api` is a whole family of one's own (Cohere's Chat API v2).
pub trait LlmApi: Send + Sync + 'static {
    /// The family's name in records. Recognizers (and [`Route`]s) name the family with it.
    fn family(&self) -> ApiFamily;
    /// The route of a request this family serves, or `None`.
    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route>;
    /// A reader for a request body; `cap` is the prompt cap.
    fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader>;
    /// A reader for a successful non-stream response body; `cap` is the completion cap.
    fn response_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader>;
    /// A reader for a streamed response (one [`stream_framing`](LlmApi::stream_framing) names
    /// a framing for); `cap` is the completion cap.
    fn stream_reader(&self, route: &Route, cap: usize) -> Box<dyn StreamReader>;
    /// How a successful response with this `Content-Type` (lowercase, parameters included) is
    /// framed when it is a stream, or `None` to read it whole with
    /// [`response_reader`](LlmApi::response_reader). By default, `text/event-stream` is
    /// server-sent events and anything else is one body.
    fn stream_framing(&self, route: &Route, content_type: &str) -> Option<Framing> {
        let _ = route;
        is_media_type(content_type, "text/event-stream").then_some(Framing::ServerSentEvents)
    }
    /// A response header (lowercase) that carries the provider's request id, for families
    /// whose bodies carry none (Bedrock's `x-amzn-requestid`); an id in the body wins.
    fn request_id_header(&self) -> Option<&'static str> {
        None
    }
    /// Headers (lowercase names) whose values become dimensions of the exchange, as
    /// `(header, dimension)`: from the request, else from the response (MCP's
    /// `mcp-session-id`, which the server assigns in its answer to `initialize`).
    fn dimension_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Whether the JSON-RPC ids of request and response must match (MCP): a response to
    /// another id is reported.
    fn ids_must_match(&self) -> bool {
        false
    }
}

/// Whether a `Content-Type` value (lowercase) is of the media type `essence`, whatever its
/// parameters.
pub fn is_media_type(content_type: &str, essence: &str) -> bool {
    content_type
        .trim_start()
        .strip_prefix(essence)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(';') || rest.starts_with(' '))
}

impl<T: LlmApi + ?Sized> LlmApi for Arc<T> {
    fn family(&self) -> ApiFamily {
        (**self).family()
    }
    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        (**self).recognize(head)
    }
    fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        (**self).request_reader(route, cap)
    }
    fn response_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        (**self).response_reader(route, cap)
    }
    fn stream_reader(&self, route: &Route, cap: usize) -> Box<dyn StreamReader> {
        (**self).stream_reader(route, cap)
    }
    fn stream_framing(&self, route: &Route, content_type: &str) -> Option<Framing> {
        (**self).stream_framing(route, content_type)
    }
    fn request_id_header(&self) -> Option<&'static str> {
        (**self).request_id_header()
    }
    fn dimension_headers(&self) -> &'static [(&'static str, &'static str)] {
        (**self).dimension_headers()
    }
    fn ids_must_match(&self) -> bool {
        (**self).ids_must_match()
    }
}

/// Keeps a body as it is, up to the cap: for error responses, and families nobody can read.
pub(crate) struct RawReader {
    capture: MessageCapture,
    note: Option<Problem>,
}

impl RawReader {
    pub(crate) fn new(cap: usize) -> Self {
        RawReader {
            capture: MessageCapture::new(cap),
            note: None,
        }
    }

    pub(crate) fn unknown(route: &Route, cap: usize) -> Self {
        RawReader {
            capture: MessageCapture::new(cap),
            note: Some(Problem::new(
                ProblemKind::UnknownFamily,
                format!(
                    "no reader for the API family \"{}\" (add it with LlmLogLayer::with_api); the body is logged as it is",
                    route.family
                ),
            )),
        }
    }
}

impl BodyReader for RawReader {
    fn feed(&mut self, frame: &Bytes) {
        self.capture.push_all(frame);
    }

    fn finish(self: Box<Self>, _ended: bool) -> BodyFacts {
        BodyFacts {
            message: self.capture.finish(),
            errors: self.note.into_iter().collect(),
            ..BodyFacts::default()
        }
    }
}

impl StreamReader for RawReader {
    fn event(&mut self, event: &StreamEvent<'_>) {
        let data = Bytes::copy_from_slice(event.data);
        self.capture.push_all(&data);
    }

    fn finish(self: Box<Self>, ended: bool) -> BodyFacts {
        let mut facts = BodyReader::finish(self, ended);
        facts.stream = true;
        // No protocol to say when such a stream is done: its end is its end.
        facts.stream_ended = true;
        facts
    }
}
