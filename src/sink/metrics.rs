//! The metrics sink: see [`MetricsSink`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{counter, histogram, Counter, Histogram, Label};

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
/// Each set of labels is registered with the metrics recorder the first time an exchange has it
/// (a series appears once it has a value), and its handles are kept: install the recorder before
/// the traffic, as for any kept metrics handle. Up to [`MAX_KEPT_SERIES`] label sets are kept;
/// past that, exchanges are recorded as before, looking their series up each time.
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
    /// The handles of each label set seen, by the set's values.
    series: Arc<Mutex<HashMap<String, Arc<Series>>>>,
    /// How many label sets to keep, when not [`MAX_KEPT_SERIES`] (tests).
    kept_series: Option<usize>,
}

/// The most label sets whose handles a sink keeps.
pub const MAX_KEPT_SERIES: usize = 10_000;

/// One label set's handles, each registered when first needed. Looking a series up by its
/// labels (what `counter!` and `histogram!` do) cost the gateway's writer thread about 4 µs per
/// exchange, in label copies and the recorder's lookups.
#[derive(Default)]
struct Series {
    labels: Vec<Label>,
    requests: Mutex<Vec<(&'static str, Counter)>>,
    duration: OnceLock<Histogram>,
    time_to_first_chunk: OnceLock<Histogram>,
    tokens: [OnceLock<(Histogram, Counter)>; 2],
    cost: OnceLock<Counter>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Series {
    fn with(&self, name: &'static str, value: &'static str) -> Vec<Label> {
        let mut labels = self.labels.clone();
        labels.push(Label::new(name, value));
        labels
    }

    fn requests(&self, outcome: &'static str) -> Counter {
        let mut by_outcome = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = by_outcome.iter().find(|(o, _)| *o == outcome) {
            return c.clone();
        }
        let c = counter!("llm_log.requests", self.with("outcome", outcome));
        by_outcome.push((outcome, c.clone()));
        c
    }
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
        let series = self.series_of(r);
        series.requests(r.outcome.as_str()).increment(1);
        series
            .duration
            .get_or_init(|| histogram!("gen_ai.client.operation.duration", series.labels.clone()))
            .record(r.duration.as_secs_f64());
        if let Some(ttft) = r.time_to_first_token {
            series
                .time_to_first_chunk
                .get_or_init(|| {
                    histogram!(
                        "gen_ai.client.operation.time_to_first_chunk",
                        series.labels.clone()
                    )
                })
                .record(ttft.as_secs_f64());
        }
        if !r.tokens_estimated {
            for (at, kind, tokens) in [(0, "input", r.prompt_tokens), (1, "output", r.completion_tokens)] {
                if let Some(n) = tokens {
                    let (h, c) = series.tokens[at].get_or_init(|| {
                        let l = series.with("gen_ai.token.type", kind);
                        (
                            histogram!("gen_ai.client.token.usage", l.clone()),
                            counter!("llm_log.tokens", l),
                        )
                    });
                    h.record(n as f64);
                    c.increment(n);
                }
            }
        }
        if let Some(cost) = r.cost_usd {
            // Nano-dollars: a counter is an integer, and the cheapest exchange is a few
            // micro-dollars.
            series
                .cost
                .get_or_init(|| counter!("llm_log.cost_nano_usd", series.labels.clone()))
                .increment((cost * 1e9).round().max(1.0) as u64);
        }
    }

    fn max_kept(&self) -> usize {
        self.kept_series.unwrap_or(MAX_KEPT_SERIES)
    }

    /// The handles of `r`'s label set: kept ones, or new ones (kept while there is room).
    fn series_of(&self, r: &LlmLogRecord) -> Arc<Series> {
        let mut values = vec![
            r.operation_name.to_string(),
            r.provider.as_deref().unwrap_or("(none)").to_string(),
            self.bounded("model", &model_label(r)),
            r.api.as_str().to_string(),
        ];
        for name in &self.dimensions {
            let value = r.dimensions.get(name).map_or("(none)", String::as_str);
            values.push(self.bounded(name, value));
        }
        // One string for the lookup: the values cannot hold a NUL (label values are text).
        let key = values.join("\0");
        let mut kept = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(series) = kept.get(&key) {
            return series.clone();
        }
        let names = [
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.response.model",
            "llm_log.api",
        ];
        let mut labels: Vec<Label> = names
            .iter()
            .zip(&values)
            .map(|(n, v)| Label::new(*n, v.clone()))
            .collect();
        for (name, value) in self.dimensions.iter().zip(&values[names.len()..]) {
            labels.push(Label::new(format!("llm_log.dimension.{name}"), value.clone()));
        }
        let series = Arc::new(Series {
            labels,
            ..Series::default()
        });
        if kept.len() < self.max_kept() {
            kept.insert(key, series.clone());
        }
        series
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

    fn rendered(sink: &MetricsSink, records: &[LlmLogRecord]) -> String {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || sink.emit_borrowed(records));
        handle.render()
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// Kept handles count per label set as looking the series up did: each exchange once, by
    /// outcome, tokens by type, cost only where there is one.
    #[test]
    fn kept_series_count_every_exchange_in_its_own_series() {
        use crate::record::sample;
        use crate::Outcome;
        let mut records = Vec::new();
        for _ in 0..3 {
            let mut r = sample(RecordKind::Response);
            r.model_name = Some("a".into());
            r.cost_usd = Some(0.001);
            records.push(r);
        }
        let mut b = sample(RecordKind::Response);
        b.model_name = Some("b".into());
        b.outcome = Outcome::UpstreamError;
        b.cost_usd = None;
        b.prompt_tokens = None;
        b.completion_tokens = None;
        records.push(b);
        let text = rendered(&MetricsSink::new(), &records);
        let labels = |model: &str| {
            format!(
                "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"azure.ai.openai\",gen_ai_response_model=\"{model}\",llm_log_api=\"chat_completions\""
            )
        };
        let requests = |model: &str, outcome: &str| {
            value(
                &text,
                &format!("llm_log_requests{{{},outcome=\"{outcome}\"}}", labels(model)),
            )
        };
        assert_eq!(requests("a", "Completed"), Some(3.0), "{text}");
        assert_eq!(requests("b", "UpstreamError"), Some(1.0), "{text}");
        assert_eq!(requests("b", "Completed"), None);
        let input = records[0].prompt_tokens.unwrap() as f64;
        assert_eq!(
            value(
                &text,
                &format!("llm_log_tokens{{{},gen_ai_token_type=\"input\"}}", labels("a"))
            ),
            Some(3.0 * input)
        );
        assert_eq!(
            value(&text, &format!("llm_log_cost_nano_usd{{{}}}", labels("a"))),
            Some(3e6)
        );
        assert!(
            !text.contains(&format!("llm_log_cost_nano_usd{{{}}}", labels("b"))),
            "{text}"
        );
        assert!(
            !text.contains(&format!("llm_log_tokens{{{}", labels("b"))),
            "{text}"
        );
    }

    /// Past the kept label sets, exchanges still count, in the same series.
    #[test]
    fn label_sets_past_the_kept_ones_still_count() {
        use crate::record::sample;
        let mut sink = MetricsSink::new().with_dimension("user");
        sink.kept_series = Some(20);
        let mut records = Vec::new();
        for user in 0..3 {
            for model in 0..10 {
                let mut r = sample(RecordKind::Response);
                r.model_name = Some(format!("m{model}"));
                r.dimensions = Arc::new([("user".to_string(), format!("u{user}"))].into());
                records.push(r);
            }
        }
        // The last label set again: not kept, so looked up, into the same series.
        records.push(records[records.len() - 1].clone());
        let text = rendered(&sink, &records);
        assert_eq!(sink.series.lock().unwrap().len(), 20);
        let total: f64 = text
            .lines()
            .filter(|l| l.starts_with("llm_log_requests{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(total, records.len() as f64);
        let last = text
            .lines()
            .find(|l| l.starts_with("llm_log_requests{") && l.contains("\"m9\"") && l.contains("\"u2\""))
            .unwrap();
        assert!(last.ends_with(" 2"), "{last}");
    }
}
