//! Google's Gemini API: `models/{model}:generateContent` and `:streamGenerateContent`, on Google
//! AI (`generativelanguage.googleapis.com/v1beta/models/...`, provider `gcp.gemini`) and Vertex
//! AI (`.../publishers/google/models/...`, provider `gcp.vertex_ai`).
//!
//! - Request: the prompt is `{"systemInstruction":...,"contents":...}`; the model comes from the
//!   path, and the path says whether a stream was asked for.
//! - Response: the `candidates` as the logged completion; `modelVersion` (the model, when
//!   present), `responseId` (the request id), `finishReason` per candidate, and `usageMetadata`:
//!   `PromptTokens` = `promptTokenCount`, `CompletionTokens` = `candidatesTokenCount` +
//!   `thoughtsTokenCount`, `ReasoningTokens` = `thoughtsTokenCount`, `CachedTokens` =
//!   `cachedContentTokenCount` (part of the prompt), `TotalTokens` = `totalTokenCount`.
//! - Stream: server-sent events with `alt=sse`, else a JSON array sent element by element; each
//!   event is a whole response chunk. Candidates are assembled by index into the same shape as a
//!   JSON response: text parts joined (thoughts apart from the answer), function calls kept
//!   whole. Usage is a running total: the last chunk's counts are the exchange's. A chunk that is
//!   an `{"error":...}` object ends the stream and is reported.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::assemble::{clip, clip_word, cow_str, Indexed, StreamState, TextBudget};
use super::scanned::{self, ScannedBody, MODEL};
use super::{
    is_media_type, BodyFacts, BodyReader, Framing, LlmApi, RequestHead, Route, StreamEvent, StreamReader,
    TokenUsage,
};
use crate::scan::json::{Action, Node, ScanResult};
use crate::ApiFamily;

const ID: u8 = 3;
const USAGE: u8 = 4;
const FINISH_REASON: u8 = 5;

static REQUEST: Node = Node::root(&[
    Node::key(b"systemInstruction", Action::Capture, &[]),
    Node::key(b"contents", Action::Capture, &[]),
]);

static RESPONSE: Node = Node::root(&[
    Node::key(b"modelVersion", Action::Scalar(MODEL), &[]),
    Node::key(b"responseId", Action::Scalar(ID), &[]),
    Node::key(b"usageMetadata", Action::Scalar(USAGE), &[]),
    Node::key(
        b"candidates",
        Action::Capture,
        &[Node::element(
            Action::Walk,
            &[Node::key(b"finishReason", Action::EachScalar(FINISH_REASON), &[])],
        )],
    ),
]);

/// Google's Gemini `generateContent`: [`ApiFamily::GeminiGenerateContent`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiApi;

impl LlmApi for GeminiApi {
    fn family(&self) -> ApiFamily {
        ApiFamily::GeminiGenerateContent
    }

    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        super::recognize(head).filter(|r| r.family == ApiFamily::GeminiGenerateContent)
    }

    fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        scanned::request_by_route(&REQUEST, cap, "contents", route)
    }

    fn response_reader(&self, _: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(ScannedBody::new(
            &RESPONSE,
            cap,
            Some("candidates"),
            read_response,
        ))
    }

    fn stream_reader(&self, _: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(GeminiStream::new(cap))
    }

    fn stream_framing(&self, route: &Route, content_type: &str) -> Option<Framing> {
        if is_media_type(content_type, "text/event-stream") {
            Some(Framing::ServerSentEvents)
        } else if route.streaming {
            // `streamGenerateContent` without `alt=sse`: one JSON array, element by element.
            Some(Framing::JsonArray)
        } else {
            None
        }
    }
}

/// Gemini's usage metadata.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    total_token_count: Option<u64>,
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> TokenUsage {
        let completion = match (u.candidates_token_count, u.thoughts_token_count) {
            (None, None) => None,
            (c, t) => Some(c.unwrap_or(0).saturating_add(t.unwrap_or(0))),
        };
        TokenUsage {
            prompt: u.prompt_token_count,
            completion,
            total: u.total_token_count,
            cached: u.cached_content_token_count,
            reasoning: u.thoughts_token_count,
            cache_creation: None,
        }
    }
}

fn read_response(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.model = scanned::string(scan, MODEL);
    facts.request_id = scanned::string(scan, ID);
    facts.finish_reasons = scan
        .scalars_in(FINISH_REASON)
        .filter_map(crate::scan::json::scalar_string)
        .map(|s| clip(&s))
        .collect();
    if let Some(u) = scanned::parsed::<Usage>(scan, USAGE, "usageMetadata", facts) {
        facts.usage = u.into();
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChunkWire<'a> {
    #[serde(borrow, default)]
    candidates: Vec<CandidateWire<'a>>,
    #[serde(default)]
    usage_metadata: Option<Usage>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    model_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    response_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateWire<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    content: Option<ContentWire<'a>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ContentWire<'a> {
    #[serde(borrow, default)]
    parts: Vec<PartWire<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartWire<'a> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: bool,
    #[serde(borrow, default)]
    function_call: Option<&'a RawValue>,
    #[serde(borrow, default)]
    executable_code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    code_execution_result: Option<&'a RawValue>,
}

/// One assembled part: text (thoughts apart), or a value kept whole.
#[derive(Serialize)]
#[serde(untagged)]
enum PartOut {
    Text {
        text: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        thought: bool,
    },
    Call {
        #[serde(rename = "functionCall")]
        function_call: Box<RawValue>,
    },
    Code {
        #[serde(rename = "executableCode")]
        executable_code: Box<RawValue>,
    },
    CodeResult {
        #[serde(rename = "codeExecutionResult")]
        code_execution_result: Box<RawValue>,
    },
}

#[derive(Serialize)]
struct ContentOut {
    role: &'static str,
    parts: Vec<PartOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CandidateOut {
    index: u32,
    content: ContentOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<String>,
}

impl Default for CandidateOut {
    fn default() -> Self {
        CandidateOut {
            index: 0,
            content: ContentOut {
                role: "model",
                parts: Vec::new(),
            },
            finish_reason: None,
        }
    }
}

/// Assembles a streamed `generateContent` into its candidates.
struct GeminiStream {
    candidates: Indexed<CandidateOut>,
    usage: Usage,
    s: StreamState,
}

impl GeminiStream {
    fn new(cap: usize) -> Self {
        GeminiStream {
            candidates: Indexed::default(),
            usage: Usage::default(),
            s: StreamState::new(cap),
        }
    }

    fn apply(&mut self, chunk: ChunkWire<'_>) {
        if let Some(error) = chunk.error {
            self.s.ended = true;
            self.s.tally.carried_error(error.get());
            return;
        }
        if let Some(model) = chunk.model_version.filter(|m| !m.is_empty()) {
            if self.s.facts.model.is_none() {
                self.s.facts.model = Some(clip(&model));
            }
        }
        if let Some(id) = chunk.response_id.filter(|m| !m.is_empty()) {
            if self.s.facts.request_id.is_none() {
                self.s.facts.request_id = Some(clip(&id));
            }
        }
        if let Some(usage) = chunk.usage_metadata {
            // A running total: the last chunk's counts are the stream's.
            self.usage = usage;
        }
        for c in chunk.candidates {
            let Some(out) = self.candidates.get(c.index, &mut self.s.tally, "candidates") else {
                for part in c.content.iter().flat_map(|c| &c.parts) {
                    if let Some(text) = &part.text {
                        self.s.budget.drop(text);
                    }
                }
                continue;
            };
            out.index = c.index;
            if let Some(reason) = c.finish_reason {
                out.finish_reason = Some(clip_word(&reason));
                self.s.ended = true;
            }
            for part in c.content.into_iter().flat_map(|c| c.parts) {
                if !part.thought {
                    self.s.token();
                }
                if let Some(text) = part.text {
                    let joined = match out.content.parts.last_mut() {
                        Some(PartOut::Text { text: last, thought }) if *thought == part.thought => Some(last),
                        _ => None,
                    };
                    match joined {
                        Some(last) => self.s.budget.append(last, &text),
                        None => {
                            let mut kept = String::new();
                            self.s.budget.append(&mut kept, &text);
                            out.content.parts.push(PartOut::Text {
                                text: kept,
                                thought: part.thought,
                            });
                        }
                    }
                    continue;
                }
                let whole =
                    |raw: &RawValue, budget: &mut TextBudget| budget.whole(raw.get()).then(|| raw.to_owned());
                if let Some(call) = part.function_call.and_then(|r| whole(r, &mut self.s.budget)) {
                    out.content.parts.push(PartOut::Call { function_call: call });
                } else if let Some(code) = part.executable_code.and_then(|r| whole(r, &mut self.s.budget)) {
                    out.content.parts.push(PartOut::Code {
                        executable_code: code,
                    });
                } else if let Some(result) = part
                    .code_execution_result
                    .and_then(|r| whole(r, &mut self.s.budget))
                {
                    out.content.parts.push(PartOut::CodeResult {
                        code_execution_result: result,
                    });
                }
            }
        }
    }
}

impl StreamReader for GeminiStream {
    fn event(&mut self, event: &StreamEvent<'_>) {
        if let Some(e) = self
            .s
            .tally
            .read::<ChunkWire<'_>>(event, "a generateContent chunk")
        {
            self.apply(e);
        }
    }

    fn finish(mut self: Box<Self>, _ended: bool) -> BodyFacts {
        let candidates = std::mem::take(&mut self.candidates).into_sorted();
        self.s.facts.finish_reasons = candidates
            .iter()
            .filter_map(|c| c.finish_reason.clone())
            .collect();
        self.s.facts.usage = self.usage.into();
        self.s.finish(&candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_thoughts_as_completion() {
        let u: Usage = serde_json::from_str(
            r#"{"promptTokenCount":12,"candidatesTokenCount":10,"thoughtsTokenCount":37,"cachedContentTokenCount":4,"totalTokenCount":59}"#,
        )
        .unwrap();
        let t = TokenUsage::from(u);
        assert_eq!(
            (t.prompt, t.completion, t.reasoning, t.cached, t.total),
            (Some(12), Some(47), Some(37), Some(4), Some(59))
        );
        assert_eq!(TokenUsage::from(Usage::default()).completion, None);
    }
}
