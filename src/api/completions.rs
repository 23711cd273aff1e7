//! Legacy text completions (`.../completions`).
//!
//! - Request: `model`, `stream`, and the raw `prompt` value (a string or a list) as the logged
//!   prompt.
//! - Response: `id`, `model`, `usage`, each choice's `finish_reason`, and the raw `choices` value
//!   (`choices[].text`) as the logged completion.
//! - Stream: `text_completion` chunks assembled per choice into the same shape as the
//!   non-streaming `choices` (`index`, `text`, `finish_reason`); usage from the chunk that carries
//!   it; `[DONE]` ends it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::assemble::{clip, clip_word, cow_str, stream_facts, EventTally, PartBound, TextBudget};
use super::openai::{read_response, Usage, FINISH_REASON, ID, USAGE};
use super::scanned::ScannedBody;
use super::{BodyFacts, BodyReader, LlmApi, RequestHead, Route, StreamReader};
use crate::scan::json::{Action, Node};
use crate::framing::StreamEvent;
use crate::ApiFamily;

use super::scanned::{read_model_and_stream, END_USER, MODEL, STREAM};

static REQUEST: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"stream", Action::Scalar(STREAM), &[]),
    Node::key(b"prompt", Action::Capture, &[]),
    Node::key(b"user", Action::Scalar(END_USER), &[]),
    Node::key(b"safety_identifier", Action::Scalar(END_USER), &[]),
]);

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

/// Legacy text completions: [`ApiFamily::Completions`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CompletionsApi;

impl LlmApi for CompletionsApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::Completions
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        super::recognize(head).filter(|r| r.family == ApiFamily::Completions)
    }

    fn request_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(
            &REQUEST,
            cap,
            Some("prompt"),
            read_model_and_stream,
        ))
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(&RESPONSE, cap, Some("choices"), read_response))
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(CompletionStream::new(cap))
    }
}

#[derive(Deserialize)]
struct ChunkWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChoiceWire<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChoiceWire<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct ChoiceOut {
    index: u32,
    text: String,
    finish_reason: Option<String>,
}

/// Assembles a streamed text completion.
struct CompletionStream {
    choices: Vec<ChoiceOut>,
    choice_at: HashMap<u32, usize>,
    parts: PartBound,
    facts: BodyFacts,
    budget: TextBudget,
    cap: usize,
    saw_done: bool,
    tally: EventTally,
}

impl CompletionStream {
    fn new(cap: usize) -> Self {
        CompletionStream {
            choices: Vec::new(),
            choice_at: HashMap::new(),
            parts: PartBound::default(),
            facts: BodyFacts::default(),
            budget: TextBudget::new(cap),
            cap,
            saw_done: false,
            tally: EventTally::default(),
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
            self.facts.usage = usage.into();
        }
        if let Some(error) = chunk.error {
            self.tally.note(format!(
                "the stream carried an error: {}",
                clip(&error.to_string())
            ));
        }
        for c in chunk.choices.into_iter().flatten() {
            let at = match self.choice_at.get(&c.index) {
                Some(&at) => at,
                None if self.parts.admit(&mut self.tally, "choices") => {
                    self.choices.push(ChoiceOut {
                        index: c.index,
                        text: String::new(),
                        finish_reason: None,
                    });
                    self.choice_at.insert(c.index, self.choices.len() - 1);
                    self.choices.len() - 1
                }
                None => {
                    self.budget.drop(c.text.as_deref().unwrap_or(""));
                    continue;
                }
            };
            if let Some(text) = c.text {
                if !text.is_empty() && self.facts.first_token_at.is_none() {
                    self.facts.first_token_at = Some(Instant::now());
                }
                self.budget.append(&mut self.choices[at].text, &text);
            }
            if let Some(reason) = c.finish_reason {
                self.choices[at].finish_reason = Some(clip_word(&reason));
            }
        }
    }
}

impl StreamReader for CompletionStream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        if !self.tally.next(event.oversized) || self.saw_done {
            return;
        }
        if event.data == b"[DONE]" {
            self.saw_done = true;
            return;
        }
        match serde_json::from_slice::<ChunkWire<'_>>(event.data) {
            Ok(chunk) => self.apply(chunk),
            Err(e) => {
                let n = self.tally.events;
                self.tally
                    .note(format!("event {n} is not a text completion chunk: {e}"));
            }
        }
    }

    fn finish(mut self: Box<Self>, _ended: bool) -> BodyFacts {
        self.choices.sort_by_key(|c| c.index);
        let mut facts = std::mem::take(&mut self.facts);
        facts.finish_reasons = self
            .choices
            .iter()
            .filter_map(|c| c.finish_reason.clone())
            .collect();
        let ended = self.saw_done || !facts.finish_reasons.is_empty();
        stream_facts(
            facts,
            &self.budget,
            &self.choices,
            self.cap,
            &mut self.tally,
            ended,
        )
    }
}
