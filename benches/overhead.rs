//! What the layer costs: each exchange benchmarked with and without the layer in the same run.
//!
//! - `exchange_4k`: a non-streaming chat exchange, 4 KiB prompt and 4 KiB completion, in-process.
//! - `stream_200`: a streamed completion of 200 SSE events, one event per frame.
//! - `scan_2mib`: the request scanner alone on a 2 MiB body in 16 KiB frames (throughput).
//!
//! Budget (DESIGN.md): at most 10 us added per 4K/4K exchange, at most 2 us per SSE event, at
//! least 1 GB/s scanning. Compare `bare` and `layer` medians from the same run.

use std::convert::Infallible;
mod common;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_llm_log::{LlmLogLayer, LlmLogRecord, LogConfig};

fn chat_request(prompt_bytes: usize) -> Bytes {
    let text = "lorem ipsum dolor sit amet ".repeat(prompt_bytes / 27 + 1);
    Bytes::from(format!(
        r#"{{"messages":[{{"role":"system","content":"You are terse."}},{{"role":"user","content":"{}"}}],"model":"gpt-4o-mini","temperature":0.2}}"#,
        &text[..prompt_bytes]
    ))
}

fn chat_response(completion_bytes: usize) -> Bytes {
    let text = "consectetur adipiscing elit ".repeat(completion_bytes / 28 + 1);
    Bytes::from(format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":1000,"completion_tokens":1000,"total_tokens":2000}}}}"#,
        &text[..completion_bytes]
    ))
}

fn sse_events(n: usize) -> Vec<Bytes> {
    let mut v: Vec<Bytes> = (0..n)
        .map(|i| {
            Bytes::from(format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"
            ))
        })
        .collect();
    v.push(Bytes::from_static(b"data: [DONE]\n\n"));
    v
}

/// Drives a ready future (everything here is in memory, nothing waits).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    f.now_or_never().expect("in-memory future is ready")
}

fn drain<B: Body<Data = Bytes>>(body: B) -> usize
where
    B::Error: std::fmt::Debug,
{
    ready(body.collect()).expect("body").to_bytes().len()
}

/// One exchange through `svc`: the request is read by the inner service, the response by the caller.
fn one_exchange<S, B>(svc: &mut S, body: &Bytes) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let res = ready(svc.ready()).unwrap().call(req);
    drain(ready(res).unwrap().into_body())
}

fn sink() -> impl Fn(LlmLogRecord) + Send + Sync + 'static {
    |r: LlmLogRecord| {
        black_box(r);
    }
}

/// An upstream that reads the request and answers with `make()`'s body.
fn upstream<B, R>(
    content_type: &'static str,
    make: impl Fn() -> R + Clone + Send + 'static,
) -> impl Service<Request<B>, Response = Response<R>, Error = Infallible> + Clone
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    service_fn(move |r: Request<B>| {
        let make = make.clone();
        async move {
            let _ = drain(r.into_body());
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", content_type)
                    .body(make())
                    .unwrap(),
            )
        }
    })
}

fn exchange_4k(c: &mut Criterion) {
    let req = chat_request(4096);
    let res = chat_response(4096);
    let make = move || Full::new(res.clone());
    let make_nb = make.clone();
    let mut group = c.benchmark_group("exchange_4k");
    let mut bare = upstream("application/json", make.clone());
    group.bench_function("bare", |b| b.iter(|| one_exchange(&mut bare, &req)));
    let mut layered = LlmLogLayer::new(sink()).layer(upstream("application/json", make));
    group.bench_function("layer", |b| b.iter(|| one_exchange(&mut layered, &req)));
    // The same with the records going through NonBlocking, as in production.
    let (queued, guard) = tower_llm_log::NonBlocking::new(sink());
    let mut layered_nb = LlmLogLayer::new(queued).layer(upstream("application/json", make_nb));
    group.bench_function("layer_non_blocking", |b| {
        b.iter(|| one_exchange(&mut layered_nb, &req))
    });
    drop(guard);
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
    group.finish();
}

fn stream_200(c: &mut Criterion) {
    let req = chat_request(512);
    let events = sse_events(200);
    let make = move || {
        StreamBody::new(futures_util::stream::iter(
            events
                .clone()
                .into_iter()
                .map(|e| Ok::<_, Infallible>(Frame::data(e))),
        ))
    };
    let mut group = c.benchmark_group("stream_200");
    group.throughput(Throughput::Elements(200));
    let mut bare = upstream("text/event-stream", make.clone());
    group.bench_function("bare", |b| b.iter(|| one_exchange(&mut bare, &req)));
    let config = LogConfig::builder().completion_bytes(64 * 1024).build().unwrap();
    let mut layered = LlmLogLayer::new(sink())
        .with_config(config)
        .layer(upstream("text/event-stream", make));
    group.bench_function("layer", |b| b.iter(|| one_exchange(&mut layered, &req)));
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

criterion_group! { name = benches; config = common::config(); targets = exchange_4k, stream_200, scan_2mib }
criterion_main!(benches);
