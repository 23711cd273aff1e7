//! Logs an API family the crate does not know: Cohere's Chat API v2, added with
//! `LlmLogLayer::with_api`.
//!
//! ```text
//! cargo run --example custom_api
//! ```
//!
//! A stand-in Cohere endpoint answers in-process; the layer logs the exchange and prints its
//! records as JSON Lines.

mod cohere;

use axum::routing::post;
use axum::Router;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_llm_log::{LlmLogLayer, MemorySink};

const ANSWER: &str = r#"{"id":"c14c80c3-18eb-4519-9460-6c92edd8cfb4","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"Hello from Cohere."}]},"usage":{"billed_units":{"input_tokens":5,"output_tokens":4},"tokens":{"input_tokens":71,"output_tokens":4}}}"#;

#[tokio::main]
async fn main() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/v2/chat",
            post(|| async { ([("content-type", "application/json")], ANSWER) }),
        )
        .layer(LlmLogLayer::new(sink.clone()).with_api(cohere::CohereChatApi));
    let request = Request::post("/v2/chat")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            r#"{"model":"command-a-03-2025","messages":[{"role":"user","content":"Say hello."}]}"#,
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
