//! The metrics sink: see [`MetricsSink`].

use metrics::{counter, histogram, Label};

use crate::{LlmLogRecord, LlmLogSink, RecordKind};

/// Metrics of the exchanges, through the [`metrics`] facade, as Azure API Management's
/// token metrics and Kong's AI metrics give them: record them with any exporter (Prometheus,
/// StatsD, OpenTelemetry) the application installs.
///
/// | metric | kind | unit | labels |
/// |---|---|---|---|
/// | `gen_ai.client.token.usage` | histogram | tokens | `gen_ai.token.type` (`input`, `output`), and the common ones |
/// | `gen_ai.client.operation.duration` | histogram | seconds | common |
/// | `gen_ai.client.operation.time_to_first_chunk` | histogram | seconds | common (streams) |
/// | `llm_log.requests` | counter | exchanges | common, `outcome` |
/// | `llm_log.tokens` | counter | tokens | common, `gen_ai.token.type` |
/// | `llm_log.cost_nano_usd` | counter | nano-dollars (USD) | common |
///
/// The common labels are `gen_ai.operation.name`, `gen_ai.provider.name`,
/// `gen_ai.response.model` (the model, response's else request's), `llm_log.api`, and the
/// dimensions named with [`MetricsSink::with_dimension`] (an allow-list: label cardinality is
/// the operator's choice, never a client's). Each exchange is counted once, on its last
/// response record. The OpenTelemetry GenAI names are kept; a Prometheus exporter writes them
/// with underscores (`gen_ai_client_token_usage`).
///
/// ```
/// use tower_llm_log::sink::MetricsSink;
/// use tower_llm_log::LlmLogLayer;
///
/// // Install an exporter first (e.g. metrics_exporter_prometheus::PrometheusBuilder).
/// let layer = LlmLogLayer::new(MetricsSink::new().with_dimension("user"));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Default)]
pub struct MetricsSink {
    dimensions: Vec<String>,
}

impl MetricsSink {
    /// A sink with the common labels only.
    pub fn new() -> Self {
        MetricsSink::default()
    }

    /// Also labels by the dimension `name` (as `llm_log.dimension.<name>`); exchanges without
    /// it get `(none)`. Every value is a series: name only dimensions with few values.
    pub fn with_dimension(mut self, name: impl Into<String>) -> Self {
        self.dimensions.push(name.into());
        self
    }
}

fn model_label(r: &LlmLogRecord) -> String {
    r.model_name.clone().unwrap_or_else(|| "(none)".into())
}

impl LlmLogSink for MetricsSink {
    fn emit(&self, r: LlmLogRecord) {
        if r.kind != RecordKind::Response || !r.is_last {
            return;
        }
        let mut labels = vec![
            Label::new("gen_ai.operation.name", r.operation_name.clone()),
            Label::new(
                "gen_ai.provider.name",
                r.provider.clone().unwrap_or_else(|| "(none)".into()),
            ),
            Label::new("gen_ai.response.model", model_label(&r)),
            Label::new("llm_log.api", r.api.as_str().to_string()),
        ];
        for name in &self.dimensions {
            let value = r.dimensions.get(name).cloned().unwrap_or_else(|| "(none)".into());
            labels.push(Label::new(format!("llm_log.dimension.{name}"), value));
        }
        let with = |extra: (&'static str, String)| {
            let mut l = labels.clone();
            l.push(Label::new(extra.0, extra.1));
            l
        };
        counter!(
            "llm_log.requests",
            with(("outcome", r.outcome.as_str().to_string()))
        )
        .increment(1);
        histogram!("gen_ai.client.operation.duration", labels.clone()).record(r.duration.as_secs_f64());
        if let Some(ttft) = r.time_to_first_token {
            histogram!("gen_ai.client.operation.time_to_first_chunk", labels.clone())
                .record(ttft.as_secs_f64());
        }
        if !r.tokens_estimated {
            for (kind, tokens) in [("input", r.prompt_tokens), ("output", r.completion_tokens)] {
                if let Some(n) = tokens {
                    let l = with(("gen_ai.token.type", kind.to_string()));
                    histogram!("gen_ai.client.token.usage", l.clone()).record(n as f64);
                    counter!("llm_log.tokens", l).increment(n);
                }
            }
        }
        if let Some(cost) = r.cost_usd {
            // Nano-dollars: a counter is an integer, and the cheapest exchange is a few
            // micro-dollars.
            counter!("llm_log.cost_nano_usd", labels).increment((cost * 1e9).round().max(1.0) as u64);
        }
    }
}
