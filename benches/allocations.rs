//! Heap allocations per exchange, with and without the layer: a counting global allocator
//! around the same in-process exchanges as `benches/overhead.rs`. Prints a table.
//!
//! ```text
//! cargo bench --bench allocations
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::Full;
use tower::Layer;
use tower_llm_log::{LlmLogLayer, LogConfig};

#[allow(dead_code)]
#[path = "../examples/load/buffering.rs"]
mod buffering;
mod common;

use common::{caps_for, chat_request, chat_response, one_exchange, sink, sse_events, stream_body, upstream};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size.saturating_sub(layout.size()) as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations and bytes allocated by one call of `f`, the median of 21 runs after a warm-up.
fn count(mut f: impl FnMut()) -> (u64, u64) {
    for _ in 0..5 {
        f();
    }
    let mut runs: Vec<(u64, u64)> = (0..21)
        .map(|_| {
            let (a, b) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
            f();
            (
                ALLOCATIONS.load(Ordering::Relaxed) - a,
                BYTES.load(Ordering::Relaxed) - b,
            )
        })
        .collect();
    runs.sort();
    runs[runs.len() / 2]
}

/// For counting instructions under `valgrind --tool=callgrind` (which a busy machine does not
/// change): `INSTRUCTIONS_CASE=read_ahead_on|read_ahead_off|bare|privacy_off|secrets_only|pii|no_cost|attributed|key_only INSTRUCTIONS_N=1000` runs only
/// that many 4K/4K exchanges (`stream`, `stream_bare`: 200-event chat streams). Run it with two counts; the difference over the difference in
/// exchanges is the cost of one (`scripts/instructions.sh`).
fn instructions_only() -> bool {
    let Ok(case) = std::env::var("INSTRUCTIONS_CASE") else {
        return false;
    };
    let n: usize = std::env::var("INSTRUCTIONS_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let req = chat_request(4096);
    let res = chat_response(4096);
    let make = move || Full::new(res.clone());
    let read_ahead = if case == "read_ahead_off" { 0 } else { 4 << 20 };
    let builder = LogConfig::builder().request_read_ahead(read_ahead);
    // The privacy cases: everything off, secrets only (media off), PII on top of the defaults.
    let builder = match case.as_str() {
        "privacy_off" => builder.no_media_elision().redact_secrets(false),
        "secrets_only" => builder.no_media_elision(),
        "pii" => builder.redact_pii(true),
        "no_cost" => builder.no_cost(),
        "attributed" => builder
            .dimension("user", tower_llm_log::DimensionSource::header("x-user-id"))
            .dimension("team", tower_llm_log::DimensionSource::header("x-team")),
        _ => builder,
    };
    let config = builder.build().unwrap();
    if case == "stream" || case == "stream_bare" {
        // 200-event chat streams: the per-event cost (scripts/instructions.sh divides by 200).
        let events = sse_events(200);
        let make = move || stream_body(&events);
        let mut bare = upstream("text/event-stream", make.clone());
        let mut layered = LlmLogLayer::new(sink())
            .with_config(config)
            .layer(upstream("text/event-stream", make));
        let chat = chat_request(64);
        for _ in 0..n {
            match case.as_str() {
                "stream_bare" => black_box(one_exchange(&mut bare, &chat)),
                _ => black_box(one_exchange(&mut layered, &chat)),
            };
        }
        return true;
    }
    let mut bare = upstream("application/json", make.clone());
    let mut layered = LlmLogLayer::new(sink())
        .with_config(config)
        .layer(upstream("application/json", make));
    for _ in 0..n {
        match case.as_str() {
            "bare" => black_box(one_exchange(&mut bare, &req)),
            "attributed" | "key_only" => {
                black_box(common::one_exchange_with(&mut layered, &req, common::ATTRIBUTED))
            }
            _ => black_box(one_exchange(&mut layered, &req)),
        };
    }
    true
}

fn main() {
    if instructions_only() {
        return;
    }
    println!("| case | bare | layer | buffering baseline | added by the layer |");
    println!("|---|---|---|---|---|");
    for (name, size) in [("4K/4K exchange", 4096usize), ("256K/256K exchange", 256 * 1024)] {
        let req = chat_request(size);
        let res = chat_response(size);
        let make = move || Full::new(res.clone());
        let config = caps_for(size);
        let mut bare = upstream("application/json", make.clone());
        let mut layered = LlmLogLayer::new(sink())
            .with_config(config.clone())
            .layer(upstream("application/json", make.clone()));
        let no_read_ahead = LogConfig::builder()
            .prompt_bytes(config.prompt_bytes())
            .completion_bytes(config.completion_bytes())
            .request_read_ahead(0)
            .build()
            .unwrap();
        let mut layered_no_ra = LlmLogLayer::new(sink())
            .with_config(no_read_ahead)
            .layer(upstream("application/json", make.clone()));
        let mut baseline = buffering::BufferingLayer::new(|m, r| {
            black_box((m, r));
        })
        .layer(upstream("application/json", make));
        let b = count(|| {
            one_exchange(&mut bare, &req);
        });
        let l = count(|| {
            one_exchange(&mut layered, &req);
        });
        let h = count(|| {
            one_exchange(&mut baseline, &req);
        });
        let n = count(|| {
            one_exchange(&mut layered_no_ra, &req);
        });
        println!(
            "| {name}, read-ahead off | | {} allocs, {} B | | {} allocs, {} B |",
            n.0,
            n.1,
            n.0 - b.0,
            n.1 - b.1
        );
        println!(
            "| {name} | {} allocs, {} B | {} allocs, {} B | {} allocs, {} B | {} allocs, {} B |",
            b.0,
            b.1,
            l.0,
            l.1,
            h.0,
            h.1,
            l.0 - b.0,
            l.1 - b.1
        );
    }
    // Where a stream's allocations go: the SSE parser alone, then the chat reader on its events.
    {
        use tower_llm_log::api::Framing;
        use tower_llm_log::api::{ChatCompletionsApi, LlmApi, Route};
        use tower_llm_log::bench_support::frame_stream;
        let frames = sse_events(200);
        let parser_only = count(|| {
            frame_stream(Framing::ServerSentEvents, &frames, &mut |e| {
                black_box(e.data.len());
            });
        });
        let route = Route::new(tower_llm_log::ApiFamily::ChatCompletions, "openai");
        let with_reader = count(|| {
            let mut reader = ChatCompletionsApi.stream_reader(&route, 64 * 1024);
            frame_stream(Framing::ServerSentEvents, &frames, &mut |e| reader.event(e));
            black_box(reader.finish(true));
        });
        println!(
            "| 200 events: SSE parser alone / with the chat reader | | {} allocs / {} allocs | | |",
            parser_only.0, with_reader.0
        );
    }
    for events in [200usize, 2000] {
        let req = chat_request(512);
        let frames = sse_events(events);
        let make = move || stream_body(&frames);
        let mut bare = upstream("text/event-stream", make.clone());
        let config = LogConfig::builder().completion_bytes(64 * 1024).build().unwrap();
        let mut layered = LlmLogLayer::new(sink())
            .with_config(config)
            .layer(upstream("text/event-stream", make));
        let b = count(|| {
            one_exchange(&mut bare, &req);
        });
        let l = count(|| {
            one_exchange(&mut layered, &req);
        });
        println!(
            "| {events}-event stream | {} allocs, {} B | {} allocs, {} B | (breaks streaming) | {} allocs ({:.1} per event), {} B |",
            b.0,
            b.1,
            l.0,
            l.1,
            l.0 - b.0,
            (l.0 - b.0) as f64 / events as f64,
            l.1 - b.1
        );
    }
}
