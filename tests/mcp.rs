//! MCP (streamable HTTP) through the layer, against fixtures in the specification's message
//! shapes (`tests/fixtures/mcp`, facts and sources in `tests/fixtures/FORMATS.md`): every method
//! the records name, JSON and event-stream answers split at every byte and fed a byte at a time,
//! notifications, errors, batches, and the bad cases.
mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::mcp::*;
use common::*;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::{service_fn, Layer, ServiceExt};
use tower_llm_log::api::{McpApi, ProblemKind};
use tower_llm_log::{ApiFamily, LlmLogBody, LlmLogLayer, MemorySink, Outcome, RecordKind};

type Inner = Request<LlmLogBody<Frames>>;

fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).unwrap()
}

#[tokio::test]
async fn initialize_names_the_client_the_server_the_session_and_the_version() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let answer = Answer {
        headers: vec![("mcp-session-id", "1868a90c-4d1a-4b6f-9c3e-0f2b7d1e5a42")],
        ..json()
    };
    let response = mcp_fixture("initialize_response.json");
    let (bytes, records) = exchange_with(
        layer,
        &sink,
        (Method::POST, "/mcp"),
        &[],
        &mcp_fixture("initialize_request.json"),
        answer,
        Frames::new([Bytes::from(response.clone())]),
    )
    .await;
    assert_eq!(bytes, response);
    let req = one(&records, RecordKind::Request);
    let res = one(&records, RecordKind::Response);
    for r in [&req, &res] {
        assert_eq!(r.api, ApiFamily::Mcp);
        assert_eq!(r.operation_name, "initialize");
        assert_eq!(r.request_id.as_deref(), Some("1"));
        assert_eq!(r.outcome, Outcome::Completed);
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    assert_eq!(
        req.dimensions.get("mcp_client_name").map(String::as_str),
        Some("example-client")
    );
    assert_eq!(
        req.dimensions.get("mcp_client_version").map(String::as_str),
        Some("1.2.0")
    );
    assert_eq!(
        res.dimensions.get("mcp_server_name").map(String::as_str),
        Some("example-server")
    );
    assert_eq!(
        res.dimensions.get("mcp_server_version").map(String::as_str),
        Some("0.9.1")
    );
    assert_eq!(
        res.dimensions.get("mcp_session").map(String::as_str),
        Some("1868a90c-4d1a-4b6f-9c3e-0f2b7d1e5a42"),
        "the session the server assigned"
    );
    assert_eq!(req.messages_str(), text(&mcp_fixture("initialize_request.json")));
    assert_eq!(res.messages_str(), text(&response));
    assert!(req.messages_are_json && res.messages_are_json);
}

#[tokio::test]
async fn a_tool_call_names_its_tool_and_logs_arguments_and_result() {
    let request = mcp_fixture("tools_call_request.json");
    let response = mcp_fixture("tools_call_response.json");
    let records = post_with(
        &[("mcp-session-id", "s-42"), ("mcp-protocol-version", "2025-06-18")],
        &request,
        json(),
        Frames::new([Bytes::from(response.clone())]),
    )
    .await;
    let req = one(&records, RecordKind::Request);
    let res = one(&records, RecordKind::Response);
    for r in [&req, &res] {
        assert_eq!(r.operation_name, "tools/call");
        assert_eq!(r.tool_name.as_deref(), Some("get_weather"));
        assert_eq!(r.request_id.as_deref(), Some("3"));
        assert_eq!(r.api_version.as_deref(), Some("2025-06-18"));
        assert_eq!(r.dimensions.get("mcp_session").map(String::as_str), Some("s-42"));
        assert_eq!(r.outcome, Outcome::Completed);
    }
    assert_eq!(json_of(&req)["params"]["arguments"]["city"], "Oslo");
    assert_eq!(json_of(&res)["result"]["structuredContent"]["temperature"], 4.5);
    assert!(!res.is_stream_completion);
}

#[tokio::test]
async fn a_tool_call_answered_as_an_event_stream_at_every_split() {
    let request = mcp_fixture("tools_call_request.json");
    for fixture in ["tools_call_response.sse", "tools_call_response_crlf.sse"] {
        let (req, res) = every_split(&request, sse(), &mcp_fixture(fixture)).await;
        assert_eq!(req.tool_name.as_deref(), Some("get_weather"));
        assert_eq!(res.tool_name.as_deref(), Some("get_weather"));
        assert_eq!(res.operation_name, "tools/call");
        assert_eq!(res.outcome, Outcome::Completed, "{fixture}: {:?}", res.error);
        assert!(res.error.is_none(), "{fixture}: {:?}", res.error);
        assert!(res.is_stream_completion);
        assert_eq!(res.stream_events, Some(4), "{fixture}");
        assert_eq!(res.request_id.as_deref(), Some("3"));
        let messages = json_of(&res);
        let messages = messages.as_array().expect("the stream's messages, in order");
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[0]["method"], "notifications/progress");
        assert_eq!(messages[1]["method"], "notifications/message");
        assert_eq!(messages[3]["result"]["structuredContent"]["humidity"], 87);
        assert!(res.messages_are_json);
        assert!(res.time_to_first_token.is_some());
    }
}

#[tokio::test]
async fn a_server_request_inside_the_stream_is_logged_among_its_messages() {
    let (_, res) = every_split(
        &mcp_fixture("tools_call_request.json"),
        sse(),
        &mcp_fixture("sampling_in_stream.sse"),
    )
    .await;
    assert_eq!(res.outcome, Outcome::Completed, "{:?}", res.error);
    assert_eq!(res.stream_events, Some(3));
    let messages = json_of(&res);
    assert_eq!(messages[1]["method"], "sampling/createMessage");
    assert_eq!(messages[1]["id"], "srv-1");
    assert_eq!(
        res.request_id.as_deref(),
        Some("3"),
        "the response's id, not the server request's"
    );

    // The client's answer to it is a POST of its own, which needs no response.
    let records = post(&mcp_fixture("sampling_client_response.json"), accepted(), b"").await;
    let req = one(&records, RecordKind::Request);
    assert_eq!(req.operation_name, "response");
    assert_eq!(req.request_id.as_deref(), Some("srv-1"));
    assert_eq!(req.outcome, Outcome::NoResponseExpected);
}

#[tokio::test]
async fn a_notification_is_a_request_record_only() {
    let records = post(&mcp_fixture("initialized_notification.json"), accepted(), b"").await;
    assert_eq!(records.len(), 1, "{records:#?}");
    let req = &records[0];
    assert_eq!(req.kind, RecordKind::Request);
    assert_eq!(req.operation_name, "notifications/initialized");
    assert_eq!(req.outcome, Outcome::NoResponseExpected);
    assert!(req.outcome.is_success());
    assert!(req.request_id.is_none());
    assert!(req.error.is_none());

    // A notification the server refuses is logged with its answer.
    let refused = Answer {
        status: 400,
        ..json()
    };
    let records = post(
        &mcp_fixture("initialized_notification.json"),
        refused,
        &mcp_fixture("missing_session_400.json"),
    )
    .await;
    let res = one(&records, RecordKind::Response);
    assert_eq!(
        (res.outcome, res.status_code),
        (Outcome::UpstreamError, Some(400))
    );
}

#[tokio::test]
async fn a_tool_error_and_a_json_rpc_error_are_upstream_errors_with_their_text() {
    let request = mcp_fixture("tools_call_request.json");
    let (_, res) = every_split(&request, json(), &mcp_fixture("tools_call_error_result.json")).await;
    assert_eq!(res.outcome, Outcome::UpstreamError);
    assert_eq!(res.status_code, Some(200));
    let error = res.error.as_deref().unwrap();
    assert!(
        error.contains("Weather service unavailable: upstream timed out"),
        "{error}"
    );
    assert!(res.error_kinds.contains(&ProblemKind::Failed));

    let unknown =
        br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get_wether","arguments":{}}}"#;
    let records = post(
        unknown,
        json(),
        &mcp_fixture("tools_call_unknown_tool_error.json"),
    )
    .await;
    let res = one(&records, RecordKind::Response);
    assert_eq!(res.outcome, Outcome::UpstreamError);
    let error = res.error.as_deref().unwrap();
    assert!(
        error.contains("JSON-RPC error -32602: Unknown tool: get_wether"),
        "{error}"
    );
    assert_eq!(res.tool_name.as_deref(), Some("get_wether"));
    assert_eq!(json_of(&res)["error"]["code"], -32602);
}

#[tokio::test]
async fn images_in_tool_results_are_elided_in_json_and_in_streams() {
    let request = mcp_fixture("tools_call_request.json");
    let image = mcp_fixture("tools_call_image_response.json");
    let (_, res) = every_split(&request, json(), &image).await;
    assert_eq!(res.media_elided, 1);
    let logged = res.messages_str();
    assert!(logged.contains("[media image/png 3000 bytes sha256:"), "{logged}");
    assert!(!logged.contains("iVBORw0KGgo"), "{logged}");
    assert_eq!(res.message_bytes, image.len() as u64, "the size as it passed");

    let stream = [b"event: message\ndata: ".as_slice(), &image, b"\n\n"].concat();
    let (_, res) = every_split(&request, sse(), &stream).await;
    assert_eq!(res.media_elided, 1);
    assert!(res.messages_str().contains("[media image/png 3000 bytes sha256:"));
    assert!(!res.messages_str().contains("iVBORw0KGgo"));
    assert_eq!(res.outcome, Outcome::Completed, "{:?}", res.error);
}

#[tokio::test]
async fn resources_and_prompts_are_named_in_their_own_fields() {
    let records = post(
        &mcp_fixture("resources_read_request.json"),
        json(),
        &mcp_fixture("resources_read_response.json"),
    )
    .await;
    for r in &records {
        assert_eq!(r.operation_name, "resources/read");
        assert_eq!(r.resource_uri.as_deref(), Some("file:///project/README.md"));
        assert_eq!(r.tool_name, None);
    }
    let records = post(
        &mcp_fixture("prompts_get_request.json"),
        json(),
        &mcp_fixture("prompts_get_response.json"),
    )
    .await;
    for r in &records {
        assert_eq!(r.operation_name, "prompts/get");
        assert_eq!(r.prompt_name.as_deref(), Some("code_review"));
        assert_eq!(r.outcome, Outcome::Completed, "{:?}", r.error);
    }
    let records = post(
        &mcp_fixture("tools_list_request.json"),
        json(),
        &mcp_fixture("tools_list_response.json"),
    )
    .await;
    let res = one(&records, RecordKind::Response);
    assert_eq!(res.operation_name, "tools/list");
    assert!(json_of(&res)["result"]["tools"].is_array());
}

#[tokio::test]
async fn a_listen_stream_is_one_exchange_with_its_messages_counted() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let stream = mcp_fixture("listen_stream.sse");
    let (bytes, records) = exchange_with(
        layer,
        &sink,
        (Method::GET, "/mcp"),
        &[("mcp-session-id", "s-9")],
        b"",
        sse(),
        Frames::new(stream.chunks(7).map(Bytes::copy_from_slice)),
    )
    .await;
    assert_eq!(bytes, stream);
    let req = one(&records, RecordKind::Request);
    let res = one(&records, RecordKind::Response);
    assert_eq!(req.operation_name, "listen");
    assert_eq!(res.operation_name, "listen");
    assert_eq!(res.stream_events, Some(3));
    assert_eq!(res.outcome, Outcome::Completed);
    assert!(res.error.is_none(), "{:?}", res.error);
    assert!(req.error.is_none(), "{:?}", req.error);
    assert_eq!(res.dimensions.get("mcp_session").map(String::as_str), Some("s-9"));
    let messages = json_of(&res);
    assert_eq!(messages[2]["params"]["uri"], "file:///project/README.md");
}

#[tokio::test]
async fn the_bad_cases_end_in_records_that_say_what_happened() {
    let request = mcp_fixture("tools_call_request.json");

    let (_, res) = every_split(&request, sse(), &mcp_fixture("stream_ends_early.sse")).await;
    let error = res.error.as_deref().unwrap();
    assert!(error.contains("ended before the response"), "{error}");
    assert!(error.contains("notifications/progress"), "{error}");
    assert!(res.error_kinds.contains(&ProblemKind::Protocol));

    let records = post(&request, json(), &mcp_fixture("wrong_id_response.json")).await;
    let res = one(&records, RecordKind::Response);
    let error = res.error.as_deref().unwrap();
    assert!(error.contains("id 99 answers no request"), "{error}");
    assert!(error.contains("the request's id is 3"), "{error}");

    let records = post(&mcp_fixture("invalid_jsonrpc.json"), json(), b"").await;
    let req = one(&records, RecordKind::Request);
    assert!(
        req.error.as_deref().unwrap().contains("JSON-RPC 2.0"),
        "{:?}",
        req.error
    );

    let records = post(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", json(), b"").await;
    let req = one(&records, RecordKind::Request);
    assert!(req.error.as_deref().unwrap().contains("JSON"), "{:?}", req.error);
    assert!(!req.messages_are_json);

    let html = Answer {
        content_type: Some("text/html"),
        ..json()
    };
    let records = post(&request, html, &mcp_fixture("not_json.txt")).await;
    let res = one(&records, RecordKind::Response);
    assert!(
        res.error.as_deref().unwrap().contains("no JSON-RPC message"),
        "{:?}",
        res.error
    );

    let gone = Answer {
        status: 404,
        ..json()
    };
    let records = post(&request, gone, &mcp_fixture("expired_session_404.json")).await;
    let res = one(&records, RecordKind::Response);
    assert_eq!(
        (res.outcome, res.status_code),
        (Outcome::UpstreamError, Some(404))
    );
    assert!(res.messages_str().contains("Session not found"));
    assert_eq!(res.tool_name.as_deref(), Some("get_weather"));

    // An event that is not JSON, and a stream of two responses.
    let stream = b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"\n\n\
data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n";
    let (_, res) = every_split(&request, sse(), stream).await;
    let error = res.error.as_deref().unwrap();
    assert!(error.contains("event 1 is not JSON"), "{error}");
    assert!(error.contains("carried 2 responses"), "{error}");
    assert!(!res.messages_are_json);
}

#[tokio::test]
async fn a_batch_is_one_exchange_that_says_so() {
    let records = post(
        &mcp_fixture("batch_request.json"),
        json(),
        &mcp_fixture("batch_response.json"),
    )
    .await;
    let req = one(&records, RecordKind::Request);
    let res = one(&records, RecordKind::Response);
    assert_eq!(req.operation_name, "batch");
    assert_eq!(res.operation_name, "batch");
    let error = req.error.as_deref().unwrap();
    assert!(
        error.contains("batch of 2 messages (tools/call, notifications/roots/list_changed)"),
        "{error}"
    );
    assert_eq!(json_of(&req).as_array().map(Vec::len), Some(2));
    assert_eq!(res.outcome, Outcome::Completed);
}

#[tokio::test]
async fn delete_ends_a_session_and_other_paths_need_the_family_added() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let (_, records) = exchange_with(
        layer,
        &sink,
        (Method::DELETE, "/api/mcp"),
        &[("mcp-session-id", "s-1")],
        b"",
        Answer {
            status: 200,
            content_type: None,
            headers: Vec::new(),
        },
        Frames::new([]),
    )
    .await;
    let req = one(&records, RecordKind::Request);
    assert_eq!(req.operation_name, "delete_session");
    assert_eq!(req.dimensions.get("mcp_session").map(String::as_str), Some("s-1"));
    assert!(req.error.is_none(), "{:?}", req.error);

    let request = mcp_fixture("tools_call_request.json");
    let response = mcp_fixture("tools_call_response.json");
    let run = |layer: LlmLogLayer,
               sink: MemorySink,
               path: &'static str,
               headers: Vec<(&'static str, &'static str)>| {
        let (request, response) = (request.clone(), response.clone());
        async move {
            exchange_with(
                layer,
                &sink,
                (Method::POST, path),
                &headers,
                &request,
                json(),
                Frames::new([Bytes::from(response)]),
            )
            .await
            .1
        }
    };
    let sink = MemorySink::new();
    assert!(
        run(LlmLogLayer::new(sink.clone()), sink.clone(), "/tools", vec![])
            .await
            .is_empty()
    );
    let at = LlmLogLayer::new(sink.clone()).with_api(McpApi::at("/tools/"));
    let records = run(at, sink.clone(), "/tools", vec![]).await;
    assert_eq!(
        one(&records, RecordKind::Request).tool_name.as_deref(),
        Some("get_weather")
    );
    // Anywhere: known by the transport's headers.
    let anywhere = || LlmLogLayer::new(sink.clone()).with_api(McpApi::new().anywhere());
    let records = run(anywhere(), sink.clone(), "/rpc", vec![]).await;
    assert_eq!(records.len(), 2, "the Accept of both types: {records:#?}");
    let records = run(anywhere(), sink.clone(), "/rpc", vec![("mcp-session-id", "s")]).await;
    assert_eq!(records.len(), 2);
}

#[tokio::test]
async fn secrets_in_tool_arguments_are_redacted() {
    let request = br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"deploy","arguments":{"token":"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"}}}"#;
    let records = post(request, json(), &mcp_fixture("tools_call_response.json")).await;
    let req = one(&records, RecordKind::Request);
    assert!(
        !req.messages_str().contains("sk-proj-abcdefghij"),
        "{}",
        req.messages_str()
    );
    assert!(!req.redactions.is_empty());
    assert_eq!(req.tool_name.as_deref(), Some("deploy"));
}

#[tokio::test]
async fn the_request_split_at_every_byte_reads_the_same() {
    let request = mcp_fixture("tools_call_request.json");
    let response = mcp_fixture("tools_call_response.json");
    for at in 0..=request.len() {
        let sink = MemorySink::new();
        let inner = service_fn(|req: Request<LlmLogBody<Frames>>| {
            let response = response.clone();
            async move {
                let _ = req.into_body().collect().await;
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(CONTENT_TYPE, "application/json")
                        .body(Frames::new([Bytes::from(response)]))
                        .unwrap(),
                )
            }
        });
        let req = Request::post("/mcp")
            .body(Frames::split(&request, &[at]))
            .unwrap();
        let res = LlmLogLayer::new(sink.clone())
            .layer(inner)
            .oneshot(req)
            .await
            .unwrap();
        let _ = res.into_body().collect().await;
        let records = sink.take();
        let req = one(&records, RecordKind::Request);
        assert_eq!(req.tool_name.as_deref(), Some("get_weather"), "split at {at}");
        assert_eq!(req.messages_str(), text(&request), "split at {at}");
        let _: Value = json_of(&req);
    }
}

#[tokio::test]
async fn an_acknowledgement_that_comes_before_its_notification_is_read_is_not_logged() {
    // The server answers 202 at once and reads the notification only after the client has the
    // answer: the response side reports first.
    let sink = MemorySink::new();
    let (read_now, go) = tokio::sync::oneshot::channel::<()>();
    let go = std::sync::Arc::new(std::sync::Mutex::new(Some(go)));
    let inner = service_fn(move |req: Inner| {
        let go = go.lock().unwrap().take().expect("one request");
        async move {
            let body = req.into_body();
            tokio::spawn(async move {
                let _ = go.await;
                let _ = body.collect().await;
            });
            Ok::<_, Infallible>(Response::builder().status(202).body(Frames::new([])).unwrap())
        }
    });
    let req = Request::post("/mcp")
        .body(Frames::new([Bytes::from(mcp_fixture(
            "initialized_notification.json",
        ))]))
        .unwrap();
    // Without read-ahead (which would read the notification before the server sees it).
    let config = tower_llm_log::LogConfig::builder()
        .request_read_ahead(0)
        .build()
        .unwrap();
    let layer = LlmLogLayer::new(sink.clone()).with_config(config);
    let res = layer.layer(inner).oneshot(req).await.unwrap();
    assert_eq!(res.status(), 202);
    drop(res.into_body().collect().await);
    assert!(sink.records().is_empty(), "the answer waits for its request");
    read_now.send(()).unwrap();
    let records = wait_records(&sink, 1).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].outcome, Outcome::NoResponseExpected);

    // A request that needs an answer gets its 202 logged, whichever side reports first.
    let sink = MemorySink::new();
    let inner = service_fn(|req: Inner| async move {
        drop(req);
        Ok::<_, Infallible>(Response::builder().status(202).body(Frames::new([])).unwrap())
    });
    let req = Request::post("/mcp")
        .body(Frames::new([Bytes::from(mcp_fixture("tools_call_request.json"))]))
        .unwrap();
    let res = LlmLogLayer::new(sink.clone())
        .layer(inner)
        .oneshot(req)
        .await
        .unwrap();
    drop(res.into_body().collect().await);
    let records = wait_records(&sink, 2).await;
    let res = one(&records, RecordKind::Response);
    assert_eq!(res.status_code, Some(202));
}

#[tokio::test]
async fn a_stream_dropped_after_its_response_has_ended_as_far_as_the_log_goes() {
    // rmcp's client stops reading an event stream soon after its response, while the server
    // may keep it open: that is not a client gone mid-answer.
    for (stream, complete) in [
        (mcp_fixture("tools_call_response.sse"), true),
        (mcp_fixture("stream_ends_early.sse"), false),
    ] {
        let sink = MemorySink::new();
        let (tx, inner) = open_stream_server();
        let req = Request::post("/mcp")
            .body(Frames::new([Bytes::from(mcp_fixture("tools_call_request.json"))]))
            .unwrap();
        let res = LlmLogLayer::new(sink.clone())
            .layer(inner)
            .oneshot(req)
            .await
            .unwrap();
        tx.send(Ok(http_body::Frame::data(Bytes::from(stream))))
            .await
            .unwrap();
        let mut body = res.into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert!(frame.is_data());
        // The server's side of the stream stays open (`tx` lives); the client leaves.
        drop(body);
        let records = wait_records(&sink, 2).await;
        let res = one(&records, RecordKind::Response);
        if complete {
            assert_eq!(res.outcome, Outcome::Completed, "{:?}", res.error);
            assert!(res.error.is_none(), "{:?}", res.error);
        } else {
            assert_eq!(res.outcome, Outcome::ClientDisconnected);
            assert!(
                res.error.as_deref().unwrap().contains("dropped"),
                "{:?}",
                res.error
            );
        }
        drop(tx);
    }
}

#[tokio::test]
async fn every_method_reads_the_same_at_every_split() {
    let pairs = [
        (
            "initialize",
            "initialize_request.json",
            "initialize_response.json",
        ),
        (
            "tools/list",
            "tools_list_request.json",
            "tools_list_response.json",
        ),
        (
            "tools/call",
            "tools_call_request.json",
            "tools_call_response.json",
        ),
        (
            "resources/read",
            "resources_read_request.json",
            "resources_read_response.json",
        ),
        (
            "prompts/get",
            "prompts_get_request.json",
            "prompts_get_response.json",
        ),
    ];
    for (method, request, response) in pairs {
        let request = mcp_fixture(request);
        let response = mcp_fixture(response);
        let (req, res) = every_split(&request, json(), &response).await;
        assert_eq!(
            (req.operation_name.as_ref(), res.operation_name.as_ref()),
            (method, method)
        );
        assert_eq!(res.outcome, Outcome::Completed, "{method}: {:?}", res.error);
        assert!(res.error.is_none() && req.error.is_none(), "{method}");
        assert_eq!(res.messages_str(), text(&response), "{method}");
        // The same answer as an event stream.
        let stream = [
            b"event: message\r\nid: 7\r\ndata: ".as_slice(),
            &response,
            b"\r\n\r\n",
        ]
        .concat();
        let (_, res) = every_split(&request, sse(), &stream).await;
        assert_eq!(res.outcome, Outcome::Completed, "{method}: {:?}", res.error);
        assert_eq!(
            json_of(&res)[0],
            serde_json::from_slice::<Value>(&response).unwrap(),
            "{method}"
        );
    }
}

#[tokio::test]
async fn a_flood_of_unreadable_events_is_counted_not_kept() {
    let mut stream = b"data: not json\n\n".repeat(10_000);
    stream.extend_from_slice(b"data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n");
    let records = post(&mcp_fixture("tools_call_request.json"), sse(), &stream).await;
    let res = one(&records, RecordKind::Response);
    let error = res.error.as_deref().unwrap();
    assert!(error.contains("event 1 is not JSON"), "{error}");
    assert!(error.contains("9992 more events could not be read"), "{error}");
    assert!(
        error.len() < 4096,
        "the error text is bounded: {} bytes",
        error.len()
    );
    assert_eq!(res.stream_events, Some(10_001));
    assert_eq!(res.request_id.as_deref(), Some("3"));
    assert!(res.truncated, "the messages are kept up to the cap");
}

#[tokio::test]
async fn a_large_batch_is_named_in_a_bounded_note() {
    let note =
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#;
    let batch = format!("[{}]", vec![note; 500].join(","));
    let records = post(batch.as_bytes(), accepted(), b"").await;
    let req = one(&records, RecordKind::Request);
    assert_eq!(req.operation_name, "batch");
    assert_eq!(
        req.outcome,
        Outcome::NoResponseExpected,
        "a batch of notifications needs no answer"
    );
    let error = req.error.as_deref().unwrap();
    assert!(error.contains("and 492 more"), "{error}");
    assert!(error.len() < 1024, "{} bytes", error.len());
}

#[tokio::test]
async fn an_empty_listen_stream_the_server_ends_is_completed_without_error() {
    let sink = MemorySink::new();
    let layer = LlmLogLayer::new(sink.clone());
    let (_, records) = exchange_with(
        layer,
        &sink,
        (Method::GET, "/mcp"),
        &[],
        b"",
        sse(),
        Frames::new([]),
    )
    .await;
    let res = one(&records, RecordKind::Response);
    assert_eq!(res.operation_name, "listen");
    assert_eq!(res.outcome, Outcome::Completed);
    assert!(res.error.is_none(), "{:?}", res.error);
    assert!(res.is_stream_completion);
}
