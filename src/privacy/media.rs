//! Media kept out of the log: base64 payloads (images, audio, files) in JSON bodies are
//! replaced, as they stream past, by a short placeholder that says what they were:
//! `[media image/png 1834522 bytes sha256:<hex>]` (the size is the decoded size, the digest is
//! of the base64 text as sent, so the same image correlates across records).
//!
//! The elider is a small JSON lexer that runs ahead of the family's reader. It looks at string
//! values of the keys that carry media in the providers' formats:
//!
//! - data URIs (`data:<type>;base64,...`) in `url` (Chat Completions `image_url`),
//!   `image_url` (Responses `input_image`) and `file_data` (files);
//! - plain base64 in `data` (`input_audio`, Anthropic `source`, Gemini `inline_data`, audio
//!   output), `bytes` (Bedrock Converse image, document and video `source`), `b64_json` (image
//!   generation), `result` (Responses image generation calls) and `partial_image_b64`;
//! - plain base64 in `blob` (MCP's embedded resources);
//! - the strings of an `images` list (Ollama's messages and generate requests).
//!
//! Such a string is held back until it is longer than the threshold
//! ([`LogConfigBuilder::media_inline_bytes`](crate::LogConfigBuilder::media_inline_bytes),
//! 1 KiB by default) and still looks like base64; from there on its bytes are hashed and
//! counted, never kept, so a 20 MB image in a JSON body costs neither memory nor cap. (A
//! stream's assembled completion goes through the elider once assembled, so there media has
//! taken its share of the cap; the built-in stream readers keep none.) A string that turns out
//! to be something else (a URL, prose) is passed on as it was. Everything else passes as
//! slices of the same frames. The type comes from the data URI, else from a sibling key
//! (`media_type`, `mime_type`, `mimeType`, `format`) seen before the data, else from the
//! payload's first bytes (PNG, JPEG, GIF, WebP, PDF, WAV, MP3), else it is left out.
//!
//! ```
//! use tower_llm_log::privacy::elide_media;
//!
//! let image = "iVBORw0KGgo".to_string() + &"A".repeat(4000);
//! let body = format!(r#"{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{image}"}}}}"#);
//! let (text, elided) = elide_media(body.as_bytes(), 1024);
//! let text = String::from_utf8(text).unwrap();
//! assert_eq!(elided, 1);
//! assert!(text.starts_with(r#"{"type":"image_url","image_url":{"url":"[media image/png 3008 bytes sha256:"#));
//! assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
//! ```

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

/// The default threshold: base64 payloads longer than this are elided.
pub const DEFAULT_MEDIA_INLINE_BYTES: usize = 1024;

/// The longest key (or type value) remembered; media keys and types are all shorter.
const SHORT: usize = 48;
/// How far into a data URI its `;base64,` may be.
const DATA_URI_PREFIX: usize = 256;

/// What a string value's key says it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Other,
    /// A data URI may be here.
    DataUri,
    /// Plain base64 may be here.
    Base64,
    /// A media type for a sibling payload.
    MediaType,
    /// A list of plain base64 strings may be here (Ollama's `images`).
    Base64List,
}

fn key_kind(key: &[u8]) -> KeyKind {
    match key {
        b"url" | b"image_url" | b"file_data" => KeyKind::DataUri,
        b"data" | b"bytes" | b"blob" | b"b64_json" | b"result" | b"partial_image_b64" => KeyKind::Base64,
        b"media_type" | b"mime_type" | b"mimeType" | b"format" => KeyKind::MediaType,
        b"images" => KeyKind::Base64List,
        _ => KeyKind::Other,
    }
}

/// Where the lexer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Outside strings.
    Between,
    /// A string just ended: a `:` next makes it a key.
    AfterString,
    /// After a key and `:`: a string next is that key's value.
    AfterColon,
    /// In a string that is not a candidate (`value_of` is the key it is the value of).
    Plain { value_of: KeyKind },
    /// In a candidate, held back until it is known to be media or not.
    Held { kind: KeyKind },
    /// In a payload being elided.
    Eliding,
    /// Inside a list of candidates (`"images": [`), between its strings.
    List,
}

/// A payload being hashed and counted.
struct Payload {
    hasher: Sha256,
    /// Base64 characters (`=` included) and how many were `=`.
    chars: u64,
    padding: u64,
    /// Bytes of the string as sent.
    raw: u64,
    media_type: Option<String>,
}

/// Replaces base64 payloads in a JSON body by placeholders as the body streams past; see the
/// module docs. Memory: the threshold (one held string) plus a few small buffers.
pub(crate) struct MediaElider {
    threshold: usize,
    lex: Lex,
    /// The previous byte of the current string was a backslash.
    escape: bool,
    /// The last string's first bytes (a key, if a `:` follows) and whether it fit unescaped.
    last: [u8; SHORT],
    last_len: usize,
    last_fits: bool,
    /// The media type a sibling key gave in the current object.
    media_type: [u8; SHORT],
    media_type_len: usize,
    held: BytesMut,
    /// Where a held data URI's comma is.
    comma: Option<usize>,
    payload: Option<Box<Payload>>,
    elided: u32,
    /// Bytes the placeholders saved: original strings' size minus the placeholders'.
    saved: u64,
    /// The current string is an element of a list of candidates.
    in_list: bool,
}

impl MediaElider {
    /// An elider for payloads longer than `threshold` bytes.
    pub(crate) fn new(threshold: usize) -> Self {
        MediaElider {
            threshold,
            lex: Lex::Between,
            escape: false,
            last: [0; SHORT],
            last_len: 0,
            last_fits: false,
            media_type: [0; SHORT],
            media_type_len: 0,
            in_list: false,
            held: BytesMut::new(),
            comma: None,
            payload: None,
            elided: 0,
            saved: 0,
        }
    }

    /// Payloads replaced so far.
    pub(crate) fn elided(&self) -> u32 {
        self.elided
    }

    /// How many bytes shorter the output is than the input.
    pub(crate) fn saved(&self) -> u64 {
        self.saved
    }

    /// The next frame of the body; what is to be read instead goes to `out`, in order.
    pub(crate) fn feed(&mut self, frame: &Bytes, out: &mut dyn FnMut(&Bytes)) {
        let buf = &frame[..];
        // Bytes from `pass` on (to where the scan is) pass through as a slice of the frame;
        // none while a candidate is held or a payload elided.
        let mut pass = match self.lex {
            Lex::Held { .. } | Lex::Eliding => None,
            _ => Some(0),
        };
        let mut i = 0;
        while i < buf.len() {
            match self.lex {
                Lex::Between => match memchr::memchr3(b'"', b'{', b'}', &buf[i..]) {
                    None => i = buf.len(),
                    Some(k) => {
                        let b = buf[i + k];
                        i += k + 1;
                        if b == b'"' {
                            self.begin_string(KeyKind::Other);
                        } else {
                            self.media_type_len = 0;
                        }
                    }
                },
                Lex::AfterString | Lex::AfterColon => {
                    let b = buf[i];
                    if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                        i += 1;
                        continue;
                    }
                    match (self.lex, b) {
                        (Lex::AfterString, b':') => {
                            self.lex = Lex::AfterColon;
                            i += 1;
                        }
                        (Lex::AfterColon, b'[')
                            if self.last_fits
                                && key_kind(&self.last[..self.last_len]) == KeyKind::Base64List =>
                        {
                            self.lex = Lex::List;
                            self.in_list = true;
                            i += 1;
                        }
                        (Lex::AfterColon, b'"') => {
                            let kind = match self.last_fits {
                                true => key_kind(&self.last[..self.last_len]),
                                false => KeyKind::Other,
                            };
                            let kind = if kind == KeyKind::Base64List {
                                KeyKind::Other
                            } else {
                                kind
                            };
                            i += 1;
                            self.begin_string(kind);
                            if matches!(self.lex, Lex::Held { .. }) {
                                if let Some(p) = pass.take() {
                                    emit(out, frame, p, i);
                                }
                            }
                        }
                        // Anything else is looked at again outside strings.
                        _ => self.lex = Lex::Between,
                    }
                }
                Lex::List => match buf[i] {
                    b' ' | b'\t' | b'\r' | b'\n' | b',' => i += 1,
                    b'"' => {
                        i += 1;
                        self.begin_string(KeyKind::Base64);
                        if let Some(p) = pass.take() {
                            emit(out, frame, p, i);
                        }
                    }
                    // `]`, or anything but strings: the list is over (looked at again outside).
                    _ => {
                        self.in_list = false;
                        self.lex = Lex::Between;
                    }
                },
                Lex::Plain { value_of } => i = self.plain(buf, i, value_of),
                Lex::Held { kind } => {
                    let (next, released) = self.held(buf, i, kind);
                    if released {
                        let held = Bytes::copy_from_slice(&self.held);
                        self.held.clear();
                        out(&held);
                        pass = Some(next);
                    }
                    i = next;
                    if self.lex == Lex::AfterString {
                        // The candidate ended short: it was held in full, the quote passes on.
                        let held = Bytes::copy_from_slice(&self.held);
                        self.held.clear();
                        out(&held);
                        pass = Some(i - 1);
                        if self.in_list {
                            self.lex = Lex::List;
                        }
                    }
                }
                Lex::Eliding => {
                    i = self.eliding(buf, i);
                    if self.lex == Lex::AfterString {
                        let placeholder = self.placeholder();
                        out(&placeholder);
                        pass = Some(i - 1);
                        if self.in_list {
                            self.lex = Lex::List;
                        }
                    }
                }
            }
        }
        if let Some(p) = pass {
            emit(out, frame, p, buf.len());
        }
    }

    /// The body ended (or stopped): what is still held goes out; a payload cut short is
    /// replaced all the same.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(&Bytes)) {
        match self.lex {
            Lex::Held { .. } => {
                let held = Bytes::copy_from_slice(&self.held);
                self.held.clear();
                out(&held);
            }
            Lex::Eliding => {
                let placeholder = self.placeholder();
                out(&placeholder);
            }
            _ => {}
        }
        self.lex = Lex::Between;
    }

    fn begin_string(&mut self, kind: KeyKind) {
        self.escape = false;
        self.last_len = 0;
        self.last_fits = true;
        self.comma = None;
        self.lex = match kind {
            KeyKind::DataUri | KeyKind::Base64 => Lex::Held { kind },
            _ => Lex::Plain { value_of: kind },
        };
    }

    /// Scans a plain string from `i`, remembering its first bytes; returns where it stopped.
    fn plain(&mut self, buf: &[u8], mut i: usize, value_of: KeyKind) -> usize {
        while i < buf.len() {
            if self.escape {
                self.escape = false;
                i += 1;
                continue;
            }
            match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                None => {
                    self.remember(&buf[i..]);
                    return buf.len();
                }
                Some(k) if buf[i + k] == b'\\' => {
                    self.remember(&buf[i..i + k]);
                    self.last_fits = false;
                    self.escape = true;
                    i += k + 1;
                }
                Some(k) => {
                    self.remember(&buf[i..i + k]);
                    if value_of == KeyKind::MediaType && self.last_fits {
                        self.media_type[..self.last_len].copy_from_slice(&self.last[..self.last_len]);
                        self.media_type_len = self.last_len;
                    }
                    self.lex = Lex::AfterString;
                    return i + k + 1;
                }
            }
        }
        i
    }

    fn remember(&mut self, bytes: &[u8]) {
        if !self.last_fits {
            return;
        }
        let end = self.last_len + bytes.len();
        if end > SHORT {
            self.last_fits = false;
        } else {
            self.last[self.last_len..end].copy_from_slice(bytes);
            self.last_len = end;
        }
    }

    /// Holds a candidate's bytes from `i` while they can still be media; returns where it
    /// stopped and whether the candidate was released (it is not media: what was held goes
    /// out, and the string goes on as a plain one from there).
    fn held(&mut self, buf: &[u8], mut p: usize, kind: KeyKind) -> (usize, bool) {
        while p < buf.len() {
            let b = buf[p];
            if self.escape {
                self.escape = false;
                // Inside base64 only `\/` (and line breaks) are escapes an encoder writes.
                if !matches!(b, b'/' | b'n' | b'r') {
                    // The plain string must still skip this escaped byte.
                    self.escape = true;
                    return self.release(p);
                }
            } else if b == b'"' {
                self.lex = Lex::AfterString;
                return (p + 1, false);
            } else if b == b'\\' {
                // An escape never starts a data URI (`data:` comes first).
                if kind == KeyKind::DataUri && self.held.len() < 5 {
                    return self.release(p);
                }
                self.escape = true;
            } else if !self.may_continue(kind, b) {
                return self.release(p);
            }
            // A data URI's prefix is short, escaped or not: what is held stays bounded.
            if kind == KeyKind::DataUri && self.comma.is_none() && self.held.len() >= DATA_URI_PREFIX {
                self.escape = false;
                return self.release(p);
            }
            self.held.extend_from_slice(&[b]);
            p += 1;
            let decided = kind != KeyKind::DataUri || self.comma.is_some();
            if self.held.len() > self.threshold && decided && !self.escape {
                if self.looks_like_media(kind) {
                    self.start_payload(kind);
                    return (p, false);
                }
                return self.release(p);
            }
        }
        (p, false)
    }

    /// The candidate is not media: what is held goes out (by the caller), and the string goes
    /// on as a plain one from `p`.
    fn release(&mut self, p: usize) -> (usize, bool) {
        self.last_fits = false;
        self.lex = Lex::Plain {
            value_of: KeyKind::Other,
        };
        (p, true)
    }

    /// Whether byte `b`, next in a candidate, keeps it a possible payload.
    fn may_continue(&mut self, kind: KeyKind, b: u8) -> bool {
        let at = self.held.len();
        match (kind, self.comma) {
            // A data URI's prefix: `data:` first, then a type and parameters up to a comma.
            (KeyKind::DataUri, None) if at < 5 => b.eq_ignore_ascii_case(&b"data:"[at]),
            (KeyKind::DataUri, None) if b == b',' => {
                self.comma = Some(at);
                true
            }
            (KeyKind::DataUri, None) => at < DATA_URI_PREFIX && b.is_ascii_graphic(),
            _ => is_base64(b),
        }
    }

    /// Whether what is held (more than the threshold) is a payload worth eliding.
    fn looks_like_media(&self, kind: KeyKind) -> bool {
        match kind {
            KeyKind::DataUri => data_uri_payload(&self.held).is_some(),
            _ => true,
        }
    }

    fn start_payload(&mut self, kind: KeyKind) {
        let (media_type, start) = match kind {
            KeyKind::DataUri => match data_uri_payload(&self.held) {
                Some((media_type, start)) => (media_type, start),
                None => (None, 0),
            },
            _ => (None, 0),
        };
        let media_type = media_type
            .or_else(|| {
                let given = &self.media_type[..self.media_type_len];
                (!given.is_empty()).then(|| media_type_named(given)).flatten()
            })
            .or_else(|| {
                let head: Vec<u8> = unescaped(&self.held[start..])
                    .flatten()
                    .copied()
                    .take(16)
                    .collect();
                sniff(&head).map(str::to_string)
            });
        let mut payload = Box::new(Payload {
            hasher: Sha256::new(),
            chars: 0,
            padding: 0,
            raw: self.held.len() as u64,
            media_type,
        });
        for run in unescaped(&self.held[start..]) {
            add_base64(&mut payload, run);
        }
        self.payload = Some(payload);
        self.held.clear();
        // Memory back: the next candidate allocates again only if it comes.
        if self.held.capacity() > 4 * DEFAULT_MEDIA_INLINE_BYTES {
            self.held = BytesMut::new();
        }
        self.lex = Lex::Eliding;
    }

    /// Hashes and counts a payload's bytes from `i`; returns where it stopped.
    fn eliding(&mut self, buf: &[u8], mut i: usize) -> usize {
        let Some(payload) = self.payload.as_mut() else {
            self.lex = Lex::Between;
            return i;
        };
        let start = i;
        while i < buf.len() {
            if self.escape {
                self.escape = false;
                if buf[i] == b'/' {
                    add_base64(payload, b"/");
                }
                i += 1;
                continue;
            }
            match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                None => {
                    add_base64(payload, &buf[i..]);
                    i = buf.len();
                }
                Some(k) => {
                    add_base64(payload, &buf[i..i + k]);
                    if buf[i + k] == b'\\' {
                        self.escape = true;
                        i += k + 1;
                    } else {
                        payload.raw += (i + k - start) as u64;
                        self.lex = Lex::AfterString;
                        return i + k + 1;
                    }
                }
            }
        }
        payload.raw += (i - start) as u64;
        i
    }

    /// The placeholder for the payload just ended (or cut short).
    fn placeholder(&mut self) -> Bytes {
        let Some(payload) = self.payload.take() else {
            return Bytes::new();
        };
        let digest = payload.hasher.finalize();
        let decoded = (payload.chars - payload.padding) * 3 / 4;
        let mut text = String::with_capacity(120);
        text.push_str("[media ");
        if let Some(t) = &payload.media_type {
            text.push_str(t);
            text.push(' ');
        }
        let _ = write!(text, "{decoded} bytes sha256:");
        for b in digest {
            let _ = write!(text, "{b:02x}");
        }
        text.push(']');
        self.elided += 1;
        self.saved += payload.raw.saturating_sub(text.len() as u64);
        Bytes::from(text)
    }
}

fn emit(out: &mut dyn FnMut(&Bytes), frame: &Bytes, from: usize, to: usize) {
    if to > from {
        out(&frame.slice(from..to));
    }
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
}

/// The runs of a held payload's text with its escapes resolved (`\/` is `/`, line breaks go).
fn unescaped(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match memchr::memchr(b'\\', rest) {
            None => Some(std::mem::take(&mut rest)),
            Some(0) => {
                let slash = rest.get(1) == Some(&b'/');
                rest = &rest[2.min(rest.len())..];
                Some(if slash { &b"/"[..] } else { &b""[..] })
            }
            Some(k) => {
                let run = &rest[..k];
                rest = &rest[k..];
                Some(run)
            }
        }
    })
}

/// Feeds base64 text (no escapes) to the payload's digest and counts.
fn add_base64(payload: &mut Payload, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    payload.hasher.update(bytes);
    payload.chars += bytes.len() as u64;
    payload.padding += memchr::memchr_iter(b'=', bytes).count() as u64;
}

/// A data URI's media type (if it names a plausible one) and where its base64 starts, once
/// its `;base64,` has been seen.
fn data_uri_payload(held: &[u8]) -> Option<(Option<String>, usize)> {
    let comma = held.iter().take(DATA_URI_PREFIX).position(|&c| c == b',')?;
    let head = &held[..comma];
    if head.len() < 12 || !head[..5].eq_ignore_ascii_case(b"data:") || !head.ends_with(b";base64") {
        return None;
    }
    let media_type = head[5..].split(|&c| c == b';').next().and_then(media_type_named);
    Some((media_type, comma + 1))
}

/// A media type as written (`image/png`), or an audio format (`wav`); only plain names.
fn media_type_named(given: &[u8]) -> Option<String> {
    let plain = !given.is_empty()
        && given.len() <= SHORT
        && given
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'+' | b'-'));
    if !plain {
        return None;
    }
    let name = String::from_utf8_lossy(given).to_ascii_lowercase();
    Some(match name.contains('/') {
        true => name,
        false => format!("audio/{name}"),
    })
}

/// The type of a payload from its first bytes, for the common formats.
fn sniff(base64: &[u8]) -> Option<&'static str> {
    let head = decode_head(base64);
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"\x89PNG") {
        Some("image/png")
    } else if starts(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if starts(b"GIF8") {
        Some("image/gif")
    } else if starts(b"%PDF") {
        Some("application/pdf")
    } else if starts(b"ID3") {
        Some("audio/mpeg")
    } else if starts(b"RIFF") && head.len() >= 12 && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if starts(b"RIFF") && head.len() >= 12 && &head[8..12] == b"WAVE" {
        Some("audio/wav")
    } else {
        None
    }
}

/// The first 12 bytes a base64 text decodes to (fewer if it is shorter or not base64).
fn decode_head(base64: &[u8]) -> Vec<u8> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(12);
    for quad in base64.chunks_exact(4).take(4) {
        let mut n = 0u32;
        for &c in quad {
            match value(c) {
                Some(v) => n = (n << 6) | v,
                None => return out,
            }
        }
        out.extend_from_slice(&n.to_be_bytes()[1..]);
    }
    out
}

/// Replaces the base64 payloads longer than `threshold` bytes in one JSON text (see the
/// module docs); the text and how many were replaced.
pub fn elide_media(text: &[u8], threshold: usize) -> (Vec<u8>, u32) {
    let mut elider = MediaElider::new(threshold);
    let mut out = Vec::with_capacity(text.len().min(1 << 20));
    let frame = Bytes::copy_from_slice(text);
    elider.feed(&frame, &mut |b| out.extend_from_slice(b));
    elider.finish(&mut |b| out.extend_from_slice(b));
    (out, elider.elided())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(frames: &[&[u8]], threshold: usize) -> (String, u32, u64) {
        let mut elider = MediaElider::new(threshold);
        let mut out = Vec::new();
        for f in frames {
            elider.feed(&Bytes::copy_from_slice(f), &mut |b| out.extend_from_slice(b));
        }
        elider.finish(&mut |b| out.extend_from_slice(b));
        (String::from_utf8(out).unwrap(), elider.elided(), elider.saved())
    }

    fn png(len: usize) -> String {
        let mut s = "iVBORw0KGgo".to_string();
        while s.len() < len {
            s.push_str("QUJD");
        }
        s.truncate(len);
        s
    }

    #[test]
    fn every_split_gives_the_same_text() {
        let body = format!(
            r#"{{"messages":[{{"role":"user","content":[{{"type":"text","text":"data: see url"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{}"}}}},{{"type":"input_audio","input_audio":{{"data":"{}","format":"wav"}}}}]}}],"x":"{}"}}"#,
            png(300),
            png(10),
            png(400)
        );
        let (whole, n, _) = run(&[body.as_bytes()], 64);
        assert_eq!(n, 1, "{whole}");
        assert!(
            whole.contains(r#""url":"[media image/png 225 bytes sha256:"#),
            "{whole}"
        );
        assert!(whole.contains(&format!(r#""data":"{}""#, png(10))), "{whole}");
        // Not under a media key: left alone.
        assert!(whole.contains(&png(400)));
        for at in 0..body.len() {
            let (a, b) = body.as_bytes().split_at(at);
            assert_eq!(run(&[a, b], 64).0, whole, "split at {at}");
        }
        let bytes: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        assert_eq!(run(&bytes, 64).0, whole);
    }

    #[test]
    fn urls_and_prose_under_media_keys_pass_unchanged() {
        for body in [
            r#"{"url":"https://example.com/a.png?x=1"}"#,
            r#"{"data":"hello world, this is not base64 at all but it is long enough to pass the threshold"}"#,
            r#"{"image_url":"data:text/plain,hello there this is a data uri that is not base64 at all"}"#,
            r#"{"data":{"nested":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
            r#"{"data":"AAAA\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
        ] {
            let (out, n, saved) = run(&[body.as_bytes()], 16);
            assert_eq!((out.as_str(), n, saved), (body, 0, 0));
        }
    }

    #[test]
    fn anthropic_gemini_and_escaped_slashes() {
        let b64 = png(2000).replace('Q', "/");
        let escaped = b64.replace('/', "\\/");
        let body = format!(
            r#"[{{"type":"image","source":{{"type":"base64","media_type":"image/jpeg","data":"{escaped}"}}}},{{"inline_data":{{"mime_type":"application/pdf","data":"{b64}"}}}}]"#
        );
        let (out, n, _) = run(&[body.as_bytes()], 1024);
        assert_eq!(n, 2, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let first = v[0]["source"]["data"].as_str().unwrap();
        let second = v[1]["inline_data"]["data"].as_str().unwrap();
        assert!(
            first.starts_with("[media image/jpeg 1500 bytes sha256:"),
            "{first}"
        );
        assert!(
            second.starts_with("[media application/pdf 1500 bytes sha256:"),
            "{second}"
        );
        // The same base64, escaped or not, has the same digest.
        assert_eq!(first.split("sha256:").nth(1), second.split("sha256:").nth(1));
    }

    #[test]
    fn ollama_image_lists_are_elided_however_split() {
        let body = format!(
            r#"{{"model":"llava","messages":[{{"role":"user","content":"what is this?","images":[ "{}" , "short", "{}"]}}],"images":"not a list"}}"#,
            png(5000),
            png(3000)
        );
        let (whole, n, _) = run(&[body.as_bytes()], 1024);
        assert_eq!(n, 2, "{whole}");
        let v: serde_json::Value = serde_json::from_str(&whole).unwrap();
        let images = &v["messages"][0]["images"];
        assert!(images[0]
            .as_str()
            .unwrap()
            .starts_with("[media image/png 3750 bytes sha256:"));
        assert_eq!(images[1], "short");
        assert!(images[2]
            .as_str()
            .unwrap()
            .starts_with("[media image/png 2250 bytes"));
        assert_eq!(v["messages"][0]["content"], "what is this?");
        for cut in (1..body.len()).step_by(97) {
            let (out, _, _) = run(&[&body.as_bytes()[..cut], &body.as_bytes()[cut..]], 1024);
            assert_eq!(out, whole, "cut at {cut}");
        }
    }

    #[test]
    fn bedrock_image_bytes_are_elided() {
        let bedrock = format!(
            r#"{{"messages":[{{"role":"user","content":[{{"image":{{"format":"png","source":{{"bytes":"{}"}}}}}}]}}]}}"#,
            png(5000)
        );
        let (out, n, _) = run(&[bedrock.as_bytes()], 1024);
        assert_eq!(n, 1, "Bedrock's image bytes");
        assert!(
            out.contains(r#""bytes":"[media image/png 3750 bytes sha256:"#),
            "{out}"
        );
    }

    #[test]
    fn a_body_cut_inside_a_payload_still_hides_it() {
        let body = format!(r#"{{"b64_json":"{}"#, png(5000));
        let (out, n, _) = run(&[body.as_bytes()], 1024);
        assert_eq!(n, 1);
        assert!(
            out.starts_with(r#"{"b64_json":"[media image/png 3750 bytes sha256:"#),
            "{out}"
        );
        assert!(!out.contains("QUJD"));
    }

    #[test]
    fn escapes_cannot_make_it_hold_more_than_a_prefix() {
        let slashes = "\\/".repeat(100_000);
        for body in [
            format!(r#"{{"url":"data:{slashes}"}}"#),
            format!(r#"{{"url":"{slashes}"}}"#),
        ] {
            let mut elider = MediaElider::new(1024);
            let mut out = Vec::new();
            let frames: Vec<Bytes> = body.as_bytes().chunks(4096).map(Bytes::copy_from_slice).collect();
            let mut most_held = 0;
            for f in &frames {
                elider.feed(f, &mut |b| out.extend_from_slice(b));
                most_held = most_held.max(elider.held.capacity());
            }
            elider.finish(&mut |b| out.extend_from_slice(b));
            assert_eq!(out, body.as_bytes());
            assert!(most_held <= 4 * DATA_URI_PREFIX, "{most_held}");
        }
    }

    #[test]
    fn the_threshold_itself_is_kept_inline() {
        let at = format!(r#"{{"data":"{}"}}"#, png(1024));
        assert_eq!(run(&[at.as_bytes()], 1024).1, 0);
        let over = format!(r#"{{"data":"{}"}}"#, png(1025));
        assert_eq!(run(&[over.as_bytes()], 1024).1, 1);
    }

    #[test]
    fn sniffs_common_types() {
        assert_eq!(sniff(b"/9j/4AAQSkZJRg"), Some("image/jpeg"));
        assert_eq!(sniff(b"R0lGODlhAQAB"), Some("image/gif"));
        assert_eq!(sniff(b"JVBERi0xLjQK"), Some("application/pdf"));
        assert_eq!(sniff(b"UklGRiQAAABXQVZFZm10"), Some("audio/wav"));
        assert_eq!(sniff(b"UklGRiQAAABXRUJQVlA4"), Some("image/webp"));
        assert_eq!(sniff(b"AAAA"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// JSON documents with media keys, escapes, base64 and prose in their strings.
    fn document() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "url",
            "image_url",
            "data",
            "b64_json",
            "text",
            "media_type",
            "format",
            "k\\u0065y",
        ]);
        let piece = prop::sample::select(vec![
            "data:image/png;base64,",
            "iVBORw0KGgo",
            "QUJD",
            "\\/",
            "\\\"",
            "\\\\",
            "\\u00e9",
            "\\n",
            " ",
            "hello",
            "+/=",
            "data:",
        ]);
        let value = prop::collection::vec(piece, 0..80).prop_map(|p| p.concat());
        prop::collection::vec((key, value), 1..6).prop_map(|members| {
            let inner: Vec<String> = members
                .iter()
                .map(|(k, v)| format!(r#"{{"{k}":"{v}"}}"#))
                .collect();
            format!(r#"{{"messages":[{}],"n":1}}"#, inner.join(","))
        })
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_valid_json(doc in document(), cuts in prop::collection::vec(0usize..4000, 0..8), threshold in 0usize..64) {
            prop_assume!(serde_json::from_str::<serde_json::Value>(&doc).is_ok());
            let whole = elide_media(doc.as_bytes(), threshold).0;
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (doc.len() + 1)).collect();
            cuts.sort_unstable();
            let mut elider = MediaElider::new(threshold);
            let mut out = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([doc.len()]) {
                elider.feed(&Bytes::copy_from_slice(&doc.as_bytes()[at..cut]), &mut |b| out.extend_from_slice(b));
                at = cut;
            }
            elider.finish(&mut |b| out.extend_from_slice(b));
            prop_assert_eq!(&out, &whole);
            let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&out);
            prop_assert!(parsed.is_ok(), "{}", String::from_utf8_lossy(&out));
        }
    }
}
