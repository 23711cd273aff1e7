//! Embeddings (`.../embeddings`).
//!
//! - Request: `model`, and the raw `input` value (a string, a list of strings, or tokens) as the
//!   logged prompt.
//! - Response: `model`, `usage`, and in place of the vectors (never logged) a summary as the
//!   logged message: `{"vectors":2,"dimensions":1536,"encoding":"float"}`. The vectors are
//!   counted as they pass, not kept; base64 vectors are measured by their length.

use serde::Serialize;

use super::openai::Usage;
use super::scanned::{self, ScannedBody, END_USER};
use super::{BodyFacts, BodyReader, LlmApi, LoggedMessage, RawReader, RequestHead, Route, StreamReader};
use crate::scan::json::{Action, Node, ScanResult};
use crate::ApiFamily;

const MODEL: u8 = 0;
const USAGE: u8 = 4;
const VECTORS: u8 = 6;
const EMBEDDING: u8 = 7;
const FLOATS: u8 = 8;

static REQUEST: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"input", Action::Capture, &[]),
    Node::key(b"user", Action::Scalar(END_USER), &[]),
    Node::key(b"safety_identifier", Action::Scalar(END_USER), &[]),
]);

static RESPONSE: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"usage", Action::Scalar(USAGE), &[]),
    Node::key(
        b"data",
        Action::Walk,
        &[Node::element(
            Action::Count(VECTORS),
            &[Node::key(
                b"embedding",
                Action::Measure(EMBEDDING),
                &[Node::element(Action::Count(FLOATS), &[])],
            )],
        )],
    ),
]);

/// Embeddings: [`ApiFamily::Embeddings`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbeddingsApi;

impl LlmApi for EmbeddingsApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::Embeddings
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        super::recognize(head).filter(|r| r.family == ApiFamily::Embeddings)
    }

    fn request_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(&REQUEST, cap, Some("input"), read_request))
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(Summary {
            inner: ScannedBody::new(&RESPONSE, 0, None, read_response),
            cap,
        })
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        // Embeddings do not stream; whatever comes is kept as it is.
        Box::new(RawReader::new(cap))
    }
}

fn read_request(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.model = scanned::string(scan, MODEL);
    facts.end_user = scanned::string(scan, END_USER);
}

#[derive(Serialize)]
struct VectorSummary {
    vectors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u64>,
    encoding: &'static str,
}

fn read_response(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.model = scanned::string(scan, MODEL);
    if let Some(u) = scanned::parsed::<Usage>(scan, USAGE, "usage", facts) {
        facts.usage = u.into();
    }
    let (vectors, _) = scan.count(VECTORS);
    let (embeddings, embedding_bytes) = scan.count(EMBEDDING);
    let (floats, _) = scan.count(FLOATS);
    let summary = if floats > 0 || embeddings == 0 {
        VectorSummary {
            vectors,
            dimensions: (vectors > 0 && floats % vectors == 0).then(|| floats / vectors),
            encoding: "float",
        }
    } else {
        // Base64 of 4-byte floats: each vector is a JSON string of 4 * ceil(4d / 3) characters
        // between its quotes, which reads back as d exactly.
        let chars = embedding_bytes.saturating_sub(2 * embeddings) / embeddings;
        VectorSummary {
            vectors,
            dimensions: Some(chars * 3 / 4 / 4),
            encoding: "base64",
        }
    };
    let json = serde_json::to_vec(&summary).unwrap_or_default();
    facts.message = LoggedMessage::from_vec(json, usize::MAX);
}

/// The scanned response, its summary cut to the completion cap.
struct Summary {
    inner: ScannedBody,
    cap: usize,
}

impl BodyReader for Summary {
    fn feed(&mut self, frame: &bytes::Bytes) {
        self.inner.feed(frame);
    }

    fn finish(self: Box<Self>, ended: bool) -> BodyFacts {
        let mut facts = Box::new(self.inner).finish(ended);
        let summary = std::mem::take(&mut facts.message).to_bytes();
        facts.message = LoggedMessage::from_vec(summary.to_vec(), self.cap);
        // Serialized by serde: one whole JSON value unless the cap cut it.
        facts.whole_json = !summary.is_empty() && !facts.message.truncated;
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn response(body: &str, split: usize) -> BodyFacts {
        let route = Route::new(ApiFamily::Embeddings, "openai");
        let mut reader = EmbeddingsApi.response_reader(&route, 1000);
        reader.feed(&Bytes::copy_from_slice(&body.as_bytes()[..split]));
        reader.feed(&Bytes::copy_from_slice(&body.as_bytes()[split..]));
        reader.finish(true)
    }

    #[test]
    fn vectors_are_counted_not_logged() {
        let body = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2,3e-5]},{"object":"embedding","index":1,"embedding":[1,2,3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        for split in 0..body.len() {
            let f = response(body, split);
            assert_eq!(
                &f.message.to_bytes()[..],
                br#"{"vectors":2,"dimensions":3,"encoding":"float"}"#,
                "split at {split}"
            );
            assert_eq!(f.usage.prompt, Some(4));
            assert_eq!(f.model.as_deref(), Some("text-embedding-3-small"));
            assert!(f.errors.is_empty(), "{:?}", f.errors);
        }
    }

    #[test]
    fn base64_vectors_are_measured() {
        // 3 floats = 12 bytes = 16 base64 characters; 5 floats = 20 bytes = 28 characters.
        let body =
            r#"{"data":[{"embedding":"AAAAAAAAAAAAAAAA"},{"embedding":"AAAAAAAAAAAAAAAA"}],"model":"m"}"#;
        let f = response(body, 10);
        assert_eq!(
            &f.message.to_bytes()[..],
            br#"{"vectors":2,"dimensions":3,"encoding":"base64"}"#
        );
        let body = r#"{"data":[{"embedding":"AAAAAAAAAAAAAAAAAAAAAAAAAA=="}]}"#;
        let f = response(body, 30);
        assert_eq!(
            &f.message.to_bytes()[..],
            br#"{"vectors":1,"dimensions":5,"encoding":"base64"}"#
        );
    }
}
