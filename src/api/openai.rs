//! OpenAI-compatible chat completions: what to read from requests, responses and streams.
//!
//! - Request: `model`, `stream`, `stream_options.include_usage`, and the raw `messages` value as
//!   the logged prompt.
//! - Response: `id`, `model`, `usage`, each choice's `finish_reason`, and the raw `choices` value
//!   as the logged completion.
//! - Stream: `chat.completion.chunk` events assembled per choice (role, content, refusal,
//!   reasoning, tool calls with their arguments concatenated, finish reason) into the same shape
//!   as a non-streaming `choices` array; usage from the chunk that carries it; `[DONE]` ends it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::capture::Captured;
use crate::scan::json::{scalar_bool, scalar_string, Action, Node, ScanResult, Step};

const MODEL: u8 = 0;
const STREAM: u8 = 1;
const STREAM_OPTIONS: u8 = 2;
const ID: u8 = 3;
const USAGE: u8 = 4;
const FINISH_REASON: u8 = 5;

const fn scalar(key: &'static [u8], slot: u8) -> Node {
    Node {
        step: Step::Key(key),
        action: Action::Scalar(slot),
        children: &[],
    }
}

/// The paths read from a chat request body.
pub(crate) static REQUEST: Node = Node {
    step: Step::Element,
    action: Action::Walk,
    children: &[
        scalar(b"model", MODEL),
        scalar(b"stream", STREAM),
        scalar(b"stream_options", STREAM_OPTIONS),
        Node {
            step: Step::Key(b"messages"),
            action: Action::Capture,
            children: &[],
        },
    ],
};

/// The paths read from a non-streaming chat response body.
pub(crate) static RESPONSE: Node = Node {
    step: Step::Element,
    action: Action::Walk,
    children: &[
        scalar(b"id", ID),
        scalar(b"model", MODEL),
        scalar(b"usage", USAGE),
        Node {
            step: Step::Key(b"choices"),
            action: Action::Capture,
            children: &[Node {
                step: Step::Element,
                action: Action::Walk,
                children: &[Node {
                    step: Step::Key(b"finish_reason"),
                    action: Action::EachScalar(FINISH_REASON),
                    children: &[],
                }],
            }],
        },
    ],
};

/// What a request says about the exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestFacts {
    pub(crate) model: Option<String>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
}

/// Token counts; `None` where the provider said nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    pub(crate) prompt_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) completion_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) total_tokens: Option<u64>,
    #[serde(default, deserialize_with = "cached_tokens")]
    #[serde(rename = "prompt_tokens_details")]
    pub(crate) cached_tokens: Option<u64>,
    #[serde(default, deserialize_with = "reasoning_tokens")]
    #[serde(rename = "completion_tokens_details")]
    pub(crate) reasoning_tokens: Option<u64>,
}

fn detail<'de, D: serde::Deserializer<'de>>(d: D, name: &str) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?;
    Ok(v.and_then(|m| m.get(name).and_then(serde_json::Value::as_u64)))
}

fn cached_tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    detail(d, "cached_tokens")
}

fn reasoning_tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    detail(d, "reasoning_tokens")
}

/// What a response says about the exchange.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResponseFacts {
    pub(crate) request_id: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) usage: Usage,
    pub(crate) finish_reasons: Vec<String>,
    pub(crate) first_token_at: Option<Instant>,
    pub(crate) error: Option<String>,
    /// For a stream: whether it said it was done (`[DONE]` or a finish reason).
    pub(crate) stream_ended: bool,
}

/// Reads a scanned request.
pub(crate) fn request_facts(scan: &ScanResult) -> RequestFacts {
    #[derive(Deserialize)]
    struct StreamOptions {
        #[serde(default)]
        include_usage: Option<bool>,
    }
    RequestFacts {
        model: scan.scalar(MODEL).and_then(scalar_string),
        stream: scan.scalar(STREAM).and_then(scalar_bool).unwrap_or(false),
        include_usage: scan
            .scalar(STREAM_OPTIONS)
            .and_then(|raw| serde_json::from_slice::<StreamOptions>(raw).ok())
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    }
}

/// Reads a scanned non-streaming response.
pub(crate) fn response_facts(scan: &ScanResult) -> ResponseFacts {
    let mut facts = ResponseFacts {
        request_id: scan.scalar(ID).and_then(scalar_string),
        model: scan.scalar(MODEL).and_then(scalar_string),
        finish_reasons: scan.scalars_in(FINISH_REASON).filter_map(scalar_string).collect(),
        ..ResponseFacts::default()
    };
    if let Some(raw) = scan.scalar(USAGE) {
        match serde_json::from_slice::<Option<Usage>>(raw) {
            Ok(u) => facts.usage = u.unwrap_or_default(),
            Err(e) => facts.error = Some(format!("unreadable usage: {e}")),
        }
    }
    facts
}

#[derive(Deserialize)]
struct ChunkWire<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChoiceDeltaWire<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChoiceDeltaWire<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    delta: Option<DeltaWire<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaWire<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCallDeltaWire<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDeltaWire<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionDeltaWire<'a>>,
}

#[derive(Deserialize)]
struct FunctionDeltaWire<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

/// The most choices and tool calls (together) assembled per stream; more are reported, not kept.
const MAX_PARTS: usize = 1024;
/// Ids, types, roles and finish reasons are short; longer ones are clipped to this many bytes.
const SMALL_FIELD: usize = 256;

/// A short field, clipped to [`SMALL_FIELD`] bytes at a character boundary.
fn clip(s: &str) -> String {
    let mut end = s.len().min(SMALL_FIELD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[derive(Serialize, Default)]
struct ChoiceOut {
    index: u32,
    message: MessageOut,
    finish_reason: Option<String>,
}

#[derive(Serialize, Default)]
struct MessageOut {
    role: Option<String>,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut>,
}

#[derive(Serialize, Default)]
struct ToolCallOut {
    #[serde(skip)]
    index: u32,
    id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    function: FunctionOut,
}

#[derive(Serialize, Default)]
struct FunctionOut {
    name: String,
    arguments: String,
}

/// Assembles a streamed chat completion from its events, keeping at most `cap` bytes of text.
#[derive(Default)]
pub(crate) struct ChatStreamAssembler {
    choices: Vec<ChoiceOut>,
    choice_at: HashMap<u32, usize>,
    tool_at: HashMap<(u32, u32), usize>,
    parts: usize,
    dropped_parts: u64,
    facts: ResponseFacts,
    budget: usize,
    dropped_escaped: u64,
    saw_done: bool,
    events: u64,
    bad_events: u64,
    first_error: Option<String>,
}

impl ChatStreamAssembler {
    pub(crate) fn new(cap: usize) -> Self {
        ChatStreamAssembler {
            budget: cap,
            ..Self::default()
        }
    }

    /// Takes one event's data.
    pub(crate) fn on_event(&mut self, data: &[u8], oversized: bool) {
        self.events += 1;
        if oversized {
            self.note_error(format!(
                "event {} is larger than the parse limit and was skipped",
                self.events
            ));
            return;
        }
        if self.saw_done {
            return;
        }
        if data == b"[DONE]" {
            self.saw_done = true;
            return;
        }
        match serde_json::from_slice::<ChunkWire<'_>>(data) {
            Ok(chunk) => self.apply(chunk),
            Err(e) => self.note_error(format!(
                "event {} is not a chat completion chunk: {e}",
                self.events
            )),
        }
    }

    fn note_error(&mut self, message: String) {
        self.bad_events += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }

    fn apply(&mut self, chunk: ChunkWire<'_>) {
        if self.facts.request_id.is_none() {
            self.facts.request_id = chunk.id.filter(|s| !s.is_empty()).map(|s| clip(&s));
        }
        if self.facts.model.is_none() {
            self.facts.model = chunk.model.filter(|s| !s.is_empty()).map(|s| clip(&s));
        }
        if let Some(usage) = chunk.usage {
            self.facts.usage = usage;
        }
        if let Some(error) = chunk.error {
            let text = error.to_string();
            self.note_error(format!("the stream carried an error: {}", clip(&text)));
        }
        for c in chunk.choices.into_iter().flatten() {
            let Some(at) = self.choice_slot(c.index) else {
                self.drop_delta(c.delta.as_ref());
                continue;
            };
            if let Some(reason) = c.finish_reason {
                self.choices[at].finish_reason = Some(clip(&reason));
            }
            let Some(delta) = c.delta else { continue };
            let mut token = false;
            if let Some(role) = delta.role {
                self.choices[at].message.role = Some(clip(&role));
            }
            for (text, field) in [
                (delta.content, 0),
                (delta.refusal, 1),
                (delta.reasoning_content, 2),
            ] {
                let Some(text) = text else { continue };
                token |= !text.is_empty() && field != 2;
                let msg = &mut self.choices[at].message;
                let target = match field {
                    0 => &mut msg.content,
                    1 => &mut msg.refusal,
                    _ => &mut msg.reasoning_content,
                };
                append_capped(
                    target.get_or_insert_with(String::new),
                    &text,
                    &mut self.budget,
                    &mut self.dropped_escaped,
                );
            }
            for call in delta.tool_calls.into_iter().flatten() {
                token = true;
                let Some(slot) = self.tool_slot(at, c.index, call.index) else {
                    self.drop_text(
                        call.function
                            .iter()
                            .flat_map(|f| [f.name.as_deref(), f.arguments.as_deref()]),
                    );
                    continue;
                };
                let t = &mut self.choices[at].message.tool_calls[slot];
                if let Some(id) = call.id {
                    t.id = Some(clip(&id));
                }
                if let Some(kind) = call.kind {
                    t.kind = clip(&kind);
                }
                if let Some(f) = call.function {
                    if let Some(name) = f.name {
                        append_capped(
                            &mut t.function.name,
                            &name,
                            &mut self.budget,
                            &mut self.dropped_escaped,
                        );
                    }
                    if let Some(args) = f.arguments {
                        append_capped(
                            &mut t.function.arguments,
                            &args,
                            &mut self.budget,
                            &mut self.dropped_escaped,
                        );
                    }
                }
            }
            if token && self.facts.first_token_at.is_none() {
                self.facts.first_token_at = Some(Instant::now());
            }
        }
    }

    /// The position of choice `index`, made if there is room.
    fn choice_slot(&mut self, index: u32) -> Option<usize> {
        if let Some(&at) = self.choice_at.get(&index) {
            return Some(at);
        }
        if self.parts >= MAX_PARTS {
            return None;
        }
        self.parts += 1;
        self.choices.push(ChoiceOut {
            index,
            ..Default::default()
        });
        self.choice_at.insert(index, self.choices.len() - 1);
        Some(self.choices.len() - 1)
    }

    /// The position of tool call `index` in choice `choice` (at position `at`), made if there is room.
    fn tool_slot(&mut self, at: usize, choice: u32, index: u32) -> Option<usize> {
        if let Some(&slot) = self.tool_at.get(&(choice, index)) {
            return Some(slot);
        }
        if self.parts >= MAX_PARTS {
            return None;
        }
        self.parts += 1;
        let calls = &mut self.choices[at].message.tool_calls;
        calls.push(ToolCallOut {
            index,
            kind: "function".into(),
            ..Default::default()
        });
        self.tool_at.insert((choice, index), calls.len() - 1);
        Some(calls.len() - 1)
    }

    /// Text of a part past [`MAX_PARTS`]: not kept, but counted in the message's size.
    fn drop_text<'t>(&mut self, texts: impl IntoIterator<Item = Option<&'t str>>) {
        if self.dropped_parts == 0 {
            self.note_error(format!(
                "more than {MAX_PARTS} choices and tool calls; the rest are not logged"
            ));
        }
        self.dropped_parts += 1;
        self.dropped_escaped += texts.into_iter().flatten().map(escaped_len).sum::<u64>();
    }

    fn drop_delta(&mut self, delta: Option<&DeltaWire<'_>>) {
        let Some(d) = delta else { return self.drop_text([]) };
        let calls = d.tool_calls.iter().flatten().flat_map(|c| c.function.iter());
        let texts: Vec<Option<&str>> = [
            d.content.as_deref(),
            d.refusal.as_deref(),
            d.reasoning_content.as_deref(),
        ]
        .into_iter()
        .chain(calls.flat_map(|f| [f.name.as_deref(), f.arguments.as_deref()]))
        .collect();
        self.drop_text(texts);
    }

    /// The assembled completion (capped at `cap` bytes) and what the stream said.
    pub(crate) fn finish(mut self, cap: usize) -> (Captured, ResponseFacts) {
        self.choices.sort_by_key(|c| c.index);
        for c in &mut self.choices {
            c.message.tool_calls.sort_by_key(|t| t.index);
        }
        self.facts.finish_reasons = self
            .choices
            .iter()
            .filter_map(|c| c.finish_reason.clone())
            .collect();
        let mut json = serde_json::to_vec(&self.choices).unwrap_or_default();
        let total = json.len() as u64 + self.dropped_escaped;
        if json.len() > cap {
            json.truncate(cap);
        }
        if self.bad_events > 0 {
            let first = self.first_error.take().unwrap_or_default();
            self.facts.error = Some(if self.bad_events > 1 {
                format!("{first} (and {} more problems)", self.bad_events - 1)
            } else {
                first
            });
        }
        self.facts.stream_ended = self.saw_done || !self.facts.finish_reasons.is_empty();
        (Captured::from_bytes(json.into(), total), self.facts)
    }
}

/// Appends `text` to `target` while budget remains; counts the JSON-escaped size of the rest.
fn append_capped(target: &mut String, text: &str, budget: &mut usize, dropped_escaped: &mut u64) {
    if text.len() <= *budget {
        target.push_str(text);
        *budget -= text.len();
        return;
    }
    let mut keep = *budget;
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    target.push_str(&text[..keep]);
    *budget = 0;
    *dropped_escaped += escaped_len(&text[keep..]);
}

/// The length of `s` once escaped in a JSON string, as serde_json writes it.
fn escaped_len(s: &str) -> u64 {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 2,
            0x00..=0x1F => 6,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::json::JsonScanner;
    use bytes::Bytes;

    fn scan(root: &'static Node, body: &str) -> ScanResult {
        let mut s = JsonScanner::new(root, 1 << 20);
        s.feed(&Bytes::copy_from_slice(body.as_bytes()));
        s.finish()
    }

    #[test]
    fn request_facts_in_any_key_order() {
        let r = scan(
            &REQUEST,
            r#"{"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true},"stream":true,"model":"gpt-4o-mini"}"#,
        );
        let f = request_facts(&r);
        assert_eq!(
            f,
            RequestFacts {
                model: Some("gpt-4o-mini".into()),
                stream: true,
                include_usage: true
            }
        );
        let r = scan(&REQUEST, r#"{"model":"m","messages":[]}"#);
        assert_eq!(
            request_facts(&r),
            RequestFacts {
                model: Some("m".into()),
                stream: false,
                include_usage: false
            }
        );
    }

    #[test]
    fn response_facts_with_usage_details() {
        let r = scan(
            &RESPONSE,
            r#"{"id":"chatcmpl-9","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":"y"},"finish_reason":"length"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
        );
        let f = response_facts(&r);
        assert_eq!(f.request_id.as_deref(), Some("chatcmpl-9"));
        assert_eq!(f.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(f.finish_reasons, ["stop", "length"]);
        assert_eq!(
            f.usage,
            Usage {
                prompt_tokens: Some(11),
                completion_tokens: Some(7),
                total_tokens: Some(18),
                cached_tokens: Some(3),
                reasoning_tokens: Some(2)
            }
        );
    }

    #[test]
    fn stream_assembles_content_and_tool_calls() {
        let mut a = ChatStreamAssembler::new(1 << 20);
        for e in [
            r#"{"id":"c1","model":"","choices":[],"prompt_filter_results":[]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"lo \"x\""}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":""}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}"#,
            r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}"#,
            "[DONE]",
        ] {
            a.on_event(e.as_bytes(), false);
        }
        let (msg, facts) = a.finish(1 << 20);
        let text = String::from_utf8(msg.segments.concat()).unwrap();
        assert_eq!(
            text,
            r#"[{"index":0,"message":{"role":"assistant","content":"Hello \"x\"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}]"#
        );
        assert_eq!(msg.total, text.len() as u64);
        assert!(!msg.truncated);
        assert_eq!(facts.request_id.as_deref(), Some("c1"));
        assert_eq!(facts.model.as_deref(), Some("gpt-4o"));
        assert_eq!(facts.usage.total_tokens, Some(11));
        assert_eq!(facts.finish_reasons, ["tool_calls"]);
        assert!(facts.first_token_at.is_some());
        assert!(facts.stream_ended);
        assert_eq!(facts.error, None);
    }

    #[test]
    fn capped_stream_counts_the_full_size() {
        let mut full = ChatStreamAssembler::new(1 << 20);
        let mut capped = ChatStreamAssembler::new(10);
        for e in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"ab\n\"cd\u0001"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"},"finish_reason":"stop"}]}"#,
        ] {
            full.on_event(e.as_bytes(), false);
            capped.on_event(e.as_bytes(), false);
        }
        let (f, _) = full.finish(1 << 20);
        let (c, facts) = capped.finish(50);
        assert_eq!(c.total, f.total);
        assert!(c.truncated);
        assert_eq!(c.segments.iter().map(|s| s.len()).sum::<usize>(), 50);
        assert_eq!(
            facts.error, None,
            "finish_reason without [DONE] is complete enough"
        );
    }

    #[test]
    fn bad_events_are_reported_and_the_rest_kept() {
        let mut a = ChatStreamAssembler::new(100);
        a.on_event(b"not json", false);
        a.on_event(br#"{"choices":[{"index":0,"delta":{"content":"ok"}}]}"#, false);
        a.on_event(b"", true);
        let (msg, facts) = a.finish(100);
        assert!(String::from_utf8(msg.segments.concat())
            .unwrap()
            .contains("\"ok\""));
        let err = facts.error.unwrap();
        assert!(err.starts_with("event 1 is not a chat completion chunk"), "{err}");
        assert!(err.ends_with("(and 1 more problems)"), "{err}");
    }

    #[test]
    fn parts_are_bounded_and_the_rest_reported() {
        let mut a = ChatStreamAssembler::new(1 << 20);
        let calls: Vec<String> = (0..2000)
            .map(|i| {
                format!(
                    r#"{{"index":{i},"id":"{}","function":{{"name":"f","arguments":"ab"}}}}"#,
                    "i".repeat(1000)
                )
            })
            .collect();
        let event = format!(
            r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":[{}]}}}}]}}"#,
            calls.join(",")
        );
        a.on_event(event.as_bytes(), false);
        a.on_event(
            br#"{"choices":[{"index":5000,"delta":{"content":"late"}}]}"#,
            false,
        );
        assert_eq!(a.parts, MAX_PARTS);
        let kept: usize = a.choices.iter().map(|c| c.message.tool_calls.len()).sum();
        assert_eq!(kept, MAX_PARTS - 1);
        assert!(a.choices[0]
            .message
            .tool_calls
            .iter()
            .all(|t| t.id.as_ref().unwrap().len() == SMALL_FIELD));
        let (msg, facts) = a.finish(1 << 30);
        let logged = msg.segments.concat().len() as u64;
        assert_eq!(
            msg.total,
            logged + (2000 - 1023) * 3 + 4,
            "dropped text still counts in the size"
        );
        assert!(facts
            .error
            .unwrap()
            .starts_with("more than 1024 choices and tool calls"));
    }

    #[test]
    fn a_stream_without_end_says_so_and_has_no_tokens() {
        let mut a = ChatStreamAssembler::new(100);
        a.on_event(
            br#"{"choices":[{"index":0,"delta":{"content":"partial"}}]}"#,
            false,
        );
        let (_, facts) = a.finish(100);
        assert_eq!(facts.usage, Usage::default());
        assert!(!facts.stream_ended);
        assert_eq!(facts.error, None);
    }
}
