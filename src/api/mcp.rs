//! The Model Context Protocol's streamable HTTP transport (revisions 2025-03-26 and
//! 2025-06-18): agents' tool calls, one exchange per JSON-RPC request.
//!
//! A client `POST`s one JSON-RPC message to the MCP endpoint (`/mcp` by default); the server
//! answers a request with `application/json` (the response) or `text/event-stream` (the
//! response among notifications and requests of its own), and a notification with an empty
//! `202 Accepted`. A `GET` opens a stream of the server's messages; a `DELETE` ends the session.
//!
//! What the records say:
//!
//! | column | from |
//! |---|---|
//! | `Api` | `mcp` |
//! | `OperationName` | the method (`initialize`, `tools/call`, ...); `listen` for a `GET` stream, `delete_session` for a `DELETE`, `batch` for a batch, `response` for a client's answer to a server |
//! | `RequestId` | the JSON-RPC id (a string as it is, a number as written) |
//! | `ToolName`, `ResourceUri`, `PromptName` | `params.name` of `tools/call`, `params.uri` of `resources/read`, `subscribe`, `unsubscribe`, `params.name` of `prompts/get` |
//! | `ApiVersion` | the `MCP-Protocol-Version` header |
//! | `RequestMessages` | the JSON-RPC message as sent (`params` where the specification puts it) |
//! | `ResponseMessages` | the JSON-RPC response as sent (`result` or `error`); for an event stream, the array of the messages it carried, in order |
//! | `Outcome` | `UpstreamError` for a JSON-RPC `error` and for a tool result with `isError: true`, the code and message (or the tool's first text) in `Error`; `NoResponseExpected` for a notification, whose `202` is not logged |
//! | `StreamEvents` | the messages an event stream carried |
//! | `Dimensions` | `mcp_session` (the `Mcp-Session-Id` header); `mcp_client_name`, `mcp_client_version` (from `initialize`), `mcp_server_name`, `mcp_server_version` (from its result, on the response's records) |
//!
//! Event streams are read in place, not gathered into events: a tool result as large as the cap
//! costs no more than the cap, and media in it (image and audio blocks, resource blobs) are
//! elided like any body's before they are read.
//!
//! ```
//! use http::{HeaderMap, Method, Uri};
//! use tower_llm_log::api::{LlmApi, McpApi, RequestHead};
//!
//! // Served under a path of one's own: add the family with `LlmLogLayer::with_api`.
//! let mcp = McpApi::at("/agents/tools");
//! let uri: Uri = "/agents/tools".parse().unwrap();
//! let route = mcp.recognize(&RequestHead::new(&Method::POST, &uri, &HeaderMap::new())).unwrap();
//! assert_eq!(route.family.as_str(), "mcp");
//! ```

use std::borrow::Cow;
use std::time::Instant;

use bytes::Bytes;
use http::Method;

use super::assemble::{clip, clip_owned};
use super::{
    BodyFacts, BodyReader, Invocation, LlmApi, Problem, ProblemKind, RequestHead, Route, StreamReader,
};
use crate::capture::MessageCapture;
use crate::framing::{Framing, SsePiece, SseSlicer, StreamEvent};
use crate::scan::json::{scalar_bool, scalar_string, Action, JsonScanner, Node, ScanResult, Step};
use crate::ApiFamily;

/// The MCP family: recognizes the MCP endpoint and reads JSON-RPC messages, as JSON or event
/// streams.
///
/// Built in at `/mcp` (any path ending in `/mcp`). For another path, add
/// `McpApi::at("/path")`; to log MCP wherever it is served, add
/// `McpApi::new().anywhere()`, which knows MCP requests by their headers.
#[derive(Debug, Clone)]
pub struct McpApi {
    path: Cow<'static, str>,
    anywhere: bool,
}

impl Default for McpApi {
    fn default() -> Self {
        McpApi::new()
    }
}

impl McpApi {
    /// The family at `/mcp`.
    pub const fn new() -> Self {
        McpApi {
            path: Cow::Borrowed("/mcp"),
            anywhere: false,
        }
    }

    /// The family at `path` (exactly; a trailing `/` aside).
    pub fn at(path: impl Into<Cow<'static, str>>) -> Self {
        let path: Cow<'static, str> = path.into();
        let trimmed = path.trim_end_matches('/');
        let path = if trimmed.len() == path.len() {
            path
        } else {
            Cow::Owned(trimmed.to_string())
        };
        McpApi {
            path,
            anywhere: false,
        }
    }

    /// Also recognizes MCP requests on any path by their headers: an `Mcp-Session-Id` or
    /// `MCP-Protocol-Version` header, or a `POST` that accepts both `application/json` and
    /// `text/event-stream` (as the transport requires every client to send). Plain JSON APIs
    /// rarely send such an `Accept`; this is for operators who know their traffic.
    pub fn anywhere(mut self) -> Self {
        self.anywhere = true;
        self
    }

    fn is_mcp_by_headers(head: &RequestHead<'_>) -> bool {
        let headers = head.headers();
        if headers.contains_key("mcp-session-id") || headers.contains_key("mcp-protocol-version") {
            return true;
        }
        let accept = headers
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase();
        head.method() == Method::POST
            && accept.contains("application/json")
            && accept.contains("text/event-stream")
    }
}

/// The route of an MCP request: its operation by the HTTP method (a `POST`'s is named by its
/// body), its protocol version by its header.
pub(crate) fn route(head: &RequestHead<'_>) -> Option<Route> {
    let operation = match *head.method() {
        Method::POST => "mcp",
        Method::GET => "listen",
        Method::DELETE => "delete_session",
        _ => return None,
    };
    let mut route = Route::new(ApiFamily::Mcp, "mcp").with_operation(operation);
    route.api_version = head
        .headers()
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(clip);
    Some(route)
}

/// Whether a path is the built-in MCP endpoint: `/mcp`, or any path ending in `/mcp`.
pub(crate) fn is_default_path(path: &str) -> bool {
    path == "/mcp" || path.ends_with("/mcp")
}

impl LlmApi for McpApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::Mcp
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        if head.path() == self.path {
            return route(head);
        }
        // Anywhere, but not over a request a built-in family knows by its path (a chat
        // completion whose client accepts both JSON and event streams).
        let built_in = || super::recognize(head).is_some_and(|r| r.family != ApiFamily::Mcp);
        if self.anywhere && Self::is_mcp_by_headers(head) && !built_in() {
            return route(head);
        }
        None
    }

    fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        let side = match route.operation.as_ref() {
            "mcp" => Side::Request,
            // `GET` and `DELETE` carry no message.
            _ => Side::NoMessage,
        };
        Box::new(McpBody::new(cap, side))
    }

    fn response_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        let side = match route.operation.as_ref() {
            "listen" => Side::Listen,
            _ => Side::Response,
        };
        Box::new(McpBody::new(cap, side))
    }

    fn stream_reader(&self, route: &Route, cap: usize) -> Box<dyn StreamReader> {
        // The layer never asks for it (`stream_framing` frames nothing: event streams come to
        // the response reader, which reads them in place); a family of one's own that wraps
        // this one and frames its streams as SSE gets one message per event.
        Box::new(McpEvents(Events::new(cap, route.operation == "listen")))
    }

    fn stream_framing(&self, _route: &Route, _content_type: &str) -> Option<Framing> {
        None
    }

    fn dimension_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[("mcp-session-id", "mcp_session")]
    }

    fn ids_must_match(&self) -> bool {
        true
    }
}

// Scalar and count slots of the message tree.
const JSONRPC: u8 = 0;
const ID: u8 = 1;
const METHOD: u8 = 2;
const PARAMS_NAME: u8 = 3;
const PARAMS_URI: u8 = 4;
const CLIENT_NAME: u8 = 5;
const CLIENT_VERSION: u8 = 6;
const SERVER_NAME: u8 = 7;
const SERVER_VERSION: u8 = 8;
const ERROR_CODE: u8 = 9;
const ERROR_MESSAGE: u8 = 10;
const IS_ERROR: u8 = 11;
const HAS_RESULT: u8 = 13;
const HAS_ERROR: u8 = 14;
const BATCH_METHOD: u8 = 15;
const BATCH_ID: u8 = 16;
const BATCH_ERROR: u8 = 17;
const BATCH_IS_ERROR: u8 = 18;
const BATCH_RESULT: u8 = 19;
const BATCH_LEN: u8 = 20;

/// What one JSON-RPC message (or a batch of them) holds that the records use.
static MESSAGE: &[Node] = &[
    Node::key(b"jsonrpc", Action::Scalar(JSONRPC), &[]),
    Node::key(b"id", Action::Scalar(ID), &[]),
    Node::key(b"method", Action::Scalar(METHOD), &[]),
    Node::key(
        b"params",
        Action::Walk,
        &[
            Node::key(b"name", Action::Scalar(PARAMS_NAME), &[]),
            Node::key(b"uri", Action::Scalar(PARAMS_URI), &[]),
            Node::key(
                b"clientInfo",
                Action::Walk,
                &[
                    Node::key(b"name", Action::Scalar(CLIENT_NAME), &[]),
                    Node::key(b"version", Action::Scalar(CLIENT_VERSION), &[]),
                ],
            ),
        ],
    ),
    Node::key(
        b"result",
        Action::Count(HAS_RESULT),
        &[
            Node::key(b"isError", Action::Scalar(IS_ERROR), &[]),
            Node::key(
                b"serverInfo",
                Action::Walk,
                &[
                    Node::key(b"name", Action::Scalar(SERVER_NAME), &[]),
                    Node::key(b"version", Action::Scalar(SERVER_VERSION), &[]),
                ],
            ),
        ],
    ),
    Node::key(
        b"error",
        Action::Count(HAS_ERROR),
        &[
            Node::key(b"code", Action::Scalar(ERROR_CODE), &[]),
            Node::key(b"message", Action::Scalar(ERROR_MESSAGE), &[]),
        ],
    ),
    // A batch (2025-03-26): an array of messages.
    Node::element(
        Action::Count(BATCH_LEN),
        &[
            Node::key(b"method", Action::EachScalar(BATCH_METHOD), &[]),
            Node::key(b"id", Action::Count(BATCH_ID), &[]),
            Node::key(b"error", Action::Count(BATCH_ERROR), &[]),
            Node::key(
                b"result",
                Action::Count(BATCH_RESULT),
                &[Node::key(b"isError", Action::EachScalar(BATCH_IS_ERROR), &[])],
            ),
        ],
    ),
];

/// A body: the message captured whole, read by [`MESSAGE`].
static BODY: Node = Node {
    step: Step::Element,
    action: Action::Capture,
    children: MESSAGE,
};

/// One event's message: read by [`MESSAGE`], the stream's capture keeping its bytes.
static EVENT: Node = Node::root(MESSAGE);

/// What one JSON-RPC message says, as read.
#[derive(Debug, Default)]
struct Message {
    /// `jsonrpc` is `"2.0"`.
    version_ok: bool,
    id: Option<String>,
    /// The id as written (`"3"` and `3` differ), when there is one.
    raw_id: Option<String>,
    /// An `id` member is there (a request, even with a null id), not a notification.
    has_id: bool,
    /// The id is there but was too long to keep (over 4 KiB).
    id_dropped: bool,
    method: Option<String>,
    has_result: bool,
    has_error: bool,
    /// The failure it reports: a JSON-RPC error, or a tool result with `isError`.
    failure: Option<String>,
    /// The failure is a tool result with `isError` (its text to be read from the message).
    tool_error: bool,
    invocation: Invocation,
    dimensions: Vec<(&'static str, String)>,
    /// A batch: how many messages, their methods, and how many failed.
    batch: Option<Batch>,
}

#[derive(Debug, Default)]
struct Batch {
    len: u64,
    methods: Vec<String>,
    ids: u64,
    failed: u64,
}

impl Message {
    fn read(scan: &ScanResult) -> Message {
        let text = |slot| {
            scan.scalar(slot)
                .and_then(scalar_string)
                .filter(|s| !s.is_empty())
        };
        let mut m = Message {
            version_ok: text(JSONRPC).as_deref() == Some("2.0"),
            id: scan.scalar(ID).and_then(id_text),
            raw_id: scan
                .scalar(ID)
                .filter(|raw| *raw != b"null")
                .map(|raw| String::from_utf8_lossy(raw).into_owned()),
            has_id: scan.scalar(ID).is_some() || scan.scalar_dropped(ID),
            id_dropped: scan.scalar(ID).is_none() && scan.scalar_dropped(ID),
            method: text(METHOD).map(clip_owned).or_else(|| {
                // There, but too long to keep: named for what it is, not taken for absent.
                scan.scalar_dropped(METHOD)
                    .then(|| "(method over 4 KiB)".to_string())
            }),
            has_result: scan.count(HAS_RESULT).0 > 0,
            has_error: scan.count(HAS_ERROR).0 > 0,
            ..Message::default()
        };
        let len = scan.count(BATCH_LEN).0;
        if len > 0 {
            // Names kept as far as the scalars' budget goes; the count is exact.
            let methods: Vec<String> = scan.scalars_in(BATCH_METHOD).filter_map(scalar_string).collect();
            let ids = scan.count(BATCH_ID).0;
            let tool_errors = scan
                .scalars_in(BATCH_IS_ERROR)
                .filter(|raw| scalar_bool(raw) == Some(true))
                .count() as u64;
            m.batch = Some(Batch {
                len,
                methods: methods.iter().map(|s| clip(s)).collect(),
                ids,
                failed: scan.count(BATCH_ERROR).0 + tool_errors,
            });
            return m;
        }
        if m.has_error {
            let code = scan
                .scalar(ERROR_CODE)
                .map(|raw| String::from_utf8_lossy(raw).into_owned());
            let message = text(ERROR_MESSAGE).unwrap_or_default();
            m.failure = Some(clip(&format!(
                "JSON-RPC error {}: {message}",
                code.as_deref().unwrap_or("(no code)")
            )));
        } else if scan.scalar(IS_ERROR).and_then(scalar_bool) == Some(true) {
            // Its text is read from the captured message afterwards: rare, and so no tool
            // result's text is copied aside on the way.
            m.tool_error = true;
            m.failure = Some(TOOL_ERROR.into());
        }
        let name = text(PARAMS_NAME).map(clip_owned);
        match m.method.as_deref() {
            Some("tools/call") => m.invocation.tool_name = name,
            Some("prompts/get") => m.invocation.prompt_name = name,
            Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
                m.invocation.resource_uri = text(PARAMS_URI).map(clip_owned)
            }
            _ => {}
        }
        for (slot, name) in [
            (CLIENT_NAME, "mcp_client_name"),
            (CLIENT_VERSION, "mcp_client_version"),
            (SERVER_NAME, "mcp_server_name"),
            (SERVER_VERSION, "mcp_server_version"),
        ] {
            if let Some(value) = text(slot) {
                m.dimensions.push((name, value));
            }
        }
        m
    }

    /// A response (or error) to a request.
    fn is_response(&self) -> bool {
        self.method.is_none() && (self.has_result || self.has_error)
    }

    /// What is wrong with it as JSON-RPC 2.0, if anything.
    fn problem(&self) -> Option<String> {
        if self.batch.is_some() {
            return None;
        }
        if !self.version_ok {
            return Some("not a JSON-RPC 2.0 message (\"jsonrpc\" is not \"2.0\")".into());
        }
        if self.method.is_none() && !self.has_result && !self.has_error {
            return Some(
                "not a JSON-RPC request, notification or response (no \"method\", \"result\" or \"error\")"
                    .into(),
            );
        }
        if self.has_result && self.has_error {
            return Some("a JSON-RPC response with both \"result\" and \"error\"".into());
        }
        None
    }
}

/// What a tool error says before its text.
const TOOL_ERROR: &str = "the tool reported an error (isError)";

/// A tool error's failure: [`TOOL_ERROR`] and the first text block of the result in the
/// logged message (a response, or a stream's array of messages), when it was kept whole.
fn tool_error_text(message: &crate::capture::LoggedMessage) -> String {
    let bytes = message.to_bytes();
    let text = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            let responses = match v {
                serde_json::Value::Array(items) => items,
                one => vec![one],
            };
            responses.into_iter().find_map(|m| {
                let result = m.get("result")?;
                (result.get("isError")? == true).then_some(())?;
                result
                    .get("content")?
                    .as_array()?
                    .iter()
                    .find_map(|block| block.get("text")?.as_str().map(str::to_string))
            })
        });
    match text {
        Some(text) => clip(&format!("{TOOL_ERROR}: {text}")),
        None => TOOL_ERROR.to_string(),
    }
}

/// A JSON-RPC id as the records show it: a string as it is, a number as written.
fn id_text(raw: &[u8]) -> Option<String> {
    match raw.first()? {
        b'"' => scalar_string(raw).map(clip_owned),
        b'n' => None,
        _ => std::str::from_utf8(raw).ok().map(clip),
    }
}

/// Which body a reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// A client's `POST`: one message, or a batch.
    Request,
    /// The answer to a `POST`: the response as JSON, or an event stream carrying it.
    Response,
    /// A `GET` stream: the server's messages, no response.
    Listen,
    /// The body of a `GET` or `DELETE` request: none is expected.
    NoMessage,
}

/// Reads an MCP body: JSON, or (on the response side) an event stream, told apart by its first
/// byte, so a reader needs no `Content-Type`.
struct McpBody {
    cap: usize,
    side: Side,
    form: Form,
}

enum Form {
    /// Nothing but whitespace yet.
    Unknown,
    Json(Box<JsonScanner>),
    Events(Box<Events>),
}

impl McpBody {
    fn new(cap: usize, side: Side) -> Self {
        McpBody {
            cap,
            side,
            form: Form::Unknown,
        }
    }
}

impl BodyReader for McpBody {
    fn feed(&mut self, frame: &Bytes) {
        if let Form::Unknown = self.form {
            let Some(&first) = frame.iter().find(|b| !b.is_ascii_whitespace()) else {
                return;
            };
            self.form = match (first, self.side) {
                (b'{' | b'[', _) | (_, Side::Request | Side::NoMessage) => {
                    Form::Json(Box::new(JsonScanner::new(&BODY, self.cap)))
                }
                _ => Form::Events(Box::new(Events::new(self.cap, self.side == Side::Listen))),
            };
        }
        match &mut self.form {
            Form::Unknown => {}
            Form::Json(scanner) => scanner.feed(frame),
            Form::Events(events) => events.feed(frame),
        }
    }

    fn finish(self: Box<Self>, ended: bool) -> BodyFacts {
        match self.form {
            // An empty body: a `GET`, a `DELETE`, a `202 Accepted`; a `GET` stream left before
            // its first byte has ended as any `GET` stream does.
            Form::Unknown => {
                let listen = self.side == Side::Listen;
                let mut facts = BodyFacts {
                    complete: listen,
                    stream: listen,
                    stream_ended: listen,
                    ..BodyFacts::default()
                };
                if self.side == Side::Request && ended {
                    facts
                        .errors
                        .push("the POST has no body: no JSON-RPC message".into());
                }
                facts
            }
            Form::Json(scanner) => json_facts(scanner.finish(), ended, self.side),
            Form::Events(events) => events.finish(ended),
        }
    }
}

/// What a JSON body says.
fn json_facts(mut scan: ScanResult, ended: bool, side: Side) -> BodyFacts {
    let mut facts = BodyFacts::default();
    super::scanned::report_problem(&scan, ended, &mut facts);
    let clean = facts.errors.is_empty() && scan.is_complete();
    let message = Message::read(&scan);
    if clean {
        if let Some(problem) = message.problem() {
            facts.errors.push(problem.into());
        }
    }
    facts.message = scan.take_capture().unwrap_or_default();
    facts.whole_json = clean && facts.message.total > 0 && !facts.message.truncated;
    apply(message, side, &mut facts);
    facts
}

/// Puts what a message says into the facts of its side.
fn apply(mut message: Message, side: Side, facts: &mut BodyFacts) {
    facts.request_id = message.id.clone();
    facts.raw_id = message.raw_id.take();
    facts.dimensions = std::mem::take(&mut message.dimensions);
    if let Some(batch) = message.batch {
        facts.invocation.operation = Some("batch".into());
        let methods = match batch.methods.len() {
            0 => String::new(),
            n if n <= METHODS_NAMED => format!(" ({})", batch.methods.join(", ")),
            n => format!(
                " ({}, and {} more)",
                batch.methods[..METHODS_NAMED].join(", "),
                n - METHODS_NAMED
            ),
        };
        facts.errors.push(Problem::new(
            ProblemKind::Protocol,
            format!(
                "a JSON-RPC batch of {} messages{methods} is logged as one exchange; ToolName and RequestId are not set",
                batch.len
            ),
        ));
        if side == Side::Request && batch.ids == 0 {
            facts.no_response_expected = true;
        }
        if batch.failed > 0 {
            facts.failure = Some(format!(
                "{} of the batch's {} responses failed",
                batch.failed, batch.len
            ));
        }
        return;
    }
    match side {
        Side::Request => {
            let is_response = message.is_response();
            facts.invocation = std::mem::take(&mut message.invocation);
            facts.invocation.operation = match message.method {
                Some(method) => Some(method),
                None if is_response => Some("response".into()),
                None => None,
            };
            // A notification (no `id` member), or the client's answer to a server's request.
            facts.no_response_expected =
                (facts.invocation.operation.is_some() && !message.has_id) || is_response;
            if message.id_dropped {
                facts.errors.push(Problem::new(
                    ProblemKind::Protocol,
                    "the request's id is over 4 KiB: RequestId is not set",
                ));
            } else if message.has_id && facts.raw_id.is_none() && !is_response {
                facts.errors.push(Problem::new(
                    ProblemKind::Protocol,
                    "the request's id is null (MCP requires a string or a number)",
                ));
            }
            if is_response {
                // The client's answer failing is the server's business, not this exchange's
                // failure; it is still said.
                if let Some(failure) = message.failure {
                    facts.errors.push(Problem::new(ProblemKind::Failed, failure));
                }
            }
        }
        Side::NoMessage => {}
        Side::Response | Side::Listen if message.tool_error => {
            facts.failure = Some(tool_error_text(&facts.message));
        }
        Side::Response | Side::Listen => facts.failure = message.failure,
    }
}

/// The messages of an event stream, read in place.
struct Events {
    slicer: SseSlicer,
    /// The array of the stream's messages, up to the cap.
    capture: MessageCapture,
    /// The current event's message, being read.
    event: Option<Box<JsonScanner>>,
    /// The current event has passed a byte that is not whitespace (its message has begun in
    /// the capture).
    event_started: bool,
    listen: bool,
    messages: u64,
    /// The response, once one came: it names the facts.
    response: Option<Message>,
    responses: u64,
    /// Messages of the server's own: notifications and requests, by method.
    others: Vec<String>,
    /// The first events that could not be read (at most [`METHODS_NAMED`]), and how many.
    unreadable: Vec<String>,
    unreadable_count: u64,
    first_at: Option<Instant>,
}

const OPEN: Bytes = Bytes::from_static(b"[");
const COMMA: Bytes = Bytes::from_static(b",");
const CLOSE: Bytes = Bytes::from_static(b"]");
const NEWLINE: Bytes = Bytes::from_static(b"\n");
/// Methods (and unreadable events) named in an error, at most.
const METHODS_NAMED: usize = 8;

impl Events {
    fn new(cap: usize, listen: bool) -> Self {
        Events {
            slicer: SseSlicer::default(),
            capture: MessageCapture::new(cap),
            event: None,
            event_started: false,
            listen,
            messages: 0,
            response: None,
            responses: 0,
            others: Vec::new(),
            unreadable: Vec::new(),
            unreadable_count: 0,
            first_at: None,
        }
    }

    fn feed(&mut self, frame: &Bytes) {
        let mut slicer = std::mem::take(&mut self.slicer);
        slicer.feed(frame, &mut |piece| self.piece(piece));
        self.slicer = slicer;
    }

    fn piece(&mut self, piece: SsePiece) {
        match piece {
            SsePiece::Data(data) => {
                if !self.event_started {
                    let Some(at) = data.iter().position(|b| !b.is_ascii_whitespace()) else {
                        return;
                    };
                    self.event_started = true;
                    let separator = if self.messages == 0 { OPEN } else { COMMA };
                    self.capture.push_all(&separator);
                    self.start_event(&data.slice(at..));
                    return;
                }
                self.capture.push_all(&data);
                if let Some(scanner) = self.event.as_mut() {
                    scanner.feed(&data);
                }
            }
            SsePiece::LineBreak => {
                if self.event_started {
                    self.capture.push_all(&NEWLINE);
                    if let Some(scanner) = self.event.as_mut() {
                        scanner.feed(&NEWLINE);
                    }
                }
            }
            SsePiece::EventEnd => self.end_event(),
        }
    }

    fn start_event(&mut self, data: &Bytes) {
        self.first_at.get_or_insert_with(Instant::now);
        self.messages += 1;
        self.capture.push_all(data);
        let mut scanner = Box::new(JsonScanner::new(&EVENT, 0));
        scanner.feed(data);
        self.event = Some(scanner);
    }

    fn end_event(&mut self) {
        let Some(scanner) = self.event.take() else {
            return;
        };
        self.event_started = false;
        let scan = scanner.finish();
        let n = self.messages;
        if let Some(problem) = scan.problem() {
            self.note_unreadable(format!("event {n} is not JSON: {problem}"));
            return;
        }
        let message = Message::read(&scan);
        if let Some(problem) = message.problem() {
            self.note_unreadable(format!("event {n}: {problem}"));
            return;
        }
        if message.is_response() || message.batch.is_some() {
            self.responses += 1;
            if self.response.is_none() {
                self.response = Some(message);
            }
        } else if let Some(method) = message.method {
            if self.others.len() < METHODS_NAMED {
                self.others.push(method);
            }
        }
    }

    /// An event that could not be read: said, up to a bound (a hostile stream may send
    /// millions), and counted.
    fn note_unreadable(&mut self, problem: String) {
        self.unreadable_count += 1;
        if self.unreadable.len() < METHODS_NAMED {
            self.unreadable.push(problem);
        }
    }

    fn finish(mut self, ended: bool) -> BodyFacts {
        let mut slicer = std::mem::take(&mut self.slicer);
        slicer.finish(ended, &mut |piece| self.piece(piece));
        if self.event.take().is_some() {
            // An event cut short: its part of the array is not JSON.
            self.capture.mark_cut_short();
        }
        let mut facts = BodyFacts {
            stream: true,
            stream_ended: true,
            events: Some(self.messages),
            first_token_at: self.first_at,
            ..BodyFacts::default()
        };
        if self.messages > 0 {
            self.capture.push_all(&CLOSE);
        }
        facts.message = self.capture.finish();
        facts.whole_json = self.unreadable_count == 0 && facts.message.total > 0 && !facts.message.truncated;
        let unsaid = self.unreadable_count - self.unreadable.len() as u64;
        if unsaid > 0 {
            self.unreadable
                .push(format!("{unsaid} more events could not be read"));
        }
        facts.errors.extend(
            self.unreadable
                .into_iter()
                .map(|p| Problem::new(ProblemKind::Stream, p)),
        );
        if self.responses > 1 {
            facts.errors.push(Problem::new(
                ProblemKind::Protocol,
                format!(
                    "the stream carried {} responses; the first is logged in RequestId and Outcome",
                    self.responses
                ),
            ));
        }
        // Said all: a stream once it has carried its response; a `GET` stream at any point
        // (it has no end of its own: the client leaving is how it ends).
        facts.complete = self.response.is_some() || self.listen;
        match self.response {
            Some(response) => apply(response, Side::Response, &mut facts),
            None if self.listen => {}
            None if self.messages == 0 && ended => {
                facts.errors.push(Problem::new(
                    ProblemKind::Protocol,
                    "no JSON-RPC message: the body is not JSON, and no event carried data",
                ));
                facts.stream_ended = false;
            }
            None => {
                if ended {
                    let others = if self.others.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", self.others.join(", "))
                    };
                    facts.errors.push(Problem::new(
                        ProblemKind::Protocol,
                        format!(
                            "the event stream ended before the response: it carried {} other messages{others}",
                            self.messages
                        ),
                    ));
                }
                facts.stream_ended = false;
            }
        }
        facts
    }
}

/// The stream reader, for streams framed as server-sent events elsewhere (a recognizer that
/// routes MCP to a family of its own framing): each event's data is one message.
struct McpEvents(Events);

impl StreamReader for McpEvents {
    fn event(&mut self, event: &StreamEvent<'_>) {
        // An oversized event keeps its head only; its message is then reported unreadable.
        let data = if event.oversized { event.head } else { event.data };
        self.0.piece(SsePiece::Data(Bytes::copy_from_slice(data)));
        self.0.piece(SsePiece::EventEnd);
    }

    fn finish(self: Box<Self>, ended: bool) -> BodyFacts {
        self.0.finish(ended)
    }
}
