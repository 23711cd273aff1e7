//! Exact usage for streamed chat completions that did not ask for it
//! ([`LogConfigBuilder::ensure_stream_usage`](crate::LogConfigBuilder::ensure_stream_usage)).
//!
//! The request, read ahead whole, gets `"stream_options":{"include_usage":true}` as its first
//! member (only when it says `"stream": true`, is valid JSON and has no `stream_options` of its
//! own); `Content-Length` grows to match. The upstream then sends usage, which the tap reads,
//! and the response the client receives is put back as it would have been: the final chunk
//! that carries only usage (`"choices":[]`) is removed with its blank line, and the
//! `"usage":null` member the other chunks gained is removed from each. Frames with nothing to
//! remove pass as the same `Bytes`; the others are copied without those bytes.

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;

use crate::read_ahead::HeldFrames;

/// What the request gains, just after its opening brace.
pub(crate) const INSERTED: &[u8] = br#""stream_options":{"include_usage":true},"#;

/// The longest SSE line the filter holds while it waits for its end; a longer line cannot be
/// a usage chunk and passes as it is.
const LINE_LIMIT: usize = 64 * 1024;

/// Adds `stream_options.include_usage` to a request body held whole; whether it did. Refused
/// (nothing changes) when the body mentions `"stream_options"` already or has no opening
/// brace, or when its `Content-Length` is not a number.
pub(crate) fn inject(held: &mut HeldFrames, headers: &mut HeaderMap) -> bool {
    let frames = held.take_all();
    // Searched in the body joined, so a key split across frames is seen (the body is within
    // the read-ahead bound).
    let joined: Vec<u8> = frames
        .iter()
        .filter_map(Frame::data_ref)
        .flat_map(|d| d.iter().copied())
        .collect();
    let mentions = memchr::memmem::find(&joined, b"\"stream_options\"").is_some();
    // Where the first byte that is not white space is: it must be the object's brace.
    let brace = frames.iter().enumerate().find_map(|(i, f)| {
        let d = f.data_ref()?;
        d.iter()
            .position(|b| !b.is_ascii_whitespace())
            .map(|k| (i, k, d[k]))
    });
    let length = match headers.get(CONTENT_LENGTH) {
        None => Some(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some),
    };
    let (Some((at, k, b'{')), false, Some(length)) = (brace, mentions, length) else {
        held.restore(frames);
        return false;
    };
    let mut out = Vec::with_capacity(frames.len() + 2);
    for (i, frame) in frames.into_iter().enumerate() {
        if i != at {
            out.push(frame);
            continue;
        }
        let Ok(data) = frame.into_data() else {
            continue;
        };
        out.push(Frame::data(data.slice(..k + 1)));
        out.push(Frame::data(Bytes::from_static(INSERTED)));
        if data.len() > k + 1 {
            out.push(Frame::data(data.slice(k + 1..)));
        }
    }
    held.restore(out);
    if let Some(n) = length {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(n + INSERTED.len() as u64));
    }
    // The usage is taken back out of the stream as text: ask for it uncompressed (identity is
    // acceptable to every client unless it says `identity;q=0`, which none of the SDKs does).
    headers.insert(
        http::header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    true
}

/// Takes the usage the layer asked for back out of a chat completion stream.
#[derive(Default)]
pub(crate) struct UsageStripper {
    /// The start of a line whose end has not come yet.
    partial: BytesMut,
    /// The line being held is past the limit: it passes as it comes.
    passing: bool,
    /// A usage chunk's line was removed: its blank line goes too.
    skip_blank: bool,
    /// The body has ended and what was held has gone out.
    pub(crate) ended: bool,
    /// Trailers that came while a line was held: they go out after it.
    pub(crate) pending: Option<Frame<Bytes>>,
}

impl UsageStripper {
    /// The bytes the client gets for `frame`: the same `Bytes` when nothing in it is touched.
    pub(crate) fn filter(&mut self, frame: Bytes) -> Bytes {
        let mut out: Option<BytesMut> = None;
        let mut start = 0;
        let mut clean = self.partial.is_empty() && !self.skip_blank;
        while start < frame.len() {
            let Some(nl) = memchr::memchr(b'\n', &frame[start..]) else {
                if clean {
                    // The whole lines before this one were kept as they came.
                    out.get_or_insert_with(BytesMut::new)
                        .extend_from_slice(&frame[..start]);
                }
                // The rest is the start of a line: held until its end comes.
                let rest = &frame[start..];
                if self.passing || self.partial.len() + rest.len() > LINE_LIMIT {
                    self.passing = true;
                    let o = out.get_or_insert_with(BytesMut::new);
                    o.extend_from_slice(&self.partial.split());
                    o.extend_from_slice(rest);
                } else {
                    self.partial.extend_from_slice(rest);
                }
                clean = false;
                break;
            };
            let end = start + nl + 1;
            let whole = if self.partial.is_empty() {
                None
            } else {
                self.partial.extend_from_slice(&frame[start..end]);
                Some(self.partial.split().freeze())
            };
            let line: &[u8] = whole.as_deref().unwrap_or(&frame[start..end]);
            let kept = self.line(line);
            if self.passing {
                self.passing = false;
            }
            match kept {
                Kept::Same if whole.is_none() && clean => {}
                Kept::Same => {
                    clean = false;
                    out.get_or_insert_with(BytesMut::new).extend_from_slice(line);
                }
                Kept::Edited(edited) => {
                    if clean {
                        // Everything before this line was kept as it came.
                        out.get_or_insert_with(BytesMut::new)
                            .extend_from_slice(&frame[..start]);
                    }
                    clean = false;
                    out.get_or_insert_with(BytesMut::new).extend_from_slice(&edited);
                }
                Kept::Removed => {
                    if clean {
                        out.get_or_insert_with(BytesMut::new)
                            .extend_from_slice(&frame[..start]);
                    }
                    clean = false;
                }
            }
            start = end;
        }
        if clean {
            return frame;
        }
        out.map(BytesMut::freeze).unwrap_or_default()
    }

    /// What is still held when the body ends: a last line without its line break.
    pub(crate) fn finish(&mut self) -> Bytes {
        self.ended = true;
        self.take_held()
    }

    /// What is held, as it would end (trailers follow it).
    pub(crate) fn take_held(&mut self) -> Bytes {
        let rest = self.partial.split().freeze();
        match self.line(&rest) {
            Kept::Same => rest,
            Kept::Edited(edited) => Bytes::from(edited),
            Kept::Removed => Bytes::new(),
        }
    }

    /// Whether anything is held.
    pub(crate) fn is_holding(&self) -> bool {
        !self.partial.is_empty()
    }

    fn line(&mut self, line: &[u8]) -> Kept {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if self.skip_blank && body.is_empty() {
            self.skip_blank = false;
            return Kept::Removed;
        }
        self.skip_blank = false;
        let Some(data) = body.strip_prefix(b"data:") else {
            return Kept::Same;
        };
        let find = |needle: &[u8]| memchr::memmem::find(data, needle);
        // The chunk the layer asked for: no choices, the usage.
        if find(br#""choices":[]"#).is_some() && find(br#""usage":{"#).is_some() {
            self.skip_blank = true;
            return Kept::Removed;
        }
        // What every other chunk gained. Quotes inside strings are escaped, so these bytes are
        // the member itself.
        for (needle, len) in [(&br#","usage":null"#[..], 13), (&br#""usage":null,"#[..], 13)] {
            if let Some(at) = memchr::memmem::find(line, needle) {
                let mut edited = Vec::with_capacity(line.len() - len);
                edited.extend_from_slice(&line[..at]);
                edited.extend_from_slice(&line[at + len..]);
                return Kept::Edited(edited);
            }
        }
        Kept::Same
    }
}

enum Kept {
    Same,
    Edited(Vec<u8>),
    Removed,
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_USAGE: &str = concat!(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi \\\"usage\\\":null\"},\"index\":0}],\"id\":\"c\",\"usage\":null}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}],\"id\":\"c\",\"usage\":null}\n\n",
        "data: {\"choices\":[],\"id\":\"c\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );
    const WITHOUT: &str = concat!(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi \\\"usage\\\":null\"},\"index\":0}],\"id\":\"c\"}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}],\"id\":\"c\"}\n\n",
        "data: [DONE]\n\n",
    );

    fn strip(frames: &[&[u8]]) -> Vec<u8> {
        let mut s = UsageStripper::default();
        let mut out = Vec::new();
        for f in frames {
            out.extend_from_slice(&s.filter(Bytes::copy_from_slice(f)));
        }
        out.extend_from_slice(&s.finish());
        out
    }

    #[test]
    fn the_client_gets_the_stream_it_would_have_got_however_it_is_cut() {
        let whole = WITH_USAGE.as_bytes();
        assert_eq!(String::from_utf8(strip(&[whole])).unwrap(), WITHOUT);
        for at in 0..whole.len() {
            let (a, b) = whole.split_at(at);
            assert_eq!(strip(&[a, b]), WITHOUT.as_bytes(), "cut at {at}");
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(strip(&bytes), WITHOUT.as_bytes());
    }

    #[test]
    fn lines_with_nothing_to_take_out_are_never_lost_however_the_stream_is_cut() {
        // An upstream that adds no `"usage":null` to its chunks, and CRLF line ends.
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"B\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\ndata: [DONE]\n\n";
        let expected = "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"B\"}}]}\n\ndata: [DONE]\n\n";
        let whole = stream.as_bytes();
        for at in 0..whole.len() {
            for at2 in (at..whole.len()).step_by(7) {
                let out = strip(&[&whole[..at], &whole[at..at2], &whole[at2..]]);
                assert_eq!(String::from_utf8(out).unwrap(), expected, "cut at {at} and {at2}");
            }
        }
    }

    #[test]
    fn untouched_frames_are_the_same_bytes() {
        let mut s = UsageStripper::default();
        let frame = Bytes::from_static(b"data: [DONE]\n\n");
        assert_eq!(s.filter(frame.clone()).as_ptr(), frame.as_ptr());
    }

    #[test]
    fn the_request_gains_stream_options_and_its_length() {
        let body = br#"  {"model":"m","stream":true,"messages":[]}"#;
        let mut held = HeldFrames::default();
        held.push(Frame::data(Bytes::from_static(&body[..5])));
        held.push(Frame::data(Bytes::from_static(&body[5..])));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        assert!(inject(&mut held, &mut headers));
        let mut out = Vec::new();
        while let Some(f) = held.pop() {
            out.extend_from_slice(f.data_ref().unwrap());
        }
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(headers[CONTENT_LENGTH], (body.len() + INSERTED.len()).to_string());

        let mut held = HeldFrames::default();
        held.push(Frame::data(Bytes::from_static(
            br#"{"stream":true,"stream_options":{"include_obfuscation":false}}"#,
        )));
        assert!(
            !inject(&mut held, &mut HeaderMap::new()),
            "its own stream_options: left alone"
        );
        assert_eq!(held.bytes(), 62);
    }
}
