//! Token estimates (feature `tokenizer`): when an exchange ends without usage (a stream without
//! `include_usage`, a provider that omits it, a client that left early), prompt and completion
//! tokens are counted with the model's tokenizer, and the record says `tokens_estimated`.
//!
//! Known models are OpenAI's (`gpt-4o`, `gpt-4.1`, `gpt-5`, `o1`/`o3`/`o4`, `gpt-4`,
//! `gpt-3.5-turbo`, the `gpt-35-turbo` Azure deployment names, embeddings models, ...), by
//! tiktoken's table; other models get no estimate, never a guess.
//!
//! What is counted is the text of the logged message: the string values of its JSON (content,
//! text, arguments, ...), not its keys or its role and type names, so the estimate leaves out
//! the few tokens of per-message framing a provider adds. A message cut at the cap is counted as
//! far as it was kept and scaled up by its full size.

use serde_json::Value;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

use crate::api::TokenUsage;
use crate::capture::LoggedMessage;
use crate::ApiFamily;

/// Keys whose string values are structure, not text the model reads or writes.
const NOT_TEXT: &[&str] = &[
    "role",
    "type",
    "id",
    "call_id",
    "tool_call_id",
    "finish_reason",
    "signature",
    "status",
    "encoding",
    "cache_control",
];

fn bpe_for(model: &str) -> Option<&'static CoreBPE> {
    let name = model.rsplit('/').next().unwrap_or(model);
    Some(match get_tokenizer(name)? {
        Tokenizer::O200kBase => tiktoken_rs::o200k_base_singleton(),
        Tokenizer::O200kHarmony => tiktoken_rs::o200k_harmony_singleton(),
        Tokenizer::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        Tokenizer::P50kBase => tiktoken_rs::p50k_base_singleton(),
        Tokenizer::P50kEdit => tiktoken_rs::p50k_edit_singleton(),
        Tokenizer::R50kBase | Tokenizer::Gpt2 => tiktoken_rs::r50k_base_singleton(),
    })
}

/// Estimated counts for an exchange of `model`, or `None` when its tokenizer is unknown.
pub(crate) fn estimate(
    model: Option<&str>,
    family: &ApiFamily,
    prompt: Option<&LoggedMessage>,
    completion: &LoggedMessage,
) -> Option<TokenUsage> {
    let bpe = bpe_for(model?)?;
    let prompt = prompt.and_then(|p| count(bpe, p));
    let completion = match family {
        // Embeddings produce vectors, not tokens; the logged message is a summary.
        ApiFamily::Embeddings => Some(0),
        _ => count(bpe, completion),
    };
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    let total = match (prompt, completion) {
        (Some(p), Some(c)) => Some(p + c),
        _ => None,
    };
    Some(TokenUsage {
        prompt,
        completion,
        total,
        ..TokenUsage::default()
    })
}

/// Tokens in a logged message's text, scaled up when the message was cut; `None` when none of
/// a non-empty message was kept (a 0 cap, a body not decoded): there is nothing to count.
fn count(bpe: &CoreBPE, message: &LoggedMessage) -> Option<u64> {
    let bytes = message.to_bytes();
    let kept = bytes.len() as u64;
    if kept == 0 {
        return (message.total() == 0).then_some(0);
    }
    let text = String::from_utf8_lossy(&bytes);
    let tokens = match serde_json::from_str::<Value>(&text) {
        Ok(value) => {
            let mut texts = String::new();
            collect_text(&value, None, &mut texts);
            bpe.encode_ordinary(&texts).len() as u64
        }
        // Cut JSON: count all of it (keys included), the best there is.
        Err(_) => bpe.encode_ordinary(&text).len() as u64,
    };
    Some(if message.is_truncated() && message.total() > kept {
        ((tokens as f64) * (message.total() as f64 / kept as f64)).round() as u64
    } else {
        tokens
    })
}

fn collect_text(value: &Value, key: Option<&str>, out: &mut String) {
    match value {
        Value::String(s) if !key.is_some_and(|k| NOT_TEXT.contains(&k)) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, key, out)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| collect_text(v, Some(k.as_str()), out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(text: &str) -> LoggedMessage {
        LoggedMessage::from_bytes(Bytes::copy_from_slice(text.as_bytes()), text.len() as u64)
    }

    #[test]
    fn known_models_are_estimated_from_their_text() {
        let prompt = message(r#"[{"role":"user","content":"Hello, world!"}]"#);
        let completion = message(
            r#"[{"index":0,"message":{"role":"assistant","content":"Hi there."},"finish_reason":"stop"}]"#,
        );
        let u = estimate(
            Some("gpt-4o-mini"),
            &ApiFamily::ChatCompletions,
            Some(&prompt),
            &completion,
        )
        .unwrap();
        // o200k: "Hello, world!" is 4 tokens, "Hi there." 3.
        assert_eq!((u.prompt, u.completion, u.total), (Some(4), Some(3), Some(7)));
        assert!(estimate(
            Some("claude-sonnet-4-5"),
            &ApiFamily::AnthropicMessages,
            None,
            &completion
        )
        .is_none());
        assert!(estimate(None, &ApiFamily::ChatCompletions, None, &completion).is_none());
        // Nothing kept (a 0 cap): nothing to count, not 0 tokens.
        let unkept = LoggedMessage::not_kept(500);
        let u = estimate(
            Some("gpt-4o"),
            &ApiFamily::ChatCompletions,
            Some(&unkept),
            &completion,
        )
        .unwrap();
        assert_eq!((u.prompt, u.completion, u.total), (None, Some(3), None));
        assert!(estimate(
            Some("gpt-4o"),
            &ApiFamily::ChatCompletions,
            Some(&unkept),
            &unkept
        )
        .is_none());
    }

    #[test]
    fn a_cut_message_is_scaled_up() {
        let mut m = message("word word word word");
        m.total = 38;
        m.truncated = true;
        let u = estimate(Some("gpt-4"), &ApiFamily::Completions, None, &m).unwrap();
        // Not JSON (cut): 4 tokens in the 19 bytes kept, scaled to 38.
        assert_eq!(u.completion, Some(8));
        assert_eq!(u.prompt, None);
    }
}
