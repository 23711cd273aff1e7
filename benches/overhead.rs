//! What the layer costs: each exchange benchmarked with and without the layer in the same run.
//!
//! - `exchange_4k`, `exchange_256k`: a non-streaming chat exchange (4 KiB prompt and completion;
//!   256 KiB each, with 256 KiB caps), in-process: bare, with the layer, with the layer and
//!   `NonBlocking`, and with the hand-written buffering baseline (`examples/load/buffering.rs`).
//! - `stream_200`, `stream_2000`: a streamed completion of 200 and 2,000 SSE events, one event
//!   per frame.
//! - Each exchange and stream also with request read-ahead off (`layer_read_ahead_off`): the
//!   layer's default reads the request body before calling the service (budget: under 1 us
//!   added).
//! - `stream_native_200`: 200-event streams of the native families, one event per frame, bare
//!   and with the layer: Gemini as a streamed JSON array and as SSE, Ollama's JSON lines, and
//!   Bedrock's AWS event stream (budget as for SSE: at most 2 us per event).
//! - `event_stream_16mib`: the event-stream framer alone on 16 MiB of 32 KiB messages: the
//!   checksum check's throughput (budget: at least 1 GB/s).
//! - `scan_2mib`, `scan_10mib`: the request scanner alone (throughput).
//! - `chunk_2mib`: the chunker on a 2 MiB message (throughput); it also prints the bytes it
//!   copied per byte logged.
//!
//! Budget (DESIGN.md): at most 10 us added per 4K/4K exchange, at most 2 us per SSE event, at
//! least 1 GB/s scanning. Compare `bare` and `layer` medians from the same run. Allocations per
//! exchange: `cargo bench --bench allocations`.

#[allow(dead_code)]
#[path = "../examples/load/buffering.rs"]
mod buffering;
mod common;
use common::{
    caps_for, chat_request, chat_response, drain, one_exchange, one_exchange_at, one_exchange_with, ready,
    sink, sse_events, stream_body, upstream, ATTRIBUTED,
};

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::Request;
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use tower_llm_log::{DimensionSource, LlmLogLayer, LogConfig};

fn exchange(c: &mut Criterion, name: &str, size: usize) {
    let req = chat_request(size);
    let res = chat_response(size);
    let make = move || Full::new(res.clone());
    let config = caps_for(size);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(2 * size as u64));
    let mut bare = upstream("application/json", make.clone());
    group.bench_function("bare", |b| b.iter(|| one_exchange(&mut bare, &req)));
    let mut layered = LlmLogLayer::new(sink())
        .with_config(config.clone())
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer", |b| b.iter(|| one_exchange(&mut layered, &req)));
    // Request read-ahead (on by default) against the request logged as the service reads it.
    let no_read_ahead = without_read_ahead(&config);
    let mut layered_no_ra = LlmLogLayer::new(sink())
        .with_config(no_read_ahead)
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer_read_ahead_off", |b| {
        b.iter(|| one_exchange(&mut layered_no_ra, &req))
    });
    // Secret redaction (on by default) against none: the scan of both messages that finds
    // nothing to replace.
    let no_redaction = LogConfig::builder()
        .prompt_bytes(config.prompt_bytes())
        .completion_bytes(config.completion_bytes())
        .redact_secrets(false)
        .build()
        .expect("valid");
    let mut layered_no_redaction = LlmLogLayer::new(sink())
        .with_config(no_redaction)
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer_redaction_off", |b| {
        b.iter(|| one_exchange(&mut layered_no_redaction, &req))
    });
    // Media elision (on by default) against none, and everything privacy does off: the
    // secrets-only figure is `layer_media_off` against `layer_privacy_off`.
    let mut layered_media_off = LlmLogLayer::new(sink())
        .with_config(rebuild(&config, |b| b.no_media_elision()))
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer_media_off", |b| {
        b.iter(|| one_exchange(&mut layered_media_off, &req))
    });
    let mut layered_privacy_off = LlmLogLayer::new(sink())
        .with_config(rebuild(&config, |b| b.no_media_elision().redact_secrets(false)))
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer_privacy_off", |b| {
        b.iter(|| one_exchange(&mut layered_privacy_off, &req))
    });
    // PII redaction (opt-in) on top of the defaults.
    let mut layered_pii = LlmLogLayer::new(sink())
        .with_config(rebuild(&config, |b| b.redact_pii(true)))
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer_pii", |b| b.iter(|| one_exchange(&mut layered_pii, &req)));
    // Attribution and cost: the layer (cost on by default; the model has a built-in price)
    // against no cost, and with two header dimensions and a key to fingerprint.
    let mut layered_no_cost = LlmLogLayer::new(sink())
        .with_config(rebuild(&config, |b| b.no_cost()))
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer_no_cost", |b| {
        b.iter(|| one_exchange(&mut layered_no_cost, &req))
    });
    let mut layered_attributed = LlmLogLayer::new(sink())
        .with_config(rebuild(&config, |b| {
            b.dimension("user", DimensionSource::header("x-user-id"))
                .dimension("team", DimensionSource::header("x-team"))
        }))
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer_attributed", |b| {
        b.iter(|| one_exchange_with(&mut layered_attributed, &req, ATTRIBUTED))
    });
    // The same with the records going through NonBlocking, as in production.
    let (queued, guard) = tower_llm_log::NonBlocking::new(sink());
    let mut layered_nb = LlmLogLayer::new(queued)
        .with_config(config)
        .layer(upstream("application/json", make.clone()));
    group.bench_function("layer_non_blocking", |b| {
        b.iter(|| one_exchange(&mut layered_nb, &req))
    });
    drop(guard);
    // What one would write by hand: buffer both bodies, parse them with serde_json::Value.
    let mut baseline = buffering::BufferingLayer::new(|m, r| {
        black_box((m, r));
    })
    .layer(upstream("application/json", make));
    group.bench_function("buffering_baseline", |b| {
        b.iter(|| one_exchange(&mut baseline, &req))
    });
    if size <= 4096 {
        // A request the layer does not log (another path): the cost of passing through.
        group.bench_function("layer_unrecognised_path", |b| {
            b.iter(|| {
                let r = Request::post("/v1/models").body(Full::new(req.clone())).unwrap();
                let res = ready(ready(layered.ready()).unwrap().call(r)).unwrap();
                drain(res.into_body())
            })
        });
        group.bench_function("bare_unrecognised_path", |b| {
            b.iter(|| {
                let r = Request::post("/v1/models").body(Full::new(req.clone())).unwrap();
                let res = ready(ready(bare.ready()).unwrap().call(r)).unwrap();
                drain(res.into_body())
            })
        });
    }
    group.finish();
}

/// The same caps with request read-ahead off.
/// `config`'s caps with `change` applied to a fresh builder.
fn rebuild(
    config: &LogConfig,
    change: impl FnOnce(tower_llm_log::LogConfigBuilder) -> tower_llm_log::LogConfigBuilder,
) -> LogConfig {
    change(
        LogConfig::builder()
            .prompt_bytes(config.prompt_bytes())
            .completion_bytes(config.completion_bytes()),
    )
    .build()
    .expect("valid")
}

fn without_read_ahead(config: &LogConfig) -> LogConfig {
    LogConfig::builder()
        .prompt_bytes(config.prompt_bytes())
        .completion_bytes(config.completion_bytes())
        .request_read_ahead(0)
        .build()
        .expect("valid")
}

fn exchange_4k(c: &mut Criterion) {
    exchange(c, "exchange_4k", 4096);
}

fn exchange_256k(c: &mut Criterion) {
    exchange(c, "exchange_256k", 256 * 1024);
}

fn stream(c: &mut Criterion, events: usize) {
    let req = chat_request(512);
    let frames = sse_events(events);
    let make = move || stream_body(&frames);
    let mut group = c.benchmark_group(format!("stream_{events}"));
    group.throughput(Throughput::Elements(events as u64));
    let mut bare = upstream("text/event-stream", make.clone());
    group.bench_function("bare", |b| b.iter(|| one_exchange(&mut bare, &req)));
    let config = LogConfig::builder().completion_bytes(64 * 1024).build().unwrap();
    let mut layered = LlmLogLayer::new(sink())
        .with_config(config.clone())
        .layer(upstream("text/event-stream", make.clone()));
    group.bench_function("layer", |b| b.iter(|| one_exchange(&mut layered, &req)));
    let mut layered_no_ra = LlmLogLayer::new(sink())
        .with_config(without_read_ahead(&config))
        .layer(upstream("text/event-stream", make));
    group.bench_function("layer_read_ahead_off", |b| {
        b.iter(|| one_exchange(&mut layered_no_ra, &req))
    });
    group.finish();
}

/// One AWS event-stream message, encoded by AWS's own implementation.
fn event_stream_message(kind: &str, payload: String) -> Bytes {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let string = |s: &str| HeaderValue::String(s.to_string().into());
    let message = Message::new(payload)
        .add_header(Header::new(":event-type", string(kind)))
        .add_header(Header::new(":content-type", string("application/json")))
        .add_header(Header::new(":message-type", string("event")));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).expect("encodes");
    Bytes::from(out)
}

/// The 200-event streams of the native families: (name, path, content type, frames).
fn native_streams(n: usize) -> Vec<(&'static str, &'static str, &'static str, Vec<Bytes>)> {
    let gemini = |i: usize, last: bool| {
        let finish = if last { r#","finishReason":"STOP""# } else { "" };
        format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"text":"tok{i} "}}],"role":"model"}}{finish},"index":0}}],"usageMetadata":{{"promptTokenCount":12,"candidatesTokenCount":{i},"totalTokenCount":{}}},"modelVersion":"gemini-2.5-flash","responseId":"r-1"}}"#,
            12 + i
        )
    };
    let array = (0..n)
        .map(|i| {
            let before = if i == 0 { "[" } else { "\r\n,\r\n" };
            let after = if i + 1 == n { "\r\n]" } else { "" };
            Bytes::from(format!("{before}{}{after}", gemini(i, i + 1 == n)))
        })
        .collect();
    let sse = (0..n)
        .map(|i| Bytes::from(format!("data: {}\r\n\r\n", gemini(i, i + 1 == n))))
        .collect();
    let mut ndjson: Vec<Bytes> = (0..n)
        .map(|i| {
            Bytes::from(format!(
                r#"{{"model":"llama3.2","created_at":"2026-01-01T00:00:00.000000001Z","message":{{"role":"assistant","content":"tok{i} "}},"done":false}}"#
            ) + "\n")
        })
        .collect();
    ndjson.push(Bytes::from_static(
        b"{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":12,\"eval_count\":200}\n",
    ));
    let mut bedrock = vec![event_stream_message(
        "messageStart",
        r#"{"role":"assistant"}"#.into(),
    )];
    bedrock.extend((0..n).map(|i| {
        event_stream_message(
            "contentBlockDelta",
            format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"tok{i} "}},"p":"abcdefghij"}}"#),
        )
    }));
    bedrock.push(event_stream_message(
        "messageStop",
        r#"{"stopReason":"end_turn"}"#.into(),
    ));
    bedrock.push(event_stream_message(
        "metadata",
        r#"{"usage":{"inputTokens":12,"outputTokens":200,"totalTokens":212}}"#.into(),
    ));
    vec![
        (
            "gemini_array",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            "application/json",
            array,
        ),
        (
            "gemini_sse",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            "text/event-stream",
            sse,
        ),
        ("ollama_ndjson", "/api/chat", "application/x-ndjson", ndjson),
        (
            "bedrock_event_stream",
            "/model/us.amazon.nova-micro-v1%3A0/converse-stream",
            "application/vnd.amazon.eventstream",
            bedrock,
        ),
    ]
}

fn stream_native_200(c: &mut Criterion) {
    let events = 200;
    let req = Bytes::from_static(
        br#"{"contents":[{"role":"user","parts":[{"text":"hello"}]}],"messages":[{"role":"user","content":"hello"}],"model":"llama3.2"}"#,
    );
    let mut group = c.benchmark_group(format!("stream_native_{events}"));
    group.throughput(Throughput::Elements(events as u64));
    for (name, path, content_type, frames) in native_streams(events) {
        let make = move || stream_body(&frames);
        let mut bare = upstream(content_type, make.clone());
        group.bench_function(format!("{name}/bare"), |b| {
            b.iter(|| one_exchange_at(&mut bare, path, &req, &[]))
        });
        let config = LogConfig::builder().completion_bytes(64 * 1024).build().unwrap();
        let mut layered = LlmLogLayer::new(sink())
            .with_config(config)
            .layer(upstream(content_type, make));
        group.bench_function(format!("{name}/layer"), |b| {
            b.iter(|| one_exchange_at(&mut layered, path, &req, &[]))
        });
    }
    group.finish();
}

/// An MCP `tools/call` with 4 KiB of arguments and a 4 KiB result (the same budget as a 4K/4K
/// chat exchange), answered as JSON and as an event stream (a progress notification, then the
/// result); bare and with the layer.
fn mcp_tools_call_4k(c: &mut Criterion) {
    let filler = |n: usize| "lorem ipsum dolor sit amet ".repeat(n / 27);
    let req = Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{{"name":"search_docs","arguments":{{"query":"{}"}}}}}}"#,
        filler(4096)
    ));
    let result = format!(
        r#"{{"jsonrpc":"2.0","id":42,"result":{{"content":[{{"type":"text","text":"{}"}}],"isError":false}}}}"#,
        filler(4096)
    );
    let json = Bytes::from(result.clone());
    let sse = vec![
        Bytes::from_static(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":42,\"progress\":1}}\n\n"),
        Bytes::from(format!("event: message\ndata: {result}\n\n")),
    ];
    let headers = [
        ("mcp-session-id", "bench-session"),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let mut group = c.benchmark_group("mcp_tools_call_4k");
    group.throughput(Throughput::Bytes((req.len() + json.len()) as u64));
    let answers: [(&str, &'static str, Vec<Bytes>); 2] = [
        ("json", "application/json", vec![json]),
        ("sse", "text/event-stream", sse),
    ];
    for (name, content_type, frames) in answers {
        let make = move || stream_body(&frames);
        let mut bare = upstream(content_type, make.clone());
        group.bench_function(format!("{name}/bare"), |b| {
            b.iter(|| one_exchange_at(&mut bare, "/mcp", &req, &headers))
        });
        let mut layered = LlmLogLayer::new(sink()).layer(upstream(content_type, make));
        group.bench_function(format!("{name}/layer"), |b| {
            b.iter(|| one_exchange_at(&mut layered, "/mcp", &req, &headers))
        });
    }
    group.finish();
}

fn event_stream_16mib(c: &mut Criterion) {
    let payload = format!(
        r#"{{"contentBlockIndex":0,"delta":{{"text":"{}"}}}}"#,
        "x".repeat(32 * 1024 - 64)
    );
    let message = event_stream_message("contentBlockDelta", payload);
    let frames: Vec<Bytes> = (0..(16 << 20) / message.len()).map(|_| message.clone()).collect();
    let bytes: usize = frames.iter().map(Bytes::len).sum();
    let mut group = c.benchmark_group("event_stream_16mib");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("frame_and_check", |b| {
        b.iter(|| {
            let mut n = 0usize;
            tower_llm_log::bench_support::frame_stream(
                tower_llm_log::api::Framing::AwsEventStream,
                black_box(&frames),
                &mut |e| n += e.data.len(),
            );
            black_box(n)
        })
    });
    group.finish();
}

fn stream_200(c: &mut Criterion) {
    stream(c, 200);
}

fn stream_2000(c: &mut Criterion) {
    stream(c, 2000);
}

fn scan_10mib(c: &mut Criterion) {
    let body = chat_request(10 << 20);
    let frames: Vec<Bytes> = body.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    let mut group = c.benchmark_group("scan_10mib");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("default_cap", |b| {
        b.iter(|| tower_llm_log::bench_support::scan_chat_request(black_box(&frames), 32 * 1024))
    });
    group.bench_function("2mib_cap", |b| {
        b.iter(|| tower_llm_log::bench_support::scan_chat_request(black_box(&frames), 2 << 20))
    });
    group.finish();
}

fn chunk_2mib(c: &mut Criterion) {
    // A 2 MiB message captured as 16 KiB frames, cut into 32 KiB chunks.
    let mut text = "caf\u{e9} au lait, ".repeat((2 << 20) / 15 + 1);
    let mut end = 2 << 20;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    let message = Bytes::from(text);
    let frames: Vec<Bytes> = (0..message.len())
        .step_by(16 * 1024)
        .map(|i| message.slice(i..(i + 16 * 1024).min(message.len())))
        .collect();
    // Bytes copied per byte logged: a chunk within one frame is a slice of it; one spanning
    // frames is copied once.
    for frame in [16 * 1024, 64 * 1024, 2 << 20] {
        let pieces: Vec<Bytes> = (0..message.len())
            .step_by(frame)
            .map(|i| message.slice(i..(i + frame).min(message.len())))
            .collect();
        let chunked = tower_llm_log::chunk::chunk_message(&pieces, 32 * 1024);
        let logged: usize = chunked.chunks.iter().map(Bytes::len).sum();
        eprintln!(
            "chunk_2mib: {} KiB frames, 32 KiB chunks: {} chunks, {logged} bytes logged, {} copied: {:.3} bytes copied per byte logged",
            frame / 1024,
            chunked.chunks.len(),
            chunked.copied_bytes,
            chunked.copied_bytes as f64 / logged as f64
        );
    }
    let mut group = c.benchmark_group("chunk_2mib");
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.bench_function("chunk_32k", |b| {
        b.iter(|| tower_llm_log::chunk::chunk_message(black_box(&frames), 32 * 1024))
    });
    group.finish();
}

/// Secret redaction alone on 2 MiB of logged text: prose with nothing to replace (the common
/// case: one multi-literal pass), prose with a key every 4 KiB, and code dense in `key=` and
/// `token=` that are not credentials (the detectors run and find little).
fn redact_2mib(c: &mut Criterion) {
    let prose = "lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat((2 << 20) / 56);
    let mut with_keys = String::new();
    while with_keys.len() < 2 << 20 {
        with_keys.push_str(&prose[..4000]);
        with_keys.push_str(" sk-proj-Zx9aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 ");
    }
    let code = "let key = map.get(k); let token = next(); if a == b { code += 1 } ".repeat((2 << 20) / 66);
    let mut group = c.benchmark_group("redact_2mib");
    for (name, text) in [("prose", &prose), ("a_key_every_4k", &with_keys), ("code", &code)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| tower_llm_log::privacy::redact_secrets(black_box(text.as_bytes())).map(|r| r.0.len()))
        });
    }
    group.finish();
}

/// PII detection alone on 2 MiB of logged text (a JSON string): prose with nothing to find,
/// prose with an e-mail address, a phone number and a card number every 4 KiB, and the
/// pathological cases (all digits, all `@`, digit groups that look like numbers).
fn pii_2mib(c: &mut Criterion) {
    let quoted = |s: String| format!("[{{\"content\":\"{s}\"}}]");
    let prose = "lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat((2 << 20) / 56);
    let mut with_pii = String::new();
    while with_pii.len() < 2 << 20 {
        with_pii.push_str(&prose[..4000]);
        with_pii.push_str(" mail jane.doe@example.com, call +1 415-555-2671, card 4111 1111 1111 1111 ");
    }
    let digits = "1".repeat(2 << 20);
    let ats = "@".repeat(2 << 20);
    let groups = "12 34-56.78 ".repeat((2 << 20) / 12);
    let mut group = c.benchmark_group("pii_2mib");
    for (name, text) in [
        ("prose", prose),
        ("pii_every_4k", with_pii),
        ("digits", digits),
        ("at_signs", ats),
        ("digit_groups", groups),
    ] {
        let text = quoted(text);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| tower_llm_log::privacy::find_pii(black_box(&text)).len())
        });
    }
    group.finish();
}

/// Media elision of a chat request carrying a 20 MB base64 image, in 64 KiB frames as a
/// client sends them: the elider alone (it hashes and counts the payload).
fn media_20mb(c: &mut Criterion) {
    let mut image = String::from("iVBORw0KGgo");
    while image.len() < 20 << 20 {
        image.push_str("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789+/ab");
    }
    let body = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":[{{"type":"text","text":"what is it?"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{image}"}}}}]}}]}}"#
    );
    let body = Bytes::from(body);
    let frames: Vec<Bytes> = (0..body.len())
        .step_by(65536)
        .map(|at| body.slice(at..(at + 65536).min(body.len())))
        .collect();
    let mut group = c.benchmark_group("media_20mb");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(20);
    group.bench_function("elide", |b| {
        b.iter(|| tower_llm_log::bench_support::elide_frames(black_box(&frames), 1024))
    });
    group.finish();
}

fn scan_2mib(c: &mut Criterion) {
    let body = chat_request(2 << 20);
    let frames: Vec<Bytes> = body.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    let mut group = c.benchmark_group("scan_2mib");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("default_cap", |b| {
        b.iter(|| tower_llm_log::bench_support::scan_chat_request(black_box(&frames), 32 * 1024))
    });
    group.bench_function("2mib_cap", |b| {
        b.iter(|| tower_llm_log::bench_support::scan_chat_request(black_box(&frames), 2 << 20))
    });
    // Escape-dense content (code with quotes and newlines every few bytes): the scanner's worst
    // realistic case, since it stops at every backslash and quote.
    let line = r#"    if (x == \"a\") { print(\"b\\n\"); }\n"#;
    let code = line.repeat((2 << 20) / line.len());
    let escaped = Bytes::from(format!(
        r#"{{"messages":[{{"role":"user","content":"{code}"}}],"model":"m"}}"#
    ));
    let escaped_frames: Vec<Bytes> = escaped.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    group.bench_function("escape_dense", |b| {
        b.iter(|| tower_llm_log::bench_support::scan_chat_request(black_box(&escaped_frames), 32 * 1024))
    });
    group.bench_function("serde_json_value_baseline", |b| {
        b.iter(|| {
            let mut whole = Vec::with_capacity(body.len());
            for f in &frames {
                whole.extend_from_slice(f);
            }
            let v: serde_json::Value = serde_json::from_slice(&whole).unwrap();
            black_box(v["model"].as_str().map(str::len))
        })
    });
    group.finish();
}

/// The cost of token estimates (`--features tokenizer`): a 4K/4K exchange whose response has
/// no usage, with estimates on and off.
fn estimate_4k(c: &mut Criterion) {
    let req = chat_request(4096);
    let res = {
        let text = "consectetur adipiscing elit ".repeat(4096 / 28 + 1);
        Bytes::from(format!(
            r#"{{"id":"chatcmpl-1","model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}]}}"#,
            &text[..4096]
        ))
    };
    let make = move || Full::new(res.clone());
    let mut group = c.benchmark_group("estimate_4k");
    for estimate in [false, true] {
        let config = LogConfig::builder().estimate_tokens(estimate).build().unwrap();
        let mut layered = LlmLogLayer::new(sink())
            .with_config(config)
            .layer(upstream("application/json", make.clone()));
        let name = if estimate { "estimate_on" } else { "estimate_off" };
        group.bench_function(name, |b| b.iter(|| one_exchange(&mut layered, &req)));
    }
    group.finish();
}

criterion_group! { name = benches; config = common::config(); targets = exchange_4k, exchange_256k, stream_200, stream_2000, stream_native_200, mcp_tools_call_4k, event_stream_16mib, scan_2mib, scan_10mib, chunk_2mib, estimate_4k, redact_2mib, pii_2mib, media_20mb }
criterion_main!(benches);
