//! Cohere's Chat API v2 (`POST /v2/chat`) as an API family of one's own, built on the crate's
//! stable surface only: [`MessageCapture`] for bodies, serde for what they say, and the
//! server-sent-events framing the layer runs for streams.
//!
//! - Request: the `messages` as the prompt, `model`, `stream`.
//! - Response: `message.content` as the completion; `id`, `finish_reason`, and
//!   `usage.tokens` (`input_tokens`, `output_tokens`).
//! - Stream: `message-start` (the id), `content-delta` (text), `message-end` (the finish
//!   reason and usage).

use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_llm_log::api::{
    BodyFacts, BodyReader, LlmApi, LoggedMessage, MessageCapture, RequestHead, Route, StreamEvent,
    StreamReader, TokenUsage,
};
use tower_llm_log::ApiFamily;

const FAMILY: &str = "cohere_chat";

/// Cohere's Chat API v2.
#[derive(Debug, Clone, Copy, Default)]
pub struct CohereChatApi;

impl LlmApi for CohereChatApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::Other(FAMILY.into())
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        (head.method() == http::Method::POST && head.path().ends_with("/v2/chat"))
            .then(|| Route::new(self.family(), "cohere").with_operation("chat"))
    }

    fn request_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(WholeBody::new(cap, Side::Request))
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(WholeBody::new(cap, Side::Response))
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(ChatStream {
            cap,
            ..ChatStream::default()
        })
    }
}

#[derive(Clone, Copy)]
enum Side {
    Request,
    Response,
}

/// Keeps the body up to the cap; reads it with serde when it came whole. Simple, and good
/// for bodies within the cap (a prompt over the cap is logged as its first `cap` bytes, with
/// no model). The built-in families scan bodies of any size instead.
struct WholeBody {
    capture: MessageCapture,
    cap: usize,
    side: Side,
}

impl WholeBody {
    fn new(cap: usize, side: Side) -> Self {
        WholeBody {
            capture: MessageCapture::new(cap),
            cap,
            side,
        }
    }
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    tokens: Tokens,
}

#[derive(Deserialize, Default)]
struct Tokens {
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> TokenUsage {
        let count = |n: Option<f64>| n.map(|n| n as u64);
        let mut t = TokenUsage::default();
        t.prompt = count(u.tokens.input_tokens);
        t.completion = count(u.tokens.output_tokens);
        t.total = t.prompt.zip(t.completion).map(|(p, c)| p + c);
        t
    }
}

impl BodyReader for WholeBody {
    fn feed(&mut self, frame: &Bytes) {
        self.capture.push_all(frame);
    }

    fn finish(self: Box<Self>, _ended: bool) -> BodyFacts {
        let kept = self.capture.finish();
        let mut facts = BodyFacts::default();
        if kept.is_truncated() {
            facts.errors.push(
                format!(
                    "the body is over the cap ({} bytes): logged as it came, unread",
                    self.cap
                )
                .into(),
            );
            facts.message = kept;
            return facts;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&kept.to_bytes()) else {
            facts.errors.push("the body is not JSON".into());
            facts.message = kept;
            return facts;
        };
        let logged = match self.side {
            Side::Request => {
                facts.model = value["model"].as_str().map(String::from);
                facts.stream = value["stream"].as_bool().unwrap_or(false);
                &value["messages"]
            }
            Side::Response => {
                facts.request_id = value["id"].as_str().map(String::from);
                facts.finish_reasons = value["finish_reason"]
                    .as_str()
                    .map(String::from)
                    .into_iter()
                    .collect();
                if let Ok(usage) = serde_json::from_value::<Usage>(value["usage"].clone()) {
                    facts.usage = usage.into();
                }
                &value["message"]["content"]
            }
        };
        facts.message = LoggedMessage::from_vec(logged.to_string().into_bytes(), self.cap);
        facts
    }
}

/// One streamed event: what the reader needs of each type.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    #[serde(default)]
    delta: Value,
}

/// Assembles the streamed text, keeping at most `cap` bytes.
#[derive(Default)]
struct ChatStream {
    cap: usize,
    text: String,
    facts: BodyFacts,
    done: bool,
}

impl StreamReader for ChatStream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        let Ok(e) = serde_json::from_slice::<Event>(event.data) else {
            self.facts.errors.push("an event is not JSON".into());
            return;
        };
        match e.kind.as_str() {
            "message-start" => self.facts.request_id = e.id,
            "content-delta" => {
                let Some(text) = e.delta["message"]["content"]["text"].as_str() else {
                    return;
                };
                self.facts.first_token_at.get_or_insert_with(Instant::now);
                // Keep whole characters within the cap.
                let mut take = text.len().min(self.cap - self.text.len());
                while !text.is_char_boundary(take) {
                    take -= 1;
                }
                self.text.push_str(&text[..take]);
            }
            "message-end" => {
                self.done = true;
                self.facts.finish_reasons = e.delta["finish_reason"]
                    .as_str()
                    .map(String::from)
                    .into_iter()
                    .collect();
                if let Ok(usage) = serde_json::from_value::<Usage>(e.delta["usage"].clone()) {
                    self.facts.usage = usage.into();
                }
            }
            _ => {}
        }
    }

    fn finish(mut self: Box<Self>, _ended: bool) -> BodyFacts {
        let mut facts = std::mem::take(&mut self.facts);
        let content = json!([{"type": "text", "text": self.text}]);
        facts.message = LoggedMessage::from_vec(content.to_string().into_bytes(), self.cap);
        facts.stream = true;
        facts.stream_ended = self.done;
        facts
    }
}
