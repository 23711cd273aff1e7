//! The incremental JSON scanner on any bytes, cut into frames anywhere.
//!
//! Invariants (a violation panics, which libFuzzer reports as a crash):
//! - no panic on any input;
//! - the captured bytes never exceed the cap, and no scalar exceeds the scanner's scalar limit;
//! - the result does not depend on where the body is split: the frames the fuzzer chose, and one
//!   byte per frame, give the same capture, scalars, counts, error and completeness as the whole
//!   body in one frame;
//! - valid JSON (as serde_json reads it) is read to its end with no error, and a string `model`
//!   at the top level is found with the value serde_json sees (the last of duplicate keys).

#![no_main]

mod common;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_llm_log::scan::json::{Action, JsonScanner, Node, ScanResult};

#[derive(Debug, Arbitrary)]
struct Input {
    cap: u16,
    splits: Vec<u16>,
    body: Vec<u8>,
}

const MODEL: u8 = 0;
const STREAM: u8 = 1;
const ROLE: u8 = 2;
const CHOICE: u8 = 3;
const FINISH_REASON: u8 = 4;
const TOOLS: u8 = 5;
const SLOTS: u8 = 6;

/// The scanner's `SCALAR_LIMIT` (crate-private): a longer scalar is dropped, not kept.
const SCALAR_LIMIT: usize = 4096;

/// A chat request's paths, plus one of each other action: a capture walked into for its
/// children, scalars under arrays, a measured and a counted path.
static CHAT: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"stream", Action::Scalar(STREAM), &[]),
    Node::key(
        b"messages",
        Action::Capture,
        &[Node::element(
            Action::Walk,
            &[Node::key(b"role", Action::EachScalar(ROLE), &[])],
        )],
    ),
    Node::key(
        b"choices",
        Action::Walk,
        &[Node::element(
            Action::Measure(CHOICE),
            &[Node::key(
                b"finish_reason",
                Action::EachScalar(FINISH_REASON),
                &[],
            )],
        )],
    ),
    Node::key(
        b"tools",
        Action::Walk,
        &[Node::element(Action::Count(TOOLS), &[])],
    ),
]);

/// Two captured paths, logged as one object sharing the cap (as Anthropic's `system` and
/// `messages`).
static TWO_CAPTURES: Node = Node::root(&[
    Node::key(b"model", Action::Scalar(MODEL), &[]),
    Node::key(b"system", Action::Capture, &[]),
    Node::key(
        b"messages",
        Action::Capture,
        &[Node::element(
            Action::Walk,
            &[Node::key(b"role", Action::EachScalar(ROLE), &[])],
        )],
    ),
]);

/// Everything a scan reports, owned, to compare scans of differently split bodies.
#[derive(Debug, PartialEq)]
struct Summary {
    /// Kept bytes (in one piece: how they were segmented may differ), full size, truncated.
    capture: Option<(Vec<u8>, u64, bool)>,
    duplicate_capture: bool,
    scalars: Vec<Vec<Vec<u8>>>,
    counts: Vec<(u64, u64)>,
    /// The exact message: it gives the offset in the body, which must not depend on framing.
    error: Option<String>,
    complete: bool,
}

fn summarize(r: &ScanResult) -> Summary {
    Summary {
        capture: r
            .capture()
            .map(|c| (c.to_bytes().to_vec(), c.total(), c.is_truncated())),
        duplicate_capture: r.has_duplicate_capture(),
        scalars: (0..SLOTS)
            .map(|slot| r.scalars_in(slot).map(<[u8]>::to_vec).collect())
            .collect(),
        counts: (0..SLOTS).map(|slot| r.count(slot)).collect(),
        error: r.error().map(str::to_owned),
        complete: r.is_complete(),
    }
}

fn scan(tree: &'static Node, cap: usize, frames: &[Bytes]) -> ScanResult {
    let mut scanner = JsonScanner::new(tree, cap);
    for frame in frames {
        scanner.feed(frame);
    }
    scanner.finish()
}

fn check_bounds(r: &ScanResult, cap: usize) {
    let kept: usize = r
        .capture()
        .map(|c| c.segments().iter().map(|s| s.len()).sum::<usize>())
        .unwrap_or(0);
    assert!(kept <= cap, "captured {kept} bytes with a cap of {cap}");
    for slot in 0..SLOTS {
        for v in r.scalars_in(slot) {
            assert!(v.len() <= SCALAR_LIMIT, "a scalar of {} bytes was kept", v.len());
        }
    }
}

fn check(tree: &'static Node, input: &Input, body: &Bytes) {
    let cap = usize::from(input.cap);
    let whole = scan(tree, cap, std::slice::from_ref(body));
    check_bounds(&whole, cap);
    let expected = summarize(&whole);
    for frames in [common::cut(body, &input.splits), common::bytewise(body)] {
        let split = scan(tree, cap, &frames);
        check_bounds(&split, cap);
        let lens: Vec<usize> = frames.iter().map(Bytes::len).collect();
        assert_eq!(
            summarize(&split),
            expected,
            "the scan differs when the body is cut into frames of {lens:?}"
        );
    }

    // Against a real parser. serde_json is stricter than the scanner (it validates skipped
    // values, UTF-8, nesting depth), so only what it accepts is checked.
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    assert!(
        whole.is_complete() && whole.error().is_none(),
        "valid JSON was not read whole: complete {}, error {:?}",
        whole.is_complete(),
        whole.error()
    );
    // serde_json keeps the last of duplicate keys, as the scanner does.
    let Some(Value::String(model)) = value.as_object().and_then(|o| o.get("model")) else {
        return;
    };
    match whole.scalar(MODEL) {
        Some(raw) => {
            let found = serde_json::from_slice::<Value>(raw).ok();
            assert_eq!(
                found.as_ref(),
                Some(&Value::String(model.clone())),
                "model scalar {:?}",
                String::from_utf8_lossy(raw)
            );
        }
        // A scalar is dropped only past the scalar limit (or the budget for all scalars, which
        // is larger still): the body must be at least that long.
        None => assert!(
            body.len() > SCALAR_LIMIT,
            "model {model:?} was not found in a body of {} bytes",
            body.len()
        ),
    }
}

fuzz_target!(|input: Input| {
    let body = Bytes::from(input.body.clone());
    check(&CHAT, &input, &body);
    check(&TWO_CAPTURES, &input, &body);
});
