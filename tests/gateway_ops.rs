//! The gateway binary as an operator runs it: `/healthz`, `/metrics` scraped after real
//! traffic and parsed as Prometheus exposition, and values that would lose data refused.

mod common;

use std::io::BufRead;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{chat, gateway_binary, http_get, spawn_gateway};

/// Starts the gateway on a random port with `args`; returns it and its address.
fn start(args: &[&str], log: &std::path::Path) -> (Child, String) {
    start_with_env(args, log, &[])
}

fn start_with_env(args: &[&str], log: &std::path::Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut all: Vec<&std::ffi::OsStr> = vec!["--log-file".as_ref(), log.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    let (gateway, stderr, addr) = spawn_gateway(&all, env);
    // Keep reading stderr so the gateway never blocks on it.
    std::thread::spawn(move || for _ in stderr.lines() {});
    (gateway, addr)
}

/// One sample of the exposition: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses Prometheus text exposition (format 0.0.4): comments, then `name{k="v",...} value`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = rest
                    .split("\",")
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let (k, v) = l.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, Vec::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{name}"
        );
        samples.push((name.to_string(), labels, value));
    }
    samples
}

#[test]
fn health_and_metrics_after_real_traffic() {
    let dir = std::env::temp_dir().join(format!("llm-log-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut gateway, addr) = start(
        &["--dimension", "team=header:x-team", "--metrics-dimension", "team"],
        &dir.join("llm.jsonl"),
    );
    let (status, body) = http_get(&addr, "/healthz");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body.trim(), "ok");
    for i in 0..3 {
        assert!(chat(&addr, &format!("hello {i}")).contains("200"));
    }
    // Records reach the metrics through the sink's worker thread: wait for them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let samples = loop {
        let (status, body) = http_get(&addr, "/metrics");
        assert!(status.contains("200"), "{status}");
        let samples = parse_exposition(&body);
        let requests: f64 = samples
            .iter()
            .filter(|s| s.0.starts_with("llm_log_requests"))
            .map(|s| s.2)
            .sum();
        if requests >= 3.0 || Instant::now() > deadline {
            break samples;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let label = |s: &Sample, k: &str| s.1.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let requests: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.0.starts_with("llm_log_requests"))
        .collect();
    assert_eq!(requests.iter().map(|s| s.2).sum::<f64>(), 3.0, "{samples:?}");
    assert!(requests
        .iter()
        .all(|s| label(s, "outcome").as_deref() == Some("Completed")));
    assert!(requests
        .iter()
        .all(|s| label(s, "gen_ai_response_model").as_deref() == Some("gpt-4o-mini")));
    assert!(requests
        .iter()
        .all(|s| label(s, "llm_log_dimension_team").as_deref() == Some("(none)")));
    let usage: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.0.starts_with("gen_ai_client_token_usage"))
        .collect();
    for kind in ["input", "output"] {
        assert!(
            usage
                .iter()
                .any(|s| label(s, "gen_ai_token_type").as_deref() == Some(kind)),
            "{usage:?}"
        );
    }
    assert!(samples
        .iter()
        .any(|s| s.0.starts_with("gen_ai_client_operation_duration")));
    assert!(samples
        .iter()
        .any(|s| s.0.starts_with("llm_log_cost_nano_usd") && s.2 > 0.0));
    let _ = gateway.kill();
    let _ = gateway.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn values_that_would_lose_data_are_refused() {
    for (args, says) in [
        (vec!["--queue", "0"], "--queue 0"),
        (vec!["--rotate-bytes", "0"], "--rotate-bytes 0"),
        (vec!["--max-files", "0"], "--max-files 0"),
        (vec!["--content-sample-rate", "2"], "content_sample_rate"),
        (vec!["--media-inline-bytes", "99999999"], "media_inline_bytes"),
    ] {
        let out = Command::new(gateway_binary()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// The records the gateway wrote to `log`, once `n` are there.
fn records(log: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn settings_from_a_toml_file_and_from_the_environment_agree() {
    let dir = std::env::temp_dir().join(format!("llm-log-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "prompt_bytes = 0\ndimension = [\"team=header:x-team\"]\nredact_pii = true\n",
    )
    .unwrap();
    let from_file = dir.join("file.jsonl");
    let from_env = dir.join("env.jsonl");
    let (mut a, addr_a) = start(&["--config", config.to_str().unwrap()], &from_file);
    let (mut b, addr_b) = start_with_env(
        &[],
        &from_env,
        &[
            ("LLM_LOG_GATEWAY_PROMPT_BYTES", "0"),
            ("LLM_LOG_GATEWAY_DIMENSION", "team=header:x-team"),
            ("LLM_LOG_GATEWAY_REDACT_PII", "true"),
        ],
    );
    for addr in [&addr_a, &addr_b] {
        assert!(chat(addr, "mail me at jane@example.com").contains("200"));
    }
    for log in [&from_file, &from_env] {
        let lines = records(log, 2);
        let request = lines.iter().find(|r| r["Kind"] == "Request").unwrap();
        let response = lines.iter().find(|r| r["Kind"] == "Response").unwrap();
        assert_eq!(request["ContentOmitted"], "cap_zero", "{request}");
        // A whole JSON completion is written as JSON: its text holds the redaction.
        assert!(
            response["ResponseMessages"].is_array()
                && response["ResponseMessages"]
                    .to_string()
                    .contains("[REDACTED:email]"),
            "{response}"
        );
    }
    // A flag wins over the file, a list flag over the file's list (the same dimension name
    // in both is not given twice).
    let (mut c, addr_c) = start(
        &[
            "--config",
            config.to_str().unwrap(),
            "--prompt-bytes",
            "100",
            "--dimension",
            "team=header:x-other",
        ],
        &dir.join("flag.jsonl"),
    );
    assert!(chat(&addr_c, "hello").contains("200"));
    let lines = records(&dir.join("flag.jsonl"), 2);
    assert!(lines
        .iter()
        .any(|r| r["Kind"] == "Request" && r["RequestMessages"].to_string().contains("hello")));
    for g in [&mut a, &mut b, &mut c] {
        let _ = g.kill();
        let _ = g.wait();
    }
    // An unknown key and a value of the wrong type are refused, naming the setting.
    for (text, says) in [
        ("promt_bytes = 1\n", "unknown setting \"promt_bytes\""),
        ("prompt_bytes = { a = 1 }\n", "\"prompt_bytes\" must be"),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = Command::new(gateway_binary())
            .args(["--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
