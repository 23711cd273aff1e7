//! Server-sent events read in place: the `data:` of each event handed on as slices of the frames
//! it came in, never gathered, for readers that parse an event's data as it streams (MCP, whose
//! events carry whole tool results: they may be as large as the cap, or larger).
//!
//! Field names, line ends (`\r\n`, `\r`, `\n`, also split across frames) and comments follow the
//! SSE specification as [`SseParser`](super::SseParser) does; only `data` matters here.

use bytes::Bytes;
use memchr::memchr2;

/// What the slicer finds, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SsePiece {
    /// The next bytes of the current event's data (a slice of the frame).
    Data(Bytes),
    /// The event's data goes on with another `data:` line: a `\n` joins them.
    LineBreak,
    /// The event ended (a blank line) after at least one `data:` line.
    EventEnd,
}

/// Where the slicer is within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Reading the field name (nothing read yet when `field_len` is 0).
    Field,
    /// Just after `data:`: one space may follow.
    DataStart,
    /// Inside a `data:` value.
    Data,
    /// Inside a line that is not data (another field, a comment).
    Other,
}

/// The longest field name worth remembering; `data` is four bytes.
const FIELD: usize = 8;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Cuts a stream of SSE frames into [`SsePiece`]s.
#[derive(Debug)]
pub(crate) struct SseSlicer {
    line: Line,
    field: [u8; FIELD],
    field_len: usize,
    /// The last byte was a CR: a LF right after it ends the same line.
    after_cr: bool,
    /// `data:` lines of the current event so far.
    data_lines: u32,
    /// How much of a byte-order mark at the very start has been seen (`None` once past it).
    bom: Option<usize>,
}

impl Default for SseSlicer {
    fn default() -> Self {
        SseSlicer {
            line: Line::Field,
            field: [0; FIELD],
            field_len: 0,
            after_cr: false,
            data_lines: 0,
            bom: Some(0),
        }
    }
}

impl SseSlicer {
    /// The next frame of the stream.
    pub(crate) fn feed(&mut self, frame: &Bytes, on: &mut impl FnMut(SsePiece)) {
        let buf = &frame[..];
        let mut i = 0;
        if let Some(mut seen) = self.bom {
            while seen < BOM.len() && i < buf.len() && buf[i] == BOM[seen] {
                seen += 1;
                i += 1;
            }
            if seen < BOM.len() && i == buf.len() {
                // All of this frame is the start of a mark: the rest may follow.
                self.bom = Some(seen);
                return;
            }
            // A whole mark is skipped; a partial one (not SSE anyway) is dropped.
            self.bom = None;
        }
        while i < buf.len() {
            if self.after_cr {
                self.after_cr = false;
                if buf[i] == b'\n' {
                    i += 1;
                    continue;
                }
            }
            match self.line {
                Line::Data | Line::Other => {
                    let end = memchr2(b'\n', b'\r', &buf[i..]).map_or(buf.len(), |k| i + k);
                    if self.line == Line::Data && end > i {
                        on(SsePiece::Data(frame.slice(i..end)));
                    }
                    if end == buf.len() {
                        return;
                    }
                    self.line_end(buf[end], on);
                    i = end + 1;
                }
                Line::DataStart => {
                    if buf[i] == b' ' {
                        i += 1;
                    }
                    self.line = Line::Data;
                }
                Line::Field => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'\n' | b'\r' => self.line_end(b, on),
                        b':' => self.line = self.field_is_data(on),
                        _ => {
                            if self.field_len < FIELD {
                                self.field[self.field_len] = b;
                            }
                            self.field_len += 1;
                        }
                    }
                }
            }
        }
    }

    /// The stream ended (`ended`) or stopped: an event without its blank line ends only when
    /// the stream did.
    pub(crate) fn finish(&mut self, ended: bool, on: &mut impl FnMut(SsePiece)) {
        if ended && self.data_lines > 0 {
            on(SsePiece::EventEnd);
        }
        self.data_lines = 0;
    }

    fn field_is(&self, name: &[u8]) -> bool {
        self.field_len == name.len() && &self.field[..name.len()] == name
    }

    /// After the field name's colon: the line is data, or something else.
    fn field_is_data(&mut self, on: &mut impl FnMut(SsePiece)) -> Line {
        if self.field_is(b"data") {
            self.start_data_line(on);
            Line::DataStart
        } else {
            Line::Other
        }
    }

    /// A `data:` line starts: after another in the same event, a `\n` joins them.
    fn start_data_line(&mut self, on: &mut impl FnMut(SsePiece)) {
        if self.data_lines > 0 {
            on(SsePiece::LineBreak);
        }
        self.data_lines += 1;
    }

    fn line_end(&mut self, b: u8, on: &mut impl FnMut(SsePiece)) {
        self.after_cr = b == b'\r';
        if self.line == Line::Field {
            if self.field_len == 0 {
                // A blank line: the event ends.
                if self.data_lines > 0 {
                    on(SsePiece::EventEnd);
                }
                self.data_lines = 0;
            } else if self.field_is(b"data") {
                // `data` with no colon: a data line with an empty value.
                self.start_data_line(on);
            }
        }
        self.line = Line::Field;
        self.field_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::SseParser;

    /// Each event's data, as the slicer hands it on, fed in the given frames.
    fn slice(frames: &[&[u8]], ended: bool) -> Vec<Vec<u8>> {
        let mut slicer = SseSlicer::default();
        let mut events = Vec::new();
        let mut current = Vec::new();
        let mut on = |p: SsePiece| match p {
            SsePiece::Data(b) => current.extend_from_slice(&b),
            SsePiece::LineBreak => current.push(b'\n'),
            SsePiece::EventEnd => events.push(std::mem::take(&mut current)),
        };
        for f in frames {
            slicer.feed(&Bytes::copy_from_slice(f), &mut on);
        }
        slicer.finish(ended, &mut on);
        events
    }

    /// The data of each event the gathering parser dispatches.
    fn gathered(input: &[u8]) -> Vec<Vec<u8>> {
        let mut parser = SseParser::new(1 << 20);
        let mut events = Vec::new();
        parser.feed(input, &mut |e| events.push(e.data.to_vec()));
        parser.finish(&mut |e| events.push(e.data.to_vec()));
        events
    }

    const STREAM: &[u8] = b"\xEF\xBB\xBFevent: message\r\nid: 1\r\ndata: {\"a\":1}\r\n\r\n: a comment\n\
data:{\"b\":\ndata\ndata:  2}\n\nretry: 10\r\r\
data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\r\r\
id: 4\n\nevent: x\ndata: last";

    #[test]
    fn the_same_data_as_the_gathering_parser_split_at_every_byte() {
        let whole = gathered(STREAM);
        assert_eq!(
            whole,
            vec![
                b"{\"a\":1}".to_vec(),
                b"{\"b\":\n\n 2}".to_vec(),
                b"{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}".to_vec(),
                b"last".to_vec(),
            ]
        );
        assert_eq!(slice(&[STREAM], true), whole);
        for at in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(at);
            assert_eq!(slice(&[a, b], true), whole, "split at {at}");
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(slice(&bytes, true), whole);
    }

    #[test]
    fn an_unfinished_event_ends_only_with_the_stream() {
        assert_eq!(slice(&[b"data: {\"a\""], false), Vec::<Vec<u8>>::new());
        assert_eq!(slice(&[b"data: {\"a\""], true), vec![b"{\"a\"".to_vec()]);
    }

    #[test]
    fn long_field_names_and_events_without_data_hand_on_nothing() {
        let input = b"datadata: x\nevent: only\n\ndat: y\n\n:data: z\n\n";
        assert_eq!(slice(&[input], true), gathered(input));
        assert!(slice(&[input], true).is_empty());
    }

    #[test]
    fn data_is_handed_on_as_slices_of_the_frame() {
        let frame = Bytes::from_static(b"data: {\"big\":\"value\"}\n\n");
        let mut slicer = SseSlicer::default();
        let mut pieces = Vec::new();
        slicer.feed(&frame, &mut |p| pieces.push(p));
        let SsePiece::Data(data) = &pieces[0] else {
            panic!("{pieces:?}")
        };
        assert_eq!(data.as_ptr(), frame[6..].as_ptr(), "a slice, not a copy");
        assert_eq!(pieces[1], SsePiece::EventEnd);
    }

    proptest::proptest! {
        /// Whatever the lines, line ends and frame cuts, the data handed on is what the
        /// gathering parser gathers.
        #[test]
        fn agrees_with_the_gathering_parser(
            lines in proptest::collection::vec(
                (proptest::sample::select(vec![
                    "data: {\"a\":1}", "data:x", "data", "data:  y ", "event: message", "id: 7",
                    ": comment", "", "retry: 10", "dat", "datum: z", "data:\u{e9}",
                ]), proptest::sample::select(vec!["\n", "\r\n", "\r"])),
                0..24,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let input: Vec<u8> = lines.iter().flat_map(|(l, e)| [l.as_bytes(), e.as_bytes()].concat()).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut frames = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain(std::iter::once(input.len())) {
                frames.push(&input[last..c]);
                last = c;
            }
            proptest::prop_assert_eq!(slice(&frames, true), gathered(&input));
        }
    }
}
