//! The gateway's router: a streaming reverse proxy with the logging layer.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_llm_log::LlmLogLayer;

/// Where requests are forwarded.
#[derive(Clone)]
pub struct Upstream {
    base: String,
    client: reqwest::Client,
}

impl Upstream {
    /// An upstream at `base` (`http://` or `https://`, no trailing path needed).
    pub fn new(base: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("--upstream {base:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("--upstream {base:?} must start with http:// or https://"));
        }
        // TLS for https upstreams; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Upstream {
            base: base.trim_end_matches('/').to_string(),
            client,
        })
    }
}

/// The gateway: every request is forwarded to `upstream`, and LLM calls are logged by `layer`.
pub fn router(upstream: Upstream, layer: LlmLogLayer) -> Router {
    proxy(upstream).layer(layer)
}

/// The proxy alone, with no logging (for comparisons).
pub fn proxy(upstream: Upstream) -> Router {
    Router::new().fallback(forward).with_state(upstream)
}

/// Headers that belong to one connection and are not forwarded.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::HOST
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TE
        || name == header::TRAILER
        || name == header::PROXY_AUTHORIZATION
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !is_hop_by_hop(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// Forwards a request, streaming the body both ways.
async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    let sent = upstream
        .client
        .request(parts.method, format!("{}{}", upstream.base, path))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            if let Some(h) = response.headers_mut() {
                copy_headers(answer.headers(), h);
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|e| bad_gateway(&e.to_string()))
        }
        // Without the URL: its query may carry a credential (`?api-key=...`), and this answer
        // is logged.
        Err(e) => bad_gateway(&error_chain(&e.without_url())),
    }
}

/// An error with its causes, so "error sending request" says why (refused, certificate, ...).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn bad_gateway(message: &str) -> Response {
    let body = serde_json::json!({"error": {"message": format!("upstream unreachable: {message}"), "type": "bad_gateway"}});
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
