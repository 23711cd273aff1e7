//! What OpenAI's families share: the scalar slots of their response bodies, the reading of a
//! response (id, model, finish reasons, usage) and the usage object with its details.

use serde::Deserialize;

use super::assemble::clip;
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
        .map(|s| clip(&s))
        .collect();
    if let Some(u) = scanned::parsed::<Usage>(scan, USAGE, "usage", facts) {
        facts.usage = u.into();
    }
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
