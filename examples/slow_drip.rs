//! Slow-drip clients against a running gateway, with the gateway's resident memory read from
//! outside (`/proc/PID/status`, Linux): the harness behind the README's memory figures.
//!
//! Each client sends a chat request whose body is cut into `--chunk`-byte HTTP chunks (1 by
//! default: the framing that made each captured byte cost a slice and a pinned buffer), all
//! but its last chunk, then waits until every client has done the same. With every exchange
//! open and its body read as far as it will go, the harness reads the gateway's resident
//! memory; then the clients finish and read their answers.
//!
//! ```text
//! scripts/slow-drip-rss.sh          # builds the release gateway and runs the table in the README
//! cargo run --release --example slow_drip -- --addr 127.0.0.1:18080 --pid 1234 --clients 200
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Slow-drip clients against a gateway, with its resident memory read from outside.
#[derive(Parser, Debug)]
struct Args {
    /// The gateway's address.
    #[arg(long)]
    addr: SocketAddr,
    /// The gateway's process id, to read its memory (`/proc/PID/status`).
    #[arg(long)]
    pid: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Bytes of message content in each request body.
    #[arg(long, default_value_t = 256 * 1024)]
    body_bytes: usize,
    /// Bytes per HTTP chunk.
    #[arg(long, default_value_t = 1)]
    chunk: usize,
}

/// The gateway's resident and peak resident memory, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The request body cut into HTTP chunks of `chunk` bytes: all but the last, and the last with
/// the terminating chunk.
fn chunked_body(body_bytes: usize, chunk: usize) -> (Vec<u8>, Vec<u8>) {
    let body = format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "d".repeat(body_bytes)
    );
    let pieces: Vec<&[u8]> = body.as_bytes().chunks(chunk).collect();
    let encode = |pieces: &[&[u8]]| {
        let mut out = Vec::with_capacity(pieces.len() * (chunk + 8));
        for p in pieces {
            out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
        out
    };
    let (most, last) = pieces.split_at(pieces.len() - 1);
    let mut end = encode(last);
    end.extend_from_slice(b"0\r\n\r\n");
    (encode(most), end)
}

async fn client(
    args: Arc<Args>,
    most: Arc<Vec<u8>>,
    end: Arc<Vec<u8>>,
    all_sent: Arc<Barrier>,
    measured: Arc<Barrier>,
) -> bool {
    let mut stream = TcpStream::connect(args.addr)
        .await
        .expect("connect to the gateway");
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        args.addr
    );
    stream.write_all(head.as_bytes()).await.expect("send the head");
    stream.write_all(&most).await.expect("send the body");
    all_sent.wait().await;
    measured.wait().await;
    stream.write_all(&end).await.expect("send the end");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    answer.starts_with(b"HTTP/1.1 200")
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    let (most, end) = chunked_body(args.body_bytes, args.chunk);
    let (most, end) = (Arc::new(most), Arc::new(end));
    let (rss_before, _) = memory_kib(args.pid);
    let all_sent = Arc::new(Barrier::new(args.clients + 1));
    let measured = Arc::new(Barrier::new(args.clients + 1));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|_| {
            tokio::spawn(client(
                args.clone(),
                most.clone(),
                end.clone(),
                all_sent.clone(),
                measured.clone(),
            ))
        })
        .collect();
    all_sent.wait().await;
    // Everything is written; let the gateway read what is in its sockets (and forward it, when
    // it forwards as bodies arrive) before measuring: until its memory holds still for a
    // second, two minutes at most.
    let settle_by = Instant::now() + Duration::from_secs(120);
    let mut last = 0;
    let mut still = 0;
    while still < 2 && Instant::now() < settle_by {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss, _) = memory_kib(args.pid);
        still = if rss == last { still + 1 } else { 0 };
        last = rss;
    }
    let (rss_open, hwm_open) = memory_kib(args.pid);
    measured.wait().await;
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap_or(false));
    }
    let (rss_after, hwm) = memory_kib(args.pid);
    println!(
        "{} clients, {} B of content each in {}-byte chunks ({:.1} s): gateway RSS {} KiB before, {} KiB with every exchange open (+{} KiB, {} KiB a client), peak {} KiB, {} KiB after; {} of {} answered 200",
        args.clients,
        args.body_bytes,
        args.chunk,
        started.elapsed().as_secs_f64(),
        rss_before,
        rss_open,
        rss_open.saturating_sub(rss_before),
        rss_open.saturating_sub(rss_before) / args.clients as u64,
        hwm_open.max(hwm),
        rss_after,
        ok,
        args.clients
    );
}
