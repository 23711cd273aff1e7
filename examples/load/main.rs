//! The load harness: the gateway example's router in front of its mock upstream on 127.0.0.1,
//! driven at a fixed concurrency by a Rust HTTP/1.1 client (keep-alive), with logging off, with
//! logging on (JSON Lines file through `NonBlocking`), and with the hand-written buffering
//! baseline (which parses both bodies and hands them to a sink that discards them). Prints
//! throughput and p50/p99 latency for JSON exchanges, and time to first byte for streams. The
//! "records discarded" row is the layer with a sink that drops each record: the like-for-like
//! comparison with the baseline; the JSON Lines row adds serializing and writing every record.
//!
//! ```text
//! cargo run --release --example load                       # 32 clients, 5 s per run
//! cargo run --release --example load -- --concurrency 64 --seconds 10
//! ```
//!
//! Everything (client, gateway, mock) shares the machine's cores, so absolute figures say more
//! about the machine than the layer; compare the rows of one run.
//!
//! `--target NAME=HOST:PORT` (repeatable) drives servers of one's own instead, such as the
//! release gateway binary with and without `--no-log`: `scripts/gateway-load.sh` does that.
//!
//! `RUSTFLAGS="--cfg load_mimalloc" cargo run --release --example load` runs it on mimalloc
//! instead of the system allocator, to see how much of the cost is allocator contention.

#[cfg(load_mimalloc)]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)]
#[path = "../../gateway/src/app.rs"]
mod app;
mod buffering;
#[allow(dead_code)]
#[path = "../../gateway/src/mock.rs"]
mod mock;
#[allow(dead_code)]
#[path = "../../gateway/src/mock_apis.rs"]
mod mock_apis;
#[allow(dead_code)]
#[path = "../../gateway/src/mock_mcp.rs"]
mod mock_mcp;
#[allow(dead_code)]
#[path = "../../gateway/src/mock_native.rs"]
mod mock_native;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use clap::Parser;
use http::Request;
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_llm_log::sink::JsonLinesFile;
use tower_llm_log::{LlmLogLayer, NonBlocking};

/// Load harness for the logging layer.
#[derive(Parser, Debug)]
struct Args {
    /// Clients sending requests at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds: every mode runs once per round, the modes interleaved, and the table gives each
    /// mode's median round (a shared machine's slow spells then fall on every mode alike,
    /// not on whichever ran during them).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Prompt size in bytes.
    #[arg(long, default_value_t = 4096)]
    prompt_bytes: usize,
    /// Words in each completion (about 6 bytes each); streams send one event per word.
    #[arg(long, default_value_t = 700)]
    completion_words: usize,
    /// Words (events) in each streamed completion.
    #[arg(long, default_value_t = 200)]
    stream_words: usize,
    /// Drive these servers instead of the in-process ones, `NAME=HOST:PORT`, repeatable: for
    /// the gateway binary with and without `--no-log` (`scripts/gateway-load.sh`).
    #[arg(long = "target", value_name = "NAME=HOST:PORT")]
    targets: Vec<String>,
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Latencies of one run, and its length.
struct Run {
    latencies: Vec<Duration>,
    first_bytes: Vec<Duration>,
    failures: u64,
    elapsed: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1e3
}

/// `concurrency` clients sending `body` to `addr` for `seconds`.
async fn drive(client: &HttpClient, addr: SocketAddr, body: Bytes, args: &Args) -> Run {
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let client = client.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let (mut latencies, mut first_bytes, mut failures) = (Vec::new(), Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let req = Request::post(format!("http://{addr}/v1/chat/completions"))
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                        .expect("a valid request");
                    let Ok(res) = client.request(req).await else {
                        failures += 1;
                        continue;
                    };
                    if !res.status().is_success() {
                        failures += 1;
                    }
                    let mut body = res.into_body();
                    let mut first = None;
                    while let Some(frame) = body.frame().await {
                        if frame.is_err() {
                            failures += 1;
                            break;
                        }
                        first.get_or_insert_with(|| sent.elapsed());
                    }
                    debug_assert!(body.is_end_stream());
                    latencies.push(sent.elapsed());
                    first_bytes.extend(first);
                }
                (latencies, first_bytes, failures)
            })
        })
        .collect();
    let mut run = Run {
        latencies: Vec::new(),
        first_bytes: Vec::new(),
        failures: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (l, f, n) = t.await.expect("client task");
        run.latencies.extend(l);
        run.first_bytes.extend(f);
        run.failures += n;
    }
    run.elapsed = start.elapsed();
    run.latencies.sort();
    run.first_bytes.sort();
    run
}

fn request_body(args: &Args, stream: bool) -> Bytes {
    let words = "lorem ipsum dolor sit amet ".repeat(args.prompt_bytes / 27 + 1);
    let prompt = &words[..args.prompt_bytes];
    let max = if stream {
        args.stream_words
    } else {
        args.completion_words
    };
    Bytes::from(format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{prompt}"}}],"max_tokens":{max},"stream":{stream},"stream_options":{{"include_usage":true}}}}"#
    ))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mock = serve(mock::router()).await;
    let upstream = || app::Upstream::new(&format!("http://{mock}")).expect("the mock's address is a URL");

    let dir = std::env::temp_dir().join(format!("tower-llm-log-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let file = JsonLinesFile::builder(dir.join("llm-log.jsonl"))
        .max_bytes(256 << 20)
        .max_files(2)
        .build()
        .expect("the log file opens");
    let (queued, guard) = NonBlocking::new(file);
    let layer = LlmLogLayer::new(queued);

    let targets: Vec<(String, SocketAddr)> = args
        .targets
        .iter()
        .map(|t| {
            let (name, addr) = t.split_once('=').unwrap_or(("target", t.as_str()));
            let addr = addr
                .parse()
                .unwrap_or_else(|e| panic!("--target {t}: {e} (want NAME=HOST:PORT)"));
            (name.to_string(), addr)
        })
        .collect();
    let in_process = [
        ("logging off", serve(app::proxy(upstream())).await),
        (
            "logging on, records discarded",
            serve(app::router(
                upstream(),
                LlmLogLayer::new(|r: tower_llm_log::LlmLogRecord| drop(r)),
            ))
            .await,
        ),
        (
            "logging on (JSON Lines via NonBlocking)",
            serve(app::router(upstream(), layer.clone())).await,
        ),
        (
            "hand-written buffering baseline",
            serve(
                app::proxy(upstream()).layer(buffering::BufferingLayer::new(|messages, response| {
                    std::hint::black_box((messages, response));
                })),
            )
            .await,
        ),
    ];
    let gateways: Vec<(String, SocketAddr)> = if targets.is_empty() {
        in_process.iter().map(|(n, a)| (n.to_string(), *a)).collect()
    } else {
        targets
    };
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build_http();

    println!(
        "{} clients, {} s per run, {} rounds (the median round of each mode is shown), {} B prompts; JSON: {} words completion; streams: {} events; allocator: {}\n",
        args.concurrency,
        args.seconds,
        args.rounds.max(1),
        args.prompt_bytes,
        args.completion_words,
        args.stream_words,
        if cfg!(load_mimalloc) { "mimalloc" } else { "system" }
    );
    println!(
        "| run | mode | requests/s | of the first mode | p50 ms | p99 ms | TTFB p50 ms | TTFB p99 ms | failures | requests/s of each round |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (kind, stream) in [("JSON", false), ("stream", true)] {
        let body = request_body(&args, stream);
        // Warm the connections and the caches.
        for (_, addr) in &gateways {
            let warm = Args {
                seconds: 0.5,
                ..Args::parse()
            };
            drive(&client, *addr, body.clone(), &warm).await;
        }
        let mut runs: Vec<Vec<Run>> = gateways.iter().map(|_| Vec::new()).collect();
        for _ in 0..args.rounds.max(1) {
            for (at, (_, addr)) in gateways.iter().enumerate() {
                runs[at].push(drive(&client, *addr, body.clone(), &args).await);
            }
        }
        let mut first = None;
        for ((mode, _), mut rounds) in gateways.iter().zip(runs) {
            let rate = |run: &Run| run.latencies.len() as f64 / run.elapsed.as_secs_f64();
            let each: Vec<String> = rounds.iter().map(|r| format!("{:.0}", rate(r))).collect();
            rounds.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
            let run = &rounds[rounds.len() / 2];
            let first_rate = *first.get_or_insert(rate(run));
            println!(
                "| {kind} | {mode} | {:.0} | {:.0}% | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
                rate(run),
                100.0 * rate(run) / first_rate,
                percentile(&run.latencies, 0.5),
                percentile(&run.latencies, 0.99),
                percentile(&run.first_bytes, 0.5),
                percentile(&run.first_bytes, 0.99),
                run.failures,
                each.join(", ")
            );
        }
    }
    let stats = layer.stats();
    let report = guard.shutdown();
    if args.targets.is_empty() {
        println!(
            "\nlogging on: {} exchanges, {} records emitted; sink: {:?}",
            stats.exchanges_finished, stats.records_emitted, report
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
