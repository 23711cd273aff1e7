//! llmlog against logs written by an attacker: forged lines, formula cells, an exchange whose
//! chunks never end and a crowd of distinct models. Output never carries control characters
//! or line breaks from log data, CSV cells cannot run as formulas, and peak memory stays
//! bounded by the limits whatever the log (read from /proc while the process runs).
#![cfg(feature = "cli")]

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tower-llm-log-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One response record, as JSON, with the given fields.
fn record(id: &str, seq: u32, last: bool, model: &str, message: &str) -> String {
    serde_json::json!({
        "TimeGenerated": "2026-11-24T03:02:12.706100119Z", "CorrelationId": id, "Kind": "Response",
        "SequenceNumber": seq, "IsLast": last, "Api": "chat_completions", "OperationName": "chat",
        "ModelName": model, "IsStreamCompletion": false, "ResponseMessages": message,
        "MessageBytes": message.len(), "Truncated": false, "DurationMs": 1.5, "Outcome": "Completed",
        "TotalTokens": 3
    })
    .to_string()
}

/// Runs llmlog; returns (status code, stdout, stderr, peak resident memory in bytes).
fn run(args: &[&str]) -> (Option<i32>, String, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmlog"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        stdout.read_to_end(&mut s).unwrap();
        s
    });
    // VmHWM is the peak so far: the last reading before the process ends is its peak, give or
    // take what it allocates in its last few milliseconds.
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    (
        out.status.code(),
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        peak,
    )
}

#[test]
fn forged_lines_and_escape_sequences_stay_visible_escapes() {
    let dir = temp_dir("forged");
    let log = dir.join("log.jsonl");
    let forged = "gpt-4o\n== forged 2026-01-01T00:00:00Z model=x outcome=Completed status=200 tokens=1/1/2\u{1b}[31m\u{202e}";
    let lines = [
        record("real", 0, true, forged, "answer\n== also forged\u{7}"),
        record("=cmd|' /C calc'!A0", 0, true, "=HYPERLINK(\"http://x\")", "{}"),
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let (code, text, _, _) = run(&["exchanges", log.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(text.lines().filter(|l| l.starts_with("== ")).count(), 2, "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("== forged") || l.starts_with("== also")),
        "{text}"
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'));
    assert!(text.contains("\\u{1b}[31m"), "{text}");
    for args in [
        vec!["usage", "--by", "model"],
        vec!["usage", "--by", "model", "--csv"],
    ] {
        let mut args = args.clone();
        args.push(log.to_str().unwrap());
        let (code, out, _, _) = run(&args);
        assert_eq!(code, Some(0));
        assert!(
            !out.contains('\u{1b}') && !out.lines().any(|l| l.starts_with("== ")),
            "{out}"
        );
        assert_eq!(out.lines().count(), 3, "a header and one line per model: {out}");
        if args.contains(&"--csv") {
            assert!(out.contains(",\"'=HYPERLINK("), "{out}");
            assert!(
                !out.lines().any(|l| l.split(',').any(|c| c.starts_with('='))),
                "{out}"
            );
        }
    }
    let (code, out, err, _) = run(&["exchanges", log.to_str().unwrap(), "--correlation-id", "nope"]);
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert!(err.contains("no exchange with correlation id nope"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_exchange_whose_chunks_never_end_costs_the_byte_budget_not_the_log() {
    let dir = temp_dir("endless");
    let log = dir.join("log.jsonl");
    // 96 MiB of chunks of one exchange that never ends (no IsLast).
    let chunk = "x".repeat(32 * 1024);
    let mut w = BufWriter::new(std::fs::File::create(&log).unwrap());
    let mut written = 0;
    let mut seq = 0;
    while written < 96 << 20 {
        let line = record("endless", seq, false, "m", &chunk);
        written += line.len() + 1;
        writeln!(w, "{line}").unwrap();
        seq += 1;
    }
    w.flush().unwrap();
    drop(w);
    let (code, out, _, peak) = run(&[
        "exchanges",
        "--json",
        "--max-open-bytes",
        "8388608",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0));
    // Given out in pieces, each marked incomplete; every chunk is there.
    let pieces: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(pieces.len() >= 10 && pieces.iter().all(|p| p["Complete"] == false));
    let total: usize = pieces
        .iter()
        .map(|p| p["ResponseMessages"].as_str().map_or(0, str::len))
        .sum();
    assert_eq!(total, seq as usize * chunk.len());
    // The budget (8 MiB), the channel of 256 records between the threads (8 MiB of chunks
    // at most) and the largest piece printed twice over (JSON and its line): well under the
    // 96 MiB the exchange holds.
    eprintln!("endless exchange: peak resident memory {} MiB", peak >> 20);
    assert!(peak < 80 << 20, "peak resident memory {} MiB", peak >> 20);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn distinct_models_past_the_bound_are_summed_as_other_in_bounded_memory() {
    let dir = temp_dir("models");
    let log = dir.join("log.jsonl");
    let mut w = BufWriter::new(std::fs::File::create(&log).unwrap());
    let n = 200_000;
    for i in 0..n {
        writeln!(
            w,
            "{}",
            record(&format!("c{i}"), 0, true, &format!("model-{i}"), "")
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let (code, out, err, peak) = run(&[
        "usage",
        "--by",
        "model",
        "--max-groups",
        "1000",
        "--json",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1001);
    let other = rows.iter().find(|r| r["Group"]["model"] == "(other)").unwrap();
    assert_eq!(other["Requests"], n - 1000);
    assert!(
        err.contains("199000 exchanges of groups past --max-groups were summed as (other)"),
        "{err}"
    );
    // 1,000 groups with their histograms (about 9 KiB each), the dedup window of 100,000
    // exchanges (about 100 bytes each) and the process itself.
    eprintln!("200,000 models: peak resident memory {} MiB", peak >> 20);
    assert!(peak < 96 << 20, "peak resident memory {} MiB", peak >> 20);
    std::fs::remove_dir_all(&dir).unwrap();
}
