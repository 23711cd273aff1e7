//! Invariants over many inputs: any split of a stream or body logs the same records; chunks
//! reassemble; arbitrary bytes pass through unchanged and never break the caps.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::chunk::chunk_message;
use tower_llm_log::{LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, RecordKind};

/// Runs one exchange with the given frames on both sides; returns what the inner service and the
/// caller saw, and the records.
fn run(
    config: LogConfig,
    request: Frames,
    content_type: &'static str,
    response: Frames,
) -> (Bytes, Bytes, Vec<LlmLogRecord>) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async move {
        let sink = MemorySink::new();
        let layer = LlmLogLayer::new(sink.clone()).with_config(config);
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = service_fn(move |req: Request<LlmLogBody<Frames>>| {
            let response = response.clone();
            let tx = tx.clone();
            async move {
                let seen = req.into_body().collect().await.unwrap().to_bytes();
                tx.send(seen).unwrap();
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(CONTENT_TYPE, content_type)
                        .body(response)
                        .unwrap(),
                )
            }
        });
        let req = Request::post("/v1/chat/completions").body(request).unwrap();
        let res = layer.layer(inner).oneshot(req).await.unwrap();
        let got = res.into_body().collect().await.unwrap().to_bytes();
        (rx.recv().unwrap(), got, sink.take())
    })
}

/// What must not depend on how the bytes were framed (timings aside).
fn essence(records: &[LlmLogRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{:?} {} {} {:?} {:?} {:?} {:?} {} {} {:?} {:?} {:?} {:?}",
                r.kind,
                r.sequence_number,
                r.is_last,
                r.model_name,
                r.request_id,
                r.total_tokens,
                r.prompt_tokens,
                r.messages_str(),
                r.message_bytes,
                r.truncated,
                r.finish_reasons,
                r.outcome,
                r.error
            )
        })
        .collect()
}

fn cuts_strategy(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=len, 0..12).prop_map(|mut v| {
        v.sort();
        v
    })
}

#[test]
fn sse_split_at_every_byte_boundary_logs_the_same() {
    let stream = chat_stream();
    let whole = run(
        LogConfig::default(),
        Frames::split(CHAT_REQUEST.as_bytes(), &[]),
        "text/event-stream",
        Frames::split(stream.as_bytes(), &[]),
    );
    let want = essence(&whole.2);
    assert!(want[1].contains(CHAT_STREAM_COMPLETION), "{want:?}");
    for i in 0..=stream.len() {
        let (_, got, records) = run(
            LogConfig::default(),
            Frames::split(CHAT_REQUEST.as_bytes(), &[i.min(CHAT_REQUEST.len())]),
            "text/event-stream",
            Frames::split(stream.as_bytes(), &[i]),
        );
        assert_eq!(got, stream.as_bytes());
        assert_eq!(essence(&records), want, "split at {i}");
    }
}

#[test]
fn crlf_streams_log_the_same_as_lf_streams() {
    let lf = chat_stream();
    let crlf = lf.replace('\n', "\r\n");
    let cr = lf.replace('\n', "\r");
    let req = || Frames::split(CHAT_REQUEST.as_bytes(), &[]);
    let want = essence(
        &run(
            LogConfig::default(),
            req(),
            "text/event-stream",
            Frames::split(lf.as_bytes(), &[]),
        )
        .2,
    );
    for variant in [&crlf, &cr] {
        for i in 0..variant.len() {
            let got = run(
                LogConfig::default(),
                req(),
                "text/event-stream",
                Frames::split(variant.as_bytes(), &[i, i + 1]),
            );
            assert_eq!(essence(&got.2), want, "split at {i}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_split_of_a_stream_logs_the_same(cuts in cuts_strategy(1200)) {
        let stream = chat_stream();
        let req = || Frames::split(CHAT_REQUEST.as_bytes(), &[]);
        let want = essence(&run(LogConfig::default(), req(), "text/event-stream", Frames::split(stream.as_bytes(), &[])).2);
        let (_, got, records) = run(LogConfig::default(), req(), "text/event-stream", Frames::split(stream.as_bytes(), &cuts));
        prop_assert_eq!(got, stream.as_bytes());
        prop_assert_eq!(essence(&records), want);
    }

    #[test]
    fn any_split_of_json_bodies_logs_the_same(req_cuts in cuts_strategy(200), res_cuts in cuts_strategy(600)) {
        let config = || LogConfig::builder().chunk_bytes(17).build().unwrap();
        let want = essence(&run(config(), Frames::split(CHAT_REQUEST.as_bytes(), &[]), "application/json", Frames::split(CHAT_RESPONSE.as_bytes(), &[])).2);
        let (seen, got, records) = run(config(), Frames::split(CHAT_REQUEST.as_bytes(), &req_cuts), "application/json", Frames::split(CHAT_RESPONSE.as_bytes(), &res_cuts));
        prop_assert_eq!(seen, CHAT_REQUEST.as_bytes());
        prop_assert_eq!(got, CHAT_RESPONSE.as_bytes());
        prop_assert_eq!(essence(&records), want);
    }

    #[test]
    fn chunks_reassemble_to_the_message(text in "\\PC{0,300}", chunk in 1usize..40, cuts in cuts_strategy(1200)) {
        let bytes = text.as_bytes();
        let segments: Vec<Bytes> = {
            let f = Frames::split(bytes, &cuts);
            let mut v = Vec::new();
            let mut body = f;
            while let Some(frame) = futures_util::FutureExt::now_or_never(body.frame()).flatten() {
                v.push(frame.unwrap().into_data().unwrap());
            }
            v
        };
        let out = chunk_message(&segments, chunk);
        let joined: Vec<u8> = out.chunks.iter().flat_map(|c| c.iter().copied()).collect();
        prop_assert_eq!(&joined[..], bytes);
        prop_assert!(!out.cut);
        for c in &out.chunks {
            let s = std::str::from_utf8(c);
            prop_assert!(s.is_ok());
            prop_assert!(c.len() <= chunk || s.unwrap().chars().count() == 1);
            prop_assert!(!c.is_empty());
        }
    }

    #[test]
    fn arbitrary_bytes_pass_through_and_respect_the_caps(
        req in proptest::collection::vec(any::<u8>(), 0..400),
        res in proptest::collection::vec(any::<u8>(), 0..400),
        req_cuts in cuts_strategy(400),
        res_cuts in cuts_strategy(400),
        sse in any::<bool>(),
        cap in 0usize..64,
    ) {
        let config = LogConfig::builder().prompt_bytes(cap).completion_bytes(cap).chunk_bytes(7).build().unwrap();
        let content_type = if sse { "text/event-stream" } else { "application/json" };
        let (seen, got, records) = run(config, Frames::split(&req, &req_cuts), content_type, Frames::split(&res, &res_cuts));
        prop_assert_eq!(&seen[..], &req[..]);
        prop_assert_eq!(&got[..], &res[..]);
        for kind in [RecordKind::Request, RecordKind::Response] {
            let side = of_kind(&records, kind);
            prop_assert!(!side.is_empty());
            prop_assert!(message(&side).len() <= cap);
            for (i, r) in side.iter().enumerate() {
                prop_assert_eq!(r.sequence_number as usize, i);
                prop_assert_eq!(r.is_last, i + 1 == side.len());
            }
        }
    }
}
