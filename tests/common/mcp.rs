//! What the MCP tests share: the server's answers and the fixtures.

use http::header::CONTENT_TYPE;
use http::Response;

/// A fixture of `tests/fixtures/mcp`.
pub fn mcp_fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/mcp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// What the MCP server answers.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Answer {
    /// The answer with `body`.
    pub fn with<B>(&self, body: B) -> Response<B> {
        let mut res = Response::builder().status(self.status);
        if let Some(ct) = self.content_type {
            res = res.header(CONTENT_TYPE, ct);
        }
        for (name, value) in &self.headers {
            res = res.header(*name, *value);
        }
        res.body(body).expect("a valid answer")
    }
}

/// `200`, `application/json`.
pub fn json() -> Answer {
    Answer {
        status: 200,
        content_type: Some("application/json"),
        headers: Vec::new(),
    }
}

/// `200`, `text/event-stream`.
pub fn sse() -> Answer {
    Answer {
        content_type: Some("text/event-stream"),
        ..json()
    }
}

/// `202 Accepted`, no body.
pub fn accepted() -> Answer {
    Answer {
        status: 202,
        content_type: None,
        headers: Vec::new(),
    }
}
