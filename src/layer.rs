//! [`LlmLogLayer`]: the tower layer users add to their stack.

use std::sync::Arc;

use tower::Layer;

use crate::api::{LlmApi, RequestHead, Route};
use crate::exchange::{Counters, Shared};
use crate::privacy::Redactor;
use crate::{LlmLog, LlmLogSink, LogConfig, LogStats};

/// Logs LLM API traffic to a sink. Add it to an axum router, a hyper server or client stack, or
/// any tower service taking and returning `http` requests and responses.
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_llm_log::{LlmLogLayer, LogConfig, MemorySink};
///
/// let sink = MemorySink::new();
/// let config = LogConfig::builder().prompt_bytes(262_144).build().unwrap();
/// let layer = LlmLogLayer::new(sink.clone()).with_config(config);
/// let app: Router = Router::new()
///     .route("/v1/chat/completions", post(|| async { "{}" }))
///     .layer(layer.clone());
/// assert_eq!(layer.stats().exchanges_open(), 0);
/// ```
#[derive(Clone)]
pub struct LlmLogLayer {
    shared: Arc<Shared>,
}

impl LlmLogLayer {
    /// A layer sending records to `sink`, with the default [`LogConfig`].
    pub fn new(sink: impl LlmLogSink) -> Self {
        LlmLogLayer {
            shared: Arc::new(Shared {
                sink: Arc::new(sink),
                config: LogConfig::default(),
                stats: Arc::new(Counters::default()),
                apis: Default::default(),
                redactor: None,
            }),
        }
    }

    fn rebuild(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared {
            sink: self.shared.sink.clone(),
            config: self.shared.config.clone(),
            stats: self.shared.stats.clone(),
            apis: self.shared.apis.clone(),
            redactor: self.shared.redactor.clone(),
        };
        change(&mut shared);
        LlmLogLayer {
            shared: Arc::new(shared),
        }
    }

    /// The same layer with another configuration. Counters are kept.
    pub fn with_config(self, config: LogConfig) -> Self {
        self.rebuild(|s| s.config = config)
    }

    /// The same layer, also redacting with `redactor`: it sees each logged message (after the
    /// built-in redaction) and returns the edits to make. See [`Redactor`] for what happens
    /// when it fails. A second call replaces the first.
    pub fn with_redactor(self, redactor: impl Redactor) -> Self {
        self.rebuild(|s| s.redactor = Some(Arc::new(redactor)))
    }

    /// The same layer, also logging an API family of one's own. Added families are asked
    /// first, in the order added, before the built-in ones.
    ///
    /// See `examples/custom_api` for a whole family (Cohere's Chat API v2).
    pub fn with_api(self, api: impl LlmApi) -> Self {
        self.rebuild(|s| s.apis.add(Arc::new(api)))
    }

    /// The same layer, choosing routes with `recognizer` instead: it returns the route of a
    /// request to log (any family the layer knows: built-in, or added with
    /// [`with_api`](Self::with_api)), or `None` to let it pass unlogged. Call
    /// [`api::recognize`](crate::api::recognize) in it to fall back on the built-in recognition.
    ///
    /// ```
    /// use tower_llm_log::api::{self, Route};
    /// use tower_llm_log::{ApiFamily, LlmLogLayer, MemorySink};
    ///
    /// // A chat API served at /llm/chat, and the usual paths too.
    /// let layer = LlmLogLayer::new(MemorySink::new()).with_recognizer(|head| {
    ///     match head.path() {
    ///         "/llm/chat" => Some(Route::new(ApiFamily::ChatCompletions, "openai")),
    ///         _ => api::recognize(head),
    ///     }
    /// });
    /// # let _ = layer;
    /// ```
    pub fn with_recognizer<F>(self, recognizer: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> Option<Route> + Send + Sync + 'static,
    {
        self.rebuild(|s| s.apis.set_recognizer(Arc::new(recognizer)))
    }

    /// The same layer, logging only the requests `predicate` accepts (of those recognized).
    ///
    /// ```
    /// use tower_llm_log::{LlmLogLayer, MemorySink};
    ///
    /// // Leave health probes of the model server out of the log.
    /// let layer = LlmLogLayer::new(MemorySink::new())
    ///     .only_when(|head| head.headers().get("x-probe").is_none());
    /// # let _ = layer;
    /// ```
    pub fn only_when<F>(self, predicate: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> bool + Send + Sync + 'static,
    {
        self.rebuild(|s| s.apis.set_filter(Arc::new(predicate)))
    }

    /// The configuration in use.
    pub fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    /// The layer's counters so far (shared by every service it made).
    pub fn stats(&self) -> LogStats {
        self.shared.stats.snapshot()
    }
}

impl std::fmt::Debug for LlmLogLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmLogLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for LlmLogLayer {
    type Service = LlmLog<S>;

    fn layer(&self, inner: S) -> LlmLog<S> {
        LlmLog::new(inner, self.shared.clone())
    }
}
