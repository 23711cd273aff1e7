//! Compressed bodies: decoded for the tap only, the traffic passed as it came, decoded bytes
//! bounded (a decompression bomb stops at the bound), an undecodable body logged with an error.
#![cfg(feature = "decompress")]
mod common;

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use common::*;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::{LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, Outcome, RecordKind};

type Inner = Request<LlmLogBody<Frames>>;

fn compress(encoding: &str, data: &[u8]) -> Vec<u8> {
    match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
            e.write_all(data).unwrap();
            e.into_inner()
        }
        "zstd" => ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest),
        other => panic!("{other}"),
    }
}

/// Frames of `size` bytes each.
fn frames_of(data: &[u8], size: usize) -> Frames {
    Frames::new(data.chunks(size).map(Bytes::copy_from_slice).collect::<Vec<_>>())
}

/// One chat exchange with the given encodings (`None` for plain) on each side.
async fn run(
    layer: &LlmLogLayer,
    sink: &MemorySink,
    request: (Option<&str>, Vec<u8>),
    response: (Option<&'static str>, &'static str, Vec<u8>),
) -> (Bytes, Vec<LlmLogRecord>) {
    let (res_encoding, content_type, res_body) = response;
    let res_body = Bytes::from(res_body);
    let upstream_body = res_body.clone();
    let inner = service_fn(move |req: Inner| {
        let body = upstream_body.clone();
        async move {
            let _ = req.into_body().collect().await;
            let mut res = Response::builder().header(CONTENT_TYPE, content_type);
            if let Some(e) = res_encoding {
                res = res.header(CONTENT_ENCODING, e);
            }
            Ok::<_, Infallible>(res.body(frames_of(&body, 7)).unwrap())
        }
    });
    let mut req = Request::post("/v1/chat/completions").header(CONTENT_TYPE, "application/json");
    if let Some(e) = request.0 {
        req = req.header(CONTENT_ENCODING, e);
    }
    let req = req.body(frames_of(&request.1, 5)).unwrap();
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes, res_body, "the response passes as it came, compressed");
    (bytes, sink.take())
}

#[tokio::test]
async fn every_encoding_is_decoded_for_the_log_on_both_sides() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let (_, plain) = run(
        &layer,
        &sink,
        (None, CHAT_REQUEST.as_bytes().to_vec()),
        (None, "application/json", CHAT_RESPONSE.as_bytes().to_vec()),
    )
    .await;
    for encoding in ["gzip", "deflate", "br", "zstd"] {
        let (_, records) = run(
            &layer,
            &sink,
            (Some(encoding), compress(encoding, CHAT_REQUEST.as_bytes())),
            (
                Some(encoding),
                "application/json",
                compress(encoding, CHAT_RESPONSE.as_bytes()),
            ),
        )
        .await;
        for kind in [RecordKind::Request, RecordKind::Response] {
            let (got, want) = (&of_kind(&records, kind)[0], &of_kind(&plain, kind)[0]);
            assert_eq!(got.messages_str(), want.messages_str(), "{encoding} {kind:?}");
            assert_eq!(got.message_bytes, want.message_bytes, "{encoding} {kind:?}");
            assert_eq!(
                (got.total_tokens, &got.model_name, &got.error),
                (want.total_tokens, &want.model_name, &want.error),
                "{encoding} {kind:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_compressed_stream_is_assembled() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let stream = chat_stream();
    for encoding in ["gzip", "br", "zstd"] {
        let (_, records) = run(
            &layer,
            &sink,
            (None, CHAT_REQUEST.as_bytes().to_vec()),
            (
                Some(encoding),
                "text/event-stream",
                compress(encoding, stream.as_bytes()),
            ),
        )
        .await;
        let rs = &of_kind(&records, RecordKind::Response)[0];
        assert_eq!(rs.messages_str(), CHAT_STREAM_COMPLETION, "{encoding}");
        assert_eq!(rs.total_tokens, Some(13), "{encoding}");
        assert_eq!(rs.error, None, "{encoding}");
    }
}

#[tokio::test]
async fn a_decompression_bomb_stops_at_the_bound_and_keeps_the_cap() {
    let sink = MemorySink::new();
    let config = LogConfig::builder().decoded_bytes(8 << 20).build().unwrap();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    // 100 MiB of prompt in about 100 KiB of gzip.
    let mut body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 100 << 20));
    body.extend_from_slice(br#""}]}"#);
    let bomb = compress("gzip", &body);
    drop(body);
    assert!(bomb.len() < 200 * 1024, "{}", bomb.len());
    let (_, records) = run(
        &layer,
        &sink,
        (Some("gzip"), bomb.clone()),
        (None, "application/json", CHAT_RESPONSE.as_bytes().to_vec()),
    )
    .await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.outcome, Outcome::Completed, "the traffic is unaffected");
    assert_eq!(rq.messages.len(), 32 * 1024, "the log keeps the cap");
    assert!(rq.truncated);
    let error = rq.error.as_deref().unwrap();
    assert!(
        error.contains("decoding stopped at 8388608 decoded bytes"),
        "{error}"
    );
    assert!(
        rq.message_bytes < 8 << 20,
        "only the decoded part was seen: {}",
        rq.message_bytes
    );
    assert_eq!(rq.model_name.as_deref(), Some("gpt-4o"));
}

#[tokio::test]
async fn an_undecodable_body_is_logged_with_an_error_and_passes() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    for encoding in ["gzip", "deflate", "br", "zstd"] {
        let garbage = b"this is not compressed at all, whatever the header says".to_vec();
        let (_, records) = run(
            &layer,
            &sink,
            (Some(encoding), garbage.clone()),
            (Some(encoding), "application/json", garbage),
        )
        .await;
        for kind in [RecordKind::Request, RecordKind::Response] {
            let r = &of_kind(&records, kind)[0];
            assert_eq!(r.outcome, Outcome::Completed, "{encoding} {kind:?}");
            let error = r.error.as_deref().unwrap_or_default();
            assert!(
                error.contains(&format!("the {encoding} body could not be decoded")),
                "{encoding} {kind:?}: {error}"
            );
        }
    }
}

#[tokio::test]
async fn decoding_can_be_turned_off() {
    let sink = MemorySink::new();
    let config = LogConfig::builder().decoded_bytes(0).build().unwrap();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let gz = compress("gzip", CHAT_REQUEST.as_bytes());
    let (_, records) = run(
        &layer,
        &sink,
        (Some("gzip"), gz.clone()),
        (None, "application/json", CHAT_RESPONSE.as_bytes().to_vec()),
    )
    .await;
    let rq = &of_kind(&records, RecordKind::Request)[0];
    assert_eq!(rq.message_bytes, gz.len() as u64);
    assert!(rq.messages.is_empty());
    assert_eq!(
        rq.error.as_deref(),
        Some("request: the body is compressed and decoding is off")
    );
}
