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

use serde::{Deserialize, Serialize};

use super::assemble::{clip_word, cow_str, Indexed};
use super::openai::{read_response, ChunkStream, FINISH_REASON, ID, USAGE};
use super::scanned::ScannedBody;
use super::{BodyFacts, BodyReader, LlmApi, RequestHead, Route, StreamReader};
use crate::framing::StreamEvent;
use crate::scan::json::{Action, Node};
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
        Box::new(CompletionStream {
            stream: ChunkStream::new(cap),
            choices: Indexed::default(),
        })
    }
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

/// Legacy completion chunks are read by serde.
impl super::openai::FastChoice<'_> for ChoiceWire<'_> {}

#[derive(Serialize, Default)]
struct ChoiceOut {
    index: u32,
    text: String,
    finish_reason: Option<String>,
}

/// Assembles a streamed text completion.
struct CompletionStream {
    stream: ChunkStream,
    choices: Indexed<ChoiceOut>,
}

impl StreamReader for CompletionStream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        let Some(choices) =
            self.stream
                .choices::<ChoiceWire<'_>>(event.data, event.oversized, "a text completion chunk")
        else {
            return;
        };
        for c in choices {
            let Some(out) = self.choices.get(c.index, &mut self.stream.s.tally, "choices") else {
                self.stream.s.budget.drop(c.text.as_deref().unwrap_or(""));
                continue;
            };
            out.index = c.index;
            if let Some(text) = c.text {
                if !text.is_empty() {
                    self.stream.s.token();
                }
                self.stream.s.budget.append(&mut out.text, &text);
            }
            if let Some(reason) = c.finish_reason {
                out.finish_reason = Some(clip_word(&reason));
            }
        }
    }

    fn finish(self: Box<Self>, _ended: bool) -> BodyFacts {
        let choices = self.choices.into_sorted();
        let reasons = choices.iter().filter_map(|c| c.finish_reason.clone()).collect();
        self.stream.finish(&choices, reasons)
    }
}
