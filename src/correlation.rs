//! Correlation ids: taken from a request header or generated, put in the request's extensions.
//!
//! ```
//! use axum::{routing::post, Extension, Router};
//! use tower_llm_log::{CorrelationId, LlmLogLayer, MemorySink};
//!
//! async fn handler(Extension(id): Extension<CorrelationId>) -> String {
//!     format!("logged as {id}")
//! }
//!
//! let app: Router = Router::new()
//!     .route("/v1/chat/completions", post(handler))
//!     .layer(LlmLogLayer::new(MemorySink::new()));
//! ```

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};

/// The longest header value accepted as a correlation id; a longer one is replaced.
const MAX_LEN: usize = 256;

/// The id joining an exchange's request and response records. The layer puts it in the request's
/// extensions, so the inner service can log it or pass it upstream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CorrelationId(Arc<str>);

impl CorrelationId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A new unique id: a UUID version 7, so ids sort by creation time.
    pub fn generate() -> Self {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        CorrelationId(Arc::from(
            &*uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text),
        ))
    }

    /// The id in header `name` when it holds visible ASCII of at most 256 bytes, else a new one.
    pub(crate) fn from_headers(headers: &HeaderMap, name: &HeaderName) -> Self {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_LEN)
            .map(|v| CorrelationId(v.into()))
            .unwrap_or_else(Self::generate)
    }
}

/// The trace and parent span ids of a W3C `traceparent` header
/// (`00-{32 hex trace id}-{16 hex span id}-{2 hex flags}`), if it is well formed and not all zeros.
pub(crate) fn trace_parent(headers: &HeaderMap) -> Option<(String, String)> {
    static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    let value = headers.get(&TRACEPARENT)?.to_str().ok()?.trim();
    let mut parts = value.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0');
    valid.then(|| (trace.to_string(), span.to_string()))
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id is text: records compare, print and serialize it as a string.
impl std::ops::Deref for CorrelationId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CorrelationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for CorrelationId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for CorrelationId {
    fn from(id: &str) -> Self {
        CorrelationId(id.into())
    }
}

impl From<String> for CorrelationId {
    fn from(id: String) -> Self {
        CorrelationId(id.into())
    }
}

impl From<CorrelationId> for String {
    fn from(id: CorrelationId) -> Self {
        id.0.to_string()
    }
}

impl PartialEq<str> for CorrelationId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for CorrelationId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for CorrelationId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<CorrelationId> for str {
    fn eq(&self, other: &CorrelationId) -> bool {
        self == &*other.0
    }
}

impl PartialEq<CorrelationId> for &str {
    fn eq(&self, other: &CorrelationId) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<CorrelationId> for String {
    fn eq(&self, other: &CorrelationId) -> bool {
        **self == *other.0
    }
}

impl serde::Serialize for CorrelationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for CorrelationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(CorrelationId::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_value_is_used_when_sane() {
        let name = HeaderName::from_static("x-request-id");
        let mut h = HeaderMap::new();
        h.insert(&name, "abc-123".parse().unwrap());
        assert_eq!(CorrelationId::from_headers(&h, &name).as_str(), "abc-123");
        h.insert(&name, "x".repeat(300).parse().unwrap());
        assert_eq!(CorrelationId::from_headers(&h, &name).as_str().len(), 36);
        h.insert(&name, http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        assert_eq!(CorrelationId::from_headers(&h, &name).as_str().len(), 36);
    }

    #[test]
    fn traceparent_is_parsed_when_well_formed() {
        let mut h = HeaderMap::new();
        assert_eq!(trace_parent(&h), None);
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            trace_parent(&h),
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into()
            ))
        );
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            h.insert("traceparent", bad.parse().unwrap());
            assert_eq!(trace_parent(&h), None, "{bad}");
        }
    }

    #[test]
    fn generated_ids_are_unique_and_time_ordered() {
        let ids: Vec<String> = (0..1000).map(|_| CorrelationId::generate().to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
        assert_eq!(sorted, ids, "ids sort in creation order");
    }
}
