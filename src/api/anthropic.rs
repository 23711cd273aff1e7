//! Anthropic's Messages API (`/v1/messages`).
//!
//! - Request: `model`, `stream`, and `system` and `messages` as the logged prompt,
//!   `{"system":...,"messages":...}`.
//! - Response: `id`, `model`, `stop_reason` (the finish reason), `usage` (`input_tokens`,
//!   `output_tokens`, `cache_read_input_tokens`, `cache_creation_input_tokens`; the total is
//!   input + output), and the raw `content` blocks as the logged completion.
//! - Stream: `message_start` (id, model, input usage), `content_block_start` and
//!   `content_block_delta` (text, `input_json`, thinking and signature deltas) assembled into the
//!   same `content` blocks as a JSON response (a tool call's `input` parsed back into JSON when
//!   it was kept whole), `message_delta` (stop reason, output usage), `message_stop` ending the
//!   stream, and `error` events reported.

use std::borrow::Cow;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::assemble::{clip, clip_word, cow_str, EventTally, Indexed, StreamState, TextBudget};
use super::scanned::{self, ScannedBody};
use super::{BodyFacts, BodyReader, LlmApi, RequestHead, Route, StreamReader, TokenUsage};
use crate::framing::StreamEvent;
use crate::scan::json::{Action, Node, ScanResult};
use crate::ApiFamily;

use super::scanned::{read_model_and_stream, END_USER, MODEL, STREAM};

const ID: u8 = 3;
const USAGE: u8 = 4;
const STOP_REASON: u8 = 5;

static REQUEST: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"stream", Action::Scalar(STREAM), &[]),
    Node::key(b"system", Action::Capture, &[]),
    Node::key(b"messages", Action::Capture, &[]),
    Node::key(
        b"metadata",
        Action::Walk,
        &[Node::key(b"user_id", Action::Scalar(END_USER), &[])],
    ),
]);

static RESPONSE: Node = Node::root(&[
    Node::key(b"id", Action::Scalar(ID), &[]),
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"usage", Action::Scalar(USAGE), &[]),
    Node::key(b"stop_reason", Action::Scalar(STOP_REASON), &[]),
    Node::key(b"content", Action::Capture, &[]),
]);

/// Anthropic's Messages API: [`ApiFamily::AnthropicMessages`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AnthropicMessagesApi;

impl LlmApi for AnthropicMessagesApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::AnthropicMessages
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        super::recognize(head).filter(|r| r.family == ApiFamily::AnthropicMessages)
    }

    fn request_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(
            &REQUEST,
            cap,
            Some("messages"),
            read_model_and_stream,
        ))
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(&RESPONSE, cap, Some("content"), read_response))
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(MessageStream::new(cap))
    }
}

/// Anthropic's usage object. Counts may come in parts (the stream's start and its delta).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl Usage {
    /// Counts in `later` replace those here (a stream's `message_delta` has the final ones).
    fn merge(&mut self, later: Usage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = later.cache_read_input_tokens.or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
    }
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> TokenUsage {
        TokenUsage {
            prompt: u.input_tokens,
            completion: u.output_tokens,
            total: match (u.input_tokens, u.output_tokens) {
                (Some(i), Some(o)) => Some(i.saturating_add(o)),
                _ => None,
            },
            cached: u.cache_read_input_tokens,
            reasoning: None,
            cache_creation: u.cache_creation_input_tokens,
        }
    }
}

fn read_response(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.request_id = scanned::string(scan, ID);
    facts.model = scanned::string(scan, MODEL);
    facts.finish_reasons.extend(scanned::string(scan, STOP_REASON));
    if let Some(u) = scanned::parsed::<Usage>(scan, USAGE, "usage", facts) {
        facts.usage = u.into();
    }
}

#[derive(Deserialize)]
struct EventWire<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    message: Option<MessageWire<'a>>,
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    content_block: Option<BlockWire<'a>>,
    #[serde(borrow, default)]
    delta: Option<DeltaWire<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct MessageWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct BlockWire<'a> {
    #[serde(borrow, rename = "type", default, deserialize_with = "cow_str")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    data: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct DeltaWire<'a> {
    #[serde(borrow, rename = "type", default, deserialize_with = "cow_str")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Serialize, Default)]
struct BlockOut {
    #[serde(skip)]
    index: u32,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    /// A tool call's input: the JSON it streamed, parsed back when kept whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<serde_json::Value>,
    #[serde(skip)]
    input_json: Option<String>,
}

/// Assembles a streamed message into its `content` blocks.
struct MessageStream {
    blocks: Indexed<BlockOut>,
    usage: Usage,
    s: StreamState,
}

impl MessageStream {
    fn new(cap: usize) -> Self {
        MessageStream {
            blocks: Indexed::default(),
            usage: Usage::default(),
            s: StreamState::new(cap),
        }
    }

    /// The block at `index` (of type `kind` when it is new), or `None` past the bound.
    fn block<'b>(
        blocks: &'b mut Indexed<BlockOut>,
        tally: &mut EventTally,
        index: u32,
        kind: &str,
    ) -> Option<&'b mut BlockOut> {
        let block = blocks.get(index, tally, "content blocks")?;
        if block.kind.is_empty() {
            block.index = index;
            block.kind = clip_word(kind);
        }
        Some(block)
    }

    fn append(block: &mut BlockOut, budget: &mut TextBudget, field: Field, text: &str) {
        let target = match field {
            Field::Text => &mut block.text,
            Field::Thinking => &mut block.thinking,
            Field::Signature => &mut block.signature,
            Field::Data => &mut block.data,
            Field::Input => &mut block.input_json,
        };
        budget.append(target.get_or_insert_with(String::new), text);
    }

    fn apply(&mut self, event: EventWire<'_>) {
        let index = event.index.unwrap_or(0);
        match event.kind.as_ref() {
            "message_start" => {
                let Some(message) = event.message else { return };
                self.s.facts.request_id = message.id.filter(|s| !s.is_empty()).map(|s| clip(&s));
                self.s.facts.model = message.model.filter(|s| !s.is_empty()).map(|s| clip(&s));
                if let Some(u) = message.usage {
                    self.usage.merge(u);
                }
            }
            "content_block_start" => {
                let Some(start) = event.content_block else { return };
                let kind = start.kind.as_deref().unwrap_or("text").to_string();
                let Some(block) = Self::block(&mut self.blocks, &mut self.s.tally, index, &kind) else {
                    for text in [&start.text, &start.thinking].into_iter().flatten() {
                        self.s.budget.drop(text);
                    }
                    return;
                };
                block.id = start.id.and_then(|s| self.s.budget.field(&s));
                block.name = start.name.and_then(|s| self.s.budget.field(&s));
                for (field, text) in [
                    (Field::Text, start.text),
                    (Field::Thinking, start.thinking),
                    (Field::Signature, start.signature),
                    (Field::Data, start.data),
                ] {
                    if let Some(text) = text {
                        Self::append(block, &mut self.s.budget, field, &text);
                    }
                }
                match start.input {
                    // The usual start of a tool call: its input streams next.
                    Some(serde_json::Value::Object(o)) if o.is_empty() => {}
                    Some(input) => Self::append(block, &mut self.s.budget, Field::Input, &input.to_string()),
                    None => {}
                }
            }
            "content_block_delta" => {
                let Some(delta) = event.delta else { return };
                let (field, text, kind) = match delta.kind.as_deref() {
                    Some("input_json_delta") => (Field::Input, delta.partial_json, "tool_use"),
                    Some("thinking_delta") => (Field::Thinking, delta.thinking, "thinking"),
                    Some("signature_delta") => (Field::Signature, delta.signature, "thinking"),
                    _ => (Field::Text, delta.text, "text"),
                };
                let Some(text) = text else { return };
                if !matches!(field, Field::Thinking | Field::Signature)
                    && self.s.facts.first_token_at.is_none()
                {
                    self.s.facts.first_token_at = Some(Instant::now());
                }
                match Self::block(&mut self.blocks, &mut self.s.tally, index, kind) {
                    Some(block) => Self::append(block, &mut self.s.budget, field, &text),
                    None => self.s.budget.drop(&text),
                }
            }
            "message_delta" => {
                if let Some(reason) = event.delta.and_then(|d| d.stop_reason) {
                    self.s.facts.finish_reasons = vec![clip(&reason)];
                }
                if let Some(u) = event.usage {
                    self.usage.merge(u);
                }
            }
            "message_stop" => self.s.ended = true,
            "error" => {
                self.s.ended = true;
                let text = event.error.map(|e| e.to_string()).unwrap_or_default();
                self.s.tally.carried_error(&text);
            }
            // `ping`, `content_block_stop`, and event types added later carry no completion.
            _ => {}
        }
    }
}

#[derive(Clone, Copy)]
enum Field {
    Text,
    Thinking,
    Signature,
    Data,
    Input,
}

impl StreamReader for MessageStream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        if let Some(e) = self.s.tally.read::<EventWire<'_>>(event, "a Messages API event") {
            self.apply(e);
        }
    }

    fn finish(mut self: Box<Self>, _ended: bool) -> BodyFacts {
        let mut blocks = std::mem::take(&mut self.blocks).into_sorted();
        for block in &mut blocks {
            if block.kind == "tool_use" || block.input_json.is_some() {
                let json = block.input_json.take().unwrap_or_default();
                block.input = Some(if json.is_empty() {
                    serde_json::Value::Object(serde_json::Map::new())
                } else {
                    // A tool call cut by the cap stays the text it was.
                    serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json))
                });
            }
        }
        self.s.facts.usage = self.usage.into();
        self.s.finish(&blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_types_from_the_stream_are_clipped() {
        let mut s = MessageStream::new(100);
        let event = format!(
            r#"{{"type":"content_block_start","index":0,"content_block":{{"type":"{}"}}}}"#,
            "t".repeat(100_000)
        );
        s.apply(serde_json::from_str(&event).unwrap());
        assert_eq!(
            s.blocks.into_sorted()[0].kind.len(),
            64,
            "a type is a short word, whatever the event says"
        );
    }
}
