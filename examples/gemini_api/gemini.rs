//! Google's Gemini `generateContent` as an API family of one's own: recognition from the path,
//! a request reader and a response reader on the crate's JSON scanner, and a stream reader for
//! `streamGenerateContent?alt=sse`.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tower_llm_log::api::{
    BodyFacts, BodyReader, LlmApi, LoggedMessage, RequestHead, Route, StreamEvent, StreamReader, TokenUsage,
};
use tower_llm_log::scan::json::{scalar_string, Action, JsonScanner, Node, ScanResult};
use tower_llm_log::ApiFamily;

const FAMILY: &str = "gemini.generate_content";

const USAGE: u8 = 0;
const MODEL_VERSION: u8 = 1;
const RESPONSE_ID: u8 = 2;
const FINISH_REASON: u8 = 3;

/// The prompt: `systemInstruction` and `contents`, logged together as one object.
static REQUEST: Node = Node::root(&[
    Node::key(b"systemInstruction", Action::Capture, &[]),
    Node::key(b"contents", Action::Capture, &[]),
]);

/// The completion: the `candidates`; usage, model version and response id beside them.
static RESPONSE: Node = Node::root(&[
    Node::key(b"usageMetadata", Action::Scalar(USAGE), &[]),
    Node::key(b"modelVersion", Action::Scalar(MODEL_VERSION), &[]),
    Node::key(b"responseId", Action::Scalar(RESPONSE_ID), &[]),
    Node::key(
        b"candidates",
        Action::Capture,
        &[Node::element(
            Action::Walk,
            &[Node::key(b"finishReason", Action::EachScalar(FINISH_REASON), &[])],
        )],
    ),
]);

/// Gemini's `generateContent` and `streamGenerateContent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiApi;

impl LlmApi for GeminiApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::Other(FAMILY.into())
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        if head.method() != http::Method::POST {
            return None;
        }
        // /v1beta/models/{model}:generateContent, or :streamGenerateContent
        let (prefix, method) = head.path().rsplit_once(':')?;
        if method != "generateContent" && method != "streamGenerateContent" {
            return None;
        }
        let model = prefix.rsplit_once("/models/")?.1;
        Some(
            Route::new(self.family(), "gcp.gemini")
                .with_operation("generate_content")
                .with_model(model),
        )
    }

    fn request_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(Scanned {
            scanner: JsonScanner::new(&REQUEST, cap),
            response: false,
        })
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(Scanned {
            scanner: JsonScanner::new(&RESPONSE, cap),
            response: true,
        })
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(Stream {
            cap,
            ..Stream::default()
        })
    }
}

/// Gemini's usage metadata.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Usage {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    total_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> TokenUsage {
        let mut t = TokenUsage::default();
        t.prompt = u.prompt_token_count;
        t.completion = u.candidates_token_count;
        t.total = u.total_token_count;
        t.cached = u.cached_content_token_count;
        t.reasoning = u.thoughts_token_count;
        t
    }
}

struct Scanned {
    scanner: JsonScanner,
    response: bool,
}

impl BodyReader for Scanned {
    fn feed(&mut self, frame: &Bytes) {
        self.scanner.feed(frame);
    }

    fn finish(self: Box<Self>, ended: bool) -> BodyFacts {
        let mut scan: ScanResult = self.scanner.finish();
        let mut facts = BodyFacts::default();
        if let Some(problem) = scan.problem().filter(|_| ended || scan.error().is_some()) {
            facts.errors.push(problem);
        }
        if self.response {
            facts.model = scan.scalar(MODEL_VERSION).and_then(scalar_string);
            facts.request_id = scan.scalar(RESPONSE_ID).and_then(scalar_string);
            facts.finish_reasons = scan.scalars_in(FINISH_REASON).filter_map(scalar_string).collect();
            if let Some(raw) = scan.scalar(USAGE) {
                match serde_json::from_slice::<Usage>(raw) {
                    Ok(u) => facts.usage = u.into(),
                    Err(e) => facts.errors.push(format!("unreadable usageMetadata: {e}")),
                }
            }
        }
        facts.message = scan.take_capture().unwrap_or_default();
        facts
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default)]
    candidates: Vec<CandidateChunk>,
    usage_metadata: Option<Usage>,
    model_version: Option<String>,
    response_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateChunk {
    #[serde(default)]
    index: u32,
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    text: Option<String>,
}

/// Assembles streamed chunks into candidates, keeping at most `cap` bytes of text.
#[derive(Default)]
struct Stream {
    cap: usize,
    kept: usize,
    text: BTreeMap<u32, (String, Option<String>)>,
    facts: BodyFacts,
    done: bool,
}

impl StreamReader for Stream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        let chunk = match serde_json::from_slice::<Chunk>(event.data) {
            Ok(c) => c,
            Err(e) => return self.facts.errors.push(format!("unreadable chunk: {e}")),
        };
        self.facts.model = chunk.model_version.or(self.facts.model.take());
        self.facts.request_id = chunk.response_id.or(self.facts.request_id.take());
        if let Some(u) = chunk.usage_metadata {
            self.facts.usage = u.into();
        }
        for c in chunk.candidates {
            let entry = self.text.entry(c.index).or_default();
            for text in c.content.into_iter().flat_map(|c| c.parts).filter_map(|p| p.text) {
                self.facts.first_token_at.get_or_insert_with(Instant::now);
                // Keep whole characters within the cap.
                let mut take = text.len().min(self.cap - self.kept);
                while !text.is_char_boundary(take) {
                    take -= 1;
                }
                entry.0.push_str(&text[..take]);
                self.kept += take;
            }
            if let Some(reason) = c.finish_reason {
                self.done = true;
                entry.1 = Some(reason);
            }
        }
    }

    fn finish(mut self: Box<Self>, _ended: bool) -> BodyFacts {
        let candidates: Vec<_> = std::mem::take(&mut self.text)
            .into_iter()
            .map(|(index, (text, reason))| {
                json!({"index": index, "content": {"role": "model", "parts": [{"text": text}]}, "finishReason": reason})
            })
            .collect();
        let mut facts = std::mem::take(&mut self.facts);
        facts.finish_reasons = candidates
            .iter()
            .filter_map(|c| c["finishReason"].as_str().map(String::from))
            .collect();
        let json = serde_json::to_vec(&candidates).unwrap_or_default();
        facts.message = LoggedMessage::from_vec(json, self.cap);
        facts.stream = true;
        facts.stream_ended = self.done;
        facts
    }
}
