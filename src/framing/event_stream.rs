//! AWS event stream (`application/vnd.amazon.eventstream`, Bedrock's `converse-stream`): binary
//! messages, each checked before it is trusted.
//!
//! A message is a 12-byte prelude (total length and headers length, big-endian `u32`s, and the
//! CRC-32 of those 8 bytes), its headers (a name of at most 255 bytes, a type byte and a typed
//! value each), its payload, and the CRC-32 of everything before it. The framer checks both
//! checksums and the lengths: a message whose own checksum fails is reported and skipped (its
//! length was vouched for by the prelude); a prelude that fails or gives impossible lengths
//! leaves no way to find the next message, so the rest of the stream is reported and not read.
//! A message within one frame is checked and handed on as slices of that frame.

use super::{whole, EventData, StreamEvent};

const PRELUDE: usize = 12;
/// The prelude and the message checksum.
const OVERHEAD: usize = 16;
/// The largest message the format allows.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// The largest headers section the format allows.
const MAX_HEADERS: usize = 128 * 1024;
/// Headers kept to be read; a message's headers past this are checked, not read (Bedrock's are
/// about 100 bytes).
const HEADERS_KEPT: usize = 4 * 1024;
/// Problems kept word for word; the rest are counted.
const PROBLEMS_KEPT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Prelude,
    Headers,
    Payload,
    Checksum,
    /// A prelude could not be trusted: the rest of the stream is not read.
    Broken,
}

/// Decodes an event stream into its messages.
#[derive(Debug)]
pub(crate) struct EventStreamFramer {
    part: Part,
    prelude: [u8; PRELUDE],
    checksum: [u8; 4],
    /// Bytes of the prelude or the checksum read so far.
    got: usize,
    total: usize,
    headers: Vec<u8>,
    /// The message's headers are longer than [`HEADERS_KEPT`]: checked, not read.
    headers_too_long: bool,
    headers_left: usize,
    payload: EventData,
    payload_left: usize,
    crc: crc32fast::Hasher,
    messages: u64,
    problems: Vec<String>,
    more_problems: u64,
    unread: u64,
}

/// What a message's headers say about it.
#[derive(Debug, Default)]
struct Kind<'a> {
    message_type: Option<&'a [u8]>,
    event_type: Option<&'a [u8]>,
    exception_type: Option<&'a [u8]>,
    error_code: Option<&'a [u8]>,
    error_message: Option<&'a [u8]>,
}

/// Reads the headers section; a malformed one is described.
fn read_headers(mut h: &[u8]) -> Result<Kind<'_>, String> {
    let mut kind = Kind::default();
    let short = || "a header runs past the headers section".to_string();
    while !h.is_empty() {
        let name_len = h[0] as usize;
        let name = h.get(1..1 + name_len).ok_or_else(short)?;
        let value_type = *h.get(1 + name_len).ok_or_else(short)?;
        h = &h[2 + name_len..];
        let fixed = match value_type {
            0 | 1 => Some(0),
            2 => Some(1),
            3 => Some(2),
            4 => Some(4),
            5 | 8 => Some(8),
            9 => Some(16),
            6 | 7 => None,
            other => return Err(format!("a header has the unknown value type {other}")),
        };
        let value = match fixed {
            Some(n) => h.get(..n).ok_or_else(short)?,
            None => {
                let len = h.get(..2).ok_or_else(short)?;
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                h.get(2..2 + len).ok_or_else(short)?
            }
        };
        let used = value.len() + if fixed.is_none() { 2 } else { 0 };
        if value_type == 7 {
            match name {
                b":message-type" => kind.message_type = Some(value),
                b":event-type" => kind.event_type = Some(value),
                b":exception-type" => kind.exception_type = Some(value),
                b":error-code" => kind.error_code = Some(value),
                b":error-message" => kind.error_message = Some(value),
                _ => {}
            }
        }
        h = &h[used..];
    }
    Ok(kind)
}

impl EventStreamFramer {
    pub(crate) fn new(limit: usize) -> Self {
        EventStreamFramer {
            part: Part::Prelude,
            prelude: [0; PRELUDE],
            checksum: [0; 4],
            got: 0,
            total: 0,
            headers: Vec::new(),
            headers_too_long: false,
            headers_left: 0,
            payload: EventData::new(limit),
            payload_left: 0,
            crc: crc32fast::Hasher::new(),
            messages: 0,
            problems: Vec::new(),
            more_problems: 0,
            unread: 0,
        }
    }

    fn problem(&mut self, problem: String) {
        if self.problems.len() < PROBLEMS_KEPT {
            self.problems.push(problem);
        } else {
            self.more_problems += 1;
        }
    }

    /// Checks a prelude: the message's total and headers lengths, or why it cannot be trusted.
    fn check_prelude(&mut self, prelude: &[u8]) -> Option<(usize, usize)> {
        let word =
            |i: usize| u32::from_be_bytes([prelude[i], prelude[i + 1], prelude[i + 2], prelude[i + 3]]);
        let (total, headers) = (word(0) as usize, word(4) as usize);
        let n = self.messages + 1;
        if crc32fast::hash(&prelude[..8]) != word(8) {
            self.problem(format!(
                "event stream: message {n}'s prelude checksum does not match; the rest of the stream is not read"
            ));
        } else if !(OVERHEAD..=MAX_MESSAGE).contains(&total)
            || headers > MAX_HEADERS
            || headers > total - OVERHEAD
        {
            self.problem(format!(
                "event stream: message {n} gives impossible lengths (total {total}, headers {headers}); the rest of the stream is not read"
            ));
        } else {
            return Some((total, headers));
        }
        self.part = Part::Broken;
        None
    }

    pub(crate) fn feed(&mut self, mut bytes: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) {
        while !bytes.is_empty() {
            match self.part {
                Part::Broken => {
                    self.unread += bytes.len() as u64;
                    return;
                }
                Part::Prelude if self.got == 0 && bytes.len() >= PRELUDE => {
                    let Some((total, headers)) = self.check_prelude(&bytes[..PRELUDE]) else {
                        bytes = &bytes[PRELUDE..];
                        continue;
                    };
                    if bytes.len() >= total
                        && headers <= HEADERS_KEPT
                        && self.payload.passes_whole(total - headers - OVERHEAD)
                    {
                        // The whole message is in this frame: check it and hand it on as it is.
                        self.messages += 1;
                        let message = &bytes[..total];
                        let stored = u32::from_be_bytes([
                            message[total - 4],
                            message[total - 3],
                            message[total - 2],
                            message[total - 1],
                        ]);
                        if crc32fast::hash(&message[..total - 4]) == stored {
                            let headers = &message[PRELUDE..PRELUDE + headers];
                            let payload = &message[PRELUDE + headers.len()..total - 4];
                            self.deliver(headers, payload, on_event);
                        } else {
                            self.bad_checksum();
                        }
                        bytes = &bytes[total..];
                        continue;
                    }
                    self.start(&bytes[..PRELUDE], total, headers);
                    bytes = &bytes[PRELUDE..];
                }
                Part::Prelude => {
                    let n = (PRELUDE - self.got).min(bytes.len());
                    self.prelude[self.got..self.got + n].copy_from_slice(&bytes[..n]);
                    self.got += n;
                    bytes = &bytes[n..];
                    if self.got == PRELUDE {
                        self.got = 0;
                        let prelude = self.prelude;
                        if let Some((total, headers)) = self.check_prelude(&prelude) {
                            self.start(&prelude, total, headers);
                        }
                    }
                }
                Part::Headers => {
                    let n = self.headers_left.min(bytes.len());
                    self.crc.update(&bytes[..n]);
                    if !self.headers_too_long {
                        self.headers.extend_from_slice(&bytes[..n]);
                    }
                    self.headers_left -= n;
                    bytes = &bytes[n..];
                    if self.headers_left == 0 {
                        self.part = Part::Payload;
                    }
                }
                Part::Payload => {
                    let n = self.payload_left.min(bytes.len());
                    self.crc.update(&bytes[..n]);
                    self.payload.push(&bytes[..n]);
                    self.payload_left -= n;
                    bytes = &bytes[n..];
                    if self.payload_left == 0 {
                        self.part = Part::Checksum;
                    }
                }
                Part::Checksum => {
                    let n = (4 - self.got).min(bytes.len());
                    self.checksum[self.got..self.got + n].copy_from_slice(&bytes[..n]);
                    self.got += n;
                    bytes = &bytes[n..];
                    if self.got == 4 {
                        self.end_message(on_event);
                    }
                }
            }
        }
    }

    /// A message that spans frames begins: its prelude was checked.
    fn start(&mut self, prelude: &[u8], total: usize, headers: usize) {
        self.crc = crc32fast::Hasher::new();
        self.crc.update(prelude);
        self.total = total;
        self.headers.clear();
        // Too long to read: checked, not kept, and the message skipped (whatever the framing).
        self.headers_too_long = headers > HEADERS_KEPT;
        self.headers_left = headers;
        self.payload_left = total - headers - OVERHEAD;
        self.part = if headers > 0 { Part::Headers } else { Part::Payload };
        if self.part == Part::Payload && self.payload_left == 0 {
            self.part = Part::Checksum;
        }
    }

    fn end_message(&mut self, on_event: &mut impl FnMut(StreamEvent<'_>)) {
        self.messages += 1;
        self.got = 0;
        self.part = Part::Prelude;
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        if crc != u32::from_be_bytes(self.checksum) {
            self.payload.clear();
            self.bad_checksum();
            return;
        }
        let headers = std::mem::take(&mut self.headers);
        if self.headers_too_long {
            self.problem(format!(
                "event stream: message {}'s headers are longer than {HEADERS_KEPT} bytes; it was skipped",
                self.messages
            ));
            self.payload.clear();
        } else {
            match self.name_of(&headers) {
                Some((name, None)) => self.payload.dispatch(name, whole, on_event),
                Some((name, Some(data))) => {
                    self.payload.clear();
                    on_event(StreamEvent::new(name, data.as_bytes()));
                }
                None => self.payload.clear(),
            }
        }
        self.headers = headers;
        self.headers.clear();
    }

    /// A whole message from one frame, its checksum good.
    fn deliver(&mut self, headers: &[u8], payload: &[u8], on_event: &mut impl FnMut(StreamEvent<'_>)) {
        if let Some((name, error)) = self.name_of(headers) {
            on_event(StreamEvent::new(
                name,
                error.as_deref().map_or(payload, str::as_bytes),
            ));
        }
    }

    /// A checked message's name and, for an error message, the data handed on in place of its
    /// payload; `None` when its headers do not read (reported, and the message skipped).
    fn name_of<'h>(&mut self, headers: &'h [u8]) -> Option<(&'h [u8], Option<String>)> {
        match read_headers(headers) {
            Ok(kind) => Some((kind.event_name(), kind.error_data())),
            Err(problem) => {
                self.problem(format!(
                    "event stream: message {}: {problem}; it was skipped",
                    self.messages
                ));
                None
            }
        }
    }

    fn bad_checksum(&mut self) {
        self.problem(format!(
            "event stream: message {}'s checksum does not match; it was skipped",
            self.messages
        ));
    }

    pub(crate) fn finish(&mut self, ended: bool) -> Vec<String> {
        let inside = match self.part {
            Part::Prelude => self.got > 0,
            Part::Broken => false,
            _ => true,
        };
        if ended && inside {
            self.problem(format!(
                "event stream: the stream ended inside message {}",
                self.messages + 1
            ));
        }
        self.payload.clear();
        if self.part == Part::Broken && self.unread > 0 {
            self.problem(format!(
                "event stream: the {} bytes after that prelude were not read",
                self.unread
            ));
        }
        let mut problems = std::mem::take(&mut self.problems);
        if self.more_problems > 0 {
            problems.push(format!("event stream: {} more problems", self.more_problems));
        }
        problems
    }
}

impl<'a> Kind<'a> {
    /// The name an event is handed on by: its event type, or its exception type, or `error`.
    fn event_name(&self) -> &'a [u8] {
        match self.message_type {
            Some(b"exception") => self.exception_type.unwrap_or(b"exception"),
            Some(b"error") => b"error",
            _ => self.event_type.unwrap_or(b""),
        }
    }

    /// An error message carries its code and message in headers, not in its payload: they are
    /// handed on as the JSON object `{"code":...,"message":...}`.
    fn error_data(&self) -> Option<String> {
        if self.message_type != Some(b"error") {
            return None;
        }
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        Some(
            serde_json::json!({
                "code": text(self.error_code),
                "message": text(self.error_message),
            })
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, same_at_every_split, Events};
    use super::super::Framing;
    use super::*;

    /// One message, encoded by AWS's own implementation.
    fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
        let mut message = Message::new(payload.to_vec());
        for (name, value) in headers {
            message = message.add_header(Header::new(
                name.to_string(),
                HeaderValue::String(value.to_string().into()),
            ));
        }
        let mut out = Vec::new();
        aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
        out
    }

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    fn names_and_data(events: &Events) -> Vec<(String, String)> {
        events
            .iter()
            .map(|(n, d, _, _)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(d).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn messages_are_events_however_the_stream_is_cut() {
        let mut body = event("messageStart", r#"{"role":"assistant"}"#);
        body.extend(event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        ));
        body.extend(encode(
            &[
                (":exception-type", "throttlingException"),
                (":message-type", "exception"),
            ],
            br#"{"message":"slow down"}"#,
        ));
        body.extend(encode(
            &[
                (":message-type", "error"),
                (":error-code", "Internal"),
                (":error-message", "boom"),
            ],
            b"",
        ));
        body.extend(event("messageStop", r#"{"stopReason":"end_turn"}"#));
        let (events, problems) = same_at_every_split(Framing::AwsEventStream, 1000, &body);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            names_and_data(&events),
            [
                ("messageStart".into(), r#"{"role":"assistant"}"#.into()),
                (
                    "contentBlockDelta".into(),
                    r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#.into()
                ),
                ("throttlingException".into(), r#"{"message":"slow down"}"#.into()),
                ("error".into(), r#"{"code":"Internal","message":"boom"}"#.into()),
                ("messageStop".into(), r#"{"stopReason":"end_turn"}"#.into()),
            ]
        );
    }

    #[test]
    fn every_header_type_is_read_past() {
        let mut h = Vec::new();
        let values: [(u8, &[u8]); 10] = [
            (0, b""),
            (1, b""),
            (2, b"\x01"),
            (3, b"\x00\x02"),
            (4, b"\x00\x00\x00\x03"),
            (5, &[0; 8]),
            (6, b"\x00\x02ab"),
            (7, b"\x00\x01x"),
            (8, &[1; 8]),
            (9, &[2; 16]),
        ];
        for (t, v) in values {
            h.push(3);
            h.extend_from_slice(b"h_");
            h.push(b'0' + t);
            h.push(t);
            h.extend_from_slice(v);
        }
        let kind = b":event-type";
        h.push(kind.len() as u8);
        h.extend_from_slice(kind);
        h.push(7);
        h.extend_from_slice(b"\x00\x04last");
        let read = read_headers(&h).unwrap();
        assert_eq!(read.event_name(), b"last");
        assert!(read_headers(&h[..h.len() - 1]).is_err());
        assert!(read_headers(b"\x01a\x0A").is_err(), "type 10 does not exist");
    }

    #[test]
    fn a_bad_message_checksum_skips_that_message_only() {
        let mut first = event("messageStart", r#"{"role":"assistant"}"#);
        let n = first.len();
        first[n - 6] ^= 1; // a payload byte
        let mut body = first;
        body.extend(event("messageStop", r#"{}"#));
        let (events, problems) = same_at_every_split(Framing::AwsEventStream, 1000, &body);
        assert_eq!(names_and_data(&events), [("messageStop".into(), "{}".into())]);
        assert_eq!(
            problems,
            ["event stream: message 1's checksum does not match; it was skipped"]
        );
    }

    #[test]
    fn a_bad_prelude_stops_the_reading() {
        let mut body = event("messageStart", r#"{"role":"assistant"}"#);
        body[2] ^= 0x40; // the total length
        body.extend(event("messageStop", r#"{}"#));
        let (events, problems) = same_at_every_split(Framing::AwsEventStream, 1000, &body);
        assert!(events.is_empty());
        assert!(
            problems[0].contains("prelude checksum does not match"),
            "{problems:?}"
        );
        assert!(problems[1].ends_with("prelude were not read"), "{problems:?}");
        // Lengths that cannot be, under a good checksum, are not trusted either.
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&8u32.to_be_bytes());
        prelude.extend_from_slice(&0u32.to_be_bytes());
        prelude.extend_from_slice(&crc32fast::hash(&prelude).to_be_bytes());
        let (_, problems) = run(Framing::AwsEventStream, 1000, &prelude, &[], true);
        assert!(
            problems[0].contains("impossible lengths (total 8"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_truncated_message_is_reported_when_the_stream_ended() {
        let body = event("messageStart", r#"{"role":"assistant"}"#);
        for cut in [5, 12, 40, body.len() - 1] {
            let (events, problems) = run(Framing::AwsEventStream, 1000, &body[..cut], &[], true);
            assert!(events.is_empty());
            assert_eq!(
                problems,
                ["event stream: the stream ended inside message 1"],
                "cut {cut}"
            );
            let (_, problems) = run(Framing::AwsEventStream, 1000, &body[..cut], &[], false);
            assert!(problems.is_empty(), "a stream cut short is the tap's to report");
        }
    }

    #[test]
    fn an_oversized_payload_keeps_its_head_and_tail() {
        let payload = format!("{{\"x\":\"{}\",\"end\":1}}", "a".repeat(100_000));
        let mut body = event("contentBlockDelta", &payload);
        body.extend(event("messageStop", "{}"));
        for cuts in [&[][..], &[1], &[50_000]] {
            let (events, problems) = run(Framing::AwsEventStream, 1000, &body, cuts, true);
            assert!(problems.is_empty());
            assert_eq!(events.len(), 2);
            assert_eq!(events[0].0, b"contentBlockDelta");
            assert!(events[0].2 && events[0].3.ends_with(b"\"end\":1}"));
        }
    }

    #[test]
    fn problems_are_bounded() {
        let mut body = Vec::new();
        for _ in 0..10 {
            let mut m = event("x", "{}");
            let n = m.len();
            m[n - 1] ^= 1;
            body.extend(m);
        }
        let (_, problems) = run(Framing::AwsEventStream, 1000, &body, &[], true);
        assert_eq!(problems.len(), PROBLEMS_KEPT + 1);
        assert_eq!(problems[PROBLEMS_KEPT], "event stream: 7 more problems");
    }
}
