//! The llmlog command as a process, on logs the layer wrote from traffic through the gateway's
//! router: exchanges and usage, text, JSON and CSV, gzip and stdin, bad input and bad flags.
#![cfg(feature = "cli")]

mod common;

#[allow(dead_code)]
#[path = "../gateway/src/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../gateway/src/mock.rs"]
mod mock;
#[path = "../gateway/src/mock_apis.rs"]
#[allow(dead_code)]
mod mock_apis;
#[allow(dead_code)]
#[path = "../gateway/src/mock_mcp.rs"]
mod mock_mcp;
#[path = "../gateway/src/mock_native.rs"]
#[allow(dead_code)]
mod mock_native;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::serve;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_llm_log::sink::JsonLinesFile;
use tower_llm_log::{LlmLogLayer, LogConfig};

/// Four exchanges (two models, a stream, an upstream error) logged in 16-byte chunks.
async fn write_log(dir: &Path) -> PathBuf {
    let path = dir.join("llm.jsonl");
    let file = Arc::new(JsonLinesFile::builder(&path).build().unwrap());
    let config = LogConfig::builder()
        .chunk_bytes(16)
        .dimension("user", tower_llm_log::DimensionSource::header("x-user-id"))
        .build()
        .unwrap();
    let mock = serve(mock::router()).await;
    let gw = serve(app::router(
        app::Upstream::new(&format!("http://{mock}")).unwrap(),
        LlmLogLayer::new(file.clone()).with_config(config),
    ))
    .await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    for (model, stream, user) in [
        ("gpt-4o", false, "alice"),
        ("gpt-4o", true, "bob"),
        ("o3-mini", false, "alice"),
        ("mock-error", false, "bob"),
    ] {
        let body = format!(
            r#"{{"model":"{model}","stream":{stream},"stream_options":{{"include_usage":true}},"messages":[{{"role":"user","content":"count these five words"}}]}}"#
        );
        let req = http::Request::post(format!("http://{gw}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-user-id", user)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        client
            .request(req)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while file.written() < 4 * 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Wait for every chunk: the last response record of each of the 4 exchanges.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lasts = text
            .lines()
            .filter(|l| l.contains("\"Kind\":\"Response\"") && l.contains("\"IsLast\":true"))
            .count();
        if lasts == 4 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    path
}

fn llmlog(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmlog"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tower-llm-log-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_and_usage_from_a_log_the_layer_wrote() {
    let dir = temp_dir("main");
    let log = write_log(&dir).await;
    let log = log.to_str().unwrap();

    let out = llmlog(&["exchanges", log, "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exchanges = json_lines(&out);
    assert_eq!(exchanges.len(), 4);
    for e in &exchanges {
        assert_eq!(e["Complete"], true, "{e}");
        assert_eq!(
            e["RequestMessages"],
            r#"[{"role":"user","content":"count these five words"}]"#
        );
    }
    let streamed = exchanges
        .iter()
        .find(|e| e["IsStreamCompletion"] == true)
        .unwrap();
    let completion: serde_json::Value =
        serde_json::from_str(streamed["ResponseMessages"].as_str().unwrap()).unwrap();
    assert_eq!(
        completion[0]["message"]["content"],
        "Mock reply to: count these five words"
    );
    let error = exchanges.iter().find(|e| e["ModelName"] == "mock-error").unwrap();
    assert_eq!(
        (error["Outcome"].as_str(), error["StatusCode"].as_u64()),
        (Some("UpstreamError"), Some(429))
    );

    // One exchange by id, as text.
    let id = exchanges[0]["CorrelationId"].as_str().unwrap();
    let out = llmlog(&["exchanges", log, "--correlation-id", id], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("\n== ").count() + usize::from(text.starts_with("== ")),
        1
    );
    assert!(text.contains("-- request") && text.contains("-- response"));

    // Usage by model: the mock counts words + 3 per message, and the reply is 3 + 4 words.
    let out = llmlog(&["usage", log, "--by", "model", "--bucket", "1d", "--json"], None);
    assert!(out.status.success());
    let rows = json_lines(&out);
    let row = |m: &str| rows.iter().find(|r| r["Group"]["model"] == m).unwrap().clone();
    assert_eq!(
        (
            row("gpt-4o")["Requests"].as_u64(),
            row("gpt-4o")["TotalTokens"].as_u64()
        ),
        (Some(2), Some(2 * (7 + 7)))
    );
    assert_eq!(row("o3-mini")["PromptTokens"], 7);
    assert_eq!(
        (
            row("mock-error")["Errors"].as_u64(),
            row("mock-error")["WithoutUsage"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let out = llmlog(&["usage", log, "--by", "model", "--by", "outcome", "--csv"], None);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        csv.starts_with("bucket,model,outcome,requests,errors,prompt,completion,total"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 3);
    // A time range that excludes everything.
    let out = llmlog(&["usage", log, "--until", "2000-01-01T00:00:00Z", "--json"], None);
    assert!(out.status.success() && out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_stdin_and_malformed_lines() {
    let dir = temp_dir("inputs");
    let log = write_log(&dir).await;
    let plain = llmlog(&["usage", log.to_str().unwrap(), "--json"], None);
    let bytes = std::fs::read(&log).unwrap();
    let gz = dir.join("llm.jsonl.gz");
    let mut enc =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&bytes).unwrap();
    enc.finish().unwrap();
    let zipped = llmlog(&["usage", gz.to_str().unwrap(), "--json"], None);
    assert_eq!(zipped.stdout, plain.stdout);
    let piped = llmlog(&["usage", "-", "--json"], Some(&bytes));
    assert_eq!(piped.stdout, plain.stdout);
    // The same log given twice (overlapping files): each exchange still counts once.
    let twice = llmlog(
        &["usage", log.to_str().unwrap(), gz.to_str().unwrap(), "--json"],
        None,
    );
    assert_eq!(twice.stdout, plain.stdout);

    // A line of bytes that are not UTF-8 first: the lines after it must still be read.
    let mut broken = b"\xff\xfe not text\n".to_vec();
    broken.extend_from_slice(&bytes);
    broken.extend_from_slice(b"this is not a record\n{\"half\":\n");
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, &broken).unwrap();
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    let out = llmlog(&["usage", bad.to_str().unwrap(), "--json"], None);
    assert_eq!(out.status.code(), Some(1), "input problems exit 1");
    assert_eq!(out.stdout, plain.stdout, "good lines still count");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:1: skipped"), "{err}");
    assert!(
        err.contains(&format!("bad.jsonl:{}: skipped", lines + 2)),
        "{err}"
    );
    assert!(err.contains("3 malformed lines skipped"), "{err}");
    let missing = llmlog(&["usage", dir.join("nope.jsonl").to_str().unwrap()], None);
    assert_eq!(missing.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_is_one_file_with_a_series_per_model() {
    let dir = temp_dir("report");
    let log = write_log(&dir).await;
    let html_path = dir.join("report.html");
    let out = llmlog(
        &[
            "report",
            log.to_str().unwrap(),
            "-o",
            html_path.to_str().unwrap(),
            "--bucket",
            "1m",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    // Self-contained: no script, stylesheet, image or link fetched from anywhere.
    for fetch in ["<script", "<link", "<img", "src=", "href=", "url("] {
        assert!(
            !html.contains(fetch),
            "the report must not fetch anything: found {fetch}"
        );
    }
    let tokens = &html[html.find("<svg id=\"tokens\"").unwrap()..];
    let tokens = &tokens[..tokens.find("</svg>").unwrap()];
    let mut series: Vec<&str> = tokens
        .split("data-series=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    series.sort();
    assert_eq!(
        series,
        ["gpt-4o", "mock-error", "o3-mini"],
        "one series per model"
    );
    for chart in ["<svg id=\"requests\"", "<svg id=\"latency\"", "<svg id=\"ttft\""] {
        assert!(html.contains(chart), "{chart}");
    }
    assert!(html.contains("<rect"), "the latency histogram has bars");
    assert!(
        html.contains("Top 3 exchanges by tokens"),
        "the error exchange has no tokens to rank"
    );
    let none = dir.join("none.html");
    let out = llmlog(
        &[
            "report",
            log.to_str().unwrap(),
            "-o",
            none.to_str().unwrap(),
            "--top",
            "0",
        ],
        None,
    );
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&none)
        .unwrap()
        .contains("Top 0 exchanges by tokens"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn usage_by_dimension_with_cost_and_the_report_of_top_values() {
    let dir = temp_dir("by-dimension");
    let log = write_log(&dir).await;
    let out = llmlog(
        &[
            "usage",
            log.to_str().unwrap(),
            "--by",
            "dimension:user",
            "--by",
            "model",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = json_lines(&out);
    let row = |user: &str, model: &str| {
        rows.iter()
            .find(|r| r["Group"]["dimension:user"] == user && r["Group"]["model"] == model)
            .unwrap_or_else(|| panic!("{user} {model}: {rows:?}"))
            .clone()
    };
    let alice = row("alice", "gpt-4o");
    assert_eq!(alice["Requests"], 1);
    // The mock's usage at the built-in gpt-4o prices, exactly.
    let (prompt, completion) = (
        alice["PromptTokens"].as_f64().unwrap(),
        alice["CompletionTokens"].as_f64().unwrap(),
    );
    let expected = (prompt * 2.5 + completion * 10.0) / 1e6;
    assert!(
        (alice["CostUsd"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{alice}"
    );
    for key in [
        "LatencyP50Ms",
        "LatencyP90Ms",
        "LatencyP99Ms",
        "TtftP50Ms",
        "TtftP90Ms",
        "TtftP99Ms",
    ] {
        assert!(alice.get(key).is_some(), "{key}");
    }
    assert!(row("bob", "gpt-4o")["CostUsd"].as_f64().unwrap() > 0.0);
    assert_eq!(row("bob", "mock-error")["CostUsd"], 0.0);
    let text = llmlog(&["usage", log.to_str().unwrap(), "--by", "dimension:user"], None);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let header = text.lines().next().unwrap();
    for column in [
        "dimension:user",
        "cost_usd",
        "est_cost_usd",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "ttft_p90_ms",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let html_path = dir.join("report.html");
    let out = llmlog(
        &["report", log.to_str().unwrap(), "-o", html_path.to_str().unwrap()],
        None,
    );
    assert!(out.status.success());
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<svg id=\"cost\""));
    assert!(html.contains("Top 2 values of user by tokens") && html.contains("Top 2 values of user by cost"));
    assert!(html.contains("at most 6.25% above the true value"));
    let bad = llmlog(&["usage", log.to_str().unwrap(), "--by", "colour"], None);
    assert_eq!(bad.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["usage"][..],
        &["usage", "x.jsonl", "--bucket", "soon"],
        &["usage", "x", "--since", "yesterday"],
        &["usage", "x", "--bucket", "0s"],
        &["frobnicate"],
    ] {
        let out = llmlog(args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
