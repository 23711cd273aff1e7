//! [`LlmLogLayer`]: the tower layer users add to their stack.

use std::sync::Arc;

use tower::Layer;

use crate::exchange::{Counters, Shared};
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
            }),
        }
    }

    /// The same layer with another configuration. Counters are kept.
    pub fn with_config(self, config: LogConfig) -> Self {
        LlmLogLayer {
            shared: Arc::new(Shared {
                sink: self.shared.sink.clone(),
                config,
                stats: self.shared.stats.clone(),
            }),
        }
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
