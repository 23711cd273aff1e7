//! An upstream stream cut short, through the gateway example (with and without the layer): the
//! client receives what the upstream sent before the cut, in order and unchanged, and the log
//! says the stream was cut.
//!
//! What is lost, and where (measured with this file's upstream): when the upstream closes its
//! connection normally (FIN) mid-stream, every byte it sent reaches the client, on both paths.
//! When it resets the connection (RST: a crashed process, `SO_LINGER` 0, unread input), the
//! kernel discards whatever it had received and not yet handed to the reader, for any reader:
//! a raw TCP client reading the upstream directly loses the same share (21 of 50 events in
//! one burst) as the gateway does. What the gateway had read, it forwards; what it never got to
//! read is gone before any user-space code can see it. The tests below prove the first case
//! exactly and the second as "a prefix, unchanged".

mod common;

#[allow(dead_code)]
#[path = "../gateway/src/app.rs"]
mod app;

use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_llm_log::{LlmLogLayer, MemorySink, Outcome, RecordKind};

/// The stream the upstream sends: `events` SSE chunks of about 100 bytes.
fn events(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("data: {{\"id\":\"c\",\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}}}}]}}\n\n"))
        .collect()
}

/// An upstream that streams `n` events as HTTP chunks, then cuts the connection without the
/// last chunk: cleanly (FIN) or with a reset (RST).
async fn cutting_upstream(n: usize, reset: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // The request: headers and a small body, read until its end.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(2).any(|w| w == b"]}") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => request.extend_from_slice(&buf[..k]),
                    }
                }
                let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for e in events(n) {
                    out.extend_from_slice(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes());
                }
                let _ = socket.write_all(&out).await;
                let _ = socket.flush().await;
                if reset {
                    let _ = socket.set_zero_linger();
                } else {
                    // Let the peer read it all before the close; a clean close keeps it anyway.
                    let _ = socket.shutdown().await;
                }
            });
        }
    });
    addr
}

/// Reads the gateway's answer frame by frame until its end or error: the bytes that arrived.
async fn read_through(gateway: SocketAddr) -> (Bytes, bool) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::post(format!("http://{gateway}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"m","stream":true,"messages":[]}"#,
        )))
        .unwrap();
    let res = client.request(req).await.expect("the gateway answers");
    let mut body = res.into_body();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => got.extend_from_slice(&f.into_data().unwrap_or_default()),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    (Bytes::from(got), failed)
}

async fn gateway(upstream: SocketAddr, logged: Option<LlmLogLayer>) -> SocketAddr {
    let upstream = app::Upstream::new(&format!("http://{upstream}")).unwrap();
    serve(match logged {
        Some(layer) => app::router(upstream, layer),
        None => app::proxy(upstream),
    })
    .await
}

#[tokio::test]
async fn a_stream_cut_cleanly_reaches_the_client_whole_on_both_paths() {
    let sent: String = events(2000).concat();
    for logged in [false, true] {
        let sink = MemorySink::new();
        let upstream = cutting_upstream(2000, false).await;
        let gw = gateway(upstream, logged.then(|| LlmLogLayer::new(sink.clone()))).await;
        let (got, failed) = read_through(gw).await;
        assert!(failed, "the client is told the stream was cut (logged: {logged})");
        assert_eq!(got.len(), sent.len(), "logged: {logged}");
        assert_eq!(got, sent.as_bytes(), "logged: {logged}");
        if logged {
            let records = wait_records(&sink, 2).await;
            let rs: Vec<_> = records
                .iter()
                .filter(|r| r.kind == RecordKind::Response)
                .collect();
            let last = rs.iter().find(|r| r.is_last).unwrap();
            assert_eq!(last.outcome, Outcome::BodyError, "{:?}", last.error);
            assert!(last.message_bytes > 0);
        }
    }
}

#[tokio::test]
async fn a_stream_cut_by_a_reset_reaches_the_client_as_an_unchanged_prefix() {
    let sent: String = events(2000).concat();
    for logged in [false, true] {
        let sink = MemorySink::new();
        let upstream = cutting_upstream(2000, true).await;
        let gw = gateway(upstream, logged.then(|| LlmLogLayer::new(sink.clone()))).await;
        let (got, failed) = read_through(gw).await;
        assert!(failed, "logged: {logged}");
        assert!(
            sent.as_bytes().starts_with(&got),
            "what arrives is what was sent, up to where the kernel dropped the rest (logged: {logged})"
        );
        if logged {
            let records = wait_records(&sink, 2).await;
            let last = records
                .iter()
                .find(|r| r.kind == RecordKind::Response && r.is_last)
                .unwrap();
            assert_eq!(last.outcome, Outcome::BodyError);
        }
    }
}
