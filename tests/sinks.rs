//! The production sinks under real traffic: NonBlocking with a stuck or panicking sink, flush on
//! shutdown, JSON Lines files, tracing events.

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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_llm_log::sink::{JsonLinesFile, TracingSink};
use tower_llm_log::{LlmLogLayer, LlmLogRecord, LlmLogSink, MemorySink, NonBlocking, Outcome, RecordKind};

async fn gateway(layer: LlmLogLayer) -> SocketAddr {
    let mock = serve(mock::router()).await;
    serve(app::router(
        app::Upstream::new(&format!("http://{mock}")).unwrap(),
        layer,
    ))
    .await
}

/// Sends `n` chat requests, `concurrency` at a time; returns how long it took.
async fn load(addr: SocketAddr, n: usize, concurrency: usize) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let client = client.clone();
        tasks.spawn(async move {
            for i in (worker..n).step_by(concurrency) {
                let body =
                    format!(r#"{{"model":"m","messages":[{{"role":"user","content":"request {i}"}}]}}"#);
                let req = Request::post(format!("http://{addr}/v1/chat/completions"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let res = client.request(req).await.unwrap();
                assert_eq!(res.status(), 200);
                let bytes = res.into_body().collect().await.unwrap().to_bytes();
                assert!(bytes.starts_with(b"{\"choices\""));
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

/// A sink that blocks until released.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

impl LlmLogSink for Gate {
    fn emit(&self, _record: LlmLogRecord) {
        let mut open = self.0 .0.lock().unwrap();
        while !*open {
            open = self.0 .1.wait(open).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_sink_behind_non_blocking_costs_records_not_requests() {
    let gate = Gate::default();
    let (sink, guard) = NonBlocking::builder()
        .capacity(16)
        .batch_size(4)
        .shutdown_timeout(Duration::from_millis(100))
        .build(gate.clone());
    let layer = LlmLogLayer::new(sink.clone());
    // The sink stays blocked until every request has been answered: that they all are proves
    // the traffic never waits for it (no timing involved).
    load(gateway(layer.clone()).await, 200, 8).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while layer.stats().records_emitted < 400 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = sink.stats();
    assert_eq!(
        layer.stats().records_emitted,
        400,
        "the layer handed over every record"
    );
    assert_eq!(stats.dropped + stats.queued + stats.emitted, 400);
    // At most the queue and the one batch the stuck worker holds are kept; the rest is dropped.
    assert!(
        stats.queued <= 16 + 4 && stats.dropped >= 400 - 16 - 4,
        "{stats:?}"
    );
    assert!(!guard.shutdown().finished, "the stuck sink cannot drain");
    gate.open();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_sink_behind_non_blocking_is_counted() {
    quiet_expected_panics("sink bug");
    let (sink, guard) = NonBlocking::new(|_r: LlmLogRecord| panic!("sink bug"));
    let layer = LlmLogLayer::new(sink.clone());
    load(gateway(layer.clone()).await, 20, 4).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while layer.stats().records_emitted < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Flush returns once the worker has taken everything before it; the bound only keeps a
    // broken worker from hanging the test, so it is generous for a loaded machine.
    assert!(sink.flush(Duration::from_secs(120)));
    assert_eq!(sink.stats().failed, 40);
    assert_eq!(sink.stats().emitted, 0);
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_emitted_before_shutdown_is_in_the_file() {
    let dir = std::env::temp_dir().join(format!("tower-llm-log-flush-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("llm.jsonl");
    let file = JsonLinesFile::builder(&path)
        .max_bytes(4096)
        .max_files(1000)
        .build()
        .unwrap();
    // A slow file: the queue holds a backlog when shutdown starts.
    let slow = move |r: LlmLogRecord| {
        std::thread::sleep(Duration::from_micros(200));
        file.emit(r)
    };
    // The guard waits for the backlog (200 records at 200 µs: 40 ms) and returns once it is
    // written; the bound is for a broken worker, not for a busy machine.
    let (sink, guard) = NonBlocking::builder()
        .capacity(10_000)
        .shutdown_timeout(Duration::from_secs(120))
        .build(slow);
    let layer = LlmLogLayer::new(sink.clone());
    load(gateway(layer.clone()).await, 100, 8).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while layer.stats().records_emitted < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Dropping the guard delivers what is queued (the slow file still has a backlog here).
    assert!(sink.stats().queued > 0 || sink.stats().emitted == 200);
    drop(guard);
    let stats = sink.stats();
    assert_eq!((stats.emitted, stats.dropped, stats.queued), (200, 0, 0));
    let mut records = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(text.len() <= 4096 || text.lines().count() == 1);
        records.extend(
            text.lines()
                .map(|l| serde_json::from_str::<LlmLogRecord>(l).unwrap()),
        );
    }
    assert_eq!(records.len(), 200);
    let mut ids: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Response)
        .map(|r| &r.correlation_id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One event: target, level, fields.
type Event = (String, tracing::Level, BTreeMap<String, String>);

/// Collects events' fields.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(BTreeMap<String, String>);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_string(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.insert(field.name().to_string(), value.to_string());
            }
        }
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_string(), *meta.level(), fields.0));
    }
}

#[tokio::test]
async fn tracing_events_carry_the_record_fields() {
    use tracing_subscriber::layer::SubscriberExt;
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let addr = gateway(layer).await;
    // Run the load on this thread's runtime so the thread-local subscriber sees the events.
    load(addr, 1, 1).await;
    let mut records = wait_records(&sink, 2).await;
    records.sort_by_key(|r| r.kind == RecordKind::Response);
    let plain = TracingSink::new();
    let with_content = TracingSink::new().with_content(true);
    plain.emit(records[1].clone());
    with_content.emit(records[0].clone());
    let mut failed = records[1].clone();
    failed.outcome = Outcome::ClientDisconnected;
    plain.emit(failed);
    let got = events.0.lock().unwrap().clone();
    let ours: Vec<_> = got.iter().filter(|(t, _, _)| t == "tower_llm_log").collect();
    assert_eq!(ours.len(), 3);
    let (_, level, f) = ours[0];
    assert_eq!(*level, tracing::Level::INFO);
    assert_eq!(f["kind"], "Response");
    assert_eq!(f["model_name"], "m");
    assert_eq!(f["total_tokens"], records[1].total_tokens.unwrap().to_string());
    assert_eq!(f["outcome"], "Completed");
    assert_eq!(f["correlation_id"], records[1].correlation_id);
    assert!(!f.contains_key("messages"), "content only when asked");
    assert!(!f.contains_key("cached_tokens") || f["cached_tokens"] == "0");
    assert!(!f.contains_key("error"), "absent values are left out");
    assert_eq!(ours[1].2["messages"], records[0].messages_str());
    assert_eq!(ours[2].1, tracing::Level::WARN);
}

/// Keeps the panics a test provokes from printing: with `RUST_BACKTRACE` set, each one
/// symbolises a backtrace, which on a busy machine takes long enough to hold a worker up for
/// seconds. Any other panic still goes to the default hook.
fn quiet_expected_panics(message: &'static str) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&message) {
            default(info);
        }
    }));
}
