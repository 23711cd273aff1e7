//! A JSON array sent element by element (Gemini's `streamGenerateContent` without `alt=sse`):
//! one event per element.
//!
//! The framer follows strings, escapes and nesting, nothing more: an element is handed on when
//! its last byte arrives (as a slice of the frame when it lies within one), and whether it is
//! valid JSON is for the reader to find. A body that is not an array (an error object sent
//! instead of a stream) is one event. Bytes after the array's end, an array never closed and a
//! stream ending inside an element are reported.

use memchr::memchr2;

use super::{whole, EventData, StreamEvent};
use crate::scan::json::{CLASS, OPEN, PLAIN, QUOTE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte that is not whitespace.
    Start,
    /// Inside the array, before an element or after a `,`.
    Between,
    /// Inside an element.
    Element,
    /// After the array (or the single value).
    End,
}

/// Splits a streamed JSON array into its elements.
#[derive(Debug)]
pub(crate) struct JsonArrayFramer {
    state: State,
    /// The body is one value, not an array.
    single: bool,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// The element is a bare scalar (a number, `true`): it ends at `,`, `]` or whitespace.
    scalar: bool,
    element: EventData,
    elements: u64,
    trailing: bool,
}

impl JsonArrayFramer {
    pub(crate) fn new(limit: usize) -> Self {
        JsonArrayFramer {
            state: State::Start,
            single: false,
            depth: 0,
            in_string: false,
            escape: false,
            scalar: false,
            element: EventData::new(limit),
            elements: 0,
            trailing: false,
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) {
        let mut i = 0;
        // Where the current element starts in this frame.
        let mut start = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                State::Start | State::Between if b.is_ascii_whitespace() => i += 1,
                State::Start if b == b'[' => {
                    self.state = State::Between;
                    i += 1;
                }
                // A BOM before the value is not part of it.
                State::Start if matches!(b, 0xEF | 0xBB | 0xBF) => i += 1,
                State::Between if b == b',' => i += 1,
                State::Between if b == b']' => {
                    self.state = State::End;
                    i += 1;
                }
                State::Start | State::Between => {
                    self.single = self.state == State::Start;
                    self.state = State::Element;
                    self.depth = 0;
                    self.in_string = false;
                    self.escape = false;
                    self.scalar = !matches!(b, b'{' | b'[' | b'"');
                    start = i;
                }
                State::Element => {
                    if self.in_string {
                        if self.escape {
                            self.escape = false;
                            i += 1;
                            continue;
                        }
                        match memchr2(b'"', b'\\', &bytes[i..]) {
                            None => i = bytes.len(),
                            Some(k) => {
                                i += k + 1;
                                if bytes[i - 1] == b'\\' {
                                    self.escape = true;
                                } else {
                                    self.in_string = false;
                                    if self.depth == 0 {
                                        self.emit(&bytes[start..i], on_event);
                                    }
                                }
                            }
                        }
                        continue;
                    }
                    if self.scalar {
                        if b == b',' || b == b']' || b.is_ascii_whitespace() {
                            // The scalar ends before this byte, which the array reads next.
                            self.emit(&bytes[start..i], on_event);
                        } else {
                            i += 1;
                        }
                        continue;
                    }
                    // Outside strings only quotes and brackets matter: skip to the next one.
                    let Some(k) = bytes[i..].iter().position(|&b| CLASS[usize::from(b)] != PLAIN) else {
                        i = bytes.len();
                        continue;
                    };
                    i += k;
                    match CLASS[usize::from(bytes[i])] {
                        QUOTE => self.in_string = true,
                        OPEN => self.depth += 1,
                        _ => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                self.emit(&bytes[start..i + 1], on_event);
                            }
                        }
                    }
                    i += 1;
                }
                State::End => {
                    if !b.is_ascii_whitespace() {
                        self.trailing = true;
                        return;
                    }
                    i += 1;
                }
            }
        }
        if self.state == State::Element {
            self.element.push(&bytes[start..]);
        }
    }

    /// The element that ends with `last` (its bytes in this frame) is complete.
    fn emit(&mut self, last: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) {
        self.elements += 1;
        self.state = if self.single { State::End } else { State::Between };
        if self.element.passes_whole(last.len()) {
            on_event(StreamEvent::new(b"", last));
        } else {
            self.element.push(last);
            self.element.dispatch(b"", whole, on_event);
        }
    }

    pub(crate) fn finish(&mut self, ended: bool, on_event: &mut impl FnMut(StreamEvent<'_>)) -> Vec<String> {
        let mut problems = Vec::new();
        if self.state == State::Element && self.scalar && ended {
            // A bare scalar ends with the body.
            self.emit(&[], on_event);
        }
        if !ended {
            self.element.clear();
            return problems;
        }
        match self.state {
            State::Element => {
                self.element.clear();
                problems.push(format!(
                    "stream: the JSON array ended inside element {}",
                    self.elements + 1
                ));
            }
            State::Between => problems.push(format!(
                "stream: the JSON array was not closed (after {} elements)",
                self.elements
            )),
            State::Start | State::End => {}
        }
        if self.trailing {
            problems.push("stream: bytes after the end of the JSON array were not read".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, same_at_every_split, Events};
    use super::super::Framing;

    fn datas(events: &Events) -> Vec<String> {
        events
            .iter()
            .map(|(_, d, _, _)| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    #[test]
    fn elements_are_events_however_the_array_is_cut() {
        // As Google frames it: elements after `[`, each followed by `\r\n`, then `,` or `]`.
        let body = b"[{\"a\":\"}],[\\\"\"}\r\n,{\"b\":[1,{\"c\":2}]}\r\n, 7 ,\"s\\\"]\",[[]]\r\n]";
        let (events, problems) = same_at_every_split(Framing::JsonArray, 1000, body);
        assert_eq!(
            datas(&events),
            [
                "{\"a\":\"}],[\\\"\"}",
                "{\"b\":[1,{\"c\":2}]}",
                "7",
                "\"s\\\"]\"",
                "[[]]"
            ]
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_body_that_is_not_an_array_is_one_event() {
        let body = b"{\"error\":{\"code\":429,\"message\":\"quota [x]\"}}\n";
        let (events, problems) = same_at_every_split(Framing::JsonArray, 1000, body);
        assert_eq!(
            datas(&events),
            ["{\"error\":{\"code\":429,\"message\":\"quota [x]\"}}"]
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn what_cannot_be_read_is_reported() {
        let (events, problems) = run(Framing::JsonArray, 1000, b"[{\"a\":1},{\"b\"", &[], true);
        assert_eq!(datas(&events), ["{\"a\":1}"]);
        assert_eq!(problems, ["stream: the JSON array ended inside element 2"]);
        let (_, problems) = run(Framing::JsonArray, 1000, b"[{\"a\":1}\r\n", &[], true);
        assert_eq!(
            problems,
            ["stream: the JSON array was not closed (after 1 elements)"]
        );
        let (events, problems) = run(Framing::JsonArray, 1000, b"[{\"a\":1}] {\"x\":2}", &[], true);
        assert_eq!(events.len(), 1);
        assert_eq!(
            problems,
            ["stream: bytes after the end of the JSON array were not read"]
        );
        let (_, problems) = run(Framing::JsonArray, 1000, b"[{\"a\":1},{\"b\"", &[], false);
        assert!(problems.is_empty(), "a stream cut short is the tap's to report");
        let (events, problems) = run(Framing::JsonArray, 1000, b"", &[], true);
        assert!(events.is_empty() && problems.is_empty());
    }

    #[test]
    fn an_oversized_element_keeps_its_head_and_tail() {
        let body = format!("[{{\"x\":\"{}\",\"end\":1}},{{\"n\":2}}]", "a".repeat(100_000));
        for cuts in [&[][..], &[1], &[3, 60_000], &[100_012]] {
            let (events, problems) = run(Framing::JsonArray, 1000, body.as_bytes(), cuts, true);
            assert!(problems.is_empty());
            assert_eq!(events.len(), 2, "cuts {cuts:?}");
            assert!(events[0].2 && events[0].1.is_empty());
            assert!(events[0].3.ends_with(b"\"end\":1}"));
            assert_eq!(events[1].1, b"{\"n\":2}");
        }
    }
}
