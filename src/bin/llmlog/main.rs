//! `llmlog`: exchanges and token usage from tower-llm-log's JSON Lines logs.
//!
//! ```text
//! llmlog exchanges llm-log.jsonl [--correlation-id ID] [--since T] [--until T] [--json]
//! llmlog usage llm-log*.jsonl.gz --by model --bucket 1h [--since T] [--until T] [--json | --csv]
//! ```
//!
//! Files may be gzip-compressed (`.gz`); `-` reads standard input. A malformed line is reported
//! with its file and line number and skipped. Exit codes: 0 ok, 1 input problems (unreadable files
//! or malformed lines), 2 usage errors.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

mod report;

use clap::{Parser, Subcommand};
use tower_llm_log::analytics::{Analytics, GroupBy};
use tower_llm_log::reassemble::{reassemble_with, LoggedExchange, Reassembler};
use tower_llm_log::LlmLogRecord;

/// Exchanges and token usage from tower-llm-log's JSON Lines logs.
#[derive(Parser, Debug)]
#[command(name = "llmlog", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Each exchange with its full request and response, chunks joined in order.
    Exchanges {
        /// JSON Lines files (`.gz` decompressed; `-` for standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only this exchange.
        #[arg(long)]
        correlation_id: Option<String>,
        #[command(flatten)]
        range: Range,
        /// One JSON object per exchange instead of text.
        #[arg(long)]
        json: bool,
        /// Most exchanges open at once while reading (memory bound for huge logs).
        #[arg(long, default_value_t = 100_000)]
        window: usize,
        /// Most bytes open exchanges may hold while reading; past it the oldest are printed as
        /// incomplete (memory bound for exchanges whose chunks never end).
        #[arg(long, default_value_t = tower_llm_log::reassemble::DEFAULT_MAX_OPEN_BYTES)]
        max_open_bytes: usize,
    },
    /// Tokens and requests per time bucket and group.
    Usage {
        /// JSON Lines files (`.gz` decompressed; `-` for standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Group by (repeat for several): model, deployment, api, provider, outcome, operation,
        /// tool (MCP tool calls: calls, errors and latency per tool), or dimension:NAME (user, api_key, end_user, or any dimension the records carry).
        #[arg(long, value_parser = parse_group_by)]
        by: Vec<GroupBy>,
        /// Bucket width, e.g. 1m, 1h, 1d, 15m.
        #[arg(long, default_value = "1h", value_parser = parse_bucket)]
        bucket: Duration,
        #[command(flatten)]
        range: Range,
        /// JSON Lines output.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV output.
        #[arg(long)]
        csv: bool,
        /// Most distinct groups; exchanges of further groups are summed as `(other)`.
        #[arg(long, default_value_t = tower_llm_log::analytics::DEFAULT_MAX_GROUPS)]
        max_groups: usize,
    },
    /// One self-contained HTML file with charts of tokens and requests over time, latency and
    /// TTFT distributions, and the exchanges with the most tokens.
    Report(ReportArgs),
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// JSON Lines files (`.gz` decompressed; `-` for standard input).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where to write the HTML report.
    #[arg(short, long, default_value = "report.html")]
    output: PathBuf,
    /// Bucket width for the charts over time (default: chosen from the log's time span, about
    /// 60 buckets, from 1 minute up).
    #[arg(long, value_parser = parse_bucket)]
    bucket: Option<Duration>,
    #[command(flatten)]
    range: Range,
    /// How many of the exchanges with the most tokens to list, and of the top values of each
    /// dimension.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Dimensions whose top values (by tokens and by cost) the report lists (repeatable;
    /// default user, end_user, api_key).
    #[arg(long = "dimension", value_name = "NAME")]
    dimensions: Vec<String>,
    /// Most distinct groups (models, dimension values); further ones are summed as `(other)`.
    #[arg(long, default_value_t = tower_llm_log::analytics::DEFAULT_MAX_GROUPS)]
    max_groups: usize,
}

#[derive(clap::Args, Debug)]
struct Range {
    /// From this time on (RFC 3339, e.g. 2026-11-24T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    since: Option<SystemTime>,
    /// Before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    until: Option<SystemTime>,
}

impl Range {
    fn contains(&self, t: SystemTime) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

fn parse_bucket(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("the bucket must be longer than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (e.g. 1m, 15m, 1h, 1d)")),
    }
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-11-24T00:00:00Z)"))
}

fn parse_group_by(s: &str) -> Result<GroupBy, String> {
    GroupBy::parse(s).ok_or_else(|| {
        format!("{s:?} is not a grouping: model, deployment, api, provider, outcome, operation, tool or dimension:NAME")
    })
}

/// The longest line read; a record is far smaller (chunks are at most 2 MiB of text).
const MAX_LINE: usize = 64 << 20;

/// Reads records from files, reporting bad input on stderr and counting it.
struct Input {
    files: Vec<PathBuf>,
    problems: u64,
    malformed: u64,
    records: u64,
}

impl Input {
    fn new(files: Vec<PathBuf>) -> Self {
        Input {
            files,
            problems: 0,
            malformed: 0,
            records: 0,
        }
    }

    fn open(path: &PathBuf) -> io::Result<Box<dyn BufRead>> {
        let raw: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(path)?)
        };
        let gz = path.extension().is_some_and(|e| e == "gz");
        Ok(if gz {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(raw)))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, raw))
        })
    }

    /// Calls `each` for every record of every file, in file order.
    fn for_each(&mut self, mut each: impl FnMut(LlmLogRecord)) {
        let files = std::mem::take(&mut self.files);
        for path in &files {
            let name = path.display();
            let reader = match Self::open(path) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("llmlog: {}: {e}", visible(&name.to_string()));
                    self.problems += 1;
                    continue;
                }
            };
            let mut reader = reader;
            let mut line = Vec::new();
            let mut n = 0u64;
            loop {
                line.clear();
                n += 1;
                // At most MAX_LINE bytes of a line are held; a longer one is skipped, so a file
                // without line ends cannot fill memory. Bytes that are not UTF-8 make the line
                // malformed, not the rest of the file unreadable.
                match (&mut reader)
                    .take(MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("llmlog: {name}:{n}: cannot read: {e}");
                        self.problems += 1;
                        break;
                    }
                }
                if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
                    eprintln!("llmlog: {name}:{n}: skipped, longer than {MAX_LINE} bytes");
                    self.malformed += 1;
                    if let Err(e) = reader.skip_until(b'\n') {
                        eprintln!("llmlog: {name}:{n}: cannot read: {e}");
                        self.problems += 1;
                        break;
                    }
                    continue;
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<LlmLogRecord>(&line) {
                    Ok(r) => {
                        self.records += 1;
                        if self.records % 1_000_000 == 0 {
                            eprintln!("llmlog: {} records read...", self.records);
                        }
                        each(r);
                    }
                    Err(e) => {
                        eprintln!(
                            "llmlog: {}:{n}: skipped, not a log record: {}",
                            visible(&name.to_string()),
                            visible(&e.to_string())
                        );
                        self.malformed += 1;
                    }
                }
            }
        }
    }

    fn finish(&self) -> ExitCode {
        eprintln!(
            "llmlog: {} records read, {} malformed lines skipped{}",
            self.records,
            self.malformed,
            if self.problems > 0 {
                format!(", {} input errors", self.problems)
            } else {
                String::new()
            }
        );
        if self.malformed + self.problems > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Exchanges {
            files,
            correlation_id,
            range,
            json,
            window,
            max_open_bytes,
        } => {
            let mut input = Input::new(files);
            // Reassemble on another thread as records stream past, so memory stays bounded by
            // the window and the byte budget whatever the log.
            let (tx, rx) = std::sync::mpsc::sync_channel::<LlmLogRecord>(256);
            let printer = std::thread::spawn(move || {
                let mut out = io::BufWriter::new(io::stdout().lock());
                let reassembler = Reassembler::new(window).max_open_bytes(max_open_bytes);
                let mut printed = 0u64;
                for e in reassemble_with(rx, reassembler) {
                    print_exchange(&mut out, &e, json)?;
                    printed += 1;
                }
                out.flush().map(|()| printed)
            });
            let wanted_id = correlation_id.clone();
            input.for_each(|r| {
                let wanted = correlation_id.as_ref().is_none_or(|id| &r.correlation_id == id);
                if wanted && range.contains(r.time_generated) {
                    // A printer that stopped (output closed) has said why; keep counting input.
                    let _ = tx.send(r);
                }
            });
            drop(tx);
            let (written, printed) = match printer.join() {
                Ok(Ok(printed)) => (true, Some(printed)),
                Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => (true, None),
                Ok(Err(e)) => {
                    eprintln!("llmlog: cannot write: {e}");
                    (false, None)
                }
                Err(_) => {
                    eprintln!("llmlog: the output thread failed");
                    (false, None)
                }
            };
            let code = input.finish();
            if let (Some(id), Some(0)) = (&wanted_id, printed) {
                eprintln!("llmlog: no exchange with correlation id {}", visible(id));
                return ExitCode::from(1);
            }
            if written {
                code
            } else {
                ExitCode::from(1)
            }
        }
        Command::Usage {
            files,
            by,
            bucket,
            range,
            json,
            csv,
            max_groups,
        } => {
            let names: Vec<String> = by.iter().map(GroupBy::name).collect();
            let mut analytics = Analytics::new(bucket, by).max_groups(max_groups);
            if let Some(s) = range.since {
                analytics = analytics.since(s);
            }
            if let Some(u) = range.until {
                analytics = analytics.until(u);
            }
            let mut input = Input::new(files);
            input.for_each(|r| {
                analytics.add(&r);
            });
            let mut out = io::BufWriter::new(io::stdout().lock());
            let written =
                match print_usage(&mut out, &analytics, &names, json, csv).and_then(|()| out.flush()) {
                    Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                        eprintln!("llmlog: cannot write: {e}");
                        false
                    }
                    _ => true,
                };
            report_folded(analytics.folded(), analytics.unsummed());
            let code = input.finish();
            if written {
                code
            } else {
                ExitCode::from(1)
            }
        }
        Command::Report(args) => {
            let dimensions = if args.dimensions.is_empty() {
                ["user", "end_user", "api_key"].map(String::from).to_vec()
            } else {
                args.dimensions.clone()
            };
            let mut report = report::Report::new(
                args.bucket,
                args.range.since,
                args.range.until,
                args.top,
                dimensions,
                args.max_groups,
            );
            let mut input = Input::new(args.files);
            input.for_each(|r| report.add(&r));
            if let Err(e) = std::fs::write(&args.output, report.html()) {
                eprintln!("llmlog: cannot write {}: {e}", args.output.display());
                return ExitCode::from(1);
            }
            eprintln!("llmlog: wrote {}", args.output.display());
            let (folded, unsummed) = report.folded();
            report_folded(folded, unsummed);
            input.finish()
        }
    }
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn print_exchange(out: &mut impl Write, e: &LoggedExchange, json: bool) -> io::Result<()> {
    let record = e.record();
    if json {
        let side = |s: &Option<tower_llm_log::reassemble::LoggedSide>| s.as_ref().map(|s| s.message.clone());
        let v = serde_json::json!({
            "CorrelationId": e.correlation_id,
            "TimeGenerated": record.map(|r| time(r.time_generated)),
            "Api": record.map(|r| r.api.as_str()),
            "OperationName": record.map(|r| r.operation_name.as_ref()),
            "RequestId": record.and_then(|r| r.request_id.clone()),
            "ToolName": record.and_then(|r| r.tool_name.clone()),
            "ResourceUri": record.and_then(|r| r.resource_uri.clone()),
            "PromptName": record.and_then(|r| r.prompt_name.clone()),
            "Error": record.and_then(|r| r.error.clone()),
            "ModelName": record.and_then(|r| r.model_name.clone()),
            "DeploymentName": record.and_then(|r| r.deployment_name.clone()),
            "Outcome": record.map(|r| r.outcome.as_str()),
            "StatusCode": record.and_then(|r| r.status_code),
            "PromptTokens": record.and_then(|r| r.prompt_tokens),
            "CompletionTokens": record.and_then(|r| r.completion_tokens),
            "TotalTokens": record.and_then(|r| r.total_tokens),
            "IsStreamCompletion": record.map(|r| r.is_stream_completion),
            "RequestMessages": side(&e.request),
            "ResponseMessages": side(&e.response),
            "Complete": e.is_complete(),
            "Missing": e.missing.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>(),
        });
        return writeln!(out, "{v}");
    }
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    writeln!(
        out,
        "== {} {} model={} outcome={} status={} tokens={}/{}/{}",
        visible(&e.correlation_id),
        record.map_or("-".into(), |r| time(r.time_generated)),
        visible(record.and_then(|r| r.model_name.as_deref()).unwrap_or("-")),
        record.map_or("-", |r| r.outcome.as_str()),
        record
            .and_then(|r| r.status_code)
            .map_or("-".into(), |s| s.to_string()),
        opt(record.and_then(|r| r.prompt_tokens)),
        opt(record.and_then(|r| r.completion_tokens)),
        opt(record.and_then(|r| r.total_tokens)),
    )?;
    if let Some(r) = record.filter(|r| r.api == tower_llm_log::ApiFamily::Mcp) {
        // What an agent's tool exchange did: its method, and what it named.
        let named = [
            ("tool", &r.tool_name),
            ("resource", &r.resource_uri),
            ("prompt", &r.prompt_name),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| format!(" {k}={}", visible(v))))
        .collect::<String>();
        writeln!(
            out,
            "mcp: {} id={}{named}",
            visible(&r.operation_name),
            visible(r.request_id.as_deref().unwrap_or("-"))
        )?;
    }
    if let Some(error) = record.and_then(|r| r.error.as_deref()) {
        writeln!(out, "error: {}", visible(error))?;
    }
    if !e.missing.is_empty() {
        writeln!(out, "missing: {:?}", e.missing)?;
    }
    for (label, side) in [("request", &e.request), ("response", &e.response)] {
        if let Some(s) = side {
            let cut = if s.record.truncated { ", truncated" } else { "" };
            writeln!(
                out,
                "-- {label} ({} bytes logged of {}{cut})",
                s.message.len(),
                s.record.message_bytes
            )?;
            writeln!(out, "{}", visible(&s.message))?;
        }
    }
    writeln!(out)
}

/// Text for a terminal: control characters other than line ends and tabs (a raw error body can
/// hold any) become U+FFFD, so a log cannot move the cursor or change colours.
/// Log data as text for a terminal or a line-based file: control characters (line breaks
/// and tabs included, escapes, C1 controls) and the bidirectional overrides that can disguise
/// text are written as visible `\u{..}` escapes, so a value from the log can neither forge a
/// line of output nor reach the terminal as a control sequence.
fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
            )
    };
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A CSV cell a spreadsheet will not run: one that starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return is prefixed with `'` (numbers written by llmlog never start so).
fn csv_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    // The first character that is not a space: spreadsheets that trim cells would see it first.
    match cell.trim_start_matches(' ').as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// Says on stderr how many exchanges were summed as `(other)` or not at all.
fn report_folded(folded: u64, unsummed: u64) {
    if folded > 0 {
        eprintln!("llmlog: {folded} exchanges of groups past --max-groups were summed as (other)");
    }
    if unsummed > 0 {
        eprintln!("llmlog: {unsummed} exchanges were not summed: too many time buckets and groups");
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or(String::new(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

/// A cost in USD, to the micro-dollar (a sum of many exchanges needs no more).
fn usd(cost: f64) -> String {
    format!("{cost:.6}")
}

fn print_usage(
    out: &mut impl Write,
    a: &Analytics,
    names: &[String],
    json: bool,
    csv: bool,
) -> io::Result<()> {
    let rows = a.rows();
    if json {
        for r in &rows {
            let groups: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .cloned()
                .zip(r.group.iter().map(|g| serde_json::Value::from(g.clone())))
                .collect();
            let v = serde_json::json!({
                "BucketStart": time(r.bucket_start), "Group": groups, "Requests": r.requests, "Errors": r.errors,
                "Streamed": r.streamed, "PromptTokens": r.prompt_tokens, "CompletionTokens": r.completion_tokens,
                "TotalTokens": r.total_tokens, "CachedTokens": r.cached_tokens, "ReasoningTokens": r.reasoning_tokens,
                "WithoutUsage": r.without_usage, "EstimatedExchanges": r.estimated_exchanges,
                "EstimatedTokens": r.estimated_tokens,
                "CostUsd": r.cost_usd, "EstimatedCostUsd": r.estimated_cost_usd,
                "LatencyP50Ms": r.latency_p50.map(|d| d.as_secs_f64() * 1e3),
                "LatencyP90Ms": r.latency_p90.map(|d| d.as_secs_f64() * 1e3),
                "LatencyP99Ms": r.latency_p99.map(|d| d.as_secs_f64() * 1e3),
                "TtftP50Ms": r.ttft_p50.map(|d| d.as_secs_f64() * 1e3),
                "TtftP90Ms": r.ttft_p90.map(|d| d.as_secs_f64() * 1e3),
                "TtftP99Ms": r.ttft_p99.map(|d| d.as_secs_f64() * 1e3),
            });
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    let header: Vec<String> = ["bucket"]
        .iter()
        .map(|s| s.to_string())
        .chain(names.iter().cloned())
        .chain(
            [
                "requests",
                "errors",
                "prompt",
                "completion",
                "total",
                "cached",
                "reasoning",
                "no_usage",
                "estimated",
                "cost_usd",
                "est_cost_usd",
                "p50_ms",
                "p90_ms",
                "p99_ms",
                "ttft_p50_ms",
                "ttft_p90_ms",
                "ttft_p99_ms",
            ]
            .iter()
            .map(|s| s.to_string()),
        )
        .collect();
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![time(r.bucket_start)];
            v.extend(r.group.iter().map(|g| visible(g).into_owned()));
            v.extend([
                r.requests.to_string(),
                r.errors.to_string(),
                r.prompt_tokens.to_string(),
                r.completion_tokens.to_string(),
                r.total_tokens.to_string(),
                r.cached_tokens.to_string(),
                r.reasoning_tokens.to_string(),
                r.without_usage.to_string(),
                r.estimated_tokens.to_string(),
                usd(r.cost_usd),
                usd(r.estimated_cost_usd),
                ms(r.latency_p50),
                ms(r.latency_p90),
                ms(r.latency_p99),
                ms(r.ttft_p50),
                ms(r.ttft_p90),
                ms(r.ttft_p99),
            ]);
            v
        })
        .collect();
    if csv {
        let quote = |s: &String| {
            let s = csv_safe(s);
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.into_owned()
            }
        };
        for line in std::iter::once(&header).chain(&lines) {
            writeln!(out, "{}", line.iter().map(quote).collect::<Vec<_>>().join(","))?;
        }
        return Ok(());
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header)
                .chain(&lines)
                .map(|l| l[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_has_no_control_characters() {
        assert_eq!(
            visible("red \u{1b}[31m text\n\tnext\u{202e}"),
            "red \\u{1b}[31m text\\u{a}\\u{9}next\\u{202e}"
        );
        assert!(matches!(visible("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("-2+3"), "'-2+3");
        assert_eq!(csv_safe("gpt-4o"), "gpt-4o");
        assert_eq!(csv_safe("  =1+1"), "'  =1+1");
        assert_eq!(visible("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
    }
}
