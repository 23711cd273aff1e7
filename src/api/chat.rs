//! OpenAI-compatible chat completions (`.../chat/completions`).
//!
//! - Request: `model`, `stream`, and the raw `messages` value as the logged prompt.
//! - Response: `id`, `model`, `usage`, each choice's `finish_reason`, and the raw `choices` value
//!   as the logged completion.
//! - Stream: `chat.completion.chunk` events assembled per choice (role, content, refusal,
//!   reasoning, tool calls with their arguments concatenated, finish reason) into the same shape
//!   as a non-streaming `choices` array; usage from the chunk that carries it (the client asked
//!   with `stream_options.include_usage`); `[DONE]` ends it.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::assemble::{clip_word, cow_str, PartBound};
use super::scanned::ScannedBody;
use super::{BodyFacts, BodyReader, LlmApi, RequestHead, Route, StreamReader};
use crate::framing::StreamEvent;
use crate::scan::json::{Action, Node};
use crate::ApiFamily;

use super::scanned::{read_model_and_stream, END_USER, MODEL, STREAM};

use super::json_cursor::{first_time, Cursor};
use super::openai::{read_response, ChunkStream, FastChoice, FINISH_REASON, ID, USAGE};

/// The paths read from a chat request body.
pub(crate) static REQUEST: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"stream", Action::Scalar(STREAM), &[]),
    Node::key(b"messages", Action::Capture, &[]),
    Node::key(b"user", Action::Scalar(END_USER), &[]),
    Node::key(b"safety_identifier", Action::Scalar(END_USER), &[]),
]);

/// The paths read from a non-streaming chat response body.
static RESPONSE: Node = Node::root(&[
    Node::key(b"id", Action::Scalar(ID), &[]),
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"usage", Action::Scalar(USAGE), &[]),
    Node::key(
        b"choices",
        Action::Capture,
        &[Node::element(
            Action::Walk,
            &[Node::key(
                b"finish_reason",
                Action::EachScalar(FINISH_REASON),
                &[],
            )],
        )],
    ),
]);

/// OpenAI-compatible chat completions: [`ApiFamily::ChatCompletions`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatCompletionsApi;

impl LlmApi for ChatCompletionsApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::ChatCompletions
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        super::recognize(head).filter(|r| r.family == ApiFamily::ChatCompletions)
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
        Box::new(ScannedBody::new(&RESPONSE, cap, Some("choices"), read_response))
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(ChatStreamAssembler::new(cap))
    }
}

#[derive(Deserialize)]
struct ChoiceDeltaWire<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    delta: Option<DeltaWire<'a>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCallDeltaWire<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDeltaWire<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type", deserialize_with = "cow_str")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionDeltaWire<'a>>,
}

#[derive(Deserialize)]
struct FunctionDeltaWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    arguments: Option<Cow<'a, str>>,
}

/// The common chat chunk read without serde; anything else is left to it.
impl<'a> FastChoice<'a> for ChoiceDeltaWire<'a> {
    fn read(c: &mut Cursor<'a>) -> Option<Self> {
        let mut choice = ChoiceDeltaWire {
            index: 0,
            delta: None,
            finish_reason: None,
        };
        let mut seen = 0;
        c.object(|c, key| match key {
            b"index" => c.u32_member(&mut seen, 0, &mut choice.index),
            b"delta" => {
                first_time(&mut seen, 1)?;
                choice.delta = match c.null() {
                    true => None,
                    false => Some(DeltaWire::read(c)?),
                };
                Some(())
            }
            b"finish_reason" => c.string_member(&mut seen, 2, &mut choice.finish_reason),
            _ => c.skip(),
        })?;
        Some(choice)
    }
}

impl<'a> DeltaWire<'a> {
    fn read(c: &mut Cursor<'a>) -> Option<Self> {
        let mut delta = DeltaWire {
            role: None,
            content: None,
            refusal: None,
            reasoning_content: None,
            tool_calls: None,
        };
        let mut seen = 0;
        c.object(|c, key| match key {
            b"role" => c.string_member(&mut seen, 0, &mut delta.role),
            b"content" => c.string_member(&mut seen, 1, &mut delta.content),
            b"refusal" => c.string_member(&mut seen, 2, &mut delta.refusal),
            b"reasoning_content" => c.string_member(&mut seen, 3, &mut delta.reasoning_content),
            b"tool_calls" => {
                let mut calls = Vec::new();
                let listed = c.array_member(&mut seen, 4, |c| {
                    calls.push(ToolCallDeltaWire::read(c)?);
                    Some(())
                })?;
                delta.tool_calls = listed.then_some(calls);
                Some(())
            }
            _ => c.skip(),
        })?;
        Some(delta)
    }
}

impl<'a> ToolCallDeltaWire<'a> {
    fn read(c: &mut Cursor<'a>) -> Option<Self> {
        let mut call = ToolCallDeltaWire {
            index: 0,
            id: None,
            kind: None,
            function: None,
        };
        let mut seen = 0;
        c.object(|c, key| match key {
            b"index" => c.u32_member(&mut seen, 0, &mut call.index),
            b"id" => c.string_member(&mut seen, 1, &mut call.id),
            b"type" => c.string_member(&mut seen, 2, &mut call.kind),
            b"function" => {
                first_time(&mut seen, 3)?;
                if c.null() {
                    return Some(());
                }
                let mut function = FunctionDeltaWire {
                    name: None,
                    arguments: None,
                };
                let mut seen = 0;
                c.object(|c, key| match key {
                    b"name" => c.string_member(&mut seen, 0, &mut function.name),
                    b"arguments" => c.string_member(&mut seen, 1, &mut function.arguments),
                    _ => c.skip(),
                })?;
                call.function = Some(function);
                Some(())
            }
            _ => c.skip(),
        })?;
        Some(call)
    }
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
pub(crate) struct ChatStreamAssembler {
    stream: ChunkStream,
    choices: Vec<ChoiceOut>,
    choice_at: HashMap<u32, usize>,
    tool_at: HashMap<(u32, u32), usize>,
    /// Choices and tool calls count against one bound.
    parts: PartBound,
}

impl StreamReader for ChatStreamAssembler {
    fn event(&mut self, event: &StreamEvent<'_>) {
        self.on_event(event.data, event.oversized);
    }

    fn finish(self: Box<Self>, _ended: bool) -> BodyFacts {
        (*self).finish_facts()
    }
}

impl ChatStreamAssembler {
    pub(crate) fn new(cap: usize) -> Self {
        ChatStreamAssembler {
            stream: ChunkStream::new(cap),
            choices: Vec::new(),
            choice_at: HashMap::new(),
            tool_at: HashMap::new(),
            parts: PartBound::default(),
        }
    }

    /// Takes one event's data.
    pub(crate) fn on_event(&mut self, data: &[u8], oversized: bool) {
        let Some(choices) =
            self.stream
                .choices::<ChoiceDeltaWire<'_>>(data, oversized, "a chat completion chunk")
        else {
            return;
        };
        for c in choices {
            let Some(at) = self.choice_slot(c.index) else {
                self.drop_delta(c.delta.as_ref());
                continue;
            };
            if let Some(reason) = c.finish_reason {
                self.choices[at].finish_reason = Some(clip_word(&reason));
            }
            let Some(delta) = c.delta else { continue };
            let mut token = false;
            if let Some(role) = delta.role {
                self.choices[at].message.role = Some(clip_word(&role));
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
                self.stream
                    .s
                    .budget
                    .append(target.get_or_insert_with(String::new), &text);
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
                // Some servers repeat the id on every delta: it is paid for once.
                if let Some(id) = call.id.filter(|_| t.id.is_none()) {
                    t.id = self.stream.s.budget.field(&id);
                }
                if let Some(kind) = call.kind {
                    t.kind = clip_word(&kind);
                }
                if let Some(f) = call.function {
                    if let Some(name) = f.name {
                        self.stream.s.budget.append(&mut t.function.name, &name);
                    }
                    if let Some(args) = f.arguments {
                        self.stream.s.budget.append(&mut t.function.arguments, &args);
                    }
                }
            }
            if token {
                self.stream.s.token();
            }
        }
    }

    /// The position of choice `index`, made if there is room.
    fn choice_slot(&mut self, index: u32) -> Option<usize> {
        if let Some(&at) = self.choice_at.get(&index) {
            return Some(at);
        }
        if !self
            .parts
            .admit(&mut self.stream.s.tally, "choices and tool calls")
        {
            return None;
        }
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
        if !self
            .parts
            .admit(&mut self.stream.s.tally, "choices and tool calls")
        {
            return None;
        }
        let calls = &mut self.choices[at].message.tool_calls;
        calls.push(ToolCallOut {
            index,
            kind: "function".into(),
            ..Default::default()
        });
        self.tool_at.insert((choice, index), calls.len() - 1);
        Some(calls.len() - 1)
    }

    /// Text of a part not kept: counted in the message's size.
    fn drop_text<'t>(&mut self, texts: impl IntoIterator<Item = Option<&'t str>>) {
        for text in texts.into_iter().flatten() {
            self.stream.s.budget.drop(text);
        }
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

    /// The assembled completion (capped) and what the stream said.
    pub(crate) fn finish_facts(mut self) -> BodyFacts {
        self.choices.sort_by_key(|c| c.index);
        for c in &mut self.choices {
            c.message.tool_calls.sort_by_key(|t| t.index);
        }
        let reasons = self
            .choices
            .iter()
            .filter_map(|c| c.finish_reason.clone())
            .collect();
        self.stream.finish(&self.choices, reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TokenUsage;
    use bytes::Bytes;

    fn read(reader: Box<dyn BodyReader>, body: &str) -> BodyFacts {
        let mut reader = reader;
        reader.feed(&Bytes::copy_from_slice(body.as_bytes()));
        reader.finish(true)
    }

    fn request(body: &str) -> BodyFacts {
        read(ChatCompletionsApi.request_reader(&route(), 1 << 20), body)
    }

    fn route() -> Route {
        Route::new(ApiFamily::ChatCompletions, "openai")
    }

    fn text(facts: &BodyFacts) -> String {
        String::from_utf8(facts.message.to_bytes().to_vec()).unwrap()
    }

    impl ChatStreamAssembler {
        fn finish(self, _cap: usize) -> (crate::capture::LoggedMessage, BodyFacts) {
            let mut facts = self.finish_facts();
            let message = std::mem::take(&mut facts.message);
            (message, facts)
        }
    }

    #[test]
    fn request_facts_in_any_key_order() {
        let f = request(
            r#"{"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true},"stream":true,"model":"gpt-4o-mini"}"#,
        );
        assert_eq!((f.model.as_deref(), f.stream), (Some("gpt-4o-mini"), true));
        assert_eq!(text(&f), r#"[{"role":"user","content":"hi"}]"#);
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        let f = request(r#"{"model":"m","messages":[]}"#);
        assert_eq!((f.model.as_deref(), f.stream), (Some("m"), false));
        let f = request(r#"{"model":"m"}"#);
        assert_eq!(f.errors, ["no \"messages\" value"]);
    }

    #[test]
    fn response_facts_with_usage_details() {
        let f = read(
            ChatCompletionsApi.response_reader(&route(), 1 << 20),
            r#"{"id":"chatcmpl-9","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":"y"},"finish_reason":"length"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
        );
        assert_eq!(f.request_id.as_deref(), Some("chatcmpl-9"));
        assert_eq!(f.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(f.finish_reasons, ["stop", "length"]);
        assert_eq!(
            f.usage,
            TokenUsage {
                prompt: Some(11),
                completion: Some(7),
                total: Some(18),
                cached: Some(3),
                reasoning: Some(2),
                cache_creation: None,
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
        assert_eq!(facts.usage.total, Some(11));
        assert_eq!(facts.finish_reasons, ["tool_calls"]);
        assert!(facts.first_token_at.is_some());
        assert!(facts.stream_ended);
        assert!(facts.errors.is_empty(), "{:?}", facts.errors);
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
        assert_eq!(c.segments.iter().map(|s| s.len()).sum::<usize>(), 10);
        assert!(
            facts.errors.is_empty(),
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
        let err = facts
            .errors
            .iter()
            .map(|e| e.detail())
            .collect::<Vec<_>>()
            .join("; ");
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
        let kept: usize = a.choices.iter().map(|c| c.message.tool_calls.len()).sum();
        assert_eq!(kept, super::super::assemble::MAX_PARTS - 1);
        assert!(a.choices[0]
            .message
            .tool_calls
            .iter()
            .all(|t| t.id.as_ref().unwrap().len() == 256));
        let (msg, facts) = a.finish(1 << 30);
        let logged = msg.segments.concat().len() as u64;
        let max = super::super::assemble::MAX_PARTS as u64;
        assert_eq!(
            msg.total,
            logged + (2000 - (max - 1)) * 3 + 4,
            "dropped text still counts in the size"
        );
        assert!(facts.errors[0]
            .detail()
            .starts_with(&format!("more than {max} choices and tool calls")));
    }

    #[test]
    fn a_stream_without_end_says_so_and_has_no_tokens() {
        let mut a = ChatStreamAssembler::new(100);
        a.on_event(
            br#"{"choices":[{"index":0,"delta":{"content":"partial"}}]}"#,
            false,
        );
        let (_, facts) = a.finish(100);
        assert!(facts.usage.is_empty());
        assert!(!facts.stream_ended);
        assert!(facts.errors.is_empty(), "{:?}", facts.errors);
    }
}

/// The chunk reader for the common case against serde: the same events read both ways give
/// the same facts (message, errors, usage, ids, finish reasons), whatever the chunk.
#[cfg(test)]
mod fast_reader_tests {
    use super::ChatStreamAssembler;
    use crate::api::openai::ChunkStream;
    use proptest::prelude::*;

    fn read(events: &[String], serde_only: bool) -> String {
        let mut a = ChatStreamAssembler::new(1 << 16);
        if serde_only {
            a.stream = ChunkStream::new(1 << 16).serde_only();
        }
        for e in events {
            a.on_event(e.as_bytes(), false);
        }
        let mut facts = a.finish_facts();
        // When the first token came differs run to run; whether one came does not.
        let token = facts.first_token_at.take().is_some();
        format!("first token: {token}; {facts:?}")
    }

    fn same(events: &[String]) {
        assert_eq!(read(events, false), read(events, true), "{events:#?}");
    }

    #[test]
    fn hand_written_chunks_read_alike() {
        let cases = [
            r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \"there\"\n\u00e9"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c1","choices":[{"index":1,"delta":{"content":"second"}},{"index":0,"delta":{"content":"first"},"finish_reason":"stop"}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"a\""}}]}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}}"#,
            r#"{"id":"c1","id":"c2","choices":[]}"#,
            r#"{"choices":[{"index":0,"index":1,"delta":{}}]}"#,
            r#"{"choices":[{"index":-1,"delta":{}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":7}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"\ud800"}}]}"#,
            r#"{"choices":null,"model":null,"id":null}"#,
            r#"{"error":{"message":"overloaded"}}"#,
            r#"{"choices":[{"index":0,"delta":null,"finish_reason":"length"}]} "#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"}}]}trailing"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"}},]}"#,
            "{\"choices\":\n[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}",
            r#"{"\u0069d":"escaped key","choices":[]}"#,
            "[DONE]",
        ];
        for (i, case) in cases.iter().enumerate() {
            same(&[case.to_string()]);
            // Chunks of the usual shape take the fast reader; usage, errors, what serde refuses
            // and what it alone can tell (an escaped key, a line break) are left to serde.
            let fast = crate::api::openai::reads_fast::<super::ChoiceDeltaWire<'_>>(case);
            assert_eq!(fast, [0, 1, 2, 3, 10, 12].contains(&i), "{case}");
        }
        same(&cases.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    }

    /// A JSON value of a few kinds, some of them not what the chunk's fields want.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            "[a-z \"\\\\é\n]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            (0u64..5_000_000_000).prop_map(|n| n.to_string()),
            Just("-1".to_string()),
            Just("1.5".to_string()),
            Just("true".to_string()),
            Just(r#"{"nested":[1,{"x":null}]}"#.to_string()),
            Just(r#""\ud800""#.to_string()),
            Just("[1,]".to_string()),
        ]
    }

    fn object(keys: &'static [&'static str], inner: BoxedStrategy<String>) -> BoxedStrategy<String> {
        prop::collection::vec(
            (prop::sample::select(keys), prop_oneof![3 => inner, 1 => value()]),
            0..5,
        )
        .prop_map(|members| {
            let body: Vec<String> = members.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        })
        .boxed()
    }

    fn chunk() -> impl Strategy<Value = String> {
        let function = object(&["name", "arguments", "other"], value().boxed());
        let call = object(&["index", "id", "type", "function"], function);
        let calls = prop::collection::vec(call, 0..3).prop_map(|c| format!("[{}]", c.join(",")));
        let delta = object(
            &[
                "role",
                "content",
                "refusal",
                "reasoning_content",
                "tool_calls",
                "other",
            ],
            calls.boxed(),
        );
        let choice = object(&["index", "delta", "finish_reason", "logprobs"], delta);
        let choices = prop::collection::vec(choice, 0..3).prop_map(|c| format!("[{}]", c.join(",")));
        object(
            &["id", "model", "choices", "usage", "error", "object", "created"],
            choices.boxed(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn generated_chunks_read_alike(events in prop::collection::vec(chunk(), 1..4)) {
            prop_assert_eq!(read(&events, false), read(&events, true));
        }
    }
}
