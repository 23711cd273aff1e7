//! Newline-delimited JSON (`application/x-ndjson`, Ollama's streams): one event per line.
//!
//! Lines end in `\n` (a `\r` before it is taken off, even when the two arrive in different
//! frames); blank lines are skipped; a byte order mark at the start is not part of the first line. A last line with
//! no `\n` after it is an event only when the stream ended: a stream cut short leaves a partial
//! line, which is not one. A line within one frame is handed on as a slice of that frame.

use memchr::memchr;

use super::{EventData, StreamEvent};

/// Splits a stream into lines.
#[derive(Debug)]
pub(crate) struct JsonLinesFramer {
    line: EventData,
    /// The last frame ended in `\r`, held back: it ends a line if a `\n` follows.
    cr_pending: bool,
    /// Bytes of a byte order mark seen at the very start.
    bom_matched: usize,
    started: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn trim_line(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

impl JsonLinesFramer {
    pub(crate) fn new(limit: usize) -> Self {
        JsonLinesFramer {
            line: EventData::new(limit),
            cr_pending: false,
            bom_matched: 0,
            started: false,
        }
    }

    pub(crate) fn feed(&mut self, mut bytes: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) {
        if !self.started {
            // A byte order mark before the first line is not part of it, even split across frames.
            while self.bom_matched < BOM.len() && !bytes.is_empty() && bytes[0] == BOM[self.bom_matched] {
                self.bom_matched += 1;
                bytes = &bytes[1..];
            }
            if bytes.is_empty() && self.bom_matched < BOM.len() {
                return;
            }
            self.started = true;
            if self.bom_matched < BOM.len() {
                // Not a mark after all: what was taken for one starts the first line.
                self.line.push(&BOM[..self.bom_matched]);
            }
        }
        if bytes.is_empty() {
            return;
        }
        if std::mem::take(&mut self.cr_pending) && bytes[0] != b'\n' {
            self.line.push(b"\r");
        }
        while let Some(end) = memchr(b'\n', bytes) {
            let line = trim_line(&bytes[..end]);
            if self.line.passes_whole(line.len()) {
                if !is_blank(line) {
                    on_event(StreamEvent::new(b"", line));
                }
            } else {
                self.line.push(line);
                self.dispatch(on_event);
            }
            bytes = &bytes[end + 1..];
        }
        if let Some(rest) = bytes.strip_suffix(b"\r") {
            // Perhaps the first half of a `\r\n`: held back until the next byte says.
            self.cr_pending = true;
            bytes = rest;
        }
        if !bytes.is_empty() {
            self.line.push(bytes);
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(StreamEvent<'_>)) {
        // A blank line gathered across frames (`\r`, spaces) is no event; an oversized one
        // always is.
        self.line.dispatch(b"", super::whole, &mut |e| {
            if e.oversized || !is_blank(e.data) {
                on_event(e);
            }
        });
    }

    pub(crate) fn finish(&mut self, ended: bool, on_event: &mut impl FnMut(StreamEvent<'_>)) -> Vec<String> {
        if !self.started && self.bom_matched > 0 {
            self.line.push(&BOM[..self.bom_matched]);
        }
        // A last line's `\r` with no `\n` after it is taken off, as before a `\n`.
        self.cr_pending = false;
        if self.line.is_empty() {
            return Vec::new();
        }
        if ended {
            self.dispatch(on_event);
            Vec::new()
        } else {
            self.line.clear();
            vec!["stream: it stopped inside a line, which is not logged".into()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, same_at_every_split};
    use super::super::Framing;

    fn datas(events: &super::super::testing::Events) -> Vec<String> {
        events
            .iter()
            .map(|(_, d, _, _)| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    #[test]
    fn lines_are_events_however_the_stream_is_cut() {
        let body = b"\xEF\xBB\xBF{\"a\":1}\n\n{\"b\":2}\r\n  \n{\"c\":\"x\\ny\"}\r";
        let (events, problems) = same_at_every_split(Framing::JsonLines, 1000, body);
        assert_eq!(datas(&events), ["{\"a\":1}", "{\"b\":2}", "{\"c\":\"x\\ny\"}"]);
        assert!(problems.is_empty());
    }

    #[test]
    fn a_partial_last_line_counts_only_when_the_stream_ended() {
        let (events, problems) = run(Framing::JsonLines, 1000, b"{\"a\":1}\n{\"b\"", &[3], false);
        assert_eq!(datas(&events), ["{\"a\":1}"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn an_oversized_line_keeps_its_head_and_tail_and_the_next_line_is_whole() {
        let long = format!("{{\"x\":\"{}\",\"done\":true}}", "a".repeat(100_000));
        let body = format!("{long}\r\n{{\"next\":1}}\n");
        for cuts in [&[][..], &[1], &[50_000, 50_001], &[100_020]] {
            let (events, _) = run(Framing::JsonLines, 1000, body.as_bytes(), cuts, true);
            assert_eq!(events.len(), 2, "cuts {cuts:?}");
            let (_, data, oversized, tail) = &events[0];
            assert!(data.is_empty() && *oversized);
            assert!(
                tail.ends_with(b"\"done\":true}"),
                "the \\r is taken off the tail too"
            );
            assert_eq!(tail.len(), super::super::TAIL_BYTES);
            assert_eq!(events[1].1, b"{\"next\":1}");
        }
    }
}
