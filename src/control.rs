//! Per-request control of what is logged, and content sampling.
//!
//! Server code (an auth layer that knows the tenant, a route) sets a [`LogControl`] as a
//! request extension; clients may send the `x-llm-log` header (`metadata`, `no-prompt`,
//! `no-completion`, `off`) when the operator allows it
//! ([`LogConfigBuilder::allow_client_log_control`](crate::LogConfigBuilder::allow_client_log_control)):
//! by default a client cannot hide its usage from the operator. The header never reaches the
//! inner service. The stricter of the two wins.
//!
//! ```
//! use tower_llm_log::LogControl;
//!
//! // In an auth middleware, for a tenant whose prompts must not be stored:
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(LogControl::Metadata);
//! assert_eq!(LogControl::from_header_value("no-prompt"), Some(LogControl::NoPrompt));
//! ```
//!
//! Content sampling ([`LogConfigBuilder::content_sample_rate`](crate::LogConfigBuilder::content_sample_rate))
//! keeps the content of a share of exchanges, chosen by a hash of the correlation id (so both
//! sides, all chunks and all replicas agree), and always of exchanges that failed. Every
//! exchange still logs its metadata and tokens: usage is never sampled away.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::LogConfig;

/// How much of one exchange to log. Insert it as a request extension; the header a client may
/// send maps to the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogControl {
    /// Records with content, within the caps (the default).
    Full,
    /// Records without the prompt.
    NoPrompt,
    /// Records without the completion.
    NoCompletion,
    /// Records with metadata and tokens but no content.
    Metadata,
    /// No records; the exchange is counted in
    /// [`LogStats::exchanges_not_logged`](crate::LogStats::exchanges_not_logged).
    Off,
}

impl LogControl {
    /// The value of an `x-llm-log` header: `full`, `metadata`, `no-prompt`, `no-completion`
    /// or `off` (any case, surrounding spaces allowed).
    pub fn from_header_value(value: &str) -> Option<Self> {
        let value = value.trim();
        [
            ("full", LogControl::Full),
            ("metadata", LogControl::Metadata),
            ("no-prompt", LogControl::NoPrompt),
            ("no-completion", LogControl::NoCompletion),
            ("off", LogControl::Off),
        ]
        .into_iter()
        .find(|(name, _)| value.eq_ignore_ascii_case(name))
        .map(|(_, control)| control)
    }

    fn omits(self) -> (bool, bool) {
        match self {
            LogControl::Full => (false, false),
            LogControl::NoPrompt => (true, false),
            LogControl::NoCompletion => (false, true),
            LogControl::Metadata | LogControl::Off => (true, true),
        }
    }
}

/// Why a record carries no content (`ContentOmitted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentOmitted {
    /// Server code asked for metadata only ([`LogControl`] extension).
    Metadata,
    /// The client asked for it (`x-llm-log` header, allowed by the operator).
    Client,
    /// Content sampling left this exchange out.
    Sampled,
    /// The cap for this side is 0.
    CapZero,
    /// A [`Redactor`](crate::privacy::Redactor) failed on this message (panicked or asked for
    /// an edit that would break it): its content is withheld rather than logged unredacted.
    RedactorFailed,
}

impl ContentOmitted {
    /// The name written in records (`metadata`, `client`, `sampled`, `cap_zero`,
    /// `redactor_failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContentOmitted::Metadata => "metadata",
            ContentOmitted::Client => "client",
            ContentOmitted::Sampled => "sampled",
            ContentOmitted::CapZero => "cap_zero",
            ContentOmitted::RedactorFailed => "redactor_failed",
        }
    }
}

/// What one exchange logs, decided when its request arrives.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContentPlan {
    pub(crate) prompt: Option<ContentOmitted>,
    pub(crate) completion: Option<ContentOmitted>,
    /// Content is kept only if the exchange fails.
    pub(crate) sampled_out: bool,
    /// Something to say on the request record (an ignored or unknown header value).
    pub(crate) note: Option<String>,
}

/// What to log of a request: `None` when nothing (it is counted); removes the control header.
pub(crate) fn plan(
    config: &LogConfig,
    headers: &mut HeaderMap,
    extension: Option<LogControl>,
    correlation_id: &str,
) -> Option<ContentPlan> {
    let mut plan = ContentPlan::default();
    let (mut prompt, mut completion) = (None, None);
    if let Some(control) = extension {
        if control == LogControl::Off {
            headers.remove(&config.log_control_header);
            return None;
        }
        let (p, c) = control.omits();
        prompt = p.then_some(ContentOmitted::Metadata);
        completion = c.then_some(ContentOmitted::Metadata);
    }
    if headers.contains_key(&config.log_control_header) {
        let name = config.log_control_header.as_str();
        // Every value counts (a client sending `full` and `off` gets `off`), the strictest wins.
        let mut controls = Vec::new();
        let mut unknown = false;
        for value in headers.get_all(&config.log_control_header) {
            match value.to_str().ok().and_then(LogControl::from_header_value) {
                Some(control) => controls.push(control),
                None => unknown = true,
            }
        }
        headers.remove(&config.log_control_header);
        if !config.allow_client_log_control {
            plan.note = Some(format!(
                "the {name} header was ignored: clients may not control logging here (allow_client_log_control)"
            ));
        } else {
            if unknown {
                plan.note = Some(format!(
                    "a {name} header value is not one of full, metadata, no-prompt, no-completion, off; it was ignored"
                ));
            }
            if controls.contains(&LogControl::Off) {
                return None;
            }
            for control in controls {
                let (p, c) = control.omits();
                prompt = prompt.or(p.then_some(ContentOmitted::Client));
                completion = completion.or(c.then_some(ContentOmitted::Client));
            }
        }
    }
    plan.prompt = prompt.or((config.prompt_bytes == 0).then_some(ContentOmitted::CapZero));
    plan.completion = completion.or((config.completion_bytes == 0).then_some(ContentOmitted::CapZero));
    plan.sampled_out =
        config.content_sample_rate < 1.0 && !sampled_in(correlation_id, config.content_sample_rate);
    Some(plan)
}

/// Whether an exchange's content is kept at `rate`: the first 8 bytes of the SHA-256 of its
/// correlation id, as a fraction of 2^64, below the rate. The same id gives the same answer in
/// every process.
pub fn sampled_in(correlation_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let digest = Sha256::digest(correlation_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let point = u64::from_be_bytes(first) as f64 / 18_446_744_073_709_551_616.0;
    point < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_about_the_rate_and_agrees_with_itself() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("req-{i}")).collect();
        let kept = ids.iter().filter(|id| sampled_in(id, 0.1)).count();
        // 10% of 20,000 is 2,000; the binomial's standard deviation is 42, so ±300 is 7 sigma.
        assert!((1_700..=2_300).contains(&kept), "{kept}");
        for id in &ids[..100] {
            assert_eq!(sampled_in(id, 0.1), sampled_in(id, 0.1));
            // A lower rate keeps a subset of a higher one.
            assert!(!sampled_in(id, 0.05) || sampled_in(id, 0.1));
        }
        assert!(ids.iter().all(|id| sampled_in(id, 1.0)));
        assert!(!ids.iter().any(|id| sampled_in(id, 0.0)));
    }

    #[test]
    fn header_values() {
        assert_eq!(LogControl::from_header_value(" OFF "), Some(LogControl::Off));
        assert_eq!(
            LogControl::from_header_value("metadata"),
            Some(LogControl::Metadata)
        );
        assert_eq!(
            LogControl::from_header_value("no-completion"),
            Some(LogControl::NoCompletion)
        );
        assert_eq!(LogControl::from_header_value("nothing"), None);
    }
}
