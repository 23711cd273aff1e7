//! What OpenAI's families share: the scalar slots of their response bodies, the reading of a
//! response (id, model, finish reasons, usage) and the usage object with its details.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::assemble::{clip, cow_str, StreamState};
use super::json_cursor::{first_time, Cursor};
use super::scanned;
use super::{BodyFacts, TokenUsage};
use crate::scan::json::ScanResult;

use super::scanned::MODEL;

/// The response's `id`.
pub(crate) const ID: u8 = 3;
/// The response's `usage` object.
pub(crate) const USAGE: u8 = 4;
/// Each choice's `finish_reason`.
pub(crate) const FINISH_REASON: u8 = 5;

/// Reads an OpenAI-style response: id, model, each choice's finish reason, usage (chat and
/// legacy completions share the shape).
pub(crate) fn read_response(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.request_id = scanned::string(scan, ID);
    facts.model = scanned::string(scan, MODEL);
    facts.finish_reasons = scan
        .scalars_in(FINISH_REASON)
        .filter_map(crate::scan::json::scalar_string)
        .map(super::assemble::clip_owned)
        .collect();
    let usage = scan.scalar(USAGE).and_then(usual_usage);
    if let Some(u) = usage.or_else(|| scanned::parsed::<Usage>(scan, USAGE, "usage", facts)) {
        facts.usage = u.into();
    }
}

/// Usage of the usual shape (counts, details absent or null) read without serde; `None` for
/// anything else, which serde then reads (and reports when it cannot).
fn usual_usage(raw: &[u8]) -> Option<Usage> {
    let mut usage = Usage::default();
    let mut seen = 0;
    let mut c = Cursor::new(std::str::from_utf8(raw).ok()?);
    c.object(|c, key| {
        let (field, count) = match key {
            b"prompt_tokens" => (0, &mut usage.prompt_tokens),
            b"completion_tokens" => (1, &mut usage.completion_tokens),
            b"total_tokens" => (2, &mut usage.total_tokens),
            b"prompt_tokens_details" => {
                first_time(&mut seen, 3)?;
                return c.null().then_some(());
            }
            b"completion_tokens_details" => {
                first_time(&mut seen, 4)?;
                return c.null().then_some(());
            }
            _ => return c.skip(),
        };
        first_time(&mut seen, field)?;
        *count = match c.null() {
            true => None,
            false => Some(c.u64()?),
        };
        Some(())
    })?;
    c.at_end().then_some(usage)
}

/// OpenAI's usage object, as chat and legacy completions report it.
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

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> TokenUsage {
        TokenUsage {
            prompt: u.prompt_tokens,
            completion: u.completion_tokens,
            total: u.total_tokens,
            cached: u.cached_tokens,
            reasoning: u.reasoning_tokens,
            cache_creation: None,
        }
    }
}

/// A number inside a details object (`{"cached_tokens": 3}`), read leniently.
pub(crate) fn detail<'de, D: serde::Deserializer<'de>>(d: D, name: &str) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?;
    Ok(v.and_then(|m| m.get(name).and_then(serde_json::Value::as_u64)))
}

pub(crate) fn cached_tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    detail(d, "cached_tokens")
}

pub(crate) fn reasoning_tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    detail(d, "reasoning_tokens")
}

/// A chunk of an OpenAI-style stream; `C` is the family's choice.
#[derive(Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>"))]
struct ChunkWire<'a, C> {
    #[serde(borrow, default, deserialize_with = "cow_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "cow_str")]
    model: Option<Cow<'a, str>>,
    #[serde(default = "Option::default")]
    choices: Option<Choices<C>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// A choice the chunk reader for the common case ([`json_cursor`](super::json_cursor)) can
/// read. `None` when it cannot (the default: the chunk is then read by serde).
pub(crate) trait FastChoice<'a>: Sized {
    fn read(_cursor: &mut Cursor<'a>) -> Option<Self> {
        None
    }
}

/// Reads a chunk as serde would, for the common case, or `None` (then serde reads it).
fn fast_chunk<'e, C: FastChoice<'e>>(text: &'e str) -> Option<ChunkWire<'e, C>> {
    let mut chunk = ChunkWire {
        id: None,
        model: None,
        choices: None,
        usage: None,
        error: None,
    };
    let mut seen = 0;
    let mut c = Cursor::new(text);
    c.object(|c, key| match key {
        b"id" => c.string_member(&mut seen, 0, &mut chunk.id),
        b"model" => c.string_member(&mut seen, 1, &mut chunk.model),
        b"choices" => {
            let mut choices = Choices::default();
            let listed = c.array_member(&mut seen, 2, |c| {
                let choice = C::read(c)?;
                match choices.first {
                    None => choices.first = Some(choice),
                    Some(_) => choices.rest.push(choice),
                }
                Some(())
            })?;
            chunk.choices = listed.then_some(choices);
            Some(())
        }
        // Usage (once a stream) and errors are left to serde.
        b"usage" => {
            first_time(&mut seen, 3)?;
            c.null().then_some(())
        }
        b"error" => {
            first_time(&mut seen, 4)?;
            c.null().then_some(())
        }
        _ => c.skip(),
    })?;
    c.at_end().then_some(chunk)
}

/// A chunk's choices, the first held inline: a chunk almost always has one, so reading it
/// allocates nothing.
pub(crate) struct Choices<C> {
    first: Option<C>,
    rest: Vec<C>,
}

impl<C> Default for Choices<C> {
    fn default() -> Self {
        Choices {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<'de, C: Deserialize<'de>> Deserialize<'de> for Choices<C> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Elements<C>(std::marker::PhantomData<C>);
        impl<'de, C: Deserialize<'de>> serde::de::Visitor<'de> for Elements<C> {
            type Value = Choices<C>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Choices<C>, A::Error> {
                let first = seq.next_element()?;
                let mut rest = Vec::new();
                if first.is_some() {
                    while let Some(c) = seq.next_element()? {
                        rest.push(c);
                    }
                }
                Ok(Choices { first, rest })
            }
        }
        d.deserialize_seq(Elements(std::marker::PhantomData))
    }
}

impl<C> IntoIterator for Choices<C> {
    type Item = C;
    type IntoIter = std::iter::Chain<std::option::IntoIter<C>, std::vec::IntoIter<C>>;
    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

/// What every OpenAI-style chunk stream (chat completions, legacy completions) does besides
/// assembling its choices: `[DONE]` and what follows it, the id and model of the first chunk
/// that names them, usage, an error a chunk carries, the first token's time, the text budget
/// and the tally of events.
pub(crate) struct ChunkStream {
    pub(crate) s: StreamState,
    /// Whether chunks are read by serde alone (tests compare both readers).
    serde_only: bool,
}

impl ChunkStream {
    pub(crate) fn new(cap: usize) -> Self {
        ChunkStream {
            s: StreamState::new(cap),
            serde_only: false,
        }
    }

    /// Chunks read by serde alone.
    #[cfg(test)]
    pub(crate) fn serde_only(mut self) -> Self {
        self.serde_only = true;
        self
    }

    /// The choices of the next event, read as `C`: `None` for `[DONE]`, what follows it, and
    /// an oversized or unreadable event (reported as not being `what`).
    pub(crate) fn choices<'e, C: Deserialize<'e> + FastChoice<'e>>(
        &mut self,
        data: &'e [u8],
        oversized: bool,
        what: &str,
    ) -> Option<Choices<C>> {
        // `[DONE]` ends the stream; what follows it is not read.
        if !self.s.tally.next(oversized) || self.s.ended {
            return None;
        }
        if data == b"[DONE]" {
            self.s.ended = true;
            return None;
        }
        let serde_only = self.serde_only;
        let quick = |text| (!serde_only).then(|| fast_chunk::<C>(text)).flatten();
        let chunk = match super::assemble::from_json_or::<ChunkWire<'e, C>>(data, quick) {
            Ok(chunk) => chunk,
            Err(e) => {
                self.s.tally.unreadable(what, e);
                return None;
            }
        };
        if self.s.facts.request_id.is_none() {
            self.s.facts.request_id = chunk.id.filter(|s| !s.is_empty()).map(|s| clip(&s));
        }
        if self.s.facts.model.is_none() {
            self.s.facts.model = chunk.model.filter(|s| !s.is_empty()).map(|s| clip(&s));
        }
        if let Some(usage) = chunk.usage {
            self.s.facts.usage = usage.into();
        }
        if let Some(error) = chunk.error {
            self.s.tally.carried_error(&error.to_string());
        }
        Some(chunk.choices.unwrap_or_default())
    }

    /// What the stream said: `value` (the assembled choices) as the message, cut to the cap.
    /// The stream ended with `[DONE]` or once a choice gave its finish reason.
    pub(crate) fn finish(mut self, value: &impl Serialize, finish_reasons: Vec<String>) -> BodyFacts {
        self.s.ended |= !finish_reasons.is_empty();
        self.s.facts.finish_reasons = finish_reasons;
        self.s.finish(value)
    }
}
/// Whether the reader for the common case reads `text` (else serde does).
#[cfg(test)]
pub(crate) fn reads_fast<'e, C: FastChoice<'e>>(text: &'e str) -> bool {
    fast_chunk::<C>(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::{usual_usage, Usage};
    use proptest::prelude::*;

    fn member() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
            "other",
        ]);
        let value = prop_oneof![
            (0u64..u64::MAX).prop_map(|n| n.to_string()),
            Just("null".to_string()),
            Just("-1".to_string()),
            Just("1.5".to_string()),
            Just("18446744073709551616".to_string()),
            Just(r#"{"cached_tokens":3}"#.to_string()),
            Just(r#""7""#.to_string()),
            Just("[1,]".to_string()),
        ];
        (key, value).prop_map(|(k, v)| format!("\"{k}\": {v}"))
    }

    proptest! {
        /// Whenever the quick read reads usage, serde reads the same.
        #[test]
        fn usage_reads_as_serde_reads_it(members in prop::collection::vec(member(), 0..6)) {
            let raw = format!("{{{}}}", members.join(","));
            if let Some(quick) = usual_usage(raw.as_bytes()) {
                let serde = serde_json::from_str::<Option<Usage>>(&raw).ok().flatten();
                prop_assert_eq!(Some(quick), serde, "{}", raw);
            }
        }
    }

    #[test]
    fn the_usual_usage_is_read_quickly() {
        let raw = br#"{"prompt_tokens":1000,"completion_tokens":20,"total_tokens":1020,"prompt_tokens_details":null}"#;
        let usage = usual_usage(raw).expect("the usual shape");
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
            (Some(1000), Some(20), Some(1020))
        );
        // Details with counts are left to serde.
        assert!(usual_usage(br#"{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":1}}"#).is_none());
        assert!(usual_usage(br#"{"prompt_tokens":1,"prompt_tokens":2}"#).is_none());
    }
}
