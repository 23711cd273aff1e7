//! `llmlog report`: one self-contained HTML file (inline CSS and SVG, nothing fetched) with tokens
//! over time by model, requests over time, the latency and time-to-first-token distributions, and
//! the exchanges that used the most tokens.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_llm_log::analytics::{Analytics, GroupBy, Histogram};
use tower_llm_log::LlmLogRecord;

/// A colour per series, repeated when there are more series.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// What a table of top values is sorted by.
type RowKey = fn(&tower_llm_log::analytics::UsageRow) -> f64;

/// One of the top exchanges by tokens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Top {
    tokens: u64,
    correlation_id: String,
    model: String,
    time: SystemTime,
    duration_ms: u64,
}

/// Gathers what the report shows, in memory bounded by groups, buckets and `top`.
pub struct Report {
    by_model: Analytics,
    overall: Analytics,
    /// Per dimension, totals by value over the whole range.
    dimensions: Vec<(String, Analytics)>,
    top: BinaryHeap<Reverse<Top>>,
    top_n: usize,
    bucket_secs: f64,
}

impl Report {
    pub fn new(
        bucket: Duration,
        since: Option<SystemTime>,
        until: Option<SystemTime>,
        top_n: usize,
        dimensions: Vec<String>,
        max_groups: usize,
    ) -> Self {
        let ranged = |a: Analytics| {
            let mut a = a.max_groups(max_groups);
            if let Some(s) = since {
                a = a.since(s);
            }
            if let Some(u) = until {
                a = a.until(u);
            }
            a
        };
        let by_model = ranged(Analytics::new(bucket, vec![GroupBy::Model]));
        let overall = ranged(Analytics::new(bucket, vec![]));
        // One bucket for the whole range: totals per value.
        let whole = Duration::from_secs(100 * 365 * 86_400);
        let dimensions = dimensions
            .into_iter()
            .map(|name| {
                let a = ranged(Analytics::new(whole, vec![GroupBy::Dimension(name.clone())]));
                (name, a)
            })
            .collect();
        Report {
            by_model,
            overall,
            dimensions,
            top: BinaryHeap::new(),
            top_n,
            bucket_secs: bucket.as_secs_f64(),
        }
    }

    pub fn add(&mut self, r: &LlmLogRecord) {
        self.by_model.add(r);
        for (_, a) in &mut self.dimensions {
            a.add(r);
        }
        // Counted (in range, the last response record, not read before): then it can rank.
        if !self.overall.add(r) {
            return;
        }
        let t = r.time_generated;
        if let (Some(tokens), true) = (r.total_tokens, self.top_n > 0) {
            self.top.push(Reverse(Top {
                tokens,
                correlation_id: r.correlation_id.clone(),
                model: r.model_name.clone().unwrap_or_else(|| "(none)".into()),
                time: t,
                duration_ms: r.duration.as_millis() as u64,
            }));
            if self.top.len() > self.top_n {
                self.top.pop();
            }
        }
    }

    pub fn html(&self) -> String {
        let rows = self.by_model.rows();
        let mut tokens: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut cost: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &rows {
            let model = r.group.first().cloned().unwrap_or_default();
            tokens
                .entry(model.clone())
                .or_default()
                .push((secs(r.bucket_start), r.total_tokens as f64));
            cost.entry(model)
                .or_default()
                .push((secs(r.bucket_start), r.cost_usd + r.estimated_cost_usd));
        }
        let total_cost: f64 = rows.iter().map(|r| r.cost_usd).sum();
        let estimated_cost: f64 = rows.iter().map(|r| r.estimated_cost_usd).sum();
        let overall = self.overall.rows();
        let requests: Vec<(f64, f64)> = overall
            .iter()
            .map(|r| (secs(r.bucket_start), r.requests as f64))
            .collect();
        let errors: Vec<(f64, f64)> = overall
            .iter()
            .map(|r| (secs(r.bucket_start), r.errors as f64))
            .collect();
        let total_requests: u64 = overall.iter().map(|r| r.requests).sum();
        let total_tokens: u64 = overall.iter().map(|r| r.total_tokens).sum();
        let mut top: Vec<Top> = self.top.iter().map(|Reverse(t)| t.clone()).collect();
        top.sort_by(|a, b| {
            b.tokens
                .cmp(&a.tokens)
                .then_with(|| a.correlation_id.cmp(&b.correlation_id))
        });

        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>LLM usage report</title>\n<style>");
        h.push_str("body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}");
        h.push_str("table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}");
        h.push_str("td.n{text-align:right}svg text{font-size:11px;fill:#444}</style></head><body>\n");
        let _ = writeln!(h, "<h1>LLM usage report</h1>\n<p>{total_requests} exchanges, {total_tokens} tokens (exact, as reported by the providers), ${total_cost:.6} (plus ${estimated_cost:.6} on estimated tokens).</p>");
        h.push_str("<h2>Tokens over time, by model</h2>\n");
        let series: Vec<(String, Vec<(f64, f64)>)> = tokens.into_iter().collect();
        h.push_str(&line_chart("tokens", &with_zeros(series, self.bucket_secs)));
        h.push_str("<h2>Cost over time, by model (USD)</h2>\n");
        let series: Vec<(String, Vec<(f64, f64)>)> = cost.into_iter().collect();
        h.push_str(&line_chart("cost", &with_zeros(series, self.bucket_secs)));
        h.push_str("<h2>Requests over time</h2>\n");
        let counts = vec![("requests".to_string(), requests), ("errors".to_string(), errors)];
        h.push_str(&line_chart("requests", &with_zeros(counts, self.bucket_secs)));
        let _ = writeln!(
            h,
            "<p>Percentiles are at most {:.2}% above the true value (hdrhistogram, one significant digit).</p>",
            tower_llm_log::analytics::QUANTILE_ERROR * 100.0
        );
        h.push_str("<h2>Latency</h2>\n");
        h.push_str(&histogram_chart("latency", &self.overall.latency()));
        h.push_str("<h2>Time to first token (streams)</h2>\n");
        h.push_str(&histogram_chart("ttft", &self.overall.ttft()));
        let _ = writeln!(h, "<h2>Top {} exchanges by tokens</h2>", top.len());
        h.push_str("<table><tr><th>correlation id</th><th>time</th><th>model</th><th>tokens</th><th>duration ms</th></tr>\n");
        for t in &top {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&t.correlation_id),
                humantime::format_rfc3339_seconds(t.time),
                escape(&t.model),
                t.tokens,
                t.duration_ms
            );
        }
        h.push_str("</table>\n");
        for (name, a) in &self.dimensions {
            self.top_values(&mut h, name, a);
        }
        h.push_str("</body></html>\n");
        h
    }

    /// The top values of one dimension, by tokens and by cost.
    fn top_values(&self, h: &mut String, name: &str, a: &Analytics) {
        let mut rows = a.rows();
        rows.retain(|r| {
            r.group
                .first()
                .is_some_and(|v| v != tower_llm_log::analytics::NONE)
        });
        if rows.is_empty() {
            return;
        }
        let orders: [(&str, RowKey); 2] = [
            ("tokens", |r| r.total_tokens as f64),
            ("cost", |r| r.cost_usd + r.estimated_cost_usd),
        ];
        for (by, key) in orders {
            rows.sort_by(|x, y| key(y).total_cmp(&key(x)).then_with(|| x.group.cmp(&y.group)));
            let shown = rows.len().min(self.top_n);
            let _ = writeln!(h, "<h2>Top {shown} values of {} by {by}</h2>", escape(name));
            h.push_str("<table><tr><th>value</th><th>requests</th><th>tokens</th><th>cost USD</th></tr>\n");
            for r in rows.iter().take(shown) {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.6}</td></tr>",
                    escape(r.group.first().map_or("", String::as_str)),
                    r.requests,
                    r.total_tokens,
                    r.cost_usd + r.estimated_cost_usd
                );
            }
            h.push_str("</table>\n");
        }
    }
}

/// Adds a zero for every empty bucket between the first and the last of the chart, so a line
/// drops to zero across a quiet spell instead of bridging it (up to 5,000 buckets; beyond that the
/// points are drawn as they are).
fn with_zeros(series: Vec<(String, Vec<(f64, f64)>)>, bucket: f64) -> Vec<(String, Vec<(f64, f64)>)> {
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x));
    let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if lo > hi || bucket <= 0.0 || (hi - lo) / bucket > 5000.0 {
        return series;
    }
    let steps = ((hi - lo) / bucket).round() as usize;
    series
        .into_iter()
        .map(|(name, points)| {
            let filled = (0..=steps)
                .map(|i| {
                    let x = lo + bucket * i as f64;
                    let y = points
                        .iter()
                        .find(|p| (p.0 - x).abs() < bucket / 2.0)
                        .map_or(0.0, |p| p.1);
                    (x, y)
                })
                .collect();
            (name, filled)
        })
        .collect()
}

/// A y-axis label: whole numbers as they are, fractions with two decimals (so the ticks of a chart
/// whose maximum is 1 read 0.25, 0.5, 0.75 rather than 0, 1, 1).
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        format!("{v:.2}")
    }
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 30.0;
const TOP_PAD: f64 = 10.0;
const RIGHT: f64 = 150.0;

/// A line chart: one polyline per series (marked `data-series`), a legend, y ticks, and the time
/// range on the x axis.
fn line_chart(id: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">",
        W + RIGHT,
        H
    );
    if x0 > x1 {
        s.push_str("<text x=\"10\" y=\"20\">no data</text></svg>\n");
        return s;
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 };
    let span = if x1 > x0 { x1 - x0 } else { 1.0 };
    let px = |x: f64| LEFT + (x - x0) / span * (W - LEFT - 10.0);
    let py = |y: f64| H - BOTTOM - y / y1 * (H - BOTTOM - TOP_PAD);
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>",
        H - BOTTOM,
        W - 10.0,
        H - BOTTOM
    );
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{TOP_PAD}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#888\"/>",
        H - BOTTOM
    );
    for i in 0..=4 {
        let v = y1 * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            py(v) + 4.0,
            tick(v)
        );
    }
    let label =
        |x: f64| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs_f64(x)).to_string();
    let _ = writeln!(s, "<text x=\"{LEFT}\" y=\"{}\">{}</text>", H - 8.0, label(x0));
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        W - 10.0,
        H - 8.0,
        label(x1)
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut sorted = pts.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let coords: Vec<String> = sorted
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline data-series=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            escape(name),
            coords.join(" ")
        );
        for &(x, y) in &sorted {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>",
                px(x),
                py(y)
            );
        }
        let ly = TOP_PAD + 14.0 * i as f64 + 8.0;
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>",
            W + 5.0,
            ly - 8.0
        );
        let _ = writeln!(s, "<text x=\"{}\" y=\"{ly}\">{}</text>", W + 20.0, escape(name));
    }
    s.push_str("</svg>\n");
    s
}

/// Bars of a duration histogram (log-scale buckets).
fn histogram_chart(id: &str, h: &Histogram) -> String {
    let buckets: Vec<(Duration, u64)> = h.buckets().collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">",
        W, H
    );
    if buckets.is_empty() {
        s.push_str("<text x=\"10\" y=\"20\">no data</text></svg>\n");
        return s;
    }
    let max = buckets.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    let bar = (W - LEFT - 10.0) / buckets.len() as f64;
    for (i, (upper, count)) in buckets.iter().enumerate() {
        let height = *count as f64 / max * (H - BOTTOM - TOP_PAD);
        let x = LEFT + bar * i as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\" fill=\"{}\"><title>up to {:.2} ms: {count}</title></rect>",
            H - BOTTOM - height,
            (bar - 1.0).max(1.0),
            PALETTE[0],
            upper.as_secs_f64() * 1e3
        );
    }
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"{}\">{}</text>",
        H - 8.0,
        ms(buckets[0].0)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        W - 10.0,
        H - 8.0,
        ms(buckets[buckets.len() - 1].0)
    );
    let summary = [0.5, 0.9, 0.99].map(|q| h.quantile(q).map(ms).unwrap_or_default());
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"{}\">p50 {} · p90 {} · p99 {} · n={}</text>",
        TOP_PAD + 4.0,
        summary[0],
        summary[1],
        summary[2],
        h.count()
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_buckets_are_zeros_between_points() {
        let filled = with_zeros(vec![("m".into(), vec![(0.0, 5.0), (180.0, 7.0)])], 60.0);
        assert_eq!(
            filled[0].1,
            vec![(0.0, 5.0), (60.0, 0.0), (120.0, 0.0), (180.0, 7.0)]
        );
        // Too many buckets to fill: left as they are.
        let sparse = with_zeros(vec![("m".into(), vec![(0.0, 1.0), (1e9, 1.0)])], 1.0);
        assert_eq!(sparse[0].1.len(), 2);
    }

    #[test]
    fn ticks_keep_their_fractions() {
        assert_eq!([0.0, 0.25, 1.0, 768.0].map(tick), ["0", "0.25", "1", "768"]);
    }
}
