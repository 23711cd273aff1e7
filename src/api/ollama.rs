//! Ollama's native API: `POST /api/chat` ([`ApiFamily::OllamaChat`]) and `POST /api/generate`
//! ([`ApiFamily::OllamaGenerate`]), provider `ollama`.
//!
//! - Request: `model`; `stream` (true when absent, as Ollama reads it); the prompt is `messages`
//!   for chat and `{"system":...,"prompt":...}` for generate.
//! - Response (`"stream": false`): the `message` (chat) or the `response` text (generate) as the
//!   logged completion; `done_reason` as the finish reason; tokens from `prompt_eval_count`
//!   (prompt) and `eval_count` (completion), their sum as the total. Ollama gives no response
//!   id.
//! - Stream: newline-delimited JSON (`application/x-ndjson`), one chunk per line, assembled into
//!   the same `message` (content, thinking, tool calls) or `response` text as a whole response;
//!   the line with `"done": true` carries the finish reason and the counts and ends the stream;
//!   an `{"error":...}` line ends it and is reported.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::assemble::{clip, clip_word, cow_str, StreamState, MAX_PARTS};
use super::scanned::{self, ScannedBody, MODEL, STREAM};
use super::{
    is_media_type, BodyFacts, BodyReader, Framing, LlmApi, RequestHead, Route, StreamEvent, StreamReader,
    TokenUsage,
};
use crate::scan::json::{Action, Node, ScanResult};
use crate::ApiFamily;

const USAGE_PROMPT: u8 = 3;
const USAGE_COMPLETION: u8 = 4;
const FINISH_REASON: u8 = 5;

static CHAT_REQUEST: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"stream", Action::Scalar(STREAM), &[]),
    Node::key(b"messages", Action::Capture, &[]),
]);

static GENERATE_REQUEST: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"stream", Action::Scalar(STREAM), &[]),
    Node::key(b"system", Action::Capture, &[]),
    Node::key(b"prompt", Action::Capture, &[]),
]);

static CHAT_RESPONSE: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"done_reason", Action::Scalar(FINISH_REASON), &[]),
    Node::key(b"prompt_eval_count", Action::Scalar(USAGE_PROMPT), &[]),
    Node::key(b"eval_count", Action::Scalar(USAGE_COMPLETION), &[]),
    Node::key(b"message", Action::Capture, &[]),
]);

static GENERATE_RESPONSE: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"done_reason", Action::Scalar(FINISH_REASON), &[]),
    Node::key(b"prompt_eval_count", Action::Scalar(USAGE_PROMPT), &[]),
    Node::key(b"eval_count", Action::Scalar(USAGE_COMPLETION), &[]),
    Node::key(b"response", Action::Capture, &[]),
]);

/// Ollama's `/api/chat` and `/api/generate`: one type, the family it is made with.
#[derive(Debug, Clone, Copy)]
pub struct OllamaApi {
    generate: bool,
}

impl OllamaApi {
    /// `/api/chat`: [`ApiFamily::OllamaChat`].
    pub const CHAT: OllamaApi = OllamaApi { generate: false };
    /// `/api/generate`: [`ApiFamily::OllamaGenerate`].
    pub const GENERATE: OllamaApi = OllamaApi { generate: true };
}

impl LlmApi for OllamaApi {
    fn family(&self) -> ApiFamily {
        match self.generate {
            false => ApiFamily::OllamaChat,
            true => ApiFamily::OllamaGenerate,
        }
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        super::recognize(head).filter(|r| r.family == self.family())
    }

    fn request_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        let (paths, captured) = match self.generate {
            false => (&CHAT_REQUEST, "messages"),
            true => (&GENERATE_REQUEST, "prompt"),
        };
        Box::new(ScannedBody::new(paths, cap, Some(captured), read_request))
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        let (paths, captured) = match self.generate {
            false => (&CHAT_RESPONSE, "message"),
            true => (&GENERATE_RESPONSE, "response"),
        };
        Box::new(ScannedBody::new(paths, cap, Some(captured), read_response))
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(OllamaStream::new(cap, self.generate))
    }

    fn stream_framing(&self, _: &Route, content_type: &str) -> Option<Framing> {
        if is_media_type(content_type, "application/x-ndjson") {
            Some(Framing::JsonLines)
        } else if is_media_type(content_type, "text/event-stream") {
            Some(Framing::ServerSentEvents)
        } else {
            None
        }
    }
}

fn read_request(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.model = scanned::string(scan, MODEL);
    // Ollama streams unless told not to.
    facts.stream = scan
        .scalar(STREAM)
        .and_then(crate::scan::json::scalar_bool)
        .unwrap_or(true);
}

fn count(scan: &ScanResult, slot: u8) -> Option<u64> {
    scan.scalar(slot)
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .and_then(|s| s.parse().ok())
}

fn usage(prompt: Option<u64>, completion: Option<u64>) -> TokenUsage {
    TokenUsage {
        prompt,
        completion,
        total: match (prompt, completion) {
            (None, None) => None,
            (p, c) => Some(p.unwrap_or(0).saturating_add(c.unwrap_or(0))),
        },
        ..TokenUsage::default()
    }
}

fn read_response(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.model = scanned::string(scan, MODEL);
    facts.finish_reasons.extend(scanned::string(scan, FINISH_REASON));
    facts.usage = usage(count(scan, USAGE_PROMPT), count(scan, USAGE_COMPLETION));
}

#[derive(Deserialize)]
struct ChunkWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<MessageWire<'a>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    response: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    thinking: Option<Cow<'a, str>>,
    #[serde(default)]
    done: bool,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    done_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MessageWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<&'a RawValue>>,
}

/// The assembled chat message, in the shape of a whole response's `message`.
#[derive(Serialize)]
struct MessageOut {
    role: &'static str,
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Box<RawValue>>,
}

/// Assembles a streamed chat message or generated text.
struct OllamaStream {
    generate: bool,
    message: MessageOut,
    s: StreamState,
}

impl OllamaStream {
    fn new(cap: usize, generate: bool) -> Self {
        OllamaStream {
            generate,
            message: MessageOut {
                role: "assistant",
                content: String::new(),
                thinking: None,
                tool_calls: Vec::new(),
            },
            s: StreamState::new(cap),
        }
    }

    fn apply(&mut self, chunk: ChunkWire<'_>) {
        if let Some(error) = chunk.error {
            self.s.ended = true;
            self.s.tally.carried_error(error.get());
            return;
        }
        if self.s.facts.model.is_none() {
            self.s.facts.model = chunk.model.filter(|m| !m.is_empty()).map(|m| clip(&m));
        }
        let (content, thinking, calls) = match chunk.message {
            Some(m) => (m.content, m.thinking, m.tool_calls.unwrap_or_default()),
            None => (chunk.response, chunk.thinking, Vec::new()),
        };
        if let Some(text) = content.filter(|t| !t.is_empty()) {
            self.s.token();
            self.s.budget.append(&mut self.message.content, &text);
        }
        if let Some(text) = thinking.filter(|t| !t.is_empty()) {
            if self.generate {
                // A whole generate response logs `response` alone: its thinking is counted, not kept.
                self.s.budget.drop(&text);
            } else {
                self.s
                    .budget
                    .append(self.message.thinking.get_or_insert_with(String::new), &text);
            }
        }
        for call in calls {
            self.s.token();
            if self.message.tool_calls.len() < MAX_PARTS && self.s.budget.whole(call.get()) {
                self.message.tool_calls.push(call.to_owned());
            } else if self.message.tool_calls.len() >= MAX_PARTS {
                self.s.budget.drop(call.get());
                self.s.tally.note(format!(
                    "more than {MAX_PARTS} tool calls; the rest are not logged"
                ));
            }
        }
        if chunk.done {
            self.s.ended = true;
            self.s.facts.finish_reasons = chunk.done_reason.map(|r| clip_word(&r)).into_iter().collect();
            self.s.facts.usage = usage(chunk.prompt_eval_count, chunk.eval_count);
        }
    }
}

impl StreamReader for OllamaStream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        if let Some(chunk) = self.s.tally.read::<ChunkWire<'_>>(event, "an Ollama chunk") {
            self.apply(chunk);
        }
    }

    fn finish(mut self: Box<Self>, _ended: bool) -> BodyFacts {
        match self.generate {
            true => self.s.finish(&self.message.content),
            false => self.s.finish(&self.message),
        }
    }
}
