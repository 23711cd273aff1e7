//! The families a layer knows, and the family that reads an exchange's bodies.

use std::fmt;
use std::sync::Arc;

use super::{
    recognize, AnthropicMessagesApi, BodyReader, ChatCompletionsApi, CompletionsApi, EmbeddingsApi, LlmApi,
    RawReader, RequestHead, ResponsesApi, Route, StreamReader,
};
use crate::ApiFamily;

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
