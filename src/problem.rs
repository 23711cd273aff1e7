//! What was wrong with one side of an exchange: a kind and a sentence.
//!
//! Records carry problems twice: as the `Error` text column of Azure's schema (each problem's
//! sentence, joined with `; `) and as `ErrorKinds`, the kinds alone, for filtering and counting
//! without parsing text.
//!
//! ```
//! use tower_llm_log::api::{Problem, ProblemKind};
//!
//! let p = Problem::new(ProblemKind::Stream, "event 3 is not JSON");
//! assert_eq!(p.to_string(), "event 3 is not JSON");
//! // A reader of one's own may push plain text: it is a body problem.
//! let q: Problem = "no \"contents\" value".into();
//! assert_eq!(q.kind(), ProblemKind::Body);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The body is not what its family sends: invalid JSON, a missing or unreadable value.
    Body,
    /// A stream: an event that could not be read, an error the stream carried, an end without
    /// its final event, a framing problem (a bad checksum, a message cut short).
    Stream,
    /// The body did not arrive whole: it failed, was dropped before its end, or the inner
    /// service failed or never answered.
    Cut,
    /// The body was not decoded: an unknown or undecodable `Content-Encoding`, or decoding off.
    Encoding,
    /// The message was not valid UTF-8; bad bytes were replaced with U+FFFD.
    InvalidUtf8,
    /// No reader knows the family a recognizer named.
    UnknownFamily,
    /// Per-request control: a control header ignored or not understood.
    Control,
    /// A redactor of the user's failed; the content was withheld.
    Redactor,
    /// The call failed as its body says, whatever its status: a JSON-RPC error, an MCP tool
    /// result with `isError`.
    Failed,
    /// A protocol rule was broken between request and response: a JSON-RPC response whose id
    /// answers no request of the exchange, a stream that ended before its response.
    Protocol,
}

impl ProblemKind {
    /// The name in logs, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Body => "body",
            ProblemKind::Stream => "stream",
            ProblemKind::Cut => "cut",
            ProblemKind::Encoding => "encoding",
            ProblemKind::InvalidUtf8 => "invalid_utf8",
            ProblemKind::UnknownFamily => "unknown_family",
            ProblemKind::Control => "control",
            ProblemKind::Redactor => "redactor",
            ProblemKind::Failed => "failed",
            ProblemKind::Protocol => "protocol",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem: its kind, and a sentence saying what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    kind: ProblemKind,
    detail: String,
}

impl Problem {
    /// A problem of `kind`.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            detail: detail.into(),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The sentence.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub(crate) fn detail_mut(&mut self) -> &mut String {
        &mut self.detail
    }

    /// The same problem, its sentence prefixed (`request: ...`).
    pub(crate) fn prefixed(mut self, prefix: &str) -> Self {
        self.detail = format!("{prefix}: {}", self.detail);
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl From<String> for Problem {
    /// Plain text from a reader: a [`ProblemKind::Body`] problem.
    fn from(detail: String) -> Self {
        Problem::new(ProblemKind::Body, detail)
    }
}

impl From<&str> for Problem {
    /// Plain text from a reader: a [`ProblemKind::Body`] problem.
    fn from(detail: &str) -> Self {
        Problem::new(ProblemKind::Body, detail)
    }
}

impl PartialEq<str> for Problem {
    /// A problem equals text when its sentence does, whatever its kind.
    fn eq(&self, other: &str) -> bool {
        self.detail == other
    }
}

impl PartialEq<&str> for Problem {
    fn eq(&self, other: &&str) -> bool {
        self.detail == *other
    }
}
