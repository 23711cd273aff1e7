//! What the sinks cost.
//!
//! - `non_blocking/emit`: `emit` through `NonBlocking` in a tight loop while the worker drains to a
//!   no-op sink: the worst case, the two cores contending for every record (the loop outruns the
//!   worker, so part of it is the drop path; the counts are printed).
//!   `non_blocking/paced_2us_emit` against `paced_2us_drop`: each record comes with 2 us of other
//!   work, as on a request path; the difference is what emit costs there.
//!   `non_blocking/emit_queue_full`: the drop path. `record_clone` is the clone the benchmark makes
//!   to have a record to give, to be subtracted (the layer moves its records, it does not clone).
//!   The per-exchange cost at a realistic rate is `exchange_4k/layer_non_blocking` in `overhead`.
//! - `json_lines`: serializing records with 32 KiB of message content each (the text of a
//!   `messages` value, with its quotes and escapes) to JSON Lines, as a string (escaped) and as
//!   the JSON value itself (`messages_are_json`); throughput counts content bytes.
//!
//! Budget (the sinks issue): `emit` well under 1 us; at least 500 MB/s of content on one core.

mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower_llm_log::{JsonLinesSink, LlmLogRecord, LlmLogSink, NonBlocking};

/// A real record: one exchange through the layer, taken from a JSON line.
fn record(content_bytes: usize) -> LlmLogRecord {
    let text = r#"{"role":"user","content":"Explain \"zero-copy\" parsing.\nThen give an example."},"#;
    let mut messages = String::from("[");
    while messages.len() + text.len() < content_bytes {
        messages.push_str(text);
    }
    // A valid array: the records marked as JSON must be JSON (the writer checks).
    if messages.ends_with(',') {
        messages.pop();
    }
    messages.push(']');
    let line = serde_json::json!({
        "TimeGenerated": "2026-11-24T03:02:12.706100119Z", "CorrelationId": "0192f0c1-0000-7000-8000-000000000001",
        "Kind": "Request", "SequenceNumber": 0, "IsLast": true, "Api": "chat_completions", "Provider": "openai",
        "OperationName": "chat", "ModelName": "gpt-4o-mini", "IsStreamCompletion": false,
        "RequestMessages": messages, "MessageBytes": messages.len(), "Truncated": false, "DurationMs": 1.2,
        "Outcome": "Completed"
    });
    let mut r: LlmLogRecord = serde_json::from_value(line).unwrap();
    r.messages = Bytes::from(messages);
    r
}

fn non_blocking_emit(c: &mut Criterion) {
    let r = record(512);
    // The default capacity (8192), as users get it.
    let (sink, guard) = NonBlocking::new(|r: LlmLogRecord| {
        black_box(r);
    });
    let mut group = c.benchmark_group("non_blocking");
    group.bench_function("record_clone", |b| b.iter(|| black_box(r.clone())));
    group.bench_function("emit", |b| b.iter(|| sink.emit(r.clone())));
    // At a paced rate: each emit comes with 2 us of other work, as on a request path; compare
    // with the same work dropping the record instead.
    let spin = |d: Duration| {
        let start = std::time::Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    };
    group.bench_function("paced_2us_drop", |b| {
        b.iter(|| {
            spin(Duration::from_micros(2));
            drop(black_box(r.clone()))
        })
    });
    group.bench_function("paced_2us_emit", |b| {
        b.iter(|| {
            spin(Duration::from_micros(2));
            sink.emit(r.clone())
        })
    });
    // A full queue: the drop path (lossy mode), taken when the sink cannot keep up. The worker
    // blocks on its first record until `release` is dropped (whether or not it got one).
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let (full, full_guard) = NonBlocking::builder()
        .capacity(1)
        .batch_size(1)
        .shutdown_timeout(Duration::ZERO)
        .build(move |_r: LlmLogRecord| {
            let _ = held.lock().map(|rx| rx.recv());
        });
    group.bench_function("emit_queue_full", |b| b.iter(|| full.emit(r.clone())));
    group.finish();
    // The tight loop outruns the worker and takes the drop path part of the time: read its
    // figure with these counts.
    eprintln!("non_blocking stats after the emit benchmarks: {:?}", sink.stats());
    drop(guard);
    drop(release);
    drop(full_guard);
}

fn json_lines(c: &mut Criterion) {
    let batch: Vec<LlmLogRecord> = (0..32).map(|_| record(32 * 1024)).collect();
    let content: u64 = batch.iter().map(|r| r.messages.len() as u64).sum();
    let sink = JsonLinesSink::new(std::io::sink());
    let mut group = c.benchmark_group("json_lines");
    group.throughput(Throughput::Bytes(content));
    group.bench_function("emit_batch_32x32KiB", |b| {
        b.iter(|| sink.emit_batch(batch.clone()))
    });
    // The same records marked as whole JSON messages: written as JSON values, not escaped.
    let as_json: Vec<LlmLogRecord> = batch
        .iter()
        .cloned()
        .map(|mut r| {
            r.messages_are_json = true;
            r
        })
        .collect();
    group.bench_function("emit_batch_32x32KiB_as_json", |b| {
        b.iter(|| sink.emit_batch(as_json.clone()))
    });
    // Records of 4K/4K exchanges with what production records carry (dimensions, a finish
    // reason, token counts): the fixed cost of a record beside its message.
    let small: Vec<LlmLogRecord> = (0..64)
        .map(|_| {
            let mut r = record(4 * 1024);
            r.messages_are_json = true;
            r.finish_reasons = vec!["stop".into()];
            r.prompt_tokens = Some(1000);
            r.completion_tokens = Some(1000);
            r.total_tokens = Some(2000);
            r.dimensions = std::sync::Arc::new(
                [
                    ("api_key", "3f2a9c0d1e4b5a6c"),
                    ("user", "alice"),
                    ("end_user", "u-42"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            );
            r
        })
        .collect();
    group.throughput(Throughput::Elements(small.len() as u64));
    group.bench_function("emit_batch_64x4KiB_records", |b| {
        b.iter(|| sink.emit_batch(small.clone()))
    });
    group.finish();
}

criterion_group! { name = benches; config = common::config(); targets = non_blocking_emit, json_lines }
criterion_main!(benches);
