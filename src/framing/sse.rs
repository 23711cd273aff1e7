//! An incremental server-sent-events parser.
//!
//! Follows the WHATWG event-stream format: lines end in CRLF, LF or CR (a CRLF split across
//! frames counts once); lines starting with `:` are comments; `data` lines are joined with `\n`;
//! a blank line dispatches the event. Unlike a browser, a final event with no blank line after it
//! is still dispatched when the stream ends, because a logger must not lose the last event of a
//! stream that a server cut short.
//!
//! Memory is bounded: an event whose data grows past the limit is dispatched as `oversized`, with
//! its data dropped but for its first [`HEAD_BYTES`] (where a JSON event says what it is: ids,
//! a model) and its last [`TAIL_BYTES`] (where it keeps what it says last, such as a final
//! event's usage). The line being read and the event's data together stay within the limit, and
//! buffers that grew for a large event are given back once it is dispatched, so a stream holds
//! no more than its largest event while it is being read, and a few KiB between events.

use memchr::memchr2;

use super::{give_back, keep_tail, StreamEvent, HEAD_BYTES, TAIL_BYTES};

const EVENT_NAME_LIMIT: usize = 64;

/// What is kept of a line past the limit: enough for the field name and the head of its value;
/// the rest of it goes to the kept tail.
const LINE_KEPT_PAST_LIMIT: usize = HEAD_BYTES + 16;

/// Parses an event stream fed in frames.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    line_overflow: bool,
    /// The end of a line longer than the line buffer.
    line_excess: Vec<u8>,
    data: Vec<u8>,
    /// The end of an oversized event's data.
    tail: Vec<u8>,
    /// The start of an oversized event's data.
    head: Vec<u8>,
    has_data: bool,
    oversized: bool,
    event: Vec<u8>,
    after_cr: bool,
    started: bool,
    bom_matched: usize,
    limit: usize,
}

impl SseParser {
    /// A parser dropping the data of any event larger than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        SseParser {
            line: Vec::new(),
            line_overflow: false,
            line_excess: Vec::new(),
            data: Vec::new(),
            tail: Vec::new(),
            head: Vec::new(),
            has_data: false,
            oversized: false,
            event: Vec::new(),
            after_cr: false,
            started: false,
            bom_matched: 0,
            limit,
        }
    }

    /// Parses the next bytes, calling `on_event` for each complete event.
    pub fn feed(&mut self, chunk: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) {
        if chunk.is_empty() {
            return; // an empty frame must not end a CRLF split around it
        }
        let mut i = 0;
        if !self.started {
            // A byte order mark before the first line is not part of it, even when it comes
            // split across frames.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            while self.bom_matched < BOM.len() && i < chunk.len() && chunk[i] == BOM[self.bom_matched] {
                self.bom_matched += 1;
                i += 1;
            }
            if self.bom_matched < BOM.len() && i == chunk.len() {
                return; // all of this frame may be the start of a mark: wait for more
            }
            self.started = true;
            if self.bom_matched < BOM.len() {
                // Not a mark after all: what was taken for one starts the first line.
                let taken = self.bom_matched;
                self.append_line(&BOM[..taken]);
            }
        }
        if self.after_cr {
            self.after_cr = false;
            if chunk.get(i) == Some(&b'\n') {
                i += 1;
            }
        }
        while i < chunk.len() {
            let Some(k) = memchr2(b'\n', b'\r', &chunk[i..]) else {
                self.append_line(&chunk[i..]);
                return;
            };
            let end = i + k;
            if self.line.is_empty() && !self.line_overflow {
                self.process_line(&chunk[i..end], on_event);
            } else {
                self.append_line(&chunk[i..end]);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, on_event);
                self.line = line;
                self.line.clear();
                give_back(&mut self.line);
                self.line_overflow = false;
                self.line_excess.clear();
                give_back(&mut self.line_excess);
            }
            i = end + 1;
            if chunk[end] == b'\r' {
                if i < chunk.len() {
                    if chunk[i] == b'\n' {
                        i += 1;
                    }
                } else {
                    self.after_cr = true;
                }
            }
        }
    }

    /// Ends the stream: a last line or event without its terminator is still dispatched.
    pub fn finish(&mut self, on_event: &mut impl FnMut(StreamEvent<'_>)) {
        if !self.started && self.bom_matched > 0 {
            // The stream was only the start of a mark: those bytes were a line after all.
            self.started = true;
            let taken = self.bom_matched;
            self.append_line(&b"\xEF\xBB\xBF"[..taken]);
        }
        if !self.line.is_empty() || self.line_overflow {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, on_event);
            self.line_overflow = false;
            self.line_excess.clear();
        }
        self.dispatch(on_event);
    }

    fn append_line(&mut self, bytes: &[u8]) {
        // Room for any field name and an event name, however small the data limit; the line and
        // the event's data so far together stay within the limit (a longer line makes the event
        // oversized anyway).
        let max = (self.limit + 16)
            .saturating_sub(self.data.len())
            .max(EVENT_NAME_LIMIT + 16);
        if self.line_overflow {
            keep_tail(&mut self.line_excess, bytes);
        } else if self.line.len() + bytes.len() > max {
            let room = max.saturating_sub(self.line.len()).min(bytes.len());
            self.line.extend_from_slice(&bytes[..room]);
            self.line_overflow = true;
            // The line is past the limit: its event is oversized, and only the head and the
            // tail of its value matter. Keep those, and give the rest of the buffer back.
            if self.line.len() > LINE_KEPT_PAST_LIMIT + TAIL_BYTES {
                keep_tail(&mut self.line_excess, &self.line[LINE_KEPT_PAST_LIMIT..]);
                self.line.truncate(LINE_KEPT_PAST_LIMIT);
                self.line.shrink_to_fit();
            }
            keep_tail(&mut self.line_excess, &bytes[room..]);
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn process_line(&mut self, line: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) {
        if line.is_empty() && !self.line_overflow {
            self.dispatch(on_event);
            return;
        }
        if line.first() == Some(&b':') {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                self.has_data = true;
                if !self.oversized && (self.line_overflow || self.data.len() + value.len() + 1 > self.limit) {
                    self.oversized = true;
                    let mut head = std::mem::take(&mut self.head);
                    head.clear();
                    for part in [&self.data[..], value] {
                        let room = HEAD_BYTES - head.len();
                        head.extend_from_slice(&part[..part.len().min(room)]);
                    }
                    self.head = head;
                    keep_tail(&mut self.tail, &self.data);
                    self.data.clear();
                    give_back(&mut self.data);
                }
                if self.oversized {
                    // The whole line is its value and, if it overflowed the line buffer, the rest.
                    keep_tail(&mut self.tail, value);
                    keep_tail(&mut self.tail, &self.line_excess);
                    keep_tail(&mut self.tail, b"\n");
                } else {
                    // Room for the line end too, or pushing it would double the buffer.
                    self.data.reserve(value.len() + 1);
                    self.data.extend_from_slice(value);
                    self.data.push(b'\n');
                }
            }
            b"event" => {
                self.event.clear();
                self.event
                    .extend_from_slice(&value[..value.len().min(EVENT_NAME_LIMIT)]);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(StreamEvent<'_>)) {
        if self.has_data {
            if self.data.last() == Some(&b'\n') {
                self.data.pop();
            }
            if self.tail.last() == Some(&b'\n') {
                self.tail.pop();
            }
            on_event(StreamEvent {
                name: &self.event,
                data: &self.data,
                oversized: self.oversized,
                tail: &self.tail[self.tail.len().saturating_sub(TAIL_BYTES)..],
                head: if self.oversized { &self.head } else { &[] },
            });
        }
        self.data.clear();
        self.tail.clear();
        self.head.clear();
        self.event.clear();
        give_back(&mut self.data);
        give_back(&mut self.tail);
        self.has_data = false;
        self.oversized = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frames: &[&[u8]], limit: usize) -> Vec<(String, String, bool)> {
        let mut p = SseParser::new(limit);
        let mut out = Vec::new();
        let mut on = |e: StreamEvent<'_>| {
            out.push((
                String::from_utf8_lossy(e.name).into_owned(),
                String::from_utf8_lossy(e.data).into_owned(),
                e.oversized,
            ))
        };
        for f in frames {
            p.feed(f, &mut on);
        }
        p.finish(&mut on);
        out
    }

    fn ev(event: &str, data: &str) -> (String, String, bool) {
        (event.into(), data.into(), false)
    }

    #[test]
    fn an_oversized_event_keeps_the_end_of_its_data_whatever_the_framing() {
        let big = format!("data: {{\"x\":\"{}\",\n", "a".repeat(100_000));
        let body = format!("{big}data: \"usage\":7}}\n\ndata: small\n\n");
        let run = |cuts: &[usize]| {
            let mut p = SseParser::new(1000);
            let mut out = Vec::new();
            let mut at = 0;
            for &cut in cuts.iter().chain([body.len()].iter()) {
                p.feed(&body.as_bytes()[at..cut], &mut |e| {
                    out.push((e.data.to_vec(), e.oversized, e.tail.to_vec()))
                });
                at = cut;
            }
            p.finish(&mut |e| out.push((e.data.to_vec(), e.oversized, e.tail.to_vec())));
            out
        };
        let whole = run(&[]);
        assert_eq!(whole.len(), 2);
        let (data, oversized, tail) = &whole[0];
        assert!(data.is_empty() && *oversized);
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(
            tail.ends_with(b"aaa\",\n\"usage\":7}"),
            "{:?}",
            String::from_utf8_lossy(&tail[tail.len() - 30..])
        );
        assert_eq!(whole[1], (b"small".to_vec(), false, Vec::new()));
        for cuts in [&[1usize][..], &[500, 1500], &[7, 50_000, 100_013], &[100_020]] {
            assert_eq!(run(cuts), whole, "cuts at {cuts:?}");
        }
    }

    #[test]
    fn a_one_line_oversized_event_has_a_full_tail_whatever_the_framing() {
        let body = format!("data: {}Z\n\n", "a".repeat(99_999));
        let tail = |cuts: &[usize]| {
            let mut p = SseParser::new(1000);
            let mut out = Vec::new();
            let mut at = 0;
            for &cut in cuts.iter().chain([body.len()].iter()) {
                p.feed(&body.as_bytes()[at..cut], &mut |e| out.push(e.tail.to_vec()));
                at = cut;
            }
            p.finish(&mut |e| out.push(e.tail.to_vec()));
            out
        };
        let whole = tail(&[]);
        assert_eq!(whole[0].len(), TAIL_BYTES);
        assert!(whole[0].ends_with(b"aZ"));
        for cuts in [&[10usize][..], &[5000, 60_000], &[32_774], &[100_005]] {
            assert_eq!(tail(cuts), whole, "cuts at {cuts:?}");
        }
    }

    #[test]
    fn a_byte_order_mark_split_across_frames_is_still_skipped() {
        let body = b"\xEF\xBB\xBFdata: a\n\nevent: e\ndata: b\n\n";
        let collect = |cuts: &[usize]| {
            let mut p = SseParser::new(100);
            let mut out = Vec::new();
            let mut at = 0;
            for &cut in cuts.iter().chain([body.len()].iter()) {
                p.feed(&body[at..cut], &mut |e| {
                    out.push((e.name.to_vec(), e.data.to_vec()))
                });
                at = cut;
            }
            p.finish(&mut |e| out.push((e.name.to_vec(), e.data.to_vec())));
            out
        };
        let whole = collect(&[]);
        assert_eq!(
            whole,
            [(b"".to_vec(), b"a".to_vec()), (b"e".to_vec(), b"b".to_vec())]
        );
        for a in 0..6 {
            for b in a..6 {
                assert_eq!(collect(&[a, b]), whole, "cuts at {a} and {b}");
            }
        }
        // Bytes that only start like a mark are the first line's.
        let mut p = SseParser::new(100);
        let mut out = Vec::new();
        p.feed(b"\xEF\xBB", &mut |e| out.push(e.data.to_vec()));
        p.feed(b"x\ndata: c\n\n", &mut |e| out.push(e.data.to_vec()));
        assert_eq!(out, [b"c".to_vec()]);
    }

    #[test]
    fn line_endings_comments_and_multiline_data() {
        let stream =
            b": keep-alive\r\ndata: a\r\ndata:b\r\n\r\nevent: x\ndata: {}\n\ndata: c\r\rid: 7\nretry: 5\n\n";
        let want = vec![ev("", "a\nb"), ev("x", "{}"), ev("", "c")];
        assert_eq!(parse(&[stream], 1024), want);
        for i in 0..=stream.len() {
            assert_eq!(parse(&[&stream[..i], &stream[i..]], 1024), want, "split at {i}");
        }
    }

    #[test]
    fn empty_frames_and_a_byte_order_mark_change_nothing() {
        let frames: [&[u8]; 4] = [b"\xEF\xBB\xBFdata: a\r", b"", b"\ndata: b\r\n", b"\r\n"];
        assert_eq!(parse(&frames, 100), vec![ev("", "a\nb")]);
    }

    #[test]
    fn a_final_event_without_a_blank_line_is_dispatched() {
        assert_eq!(
            parse(&[b"data: 1\n\ndata: [DONE]"], 100),
            vec![ev("", "1"), ev("", "[DONE]")]
        );
        assert_eq!(
            parse(&[b"data: 1\n\ndata: 2\n"], 100),
            vec![ev("", "1"), ev("", "2")]
        );
    }

    #[test]
    fn events_without_data_are_not_dispatched() {
        assert_eq!(parse(&[b"event: ping\n\n: c\n\n\n"], 100), vec![]);
        assert_eq!(parse(&[b"data\n\n"], 100), vec![ev("", "")]);
    }

    #[test]
    fn oversized_events_are_flagged_and_bounded() {
        let big = format!("data: {}\n\ndata: ok\n\n", "x".repeat(10_000));
        let out = parse(&[&big.as_bytes()[..5000], &big.as_bytes()[5000..]], 100);
        assert_eq!(out, vec![("".into(), "".into(), true), ev("", "ok")]);
        let many = format!("{}\n", "data: yy\n".repeat(100));
        assert_eq!(parse(&[many.as_bytes()], 100), vec![("".into(), "".into(), true)]);
    }
}
