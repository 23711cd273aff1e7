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
/// dimensions named with [`MetricsSink::with_dimension`] (an allow-list: which labels exist is
/// the operator's choice). The labels whose values a client chooses (the model, dimensions) keep
/// at most [`MAX_LABEL_VALUES`] values each, cut at 128 bytes; later values are `(other)`. Each exchange is counted once, on its last
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
    /// The values seen per label a client can choose (model, dimensions), to bound the series.
    seen: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::collections::HashSet<String>>>,
    >,
}

/// The most values one client-chosen label takes; later ones are `(other)`.
pub const MAX_LABEL_VALUES: usize = 1000;
/// The longest label value kept, in bytes.
const MAX_LABEL_BYTES: usize = 128;

impl MetricsSink {
    /// `value` as the label `key` may carry it: cut short, and `(other)` once the label has
    /// [`MAX_LABEL_VALUES`] values, so that a client sending random model names cannot grow
    /// the series without bound.
    fn bounded(&self, key: &str, value: &str) -> String {
        let mut end = value.len().min(MAX_LABEL_BYTES);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        let value = &value[..end];
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let values = seen.entry(key.to_string()).or_default();
        if values.contains(value) {
            return value.to_string();
        }
        if values.len() >= MAX_LABEL_VALUES {
            return "(other)".to_string();
        }
        values.insert(value.to_string());
        value.to_string()
    }
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
        self.observe(&r);
    }

    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        for r in records {
            self.observe(r);
        }
    }
}

impl MetricsSink {
    fn observe(&self, r: &LlmLogRecord) {
        if r.kind != RecordKind::Response || !r.is_last {
            return;
        }
        let mut labels = vec![
            Label::new("gen_ai.operation.name", r.operation_name.clone()),
            Label::new(
                "gen_ai.provider.name",
                r.provider.clone().unwrap_or_else(|| "(none)".into()),
            ),
            Label::new("gen_ai.response.model", self.bounded("model", &model_label(r))),
            Label::new("llm_log.api", r.api.as_str().to_string()),
        ];
        for name in &self.dimensions {
            let value = r.dimensions.get(name).map_or("(none)", String::as_str);
            labels.push(Label::new(
                format!("llm_log.dimension.{name}"),
                self.bounded(name, value),
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_chosen_labels_are_bounded() {
        let sink = MetricsSink::new();
        for i in 0..MAX_LABEL_VALUES {
            assert_eq!(sink.bounded("model", &format!("m{i}")), format!("m{i}"));
        }
        assert_eq!(sink.bounded("model", "one-more"), "(other)");
        assert_eq!(
            sink.bounded("model", "m7"),
            "m7",
            "values seen before keep their series"
        );
        assert_eq!(sink.bounded("user", &"é".repeat(200)).len(), 128);
    }

    /// Records read where they lie (from a fan-out) count as records handed over do.
    #[test]
    fn borrowed_records_count_as_owned_ones() {
        use crate::record::sample;
        let records = vec![
            sample(RecordKind::Request),
            sample(RecordKind::Response),
            sample(RecordKind::Response),
        ];
        let render = |borrowed: bool| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let sink = MetricsSink::new();
            metrics::with_local_recorder(&recorder, || {
                if borrowed {
                    sink.emit_borrowed(&records);
                } else {
                    sink.emit_batch(records.clone());
                }
            });
            // The exporter's order of series is not fixed: compare the lines as a set.
            let mut lines: Vec<String> = handle.render().lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        let owned = render(false);
        assert!(
            owned.iter().any(|l| l.starts_with("llm_log_tokens{")),
            "{owned:?}"
        );
        assert_eq!(render(true), owned);
    }
}
