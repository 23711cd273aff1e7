//! Who used what and what it cost: dimensions from headers, server code and the body, within
//! their limits and never holding the key; cost per family from the built-in and the
//! operator's prices; the gateway refusing a bad price file.

mod common;

use std::convert::Infallible;

use common::*;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::cost::PriceTable;
use tower_llm_log::{
    DimensionSource, Dimensions, LlmLogBody, LlmLogLayer, LlmLogRecord, LogConfig, MemorySink, RecordKind,
};

type Inner = Request<LlmLogBody<Frames>>;

/// One exchange at `path`: `request` with `headers` (and `extension`), answered with
/// `content_type` and `response`. The records.
async fn exchange(
    config: LogConfig,
    path: &str,
    request: &str,
    headers: &[(&str, &str)],
    extension: Option<Dimensions>,
    (content_type, response): (&'static str, &str),
) -> Vec<LlmLogRecord> {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let response = Frames::split(response.as_bytes(), &[]);
    let inner = service_fn(move |req: Inner| {
        let response = response.clone();
        async move {
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(
                Response::builder()
                    .header(CONTENT_TYPE, content_type)
                    .body(response)
                    .unwrap(),
            )
        }
    });
    let mut req = Request::post(path).header(CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Frames::split(request.as_bytes(), &[])).unwrap();
    if let Some(dims) = extension {
        req.extensions_mut().insert(dims);
    }
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    let _ = res.into_body().collect().await.unwrap();
    sink.take()
}

fn last_response(records: &[LlmLogRecord]) -> LlmLogRecord {
    of_kind(records, RecordKind::Response)
        .into_iter()
        .find(|r| r.is_last)
        .expect("a last response record")
}

const KEY: &str = "sk-proj-Sup3rS3cretKeyThatMustNotBeLogged0123";

#[tokio::test]
async fn dimensions_are_on_every_record_and_the_key_is_nowhere() {
    let config = LogConfig::builder()
        .dimension("user", DimensionSource::header("x-user-id"))
        .dimension("team", DimensionSource::header("x-team"))
        .chunk_bytes(16)
        .build()
        .unwrap();
    let request = r#"{"model":"gpt-4o-mini","user":"customer-42","messages":[{"role":"user","content":"a prompt long enough for several chunks"}]}"#;
    let response = r#"{"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"an answer long enough for several chunks"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;
    let headers = [
        ("x-user-id", "alice"),
        ("x-team", "search"),
        ("authorization", &format!("Bearer {KEY}") as &str),
    ];
    let records = exchange(
        config,
        "/v1/chat/completions",
        request,
        &headers,
        Some(Dimensions::new().with("tenant", "acme")),
        ("application/json", response),
    )
    .await;
    assert!(records.len() > 4, "chunked");
    let fingerprint = tower_llm_log::attribution::fingerprint(
        tower_llm_log::attribution::DEFAULT_FINGERPRINT_KEY,
        KEY.as_bytes(),
    );
    for r in &records {
        let dims: Vec<(&str, &str)> = r
            .dimensions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            dims,
            [
                ("api_key", fingerprint.as_str()),
                ("end_user", "customer-42"),
                ("team", "search"),
                ("tenant", "acme"),
                ("user", "alice")
            ],
            "{:?} {}",
            r.kind,
            r.sequence_number
        );
    }
    let log: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    assert!(!log.contains(KEY) && !log.contains("Sup3rS3cret"));
    assert!(log.contains(r#""Dimensions":{"api_key":""#));
}

#[tokio::test]
async fn forged_values_cannot_exceed_the_limits_or_break_a_line() {
    let config = LogConfig::builder()
        .dimension("user", DimensionSource::header("x-user-id"))
        .build()
        .unwrap();
    // The body's user field carries line breaks and an escape sequence; the header is 20 KB;
    // server code inserts 40 entries, some with names that are not names.
    let request =
        r#"{"model":"m","user":"evil\n{\"Kind\":\"Response\",\"CostUsd\":0}\u001b[31m","messages":[]}"#;
    let long = "x".repeat(20_000);
    let mut extension = Dimensions::new();
    for i in 0..40 {
        extension.insert(format!("d{i:02}"), "v");
    }
    extension.insert("bad name\n", "v");
    let records = exchange(
        config,
        "/v1/chat/completions",
        request,
        &[("x-user-id", &long)],
        Some(extension),
        ("application/json", r#"{"id":"c","model":"m","choices":[]}"#),
    )
    .await;
    for r in &records {
        assert_eq!(r.dimensions.len(), tower_llm_log::attribution::MAX_DIMENSIONS);
        assert!(r.dimensions.keys().all(|k| !k.contains(' ')));
        assert!(r
            .dimensions
            .values()
            .all(|v| v.len() <= tower_llm_log::attribution::MAX_DIMENSION_VALUE));
        let line = serde_json::to_string(r).unwrap();
        assert!(!line.contains('\n') && !line.contains('\u{1b}'));
        let back: LlmLogRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.dimensions, r.dimensions);
    }
    // Server code's 40 entries fill the 16 first: the header and the body's user find no room.
    assert!(!records[0].dimensions.contains_key("user"));

    // With room, the body's user is kept with its control characters escaped.
    let records = exchange(
        LogConfig::default(),
        "/v1/chat/completions",
        request,
        &[],
        None,
        ("application/json", "{}"),
    )
    .await;
    let user = &records[0].dimensions["end_user"];
    assert!(
        user.starts_with("evil\\u{a}{") && user.contains("\\u{1b}[31m"),
        "{user}"
    );
    assert!(LogConfig::builder()
        .dimension("bad name", DimensionSource::header("x"))
        .build()
        .is_err());
    assert!(LogConfig::builder()
        .dimension("ok", DimensionSource::header("bad header"))
        .build()
        .is_err());
    let too_many = (0..17).fold(LogConfig::builder(), |b, i| {
        b.dimension(format!("d{i}"), DimensionSource::forwarded_for())
    });
    assert!(too_many.build().is_err());
}

#[tokio::test]
async fn anthropic_metadata_user_is_the_end_user() {
    let request = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"metadata":{"user_id":"u-7"},"messages":[{"role":"user","content":"hi"}]}"#;
    let records = exchange(
        LogConfig::default(),
        "/v1/messages",
        request,
        &[("x-api-key", KEY)],
        None,
        ("application/json", "{}"),
    )
    .await;
    assert_eq!(records[0].dimensions["end_user"], "u-7");
    assert!(records[0].dimensions.contains_key("api_key"));
}

fn assert_cost(record: &LlmLogRecord, usd: f64) {
    let cost = record.cost_usd.expect("a cost");
    assert!((cost - usd).abs() < 1e-12, "{cost} against {usd}");
}

#[tokio::test]
async fn openai_cost_bills_cached_tokens_at_their_rate_and_reasoning_as_output() {
    let response = r#"{"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200,"prompt_tokens_details":{"cached_tokens":400},"completion_tokens_details":{"reasoning_tokens":50}}}"#;
    let request = r#"{"model":"gpt-4o","messages":[]}"#;
    let records = exchange(
        LogConfig::default(),
        "/v1/chat/completions",
        request,
        &[],
        None,
        ("application/json", response),
    )
    .await;
    let last = last_response(&records);
    // 600 × $2.50 + 400 × $1.25 + 200 × $10 per million tokens (built-in gpt-4o).
    assert_cost(&last, 0.004);
    assert!(!last.cost_estimated);
    assert!(of_kind(&records, RecordKind::Request)
        .iter()
        .all(|r| r.cost_usd.is_none()));
    let line = serde_json::to_string(&last).unwrap();
    assert!(line.contains(r#""CostUsd":0.004"#), "{line}");

    // The operator's price wins over the built-in one.
    let mine = PriceTable::from_json(r#"{"models":{"gpt-4o":{"input":1,"output":1}}}"#).unwrap();
    let records = exchange(
        LogConfig::builder().prices(mine).build().unwrap(),
        "/v1/chat/completions",
        request,
        &[],
        None,
        ("application/json", response),
    )
    .await;
    // No cached_input: cached tokens at the input rate; 1,200 tokens at $1 per million.
    assert_cost(&last_response(&records), 0.0012);
}

#[tokio::test]
async fn anthropic_cost_bills_cache_reads_and_writes_once_json_and_streamed() {
    let usage = r#"{"input_tokens":100,"output_tokens":50,"cache_read_input_tokens":2000,"cache_creation_input_tokens":1000}"#;
    let response = format!(
        r#"{{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{{"type":"text","text":"ok"}}],"stop_reason":"end_turn","usage":{usage}}}"#
    );
    let request =
        r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let records = exchange(
        LogConfig::default(),
        "/v1/messages",
        request,
        &[],
        None,
        ("application/json", &response),
    )
    .await;
    // 100 × $3 + 2,000 × $0.30 + 1,000 × $3.75 + 50 × $15 per million tokens.
    assert_cost(&last_response(&records), 0.0054);

    let stream = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":100,\"output_tokens\":1,\"cache_read_input_tokens\":2000,\"cache_creation_input_tokens\":1000}}}\n\n\
         event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
         event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n\
         event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":50}}\n\n\
         event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    );
    let records = exchange(
        LogConfig::default(),
        "/v1/messages",
        request,
        &[],
        None,
        ("text/event-stream", &stream),
    )
    .await;
    assert_cost(&last_response(&records), 0.0054);
}

#[tokio::test]
async fn embeddings_and_unknown_models() {
    let response = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":1000,"total_tokens":1000}}"#;
    let records = exchange(
        LogConfig::default(),
        "/v1/embeddings",
        r#"{"model":"text-embedding-3-small","input":"hi"}"#,
        &[],
        None,
        ("application/json", response),
    )
    .await;
    assert_cost(&last_response(&records), 0.00002);

    let response = r#"{"id":"c","model":"my-own-model","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;
    let records = exchange(
        LogConfig::default(),
        "/v1/chat/completions",
        r#"{"model":"my-own-model","messages":[]}"#,
        &[],
        None,
        ("application/json", response),
    )
    .await;
    let last = last_response(&records);
    assert_eq!(last.cost_usd, None, "no price: no cost, never 0");
    assert!(!serde_json::to_string(&last).unwrap().contains("CostUsd"));
    let records = exchange(
        LogConfig::builder().no_cost().build().unwrap(),
        "/v1/embeddings",
        r#"{"model":"text-embedding-3-small","input":"hi"}"#,
        &[],
        None,
        (
            "application/json",
            r#"{"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"#,
        ),
    )
    .await;
    assert_eq!(last_response(&records).cost_usd, None);
}

#[cfg(feature = "tokenizer")]
#[tokio::test]
async fn estimated_tokens_give_an_estimated_cost() {
    // A stream that reports no usage: tokens are estimated, and so is the cost.
    let chunk = |delta: &str, finish: &str| {
        format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n")
    };
    let stream = format!(
        "{}{}data: [DONE]\n\n",
        chunk(r#"{"role":"assistant","content":"Hello there"}"#, "null"),
        chunk("{}", "\"stop\"")
    );
    let request =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#;
    let records = exchange(
        LogConfig::default(),
        "/v1/chat/completions",
        request,
        &[],
        None,
        ("text/event-stream", &stream),
    )
    .await;
    let last = last_response(&records);
    assert!(last.tokens_estimated);
    assert!(last.cost_estimated);
    assert!(last.cost_usd.is_some_and(|c| c > 0.0));
}

#[test]
fn the_gateway_refuses_a_bad_price_file_naming_the_model_and_field() {
    let dir = std::env::temp_dir().join(format!("llm-log-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prices.json");
    std::fs::write(
        &file,
        r#"{"models":{"gpt-4o-mini":{"input":0.15,"output":"cheap"}}}"#,
    )
    .unwrap();
    let out = std::process::Command::new(gateway_binary())
        .args(["--listen", "127.0.0.1:0", "--prices"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--prices") && stderr.contains("\"gpt-4o-mini\"") && stderr.contains("\"output\""),
        "{stderr}"
    );
    std::fs::write(&file, r#"{"models":{"gpt-4o-mini":{"input":0.15,"output":-1}}}"#).unwrap();
    let out = std::process::Command::new(gateway_binary())
        .args(["--listen", "127.0.0.1:0", "--prices"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"gpt-4o-mini\"") && stderr.contains("\"output\""),
        "{stderr}"
    );
    let out = std::process::Command::new(gateway_binary())
        .args(["--listen", "127.0.0.1:0", "--dimension", "user=cookie:x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
