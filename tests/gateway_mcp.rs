//! The gateway binary proxying an MCP session to its built-in mock, with a real HTTP client on
//! 127.0.0.1: initialize, the initialized notification, tools/list, four tool calls (text, an
//! image, a tool error, a progress stream), an unknown tool, a listen stream, an expired session
//! and the session's end. The log must agree with what the client saw, and `llmlog` must read it.

mod common;

use std::io::BufRead;

use common::spawn_gateway;
use serde_json::{json, Value};
use tower_llm_log::{LlmLogRecord, Outcome, RecordKind};

/// Waits until the log holds `requests` request records and `responses` last response
/// records (the writer is asynchronous), then returns every record.
fn records(log: &std::path::Path, requests: usize, responses: usize) -> Vec<LlmLogRecord> {
    let seen = |records: &[LlmLogRecord]| {
        let count = |kind| records.iter().filter(|r| r.kind == kind && r.is_last).count();
        (count(RecordKind::Request), count(RecordKind::Response))
    };
    let records = common::log_records_when(log, |r| seen(r) >= (requests, responses));
    assert_eq!(seen(&records), (requests, responses), "{records:#?}");
    records
}

fn exchange(
    records: &[LlmLogRecord],
    kind: RecordKind,
    pick: impl Fn(&LlmLogRecord) -> bool,
) -> &LlmLogRecord {
    records
        .iter()
        .find(|r| r.kind == kind && pick(r))
        .unwrap_or_else(|| panic!("no such {kind:?} record in {records:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_logs_an_mcp_session() {
    let dir = std::env::temp_dir().join(format!("llm-log-mcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("llm.jsonl");
    let _ = std::fs::remove_file(&log);
    let args: Vec<&std::ffi::OsStr> = vec!["--log-file".as_ref(), log.as_os_str()];
    let (gateway, stderr, addr) = spawn_gateway(&args, &[]);
    let _gateway = common::KillOnDrop(gateway);
    std::thread::spawn(move || for _ in stderr.lines() {});
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/mcp");
    let send = |session: Option<&str>, body: Value| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        if let Some(s) = session {
            request = request.header("mcp-session-id", s);
        }
        async move { request.send().await.expect("the gateway answers") }
    };

    let init = send(
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
            "capabilities": {}, "clientInfo": {"name": "gateway-test", "version": "3.1"}}}),
    )
    .await;
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let init: Value = init.json().await.unwrap();
    let s = Some(session.as_str());
    let note = send(
        s,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(note.status(), 202);
    send(s, json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let call = |id: u64, name: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": {"city": "Bergen"}, "_meta": {"progressToken": id}}})
    };
    let weather: Value = send(s, call(3, "get_weather")).await.json().await.unwrap();
    let chart: Value = send(s, call(4, "render_chart")).await.json().await.unwrap();
    let flaky: Value = send(s, call(5, "flaky")).await.json().await.unwrap();
    let counted = send(s, call(6, "count_slowly")).await;
    assert_eq!(counted.headers()["content-type"], "text/event-stream");
    let counted = counted.text().await.unwrap();
    send(s, call(7, "no_such_tool")).await;
    let expired = send(Some("expired"), call(8, "get_weather")).await;
    assert_eq!(expired.status(), 404);
    let listen = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();

    // Eleven requests; the notification's 202 is not logged.
    let records = records(&log, 11, 10);
    let is = |op: &'static str| move |r: &LlmLogRecord| r.operation_name == op;
    let tool = |name: &'static str| move |r: &LlmLogRecord| r.tool_name.as_deref() == Some(name);

    let init_res = exchange(&records, RecordKind::Response, is("initialize"));
    assert_eq!(init_res.api.as_str(), "mcp");
    assert_eq!(init_res.dimensions["mcp_session"], session);
    assert_eq!(
        init_res.dimensions["mcp_server_name"],
        init["result"]["serverInfo"]["name"].as_str().unwrap()
    );
    let init_req = exchange(&records, RecordKind::Request, is("initialize"));
    assert_eq!(init_req.dimensions["mcp_client_name"], "gateway-test");

    let note = exchange(&records, RecordKind::Request, is("notifications/initialized"));
    assert_eq!(note.outcome, Outcome::NoResponseExpected);
    assert!(!records
        .iter()
        .any(|r| r.kind == RecordKind::Response && r.correlation_id == note.correlation_id));

    let w = exchange(&records, RecordKind::Response, tool("get_weather"));
    assert_eq!(w.outcome, Outcome::Completed);
    assert_eq!(w.request_id.as_deref(), Some("3"));
    assert_eq!(w.dimensions["mcp_session"], session);
    let logged: Value = serde_json::from_str(w.messages_str()).unwrap();
    assert_eq!(logged, weather, "the log holds what the client received");

    let c = exchange(&records, RecordKind::Response, tool("render_chart"));
    assert_eq!(c.media_elided, 1);
    let image = chart["result"]["content"][1]["data"].as_str().unwrap();
    assert!(!c.messages_str().contains(image));
    assert!(c.messages_str().contains("[media image/png"));

    let f = exchange(&records, RecordKind::Response, tool("flaky"));
    assert_eq!(f.outcome, Outcome::UpstreamError);
    let text = flaky["result"]["content"][0]["text"].as_str().unwrap();
    assert!(f.error.as_deref().unwrap().contains(text));

    let n = exchange(&records, RecordKind::Response, tool("count_slowly"));
    assert!(n.is_stream_completion);
    assert_eq!(n.stream_events, Some(4));
    assert_eq!(counted.matches("data: ").count(), 4);
    assert_eq!(n.outcome, Outcome::Completed);

    let u = exchange(&records, RecordKind::Response, tool("no_such_tool"));
    assert_eq!(u.outcome, Outcome::UpstreamError);
    assert!(u.error.as_deref().unwrap().contains("-32602"));

    let gone = exchange(&records, RecordKind::Response, |r| r.status_code == Some(404));
    assert_eq!(gone.outcome, Outcome::UpstreamError);
    assert_eq!(gone.dimensions["mcp_session"], "expired");

    let l = exchange(&records, RecordKind::Response, is("listen"));
    assert_eq!(l.stream_events, Some(2));
    assert_eq!(listen.matches("data: ").count(), 2);
    exchange(&records, RecordKind::Request, is("delete_session"));

    // llmlog reads the MCP exchanges: calls, errors and latency per tool.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llmlog"))
        .args(["usage", "--by", "tool", "--json"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |t: &str| {
        rows.iter()
            .find(|r| r["Group"]["tool"] == t)
            .unwrap_or_else(|| panic!("{t} in {rows:#?}"))
            .clone()
    };
    assert_eq!(
        (
            row("get_weather")["Requests"].clone(),
            row("get_weather")["Errors"].clone()
        ),
        (json!(2), json!(1))
    );
    assert_eq!(
        (row("flaky")["Requests"].clone(), row("flaky")["Errors"].clone()),
        (json!(1), json!(1))
    );
    assert!(row("count_slowly")["LatencyP50Ms"].as_f64().unwrap() > 0.0);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llmlog"))
        .args(["exchanges"])
        .arg(&log)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mcp: tools/call id=5 tool=flaky"), "{text}");
    assert!(
        text.contains("error: the tool reported an error (isError): Weather service"),
        "{text}"
    );
    assert!(text.contains("outcome=UpstreamError"), "{text}");
}
