//! The request head as recognizers see it, the route they give, and the built-in recognition.

use std::borrow::Cow;

use http::header::HOST;
use http::{HeaderMap, Method, Uri};

use super::provider_for;
use crate::ApiFamily;

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
        // `name:port`, `[v6]:port`; a bare IPv6 address (several `:`) has no port to take off.
        let host = match host.rsplit_once(':') {
            Some((name, port))
                if port.bytes().all(|b| b.is_ascii_digit())
                    && (name.ends_with(']') || !name.contains(':')) =>
            {
                name
            }
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
    /// The request head itself asks for a stream (Gemini's `streamGenerateContent`, Bedrock's
    /// `converse-stream`), whatever its body says.
    pub streaming: bool,
}

impl Route {
    /// A route to `family` at `provider`, with the family's usual operation name.
    pub fn new(family: ApiFamily, provider: impl Into<Cow<'static, str>>) -> Self {
        let operation = match family {
            ApiFamily::Embeddings => "embeddings",
            ApiFamily::Completions | ApiFamily::OllamaGenerate => "text_completion",
            ApiFamily::Other(_) | ApiFamily::GeminiGenerateContent => "generate_content",
            _ => "chat",
        };
        Route {
            family,
            provider: provider.into(),
            operation: Cow::Borrowed(operation),
            deployment: None,
            api_version: None,
            model: None,
            streaming: false,
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

    /// The same route, asking for a stream by its head (`streaming`) or not.
    pub fn with_streaming(mut self, streaming: bool) -> Self {
        self.streaming = streaming;
        self
    }

    /// The same route with the model named in the path.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

/// The built-in recognition: the route of a request to one of the built-in families, or
/// `None`. Use it as the fallback of a recognizer of one's own.
pub fn recognize(head: &RequestHead<'_>) -> Option<Route> {
    let path = head.path();
    if super::mcp::is_default_path(path) {
        return super::mcp::route(head);
    }
    if head.method() != Method::POST {
        return None;
    }
    if let Some(route) = recognize_by_model_in_path(head, path) {
        return Some(route);
    }
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
    } else if path.ends_with("/api/chat") {
        (ApiFamily::OllamaChat, "")
    } else if path.ends_with("/api/generate") {
        (ApiFamily::OllamaGenerate, "")
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

/// The families that name the model in the path: Gemini
/// (`.../models/{model}:generateContent`, `:streamGenerateContent`, on Google AI and on Vertex
/// AI's `.../publishers/google/models/{model}:...`) and Bedrock Converse
/// (`/model/{modelId}/converse`, `/converse-stream`, the id percent-encoded or not).
fn recognize_by_model_in_path(head: &RequestHead<'_>, path: &str) -> Option<Route> {
    if let Some((prefix, method)) = path.rsplit_once(':') {
        let streaming = match method {
            "generateContent" => false,
            "streamGenerateContent" => true,
            _ => return recognize_bedrock(head, path),
        };
        // Base models, tuned models (`tunedModels/{id}`) and Vertex AI endpoints
        // (`endpoints/{id}`) alike.
        let (_, model) = ["/models/", "/tunedModels/", "/endpoints/"]
            .iter()
            .find_map(|dir| prefix.rsplit_once(dir))?;
        if model.is_empty() || model.contains('/') {
            return None;
        }
        let family = ApiFamily::GeminiGenerateContent;
        let provider = provider_for(head.host(), path, &family);
        return Some(
            Route::new(family, provider)
                .with_model(percent_decode(model))
                .with_streaming(streaming),
        );
    }
    recognize_bedrock(head, path)
}

fn recognize_bedrock(head: &RequestHead<'_>, path: &str) -> Option<Route> {
    let (prefix, streaming) = match path.strip_suffix("/converse") {
        Some(p) => (p, false),
        None => (path.strip_suffix("/converse-stream")?, true),
    };
    // The id may be an ARN sent unencoded, `/` and all: everything after `/model/`.
    let (_, model) = prefix.split_once("/model/")?;
    if model.is_empty() {
        return None;
    }
    let family = ApiFamily::BedrockConverse;
    let provider = provider_for(head.host(), path, &family);
    Some(
        Route::new(family, provider)
            .with_model(percent_decode(model))
            .with_streaming(streaming),
    )
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
