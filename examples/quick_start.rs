use axum::{routing::post, Router};
use tower_llm_log::{JsonLinesSink, LlmLogLayer, LogConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One JSON object per line, Azure column names.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("llm-log.jsonl")?;
    let sink = JsonLinesSink::new(std::io::BufWriter::new(file));

    let config = LogConfig::builder()
        .prompt_bytes(262_144) // log up to 256 KiB of each prompt
        .completion_bytes(262_144) // and of each completion
        .build()?; // out-of-range values are an error, never clamped

    // Your handler or proxy. (The layer reads each request ahead of it, so even a request it
    // rejects or never reads is logged with its prompt.)
    let handler = |body: axum::body::Bytes| async move { format!("received {} bytes", body.len()) };
    let app = Router::new()
        .route("/v1/chat/completions", post(handler))
        .layer(LlmLogLayer::new(sink).with_config(config));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
