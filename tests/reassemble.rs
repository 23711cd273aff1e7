//! Records written by the layer, read back from JSON Lines, shuffled, duplicated and gapped:
//! reassembly gives the exchanges back exactly, and says what is missing.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::reassemble::{reassemble, reassemble_streaming, Missing};
use tower_llm_log::{JsonLinesSink, LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, RecordKind};

/// Three exchanges through the layer with 7-byte chunks, as JSON Lines read back.
fn logged() -> Vec<LlmLogRecord> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let lines = rt.block_on(async {
        let sink = std::sync::Arc::new(JsonLinesSink::new(Vec::new()));
        let config = LogConfig::builder().chunk_bytes(7).build().unwrap();
        let layer = LlmLogLayer::new(sink.clone()).with_config(config);
        for (content_type, body) in [
            ("application/json", CHAT_RESPONSE.to_string()),
            ("text/event-stream", chat_stream()),
            ("application/json", CHAT_RESPONSE.to_string()),
        ] {
            let inner = service_fn(move |req: Request<LlmLogBody<Frames>>| {
                let body = body.clone();
                async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", content_type)
                            .body(Frames::new([Bytes::from(body)]))
                            .unwrap(),
                    )
                }
            });
            let req = Request::post("/v1/chat/completions")
                .body(Frames::split(CHAT_REQUEST.as_bytes(), &[]))
                .unwrap();
            let res = layer.layer(inner).oneshot(req).await.unwrap();
            res.into_body().collect().await.unwrap();
        }
        drop(layer);
        std::sync::Arc::try_unwrap(sink).expect("sole owner").into_inner()
    });
    String::from_utf8(lines)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn messages_value() -> &'static str {
    let start = CHAT_REQUEST.find('[').unwrap();
    let end = CHAT_REQUEST.find("],\"model\"").unwrap() + 1;
    &CHAT_REQUEST[start..end]
}

fn choices_value() -> String {
    let v: serde_json::Value = serde_json::from_str(CHAT_RESPONSE).unwrap();
    v["choices"].to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn shuffled_duplicated_records_reassemble_exactly(order in Just(()).prop_perturb(|_, mut rng| {
        let mut records = logged();
        let n = records.len();
        for _ in 0..n / 3 {
            let i = rng.random_range(0..n);
            records.push(records[i].clone());
        }
        for i in (1..records.len()).rev() {
            records.swap(i, rng.random_range(0..=i));
        }
        records
    }), window in 1usize..5) {
        let exchanges = reassemble(order.clone());
        prop_assert_eq!(exchanges.len(), 3);
        for e in &exchanges {
            prop_assert!(e.is_complete(), "{:?}", e.missing);
            prop_assert_eq!(&e.request.as_ref().unwrap().message, messages_value());
            let response = &e.response.as_ref().unwrap();
            if response.record.is_stream_completion {
                prop_assert_eq!(&response.message, CHAT_STREAM_COMPLETION);
                prop_assert_eq!(response.record.total_tokens, Some(13));
            } else {
                let logged: serde_json::Value = serde_json::from_str(&response.message).unwrap();
                prop_assert_eq!(logged.to_string(), choices_value());
                prop_assert_eq!(response.record.total_tokens, Some(24));
            }
        }
        // Streaming: with a window too small for the shuffle, some exchanges come out in pieces,
        // each marked incomplete.
        let streamed: Vec<_> = reassemble_streaming(order, window).collect();
        let chunks: usize = streamed.iter().map(|e| {
            e.request.as_ref().map_or(0, |s| s.chunks as usize) + e.response.as_ref().map_or(0, |s| s.chunks as usize)
        }).sum();
        // Nothing is lost: every distinct chunk comes out at least once (a duplicate arriving after
        // its exchange was pushed out of a small window comes out again, marked incomplete).
        let originals = logged().len();
        prop_assert!(chunks >= originals, "{} chunks out of {}", chunks, originals);
        for e in &streamed {
            prop_assert_eq!(e.is_complete(), e.missing.is_empty());
        }
        if window >= 3 {
            // Every exchange fits in the window: the same three, complete.
            prop_assert_eq!(streamed.len(), 3);
            prop_assert!(streamed.iter().all(|e| e.is_complete()));
            prop_assert_eq!(chunks, originals);
        }
    }
}

#[test]
fn a_gapped_log_reports_what_is_missing() {
    let mut records = logged();
    let ids: Vec<String> = records.iter().map(|r| r.correlation_id.to_string()).collect();
    let (first, second) = (
        ids[0].clone(),
        ids.iter().find(|i| **i != ids[0]).unwrap().clone(),
    );
    // The first exchange loses request chunk 2; the second loses its whole response.
    records
        .retain(|r| !(r.correlation_id == first && r.kind == RecordKind::Request && r.sequence_number == 2));
    records.retain(|r| !(r.correlation_id == second && r.kind == RecordKind::Response));
    let exchanges = reassemble(records);
    let find = |id: &str| exchanges.iter().find(|e| e.correlation_id == id).unwrap();
    assert_eq!(
        find(&first).missing,
        vec![Missing::Chunks {
            kind: RecordKind::Request,
            from: 2,
            to: 2
        }]
    );
    assert_eq!(find(&second).missing, vec![Missing::Side(RecordKind::Response)]);
    assert_eq!(exchanges.iter().filter(|e| e.is_complete()).count(), 1);
}
