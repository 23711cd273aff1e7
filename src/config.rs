//! What the layer logs and how: caps, chunk size, correlation headers.
//!
//! ```
//! use tower_llm_log::LogConfig;
//!
//! let config = LogConfig::builder()
//!     .prompt_bytes(262_144)
//!     .completion_bytes(262_144)
//!     .build()
//!     .expect("valid configuration");
//! assert_eq!(config.chunk_bytes(), 32_768);
//!
//! // Out-of-range values are an error, never silently clamped.
//! let err = LogConfig::builder().prompt_bytes(3 << 20).build().unwrap_err();
//! assert!(err.to_string().contains("prompt_bytes"));
//! ```

use http::HeaderName;

/// The largest prompt or completion the layer will log for one message: 2 MiB, as in Azure API
/// Management. Larger messages are cut to their configured cap and marked `truncated`.
pub const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// The default cap for prompts and completions and the default chunk size: 32 KiB.
pub const DEFAULT_MESSAGE_BYTES: usize = 32 * 1024;

/// The header a correlation id is read from by default.
pub const DEFAULT_CORRELATION_HEADER: &str = "x-request-id";

/// The response header the correlation id is echoed in by default.
pub const DEFAULT_CORRELATION_RESPONSE_HEADER: &str = "x-correlation-id";

/// The request header a client may control logging with, when the operator allows it.
pub const DEFAULT_LOG_CONTROL_HEADER: &str = "x-llm-log";

/// A configuration value out of range. Returned by [`LogConfigBuilder::build`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `prompt_bytes` is above [`MAX_MESSAGE_BYTES`].
    #[error("prompt_bytes = {value} is above the ceiling of {max} bytes (2 MiB); use at most {max}")]
    PromptBytesTooLarge {
        /// The value given.
        value: usize,
        /// The ceiling.
        max: usize,
    },
    /// `completion_bytes` is above [`MAX_MESSAGE_BYTES`].
    #[error("completion_bytes = {value} is above the ceiling of {max} bytes (2 MiB); use at most {max}")]
    CompletionBytesTooLarge {
        /// The value given.
        value: usize,
        /// The ceiling.
        max: usize,
    },
    /// `chunk_bytes` is 0 or above [`MAX_MESSAGE_BYTES`].
    #[error("chunk_bytes = {value} is out of range; it must be between 1 and {max}")]
    ChunkBytesOutOfRange {
        /// The value given.
        value: usize,
        /// The ceiling.
        max: usize,
    },
    /// `media_inline_bytes` is above [`MAX_MESSAGE_BYTES`].
    #[error("media_inline_bytes = {value} is above the ceiling of {max} bytes (2 MiB); use at most {max}, or turn media elision off")]
    MediaInlineBytesTooLarge {
        /// The value given.
        value: usize,
        /// The ceiling.
        max: usize,
    },
    /// `content_sample_rate` is not between 0.0 and 1.0 (or is NaN).
    #[error("content_sample_rate = {value} is out of range; it must be between 0.0 and 1.0")]
    SampleRateOutOfRange {
        /// The value given.
        value: f64,
    },
    /// `pii_hash_key` is shorter than 16 bytes: tags would be easy to reverse by guessing.
    #[error("pii_hash_key is {len} bytes long; give a secret key of at least 16 bytes")]
    PiiHashKeyTooShort {
        /// Its length.
        len: usize,
    },
    /// A dimension's name is empty, too long, has characters other than letters, digits, `_`,
    /// `.` and `-`, or is given twice.
    #[error(
        "dimension name {name:?} is not valid: 1 to 64 letters, digits, '_', '.' or '-', each name once"
    )]
    InvalidDimensionName {
        /// The name given.
        name: String,
    },
    /// More dimensions than an exchange may carry.
    #[error("{count} dimensions are configured; at most 16 are allowed")]
    TooManyDimensions {
        /// How many were given.
        count: usize,
    },
    /// `api_key_fingerprint_key` is shorter than 16 bytes.
    #[error("api_key_fingerprint_key is {len} bytes long; give a key of at least 16 bytes")]
    FingerprintKeyTooShort {
        /// Its length.
        len: usize,
    },
    /// A header name is not a valid HTTP header name.
    #[error("{setting} = {name:?} is not a valid HTTP header name")]
    InvalidHeaderName {
        /// Which setting.
        setting: &'static str,
        /// The name given.
        name: String,
    },
}

/// The layer's configuration. Build one with [`LogConfig::builder`]; [`LogConfig::default`] is
/// logging on, 32 KiB caps and 32 KiB chunks.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub(crate) enabled: bool,
    pub(crate) prompt_bytes: usize,
    pub(crate) completion_bytes: usize,
    pub(crate) chunk_bytes: usize,
    pub(crate) correlation_header: HeaderName,
    pub(crate) correlation_response_header: Option<HeaderName>,
    pub(crate) region: Option<String>,
    pub(crate) decoded_bytes: u64,
    pub(crate) estimate_tokens: bool,
    pub(crate) request_read_ahead: usize,
    pub(crate) redact_secrets: bool,
    pub(crate) media_inline_bytes: Option<usize>,
    pub(crate) redact_pii: bool,
    pub(crate) pii_hash_key: Option<crate::privacy::HashKey>,
    pub(crate) allow_client_log_control: bool,
    pub(crate) log_control_header: HeaderName,
    pub(crate) content_sample_rate: f64,
    pub(crate) dimensions: Vec<(String, crate::attribution::Source)>,
    pub(crate) fingerprint_key: crate::privacy::HashKey,
    pub(crate) cost: bool,
    pub(crate) prices: Option<std::sync::Arc<crate::cost::PriceTable>>,
    pub(crate) ensure_stream_usage: bool,
}

/// The default bound on bytes decoded from one compressed body.
pub const DEFAULT_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// The default bound on a request body read before the inner service is called: 4 MiB, more
/// than an ordinary LLM request (a long conversation, a few images) takes.
pub const DEFAULT_REQUEST_READ_AHEAD: usize = 4 * 1024 * 1024;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            enabled: true,
            prompt_bytes: DEFAULT_MESSAGE_BYTES,
            completion_bytes: DEFAULT_MESSAGE_BYTES,
            chunk_bytes: DEFAULT_MESSAGE_BYTES,
            correlation_header: HeaderName::from_static(DEFAULT_CORRELATION_HEADER),
            correlation_response_header: Some(HeaderName::from_static(DEFAULT_CORRELATION_RESPONSE_HEADER)),
            region: None,
            decoded_bytes: DEFAULT_DECODED_BYTES,
            estimate_tokens: true,
            request_read_ahead: DEFAULT_REQUEST_READ_AHEAD,
            redact_secrets: true,
            media_inline_bytes: Some(crate::privacy::DEFAULT_MEDIA_INLINE_BYTES),
            redact_pii: false,
            pii_hash_key: None,
            allow_client_log_control: false,
            log_control_header: HeaderName::from_static(DEFAULT_LOG_CONTROL_HEADER),
            content_sample_rate: 1.0,
            dimensions: Vec::new(),
            fingerprint_key: crate::privacy::HashKey::new(
                crate::attribution::DEFAULT_FINGERPRINT_KEY.to_vec(),
            ),
            cost: true,
            prices: None,
            ensure_stream_usage: false,
        }
    }
}

impl LogConfig {
    /// The most bytes decoded from one compressed body.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded_bytes
    }

    /// Whether token counts are estimated when the provider reports none (`tokenizer` feature).
    pub fn estimate_tokens(&self) -> bool {
        self.estimate_tokens
    }

    /// How many bytes of a recognised request's body are read before the inner service is
    /// called (0: none).
    pub fn request_read_ahead(&self) -> usize {
        self.request_read_ahead
    }

    /// Whether credentials in logged text are replaced by `[REDACTED:<kind>]` (default on).
    pub fn redact_secrets(&self) -> bool {
        self.redact_secrets
    }

    /// The longest base64 payload logged as it is; longer ones are replaced by a placeholder
    /// (`None`: media elision is off).
    pub fn media_inline_bytes(&self) -> Option<usize> {
        self.media_inline_bytes
    }

    /// Whether personal data (e-mail addresses, phone numbers, card numbers, IBANs, IP
    /// addresses, US social security numbers) is redacted (default off).
    pub fn redact_pii(&self) -> bool {
        self.redact_pii
    }

    /// Whether clients may control logging with the [`log_control_header`](Self::log_control_header).
    pub fn allow_client_log_control(&self) -> bool {
        self.allow_client_log_control
    }

    /// The request header a client may control logging with (default `x-llm-log`); it is
    /// removed from every logged request, allowed or not.
    pub fn log_control_header(&self) -> &HeaderName {
        &self.log_control_header
    }

    /// The share of exchanges whose content is logged (default 1.0).
    pub fn content_sample_rate(&self) -> f64 {
        self.content_sample_rate
    }

    /// A builder starting from the defaults.
    pub fn builder() -> LogConfigBuilder {
        LogConfigBuilder::default()
    }

    /// Whether logging is on. When off, the layer passes every request through untouched.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The most prompt bytes logged per request. 0 logs metadata and tokens only.
    pub fn prompt_bytes(&self) -> usize {
        self.prompt_bytes
    }

    /// The most completion bytes logged per response. 0 logs metadata and tokens only.
    pub fn completion_bytes(&self) -> usize {
        self.completion_bytes
    }

    /// The size a logged message is cut into records at.
    pub fn chunk_bytes(&self) -> usize {
        self.chunk_bytes
    }

    /// The request header a correlation id is taken from.
    pub fn correlation_header(&self) -> &HeaderName {
        &self.correlation_header
    }

    /// The response header the correlation id is echoed in, if any.
    pub fn correlation_response_header(&self) -> Option<&HeaderName> {
        self.correlation_response_header.as_ref()
    }

    /// The region written on every record, if set.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
}

/// Builds a [`LogConfig`]; [`build`](LogConfigBuilder::build) checks the values.
#[derive(Debug, Clone, Default)]
pub struct LogConfigBuilder {
    config: LogConfig,
    correlation_header: Option<String>,
    correlation_response_header: Option<Option<String>>,
    log_control_header: Option<String>,
    dimensions: Vec<(String, crate::DimensionSource)>,
}

impl LogConfigBuilder {
    /// Turns logging on or off (default on).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.config.enabled = enabled;
        self
    }

    /// The most prompt bytes to log per request (default 32 KiB, at most 2 MiB). 0 logs
    /// metadata and token counts but no prompt content.
    pub fn prompt_bytes(mut self, bytes: usize) -> Self {
        self.config.prompt_bytes = bytes;
        self
    }

    /// The most completion bytes to log per response (default 32 KiB, at most 2 MiB). 0 logs
    /// metadata and token counts but no completion content.
    pub fn completion_bytes(mut self, bytes: usize) -> Self {
        self.config.completion_bytes = bytes;
        self
    }

    /// The chunk size logged messages are cut at (default 32 KiB, from 1 to 2 MiB).
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.config.chunk_bytes = bytes;
        self
    }

    /// The request header to take the correlation id from (default `x-request-id`).
    pub fn correlation_header(mut self, name: impl Into<String>) -> Self {
        self.correlation_header = Some(name.into());
        self
    }

    /// The response header to echo the correlation id in (default `x-correlation-id`).
    pub fn correlation_response_header(mut self, name: impl Into<String>) -> Self {
        self.correlation_response_header = Some(Some(name.into()));
        self
    }

    /// Do not echo the correlation id on responses.
    pub fn no_correlation_response_header(mut self) -> Self {
        self.correlation_response_header = Some(None);
        self
    }

    /// A region name written on every record (Azure's `Region` column).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = Some(region.into());
        self
    }

    /// The most bytes to decode from one compressed (`Content-Encoding`) body, for the tap only
    /// (default 64 MiB). Decoding stops there, with an error on the record, so a
    /// decompression bomb costs bounded time; memory is bounded by the caps either way. 0 turns
    /// decoding off: compressed bodies are logged with their size only.
    pub fn decoded_bytes(mut self, bytes: u64) -> Self {
        self.config.decoded_bytes = bytes;
        self
    }

    /// Whether to estimate token counts when the provider reports none (default on; needs the
    /// `tokenizer` feature, and without it counts stay unknown). Estimates cost CPU on the
    /// task that ends the exchange, about 10 ns per byte of logged text (measured: +84 us on a
    /// 4K/4K exchange, `cargo bench --bench overhead --features tokenizer -- estimate`); they run
    /// only for exchanges that lack usage.
    pub fn estimate_tokens(mut self, estimate: bool) -> Self {
        self.config.estimate_tokens = estimate;
        self
    }

    /// How many bytes of a recognised LLM request's body to read before calling the inner
    /// service (default [`DEFAULT_REQUEST_READ_AHEAD`], 4 MiB; 0 turns read-ahead off).
    ///
    /// With read-ahead, a request the inner service rejects, fails on or never reads (an auth
    /// layer, an unreachable upstream, a handler that ignores the body) still logs its prompt,
    /// model and stream flag, and its request record goes out before the inner service is
    /// called. The inner service then receives the same bytes: frames of 4 KiB or more as the
    /// very same `Bytes`, smaller ones joined into fewer frames (so a body sent a byte at a
    /// time costs no more than one sent whole), then any trailers, or the body's error. A body
    /// longer than the bound is read up to it and the rest streams as it comes.
    ///
    /// The cost: the body's bytes, up to the bound, are held until the inner service takes
    /// them, and the service sees the body only once it has arrived (or reached the bound).
    /// With read-ahead off, the request is logged as the inner service reads it, and a body it
    /// never reads is logged as `RequestNotRead` with no prompt.
    pub fn request_read_ahead(mut self, bytes: usize) -> Self {
        self.config.request_read_ahead = bytes;
        self
    }

    /// Whether credentials found in logged text (API keys, tokens, JWTs, `Bearer` tokens, PEM
    /// private keys, credentials in URL queries; see [`privacy`](crate::privacy)) are replaced
    /// by `[REDACTED:<kind>]` before records are made (default on). Turn it off only where the
    /// log is as protected as the credentials themselves.
    pub fn redact_secrets(mut self, redact: bool) -> Self {
        self.config.redact_secrets = redact;
        self
    }

    /// The longest base64 payload (image, audio, file; see [`privacy`](crate::privacy)) logged
    /// as it is (default [`DEFAULT_MEDIA_INLINE_BYTES`](crate::privacy::DEFAULT_MEDIA_INLINE_BYTES),
    /// 1 KiB, at most 2 MiB). Longer ones are replaced, as the body streams past, by
    /// `[media <type> <bytes> bytes sha256:<hex>]`: they are hashed and counted, never kept,
    /// so they cost neither memory nor cap.
    pub fn media_inline_bytes(mut self, bytes: usize) -> Self {
        self.config.media_inline_bytes = Some(bytes);
        self
    }

    /// Turns media elision off: base64 payloads are logged as they are, within the caps.
    pub fn no_media_elision(mut self) -> Self {
        self.config.media_inline_bytes = None;
        self
    }

    /// Whether personal data found in string values of logged messages is replaced (default
    /// off): e-mail addresses, phone numbers, payment card numbers (Luhn-checked), IBANs
    /// (checksum-checked), IPv4 and IPv6 addresses and US social security numbers, by
    /// `[REDACTED:email]`, `[REDACTED:phone]`, `[REDACTED:card]`, `[REDACTED:iban]`,
    /// `[REDACTED:ip_address]`, `[REDACTED:ssn]`. See [`privacy::find_pii`](crate::privacy::find_pii).
    pub fn redact_pii(mut self, redact: bool) -> Self {
        self.config.redact_pii = redact;
        self
    }

    /// Tags personal data with a keyed hash instead of a plain tag: `[email:3f9a1c0b2d4e5f60]`,
    /// the first 16 hex digits of HMAC-SHA256(key, value), the value normalised (e-mail in
    /// lower case, numbers by their digits), so the same person's data correlates across
    /// records without being stored. Turns PII redaction on. Keep the key secret: anyone
    /// with it can test guesses.
    pub fn pii_hash_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.config.redact_pii = true;
        self.config.pii_hash_key = Some(crate::privacy::HashKey::new(key.into()));
        self
    }

    /// Lets clients control logging with the `x-llm-log` header (`metadata`, `no-prompt`,
    /// `no-completion`, `off`; default not allowed: a client must not be able to hide its
    /// usage from the operator). See [`LogControl`](crate::LogControl).
    pub fn allow_client_log_control(mut self, allow: bool) -> Self {
        self.config.allow_client_log_control = allow;
        self
    }

    /// The name of the client's log control header (default `x-llm-log`).
    pub fn log_control_header(mut self, name: impl Into<String>) -> Self {
        self.log_control_header = Some(name.into());
        self
    }

    /// The share of exchanges whose content (prompt and completion) is logged, from 0.0 to 1.0
    /// (default 1.0). The choice is a hash of the correlation id, so both sides and every
    /// replica agree; exchanges that did not complete or had an error keep their content
    /// whatever the rate; the others log metadata and tokens with `ContentOmitted: sampled`.
    /// The request record of an exchange left out waits for its response (so that a failure
    /// can still keep it), holding at most the prompt cap.
    pub fn content_sample_rate(mut self, rate: f64) -> Self {
        self.config.content_sample_rate = rate;
        self
    }

    /// A dimension named `name` on every record of an exchange, from `source` (a request
    /// header, a trusted `X-Forwarded-For`, the client address, any function of the request
    /// head). Names: 1 to 64 letters, digits, `_`, `.`, `-`; at most 16 dimensions per exchange
    /// in all. See [`attribution`](crate::attribution).
    pub fn dimension(mut self, name: impl Into<String>, source: crate::DimensionSource) -> Self {
        self.dimensions.push((name.into(), source));
        self
    }

    /// The key of the `api_key` fingerprint (default
    /// [`DEFAULT_FINGERPRINT_KEY`](crate::attribution::DEFAULT_FINGERPRINT_KEY)); a secret one
    /// keeps anyone with a list of keys from matching them against the log. At least 16 bytes.
    pub fn api_key_fingerprint_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.config.fingerprint_key = crate::privacy::HashKey::new(key.into());
        self
    }

    /// The operator's prices, asked before the built-in table (see [`cost`](crate::cost)).
    pub fn prices(mut self, table: crate::cost::PriceTable) -> Self {
        self.config.prices = Some(std::sync::Arc::new(table));
        self
    }

    /// Exact usage for streamed chat completions that did not ask for it (default off): such
    /// a request is sent with `"stream_options":{"include_usage":true}` added, and the usage
    /// chunk this brings (and the `"usage":null` it adds to the other chunks) is taken back out
    /// of the stream the client receives, so the client sees what it would have seen and the
    /// record has the provider's usage instead of none or an estimate. Needs request
    /// read-ahead and a body within its bound; a request with `stream_options` of its own is
    /// left alone. See [`ensure_stream_usage`](Self::ensure_stream_usage) in the README's
    /// "Cost" section for what else is changed (`Content-Length`).
    pub fn ensure_stream_usage(mut self, ensure: bool) -> Self {
        self.config.ensure_stream_usage = ensure;
        self
    }

    /// No `CostUsd` on records.
    pub fn no_cost(mut self) -> Self {
        self.config.cost = false;
        self
    }

    /// Checks the values and returns the configuration.
    pub fn build(self) -> Result<LogConfig, ConfigError> {
        let mut config = self.config;
        if config.prompt_bytes > MAX_MESSAGE_BYTES {
            return Err(ConfigError::PromptBytesTooLarge {
                value: config.prompt_bytes,
                max: MAX_MESSAGE_BYTES,
            });
        }
        if config.completion_bytes > MAX_MESSAGE_BYTES {
            return Err(ConfigError::CompletionBytesTooLarge {
                value: config.completion_bytes,
                max: MAX_MESSAGE_BYTES,
            });
        }
        if config.chunk_bytes == 0 || config.chunk_bytes > MAX_MESSAGE_BYTES {
            return Err(ConfigError::ChunkBytesOutOfRange {
                value: config.chunk_bytes,
                max: MAX_MESSAGE_BYTES,
            });
        }
        if let Some(bytes) = config.media_inline_bytes.filter(|&b| b > MAX_MESSAGE_BYTES) {
            return Err(ConfigError::MediaInlineBytesTooLarge {
                value: bytes,
                max: MAX_MESSAGE_BYTES,
            });
        }
        if !(0.0..=1.0).contains(&config.content_sample_rate) {
            return Err(ConfigError::SampleRateOutOfRange {
                value: config.content_sample_rate,
            });
        }
        if let Some(len) = config.pii_hash_key.as_ref().map(|k| k.len()).filter(|&l| l < 16) {
            return Err(ConfigError::PiiHashKeyTooShort { len });
        }
        for (name, source) in self.dimensions {
            if !crate::attribution::valid_name(&name) || config.dimensions.iter().any(|(n, _)| *n == name) {
                return Err(ConfigError::InvalidDimensionName { name });
            }
            let source = crate::attribution::Source::resolve(source).map_err(|header| {
                ConfigError::InvalidHeaderName {
                    setting: "dimension",
                    name: header,
                }
            })?;
            config.dimensions.push((name, source));
        }
        if config.dimensions.len() > crate::attribution::MAX_DIMENSIONS {
            return Err(ConfigError::TooManyDimensions {
                count: config.dimensions.len(),
            });
        }
        if config.fingerprint_key.len() < 16 {
            return Err(ConfigError::FingerprintKeyTooShort {
                len: config.fingerprint_key.len(),
            });
        }
        if let Some(name) = self.log_control_header {
            config.log_control_header = parse_header_name("log_control_header", name)?;
        }
        if let Some(name) = self.correlation_header {
            config.correlation_header = parse_header_name("correlation_header", name)?;
        }
        match self.correlation_response_header {
            Some(Some(name)) => {
                config.correlation_response_header =
                    Some(parse_header_name("correlation_response_header", name)?);
            }
            Some(None) => config.correlation_response_header = None,
            None => {}
        }
        Ok(config)
    }
}

fn parse_header_name(setting: &'static str, name: String) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| ConfigError::InvalidHeaderName { setting, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference() {
        let c = LogConfig::default();
        assert!(c.enabled());
        assert_eq!(c.prompt_bytes(), 32_768);
        assert_eq!(c.completion_bytes(), 32_768);
        assert_eq!(c.chunk_bytes(), 32_768);
        assert_eq!(c.request_read_ahead(), 4 << 20);
        assert_eq!(c.correlation_header().as_str(), "x-request-id");
        assert_eq!(
            c.correlation_response_header().map(|h| h.as_str()),
            Some("x-correlation-id")
        );
    }

    #[test]
    fn the_ceiling_itself_is_allowed() {
        let c = LogConfig::builder()
            .prompt_bytes(MAX_MESSAGE_BYTES)
            .completion_bytes(MAX_MESSAGE_BYTES)
            .chunk_bytes(MAX_MESSAGE_BYTES)
            .build()
            .unwrap();
        assert_eq!(c.prompt_bytes(), MAX_MESSAGE_BYTES);
    }

    #[test]
    fn zero_caps_are_privacy_mode_not_errors() {
        let c = LogConfig::builder()
            .prompt_bytes(0)
            .completion_bytes(0)
            .build()
            .unwrap();
        assert_eq!(c.prompt_bytes(), 0);
        assert_eq!(c.completion_bytes(), 0);
    }

    #[test]
    fn out_of_range_values_are_errors() {
        assert_eq!(
            LogConfig::builder()
                .prompt_bytes(MAX_MESSAGE_BYTES + 1)
                .build()
                .unwrap_err(),
            ConfigError::PromptBytesTooLarge {
                value: MAX_MESSAGE_BYTES + 1,
                max: MAX_MESSAGE_BYTES
            }
        );
        assert!(matches!(
            LogConfig::builder().completion_bytes(usize::MAX).build(),
            Err(ConfigError::CompletionBytesTooLarge { .. })
        ));
        assert!(matches!(
            LogConfig::builder().chunk_bytes(0).build(),
            Err(ConfigError::ChunkBytesOutOfRange { value: 0, .. })
        ));
        assert!(matches!(
            LogConfig::builder().chunk_bytes(MAX_MESSAGE_BYTES + 1).build(),
            Err(ConfigError::ChunkBytesOutOfRange { .. })
        ));
        let err = LogConfig::builder()
            .correlation_header("bad header")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("correlation_header"), "{err}");
    }

    #[test]
    fn headers_can_be_renamed_or_turned_off() {
        let c = LogConfig::builder()
            .correlation_header("X-Trace")
            .no_correlation_response_header()
            .region("westeurope")
            .build()
            .unwrap();
        assert_eq!(c.correlation_header().as_str(), "x-trace");
        assert!(c.correlation_response_header().is_none());
        assert_eq!(c.region(), Some("westeurope"));
    }
}
