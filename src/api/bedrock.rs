//! AWS Bedrock's Converse API: `POST /model/{modelId}/converse` and `/converse-stream`, provider
//! `aws.bedrock`, operation `chat`.
//!
//! - Request: the model from the path (percent-decoded: ids may be ARNs); the prompt is
//!   `{"system":...,"messages":...}`; the path says whether a stream was asked for.
//! - Response: `output.message.content` as the logged completion; `stopReason` as the finish
//!   reason; `usage`: `inputTokens` (prompt), `outputTokens` (completion), `totalTokens`,
//!   `cacheReadInputTokens` (`CachedTokens`), `cacheWriteInputTokens` (`CacheCreationTokens`);
//!   the request id from the `x-amzn-requestid` response header.
//! - Stream: an AWS event stream (`application/vnd.amazon.eventstream`), its checksums checked
//!   by the framer. `messageStart`, `contentBlockStart`/`Delta`/`Stop` (text, tool-use input,
//!   reasoning text and signature) are assembled into the same `content` blocks as a JSON
//!   response (a tool call's `input` parsed back into JSON when kept whole); `messageStop`
//!   gives the stop reason and ends the stream; `metadata` gives the usage. Exceptions
//!   (`throttlingException`, `modelStreamErrorException`, ...) end the stream and are reported.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::assemble::{clip, cow_str, Indexed, StreamState};
use super::scanned::{self, ScannedBody};
use super::{
    is_media_type, BodyFacts, BodyReader, Framing, LlmApi, RequestHead, Route, StreamEvent, StreamReader,
    TokenUsage,
};
use crate::scan::json::{Action, Node, ScanResult};
use crate::ApiFamily;

const USAGE: u8 = 4;
const STOP_REASON: u8 = 5;

static REQUEST: Node = Node::root(&[
    Node::key(b"system", Action::Capture, &[]),
    Node::key(b"messages", Action::Capture, &[]),
]);

static RESPONSE: Node = Node::root(&[
    Node::key(
        b"output",
        Action::Walk,
        &[Node::key(
            b"message",
            Action::Walk,
            &[Node::key(b"content", Action::Capture, &[])],
        )],
    ),
    Node::key(b"stopReason", Action::Scalar(STOP_REASON), &[]),
    Node::key(b"usage", Action::Scalar(USAGE), &[]),
]);

/// AWS Bedrock's Converse API: [`ApiFamily::BedrockConverse`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BedrockConverseApi;

impl LlmApi for BedrockConverseApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::BedrockConverse
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        super::recognize(head).filter(|r| r.family == ApiFamily::BedrockConverse)
    }

    fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        scanned::request_by_route(&REQUEST, cap, "messages", route)
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(
            &RESPONSE,
            cap,
            Some("output.message.content"),
            read_response,
        ))
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(ConverseStream::new(cap))
    }

    fn stream_framing(&self, _: &Route, content_type: &str) -> Option<Framing> {
        is_media_type(content_type, "application/vnd.amazon.eventstream").then_some(Framing::AwsEventStream)
    }

    fn request_id_header(&self) -> Option<&'static str> {
        Some("x-amzn-requestid")
    }
}

/// Bedrock's usage object.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> TokenUsage {
        TokenUsage {
            prompt: u.input_tokens,
            completion: u.output_tokens,
            total: u.total_tokens,
            cached: u.cache_read_input_tokens,
            reasoning: None,
            cache_creation: u.cache_write_input_tokens,
        }
    }
}

fn read_response(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.finish_reasons.extend(scanned::string(scan, STOP_REASON));
    if let Some(u) = scanned::parsed::<Usage>(scan, USAGE, "usage", facts) {
        facts.usage = u.into();
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventWire<'a> {
    #[serde(default)]
    content_block_index: Option<u32>,
    #[serde(borrow, default)]
    start: Option<StartWire<'a>>,
    #[serde(borrow, default)]
    delta: Option<DeltaWire<'a>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartWire<'a> {
    #[serde(borrow, default)]
    tool_use: Option<ToolStartWire<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStartWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_use: Option<ToolDeltaWire<'a>>,
    #[serde(borrow, default)]
    reasoning_content: Option<ReasoningWire<'a>>,
}

#[derive(Deserialize)]
struct ToolDeltaWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    input: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    redacted_content: Option<Cow<'a, str>>,
}

/// One assembled content block, in the shape of a Converse response's `content`.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct BlockOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_use: Option<ToolUseOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<ReasoningOut>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct ToolUseOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_use_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The input it streamed, parsed back into JSON when kept whole.
    input: Option<Box<RawValue>>,
    #[serde(skip)]
    input_json: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct ReasoningOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_text: Option<ReasoningTextOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted_content: Option<String>,
}

#[derive(Serialize, Default)]
struct ReasoningTextOut {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

/// Assembles a `converse-stream` into its content blocks.
struct ConverseStream {
    blocks: Indexed<BlockOut>,
    usage: Option<Usage>,
    s: StreamState,
}

impl ConverseStream {
    fn new(cap: usize) -> Self {
        ConverseStream {
            blocks: Indexed::default(),
            usage: None,
            s: StreamState::new(cap),
        }
    }

    fn apply(&mut self, name: &[u8], event: EventWire<'_>) {
        let index = event.content_block_index.unwrap_or(0);
        match name {
            b"contentBlockStart" => {
                let Some(tool) = event.start.and_then(|s| s.tool_use) else {
                    return;
                };
                let Some(block) = self.blocks.get(index, &mut self.s.tally, "content blocks") else {
                    return;
                };
                let out = block.tool_use.get_or_insert_with(ToolUseOut::default);
                out.tool_use_id = tool.tool_use_id.and_then(|s| self.s.budget.field(&s));
                out.name = tool.name.and_then(|s| self.s.budget.field(&s));
            }
            b"contentBlockDelta" => {
                let Some(delta) = event.delta else { return };
                let Some(block) = self.blocks.get(index, &mut self.s.tally, "content blocks") else {
                    let reasoning = delta.reasoning_content.as_ref();
                    let texts = [
                        delta.text.as_deref(),
                        delta.tool_use.as_ref().and_then(|t| t.input.as_deref()),
                        reasoning.and_then(|r| r.text.as_deref()),
                        reasoning.and_then(|r| r.signature.as_deref()),
                        reasoning.and_then(|r| r.redacted_content.as_deref()),
                    ];
                    for text in texts.into_iter().flatten() {
                        self.s.budget.drop(text);
                    }
                    return;
                };
                if let Some(text) = delta.text {
                    self.s.token();
                    self.s
                        .budget
                        .append(block.text.get_or_insert_with(String::new), &text);
                }
                if let Some(input) = delta.tool_use.and_then(|t| t.input) {
                    self.s.token();
                    let out = block.tool_use.get_or_insert_with(ToolUseOut::default);
                    self.s.budget.append(&mut out.input_json, &input);
                }
                if let Some(reasoning) = delta.reasoning_content {
                    let out = block.reasoning_content.get_or_insert_with(ReasoningOut::default);
                    if let Some(text) = reasoning.text {
                        let r = out.reasoning_text.get_or_insert_with(ReasoningTextOut::default);
                        self.s.budget.append(&mut r.text, &text);
                    }
                    if let Some(signature) = reasoning.signature {
                        let r = out.reasoning_text.get_or_insert_with(ReasoningTextOut::default);
                        self.s
                            .budget
                            .append(r.signature.get_or_insert_with(String::new), &signature);
                    }
                    if let Some(redacted) = reasoning.redacted_content {
                        self.s
                            .budget
                            .append(out.redacted_content.get_or_insert_with(String::new), &redacted);
                    }
                }
            }
            b"messageStop" => {
                self.s.ended = true;
                self.s.facts.finish_reasons = event.stop_reason.map(|r| clip(&r)).into_iter().collect();
            }
            b"metadata" => self.usage = event.usage.or(self.usage),
            // `messageStart` (the role) and `contentBlockStop` carry nothing to keep.
            b"messageStart" | b"contentBlockStop" => {}
            // An exception (`throttlingException`, ...) or an error message.
            other if other.ends_with(b"Exception") || other == b"error" || other == b"exception" => {
                self.s.ended = true;
                let message = event.message.unwrap_or_default();
                self.s.tally.note(format!(
                    "the stream carried an error: {}: {}",
                    String::from_utf8_lossy(other),
                    clip(&message)
                ));
            }
            // Event types added later carry no completion.
            _ => {}
        }
    }
}

impl StreamReader for ConverseStream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        if let Some(e) = self
            .s
            .tally
            .read::<EventWire<'_>>(event, "a ConverseStream event")
        {
            self.apply(event.name, e);
        }
    }

    fn finish(mut self: Box<Self>, _ended: bool) -> BodyFacts {
        let mut blocks = std::mem::take(&mut self.blocks).into_sorted();
        for block in &mut blocks {
            if let Some(tool) = &mut block.tool_use {
                let json = std::mem::take(&mut tool.input_json);
                // A tool call cut by the cap stays the text it was.
                let json = if json.trim().is_empty() { "{}".into() } else { json };
                tool.input = Some(
                    serde_json::from_str::<Box<RawValue>>(&json)
                        .or_else(|_| serde_json::value::to_raw_value(&json))
                        .unwrap_or_default(),
                );
            }
        }
        if let Some(u) = self.usage {
            self.s.facts.usage = u.into();
        }
        self.s.finish(&blocks)
    }
}
