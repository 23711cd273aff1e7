//! What is kept out of the log: credentials found in logged text, replaced before the text is
//! chunked into records (on by default; [`LogConfigBuilder::redact_secrets`](crate::LogConfigBuilder::redact_secrets)).
//! Records say what was replaced, by kind, in [`LlmLogRecord::redactions`](crate::LlmLogRecord::redactions).

mod secrets;

pub use secrets::redact_secrets;
pub(crate) use secrets::{redact_secrets_in, secret_cut_at_the_end, segments_may_hold_secrets};
