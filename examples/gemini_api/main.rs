//! Logs an API family the crate does not know: Google's Gemini `generateContent`.
//!
//! ```text
//! cargo run --example gemini_api
//! ```
//!
//! A stand-in Gemini endpoint answers in-process; the layer, told about the family with
//! `LlmLogLayer::with_api`, logs the exchange and prints its records as JSON Lines.

mod gemini;

use axum::routing::post;
use axum::Router;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_llm_log::{LlmLogLayer, MemorySink};

const ANSWER: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello from Gemini."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":5,"totalTokenCount":9},"modelVersion":"gemini-2.0-flash","responseId":"resp-1"}"#;

#[tokio::main]
async fn main() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/v1beta/models/{call}",
            post(|| async { ([("content-type", "application/json")], ANSWER) }),
        )
        .layer(LlmLogLayer::new(sink.clone()).with_api(gemini::GeminiApi));
    let request = Request::post("/v1beta/models/gemini-2.0-flash:generateContent")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            r#"{"contents":[{"role":"user","parts":[{"text":"Say hello."}]}]}"#,
        ))
        .expect("a valid request");
    let response = app.oneshot(request).await.expect("the router answers");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body reads")
        .to_bytes();
    println!("response: {}", String::from_utf8_lossy(&body));
    for record in sink.take() {
        println!("{}", serde_json::to_string(&record).expect("records serialize"));
    }
}
