//! What is kept out of the log:
//!
//! - credentials found in logged text, replaced before the text is chunked into records (on by
//!   default; [`LogConfigBuilder::redact_secrets`](crate::LogConfigBuilder::redact_secrets));
//! - base64 media (images, audio, files), replaced by a placeholder as the body streams past
//!   (on by default; [`LogConfigBuilder::media_inline_bytes`](crate::LogConfigBuilder::media_inline_bytes)).
//!
//! - personal data (opt-in, [`LogConfigBuilder::redact_pii`](crate::LogConfigBuilder::redact_pii));
//! - whatever a [`Redactor`] of one's own finds ([`LlmLogLayer::with_redactor`](crate::LlmLogLayer::with_redactor)).
//!
//! All of it works on the logged text of both sides (JSON bodies, streams' assembled
//! completions, error bodies), before it is chunked; edits stay inside JSON string values, so
//! a message that was valid JSON stays so. The traffic is never touched.
//!
//! Records say what was replaced, by kind, in [`LlmLogRecord::redactions`](crate::LlmLogRecord::redactions),
//! and how many payloads were elided in [`LlmLogRecord::media_elided`](crate::LlmLogRecord::media_elided).

mod edit;
mod media;
mod pii;
mod secrets;

pub(crate) use edit::{apply_edits, check_edits};
pub use edit::{Edit, Redactor};
pub(crate) use media::MediaElider;
pub use media::{elide_media, DEFAULT_MEDIA_INLINE_BYTES};
pub(crate) use pii::HashKey;
pub use pii::{find_pii, PiiFound};
pub use secrets::redact_secrets;
pub(crate) use secrets::{redact_secrets_in, secret_cut_at_the_end, segments_may_hold_secrets};
