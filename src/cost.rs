//! What an exchange cost: prices per model, and the arithmetic per API family.
//!
//! Prices are USD per million tokens, held exactly as micro-dollars per million tokens, so a
//! token costs an integer number of pico-dollars and no exchange ever rounds to zero. The last
//! response record of an exchange carries `CostUsd` when its model has a price (none, never 0,
//! when it has not) and `CostEstimated` when its tokens were estimated.
//!
//! - OpenAI-style families (chat, completions, responses, embeddings): `PromptTokens` include
//!   the cached ones, so `PromptTokens - CachedTokens` are billed at `input` and
//!   `CachedTokens` at `cached_input`; `CompletionTokens` (reasoning included) at `output`.
//! - Anthropic: `PromptTokens` (`input_tokens`) exclude cache reads and writes, so each is
//!   billed at its own rate: `input`, `cached_input`, `cache_write`, `output`.
//!
//! A missing `cached_input` or `cache_write` is billed at `input`.
//!
//! The built-in table ([`PriceTable::built_in`], `data/prices.json` in the crate, with its date
//! and source) covers current OpenAI, Azure OpenAI, Anthropic and Google models; the
//! operator's table ([`LogConfigBuilder::prices`](crate::LogConfigBuilder::prices), gateway
//! `--prices FILE`) is asked first. Lookup: the exact model name, then the name without a date
//! or version suffix (`gpt-4o-2024-08-06` is `gpt-4o`, `claude-sonnet-4-5-20250929` is
//! `claude-sonnet-4-5`), or without a `provider/` prefix; the response's model first (Azure
//! reports the real model behind a deployment), then the request's.
//!
//! ```
//! use tower_llm_log::cost::PriceTable;
//!
//! let table = PriceTable::from_json(r#"{"models": {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6}}}"#).unwrap();
//! let price = table.get("gpt-4o-mini-2024-07-18").unwrap();
//! assert_eq!(price.input, 150_000); // micro-dollars per million tokens
//! let err = PriceTable::from_json(r#"{"models": {"m": {"input": -1, "output": 1}}}"#).unwrap_err();
//! assert!(err.to_string().contains("\"m\"") && err.to_string().contains("input"));
//! ```

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::ApiFamily;

/// One model's prices, in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelPrice {
    /// Input (prompt) tokens.
    pub input: u64,
    /// Input tokens read from the provider's cache (else `input`).
    pub cached_input: Option<u64>,
    /// Input tokens written to the cache (Anthropic; else `input`).
    pub cache_write: Option<u64>,
    /// Output tokens (reasoning tokens are output tokens).
    pub output: u64,
}

/// Prices by model. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: HashMap<String, ModelPrice>,
    date: Option<String>,
    source: Option<String>,
}

/// A price file that cannot be used, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The file is not JSON of the expected shape.
    #[error("the price table is not valid: {0} (expected {{\"models\": {{\"<model>\": {{\"input\": 0.15, \"cached_input\": 0.075, \"cache_write\": 0.1875, \"output\": 0.6}}}}}})")]
    Shape(String),
    /// A price is negative, not a number, or finer than a micro-dollar per million tokens.
    #[error("the price of model {model:?}, field {field:?}, is {value}: {why}")]
    BadValue {
        /// The model.
        model: String,
        /// The field (`input`, `cached_input`, `cache_write`, `output`).
        field: &'static str,
        /// The value as written.
        value: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read the price file {path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        error: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWire {
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    source: Option<String>,
    models: HashMap<String, PriceWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceWire {
    input: serde_json::Value,
    #[serde(default)]
    cached_input: Option<serde_json::Value>,
    #[serde(default)]
    cache_write: Option<serde_json::Value>,
    output: serde_json::Value,
}

/// A price as written in a file: a number.
fn micro_value(model: &str, field: &'static str, v: &serde_json::Value) -> Result<u64, PriceError> {
    match v {
        serde_json::Value::Number(n) => micro(model, field, n),
        other => Err(PriceError::BadValue {
            model: model.to_string(),
            field,
            value: other.to_string(),
            why: "a price must be a number (USD per million tokens)",
        }),
    }
}

/// USD per million tokens as written, in micro-dollars per million tokens, exactly.
fn micro(model: &str, field: &'static str, n: &serde_json::Number) -> Result<u64, PriceError> {
    let bad = |why| PriceError::BadValue {
        model: model.to_string(),
        field,
        value: n.to_string(),
        why,
    };
    let text = n.to_string();
    if text.starts_with('-') {
        return Err(bad("prices cannot be negative"));
    }
    // Exact decimal arithmetic on the text: at most 6 decimals (a micro-dollar per million).
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f.trim_end_matches('0')),
        None => (text.as_str(), ""),
    };
    if text.contains(['e', 'E']) {
        let value = n.as_f64().ok_or_else(|| bad("not a number"))?;
        let scaled = value * 1e6;
        if !scaled.is_finite() || scaled > u64::MAX as f64 || (scaled - scaled.round()).abs() > 1e-6 {
            return Err(bad("finer than a micro-dollar per million tokens, or too large"));
        }
        return Ok(scaled.round() as u64);
    }
    if fraction.len() > 6 {
        return Err(bad("finer than a micro-dollar per million tokens would be lost"));
    }
    let whole: u64 = whole.parse().map_err(|_| bad("too large"))?;
    let fraction: u64 = format!("{fraction:0<6}")
        .parse()
        .map_err(|_| bad("not a number"))?;
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(|| bad("too large"))
}

impl PriceTable {
    /// The table shipped with the crate (`data/prices.json`).
    pub fn built_in() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| PriceTable::from_json(include_str!("../data/prices.json")).unwrap_or_default())
    }

    /// A table from JSON: `{"models": {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075,
    /// "output": 0.6}}}` (USD per million tokens; `cached_input` and `cache_write` optional;
    /// `date` and `source` strings allowed at the top).
    pub fn from_json(text: &str) -> Result<PriceTable, PriceError> {
        let wire: FileWire = serde_json::from_str(text).map_err(|e| PriceError::Shape(e.to_string()))?;
        let mut models = HashMap::with_capacity(wire.models.len());
        for (model, p) in wire.models {
            let price = ModelPrice {
                input: micro_value(&model, "input", &p.input)?,
                cached_input: p
                    .cached_input
                    .as_ref()
                    .map(|n| micro_value(&model, "cached_input", n))
                    .transpose()?,
                cache_write: p
                    .cache_write
                    .as_ref()
                    .map(|n| micro_value(&model, "cache_write", n))
                    .transpose()?,
                output: micro_value(&model, "output", &p.output)?,
            };
            models.insert(model, price);
        }
        Ok(PriceTable {
            models,
            date: wire.date,
            source: wire.source,
        })
    }

    /// A table from a JSON file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<PriceTable, PriceError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| PriceError::Io {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        PriceTable::from_json(&text)
    }

    /// Adds or replaces one model's price.
    pub fn insert(&mut self, model: impl Into<String>, price: ModelPrice) {
        self.models.insert(model.into(), price);
    }

    /// A price in USD per million tokens, checked like a file's.
    pub fn price(
        input: f64,
        cached_input: Option<f64>,
        cache_write: Option<f64>,
        output: f64,
    ) -> Result<ModelPrice, PriceError> {
        let n = |field: &'static str, v: f64| {
            serde_json::Number::from_f64(v)
                .ok_or_else(|| PriceError::BadValue {
                    model: String::new(),
                    field,
                    value: v.to_string(),
                    why: "not a number",
                })
                .and_then(|n| micro("", field, &n))
        };
        Ok(ModelPrice {
            input: n("input", input)?,
            cached_input: cached_input.map(|v| n("cached_input", v)).transpose()?,
            cache_write: cache_write.map(|v| n("cache_write", v)).transpose()?,
            output: n("output", output)?,
        })
    }

    /// The date the table's prices were taken, if it says.
    pub fn date(&self) -> Option<&str> {
        self.date.as_deref()
    }

    /// Where the table's prices come from, if it says.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// How many models it prices.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether it prices no model.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The price of `model`: its exact name, else its name without a date or version suffix
    /// or a `provider/` prefix.
    pub fn get(&self, model: &str) -> Option<&ModelPrice> {
        self.models
            .get(model)
            .or_else(|| base_names(model).find_map(|name| self.models.get(name)))
    }
}

/// `model` without its `provider/` prefix, then without a date or version suffix; a Bedrock
/// model id (`us.anthropic.claude-sonnet-4-20250514-v1:0`, or an ARN ending in one) as the
/// model's name (`claude-sonnet-4-20250514`), then without its date.
fn base_names(model: &str) -> impl Iterator<Item = &str> {
    let unprefixed = model.rsplit('/').next().filter(|m| m.len() < model.len());
    let name = unprefixed.unwrap_or(model);
    let bedrock = bedrock_name(name);
    unprefixed
        .into_iter()
        .chain(without_suffix(name))
        .chain(bedrock)
        .chain(bedrock.and_then(without_suffix))
}

/// The model name in a Bedrock model id: after its region and provider (`us.`, `anthropic.`),
/// before its version (`-v1:0`, `-v1`).
fn bedrock_name(id: &str) -> Option<&str> {
    const PROVIDERS: &[&str] = &[
        "anthropic",
        "amazon",
        "meta",
        "mistral",
        "cohere",
        "ai21",
        "deepseek",
        "openai",
        "qwen",
        "writer",
    ];
    // `:0`, the revision.
    let id = id
        .rsplit_once(':')
        .filter(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()))
        .map_or(id, |(id, _)| id);
    let (_, rest) = PROVIDERS.iter().find_map(|p| {
        let at = id.find(&format!("{p}."))?;
        (at == 0 || id.as_bytes()[at - 1] == b'.').then(|| (p, &id[at + p.len() + 1..]))
    })?;
    let b = rest.as_bytes();
    // `-v1`, `-v2`: the Bedrock version, not the model's.
    match rest.rfind("-v") {
        Some(v) if v + 2 < b.len() && b[v + 2..].iter().all(u8::is_ascii_digit) => Some(&rest[..v]),
        _ => Some(rest),
    }
}

/// `gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`, `claude-3-5-haiku@20241022`,
/// `gpt-4-0613`, `gpt-4o-latest`: the name before the date or version.
fn without_suffix(model: &str) -> Option<&str> {
    let b = model.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let n = b.len();
    if n > 11
        && b[n - 11] == b'-'
        && digits(&b[n - 10..n - 6])
        && b[n - 6] == b'-'
        && digits(&b[n - 5..n - 3])
        && b[n - 3] == b'-'
        && digits(&b[n - 2..])
    {
        return Some(&model[..n - 11]);
    }
    if n > 9 && matches!(b[n - 9], b'-' | b'@') && digits(&b[n - 8..]) {
        return Some(&model[..n - 9]);
    }
    if let Some(base) = model.strip_suffix("-latest") {
        return Some(base);
    }
    if n > 5 && b[n - 5] == b'-' && digits(&b[n - 4..]) {
        return Some(&model[..n - 5]);
    }
    None
}

/// Token counts as billed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Billed {
    pub(crate) prompt: Option<u64>,
    pub(crate) completion: Option<u64>,
    pub(crate) cached: Option<u64>,
    pub(crate) cache_creation: Option<u64>,
}

/// The cost in pico-dollars of `tokens` at `price`, by the family's arithmetic; `None`
/// when no tokens are known.
pub(crate) fn cost_pico(family: &ApiFamily, tokens: Billed, price: &ModelPrice) -> Option<u128> {
    if tokens.prompt.is_none() && tokens.completion.is_none() {
        return None;
    }
    let at = |n: Option<u64>, rate: u64| u128::from(n.unwrap_or(0)) * u128::from(rate);
    let cached_rate = price.cached_input.unwrap_or(price.input);
    let write_rate = price.cache_write.unwrap_or(price.input);
    let output = at(tokens.completion, price.output);
    Some(match family {
        // Input tokens exclude the cache's reads and writes, which are billed apart.
        ApiFamily::AnthropicMessages | ApiFamily::BedrockConverse => {
            at(tokens.prompt, price.input)
                + at(tokens.cached, cached_rate)
                + at(tokens.cache_creation, write_rate)
                + output
        }
        _ => {
            let prompt = tokens.prompt.unwrap_or(0);
            let cached = tokens.cached.unwrap_or(0).min(prompt);
            at(Some(prompt - cached), price.input) + at(Some(cached), cached_rate) + output
        }
    })
}

/// Pico-dollars as USD.
pub(crate) fn usd(pico: u128) -> f64 {
    // Whole dollars and the rest apart, so large sums keep their cents.
    (pico / 1_000_000_000_000) as f64 + (pico % 1_000_000_000_000) as f64 / 1e12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_model_ids_find_their_prices() {
        let t = PriceTable::built_in();
        for id in [
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic.claude-sonnet-4-20250514-v1:0",
            "global.anthropic.claude-sonnet-4-20250514-v1",
        ] {
            assert_eq!(
                t.get(id).map(|p| p.input),
                t.get("claude-sonnet-4").map(|p| p.input),
                "{id}"
            );
        }
        assert_eq!(bedrock_name("us.amazon.nova-micro-v1:0"), Some("nova-micro"));
        assert_eq!(bedrock_name("gpt-4.1-mini"), None, "a dot is not a provider");
        assert!(t.get("us.unknown.thing-v1:0").is_none());
    }

    #[test]
    fn the_built_in_table_parses_and_says_where_it_is_from() {
        let t = PriceTable::built_in();
        assert!(t.len() > 20);
        assert!(t.date().is_some() && t.source().is_some());
        assert_eq!(t.get("gpt-4o-mini").unwrap().input, 150_000);
        assert_eq!(t.get("gpt-4o-2024-08-06").unwrap().output, 10_000_000);
        assert_eq!(
            t.get("claude-sonnet-4-5-20250929").unwrap().cache_write,
            Some(3_750_000)
        );
        assert!(t.get("claude-3-5-haiku@20241022").is_some());
        assert!(t.get("models/gemini-2.5-flash").is_some());
        assert!(t.get("gpt-4-0613").is_some());
        assert!(t.get("my-own-model").is_none());
    }

    #[test]
    fn prices_are_exact_micro_dollars() {
        let t = PriceTable::from_json(
            r#"{"models":{"a":{"input":0.000001,"output":3},"b":{"input":1e-6,"output":0.1}}}"#,
        )
        .unwrap();
        assert_eq!(t.get("a").unwrap().input, 1);
        assert_eq!(t.get("b").unwrap().input, 1);
        assert_eq!(t.get("b").unwrap().output, 100_000);
        for bad in [
            r#"{"models":{"m":{"input":0.0000001,"output":1}}}"#,
            r#"{"models":{"m":{"input":"1","output":1}}}"#,
            r#"{"models":{"m":{"input":1}}}"#,
            r#"{"models":{"m":{"input":1,"output":1,"extra":2}}}"#,
            r#"{"prices":{}}"#,
        ] {
            assert!(PriceTable::from_json(bad).is_err(), "{bad}");
        }
        let err = PriceTable::from_json(r#"{"models":{"gpt-x":{"input":1,"output":-2}}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"the price of model "gpt-x", field "output", is -2: prices cannot be negative"#
        );
    }

    #[test]
    fn arithmetic_per_family() {
        let openai = ModelPrice {
            input: 2_500_000,
            cached_input: Some(1_250_000),
            cache_write: None,
            output: 10_000_000,
        };
        // 1,000 prompt tokens of which 400 cached, 200 output (reasoning included).
        let tokens = Billed {
            prompt: Some(1000),
            completion: Some(200),
            cached: Some(400),
            cache_creation: None,
        };
        let pico = cost_pico(&ApiFamily::ChatCompletions, tokens, &openai).unwrap();
        // 600 × $2.50 + 400 × $1.25 + 200 × $10 per million tokens: $0.004.
        assert_eq!(pico, 600 * 2_500_000 + 400 * 1_250_000 + 200 * 10_000_000u128);
        assert!((usd(pico) - 0.004).abs() < 1e-12);
        let anthropic = ModelPrice {
            input: 3_000_000,
            cached_input: Some(300_000),
            cache_write: Some(3_750_000),
            output: 15_000_000,
        };
        let tokens = Billed {
            prompt: Some(100),
            completion: Some(50),
            cached: Some(2000),
            cache_creation: Some(1000),
        };
        let pico = cost_pico(&ApiFamily::AnthropicMessages, tokens, &anthropic).unwrap();
        assert_eq!(
            pico,
            100 * 3_000_000 + 2000 * 300_000 + 1000 * 3_750_000 + 50 * 15_000_000u128
        );
        // One token of the cheapest model is not zero.
        let tiny = ModelPrice {
            input: 1,
            cached_input: None,
            cache_write: None,
            output: 0,
        };
        assert_eq!(
            cost_pico(
                &ApiFamily::Embeddings,
                Billed {
                    prompt: Some(1),
                    ..Billed::default()
                },
                &tiny
            ),
            Some(1)
        );
        assert_eq!(
            cost_pico(&ApiFamily::ChatCompletions, Billed::default(), &openai),
            None
        );
    }
}
