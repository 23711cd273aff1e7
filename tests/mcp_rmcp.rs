//! End to end with the official MCP SDK (`rmcp`): an rmcp server on the streamable HTTP
//! transport (`StreamableHttpService` in an axum router at `/mcp`) behind the layer, on
//! 127.0.0.1, and a real rmcp client (`StreamableHttpClientTransport` on reqwest) that
//! initializes, lists the tools, calls `add`, `fail` and `image`, and closes. The records are
//! checked against what the client saw.
//!
//! Two server configurations, as rmcp ships them:
//! - the default (sessions): every answer to a `POST` is an event stream (a priming event with
//!   empty data, then the response), the session is in `Mcp-Session-Id`, the client holds a
//!   `GET` stream open (`listen`) and ends with a `DELETE` (`delete_session`);
//! - stateless with JSON answers: every answer is `application/json`, no session, no `GET`, no
//!   `DELETE`.
//!
//! The client asks for protocol `2026-07-28` in `initialize` and rmcp's server answers
//! `2025-11-25`, the newest version that has an `initialize`; later requests carry it in
//! `MCP-Protocol-Version`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ContentBlock, Implementation,
    ServerCapabilities, ServerConfig,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use serde_json::{json, Value};
use tower_llm_log::{LlmLogLayer, LlmLogRecord, Outcome, RecordKind};

const SERVER_NAME: &str = "llm-log-test-server";
const SERVER_VERSION: &str = "1.2.3";
const CLIENT_NAME: &str = "llm-log-test-client";
const CLIENT_VERSION: &str = "0.9.0";
const FAIL_MESSAGE: &str = "the fail tool failed on purpose";

/// About 3 KB of base64 that begins like a PNG (only its first bytes are a PNG's): above the
/// 1 KiB media threshold, so it is elided from the logged messages.
fn image_base64() -> String {
    let mut data = String::from("iVBORw0KGgo");
    while data.len() < 3000 {
        data.push_str("AAAADUlIRFIAAAABAAAAAQgGAAAAH15FxAAAAA1JREFUeJxjYGBg+A8AAQQBAHAgOM8");
    }
    data.truncate(3000);
    data
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Clone)]
struct TestServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl TestServer {
    fn new() -> Self {
        TestServer {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Adds two integers")]
    fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> CallToolResult {
        let mut result = CallToolResult::success(vec![ContentBlock::text((a + b).to_string())]);
        result.structured_content = Some(json!({ "sum": a + b }));
        result
    }

    #[tool(description = "Always fails")]
    fn fail(&self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(FAIL_MESSAGE)])
    }

    #[tool(description = "Returns a small PNG")]
    fn image(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::image(image_base64(), "image/png")])
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, SERVER_VERSION))
    }
}

type Records = Arc<Mutex<Vec<LlmLogRecord>>>;

/// The `Mcp-Session-Id` values the client sent, seen outside the layer.
type SessionsSent = Arc<Mutex<BTreeSet<String>>>;

/// Starts the rmcp server behind the layer on 127.0.0.1; returns its address, the records and
/// the session ids the client sent.
async fn start(config: StreamableHttpServerConfig) -> (std::net::SocketAddr, Records, SessionsSent) {
    let records: Records = Arc::default();
    let sink = {
        let records = records.clone();
        move |r: LlmLogRecord| records.lock().unwrap().push(r)
    };
    let sessions: SessionsSent = Arc::default();
    let seen = {
        let sessions = sessions.clone();
        move |req: axum::extract::Request| {
            if let Some(id) = req.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
                sessions.lock().unwrap().insert(id.to_string());
            }
            std::future::ready(req)
        }
    };
    let service: StreamableHttpService<TestServer, LocalSessionManager> =
        StreamableHttpService::new(|| Ok(TestServer::new()), Default::default(), config);
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(LlmLogLayer::new(sink))
        // Outermost: the headers exactly as the client sent them.
        .layer(axum::middleware::map_request(seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, records, sessions)
}

/// What the client saw.
struct ClientSaw {
    protocol_version: String,
    server_name: Option<String>,
    tools: Vec<String>,
    add: CallToolResult,
    fail: CallToolResult,
    image: CallToolResult,
}

/// The client's whole session. Before closing, waits until the three tool calls are logged:
/// the client has each response as soon as its event arrives, before the stream's end, and
/// closing aborts whatever stream it still reads.
async fn run_client(addr: std::net::SocketAddr, records: &Records) -> ClientSaw {
    // reqwest is built with `rustls-no-provider` here (the crate's dev-dependency), and the
    // transport builds a reqwest client even for http://.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new(CLIENT_NAME, CLIENT_VERSION),
    )
    .serve(transport)
    .await
    .expect("the client initializes");
    let peer = client.peer_info().expect("the server's initialize result");
    let protocol_version = peer.protocol_version.to_string();
    let server_name = peer.server_info.as_ref().map(|s| s.name.clone());

    let tools = client.list_tools(None).await.expect("tools/list");
    let tools = tools.tools.iter().map(|t| t.name.to_string()).collect();
    let arguments = json!({ "a": 2, "b": 3 }).as_object().cloned().unwrap();
    let add = client
        .call_tool(CallToolRequestParams::new("add").with_arguments(arguments))
        .await
        .expect("tools/call add");
    let fail = client
        .call_tool(CallToolRequestParams::new("fail"))
        .await
        .expect("tools/call fail");
    let image = client
        .call_tool(CallToolRequestParams::new("image"))
        .await
        .expect("tools/call image");

    wait_for(records, "the three tool calls' responses", |all| {
        exchanges(all)
            .iter()
            .filter(|e| e.op() == "tools/call" && e.response_done())
            .count()
            == 3
    })
    .await;
    client.cancel().await.expect("the client closes");
    ClientSaw {
        protocol_version,
        server_name,
        tools,
        add,
        fail,
        image,
    }
}

/// Polls the records until `done` holds, for up to 10 s (a bound, not a measurement).
async fn wait_for(
    records: &Records,
    what: &str,
    done: impl Fn(&[LlmLogRecord]) -> bool,
) -> Vec<LlmLogRecord> {
    for _ in 0..1000 {
        {
            let all = records.lock().unwrap();
            if done(&all) {
                return all.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = records.lock().unwrap();
    panic!("no {what} after 10 s; the exchanges so far:\n{}", summary(&all));
}

fn summary(records: &[LlmLogRecord]) -> String {
    exchanges(records)
        .iter()
        .map(|e| {
            let outcome = |side: &[LlmLogRecord]| side.last().map(|r| r.outcome.as_str());
            format!(
                "  {} {}: {} request records ({:?}), {} response records ({:?}, {:?})",
                e.op(),
                e.id,
                e.request.len(),
                outcome(&e.request),
                e.response.len(),
                outcome(&e.response),
                e.response.last().and_then(|r| r.error.clone()),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The records of one exchange, each side in sequence order.
struct Exchange {
    id: String,
    request: Vec<LlmLogRecord>,
    response: Vec<LlmLogRecord>,
}

impl Exchange {
    fn op(&self) -> &str {
        &self
            .request
            .first()
            .or(self.response.first())
            .unwrap()
            .operation_name
    }

    fn records(&self) -> impl Iterator<Item = &LlmLogRecord> {
        self.request.iter().chain(&self.response)
    }

    fn request_done(&self) -> bool {
        self.request.iter().any(|r| r.is_last)
    }

    fn response_done(&self) -> bool {
        self.response.iter().any(|r| r.is_last)
    }

    /// The last record of a side: the one with the side's outcome, error and counts.
    fn last(&self, kind: RecordKind) -> &LlmLogRecord {
        let side = if kind == RecordKind::Request {
            &self.request
        } else {
            &self.response
        };
        side.iter()
            .find(|r| r.is_last)
            .unwrap_or_else(|| panic!("{} {}: no last {kind:?} record", self.op(), self.id))
    }

    /// A side's logged message: its chunks concatenated in sequence order.
    fn text(&self, kind: RecordKind) -> String {
        let side = if kind == RecordKind::Request {
            &self.request
        } else {
            &self.response
        };
        side.iter().map(|r| r.messages_str()).collect()
    }

    /// A side's logged message as JSON.
    fn json(&self, kind: RecordKind) -> Value {
        let text = self.text(kind);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} {} {kind:?}: not JSON ({e}): {text}", self.op(), self.id))
    }

    /// The JSON-RPC response in the logged response: the message itself (a JSON answer), or
    /// the one among the event stream's messages that has `result` or `error`.
    fn response_message(&self) -> Value {
        match self.json(RecordKind::Response) {
            Value::Array(messages) => messages
                .into_iter()
                .find(|m| m.get("result").is_some() || m.get("error").is_some())
                .unwrap_or_else(|| {
                    panic!(
                        "{} {}: no response among the stream's messages",
                        self.op(),
                        self.id
                    )
                }),
            message => message,
        }
    }
}

/// The records grouped by `correlation_id`, in the order the exchanges first appear.
fn exchanges(records: &[LlmLogRecord]) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    for r in records {
        let i = match out.iter().position(|e| e.id == r.correlation_id) {
            Some(i) => i,
            None => {
                out.push(Exchange {
                    id: r.correlation_id.to_string(),
                    request: Vec::new(),
                    response: Vec::new(),
                });
                out.len() - 1
            }
        };
        match r.kind {
            RecordKind::Request => out[i].request.push(r.clone()),
            RecordKind::Response => out[i].response.push(r.clone()),
        }
    }
    for e in &mut out {
        e.request.sort_by_key(|r| r.sequence_number);
        e.response.sort_by_key(|r| r.sequence_number);
    }
    out
}

fn dim<'a>(r: &'a LlmLogRecord, key: &str) -> Option<&'a str> {
    r.dimensions.get(key).map(String::as_str)
}

fn only<'a>(all: &'a [Exchange], op: &str) -> &'a Exchange {
    let found: Vec<&Exchange> = all.iter().filter(|e| e.op() == op).collect();
    assert_eq!(found.len(), 1, "one {op} exchange");
    found[0]
}

fn tool_call<'a>(all: &'a [Exchange], tool: &str) -> &'a Exchange {
    let found: Vec<&Exchange> = all
        .iter()
        .filter(|e| e.op() == "tools/call" && e.request.iter().any(|r| r.tool_name.as_deref() == Some(tool)))
        .collect();
    assert_eq!(found.len(), 1, "one tools/call exchange for {tool}");
    found[0]
}

/// The checks both configurations share: the handshake, the tool list and the three calls.
/// `session` is the session id the client sent, if any; `streamed` whether the server answered
/// with event streams.
fn check_exchanges(all: &[Exchange], saw: &ClientSaw, session: Option<&str>, streamed: bool) {
    for e in all {
        for r in e.records() {
            assert_eq!(r.api.as_str(), "mcp", "{} {}", e.op(), e.id);
        }
    }
    let session_of = |r: &LlmLogRecord| dim(r, "mcp_session").map(str::to_string);
    let session = session.map(str::to_string);

    // initialize: the client's name on its request, the server's on the response, which is
    // also where the session begins.
    let init = only(all, "initialize");
    let req = init.last(RecordKind::Request);
    let res = init.last(RecordKind::Response);
    assert_eq!(dim(req, "mcp_client_name"), Some(CLIENT_NAME));
    assert_eq!(dim(req, "mcp_client_version"), Some(CLIENT_VERSION));
    assert_eq!(saw.server_name.as_deref(), Some(SERVER_NAME));
    assert_eq!(dim(res, "mcp_server_name"), Some(SERVER_NAME));
    assert_eq!(dim(res, "mcp_server_version"), Some(SERVER_VERSION));
    assert_eq!(session_of(res), session, "the session the server assigned");
    assert_eq!(
        (req.outcome, res.outcome),
        (Outcome::Completed, Outcome::Completed),
        "{:?}",
        res.error
    );
    assert!(req.request_id.is_some());
    assert_eq!(req.request_id, res.request_id);
    assert_eq!(res.is_stream_completion, streamed);
    assert_eq!(
        init.response_message()["result"]["protocolVersion"].as_str(),
        Some(saw.protocol_version.as_str()),
        "the version the client negotiated"
    );
    assert_eq!(
        init.json(RecordKind::Request)["params"]["clientInfo"]["name"],
        CLIENT_NAME
    );

    // notifications/initialized: a request record only (the 202 is not logged).
    let note = only(all, "notifications/initialized");
    assert!(note.response.is_empty(), "a notification has no response records");
    let req = note.last(RecordKind::Request);
    assert_eq!(req.outcome, Outcome::NoResponseExpected);
    assert!(req.request_id.is_none());
    assert_eq!(session_of(req), session);

    // tools/list: the tools the client got.
    let list = only(all, "tools/list");
    let res = list.last(RecordKind::Response);
    assert_eq!(res.outcome, Outcome::Completed, "{:?}", res.error);
    assert_eq!(saw.tools, ["add", "fail", "image"]);
    let logged = list.response_message();
    let listed: Vec<&str> = logged["result"]["tools"]
        .as_array()
        .expect("the logged tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(listed, saw.tools);

    // Three tool calls: named, with their JSON-RPC ids, in the session, at the version the
    // client negotiated.
    let calls: Vec<&Exchange> = all.iter().filter(|e| e.op() == "tools/call").collect();
    assert_eq!(calls.len(), 3, "three tools/call exchanges");
    let mut ids = BTreeSet::new();
    for e in &calls {
        let id = e
            .last(RecordKind::Request)
            .request_id
            .clone()
            .expect("the JSON-RPC id");
        for r in e.records() {
            assert_eq!(
                r.request_id.as_deref(),
                Some(id.as_str()),
                "request and response have the same id"
            );
            assert_eq!(session_of(r), session);
            assert_eq!(r.api_version.as_deref(), Some(saw.protocol_version.as_str()));
        }
        assert_eq!(
            e.json(RecordKind::Request)["id"].to_string(),
            id,
            "the id the client sent"
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), 3, "each call has its own id");

    // add: the arguments as sent, the result as the client got it.
    let add = tool_call(all, "add");
    for r in add.records() {
        assert_eq!(r.tool_name, Some("add".into()));
    }
    let request = add.text(RecordKind::Request);
    assert!(request.contains(r#""a":2"#), "{request}");
    assert_eq!(
        add.json(RecordKind::Request)["params"]["arguments"],
        json!({ "a": 2, "b": 3 })
    );
    let res = add.last(RecordKind::Response);
    assert_eq!(res.outcome, Outcome::Completed, "{:?}", res.error);
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(res.is_stream_completion, streamed);
    let text = saw.add.content[0]
        .as_text()
        .expect("the sum as text")
        .text
        .clone();
    assert_eq!(text, "5");
    let logged = add.response_message();
    assert_eq!(
        logged["result"]["content"][0]["text"].as_str(),
        Some(text.as_str())
    );
    assert_eq!(logged["result"]["structuredContent"], json!({ "sum": 5 }));
    assert_eq!(
        logged["result"],
        serde_json::to_value(&saw.add).unwrap(),
        "the result the client got"
    );

    // fail: a tool result with isError is the exchange's failure, with the tool's text.
    let fail = tool_call(all, "fail");
    assert_eq!(saw.fail.is_error, Some(true));
    assert_eq!(
        saw.fail.content[0].as_text().map(|t| t.text.as_str()),
        Some(FAIL_MESSAGE)
    );
    let res = fail.last(RecordKind::Response);
    assert_eq!(res.tool_name, Some("fail".into()));
    assert_eq!(res.outcome, Outcome::UpstreamError);
    assert_eq!(res.status_code, Some(200));
    let error = res.error.as_deref().expect("the tool's error");
    assert!(error.contains(FAIL_MESSAGE), "{error}");
    assert_eq!(
        fail.response_message()["result"],
        serde_json::to_value(&saw.fail).unwrap()
    );
    assert_eq!(fail.last(RecordKind::Request).outcome, Outcome::Completed);

    // image: the client got every byte; the log has a placeholder instead.
    let image = tool_call(all, "image");
    let data = image_base64();
    let got = saw.image.content[0].as_image().expect("an image block");
    assert_eq!(
        (got.data.as_str(), got.mime_type.as_str()),
        (data.as_str(), "image/png")
    );
    let res = image.last(RecordKind::Response);
    assert_eq!(res.outcome, Outcome::Completed, "{:?}", res.error);
    assert!(data.len() > 1024);
    assert!(
        image.response.iter().map(|r| r.media_elided).sum::<u32>() >= 1,
        "the image is elided"
    );
    let logged = image.text(RecordKind::Response);
    assert!(!logged.contains(&data), "the raw base64 is not logged");
    assert!(!logged.contains("iVBORw0KGgo"), "{logged}");
    assert!(logged.contains("[media image/png"), "{logged}");
    let block = &image.response_message()["result"]["content"][0];
    assert_eq!(
        (block["type"].as_str(), block["mimeType"].as_str()),
        (Some("image"), Some("image/png"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmcp_session_over_event_streams_is_logged_as_the_client_saw_it() {
    // rmcp's default: sessions, every answer an event stream. No keep-alive comments.
    let config = StreamableHttpServerConfig::default().with_sse_keep_alive(None);
    let (addr, records, sessions) = start(config).await;
    let saw = run_client(addr, &records).await;

    // After the close: the client's GET stream (`listen`) and its DELETE (`delete_session`).
    let all = wait_for(&records, "listen and delete_session exchanges", |all| {
        let all = exchanges(all);
        ["listen", "delete_session"]
            .iter()
            .all(|op| all.iter().any(|e| e.op() == *op && e.response_done()))
    })
    .await;
    let all = exchanges(&all);
    let sessions: Vec<String> = sessions.lock().unwrap().iter().cloned().collect();
    assert_eq!(sessions.len(), 1, "the client used one session: {sessions:?}");
    let session = sessions[0].as_str();
    assert!(!session.is_empty());
    check_exchanges(&all, &saw, Some(session), true);

    // The event streams' priming events (empty data) are not messages: each answer carried one.
    for e in all.iter().filter(|e| e.op() == "tools/call") {
        assert_eq!(
            e.last(RecordKind::Response).stream_events,
            Some(1),
            "{} {}",
            e.op(),
            e.id
        );
        assert!(
            e.json(RecordKind::Response).is_array(),
            "the stream's messages, in order"
        );
    }

    // listen: the GET stream, open until the client closed; it carried no message.
    let listen = only(&all, "listen");
    let res = listen.last(RecordKind::Response);
    assert!(res.is_stream_completion);
    assert!(res.request_id.is_none());
    assert_eq!(dim(res, "mcp_session"), Some(session));
    // The client aborts it before its DELETE: that is how such a stream ends, not a client
    // gone mid-answer. (So are the POSTs' streams, which rmcp's client drops soon after their
    // response has come, whether or not the server has ended them yet.)
    assert_eq!(res.outcome, Outcome::Completed, "{:?}", res.error);
    assert_eq!(
        res.stream_events,
        Some(0),
        "only the priming event, which carries no message"
    );

    // delete_session: an empty request, a 202 with an empty body.
    let delete = only(&all, "delete_session");
    let res = delete.last(RecordKind::Response);
    assert_eq!(
        (res.status_code, res.outcome),
        (Some(202), Outcome::Completed),
        "{:?}",
        res.error
    );
    assert_eq!(dim(res, "mcp_session"), Some(session));

    let ops: BTreeSet<&str> = all.iter().map(|e| e.op()).collect();
    assert_eq!(
        ops,
        BTreeSet::from([
            "delete_session",
            "initialize",
            "listen",
            "notifications/initialized",
            "tools/call",
            "tools/list"
        ])
    );
    assert_eq!(all.len(), 8, "{}", summary(&records.lock().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmcp_stateless_server_answering_json_is_logged_as_the_client_saw_it() {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None);
    let (addr, records, sessions) = start(config).await;
    let saw = run_client(addr, &records).await;

    let all = wait_for(&records, "six settled exchanges", |all| {
        let all = exchanges(all);
        all.len() >= 6
            && all
                .iter()
                .all(|e| e.request_done() && (e.op().starts_with("notifications/") || e.response_done()))
    })
    .await;
    let all = exchanges(&all);
    assert!(
        sessions.lock().unwrap().is_empty(),
        "no session without legacy_session_mode"
    );
    check_exchanges(&all, &saw, None, false);
    for e in all.iter().filter(|e| e.op() == "tools/call") {
        assert!(
            e.json(RecordKind::Response).is_object(),
            "a JSON answer is the message itself"
        );
    }
    // No GET stream and no DELETE without a session.
    assert_eq!(all.len(), 6, "{}", summary(&records.lock().unwrap()));
}
