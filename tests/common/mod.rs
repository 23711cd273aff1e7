//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod mcp;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tower_llm_log::{LlmLogRecord, MemorySink, RecordKind};

/// Serves `router` on 127.0.0.1 at a random port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A body of given frames that, like `Full`, says it has ended as soon as the last frame is out.
#[derive(Debug, Clone)]
pub struct Frames {
    frames: VecDeque<Bytes>,
    /// Poll after the end panics: hyper never does it, and neither must the layer need it.
    pub strict: bool,
}

impl Frames {
    pub fn new<I: IntoIterator<Item = Bytes>>(frames: I) -> Self {
        Frames {
            frames: frames.into_iter().filter(|f| !f.is_empty()).collect(),
            strict: false,
        }
    }

    pub fn split(whole: &[u8], cuts: &[usize]) -> Self {
        let mut frames = Vec::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&whole.len())) {
            let c = c.clamp(last, whole.len());
            frames.push(Bytes::copy_from_slice(&whole[last..c]));
            last = c;
        }
        Frames::new(frames)
    }

    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.frames.pop_front() {
            Some(f) => Poll::Ready(Some(Ok(Frame::data(f)))),
            None if self.strict => panic!("polled after is_end_stream() was true"),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.frames.iter().map(|f| f.len() as u64).sum())
    }
}

/// Waits for `n` records, failing the test after a few seconds.
pub async fn wait_records(sink: &MemorySink, n: usize) -> Vec<LlmLogRecord> {
    let s = sink.clone();
    let ok = tokio::task::spawn_blocking(move || s.wait_for(n, Duration::from_secs(60)))
        .await
        .expect("join");
    let records = sink.records();
    assert!(ok, "expected {n} records, got {}: {records:#?}", records.len());
    records
}

/// The records of one kind, in sequence order.
pub fn of_kind(records: &[LlmLogRecord], kind: RecordKind) -> Vec<LlmLogRecord> {
    let mut v: Vec<_> = records.iter().filter(|r| r.kind == kind).cloned().collect();
    v.sort_by_key(|r| r.sequence_number);
    v
}

/// The concatenated message of some records.
pub fn message(records: &[LlmLogRecord]) -> String {
    records.iter().map(|r| r.messages_str()).collect()
}

pub const CHAT_REQUEST: &str = r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello \u00e9t\u00e9 \"quoted\""}],"model":"gpt-4o-mini","temperature":0.2}"#;

pub const CHAT_RESPONSE: &str = r#"{"id":"chatcmpl-abc123","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \u00e9!","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":3,"total_tokens":24,"prompt_tokens_details":{"cached_tokens":5,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":1,"audio_tokens":0}},"system_fingerprint":"fp_1"}"#;

/// A streamed completion as OpenAI sends it, with usage in the last chunk.
pub fn chat_stream() -> String {
    let chunk = |choices: &str, usage: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":{choices},\"usage\":{usage}}}\n\n"
        )
    };
    let mut s = String::new();
    s += &chunk(
        r#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#,
        "null",
    );
    s += ": a comment line\n\n";
    for word in ["Hel", "lo", " w\u{f6}rld", " \u{1F600}"] {
        s += &chunk(
            &format!(r#"[{{"index":0,"delta":{{"content":"{word}"}},"finish_reason":null}}]"#),
            "null",
        );
    }
    s += &chunk(r#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#, "null");
    s += &chunk(
        "[]",
        r#"{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#,
    );
    s += "data: [DONE]\n\n";
    s
}

pub const CHAT_STREAM_COMPLETION: &str = "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello w\u{f6}rld \u{1F600}\"},\"finish_reason\":\"stop\"}]";

/// The gateway's binary (`llm-log-gateway`, the workspace's `gateway` package), which `cargo
/// test --workspace` builds beside the test binaries (built here if this test runs alone).
pub fn gateway_binary() -> std::path::PathBuf {
    let deps = std::env::current_exe().expect("test binary path");
    let profile_dir = deps
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>");
    let binary = profile_dir.join("llm-log-gateway");
    if !binary.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "llm-log-gateway"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build -p llm-log-gateway");
    }
    binary
}

/// Sends one chat request to `addr` over a new connection; returns the status line.
pub fn chat(addr: &str, prompt: &str) -> String {
    let body = format!(r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{prompt}"}}]}}"#);
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http_exchange(addr, &request).0
}

/// `GET path` on `addr` over a new connection; returns the status line and the body.
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    http_exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

fn http_exchange(addr: &str, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the answer");
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// A writer the test can read while a sink holds it.
#[derive(Clone, Default)]
pub struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The address a gateway process says it listens on, read from its stderr (the first lines).
pub fn listening_address(stderr: &mut impl std::io::BufRead) -> Option<String> {
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(addr) = line.trim().strip_prefix("gateway listening on http://") {
            return Some(addr.to_string());
        }
        line.clear();
    }
    None
}

/// Starts the gateway binary on a random port with `args` and `env`; returns it, its stderr
/// (past the line saying where it listens) and its address.
pub fn spawn_gateway(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
    String,
) {
    use std::process::{Command, Stdio};
    let mut gateway = Command::new(gateway_binary())
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway starts");
    let mut stderr = std::io::BufReader::new(gateway.stderr.take().expect("stderr"));
    let addr = listening_address(&mut stderr).expect("the gateway says where it listens");
    (gateway, stderr, addr)
}

/// The one record of `kind`.
pub fn one(records: &[LlmLogRecord], kind: RecordKind) -> LlmLogRecord {
    let r = of_kind(records, kind);
    assert_eq!(r.len(), 1, "{kind:?} records: {r:?}");
    r.into_iter().next().unwrap()
}

/// A record's logged message, parsed as JSON.
pub fn json_of(record: &LlmLogRecord) -> serde_json::Value {
    serde_json::from_str(record.messages_str()).unwrap_or_else(|e| panic!("{e}: {}", record.messages_str()))
}

/// A fixture, parsed as JSON.
pub fn fixture(v: &str) -> serde_json::Value {
    serde_json::from_str(v).unwrap()
}

/// The token columns: prompt, completion, total, cached, reasoning, cache creation.
pub fn tokens(r: &LlmLogRecord) -> [Option<u64>; 6] {
    [
        r.prompt_tokens,
        r.completion_tokens,
        r.total_tokens,
        r.cached_tokens,
        r.reasoning_tokens,
        r.cache_creation_tokens,
    ]
}

/// What a response record says, for comparing runs of one stream framed differently.
pub type Said<'a> = (
    &'a str,
    u64,
    [Option<u64>; 6],
    &'a [String],
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
);

/// What a response record says (message, size, tokens, finish reasons, error, id, model).
pub fn said(r: &LlmLogRecord) -> Said<'_> {
    (
        r.messages_str(),
        r.message_bytes,
        tokens(r),
        &r.finish_reasons,
        &r.error,
        &r.request_id,
        &r.model_name,
    )
}

/// A child process killed when dropped: a test that fails part-way leaves no server behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The records of a JSON Lines log, once `done` holds of them (the writer is asynchronous);
/// fails the test with the log's text after 60 s.
pub fn log_records_when(log: &std::path::Path, done: impl Fn(&[LlmLogRecord]) -> bool) -> Vec<LlmLogRecord> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let records: Vec<LlmLogRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if done(&records) {
            return records;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log never got there:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
