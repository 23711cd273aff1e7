//! Which requests are LLM calls, and how each API family's bodies are read.
//!
//! An API family is an [`LlmApi`]: it recognizes its requests from the request head (method, URI,
//! headers) and makes the readers for their bodies. The built-in families, one file each:
//!
//! | family | paths | file |
//! |---|---|---|
//! | [`ApiFamily::ChatCompletions`] | `.../chat/completions` | `chat.rs` |
//! | [`ApiFamily::Responses`] | `/v1/responses`, Azure `/openai/responses`, `/openai/v1/responses` | `responses.rs` |
//! | [`ApiFamily::Embeddings`] | `.../embeddings` | `embeddings.rs` |
//! | [`ApiFamily::Completions`] | `.../completions` (not chat) | `completions.rs` |
//! | [`ApiFamily::AnthropicMessages`] | `.../v1/messages` | `anthropic.rs` |
//!
//! The provider (`openai`, `azure.ai.openai`, `anthropic`, ...) comes from the host and the path;
//! see [`provider_for`].
//!
//! Users add families of their own with [`LlmLogLayer::with_api`](crate::LlmLogLayer::with_api),
//! and replace recognition with
//! [`LlmLogLayer::with_recognizer`](crate::LlmLogLayer::with_recognizer) (for example, to log a
//! chat API served under a path of one's own). `examples/gemini_api.rs` adds Google's
//! `generateContent`.
//!
//! ```
//! use http::{HeaderMap, Method, Uri};
//! use tower_llm_log::api::{recognize, RequestHead};
//! use tower_llm_log::ApiFamily;
//!
//! let uri: Uri = "https://api.anthropic.com/v1/messages".parse().unwrap();
//! let headers = HeaderMap::new();
//! let route = recognize(&RequestHead::new(&Method::POST, &uri, &headers)).unwrap();
//! assert_eq!(route.family, ApiFamily::AnthropicMessages);
//! assert_eq!(route.provider, "anthropic");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, Method, Uri};

pub use crate::capture::{LoggedMessage, MessageCapture};
pub use crate::scan::sse::SseEvent;
use crate::ApiFamily;

pub(crate) mod anthropic;
mod assemble;
pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod embeddings;
mod provider;
pub(crate) mod responses;
mod scanned;

pub use anthropic::AnthropicMessagesApi;
pub use chat::ChatCompletionsApi;
pub use completions::CompletionsApi;
pub use embeddings::EmbeddingsApi;
pub use provider::provider_for;
pub use responses::ResponsesApi;

/// The head of a request, as the recognizer sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl<'a> RequestHead<'a> {
    /// A request head from its parts.
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        RequestHead { method, uri, headers }
    }

    /// The method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The URI (a path only on the server side; absolute on the client side).
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The path without a trailing `/`.
    pub fn path(&self) -> &'a str {
        self.uri.path().trim_end_matches('/')
    }

    /// The host the request is for, without a port: the URI's, else the `Host` header's.
    pub fn host(&self) -> Option<&'a str> {
        let host = match self.uri.host() {
            Some(h) => h,
            None => self.headers.get(HOST)?.to_str().ok()?,
        };
        let host = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(']') => name,
            _ => host,
        };
        Some(host)
    }

    /// A query parameter's value, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.uri.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name && !v.is_empty()).then(|| percent_decode(v))
        })
    }
}

/// What the layer knows about an exchange from its request head.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The API family, which chooses the readers for the bodies.
    pub family: ApiFamily,
    /// The provider, as OpenTelemetry's `gen_ai.provider.name` names it.
    pub provider: Cow<'static, str>,
    /// The operation (`chat`, `embeddings`, `text_completion`, ...), as
    /// `gen_ai.operation.name` names it.
    pub operation: Cow<'static, str>,
    /// The deployment named in the path (Azure).
    pub deployment: Option<String>,
    /// The `api-version` query parameter (Azure).
    pub api_version: Option<String>,
    /// The model named in the path (some APIs put it there); the body's model wins.
    pub model: Option<String>,
}

impl Route {
    /// A route to `family` at `provider`, with the family's usual operation name.
    pub fn new(family: ApiFamily, provider: impl Into<Cow<'static, str>>) -> Self {
        let operation = match family {
            ApiFamily::Embeddings => "embeddings",
            ApiFamily::Completions => "text_completion",
            ApiFamily::Other(_) => "generate_content",
            _ => "chat",
        };
        Route {
            family,
            provider: provider.into(),
            operation: Cow::Borrowed(operation),
            deployment: None,
            api_version: None,
            model: None,
        }
    }

    /// The same route with another operation name.
    pub fn with_operation(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        self.operation = operation.into();
        self
    }

    /// The same route with a deployment name.
    pub fn with_deployment(mut self, deployment: impl Into<String>) -> Self {
        self.deployment = Some(deployment.into());
        self
    }

    /// The same route with an API version.
    pub fn with_api_version(mut self, api_version: impl Into<String>) -> Self {
        self.api_version = Some(api_version.into());
        self
    }

    /// The same route with the model named in the path.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

/// Token counts as a provider reported them; `None` where it said nothing (unknown is not 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenUsage {
    /// Prompt (input) tokens.
    pub prompt: Option<u64>,
    /// Completion (output) tokens.
    pub completion: Option<u64>,
    /// All tokens billed for the exchange.
    pub total: Option<u64>,
    /// Prompt tokens read from the provider's cache.
    pub cached: Option<u64>,
    /// Completion tokens spent on reasoning.
    pub reasoning: Option<u64>,
    /// Prompt tokens written to the provider's cache.
    pub cache_creation: Option<u64>,
}

impl TokenUsage {
    /// Whether any count is known.
    pub fn is_empty(&self) -> bool {
        *self == TokenUsage::default()
    }
}

/// What a reader found in one body.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BodyFacts {
    /// The logged message: the prompt of a request, the completion of a response.
    pub message: LoggedMessage,
    /// The model the body names.
    pub model: Option<String>,
    /// The provider's response id.
    pub request_id: Option<String>,
    /// Token counts (responses only).
    pub usage: TokenUsage,
    /// Why generation stopped, per choice or output.
    pub finish_reasons: Vec<String>,
    /// A request asked for a stream; a stream was read.
    pub stream: bool,
    /// A stream said it was done (`[DONE]`, a final event); an unfinished stream is reported.
    pub stream_ended: bool,
    /// When the first token arrived (streams).
    pub first_token_at: Option<Instant>,
    /// What was wrong with the body, each a sentence.
    pub errors: Vec<String>,
    /// Media payloads the layer elided before the reader saw the body.
    pub(crate) media_elided: u32,
    /// The end user a request body names (built-in families).
    pub(crate) end_user: Option<String>,
}

/// Reads one JSON (or other non-stream) body, frame by frame, keeping at most its cap.
pub trait BodyReader: Send {
    /// The next frame of the body (decoded, if the body was compressed).
    fn feed(&mut self, frame: &Bytes);
    /// The body ended (`ended`), or stopped before its end (the client left, an error):
    /// what was found.
    fn finish(self: Box<Self>, ended: bool) -> BodyFacts;
}

/// Reads one server-sent-events stream, event by event, keeping at most its cap.
pub trait StreamReader: Send {
    /// The next event of the stream.
    fn event(&mut self, event: &SseEvent<'_>);
    /// The stream ended (`ended`), or stopped before its end: what was found.
    fn finish(self: Box<Self>, ended: bool) -> BodyFacts;
}

/// An API family: which requests are its own, and how to read their bodies.
///
/// Readers are made per exchange and must keep memory within the `cap` they are given (use
/// [`MessageCapture`], or the [`JsonScanner`](crate::scan::json::JsonScanner)); the layer
/// chunks what they return, counts it, and never lets them touch the traffic. A reader that
/// panics is not caught: write readers that do not.
pub trait LlmApi: Send + Sync + 'static {
    /// The family's name in records. Recognizers (and [`Route`]s) name the family with it.
    fn family(&self) -> ApiFamily;
    /// The route of a request this family serves, or `None`.
    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route>;
    /// A reader for a request body; `cap` is the prompt cap.
    fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader>;
    /// A reader for a successful non-stream response body; `cap` is the completion cap.
    fn response_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader>;
    /// A reader for a `text/event-stream` response; `cap` is the completion cap.
    fn stream_reader(&self, route: &Route, cap: usize) -> Box<dyn StreamReader>;
}

impl<T: LlmApi + ?Sized> LlmApi for Arc<T> {
    fn family(&self) -> ApiFamily {
        (**self).family()
    }
    fn recognize(&self, head: &RequestHead<'_>) -> Option<Route> {
        (**self).recognize(head)
    }
    fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        (**self).request_reader(route, cap)
    }
    fn response_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        (**self).response_reader(route, cap)
    }
    fn stream_reader(&self, route: &Route, cap: usize) -> Box<dyn StreamReader> {
        (**self).stream_reader(route, cap)
    }
}

/// The built-in recognition: the route of a request to one of the built-in families, or
/// `None`. Use it as the fallback of a recognizer of one's own.
pub fn recognize(head: &RequestHead<'_>) -> Option<Route> {
    if head.method() != Method::POST {
        return None;
    }
    let path = head.path();
    let (family, prefix) = if let Some(p) = path.strip_suffix("/chat/completions") {
        (ApiFamily::ChatCompletions, p)
    } else if let Some(p) = path.strip_suffix("/completions") {
        (ApiFamily::Completions, p)
    } else if let Some(p) = path.strip_suffix("/responses") {
        (ApiFamily::Responses, p)
    } else if let Some(p) = path.strip_suffix("/embeddings") {
        (ApiFamily::Embeddings, p)
    } else if let Some(p) = path.strip_suffix("/v1/messages") {
        (ApiFamily::AnthropicMessages, p)
    } else {
        return None;
    };
    let deployment = match prefix.strip_prefix("/openai/deployments/") {
        // Azure OpenAI: /openai/deployments/{deployment}/chat/completions
        Some(rest) if rest.is_empty() || rest.contains('/') => return None,
        Some(rest) => Some(percent_decode(rest)),
        None => None,
    };
    let provider = provider_for(head.host(), path, &family);
    let mut route = Route::new(family, provider);
    route.deployment = deployment;
    route.api_version = head.query_param("api-version");
    Some(route)
}

/// How the layer chooses a route: a recognizer of the user's, or the families in order.
pub(crate) type Recognizer = dyn Fn(&RequestHead<'_>) -> Option<Route> + Send + Sync;

/// A predicate on requests: only those it accepts are logged.
pub(crate) type Filter = dyn Fn(&RequestHead<'_>) -> bool + Send + Sync;

/// The families a layer knows, and how it recognizes requests.
#[derive(Clone, Default)]
pub(crate) struct Apis {
    custom: Vec<Arc<dyn LlmApi>>,
    recognizer: Option<Arc<Recognizer>>,
    filter: Option<Arc<Filter>>,
}

impl fmt::Debug for Apis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Apis")
            .field(
                "custom",
                &self.custom.iter().map(|a| a.family()).collect::<Vec<_>>(),
            )
            .field("recognizer", &self.recognizer.is_some())
            .field("filter", &self.filter.is_some())
            .finish()
    }
}

static CHAT: ChatCompletionsApi = ChatCompletionsApi;
static RESPONSES: ResponsesApi = ResponsesApi;
static EMBEDDINGS: EmbeddingsApi = EmbeddingsApi;
static COMPLETIONS: CompletionsApi = CompletionsApi;
static ANTHROPIC: AnthropicMessagesApi = AnthropicMessagesApi;

impl Apis {
    pub(crate) fn add(&mut self, api: Arc<dyn LlmApi>) {
        self.custom.push(api);
    }

    pub(crate) fn set_recognizer(&mut self, recognizer: Arc<Recognizer>) {
        self.recognizer = Some(recognizer);
    }

    pub(crate) fn set_filter(&mut self, filter: Arc<Filter>) {
        self.filter = Some(filter);
    }

    /// The route of a request and the family that reads it, or `None` to let it pass unlogged.
    pub(crate) fn route(&self, head: &RequestHead<'_>) -> Option<(Route, ApiRef)> {
        if let Some(filter) = &self.filter {
            if !filter(head) {
                return None;
            }
        }
        if let Some(recognizer) = &self.recognizer {
            let route = recognizer(head)?;
            let api = self.reader_for(&route.family);
            return Some((route, api));
        }
        for api in &self.custom {
            if let Some(route) = api.recognize(head) {
                return Some((route, ApiRef::Custom(api.clone())));
            }
        }
        let route = recognize(head)?;
        let api = self.reader_for(&route.family);
        Some((route, api))
    }

    fn reader_for(&self, family: &ApiFamily) -> ApiRef {
        if let Some(api) = self.custom.iter().find(|a| a.family() == *family) {
            return ApiRef::Custom(api.clone());
        }
        ApiRef::Builtin(match family {
            ApiFamily::ChatCompletions => &CHAT,
            ApiFamily::Responses => &RESPONSES,
            ApiFamily::Embeddings => &EMBEDDINGS,
            ApiFamily::Completions => &COMPLETIONS,
            ApiFamily::AnthropicMessages => &ANTHROPIC,
            ApiFamily::Other(_) => return ApiRef::Unknown,
        })
    }
}

/// The family that reads an exchange's bodies.
#[derive(Clone)]
pub(crate) enum ApiRef {
    Builtin(&'static dyn LlmApi),
    Custom(Arc<dyn LlmApi>),
    /// A recognizer named a family nobody added: bodies are logged raw, with an error.
    Unknown,
}

impl ApiRef {
    pub(crate) fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        match self {
            ApiRef::Builtin(api) => api.request_reader(route, cap),
            ApiRef::Custom(api) => api.request_reader(route, cap),
            ApiRef::Unknown => Box::new(RawReader::unknown(route, cap)),
        }
    }

    pub(crate) fn response_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        match self {
            ApiRef::Builtin(api) => api.response_reader(route, cap),
            ApiRef::Custom(api) => api.response_reader(route, cap),
            ApiRef::Unknown => Box::new(RawReader::unknown(route, cap)),
        }
    }

    pub(crate) fn stream_reader(&self, route: &Route, cap: usize) -> Box<dyn StreamReader> {
        match self {
            ApiRef::Builtin(api) => api.stream_reader(route, cap),
            ApiRef::Custom(api) => api.stream_reader(route, cap),
            ApiRef::Unknown => Box::new(RawReader::unknown(route, cap)),
        }
    }
}

/// Keeps a body as it is, up to the cap: for error responses, and families nobody can read.
pub(crate) struct RawReader {
    capture: MessageCapture,
    note: Option<String>,
}

impl RawReader {
    pub(crate) fn new(cap: usize) -> Self {
        RawReader {
            capture: MessageCapture::new(cap),
            note: None,
        }
    }

    fn unknown(route: &Route, cap: usize) -> Self {
        RawReader {
            capture: MessageCapture::new(cap),
            note: Some(format!(
                "no reader for the API family \"{}\" (add it with LlmLogLayer::with_api); the body is logged as it is",
                route.family
            )),
        }
    }
}

impl BodyReader for RawReader {
    fn feed(&mut self, frame: &Bytes) {
        self.capture.push_all(frame);
    }

    fn finish(self: Box<Self>, _ended: bool) -> BodyFacts {
        BodyFacts {
            message: self.capture.finish(),
            errors: self.note.into_iter().collect(),
            ..BodyFacts::default()
        }
    }
}

impl StreamReader for RawReader {
    fn event(&mut self, event: &SseEvent<'_>) {
        let data = Bytes::copy_from_slice(event.data);
        self.capture.push_all(&data);
    }

    fn finish(self: Box<Self>, ended: bool) -> BodyFacts {
        let mut facts = BodyReader::finish(self, ended);
        facts.stream = true;
        // No protocol to say when such a stream is done: its end is its end.
        facts.stream_ended = true;
        facts
    }
}

/// Decodes `%XX` escapes; anything malformed is kept as written.
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, uri: &str) -> Option<Route> {
        let uri: Uri = uri.parse().unwrap();
        recognize(&RequestHead::new(&method, &uri, &HeaderMap::new()))
    }

    fn family_and_provider(uri: &str) -> Option<(ApiFamily, String)> {
        route(Method::POST, uri).map(|r| (r.family, r.provider.into_owned()))
    }

    #[test]
    fn openai_and_compatible_paths() {
        let r = route(Method::POST, "/v1/chat/completions").unwrap();
        assert_eq!(
            (r.family, r.provider.as_ref(), r.operation.as_ref()),
            (ApiFamily::ChatCompletions, "openai", "chat")
        );
        assert_eq!((r.deployment, r.api_version), (None, None));
        assert_eq!(
            route(Method::POST, "/chat/completions").unwrap().provider,
            "openai"
        );
        assert_eq!(
            route(Method::POST, "/api/v1/chat/completions/").unwrap().provider,
            "openai"
        );
        assert_eq!(
            route(Method::POST, "/openai/v1/chat/completions")
                .unwrap()
                .provider,
            "azure.ai.openai"
        );
        let r = route(
            Method::POST,
            "/models/chat/completions?api-version=2024-05-01-preview",
        )
        .unwrap();
        assert_eq!(r.provider, "azure.ai.inference");
        assert_eq!(r.api_version.as_deref(), Some("2024-05-01-preview"));
    }

    #[test]
    fn every_family_by_path() {
        use ApiFamily::*;
        let cases = [
            ("/v1/responses", Responses, "openai"),
            (
                "/openai/responses?api-version=2025-04-01-preview",
                Responses,
                "azure.ai.openai",
            ),
            ("/openai/v1/responses", Responses, "azure.ai.openai"),
            ("/v1/embeddings", Embeddings, "openai"),
            (
                "/openai/deployments/emb/embeddings",
                Embeddings,
                "azure.ai.openai",
            ),
            ("/v1/completions", Completions, "openai"),
            (
                "/openai/deployments/instruct/completions",
                Completions,
                "azure.ai.openai",
            ),
            ("/v1/messages", AnthropicMessages, "anthropic"),
            ("/anthropic/v1/messages", AnthropicMessages, "anthropic"),
            (
                "https://api.groq.com/openai/v1/chat/completions",
                ChatCompletions,
                "groq",
            ),
            (
                "https://api.deepseek.com/chat/completions",
                ChatCompletions,
                "deepseek",
            ),
            (
                "https://my.openai.azure.com/openai/v1/responses",
                Responses,
                "azure.ai.openai",
            ),
            ("https://api.mistral.ai/v1/embeddings", Embeddings, "mistral_ai"),
            ("https://api.x.ai/v1/messages", AnthropicMessages, "x_ai"),
        ];
        for (uri, family, provider) in cases {
            assert_eq!(
                family_and_provider(uri),
                Some((family, provider.to_string())),
                "{uri}"
            );
        }
        let r = route(Method::POST, "/v1/messages").unwrap();
        assert_eq!(r.operation, "chat");
        assert_eq!(
            route(Method::POST, "/v1/embeddings").unwrap().operation,
            "embeddings"
        );
        assert_eq!(
            route(Method::POST, "/v1/completions").unwrap().operation,
            "text_completion"
        );
    }

    #[test]
    fn the_host_header_names_the_provider_on_the_server_side() {
        let uri: Uri = "/v1/chat/completions".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, "api.anthropic.com:443".parse().unwrap());
        let head = RequestHead::new(&Method::POST, &uri, &headers);
        assert_eq!(head.host(), Some("api.anthropic.com"));
        assert_eq!(recognize(&head).unwrap().provider, "anthropic");
    }

    #[test]
    fn azure_deployment_and_api_version() {
        let r = route(
            Method::POST,
            "/openai/deployments/gpt-4o%20prod/chat/completions?x=1&api-version=2024-10-21",
        )
        .unwrap();
        assert_eq!(r.provider, "azure.ai.openai");
        assert_eq!(r.deployment.as_deref(), Some("gpt-4o prod"));
        assert_eq!(r.api_version.as_deref(), Some("2024-10-21"));
    }

    #[test]
    fn everything_else_passes() {
        assert_eq!(route(Method::GET, "/v1/chat/completions"), None);
        assert_eq!(route(Method::POST, "/v1/chat/completions/x"), None);
        assert_eq!(route(Method::POST, "/v1/models"), None);
        assert_eq!(route(Method::POST, "/openai/deployments//chat/completions"), None);
        assert_eq!(route(Method::POST, "/v1/messages/count_tokens"), None);
        assert_eq!(route(Method::POST, "/v1/responses/resp_1/cancel"), None);
        assert_eq!(route(Method::GET, "/v1/responses"), None);
        assert_eq!(route(Method::POST, "/health"), None);
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz%41"), "a%zzA");
    }
}
