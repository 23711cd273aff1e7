//! The families a layer knows, and the family that reads an exchange's bodies.

use std::fmt;
use std::sync::Arc;

use super::{
    recognize, AnthropicMessagesApi, BedrockConverseApi, BodyReader, ChatCompletionsApi, CompletionsApi,
    EmbeddingsApi, GeminiApi, LlmApi, McpApi, OllamaApi, RawReader, RequestHead, ResponsesApi, Route,
    StreamReader,
};
use crate::ApiFamily;

/// How the layer chooses a route: a recognizer of the user's, or the families in order.
pub(crate) type Recognizer = dyn Fn(&RequestHead<'_>) -> Option<Route> + Send + Sync;

/// A predicate on requests: only those it accepts are logged.
pub(crate) type Filter = dyn Fn(&RequestHead<'_>) -> bool + Send + Sync;

/// The families a layer knows, and how it recognizes requests.
#[derive(Clone)]
pub(crate) struct Apis {
    custom: Vec<Arc<dyn LlmApi>>,
    builtins: [Arc<dyn LlmApi>; BUILTINS],
    recognizer: Option<Arc<Recognizer>>,
    filter: Option<Arc<Filter>>,
}

impl Default for Apis {
    fn default() -> Self {
        Apis {
            custom: Vec::new(),
            builtins: builtins(),
            recognizer: None,
            filter: None,
        }
    }
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

/// The built-in families, in the order recognition tries them (recognition itself is one pass
/// over the path: [`recognize`]).
fn builtins() -> [Arc<dyn LlmApi>; BUILTINS] {
    [
        Arc::new(ChatCompletionsApi),
        Arc::new(ResponsesApi),
        Arc::new(EmbeddingsApi),
        Arc::new(CompletionsApi),
        Arc::new(AnthropicMessagesApi),
        Arc::new(GeminiApi),
        Arc::new(BedrockConverseApi),
        Arc::new(OllamaApi::CHAT),
        Arc::new(OllamaApi::GENERATE),
        Arc::new(McpApi::new()),
    ]
}

const BUILTINS: usize = 10;

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
    pub(crate) fn route(&self, head: &RequestHead<'_>) -> Option<(Route, Arc<dyn LlmApi>)> {
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
                return Some((route, api.clone()));
            }
        }
        let route = recognize(head)?;
        let api = self.reader_for(&route.family);
        Some((route, api))
    }

    /// The family named `family`: one the user added, else a built-in one, else a reader that
    /// logs bodies as they are and says why.
    fn reader_for(&self, family: &ApiFamily) -> Arc<dyn LlmApi> {
        self.custom
            .iter()
            .chain(self.builtins.iter())
            .find(|a| a.family() == *family)
            .cloned()
            .unwrap_or_else(|| Arc::new(UnknownApi(family.clone())))
    }
}

/// A family a recognizer named that nobody added: bodies are logged raw, with an error.
struct UnknownApi(ApiFamily);

impl LlmApi for UnknownApi {
    fn family(&self) -> ApiFamily {
        self.0.clone()
    }
    fn recognize(&self, _: &RequestHead<'_>) -> Option<Route> {
        None
    }
    fn request_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(RawReader::unknown(route, cap))
    }
    fn response_reader(&self, route: &Route, cap: usize) -> Box<dyn BodyReader> {
        Box::new(RawReader::unknown(route, cap))
    }
    fn stream_reader(&self, route: &Route, cap: usize) -> Box<dyn StreamReader> {
        Box::new(RawReader::unknown(route, cap))
    }
}
