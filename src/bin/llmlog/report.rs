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
    bucket_given: bool,
}

impl Report {
    pub fn new(
        bucket: Option<Duration>,
        since: Option<SystemTime>,
        until: Option<SystemTime>,
        top_n: usize,
        dimensions: Vec<String>,
        max_groups: usize,
    ) -> Self {
        let ranged = |a: Analytics| {
            let mut a = a.max_groups(max_groups).coarsen_when_full();
            if let Some(s) = since {
                a = a.since(s);
            }
            if let Some(u) = until {
                a = a.until(u);
            }
            a
        };
        // Without a bucket width, counted by the minute and drawn with a width chosen from the
        // span of the log.
        let given = bucket.is_some();
        let bucket = bucket.unwrap_or(Duration::from_secs(60));
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
            bucket_given: given,
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
                correlation_id: r.correlation_id.to_string(),
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
        let overall = self.overall.rows();
        let bucket = self.display_bucket(&overall);
        let at = |t: SystemTime| (secs(t) / bucket).floor() * bucket;
        let mut tokens: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut cost: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &rows {
            let model = r.group.first().cloned().unwrap_or_default();
            tokens
                .entry(model.clone())
                .or_default()
                .push((at(r.bucket_start), r.total_tokens as f64));
            cost.entry(model)
                .or_default()
                .push((at(r.bucket_start), r.cost_usd + r.estimated_cost_usd));
        }
        let total_cost: f64 = rows.iter().map(|r| r.cost_usd).sum();
        let estimated_cost: f64 = rows.iter().map(|r| r.estimated_cost_usd).sum();
        let requests: Vec<(f64, f64)> = overall
            .iter()
            .map(|r| (at(r.bucket_start), r.requests as f64))
            .collect();
        let errors: Vec<(f64, f64)> = overall
            .iter()
            .map(|r| (at(r.bucket_start), r.errors as f64))
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
        h.push_str("td.n{text-align:right}svg text{font-size:11px;fill:#444}.legend span{margin-right:1.2em;white-space:nowrap;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:.4em}</style></head><body>\n");
        let _ = writeln!(h, "<h1>LLM usage report</h1>\n<p>{total_requests} exchanges, {total_tokens} tokens (exact, as reported by the providers), ${total_cost:.6} (plus ${estimated_cost:.6} on estimated tokens).</p>");
        let (folded, _) = self.folded();
        if folded > 0 {
            let _ = writeln!(
                h,
                "<p>{folded} exchanges of models past --max-groups are drawn as (other).</p>"
            );
        }
        h.push_str("<h2>Tokens over time, by model</h2>\n");
        let series: Vec<(String, Vec<(f64, f64)>)> =
            tokens.into_iter().map(|(k, v)| (k, summed(v))).collect();
        h.push_str(&line_chart("tokens", &with_zeros(series, bucket), bucket));
        h.push_str("<h2>Cost over time, by model (USD)</h2>\n");
        let series: Vec<(String, Vec<(f64, f64)>)> = cost.into_iter().map(|(k, v)| (k, summed(v))).collect();
        h.push_str(&line_chart("cost", &with_zeros(series, bucket), bucket));
        h.push_str("<h2>Requests over time</h2>\n");
        let counts = vec![
            ("requests".to_string(), summed(requests)),
            ("errors".to_string(), summed(errors)),
        ];
        h.push_str(&line_chart("requests", &with_zeros(counts, bucket), bucket));
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
                rfc3339(secs(t.time)),
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

    /// Exchanges summed as `(other)` (too many models) and not summed at all, by model.
    pub fn folded(&self) -> (u64, u64) {
        (self.by_model.folded(), self.by_model.unsummed())
    }

    /// The width the charts are drawn with: the one given, else a round width giving about 60
    /// buckets over the log's span (at least the minute it was counted by).
    fn display_bucket(&self, overall: &[tower_llm_log::analytics::UsageRow]) -> f64 {
        // At least the widest the rows were counted in (wider than asked once coarsened).
        let counted = self.by_model.bucket().max(self.overall.bucket()).as_secs_f64();
        if self.bucket_given {
            return counted;
        }
        let times = overall.iter().map(|r| secs(r.bucket_start));
        let (first, last) = times.fold((f64::MAX, f64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let span = (last - first).max(0.0) + counted;
        TIME_STEPS
            .into_iter()
            .filter(|&w| w >= counted && (w / counted).fract() == 0.0)
            .find(|&w| span / w <= 60.0)
            .unwrap_or_else(|| counted * (span / 60.0 / counted).ceil().max(1.0))
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

const W: f64 = 900.0;
const H: f64 = 280.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 44.0;
const TOP_PAD: f64 = 10.0;
const RIGHT_PAD: f64 = 20.0;

/// Points summed by their x (buckets counted finer and drawn wider).
fn summed(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut by_x: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (x, y) in points {
        by_x.entry(x.to_bits()).or_insert((x, 0.0)).1 += y;
    }
    let mut out: Vec<(f64, f64)> = by_x.into_values().collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Round steps for an axis: 1, 2, 2.5 and 5 times a power of ten, the first that gives at most
/// `most` steps up to `max`.
fn nice_step(max: f64, most: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let rough = max / most;
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| max / step <= most)
        .unwrap_or(10.0 * power)
}

/// Round time steps for an axis, in seconds.
const TIME_STEPS: [f64; 16] = [
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    3.0 * 3600.0,
    6.0 * 3600.0,
    12.0 * 3600.0,
    86_400.0,
    2.0 * 86_400.0,
    7.0 * 86_400.0,
    30.0 * 86_400.0,
];

/// A time tick's label: the time of day, with the date where the span is a day or more.
fn time_label(t: f64, span: f64) -> String {
    let text = rfc3339(t);
    // `2026-11-24T03:02:12Z`
    match span >= 86_400.0 {
        true => format!("{} {}", &text[5..10], &text[11..16]),
        false if span < 300.0 => text[11..19].to_string(),
        false => text[11..16].to_string(),
    }
}

/// A time as RFC 3339, clamped to what it can write (the years 1970 to 9999: a forged record
/// can carry any time).
fn rfc3339(t: f64) -> String {
    const LAST: f64 = 253_402_300_799.0; // 9999-12-31T23:59:59Z
    let t = if t.is_finite() { t.clamp(0.0, LAST) } else { 0.0 };
    let mut out = String::new();
    let _ = write!(
        out,
        "{}",
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs_f64(t))
    );
    out
}

/// The legend, as HTML under its chart: every name in full, wrapping as the page does.
fn legend(names: &[&str]) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            PALETTE[i % PALETTE.len()],
            escape(name)
        );
    }
    s.push_str("</div>\n");
    s
}

/// A line chart: one polyline per series (marked `data-series`), round y ticks with grid lines,
/// time ticks along the whole x axis (the date range in the caption), and the legend under it.
/// A series of one point is drawn as a bar of the bucket's width, so a short log shows bars, not
/// dots.
fn line_chart(id: &str, series: &[(String, Vec<(f64, f64)>)], bucket: f64) -> String {
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
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\">"
    );
    if x0 > x1 {
        s.push_str("<text x=\"10\" y=\"20\">no data</text></svg>\n");
        return s;
    }
    // The x range covers each bucket whole: from the first bucket's start to the last one's end.
    let (x0, x1) = (x0, x1 + bucket);
    let span = x1 - x0;
    let step = nice_step(y1, 5.0);
    let top = (y1 / step).ceil().max(1.0) * step;
    let px = |x: f64| LEFT + (x - x0) / span * (W - LEFT - RIGHT_PAD);
    let py = |y: f64| H - BOTTOM - y / top * (H - BOTTOM - TOP_PAD);
    y_axis(&mut s, top, step, py);
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{}\" y2=\"{b}\" stroke=\"#888\"/>",
        W - RIGHT_PAD,
        b = H - BOTTOM
    );
    // Time ticks: the smallest round step that leaves 90 pixels or more between labels.
    let per_px = span / (W - LEFT - RIGHT_PAD);
    let tstep = TIME_STEPS
        .into_iter()
        .find(|t| t / per_px >= 90.0)
        .unwrap_or(span);
    let mut t = (x0 / tstep).ceil() * tstep;
    while t <= x1 {
        let x = px(t);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#888\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            H - BOTTOM,
            H - BOTTOM + 4.0,
            H - BOTTOM + 16.0,
            time_label(t, span)
        );
        t += tstep;
    }
    let (from, to) = (rfc3339(x0), rfc3339(x1));
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"{}\">{from} to {to} (UTC), buckets of {}</text>",
        H - 4.0,
        humantime::format_duration(Duration::from_secs_f64(bucket))
    );
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut sorted = pts.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Each point at the middle of its bucket.
        let coords: Vec<String> = sorted
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x + bucket / 2.0), py(y)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline data-series=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            escape(name),
            coords.join(" ")
        );
        if sorted.len() == 1 {
            let (x, y) = sorted[0];
            let width = (px(x + bucket) - px(x)) / series.len() as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" opacity=\"0.8\"/>",
                px(x) + width * i as f64,
                py(y),
                (width - 2.0).max(1.0),
                py(0.0) - py(y)
            );
        }
    }
    s.push_str("</svg>\n");
    s.push_str(&legend(&names));
    s
}

/// The y axis: a grid line and a label at each step from 0 to `top`.
fn y_axis(s: &mut String, top: f64, step: f64, py: impl Fn(f64) -> f64) {
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT_PAD,
            LEFT - 6.0,
            py(v) + 4.0,
            tick(v),
            y = py(v),
        );
        v += step;
    }
}

/// Bars of a duration histogram (log-scale buckets) with a count axis of round ticks, duration
/// labels under the bars (as many as fit), and the percentiles above the plot.
fn histogram_chart(id: &str, h: &Histogram) -> String {
    let buckets: Vec<(Duration, u64)> = h.buckets().collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\">"
    );
    if buckets.is_empty() {
        s.push_str("<text x=\"10\" y=\"20\">no data</text></svg>\n");
        return s;
    }
    let ms = |d: Duration| {
        let v = d.as_secs_f64() * 1e3;
        if v >= 100.0 {
            format!("{v:.0} ms")
        } else {
            format!("{v:.2} ms")
        }
    };
    let summary = [0.5, 0.9, 0.99].map(|q| h.quantile(q).map(ms).unwrap_or_default());
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"14\">p50 {} · p90 {} · p99 {} · n={}</text>",
        summary[0],
        summary[1],
        summary[2],
        h.count()
    );
    let max = buckets.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    let step = nice_step(max, 5.0).max(1.0);
    let top = (max / step).ceil().max(1.0) * step;
    let plot_top = TOP_PAD + 20.0;
    let py = |c: f64| H - BOTTOM - c / top * (H - BOTTOM - plot_top);
    y_axis(&mut s, top, step, py);
    let _ = writeln!(s, "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">exchanges</text>", (H - BOTTOM + plot_top) / 2.0, (H - BOTTOM + plot_top) / 2.0);
    let bar = (W - LEFT - RIGHT_PAD) / buckets.len() as f64;
    // Labels every k bars, so that each has 70 pixels.
    let every = ((70.0 / bar).ceil() as usize).max(1);
    for (i, (upper, count)) in buckets.iter().enumerate() {
        let x = LEFT + bar * i as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>up to {}: {count}</title></rect>",
            py(*count as f64),
            (bar - 1.0).max(1.0),
            py(0.0) - py(*count as f64),
            PALETTE[0],
            ms(*upper)
        );
        if i % every == 0 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                H - BOTTOM + 16.0,
                ms(*upper)
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"{}\">duration (upper bound of each bar)</text>",
        H - 4.0
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

    #[test]
    fn a_short_log_draws_bars_with_round_ticks_time_labels_and_full_legends() {
        let mut report = Report::new(None, None, None, 5, vec!["user".into()], 100);
        let long_model = "a-model-with-a-rather-long-name-that-legends-used-to-cut";
        for (i, model) in ["gpt-4o", long_model, "gpt-4o"].iter().enumerate() {
            let line = format!(
                r#"{{"TimeGenerated":"2026-11-24T03:02:1{i}Z","CorrelationId":"c{i}","Kind":"Response","SequenceNumber":0,"IsLast":true,"Api":"chat_completions","OperationName":"chat","ModelName":"{model}","IsStreamCompletion":false,"MessageBytes":0,"Truncated":false,"DurationMs":{},"Outcome":"Completed","TotalTokens":{}}}"#,
                100 + i * 50,
                121 * (i + 1)
            );
            report.add(&serde_json::from_str(&line).unwrap());
        }
        let html = report.html();
        let tokens = &html[html.find("<svg id=\"tokens\"").unwrap()..];
        let tokens = &tokens[..tokens.find("</div>").unwrap()];
        // One bucket: bars, not lone dots.
        assert!(tokens.contains("<rect"), "{tokens}");
        // Round ticks (484 and 242 tokens: 0, 100, ..., 500, not 121/242/484), several
        // distinct time labels.
        assert!(
            tokens.contains(">500</text>") && tokens.contains(">100</text>"),
            "{tokens}"
        );
        assert!(
            !tokens.contains(">121</text>") && !tokens.contains(">484</text>"),
            "{tokens}"
        );
        let times: std::collections::BTreeSet<&str> = tokens
            .split("text-anchor=\"middle\">")
            .skip(1)
            .map(|t| &t[..t.find('<').unwrap()])
            .collect();
        assert!(times.len() >= 3, "{times:?}");
        assert!(tokens.contains(long_model), "the legend keeps the whole name");
        let latency = &html[html.find("<svg id=\"latency\"").unwrap()..];
        assert!(latency.contains(">exchanges</text>"), "a count axis");
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(484.0, 5.0), 100.0);
        assert_eq!(nice_step(25.75, 5.0), 10.0);
        assert_eq!(nice_step(121.0, 5.0), 25.0);
        assert_eq!(nice_step(0.004, 5.0), 0.001);
        assert_eq!(nice_step(3.0, 5.0), 1.0);
    }
}
