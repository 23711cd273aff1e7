//! The OpenAI Responses API (`/v1/responses`; Azure `/openai/responses`, `/openai/v1/responses`).
//!
//! - Request: `model`, `stream`, and `instructions` and `input` (a string or a list of items)
//!   as the logged prompt, `{"instructions":...,"input":...}`.
//! - Response: `id`, `model`, `status` (the finish reason; for an incomplete response, the
//!   reason it gives), `usage` (`input_tokens`, `output_tokens`, `total_tokens`, cached and
//!   reasoning details), and the raw `output` items as the logged completion.
//! - Stream: typed events assembled into the same `output` items: messages from
//!   `response.output_text.delta` (and refusals), function calls from
//!   `response.function_call_arguments.delta`, reasoning summaries; usage and status from
//!   `response.completed`, `response.incomplete` or `response.failed`, which end the stream, as
//!   an `error` event does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::assemble::{
    clip, clip_word, cow_str, scalar_text, stream_facts, EventTally, PartBound, TextBudget,
};
use super::openai::{cached_tokens, reasoning_tokens};
use super::scanned::{self, ScannedBody};
use super::{BodyFacts, BodyReader, LlmApi, RequestHead, Route, StreamReader, TokenUsage};
use crate::framing::StreamEvent;
use crate::scan::json::{Action, Node, ScanResult};
use crate::ApiFamily;

use super::scanned::{read_model_and_stream, END_USER, MODEL, STREAM};

const ID: u8 = 3;
const USAGE: u8 = 4;
const STATUS: u8 = 5;
const INCOMPLETE: u8 = 6;
const ERROR: u8 = 7;

static REQUEST: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"stream", Action::Scalar(STREAM), &[]),
    Node::key(b"instructions", Action::Capture, &[]),
    Node::key(b"input", Action::Capture, &[]),
    Node::key(b"user", Action::Scalar(END_USER), &[]),
    Node::key(b"safety_identifier", Action::Scalar(END_USER), &[]),
]);

static RESPONSE: Node = Node::root(&[
    Node::key(b"id", Action::Scalar(ID), &[]),
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"usage", Action::Scalar(USAGE), &[]),
    Node::key(b"status", Action::Scalar(STATUS), &[]),
    Node::key(b"incomplete_details", Action::Scalar(INCOMPLETE), &[]),
    Node::key(b"error", Action::Scalar(ERROR), &[]),
    Node::key(b"output", Action::Capture, &[]),
]);

/// The OpenAI Responses API: [`ApiFamily::Responses`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponsesApi;

impl LlmApi for ResponsesApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::Responses
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        super::recognize(head).filter(|r| r.family == ApiFamily::Responses)
    }

    fn request_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(
            &REQUEST,
            cap,
            Some("input"),
            read_model_and_stream,
        ))
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(&RESPONSE, cap, Some("output"), read_response))
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(ResponseStream::new(cap))
    }
}

/// The Responses API's usage object.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default, deserialize_with = "cached_tokens", rename = "input_tokens_details")]
    cached_tokens: Option<u64>,
    #[serde(
        default,
        deserialize_with = "reasoning_tokens",
        rename = "output_tokens_details"
    )]
    reasoning_tokens: Option<u64>,
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> TokenUsage {
        TokenUsage {
            prompt: u.input_tokens,
            completion: u.output_tokens,
            total: u.total_tokens,
            cached: u.cached_tokens,
            reasoning: u.reasoning_tokens,
            cache_creation: None,
        }
    }
}

/// The response's usage in the end of a final event's data: the last `"usage":{...}` object
/// there that has token counts. (Inside JSON strings a quote is escaped, so the pattern only
/// matches keys; a `usage` key in a tool's schema has no token counts and is passed over.)
fn usage_in_tail(tail: &[u8]) -> Option<Usage> {
    const KEY: &[u8] = b"\"usage\":";
    let mut end = tail.len();
    while let Some(at) = memchr::memmem::rfind(&tail[..end], KEY) {
        let mut rest = &tail[at + KEY.len()..];
        while let [b' ' | b'\n' | b'\r' | b'\t', more @ ..] = rest {
            rest = more;
        }
        let parsed = serde_json::Deserializer::from_slice(rest)
            .into_iter::<Usage>()
            .next()
            .and_then(Result::ok);
        if let Some(usage) = parsed.filter(|u| u.input_tokens.is_some() || u.output_tokens.is_some()) {
            return Some(usage);
        }
        end = at;
    }
    None
}

#[derive(Deserialize)]
struct IncompleteDetails<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    reason: Option<Cow<'a, str>>,
}

/// An error, as a response object or an `error` event carries it: `code` (a string or a
/// number), `type`, `message`.
#[derive(Deserialize)]
struct ErrorWire<'a> {
    #[serde(default, deserialize_with = "scalar_text")]
    code: Option<String>,
    #[serde(borrow, default, rename = "type", deserialize_with = "cow_str")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    message: Option<Cow<'a, str>>,
}

impl ErrorWire<'_> {
    fn describe(&self) -> String {
        let code = self
            .code
            .as_deref()
            .or(self.kind.as_deref().filter(|k| *k != "error"))
            .unwrap_or("error");
        clip(&format!("{code}: {}", self.message.as_deref().unwrap_or("")))
    }
}

/// The finish reason of a response: the status, or for an incomplete one, the reason it gives.
fn finish_reason(status: Option<&str>, incomplete: Option<&IncompleteDetails<'_>>) -> Option<String> {
    let reason = incomplete.and_then(|d| d.reason.as_deref());
    match (status, reason) {
        (Some("incomplete"), Some(reason)) => Some(clip(reason)),
        (Some(status), _) if !status.is_empty() => Some(clip(status)),
        _ => None,
    }
}

fn read_response(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.request_id = scanned::string(scan, ID);
    facts.model = scanned::string(scan, MODEL);
    if let Some(u) = scanned::parsed::<Usage>(scan, USAGE, "usage", facts) {
        facts.usage = u.into();
    }
    let status = scanned::string(scan, STATUS);
    let incomplete = scan
        .scalar(INCOMPLETE)
        .and_then(|raw| serde_json::from_slice::<Option<IncompleteDetails<'_>>>(raw).ok())
        .flatten();
    facts
        .finish_reasons
        .extend(finish_reason(status.as_deref(), incomplete.as_ref()));
    let error = scan
        .scalar(ERROR)
        .and_then(|raw| serde_json::from_slice::<Option<ErrorWire<'_>>>(raw).ok())
        .flatten();
    if let Some(error) = error {
        facts
            .errors
            .push(format!("the response failed: {}", error.describe()).into());
    }
}

#[derive(Deserialize)]
struct EventWire<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    response: Option<ResponseWire<'a>>,
    #[serde(borrow, default)]
    item: Option<ItemWire<'a>>,
    #[serde(default)]
    output_index: Option<u32>,
    #[serde(default)]
    content_index: Option<u32>,
    #[serde(default)]
    summary_index: Option<u32>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    delta: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    part: Option<PartWire<'a>>,
    #[serde(default, deserialize_with = "scalar_text")]
    code: Option<String>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    message: Option<Cow<'a, str>>,
    /// The details of an `error` event, where they are nested (`{"type":"error","error":{...}}`).
    #[serde(borrow, default)]
    error: Option<ErrorWire<'a>>,
}

#[derive(Deserialize)]
struct ResponseWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    incomplete_details: Option<IncompleteDetails<'a>>,
    #[serde(borrow, default)]
    error: Option<ErrorWire<'a>>,
    #[serde(default)]
    #[allow(dead_code)]
    output: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ItemWire<'a> {
    #[serde(borrow, rename = "type", default, deserialize_with = "cow_str")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PartWire<'a> {
    #[serde(borrow, rename = "type", default, deserialize_with = "cow_str")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Serialize, Default)]
struct ItemOut {
    #[serde(skip)]
    index: u32,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Vec<PartOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<Vec<PartOut>>,
}

#[derive(Serialize)]
struct PartOut {
    #[serde(skip)]
    index: u32,
    #[serde(rename = "type")]
    kind: String,
    /// Output text and summaries carry `text`; refusals carry `refusal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<String>,
}

/// Assembles a streamed response into its `output` items.
struct ResponseStream {
    items: Vec<ItemOut>,
    item_at: HashMap<u32, usize>,
    parts: PartBound,
    facts: BodyFacts,
    budget: TextBudget,
    cap: usize,
    ended: bool,
    tally: EventTally,
}

/// Which list of parts a delta goes to.
#[derive(Clone, Copy)]
enum Parts {
    Content,
    Summary,
}

impl ResponseStream {
    fn new(cap: usize) -> Self {
        ResponseStream {
            items: Vec::new(),
            item_at: HashMap::new(),
            parts: PartBound::default(),
            facts: BodyFacts::default(),
            budget: TextBudget::new(cap),
            cap,
            ended: false,
            tally: EventTally::default(),
        }
    }

    fn item(&mut self, index: u32, kind: &str) -> Option<usize> {
        if let Some(&at) = self.item_at.get(&index) {
            return Some(at);
        }
        if !self.parts.admit(&mut self.tally, "output items and parts") {
            return None;
        }
        self.items.push(ItemOut {
            index,
            kind: clip_word(kind),
            ..ItemOut::default()
        });
        self.item_at.insert(index, self.items.len() - 1);
        Some(self.items.len() - 1)
    }

    fn part(&mut self, at: usize, which: Parts, index: u32, kind: &str) -> Option<usize> {
        let list = match which {
            Parts::Content => self.items[at].content.get_or_insert_with(Vec::new),
            Parts::Summary => self.items[at].summary.get_or_insert_with(Vec::new),
        };
        if let Some(p) = list.iter().position(|p| p.index == index) {
            return Some(p);
        }
        if !self.parts.admit(&mut self.tally, "output items and parts") {
            return None;
        }
        let list = match which {
            Parts::Content => self.items[at].content.get_or_insert_with(Vec::new),
            Parts::Summary => self.items[at].summary.get_or_insert_with(Vec::new),
        };
        list.push(PartOut {
            index,
            kind: clip_word(kind),
            text: None,
            refusal: None,
        });
        Some(list.len() - 1)
    }

    /// Takes what a response object in an event says; the finish reason only from the final
    /// event (`terminal`), as earlier ones say `in_progress`.
    fn took_response(&mut self, response: ResponseWire<'_>, terminal: bool) {
        if let Some(id) = response.id.filter(|s| !s.is_empty()) {
            self.facts.request_id = Some(clip(&id));
        }
        if let Some(model) = response.model.filter(|s| !s.is_empty()) {
            self.facts.model = Some(clip(&model));
        }
        if let Some(usage) = response.usage {
            self.facts.usage = usage.into();
        }
        if let Some(error) = response.error {
            self.tally
                .note(format!("the response failed: {}", error.describe()));
        }
        if !terminal {
            return;
        }
        if let Some(reason) = finish_reason(response.status.as_deref(), response.incomplete_details.as_ref())
        {
            self.facts.finish_reasons = vec![reason];
        }
    }

    /// Appends a text delta to part `index` of `which` of item `output`.
    fn text_delta(&mut self, output: u32, which: Parts, index: u32, kind: &str, delta: &str) {
        let item_kind = match which {
            Parts::Content => "message",
            Parts::Summary => "reasoning",
        };
        let Some(at) = self.item(output, item_kind) else {
            self.budget.drop(delta);
            return;
        };
        let Some(p) = self.part(at, which, index, kind) else {
            self.budget.drop(delta);
            return;
        };
        let list = match which {
            Parts::Content => self.items[at].content.as_mut(),
            Parts::Summary => self.items[at].summary.as_mut(),
        };
        if let Some(part) = list.and_then(|l| l.get_mut(p)) {
            let target = if kind == "refusal" {
                part.refusal.get_or_insert_with(String::new)
            } else {
                part.text.get_or_insert_with(String::new)
            };
            self.budget.append(target, delta);
        }
    }

    /// An event too large to parse, known by its `event:` name: `.done` events repeat what the
    /// deltas said and are let go; a final event (which carries the whole response) still ends
    /// the stream with its status, and its usage is read from the end of its data, where the
    /// response object keeps it. Whether it was handled.
    fn oversized(&mut self, event: &StreamEvent<'_>) -> bool {
        let head = HeadFacts::read(event.head);
        let name = match event.name {
            b"" => head.kind.clone().unwrap_or_default(),
            named => String::from_utf8_lossy(named).into_owned(),
        };
        if name.ends_with(".done") {
            self.tally.events += 1;
            return true;
        }
        let Some(status) = name.strip_prefix("response.").filter(|s| {
            matches!(
                *s,
                "created" | "in_progress" | "queued" | "completed" | "incomplete" | "failed"
            )
        }) else {
            return false;
        };
        self.tally.events += 1;
        // The response's id comes first in its object, and its model after the instructions
        // but before the output and tools: the start of the event has the id, and the model
        // unless the instructions fill the head (the request's model stands in then).
        if let Some(id) = head.id {
            self.facts.request_id = Some(id);
        }
        if let Some(model) = head.model {
            self.facts.model = Some(model);
        }
        if !matches!(status, "completed" | "incomplete" | "failed") {
            return true;
        }
        self.ended = true;
        self.facts.finish_reasons = vec![status.to_string()];
        match usage_in_tail(event.tail) {
            Some(usage) => self.facts.usage = usage.into(),
            None => self.tally.note(format!(
                "the final event ({name}) is larger than the parse limit, and its usage was not found in its last {} bytes",
                crate::framing::TAIL_BYTES
            )),
        }
        true
    }

    fn first_token(&mut self) {
        if self.facts.first_token_at.is_none() {
            self.facts.first_token_at = Some(Instant::now());
        }
    }

    fn apply(&mut self, event: EventWire<'_>) {
        let output = event.output_index.unwrap_or(0);
        let delta = event.delta.as_deref().unwrap_or("");
        match event.kind.as_ref() {
            "response.created" | "response.in_progress" | "response.queued" => {
                if let Some(r) = event.response {
                    self.took_response(r, false);
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.ended = true;
                if let Some(r) = event.response {
                    self.took_response(r, true);
                }
            }
            "error" => {
                self.ended = true;
                let error = event.error.unwrap_or(ErrorWire {
                    code: event.code,
                    kind: None,
                    message: event.message,
                });
                self.tally
                    .note(format!("the stream carried an error: {}", error.describe()));
            }
            "response.output_item.added" => {
                let Some(item) = event.item else { return };
                let kind = item.kind.as_deref().unwrap_or("message");
                let Some(at) = self.item(output, kind) else { return };
                let out = &mut self.items[at];
                out.kind = clip_word(kind);
                out.role = item.role.map(|s| clip_word(&s));
                out.id = item.id.and_then(|s| self.budget.field(&s));
                out.call_id = item.call_id.and_then(|s| self.budget.field(&s));
                out.name = item.name.and_then(|s| self.budget.field(&s));
                if kind == "function_call" || item.arguments.is_some() {
                    let mut args = String::new();
                    self.budget
                        .append(&mut args, item.arguments.as_deref().unwrap_or(""));
                    self.items[at].arguments = Some(args);
                }
            }
            "response.content_part.added" => {
                let kind = event
                    .part
                    .and_then(|p| p.kind)
                    .unwrap_or(Cow::Borrowed("output_text"));
                if let Some(at) = self.item(output, "message") {
                    self.part(at, Parts::Content, event.content_index.unwrap_or(0), &kind);
                }
            }
            "response.output_text.delta" => {
                self.first_token();
                let index = event.content_index.unwrap_or(0);
                self.text_delta(output, Parts::Content, index, "output_text", delta);
            }
            "response.refusal.delta" => {
                self.first_token();
                let index = event.content_index.unwrap_or(0);
                self.text_delta(output, Parts::Content, index, "refusal", delta);
            }
            "response.reasoning_summary_text.delta" => {
                let index = event.summary_index.unwrap_or(0);
                self.text_delta(output, Parts::Summary, index, "summary_text", delta);
            }
            "response.function_call_arguments.delta" => {
                self.first_token();
                let Some(at) = self.item(output, "function_call") else {
                    self.budget.drop(delta);
                    return;
                };
                let args = self.items[at].arguments.get_or_insert_with(String::new);
                self.budget.append(args, delta);
            }
            // `.done` events repeat what the deltas said; other events carry no completion.
            _ => {}
        }
    }
}

/// What the start of an event too large to parse says: its type, and its response's id and
/// model, when they come within the start the parser kept.
#[derive(Debug, Default)]
struct HeadFacts {
    kind: Option<String>,
    id: Option<String>,
    model: Option<String>,
}

const HEAD_TYPE: u8 = 0;
const HEAD_ID: u8 = 1;
const HEAD_MODEL: u8 = 2;

static EVENT_HEAD: Node = Node::root(&[
    Node::key(b"type", Action::Scalar(HEAD_TYPE), &[]),
    Node::key(
        b"response",
        Action::Walk,
        &[
            Node::key(b"id", Action::Scalar(HEAD_ID), &[]),
            Node::key(b"model", Action::Scalar(HEAD_MODEL), &[]),
        ],
    ),
]);

impl HeadFacts {
    fn read(head: &[u8]) -> Self {
        if head.is_empty() {
            return HeadFacts::default();
        }
        let mut scanner = crate::scan::json::JsonScanner::new(&EVENT_HEAD, 0);
        scanner.feed(&bytes::Bytes::copy_from_slice(head));
        let scan = scanner.finish();
        let text = |slot| {
            scan.scalar(slot)
                .and_then(crate::scan::json::scalar_string)
                .filter(|s| !s.is_empty())
                .map(|s| clip(&s))
        };
        HeadFacts {
            kind: text(HEAD_TYPE),
            id: text(HEAD_ID),
            model: text(HEAD_MODEL),
        }
    }
}

impl StreamReader for ResponseStream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        if event.oversized && self.oversized(event) {
            return;
        }
        if let Some(e) = self.tally.read::<EventWire<'_>>(event, "a Responses API event") {
            self.apply(e);
        }
    }

    fn finish(mut self: Box<Self>, _ended: bool) -> BodyFacts {
        self.items.sort_by_key(|i| i.index);
        for item in &mut self.items {
            for list in [item.content.as_mut(), item.summary.as_mut()]
                .into_iter()
                .flatten()
            {
                list.sort_by_key(|p| p.index);
            }
        }
        let facts = std::mem::take(&mut self.facts);
        stream_facts(
            facts,
            &self.budget,
            &self.items,
            self.cap,
            &mut self.tally,
            self.ended,
        )
    }
}
