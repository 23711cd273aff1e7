//! Token use and request counts by model, deployment, API family and/or outcome, per time bucket
//! over a time range, with latency and time-to-first-token percentiles: the "language models"
//! view of a gateway, computed from records in constant memory per group.
//!
//! Each exchange is counted once, on its last response record (where the token counts, duration
//! and outcome are), so chunked messages never count twice. Percentiles come from a log-scale
//! histogram with 10% resolution (constant memory, whatever the number of exchanges).
//!
//! ```
//! use std::time::Duration;
//! use tower_llm_log::analytics::{Analytics, GroupBy};
//! # let records: Vec<tower_llm_log::LlmLogRecord> = Vec::new();
//!
//! let mut usage = Analytics::new(Duration::from_secs(3600), vec![GroupBy::Model]);
//! for record in &records {
//!     usage.add(record);
//! }
//! for row in usage.rows() {
//!     println!("{:?} {:?} requests={} total_tokens={} p50={:?}",
//!              row.bucket_start, row.group, row.requests, row.total_tokens, row.latency_p50);
//! }
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{LlmLogRecord, RecordKind};

/// A dimension to group by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupBy {
    /// `model_name`.
    Model,
    /// `deployment_name`.
    Deployment,
    /// The API family.
    Api,
    /// The provider.
    Provider,
    /// The outcome of the response side.
    Outcome,
    /// `operation_name` (`chat`, MCP's `tools/call`, ...).
    Operation,
    /// `tool_name`: MCP tool calls by tool (calls, errors, latency per tool).
    Tool,
    /// A dimension of the exchange (`user`, `api_key`, `end_user`, ...; see
    /// [`attribution`](crate::attribution)).
    Dimension(String),
}

impl GroupBy {
    /// Parses `model`, `deployment`, `api`, `provider`, `outcome`, `operation`, `tool` or
    /// `dimension:NAME`.
    pub fn parse(text: &str) -> Option<GroupBy> {
        Some(match text {
            "model" => GroupBy::Model,
            "deployment" => GroupBy::Deployment,
            "api" => GroupBy::Api,
            "provider" => GroupBy::Provider,
            "outcome" => GroupBy::Outcome,
            "operation" => GroupBy::Operation,
            "tool" => GroupBy::Tool,
            _ => GroupBy::Dimension(
                text.strip_prefix("dimension:")
                    .filter(|n| !n.is_empty())?
                    .to_string(),
            ),
        })
    }

    /// The column name: `model`, ..., `dimension:NAME`.
    pub fn name(&self) -> String {
        match self {
            GroupBy::Model => "model".into(),
            GroupBy::Deployment => "deployment".into(),
            GroupBy::Api => "api".into(),
            GroupBy::Provider => "provider".into(),
            GroupBy::Outcome => "outcome".into(),
            GroupBy::Operation => "operation".into(),
            GroupBy::Tool => "tool".into(),
            GroupBy::Dimension(name) => format!("dimension:{name}"),
        }
    }
}

/// The value used where a record has none for a dimension.
pub const NONE: &str = "(none)";

/// The group that new groups are summed into once there are [`Analytics::max_groups`].
pub const OTHER: &str = "(other)";

/// The default bound on distinct groups.
pub const DEFAULT_MAX_GROUPS: usize = 10_000;

/// Rows (a group in a time bucket) per allowed group, and in all: a row costs about 400 bytes.
const ROWS_PER_GROUP: usize = 16;
const MAX_ROWS: usize = 200_000;
/// Rows with latency and TTFT histograms (about 9 KiB each); later rows have no percentiles.
const MAX_HISTOGRAM_ROWS: usize = 20_000;

/// The longest duration a histogram tells apart (one day); longer ones count as one day.
const HISTOGRAM_MAX_MICROS: u64 = 86_400_000_000;

/// Durations in bounded memory (an `hdrhistogram` of one significant digit: about 4 KiB, made
/// on first use, so groups and time buckets with no TTFT cost nothing), for percentiles within
/// [`QUANTILE_ERROR`] of the true value, from 1 microsecond to one day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    counts: Option<Box<hdrhistogram::Histogram<u64>>>,
}

/// The most a percentile from a [`Histogram`] is above the true one, relative to it: 1/16
/// (`hdrhistogram` with one significant digit keeps 16 sub-buckets per power of two).
pub const QUANTILE_ERROR: f64 = 1.0 / 16.0;

impl Histogram {
    fn counts(&mut self) -> Option<&mut hdrhistogram::Histogram<u64>> {
        if self.counts.is_none() {
            let made = hdrhistogram::Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, 1).ok()?;
            self.counts = Some(Box::new(made));
        }
        self.counts.as_deref_mut()
    }

    /// Whether its counters exist (a duration was recorded).
    pub fn is_allocated(&self) -> bool {
        self.counts.is_some()
    }

    /// Counts one duration.
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, HISTOGRAM_MAX_MICROS);
        if let Some(counts) = self.counts() {
            counts.saturating_record(micros);
        }
    }

    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.counts.as_ref().map_or(0, |c| c.len())
    }

    /// The duration below which a fraction `q` (0 to 1) of the counted ones fall, at most
    /// [`QUANTILE_ERROR`] above the true value; `None` when nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts = self.counts.as_ref().filter(|c| !c.is_empty())?;
        Some(Duration::from_micros(counts.value_at_quantile(q.clamp(0.0, 1.0))))
    }

    /// The non-empty buckets: each one's upper bound and count, shortest first.
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.counts
            .iter()
            .flat_map(|c| c.iter_recorded())
            .map(|v| (Duration::from_micros(v.value_iterated_to()), v.count_at_value()))
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        let Some(theirs) = other.counts.as_deref() else {
            return;
        };
        if let Some(mine) = self.counts() {
            // Same bounds and precision: adding cannot fail.
            let _ = mine.add(theirs);
        }
    }
}

/// What one group in one time bucket adds up to.
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    requests: u64,
    errors: u64,
    streamed: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    cached_tokens: u64,
    reasoning_tokens: u64,
    without_usage: u64,
    estimated_exchanges: u64,
    estimated_tokens: u64,
    cost_pico: u128,
    estimated_cost_pico: u128,
    latency: Histogram,
    ttft: Histogram,
}

impl Totals {
    /// Adds another row's totals (the same group, a bucket merged into a wider one).
    fn merge(&mut self, other: Totals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.streamed += other.streamed;
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(other.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(other.reasoning_tokens);
        self.without_usage += other.without_usage;
        self.estimated_exchanges += other.estimated_exchanges;
        self.estimated_tokens = self.estimated_tokens.saturating_add(other.estimated_tokens);
        self.cost_pico += other.cost_pico;
        self.estimated_cost_pico += other.estimated_cost_pico;
        self.latency.merge(&other.latency);
        self.ttft.merge(&other.ttft);
    }
}

/// One row: a group in a time bucket.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UsageRow {
    /// The start of the time bucket.
    pub bucket_start: SystemTime,
    /// The group's values, in the order of the `group_by` dimensions ([`NONE`] where absent).
    pub group: Vec<String>,
    /// Exchanges.
    pub requests: u64,
    /// Exchanges whose response did not complete (an upstream error, a disconnect, ...).
    pub errors: u64,
    /// Streamed exchanges.
    pub streamed: u64,
    /// Exact prompt tokens, as reported by the provider.
    pub prompt_tokens: u64,
    /// Exact completion tokens.
    pub completion_tokens: u64,
    /// Exact total tokens.
    pub total_tokens: u64,
    /// Cached prompt tokens.
    pub cached_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Exchanges without usage reported by the provider (not counted as zero tokens).
    pub without_usage: u64,
    /// Of those, exchanges whose tokens the layer estimated (`tokens_estimated`).
    pub estimated_exchanges: u64,
    /// Their estimated total tokens, kept apart from the exact columns.
    pub estimated_tokens: u64,
    /// What the exchanges with exact tokens cost (`CostUsd` summed), in USD.
    pub cost_usd: f64,
    /// What the exchanges with estimated tokens cost, kept apart.
    pub estimated_cost_usd: f64,
    /// Median duration.
    pub latency_p50: Option<Duration>,
    /// 90th percentile duration.
    pub latency_p90: Option<Duration>,
    /// 99th percentile duration.
    pub latency_p99: Option<Duration>,
    /// Median time to first token (streams).
    pub ttft_p50: Option<Duration>,
    /// 90th percentile time to first token.
    pub ttft_p90: Option<Duration>,
    /// 99th percentile time to first token.
    pub ttft_p99: Option<Duration>,
}

/// Adds up records by time bucket and group.
#[derive(Debug, Clone)]
pub struct Analytics {
    bucket: Duration,
    group_by: Vec<GroupBy>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    rows: BTreeMap<(u128, Vec<String>), Totals>,
    /// The distinct groups seen, up to `max_groups`.
    groups: HashSet<Vec<String>>,
    max_groups: usize,
    folded: u64,
    unsummed: u64,
    /// Rows whose histograms are allocated.
    histogram_rows: usize,
    /// When the rows are full, double the bucket width instead of folding.
    coarsen: bool,
    skipped: u64,
    dedup_window: usize,
    seen: HashSet<(crate::CorrelationId, u32, SystemTime)>,
    seen_order: VecDeque<(crate::CorrelationId, u32, SystemTime)>,
    duplicates: u64,
}

impl Analytics {
    /// Buckets of `bucket` (a minute, an hour, a day, any non-zero duration), grouped by
    /// `group_by` (empty: one group).
    pub fn new(bucket: Duration, group_by: Vec<GroupBy>) -> Self {
        Analytics {
            bucket: bucket.max(Duration::from_nanos(1)),
            group_by,
            since: None,
            until: None,
            rows: BTreeMap::new(),
            skipped: 0,
            dedup_window: 100_000,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            duplicates: 0,
            groups: HashSet::new(),
            max_groups: DEFAULT_MAX_GROUPS,
            folded: 0,
            unsummed: 0,
            histogram_rows: 0,
            coarsen: false,
        }
    }

    /// At most `groups` distinct groups (default [`DEFAULT_MAX_GROUPS`]); exchanges of any
    /// group past them are summed in one group whose values are all [`OTHER`], so a log with a
    /// million distinct model names costs bounded memory.
    pub fn max_groups(mut self, groups: usize) -> Self {
        self.max_groups = groups.max(1);
        self
    }

    /// When the rows are full (distinct groups times time buckets), doubles the bucket width and
    /// merges the rows, as often as needed, instead of summing new rows as `(other)`: for a
    /// view of a whole log whose span is not known in advance (`llmlog report`).
    pub fn coarsen_when_full(mut self) -> Self {
        self.coarsen = true;
        self
    }

    /// The bucket width now (wider than asked after coarsening).
    pub fn bucket(&self) -> Duration {
        self.bucket
    }

    fn coarsen_rows(&mut self) {
        let limit = Duration::from_secs(100 * 365 * 86_400);
        while self.rows.len() >= self.max_rows() && self.bucket < limit {
            self.bucket *= 2;
            let width = self.bucket.as_nanos();
            let rows = std::mem::take(&mut self.rows);
            for ((bucket, group), totals) in rows {
                match self.rows.entry((bucket / width * width, group)) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(totals);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(totals),
                }
            }
        }
        self.histogram_rows = self.rows.values().filter(|t| t.latency.is_allocated()).count();
    }

    /// Exchanges summed into the [`OTHER`] group because there were too many groups.
    pub fn folded(&self) -> u64 {
        self.folded
    }

    /// Only exchanges that started at or after `since`.
    pub fn since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }

    /// Only exchanges that started before `until`.
    pub fn until(mut self, until: SystemTime) -> Self {
        self.until = Some(until);
        self
    }

    /// Exchanges left out by the time range so far.
    pub fn out_of_range(&self) -> u64 {
        self.skipped
    }

    fn value(record: &LlmLogRecord, by: &GroupBy) -> String {
        let v = match by {
            GroupBy::Dimension(name) => record.dimensions.get(name).cloned(),
            GroupBy::Model => record.model_name.clone(),
            GroupBy::Deployment => record.deployment_name.clone(),
            GroupBy::Api => Some(record.api.as_str().to_string()),
            GroupBy::Provider => record.provider.as_deref().map(str::to_string),
            GroupBy::Outcome => Some(record.outcome.as_str().to_string()),
            GroupBy::Operation => Some(record.operation_name.to_string()),
            GroupBy::Tool => record.tool_name.clone(),
        };
        v.unwrap_or_else(|| NONE.to_string())
    }

    /// Takes one record; only the last response record of each exchange counts.
    /// Returns whether it counted: it is the last response record of an exchange in the range,
    /// not seen before within the duplicate window.
    pub fn add(&mut self, record: &LlmLogRecord) -> bool {
        if record.kind != RecordKind::Response || !record.is_last {
            return false;
        }
        let t = record.time_generated;
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
            self.skipped += 1;
            return false;
        }
        if self.dedup_window > 0 {
            // The same record read twice (overlapping files): count the exchange once. The start
            // time is part of the key, so two exchanges sharing a client's id both count.
            let key = (record.correlation_id.clone(), record.sequence_number, t);
            if !self.seen.insert(key.clone()) {
                self.duplicates += 1;
                return false;
            }
            self.seen_order.push_back(key);
            if self.seen_order.len() > self.dedup_window {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
        let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let width = self.bucket.as_nanos();
        let bucket = since_epoch / width * width;
        let mut group: Vec<String> = self.group_by.iter().map(|by| Self::value(record, by)).collect();
        if !self.groups.contains(&group) {
            if self.groups.len() < self.max_groups {
                self.groups.insert(group.clone());
            } else {
                self.folded += 1;
                group = vec![OTHER.to_string(); self.group_by.len()];
            }
        }
        let mut key = (bucket, group);
        if self.coarsen && !self.rows.contains_key(&key) && self.rows.len() >= self.max_rows() {
            self.coarsen_rows();
            let width = self.bucket.as_nanos();
            key.0 = since_epoch / width * width;
        }
        if !self.rows.contains_key(&key) && self.rows.len() >= self.max_rows() {
            // Rows are bounded too (distinct groups times time buckets): the rest of this
            // bucket is summed in its `(other)` row, and past a margin not at all (counted).
            key.1 = vec![OTHER.to_string(); self.group_by.len()];
            if !self.rows.contains_key(&key) && self.rows.len() >= self.max_rows() + self.max_rows() / 10 {
                self.unsummed += 1;
                return false;
            }
            self.folded += 1;
        }
        let room_for_histograms = self.histogram_rows < MAX_HISTOGRAM_ROWS;
        let totals = self.rows.entry(key).or_default();
        if !totals.latency.is_allocated() && room_for_histograms {
            self.histogram_rows += 1;
        }
        let record_times = totals.latency.is_allocated() || room_for_histograms;
        totals.requests += 1;
        totals.errors += u64::from(!record.outcome.is_success());
        totals.streamed += u64::from(record.is_stream_completion);
        // Cost summed exactly, in pico-dollars (what the layer computed it in).
        let cost = record.cost_usd.map_or(0, |c| (c * 1e12).round().max(0.0) as u128);
        if record.tokens_estimated {
            // Estimates stay out of the exact columns, so bills reconcile with them.
            totals.estimated_cost_pico += cost;
            totals.without_usage += 1;
            totals.estimated_exchanges += 1;
            totals.estimated_tokens = totals
                .estimated_tokens
                .saturating_add(record.total_tokens.unwrap_or(0));
            if record_times {
                totals.latency.record(record.duration);
                if let Some(ttft) = record.time_to_first_token {
                    totals.ttft.record(ttft);
                }
            }
            return true;
        }
        let exact = [
            (&mut totals.prompt_tokens, record.prompt_tokens),
            (&mut totals.completion_tokens, record.completion_tokens),
            (&mut totals.total_tokens, record.total_tokens),
            (&mut totals.cached_tokens, record.cached_tokens),
            (&mut totals.reasoning_tokens, record.reasoning_tokens),
        ];
        for (sum, n) in exact {
            *sum = sum.saturating_add(n.unwrap_or(0));
        }
        if record.total_tokens.is_none() && record.prompt_tokens.is_none() {
            totals.without_usage += 1;
        }
        totals.cost_pico += cost;
        if record_times {
            totals.latency.record(record.duration);
            if let Some(ttft) = record.time_to_first_token {
                totals.ttft.record(ttft);
            }
        }
        true
    }

    fn max_rows(&self) -> usize {
        self.max_groups.saturating_mul(ROWS_PER_GROUP).min(MAX_ROWS)
    }

    /// Exchanges not summed at all: the rows were full and so was the margin for `(other)`
    /// rows of new time buckets.
    pub fn unsummed(&self) -> u64 {
        self.unsummed
    }

    /// How many recent exchanges are remembered to recognise records read twice (default
    /// 100,000; 0 turns it off).
    pub fn dedup_window(mut self, exchanges: usize) -> Self {
        self.dedup_window = exchanges;
        self
    }

    /// Records left out because the same exchange was already counted.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Every group of every bucket, in time order then group order.
    pub fn rows(&self) -> Vec<UsageRow> {
        self.rows
            .iter()
            .map(|((bucket, group), t)| UsageRow {
                bucket_start: UNIX_EPOCH + Duration::from_nanos(u64::try_from(*bucket).unwrap_or(u64::MAX)),
                group: group.clone(),
                requests: t.requests,
                errors: t.errors,
                streamed: t.streamed,
                prompt_tokens: t.prompt_tokens,
                completion_tokens: t.completion_tokens,
                total_tokens: t.total_tokens,
                cached_tokens: t.cached_tokens,
                reasoning_tokens: t.reasoning_tokens,
                without_usage: t.without_usage,
                estimated_exchanges: t.estimated_exchanges,
                estimated_tokens: t.estimated_tokens,
                cost_usd: crate::cost::usd(t.cost_pico),
                estimated_cost_usd: crate::cost::usd(t.estimated_cost_pico),
                latency_p50: t.latency.quantile(0.5),
                latency_p90: t.latency.quantile(0.9),
                latency_p99: t.latency.quantile(0.99),
                ttft_p50: t.ttft.quantile(0.5),
                ttft_p90: t.ttft.quantile(0.9),
                ttft_p99: t.ttft.quantile(0.99),
            })
            .collect()
    }

    /// The latency histogram over every group and bucket.
    pub fn latency(&self) -> Histogram {
        let mut all = Histogram::default();
        for t in self.rows.values() {
            all.merge(&t.latency);
        }
        all
    }

    /// The time-to-first-token histogram over every group and bucket.
    pub fn ttft(&self) -> Histogram {
        let mut all = Histogram::default();
        for t in self.rows.values() {
            all.merge(&t.ttft);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use crate::Outcome;

    #[test]
    fn a_long_log_coarsens_its_buckets_instead_of_losing_rows() {
        // 1,000 minutes of one exchange each, with room for 48 rows (3 groups × 16).
        let mut a = Analytics::new(Duration::from_secs(60), vec![GroupBy::Model])
            .max_groups(3)
            .coarsen_when_full();
        for i in 0..1000u64 {
            let mut r = sample(RecordKind::Response);
            r.correlation_id = format!("c{i}").into();
            r.time_generated = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + i * 60);
            assert!(a.add(&r));
        }
        let rows = a.rows();
        assert!(rows.len() < 48, "{}", rows.len());
        assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 1000, "nothing lost");
        assert!(a.bucket() >= Duration::from_secs(60 * 32));
        assert_eq!((a.folded(), a.unsummed()), (0, 0));
    }

    #[test]
    fn groups_past_the_bound_are_summed_as_other() {
        let mut a = Analytics::new(Duration::from_secs(3600), vec![GroupBy::Model]).max_groups(3);
        for i in 0..100 {
            let mut r = sample(RecordKind::Response);
            r.model_name = Some(format!("model-{i}"));
            r.correlation_id = format!("c{i}").into();
            assert!(a.add(&r));
        }
        let rows = a.rows();
        assert_eq!(rows.len(), 4);
        let other = rows.iter().find(|r| r.group == [OTHER]).unwrap();
        assert_eq!(other.requests, 97);
        assert_eq!(a.folded(), 97);
    }

    #[test]
    fn percentiles_are_within_the_stated_error_in_bounded_memory() {
        let mut h = Histogram::default();
        // 1 ms to 10 s, uniformly in log space.
        let values: Vec<u64> = (0..10_000)
            .map(|i| (1_000.0 * 10f64.powf(4.0 * i as f64 / 10_000.0)) as u64)
            .collect();
        for &v in &values {
            h.record(Duration::from_micros(v));
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.5, 0.9, 0.99] {
            let truth = sorted[((q * sorted.len() as f64).ceil() as usize).max(1) - 1] as f64;
            let got = h.quantile(q).unwrap().as_micros() as f64;
            assert!(
                got >= truth * (1.0 - 1e-9) && got <= truth * (1.0 + QUANTILE_ERROR),
                "q{q}: {got} against {truth}"
            );
        }
        let counters = h.counts.as_ref().unwrap().distinct_values();
        assert!(counters * 8 <= 8 << 10, "{counters} counters");
        // A day or more counts as a day; nothing is lost.
        h.record(Duration::from_secs(10 * 86_400));
        assert_eq!(h.count(), 10_001);
    }

    fn exchange(
        at_secs: u64,
        model: &str,
        total: Option<u64>,
        outcome: Outcome,
        ms: u64,
    ) -> Vec<LlmLogRecord> {
        let mut request = sample(RecordKind::Request);
        let mut chunk = sample(RecordKind::Response);
        let mut last = sample(RecordKind::Response);
        for r in [&mut request, &mut chunk, &mut last] {
            r.time_generated = UNIX_EPOCH + Duration::from_secs(at_secs);
            r.model_name = Some(model.into());
            r.outcome = outcome;
            r.duration = Duration::from_millis(ms);
        }
        chunk.is_last = false;
        chunk.total_tokens = None;
        last.sequence_number = 1;
        last.total_tokens = total;
        last.prompt_tokens = total.map(|t| t / 2);
        vec![request, chunk, last]
    }

    #[test]
    fn estimated_tokens_stay_out_of_the_exact_columns() {
        let mut a = Analytics::new(Duration::from_secs(3600), vec![GroupBy::Model]);
        let mut exact = crate::record::sample(RecordKind::Response);
        exact.total_tokens = Some(15);
        let mut estimated = exact.clone();
        estimated.correlation_id = "other".into();
        estimated.tokens_estimated = true;
        estimated.total_tokens = Some(40);
        assert!(a.add(&exact) && a.add(&estimated));
        let row = &a.rows()[0];
        assert_eq!((row.requests, row.total_tokens), (2, 15));
        assert_eq!(
            (row.without_usage, row.estimated_exchanges, row.estimated_tokens),
            (1, 1, 40)
        );
    }

    #[test]
    fn exchanges_count_once_in_their_bucket_and_group() {
        let mut a = Analytics::new(Duration::from_secs(3600), vec![GroupBy::Model]);
        let records: Vec<LlmLogRecord> = [
            exchange(0, "gpt-4o", Some(100), Outcome::Completed, 10),
            exchange(3599, "gpt-4o", Some(50), Outcome::UpstreamError, 20),
            exchange(3600, "gpt-4o", Some(7), Outcome::Completed, 30), // the next hour, exactly at its edge
            exchange(10, "o3", None, Outcome::Completed, 40),
        ]
        .concat();
        for r in &records {
            a.add(r);
        }
        let rows = a.rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].group[0].as_str(), rows[0].requests, rows[0].total_tokens),
            ("gpt-4o", 2, 150)
        );
        assert_eq!(rows[0].errors, 1);
        assert_eq!(rows[0].prompt_tokens, 75);
        assert_eq!(
            (
                rows[1].group[0].as_str(),
                rows[1].without_usage,
                rows[1].total_tokens
            ),
            ("o3", 1, 0)
        );
        assert_eq!(rows[2].bucket_start, UNIX_EPOCH + Duration::from_secs(3600));
        assert_eq!(rows[2].total_tokens, 7);
    }

    #[test]
    fn records_read_twice_count_once() {
        let mut a = Analytics::new(Duration::from_secs(60), vec![]);
        let records = exchange(0, "m", Some(10), Outcome::Completed, 1);
        for r in records.iter().chain(records.iter()) {
            a.add(r);
        }
        assert_eq!(
            (a.rows()[0].requests, a.rows()[0].total_tokens, a.duplicates()),
            (1, 10, 1)
        );
        // Another exchange reusing the id (a client retry) at another time counts on its own.
        let mut retry = records[2].clone();
        retry.time_generated += Duration::from_secs(1);
        assert!(a.add(&retry));
        assert_eq!(a.rows()[0].requests, 2);
    }

    #[test]
    fn the_range_is_half_open() {
        let start = UNIX_EPOCH + Duration::from_secs(100);
        let end = UNIX_EPOCH + Duration::from_secs(200);
        let mut a = Analytics::new(Duration::from_secs(60), vec![])
            .since(start)
            .until(end);
        for at in [99, 100, 199, 200] {
            for r in exchange(at, "m", Some(1), Outcome::Completed, 1) {
                a.add(&r);
            }
        }
        assert_eq!(a.rows().iter().map(|r| r.requests).sum::<u64>(), 2);
        assert_eq!(a.out_of_range(), 2);
    }

    #[test]
    fn grouping_by_several_dimensions() {
        let mut a = Analytics::new(
            Duration::from_secs(86_400),
            vec![GroupBy::Model, GroupBy::Outcome],
        );
        for r in [
            exchange(0, "a", Some(1), Outcome::Completed, 1),
            exchange(1, "a", Some(1), Outcome::ClientDisconnected, 1),
        ]
        .concat()
        {
            a.add(&r);
        }
        let groups: Vec<Vec<String>> = a.rows().into_iter().map(|r| r.group).collect();
        assert_eq!(
            groups,
            [
                vec!["a".to_string(), "ClientDisconnected".into()],
                vec!["a".into(), "Completed".into()]
            ]
        );
    }

    #[test]
    fn percentiles_are_within_ten_percent() {
        let mut h = Histogram::default();
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = h.quantile(q).unwrap().as_secs_f64() * 1e3;
            assert!(got >= want && got <= want * 1.1, "q{q}: {got} ms for {want} ms");
        }
        assert_eq!(Histogram::default().quantile(0.5), None);
        h.record(Duration::from_secs(1_000_000));
        assert!(h.quantile(1.0).is_some(), "huge values land in the last bucket");
    }
}
