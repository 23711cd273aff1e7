//! An LLM gateway: a reverse proxy that logs every chat completion passing through it.
//!
//! ```text
//! cargo run --example gateway                       # built-in mock upstream, log to llm-log.jsonl
//! cargo run --example gateway -- --upstream https://api.openai.com --log-file /var/log/llm.jsonl
//! ```
//!
//! Then, in another shell:
//!
//! ```text
//! curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}]}'
//! tail -n 2 llm-log.jsonl
//! ```

mod app;
mod mock;

use std::fs::OpenOptions;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tower_llm_log::{JsonLinesSink, LlmLogLayer, LogConfig};

/// An LLM gateway that logs prompts, completions and token usage as JSON Lines.
#[derive(Parser, Debug)]
#[command(name = "gateway")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Upstream base URL (http:// or https://). Without it, a built-in mock upstream is started.
    #[arg(long)]
    upstream: Option<String>,
    /// JSON Lines file to append records to.
    #[arg(long, default_value = "llm-log.jsonl")]
    log_file: PathBuf,
    /// Most prompt bytes logged per request (at most 2097152; 0 logs metadata and tokens only).
    #[arg(long, default_value_t = tower_llm_log::DEFAULT_MESSAGE_BYTES)]
    prompt_bytes: usize,
    /// Most completion bytes logged per response (at most 2097152; 0 logs metadata and tokens only).
    #[arg(long, default_value_t = tower_llm_log::DEFAULT_MESSAGE_BYTES)]
    completion_bytes: usize,
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    eprintln!("\nFor more information, try '--help'.");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match LogConfig::builder()
        .prompt_bytes(args.prompt_bytes)
        .completion_bytes(args.completion_bytes)
        .build()
    {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };

    let (upstream_url, mock) = match &args.upstream {
        Some(url) => (url.clone(), None),
        None => {
            let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot start the mock upstream: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let task = tokio::spawn(async move { axum::serve(listener, mock::router()).await });
            (format!("http://{addr}"), Some(task))
        }
    };
    let upstream = match app::Upstream::new(&upstream_url) {
        Ok(u) => u,
        Err(e) => return usage_error(&e),
    };

    let file = match OpenOptions::new().create(true).append(true).open(&args.log_file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot open --log-file {}: {e}", args.log_file.display());
            return ExitCode::FAILURE;
        }
    };
    let sink = Arc::new(JsonLinesSink::new(BufWriter::new(file)));
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(args.listen);
    let which = if mock.is_some() {
        "the built-in mock upstream at "
    } else {
        ""
    };
    eprintln!("gateway listening on http://{local}");
    eprintln!("forwarding to {which}{upstream_url}");
    eprintln!("logging to {} (Ctrl-C to stop)", args.log_file.display());
    eprintln!(
        "try: curl -s http://{local}/v1/chat/completions -H 'content-type: application/json' \
         -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Say hi\"}}]}}'"
    );

    let served = axum::serve(listener, app::router(upstream, layer.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    if let Some(task) = mock {
        task.abort();
    }
    if let Err(e) = sink.flush() {
        eprintln!("error: flushing {}: {e}", args.log_file.display());
    }
    let stats = layer.stats();
    eprintln!(
        "stopped: {} exchanges, {} records written to {}, {} lost to write errors, {} to sink panics",
        stats.exchanges_started,
        sink.written(),
        args.log_file.display(),
        sink.write_errors(),
        stats.sink_panics
    );
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    eprintln!("shutting down: finishing open requests");
}
