//! Settings and exchanges shared by the benchmarks.

#![allow(dead_code)] // each bench uses part of this

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::Criterion;
use futures_util::FutureExt;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Service, ServiceExt};
use tower_llm_log::{LlmLogRecord, LogConfig};

/// Short warm-up and measurement: enough for stable medians on the cases here, and `cargo bench`
/// stays within a few minutes on two cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

pub fn chat_request(prompt_bytes: usize) -> Bytes {
    let text = "lorem ipsum dolor sit amet ".repeat(prompt_bytes / 27 + 1);
    Bytes::from(format!(
        r#"{{"messages":[{{"role":"system","content":"You are terse."}},{{"role":"user","content":"{}"}}],"model":"gpt-4o-mini","temperature":0.2}}"#,
        &text[..prompt_bytes]
    ))
}

pub fn chat_response(completion_bytes: usize) -> Bytes {
    let text = "consectetur adipiscing elit ".repeat(completion_bytes / 28 + 1);
    Bytes::from(format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":1000,"completion_tokens":1000,"total_tokens":2000}}}}"#,
        &text[..completion_bytes]
    ))
}

pub fn sse_events(n: usize) -> Vec<Bytes> {
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

/// A streamed body of `frames`, one frame each, as an upstream sends a stream.
pub fn stream_body(frames: &[Bytes]) -> impl Body<Data = Bytes, Error = Infallible> + Send + 'static {
    let frames: Vec<Result<http_body::Frame<Bytes>, Infallible>> = frames
        .iter()
        .cloned()
        .map(|f| Ok(http_body::Frame::data(f)))
        .collect();
    http_body_util::StreamBody::new(futures_util::stream::iter(frames))
}

/// Drives a ready future (everything here is in memory, nothing waits).
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    f.now_or_never().expect("in-memory future is ready")
}

pub fn drain<B: Body<Data = Bytes>>(body: B) -> usize
where
    B::Error: std::fmt::Debug,
{
    ready(body.collect()).expect("body").to_bytes().len()
}

/// One exchange through `svc`: the request is read by the inner service, the response by the caller.
pub fn one_exchange<S, B>(svc: &mut S, body: &Bytes) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    one_exchange_with(svc, body, &[])
}

/// The headers a caller attributes its request with: a key, a user, a team.
pub const ATTRIBUTED: &[(&str, &str)] = &[
    (
        "authorization",
        "Bearer sk-proj-Zx9aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    ),
    ("x-user-id", "alice@example.com"),
    ("x-team", "search"),
];

/// One exchange with extra request headers.
pub fn one_exchange_with<S, B>(svc: &mut S, body: &Bytes, headers: &[(&str, &str)]) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    one_exchange_at(svc, "/v1/chat/completions", body, headers)
}

/// One exchange at `path`.
pub fn one_exchange_at<S, B>(svc: &mut S, path: &str, body: &Bytes, headers: &[(&str, &str)]) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut req = Request::post(path).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.clone())).unwrap();
    let res = ready(svc.ready()).unwrap().call(req);
    drain(ready(res).unwrap().into_body())
}

pub fn sink() -> impl Fn(LlmLogRecord) + Send + Sync + 'static {
    |r: LlmLogRecord| {
        black_box(r);
    }
}

/// An upstream that reads the request and answers with `make()`'s body.
pub fn upstream<B, R>(
    content_type: &'static str,
    make: impl Fn() -> R + Clone + Send + 'static,
) -> impl Service<Request<B>, Response = Response<R>, Error = Infallible, Future: Send> + Clone + Send + 'static
where
    R: Send + 'static,
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

/// Caps that keep a `size`-byte prompt and completion whole (at least the default 32 KiB).
pub fn caps_for(size: usize) -> LogConfig {
    LogConfig::builder()
        .prompt_bytes(size.max(32 * 1024))
        .completion_bytes(size.max(32 * 1024))
        .build()
        .expect("caps within the ceiling")
}
