//! Who made an exchange: the `Dimensions` on every record of it.
//!
//! Dimensions come from sources the operator names in the configuration
//! ([`LogConfigBuilder::dimension`](crate::LogConfigBuilder::dimension)): request headers, a
//! trusted `X-Forwarded-For`, the client address the server put in the request's extensions,
//! or any function of the request head; from a [`Dimensions`] request extension that server
//! code (an auth layer that knows the tenant) inserts; and automatically:
//!
//! - `api_key`: a fingerprint of the credential the request carried (`Authorization: Bearer`,
//!   `api-key`, `x-api-key`, `x-goog-api-key`): the first 16 hex digits of HMAC-SHA256 of it,
//!   never the key itself;
//! - `end_user`: the end user the request body names (OpenAI's `user` or `safety_identifier`,
//!   Anthropic's `metadata.user_id`), read by the scanner as the body passes.
//!
//! A hostile client cannot bloat or forge records with them: at most
//! [`MAX_DIMENSIONS`] per exchange (server code's first, then the configured sources, then the
//! automatic ones), names of at most 64 bytes of letters, digits, `_`, `.` and `-`, values cut
//! at [`MAX_DIMENSION_VALUE`] bytes with control characters written as `\u{..}` escapes.
//!
//! ```
//! use tower_llm_log::{DimensionSource, Dimensions, LogConfig};
//!
//! let config = LogConfig::builder()
//!     .dimension("user", DimensionSource::header("x-user-id"))
//!     .dimension("team", DimensionSource::header("x-team"))
//!     .build()
//!     .unwrap();
//! # let _ = config;
//! // In an auth middleware:
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(Dimensions::new().with("tenant", "acme"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

/// The most dimensions on one exchange.
pub const MAX_DIMENSIONS: usize = 16;
/// The longest dimension value kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_DIMENSION_VALUE: usize = 256;
/// The longest dimension name, in bytes.
pub const MAX_DIMENSION_NAME: usize = 64;

/// The key of the `api_key` fingerprint when the operator sets none. Fingerprints made with it
/// are stable across processes and versions; set a secret one with
/// [`LogConfigBuilder::api_key_fingerprint_key`](crate::LogConfigBuilder::api_key_fingerprint_key)
/// so that nobody holding a list of keys can match them against the log.
pub const DEFAULT_FINGERPRINT_KEY: &[u8] = b"tower-llm-log api_key fingerprint v1";

/// Dimensions server code attaches to a request (insert as a request extension); merged into
/// the exchange's, before the configured sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dimensions(BTreeMap<String, String>);

impl Dimensions {
    /// None yet.
    pub fn new() -> Self {
        Dimensions::default()
    }

    /// With `name` = `value` (limits apply when they are merged).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Adds `name` = `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// The entries, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A function of the request head giving a dimension's value.
pub type FromRequest = Arc<dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync>;

/// Where a configured dimension's value comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum DimensionSource {
    /// A request header (its first value).
    Header(String),
    /// The first address of `X-Forwarded-For`: only behind a proxy the operator trusts to set it.
    ForwardedFor,
    /// The client's address the server put in the request's extensions: a
    /// `std::net::SocketAddr` (the gateway example does), or use [`DimensionSource::from_request`]
    /// for axum's `ConnectInfo`.
    ClientAddress,
    /// Any function of the request head.
    FromRequest(FromRequest),
}

impl DimensionSource {
    /// A request header.
    pub fn header(name: impl Into<String>) -> Self {
        DimensionSource::Header(name.into())
    }

    /// The first address of `X-Forwarded-For` (trusted proxies only).
    pub fn forwarded_for() -> Self {
        DimensionSource::ForwardedFor
    }

    /// The client's `SocketAddr` (its IP address) from the request's extensions.
    pub fn client_address() -> Self {
        DimensionSource::ClientAddress
    }

    /// Any function of the request head, e.g. axum's `ConnectInfo`:
    ///
    /// ```
    /// use tower_llm_log::DimensionSource;
    ///
    /// let client = DimensionSource::from_request(|head| {
    ///     head.extensions
    ///         .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    ///         .map(|info| info.0.ip().to_string())
    /// });
    /// # let _ = client;
    /// ```
    pub fn from_request<F>(f: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    {
        DimensionSource::FromRequest(Arc::new(f))
    }

    /// Parses the gateway's `header:NAME`, `forwarded-for` or `client-address`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "forwarded-for" => Some(DimensionSource::ForwardedFor),
            "client-address" => Some(DimensionSource::ClientAddress),
            _ => text
                .strip_prefix("header:")
                .filter(|name| HeaderName::from_bytes(name.as_bytes()).is_ok())
                .map(DimensionSource::header),
        }
    }
}

impl fmt::Debug for DimensionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimensionSource::Header(name) => write!(f, "Header({name:?})"),
            DimensionSource::ForwardedFor => f.write_str("ForwardedFor"),
            DimensionSource::ClientAddress => f.write_str("ClientAddress"),
            DimensionSource::FromRequest(_) => f.write_str("FromRequest(..)"),
        }
    }
}

/// A configured source, checked.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    Header(HeaderName),
    ForwardedFor,
    ClientAddress,
    FromRequest(FromRequestDebug),
}

/// A [`FromRequest`] that prints as a placeholder.
#[derive(Clone)]
pub(crate) struct FromRequestDebug(pub(crate) FromRequest);

impl fmt::Debug for FromRequestDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

impl Source {
    pub(crate) fn resolve(source: DimensionSource) -> Result<Source, String> {
        Ok(match source {
            DimensionSource::Header(name) => {
                Source::Header(HeaderName::from_bytes(name.as_bytes()).map_err(|_| name)?)
            }
            DimensionSource::ForwardedFor => Source::ForwardedFor,
            DimensionSource::ClientAddress => Source::ClientAddress,
            DimensionSource::FromRequest(f) => Source::FromRequest(FromRequestDebug(f)),
        })
    }

    fn value(&self, parts: &http::request::Parts) -> Option<String> {
        match self {
            Source::Header(name) => header_text(&parts.headers, name),
            Source::ForwardedFor => header_text(&parts.headers, &HeaderName::from_static("x-forwarded-for"))
                .and_then(|v| v.split(',').next().map(|s| s.trim().to_string()))
                .filter(|s| !s.is_empty()),
            Source::ClientAddress => parts.extensions.get::<SocketAddr>().map(|a| a.ip().to_string()),
            Source::FromRequest(f) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (f.0)(parts)))
                .ok()
                .flatten(),
        }
    }
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let value = headers.get(name)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// Whether a dimension name is acceptable.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DIMENSION_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A value within the limits: control characters as `\u{..}`, cut at [`MAX_DIMENSION_VALUE`]
/// bytes at a character boundary.
pub(crate) fn bounded_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_DIMENSION_VALUE));
    for c in value.chars() {
        let before = out.len();
        if c.is_control() {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
        if out.len() > MAX_DIMENSION_VALUE {
            out.truncate(before);
            break;
        }
    }
    out
}

/// The dimensions of one exchange, within the limits.
#[derive(Debug, Default, Clone)]
pub(crate) struct ExchangeDimensions(pub(crate) BTreeMap<String, String>);

impl ExchangeDimensions {
    pub(crate) fn add(&mut self, name: &str, value: &str) {
        add_dimension(&mut self.0, name, value);
    }
}

/// Adds `name` = `value` unless the name is taken, invalid, or the map has its
/// [`MAX_DIMENSIONS`] already.
pub(crate) fn add_dimension(map: &mut BTreeMap<String, String>, name: &str, value: &str) {
    if map.len() >= MAX_DIMENSIONS || !valid_name(name) || map.contains_key(name) || value.is_empty() {
        return;
    }
    map.insert(name.to_string(), bounded_value(value));
}

/// The dimensions of a request: server code's, the configured ones, then `api_key`.
pub(crate) fn collect(
    parts: &http::request::Parts,
    configured: &[(String, Source)],
    fingerprint_key: &crate::privacy::HashKey,
) -> ExchangeDimensions {
    let mut dims = ExchangeDimensions::default();
    if let Some(given) = parts.extensions.get::<Dimensions>() {
        for (name, value) in given.iter() {
            dims.add(name, value);
        }
    }
    for (name, source) in configured {
        if let Some(value) = source.value(parts) {
            dims.add(name, &value);
        }
    }
    if let Some(key) = credential(&parts.headers) {
        dims.add("api_key", &fingerprint_key.hex16(key));
    }
    dims
}

/// The credential a request carries, if any.
fn credential(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        let value = auth.as_bytes();
        let token = match value.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => &value[7..],
            _ => value,
        };
        let token = token.trim_ascii();
        if !token.is_empty() {
            return Some(token);
        }
    }
    // Header names built once: looking a header up by `&str` parses the name each time.
    static KEY_HEADERS: [HeaderName; 3] = [
        HeaderName::from_static("api-key"),
        HeaderName::from_static("x-api-key"),
        HeaderName::from_static("x-goog-api-key"),
    ];
    KEY_HEADERS
        .iter()
        .find_map(|name| headers.get(name))
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|v| !v.is_empty())
}

/// The first 16 hex digits of HMAC-SHA256(key, credential).
pub fn fingerprint(key: &[u8], credential: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(16);
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) {
        mac.update(credential);
        for b in &mac.finalize().into_bytes()[..8] {
            let _ = write!(out, "{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_key() -> crate::privacy::HashKey {
        crate::privacy::HashKey::new(DEFAULT_FINGERPRINT_KEY.to_vec())
    }

    fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut req = http::Request::post("/v1/chat/completions");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_key_is_fingerprinted_never_kept() {
        let key = "sk-proj-abcdefghijklmnopqrstuvwx0123";
        for header in [
            ("authorization", format!("Bearer {key}")),
            ("api-key", key.to_string()),
            ("x-api-key", key.to_string()),
        ] {
            let dims = collect(&parts(&[(header.0, &header.1)]), &[], &default_key());
            let fp = &dims.0["api_key"];
            assert_eq!(fp.len(), 16);
            assert_eq!(fp, &fingerprint(DEFAULT_FINGERPRINT_KEY, key.as_bytes()));
            assert!(!fp.contains("abcdef"));
        }
        assert_ne!(fingerprint(b"one", b"k"), fingerprint(b"two", b"k"));
    }

    #[test]
    fn hostile_values_stay_within_the_limits() {
        let long = "é".repeat(1000);
        let configured: Vec<(String, Source)> = (0..40)
            .map(|i| (format!("d{i}"), Source::Header(HeaderName::from_static("x-user"))))
            .collect();
        let dims = collect(&parts(&[("x-user", &long)]), &configured, &default_key());
        assert_eq!(dims.0.len(), MAX_DIMENSIONS);
        assert!(dims.0.values().all(|v| v.len() <= MAX_DIMENSION_VALUE));
        assert_eq!(bounded_value("a\nb\u{1b}[31m"), "a\\u{a}b\\u{1b}[31m");
        assert!(!valid_name("bad name") && !valid_name("") && valid_name("team.id"));
    }

    #[test]
    fn server_code_comes_first_then_configured_then_automatic() {
        let mut p = parts(&[
            ("x-user", "from-header"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
        ]);
        p.extensions.insert(Dimensions::new().with("user", "from-auth"));
        p.extensions.insert(SocketAddr::from(([127, 0, 0, 1], 5000)));
        let configured = vec![
            (
                "user".to_string(),
                Source::Header(HeaderName::from_static("x-user")),
            ),
            ("client".to_string(), Source::ForwardedFor),
            ("peer".to_string(), Source::ClientAddress),
        ];
        let dims = collect(&p, &configured, &default_key());
        assert_eq!(dims.0["user"], "from-auth");
        assert_eq!(dims.0["client"], "203.0.113.9");
        assert_eq!(dims.0["peer"], "127.0.0.1");
        assert!(!dims.0.contains_key("api_key"));
        assert!(DimensionSource::parse("header:x-user-id").is_some());
        assert!(DimensionSource::parse("header:bad name").is_none());
        assert!(DimensionSource::parse("cookie:x").is_none());
    }
}
