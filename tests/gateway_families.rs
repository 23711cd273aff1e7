//! The gateway binary proxying Gemini, Bedrock Converse and Ollama to its built-in mock, with a
//! real HTTP client on 127.0.0.1: what the client received and what the log says must agree.

mod common;

use std::io::BufRead;

use common::spawn_gateway;
use serde_json::{json, Value};
use tower_llm_log::{LlmLogRecord, RecordKind};

/// Waits until the log holds `n` records (the writer is asynchronous), then returns them.
fn records(log: &std::path::Path, n: usize) -> Vec<LlmLogRecord> {
    let records = common::log_records_when(log, |r| r.len() >= n);
    assert_eq!(records.len(), n, "{records:#?}");
    records
}

fn response_of<'a>(records: &'a [LlmLogRecord], api: &str, stream: bool) -> &'a LlmLogRecord {
    records
        .iter()
        .find(|r| r.kind == RecordKind::Response && r.api.as_str() == api && r.is_stream_completion == stream)
        .unwrap_or_else(|| panic!("no {api} response (stream {stream}) in {records:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_logs_gemini_bedrock_and_ollama() {
    let dir = std::env::temp_dir().join(format!("llm-log-families-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("llm.jsonl");
    let _ = std::fs::remove_file(&log);
    let args: Vec<&std::ffi::OsStr> = vec!["--log-file".as_ref(), log.as_os_str()];
    let (mut gateway, stderr, addr) = spawn_gateway(&args, &[]);
    std::thread::spawn(move || for _ in stderr.lines() {});
    // The client speaks plain HTTP here; reqwest still wants a TLS provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let post = |path: &'static str, body: Value| {
        let request = client
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let response = request.send().await.expect("the gateway answers");
            assert_eq!(response.status(), 200, "{path}");
            response.bytes().await.expect("the body arrives")
        }
    };
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "name three colours"}]}]});
    let body = post("/v1beta/models/gemini-2.5-flash:generateContent", gemini.clone()).await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    post(
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        gemini.clone(),
    )
    .await;
    post("/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gemini).await;

    let converse = json!({"messages": [{"role": "user", "content": [{"text": "name three colours"}]}]});
    post("/model/us.amazon.nova-micro-v1%3A0/converse", converse.clone()).await;
    let stream = post("/model/us.amazon.nova-micro-v1%3A0/converse-stream", converse).await;
    assert_eq!(
        &stream[8..12],
        crc32fast::hash(&stream[..8]).to_be_bytes(),
        "a binary event stream"
    );

    let chat = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "name three colours"}]});
    let lines = post("/api/chat", chat).await;
    let generate = json!({"model": "llama3.2", "prompt": "name three colours", "stream": false});
    post("/api/generate", generate).await;

    let records = records(&log, 14);
    gateway.kill().ok();
    gateway.wait().ok();
    let text = answer["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(text, "Mock reply to: name three colours");
    for (api, stream) in [
        ("gemini_generate_content", false),
        ("gemini_generate_content", true),
        ("bedrock_converse", false),
        ("bedrock_converse", true),
        ("ollama_chat", true),
        ("ollama_generate", false),
    ] {
        let r = response_of(&records, api, stream);
        assert_eq!(r.error, None, "{api} {stream}");
        assert!(
            r.messages_str().contains("Mock reply to: name three colours"),
            "{api}: {}",
            r.messages_str()
        );
        assert_eq!(r.completion_tokens, Some(6), "{api} {stream}");
        assert!(r.prompt_tokens.is_some_and(|p| p > 0), "{api} {stream}");
    }
    let gemini: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Response && r.api.as_str() == "gemini_generate_content")
        .collect();
    assert_eq!(gemini.len(), 3);
    let value = |r: &LlmLogRecord| serde_json::from_str::<Value>(r.messages_str()).unwrap();
    assert_eq!(value(gemini[0]), value(gemini[1]), "JSON and streamed array");
    assert_eq!(value(gemini[1]), value(gemini[2]), "streamed array and SSE");
    assert_eq!(gemini[2].provider.as_deref(), Some("gcp.vertex_ai"));
    let bedrock = response_of(&records, "bedrock_converse", true);
    assert!(bedrock
        .request_id
        .as_deref()
        .is_some_and(|id| id.contains("-mock-")));
    assert_eq!(bedrock.model_name.as_deref(), Some("us.amazon.nova-micro-v1:0"));
    let last_line: Value =
        serde_json::from_slice(lines.split(|b| *b == b'\n').rev().nth(1).unwrap()).unwrap();
    assert_eq!(
        response_of(&records, "ollama_chat", true).total_tokens,
        last_line["prompt_eval_count"]
            .as_u64()
            .zip(last_line["eval_count"].as_u64())
            .map(|(p, e)| p + e),
        "the log's total is what the client was told"
    );
}
