//! Writing your own sink: token usage per model, printed as a summary on shutdown.
//!
//! ```text
//! cargo run --example custom_sink
//! ```
//!
//! The app serves the mock chat completions of the gateway (`gateway/src/mock.rs`) behind the layer, sends itself
//! a few requests (streamed and not, several models), shuts down, and prints what the sink
//! gathered. A real sink would export to a metrics system instead of printing.

#[allow(dead_code)]
#[path = "../gateway/src/mock.rs"]
mod mock;
#[path = "../gateway/src/mock_apis.rs"]
mod mock_apis;
#[allow(dead_code)]
#[path = "../gateway/src/mock_mcp.rs"]
mod mock_mcp;
#[allow(dead_code)]
#[path = "../gateway/src/mock_native.rs"]
mod mock_native;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_llm_log::sink::{FanOut, TracingSink};
use tower_llm_log::{LlmLogLayer, LlmLogRecord, LlmLogSink, NonBlocking, RecordKind};

/// Totals for one model.
#[derive(Debug, Default, Clone)]
struct ModelUsage {
    exchanges: u64,
    streamed: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    /// Exchanges whose provider reported no usage (unknown is not zero).
    without_usage: u64,
}

/// Aggregates token usage per model. Cheap and non-blocking: a short lock and a few additions.
#[derive(Clone, Default)]
struct TokensByModel(Arc<Mutex<BTreeMap<String, ModelUsage>>>);

impl LlmLogSink for TokensByModel {
    fn emit(&self, record: LlmLogRecord) {
        // Token counts sit on the last response record of each exchange: count exchanges there.
        if record.kind != RecordKind::Response || !record.is_last {
            return;
        }
        let model = record.model_name.clone().unwrap_or_else(|| "(unknown)".into());
        let mut totals = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let usage = totals.entry(model).or_default();
        usage.exchanges += 1;
        usage.streamed += u64::from(record.is_stream_completion);
        match (record.prompt_tokens, record.completion_tokens) {
            (Some(p), Some(c)) => {
                usage.prompt_tokens += p;
                usage.completion_tokens += c;
            }
            _ => usage.without_usage += 1,
        }
    }
}

impl TokensByModel {
    fn print_summary(&self) {
        let totals = self.0.lock().unwrap_or_else(|p| p.into_inner());
        println!(
            "{:<16} {:>9} {:>8} {:>8} {:>11} {:>14}",
            "model", "exchanges", "streamed", "prompt", "completion", "without usage"
        );
        for (model, u) in totals.iter() {
            println!(
                "{model:<16} {:>9} {:>8} {:>8} {:>11} {:>14}",
                u.exchanges, u.streamed, u.prompt_tokens, u.completion_tokens, u.without_usage
            );
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tokens = TokensByModel::default();
    // Every record also goes to `tracing` (silent here: no subscriber is installed).
    let sink = FanOut::new().with(tokens.clone()).with(TracingSink::new());
    let (sink, guard) = NonBlocking::new(sink);
    let app = mock::router().layer(LlmLogLayer::new(sink.clone()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async { stopped.await.unwrap_or(()) })
            .await
    });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let requests = [
        ("gpt-4o", false, true),
        ("gpt-4o", true, true),
        ("gpt-4o-mini", false, true),
        ("gpt-4o-mini", true, false), // a stream without usage: counted apart
        ("o3-mini", false, true),
    ];
    for (model, stream, include_usage) in requests {
        let body = format!(
            r#"{{"model":"{model}","stream":{stream},"stream_options":{{"include_usage":{include_usage}}},"messages":[{{"role":"user","content":"How many tokens is this?"}}]}}"#
        );
        let request = http::Request::post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let response = client.request(request).await?;
        response.into_body().collect().await?;
    }

    let _ = stop.send(());
    server.await??;
    // Deliver what is queued before reading the totals.
    let report = guard.shutdown();
    println!(
        "records delivered: {}, dropped: {}\n",
        report.stats.emitted, report.stats.dropped
    );
    tokens.print_summary();
    Ok(())
}
