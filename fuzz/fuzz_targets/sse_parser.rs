//! The server-sent-events parser on any bytes, cut into frames anywhere.
//!
//! Invariants (a violation panics, which libFuzzer reports as a crash):
//! - no panic on any input;
//! - the events (name, data, oversized, tail) do not depend on where the stream is split: the frames
//!   the fuzzer chose, and one byte per frame, give the same events as the whole stream at once;
//! - memory is bounded as documented: a dispatched event's data is within the limit, an
//!   oversized event's data is dropped but for a tail of at most `TAIL_BYTES`, a tail is empty
//!   unless the event is oversized, and event names are at most 64 bytes.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_llm_log::framing::{Framer, Framing, StreamEvent, TAIL_BYTES};

#[derive(Debug, Arbitrary)]
struct Input {
    limit: u16,
    splits: Vec<u16>,
    body: Vec<u8>,
}

/// The parser's `EVENT_NAME_LIMIT` (crate-private).
const EVENT_NAME_LIMIT: usize = 64;

/// An event, owned: (event name, data, oversized, tail).
type Event = (Vec<u8>, Vec<u8>, bool, Vec<u8>);

fn parse(limit: usize, frames: &[Bytes]) -> Vec<Event> {
    let mut parser = Framer::new(Framing::ServerSentEvents, limit);
    let mut events = Vec::new();
    let mut on_event =
        |e: StreamEvent<'_>| events.push((e.name.to_vec(), e.data.to_vec(), e.oversized, e.tail.to_vec()));
    for frame in frames {
        parser.feed(frame, &mut on_event);
    }
    parser.finish(true, &mut on_event);
    events
}

fn check_bounds(events: &[Event], limit: usize) {
    for (name, data, oversized, tail) in events {
        assert!(tail.len() <= TAIL_BYTES, "a tail of {} bytes", tail.len());
        if *oversized {
            assert!(data.is_empty(), "an oversized event kept {} bytes of data", data.len());
        } else {
            assert!(tail.is_empty(), "an event within the limit has a tail");
            assert!(
                data.len() <= limit,
                "an event kept {} bytes of data with a limit of {limit}",
                data.len()
            );
        }
        assert!(name.len() <= EVENT_NAME_LIMIT, "an event name of {} bytes", name.len());
    }
}

fuzz_target!(|input: Input| {
    // 0 is a legal limit but drops every event's data; start at 1 so data is kept at all.
    let limit = usize::from(input.limit) + 1;
    let body = Bytes::from(input.body);
    let whole = parse(limit, std::slice::from_ref(&body));
    check_bounds(&whole, limit);
    for frames in [common::cut(&body, &input.splits), common::bytewise(&body)] {
        let split = parse(limit, &frames);
        check_bounds(&split, limit);
        let lens: Vec<usize> = frames.iter().map(Bytes::len).collect();
        assert_eq!(
            split, whole,
            "the events differ when the stream is cut into frames of {lens:?}"
        );
    }
});
