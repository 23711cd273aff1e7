//! An LLM gateway: a reverse proxy that logs every LLM exchange passing through it.
//!
//! ```text
//! cargo run -p llm-log-gateway                      # built-in mock upstream, log to llm-log.jsonl
//! cargo install --path gateway                      # or install it: llm-log-gateway
//! llm-log-gateway --upstream https://api.openai.com --log-file /var/log/llm.jsonl
//! llm-log-gateway --config gateway.toml             # the same settings from a TOML file
//! LLM_LOG_GATEWAY_UPSTREAM=https://api.openai.com llm-log-gateway   # or from the environment
//! ```
//!
//! Every setting is a flag (`--prompt-bytes 65536`), an environment variable
//! (`LLM_LOG_GATEWAY_PROMPT_BYTES=65536`) and a key of the `--config` TOML file
//! (`prompt_bytes = 65536`; lists for repeatable flags: `dimension = ["user=header:x-user-id"]`).
//! A flag wins over the file (a list given as flags replaces the file's list), the file over the
//! environment, the environment over the default. A boolean set by the file or the environment
//! cannot be turned off by a flag: leave it out of both instead.
//!
//! Then, in another shell:
//!
//! ```text
//! curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}]}'
//! tail -n 2 llm-log.jsonl
//! ```

// The allocator is the binary's choice, not the library's: mimalloc serves the many small,
// short-lived allocations of proxying and logging from per-thread pages (see the README's
// figures); `--no-default-features` builds on the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod app;
mod mock;
mod mock_apis;
mod mock_mcp;
mod mock_native;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tower_llm_log::sink::{FanOut, JsonLinesFile, TracingSink};
use tower_llm_log::{JsonLinesSink, LlmLogLayer, LogConfig, NonBlocking};

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SinkKind {
    /// JSON Lines to --log-file (rotated with --rotate-bytes / --max-files).
    Jsonl,
    /// JSON Lines to standard output.
    Stdout,
    /// OpenTelemetry logs over OTLP to --otlp-endpoint (build with --features otlp).
    Otlp,
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OtlpTransport {
    /// HTTP with protobuf (port 4318).
    Http,
    /// gRPC (port 4317).
    Grpc,
}

/// An LLM gateway that logs prompts, completions and token usage as JSON Lines.
#[derive(Parser, Debug)]
#[command(name = "llm-log-gateway", version, args_override_self = true)]
struct Args {
    /// A TOML file of settings: keys are the flags' names (`prompt_bytes = 65536`).
    #[arg(long, value_name = "FILE", env = "LLM_LOG_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "LLM_LOG_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Upstream base URL (http:// or https://). Without it, a built-in mock upstream is started.
    #[arg(long, env = "LLM_LOG_GATEWAY_UPSTREAM")]
    upstream: Option<String>,
    /// Where records go; repeat for several (default: jsonl).
    #[arg(
        long = "sink",
        env = "LLM_LOG_GATEWAY_SINK",
        value_delimiter = ',',
        value_enum
    )]
    sinks: Vec<SinkKind>,
    /// JSON Lines file to append records to (the jsonl sink).
    #[arg(long, env = "LLM_LOG_GATEWAY_LOG_FILE", default_value = "llm-log.jsonl")]
    log_file: PathBuf,
    /// Rotate the log file when it would grow past this many bytes.
    #[arg(long, env = "LLM_LOG_GATEWAY_ROTATE_BYTES")]
    rotate_bytes: Option<u64>,
    /// Rotated log files to keep.
    #[arg(long, env = "LLM_LOG_GATEWAY_MAX_FILES", default_value_t = 10)]
    max_files: usize,
    /// OTLP collector endpoint, e.g. http://127.0.0.1:4318 (the otlp sink).
    #[arg(long, env = "LLM_LOG_GATEWAY_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// OTLP transport.
    #[arg(long, env = "LLM_LOG_GATEWAY_OTLP_PROTOCOL", value_enum, default_value_t = OtlpTransport::Http)]
    otlp_protocol: OtlpTransport,
    /// Send message content in OTLP log bodies (default: metadata only).
    #[arg(long, env = "LLM_LOG_GATEWAY_OTLP_CONTENT")]
    otlp_content: bool,
    /// Records the sink queue holds; when full, records are dropped (and counted), never requests.
    #[arg(long, env = "LLM_LOG_GATEWAY_QUEUE", default_value_t = 8192)]
    queue: usize,
    /// Most prompt bytes logged per request (at most 2097152; 0 logs metadata and tokens only).
    #[arg(long, env = "LLM_LOG_GATEWAY_PROMPT_BYTES", default_value_t = tower_llm_log::config::DEFAULT_MESSAGE_BYTES)]
    prompt_bytes: usize,
    /// Most completion bytes logged per response (at most 2097152; 0 logs metadata and tokens only).
    #[arg(long, env = "LLM_LOG_GATEWAY_COMPLETION_BYTES", default_value_t = tower_llm_log::config::DEFAULT_MESSAGE_BYTES)]
    completion_bytes: usize,
    /// Most bytes of a request body read before forwarding it, so that a request the upstream
    /// never answers still logs its prompt (0: forward at once, as the body arrives).
    #[arg(long, env = "LLM_LOG_GATEWAY_REQUEST_READ_AHEAD", default_value_t = tower_llm_log::config::DEFAULT_REQUEST_READ_AHEAD)]
    request_read_ahead: usize,
    /// Log credentials found in prompts and completions as they are (by default they are
    /// replaced by `[REDACTED:<kind>]`).
    #[arg(long, env = "LLM_LOG_GATEWAY_NO_REDACT_SECRETS")]
    no_redact_secrets: bool,
    /// Replace personal data (e-mail addresses, phone numbers, card numbers, IBANs, IP
    /// addresses, US social security numbers) in logged text by `[REDACTED:<kind>]`.
    #[arg(long, env = "LLM_LOG_GATEWAY_REDACT_PII")]
    redact_pii: bool,
    /// Tag personal data with a keyed hash (`[email:3f9a1c0b2d4e5f60]`) instead, the key read
    /// from this file (at least 16 bytes; implies --redact-pii).
    #[arg(long, env = "LLM_LOG_GATEWAY_PII_HASH_KEY_FILE", value_name = "FILE")]
    pii_hash_key_file: Option<std::path::PathBuf>,
    /// Base64 payloads (images, audio, files) longer than this are logged as
    /// `[media <type> <bytes> bytes sha256:<hex>]` (at most 2097152).
    #[arg(long, env = "LLM_LOG_GATEWAY_MEDIA_INLINE_BYTES", default_value_t = tower_llm_log::privacy::DEFAULT_MEDIA_INLINE_BYTES)]
    media_inline_bytes: usize,
    /// Log base64 media as it is, within the caps.
    #[arg(long, env = "LLM_LOG_GATEWAY_NO_ELIDE_MEDIA")]
    no_elide_media: bool,
    /// Let clients choose what is logged of their requests with the `x-llm-log` header
    /// (`metadata`, `no-prompt`, `no-completion`, `off`). Off by default: clients cannot hide
    /// their usage. The header is never forwarded.
    #[arg(long, env = "LLM_LOG_GATEWAY_ALLOW_CLIENT_LOG_CONTROL")]
    allow_client_log_control: bool,
    /// The share of exchanges whose prompt and completion are logged (0.0 to 1.0), chosen by
    /// a hash of the correlation id; failed exchanges keep theirs, and every exchange logs
    /// its metadata and tokens.
    #[arg(long, env = "LLM_LOG_GATEWAY_CONTENT_SAMPLE_RATE", default_value_t = 1.0)]
    content_sample_rate: f64,
    /// A dimension on every record: NAME=header:HEADER, NAME=forwarded-for (first address of
    /// X-Forwarded-For; trusted proxies only) or NAME=client-address. Repeatable, at most 16.
    /// `api_key` (a fingerprint of the credential) and `end_user` (from the body) are added
    /// on their own.
    #[arg(
        long = "dimension",
        env = "LLM_LOG_GATEWAY_DIMENSION",
        value_delimiter = ',',
        value_name = "NAME=SOURCE"
    )]
    dimensions: Vec<String>,
    /// The key of the api_key fingerprint, read from this file (at least 16 bytes; the default
    /// key is public, so anyone with a list of keys can match them).
    #[arg(
        long,
        env = "LLM_LOG_GATEWAY_API_KEY_FINGERPRINT_KEY_FILE",
        value_name = "FILE"
    )]
    api_key_fingerprint_key_file: Option<std::path::PathBuf>,
    /// Prices that override the built-in table: {"models": {"gpt-4o-mini": {"input": 0.15,
    /// "cached_input": 0.075, "output": 0.6}}} (USD per million tokens).
    #[arg(long, env = "LLM_LOG_GATEWAY_PRICES", value_name = "FILE")]
    prices: Option<std::path::PathBuf>,
    /// No CostUsd on records.
    #[arg(long, env = "LLM_LOG_GATEWAY_NO_COST")]
    no_cost: bool,
    /// Exact usage for streamed chat completions that do not ask for it: the request gains
    /// stream_options.include_usage, and the usage chunk is taken back out of the client's
    /// stream.
    #[arg(long, env = "LLM_LOG_GATEWAY_ENSURE_STREAM_USAGE")]
    ensure_stream_usage: bool,
    /// A dimension to label metrics by at GET /metrics (repeatable; every value is a series,
    /// so name only dimensions with few values).
    #[arg(
        long = "metrics-dimension",
        env = "LLM_LOG_GATEWAY_METRICS_DIMENSION",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    metrics_dimensions: Vec<String>,
    /// Forward without logging (the layer passes every request untouched): the baseline for
    /// measuring what logging costs.
    #[arg(long, env = "LLM_LOG_GATEWAY_NO_LOG")]
    no_log: bool,
    /// Seconds to wait at shutdown, first for open requests to finish, then for queued records
    /// to be written. A second Ctrl-C exits at once.
    #[arg(long, env = "LLM_LOG_GATEWAY_SHUTDOWN_TIMEOUT", default_value_t = 10)]
    shutdown_timeout: u64,
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    eprintln!("\nFor more information, try '--help'.");
    ExitCode::from(2)
}

/// The command line with the `--config` file's settings put before the flags given (so the
/// flags win), or why the file cannot be used.
fn command_line() -> Result<Vec<std::ffi::OsString>, String> {
    let mut given: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut path = std::env::var_os("LLM_LOG_GATEWAY_CONFIG").map(PathBuf::from);
    let mut i = 1;
    while i < given.len() {
        let arg = given[i].to_string_lossy().into_owned();
        if arg == "--config" {
            path = given.get(i + 1).map(PathBuf::from);
            i += 1;
        } else if let Some(p) = arg.strip_prefix("--config=") {
            path = Some(PathBuf::from(p));
        }
        i += 1;
    }
    let Some(path) = path else {
        return Ok(given);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("--config {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("--config {}: not valid TOML: {e}", path.display()))?;
    let command = <Args as clap::CommandFactory>::command();
    // Flags given on the command line win over the file, lists included.
    let on_command_line = |flag: &str| {
        given.iter().skip(1).any(|a| {
            let a = a.to_string_lossy();
            a == format!("--{flag}") || a.starts_with(&format!("--{flag}="))
        })
    };
    let mut from_file = Vec::new();
    for (key, value) in &table {
        let flag = key.replace('_', "-");
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(flag.as_str()) && flag != "config")
        else {
            return Err(format!("--config {}: unknown setting {key:?}", path.display()));
        };
        if on_command_line(&flag) {
            continue;
        }
        if matches!(value, toml::Value::Boolean(false)) {
            // `false` in the file wins over the environment, as any setting of the file does.
            if let Some(env) = arg.get_env() {
                std::env::remove_var(env);
            }
        }
        let values = match value {
            toml::Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for v in values {
            match v {
                toml::Value::Boolean(true) => from_file.push(format!("--{flag}")),
                toml::Value::Boolean(false) => {}
                toml::Value::String(s) => from_file.push(format!("--{flag}={s}")),
                toml::Value::Integer(n) => from_file.push(format!("--{flag}={n}")),
                toml::Value::Float(x) => from_file.push(format!("--{flag}={x}")),
                other => {
                    return Err(format!(
                        "--config {}: setting {key:?} must be a string, a number, a boolean or a list of them, not a {}",
                        path.display(),
                        other.type_str()
                    ))
                }
            }
        }
    }
    let program = given.remove(0);
    Ok(std::iter::once(program)
        .chain(from_file.into_iter().map(Into::into))
        .chain(given)
        .collect())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match command_line() {
        Ok(line) => Args::parse_from(line),
        Err(e) => return usage_error(&e),
    };
    // Warnings on stderr: the log file's write errors, and exchanges that did not complete (from
    // the TracingSink below).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if args.queue == 0 {
        return usage_error("--queue 0 would drop every record; give at least 1 (the default is 8192)");
    }
    if args.rotate_bytes == Some(0) {
        return usage_error("--rotate-bytes 0 would start a new file for every record; give a size in bytes, or leave it out to never rotate");
    }
    if args.max_files == 0 {
        return usage_error("--max-files 0 would keep no log at all; give at least 1");
    }
    let builder = LogConfig::builder()
        .enabled(!args.no_log)
        .prompt_bytes(args.prompt_bytes)
        .completion_bytes(args.completion_bytes)
        .request_read_ahead(args.request_read_ahead)
        .redact_secrets(!args.no_redact_secrets)
        .redact_pii(args.redact_pii)
        .media_inline_bytes(args.media_inline_bytes)
        .allow_client_log_control(args.allow_client_log_control)
        .content_sample_rate(args.content_sample_rate);
    let builder = if args.no_elide_media {
        builder.no_media_elision()
    } else {
        builder
    };
    let builder = match &args.pii_hash_key_file {
        Some(path) => match std::fs::read(path) {
            Ok(key) => builder.pii_hash_key(key.trim_ascii().to_vec()),
            Err(e) => return usage_error(&format!("--pii-hash-key-file {}: {e}", path.display())),
        },
        None => builder,
    };
    let mut builder = builder;
    for dimension in &args.dimensions {
        let Some((name, source)) = dimension.split_once('=') else {
            return usage_error(&format!("--dimension {dimension:?}: expected NAME=SOURCE"));
        };
        let source = match source {
            // axum puts the peer's address in the request as ConnectInfo.
            "client-address" => tower_llm_log::DimensionSource::from_request(|head| {
                head.extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|info| info.0.ip().to_string())
            }),
            other => match tower_llm_log::DimensionSource::parse(other) {
                Some(source) => source,
                None => {
                    return usage_error(&format!(
                        "--dimension {dimension:?}: the source must be header:NAME, forwarded-for or client-address"
                    ))
                }
            },
        };
        builder = builder.dimension(name, source);
    }
    if let Some(path) = &args.api_key_fingerprint_key_file {
        match std::fs::read(path) {
            Ok(key) => builder = builder.api_key_fingerprint_key(key.trim_ascii().to_vec()),
            Err(e) => return usage_error(&format!("--api-key-fingerprint-key-file {}: {e}", path.display())),
        }
    }
    if let Some(path) = &args.prices {
        match tower_llm_log::cost::PriceTable::from_file(path) {
            Ok(table) => builder = builder.prices(table),
            Err(e) => return usage_error(&format!("--prices: {e}")),
        }
    }
    if args.no_cost {
        builder = builder.no_cost();
    }
    builder = builder.ensure_stream_usage(args.ensure_stream_usage);
    let config = match builder.build() {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };

    let (upstream_url, mock) = match &args.upstream {
        Some(url) => (url.clone(), None),
        None => {
            let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot start the mock upstream: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let task = tokio::spawn(async move { axum::serve(listener, mock::router()).await });
            (format!("http://{addr}"), Some(task))
        }
    };
    let upstream = match app::Upstream::new(&upstream_url) {
        Ok(u) => u,
        Err(e) => return usage_error(&e),
    };

    let mut sinks = if args.sinks.is_empty() {
        vec![SinkKind::Jsonl]
    } else {
        args.sinks.clone()
    };
    sinks.sort_by_key(|k| *k as u8);
    sinks.dedup(); // `--sink jsonl` twice would open the file twice
    if args.no_log {
        // Nothing is logged: no file is created either.
        sinks.retain(|k| !matches!(k, SinkKind::Jsonl));
    }
    let (fan_out, file, destinations) = match build_sinks(&args, &sinks) {
        Ok(built) => built,
        Err(SinkError::Usage(e)) => return usage_error(&e),
        Err(SinkError::Io(e)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Sinks run on a worker thread behind a bounded queue: a slow disk or collector costs
    // records (counted), never request time.
    let grace = Duration::from_secs(args.shutdown_timeout);
    let (sink, guard) = NonBlocking::builder()
        .capacity(args.queue)
        .shutdown_timeout(grace)
        .build(fan_out);
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(args.listen);
    let which = if mock.is_some() {
        "the built-in mock upstream at "
    } else {
        ""
    };
    eprintln!("gateway listening on http://{local}");
    eprintln!("forwarding to {which}{upstream_url}");
    eprintln!(
        "{} (Ctrl-C to stop); metrics at http://{local}/metrics, health at /healthz",
        if args.no_log {
            "logging off (--no-log)".to_string()
        } else {
            format!("logging to {destinations}")
        }
    );
    eprintln!(
        "try: curl -s http://{local}/v1/chat/completions -H 'content-type: application/json' \
         -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Say hi\"}}]}}'"
    );

    // Shutdown is bounded: open requests get `grace` to finish, queued records get `grace` to be
    // written, and a second signal exits at once, so a stuck client or a log file on a hung
    // mount never keeps the process alive.
    let (signalled, mut on_signal) = tokio::sync::watch::channel(false);
    // Metrics of the exchanges, and the gateway's health, beside the proxy (neither is logged).
    let metrics = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("error: cannot set up metrics: {e}");
            return ExitCode::FAILURE;
        }
    };
    let service = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/metrics",
            axum::routing::get(move || std::future::ready(metrics.render())),
        )
        .merge(app::router(upstream, layer.clone()))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let serving = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            eprintln!("shutting down: finishing open requests (Ctrl-C again to exit at once)");
            let _ = signalled.send(true);
        })
        .into_future();
    let drain_limit = async move {
        let _ = on_signal.wait_for(|s| *s).await;
        tokio::spawn(async {
            shutdown_signal().await;
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        });
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        served = serving => served,
        () = drain_limit => {
            eprintln!("open requests did not finish within {grace:?}; stopping anyway");
            Ok(())
        }
    };
    if let Some(task) = mock {
        task.abort();
    }
    let report = guard.shutdown();
    let stats = layer.stats();
    eprintln!(
        "stopped: {} exchanges, {} records delivered to {destinations}, {} dropped (queue full), {} failed in a sink{}",
        stats.exchanges_started,
        report.stats.emitted,
        report.stats.dropped,
        report.stats.failed + stats.sink_panics,
        if report.finished { "" } else { "; the sinks did not finish in time" }
    );
    if let Some(file) = file {
        match file.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => eprintln!(
                "error: a write to {} is stuck; the records it holds are lost",
                args.log_file.display()
            ),
            Err(e) => eprintln!("error: flushing {}: {e}", args.log_file.display()),
        }
        if file.write_errors() > 0 {
            eprintln!(
                "{} records were lost to write errors on {}",
                file.write_errors(),
                args.log_file.display()
            );
        }
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

enum SinkError {
    Usage(String),
    Io(String),
}

/// The chosen sinks together, the file sink (to report on), and a description for the banner.
fn build_sinks(
    args: &Args,
    kinds: &[SinkKind],
) -> Result<(FanOut, Option<Arc<JsonLinesFile>>, String), SinkError> {
    let mut fan_out = FanOut::new();
    let mut file = None;
    let mut names = Vec::new();
    for kind in kinds {
        match kind {
            SinkKind::Jsonl => {
                let mut builder = JsonLinesFile::builder(&args.log_file).max_files(args.max_files);
                if let Some(bytes) = args.rotate_bytes {
                    builder = builder.max_bytes(bytes);
                }
                let sink = Arc::new(builder.build().map_err(|e| {
                    SinkError::Io(format!("cannot open --log-file {}: {e}", args.log_file.display()))
                })?);
                fan_out = fan_out.with(sink.clone());
                file = Some(sink);
                names.push(args.log_file.display().to_string());
            }
            SinkKind::Stdout => {
                fan_out = fan_out.with(JsonLinesSink::new(std::io::stdout()));
                names.push("stdout".into());
            }
            SinkKind::Otlp => {
                let endpoint = args
                    .otlp_endpoint
                    .clone()
                    .ok_or_else(|| SinkError::Usage("--sink otlp needs --otlp-endpoint URL".into()))?;
                fan_out = fan_out.with(otlp_sink(&endpoint, args.otlp_protocol, args.otlp_content)?);
                names.push(format!("OTLP at {endpoint}"));
            }
        }
    }
    // Also as tracing events, for whoever installs a subscriber, and as metrics (GET /metrics).
    fan_out = fan_out.with(TracingSink::new());
    let mut metrics = tower_llm_log::sink::MetricsSink::new();
    for name in &args.metrics_dimensions {
        metrics = metrics.with_dimension(name.clone());
    }
    fan_out = fan_out.with(metrics);
    Ok((fan_out, file, names.join(", ")))
}

#[cfg(feature = "otlp")]
fn otlp_sink(
    endpoint: &str,
    transport: OtlpTransport,
    content: bool,
) -> Result<impl tower_llm_log::LlmLogSink, SinkError> {
    use tower_llm_log::sink::{OtlpProtocol, OtlpSink};
    let protocol = match transport {
        OtlpTransport::Http => OtlpProtocol::HttpProtobuf,
        OtlpTransport::Grpc => OtlpProtocol::Grpc,
    };
    // The exporter's HTTP client uses rustls; make sure a crypto provider is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    OtlpSink::builder(endpoint, protocol)
        .service_name("llm-gateway")
        .with_content(content)
        .build()
        .map_err(|e| SinkError::Usage(e.to_string()))
}

#[cfg(not(feature = "otlp"))]
fn otlp_sink(_: &str, _: OtlpTransport, _: bool) -> Result<tower_llm_log::MemorySink, SinkError> {
    Err(SinkError::Usage(
        "--sink otlp needs the otlp feature: cargo run -p llm-log-gateway --features otlp -- ...".into(),
    ))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
