//! Reading logs back: what `llmlog usage` does per byte of JSON Lines (parse each line into a
//! record, add it to the analytics), and reassembly.
//!
//! Budget (the read-back issue): at least 200 MB/s of JSON Lines on one core.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower_llm_log::analytics::{Analytics, GroupBy};
use tower_llm_log::reassemble::reassemble;
use tower_llm_log::LlmLogRecord;

/// A log of `exchanges` exchanges with a ~2 KiB prompt and ~1 KiB completion each, as written by
/// the JSON Lines sinks (32 KiB chunks, so one record per side).
fn log(exchanges: usize) -> String {
    let prompt = r#"[{"role":"system","content":"You are terse."},{"role":"user","content":"Explain \"zero-copy\" parsing.\nGive an example."}]"#.repeat(16);
    let completion = r#"[{"index":0,"message":{"role":"assistant","content":"Zero-copy parsing reads values in place.\n"},"finish_reason":"stop"}]"#.repeat(8);
    let mut out = String::new();
    for i in 0..exchanges {
        let model = ["gpt-4o", "gpt-4o-mini", "o3-mini"][i % 3];
        for (kind, field, text) in [
            ("Request", "RequestMessages", &prompt),
            ("Response", "ResponseMessages", &completion),
        ] {
            let mut v = serde_json::json!({
                "TimeGenerated": format!("2026-11-24T{:02}:{:02}:00.000000000Z", (i / 60) % 24, i % 60),
                "CorrelationId": format!("0192f0c1-0000-7000-8000-{i:012}"), "Kind": kind, "SequenceNumber": 0,
                "IsLast": true, "Api": "chat_completions", "Provider": "openai", "OperationName": "chat",
                "ModelName": model, "IsStreamCompletion": i % 2 == 0,
                "MessageBytes": text.len(), "Truncated": false, "DurationMs": 120.5 + i as f64,
                "Outcome": "Completed",
            });
            v[field] = text.clone().into();
            if kind == "Response" {
                v["PromptTokens"] = 512.into();
                v["CompletionTokens"] = 256.into();
                v["TotalTokens"] = 768.into();
                v["StatusCode"] = 200.into();
            }
            out.push_str(&v.to_string());
            out.push('\n');
        }
    }
    out
}

fn usage(c: &mut Criterion) {
    let text = log(2000);
    let mut group = c.benchmark_group("readback");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("usage_by_model", |b| {
        b.iter(|| {
            let mut a = Analytics::new(Duration::from_secs(3600), vec![GroupBy::Model]);
            for line in text.lines() {
                if let Ok(r) = serde_json::from_str::<LlmLogRecord>(line) {
                    a.add(&r);
                }
            }
            black_box(a.rows().len())
        })
    });
    group.bench_function("parse_and_reassemble", |b| {
        b.iter(|| {
            let records = text
                .lines()
                .filter_map(|l| serde_json::from_str::<LlmLogRecord>(l).ok());
            black_box(reassemble(records).len())
        })
    });
    group.finish();
}

criterion_group! { name = benches; config = common::config(); targets = usage }
criterion_main!(benches);
