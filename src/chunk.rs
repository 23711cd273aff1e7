//! The chunker: cuts a logged message into chunks of at most `chunk_bytes`, never inside a
//! UTF-8 character.
//!
//! A chunk that lies within one retained segment is a slice of it (no copy); only a chunk that
//! spans segments is copied, once. A message cut at the cap loses any partial character at its
//! end. Bytes that are not valid UTF-8 are replaced with U+FFFD (the record's `error` says so),
//! so every chunk is valid UTF-8 text.
//!
//! ```
//! use bytes::Bytes;
//! use tower_llm_log::chunk::chunk_message;
//!
//! let message = Bytes::from("h\u{e9}llo w\u{f6}rld");
//! let chunked = chunk_message(&[message], 4);
//! let texts: Vec<&str> = chunked.chunks.iter().map(|c| std::str::from_utf8(c).unwrap()).collect();
//! assert_eq!(texts, ["h\u{e9}l", "lo w", "\u{f6}rl", "d"]);
//! assert_eq!(texts.concat(), "h\u{e9}llo w\u{f6}rld");
//! ```

use bytes::{Bytes, BytesMut};

use crate::capture::LoggedMessage;

/// A message cut into chunks.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ChunkedMessage {
    /// The chunks, in order; their concatenation is the logged message. Empty for an empty
    /// message.
    pub chunks: Vec<Bytes>,
    /// Bytes copied to build the chunks (0 when every chunk lies within one segment).
    pub copied_bytes: usize,
    /// Whether bytes were dropped: a partial character at the end, or invalid UTF-8 replaced.
    pub cut: bool,
    /// Where the first invalid UTF-8 byte was, if any.
    pub invalid_utf8_at: Option<usize>,
}

/// Cuts the concatenation of `segments` into chunks of at most `chunk_bytes` (a single
/// character longer than `chunk_bytes` makes its chunk longer), at character boundaries.
/// A partial character at the very end is dropped, as it is when a message is cut at a cap.
pub fn chunk_message(segments: &[Bytes], chunk_bytes: usize) -> ChunkedMessage {
    chunk_within(segments, chunk_bytes, usize::MAX)
}

/// As [`chunk_message`]; when invalid UTF-8 is replaced (which can lengthen the text), the text
/// is kept to at most `limit` bytes.
fn chunk_within(segments: &[Bytes], chunk_bytes: usize, limit: usize) -> ChunkedMessage {
    let rope = Rope::new(segments);
    let len = complete_prefix_len(&rope);
    let mut out = rope.cut(len, chunk_bytes.max(1));
    out.cut = len < rope.len;
    if let Some(at) = rope.first_invalid(len) {
        // Rare: replace invalid sequences so every chunk is text. The bytes are copied once more.
        let mut all = Vec::with_capacity(len);
        for c in &out.chunks {
            all.extend_from_slice(c);
        }
        let text = String::from_utf8_lossy(&all).into_owned();
        let fixed = [Bytes::from(text)];
        let fixed_rope = Rope::new(&fixed);
        let keep = floor_char_boundary(&fixed_rope, limit.min(fixed_rope.len));
        let mut redone = fixed_rope.cut(keep, chunk_bytes.max(1));
        redone.copied_bytes += out.copied_bytes + all.len();
        // Cut only if the cap was reached: replacing is said apart (`invalid_utf8_at`).
        redone.cut = out.cut || keep < fixed_rope.len;
        redone.invalid_utf8_at = Some(at);
        return redone;
    }
    out
}

/// Chunks a captured message: the chunks, and whether anything was left out.
pub(crate) fn chunk_captured(captured: &LoggedMessage, chunk_bytes: usize, limit: usize) -> ChunkedMessage {
    let mut out = chunk_within(&captured.segments, chunk_bytes, limit);
    out.cut |= captured.truncated;
    out
}

/// Read access to a sequence of segments as one byte string.
struct Rope<'a> {
    segments: &'a [Bytes],
    /// Where each segment starts; empty for a message in one segment (the usual case: no
    /// allocation for it).
    starts: Vec<usize>,
    len: usize,
}

impl<'a> Rope<'a> {
    fn new(segments: &'a [Bytes]) -> Self {
        let mut starts = Vec::new();
        let mut len = 0;
        if segments.len() > 1 {
            starts.reserve_exact(segments.len());
            for s in segments {
                starts.push(len);
                len += s.len();
            }
        } else {
            len = segments.first().map_or(0, Bytes::len);
        }
        Rope {
            segments,
            starts,
            len,
        }
    }

    fn segment_of(&self, pos: usize) -> usize {
        match self.starts.is_empty() {
            true => 0,
            false => self.starts.partition_point(|&s| s <= pos) - 1,
        }
    }

    fn start_of(&self, segment: usize) -> usize {
        self.starts.get(segment).copied().unwrap_or(0)
    }

    fn byte(&self, pos: usize) -> u8 {
        let i = self.segment_of(pos);
        self.segments[i][pos - self.start_of(i)]
    }

    /// Bytes `[a, b)`, sliced when in one segment, else copied.
    fn slice(&self, a: usize, b: usize, copied: &mut usize) -> Bytes {
        let i = self.segment_of(a);
        let seg_start = self.start_of(i);
        let seg = &self.segments[i];
        if b <= seg_start + seg.len() {
            return seg.slice(a - seg_start..b - seg_start);
        }
        let mut buf = BytesMut::with_capacity(b - a);
        let mut pos = a;
        let mut j = i;
        while pos < b {
            let s = &self.segments[j];
            let from = pos - self.start_of(j);
            let to = (b - self.start_of(j)).min(s.len());
            buf.extend_from_slice(&s[from..to]);
            pos += to - from;
            j += 1;
        }
        *copied += b - a;
        buf.freeze()
    }

    /// Chunks of the first `len` bytes.
    fn cut(&self, len: usize, chunk_bytes: usize) -> ChunkedMessage {
        let mut out = ChunkedMessage::default();
        let mut start = 0;
        while start < len {
            let mut end = (start + chunk_bytes).min(len);
            if end < len {
                end = self.boundary_near(start, end, len);
            }
            out.chunks.push(self.slice(start, end, &mut out.copied_bytes));
            start = end;
        }
        out
    }

    /// A cut point for a chunk starting at `start` and wanting to end at `end`: moved back to the
    /// start of the character `end` falls in, or forward past it when that character begins the
    /// chunk.
    fn boundary_near(&self, start: usize, end: usize, len: usize) -> usize {
        let mut p = end;
        while p > start && end - p < 3 && is_continuation(self.byte(p)) {
            p -= 1;
        }
        if is_continuation(self.byte(p)) {
            return end; // not UTF-8 here; the caller replaces invalid bytes
        }
        if p > start {
            return p;
        }
        let mut q = end;
        while q < len && q - end < 3 && is_continuation(self.byte(q)) {
            q += 1;
        }
        q
    }

    /// The offset of the first invalid UTF-8 byte within the first `len` bytes.
    fn first_invalid(&self, len: usize) -> Option<usize> {
        // Validate segment by segment, carrying a character split across segments.
        let mut carry: Vec<u8> = Vec::new();
        let mut offset = 0;
        for seg in self.segments {
            if offset >= len {
                break;
            }
            let seg = &seg[..seg.len().min(len - offset)];
            let mut body: &[u8] = seg;
            if !carry.is_empty() {
                let need = utf8_len(carry[0]).saturating_sub(carry.len());
                let take = need.min(seg.len());
                carry.extend_from_slice(&seg[..take]);
                body = &seg[take..];
                if carry.len() < utf8_len(carry[0]) {
                    offset += seg.len();
                    continue;
                }
                if simdutf8::basic::from_utf8(&carry).is_err() {
                    return Some(offset - (carry.len() - take));
                }
                carry.clear();
            }
            let body_start = offset + (seg.len() - body.len());
            match simdutf8::compat::from_utf8(body) {
                Ok(_) => {}
                Err(e) if e.error_len().is_none() => carry.extend_from_slice(&body[e.valid_up_to()..]),
                Err(e) => return Some(body_start + e.valid_up_to()),
            }
            offset += seg.len();
        }
        if carry.is_empty() {
            None
        } else {
            Some(len - carry.len())
        }
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// The length of the longest prefix that does not end inside a character.
fn complete_prefix_len(rope: &Rope<'_>) -> usize {
    let len = rope.len;
    let lowest = len.saturating_sub(4);
    let mut i = len;
    while i > lowest {
        i -= 1;
        let b = rope.byte(i);
        if !is_continuation(b) {
            return if i + utf8_len(b) > len { i } else { len };
        }
    }
    len
}

fn floor_char_boundary(rope: &Rope<'_>, len: usize) -> usize {
    let mut p = len;
    while p > 0 && p < rope.len && is_continuation(rope.byte(p)) {
        p -= 1;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(m: &ChunkedMessage) -> Vec<String> {
        m.chunks
            .iter()
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn single_segment_chunks_are_slices() {
        let msg = Bytes::from("x".repeat(100_000));
        let out = chunk_message(std::slice::from_ref(&msg), 32_768);
        assert_eq!(
            out.chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [32_768, 32_768, 32_768, 1696]
        );
        assert_eq!(out.copied_bytes, 0);
        assert_eq!(out.chunks[1].as_ptr() as usize, msg.as_ptr() as usize + 32_768);
    }

    #[test]
    fn spanning_chunks_are_copied_once() {
        let segs = [Bytes::from("abc"), Bytes::from("def"), Bytes::from("g")];
        let out = chunk_message(&segs, 4);
        assert_eq!(texts(&out), ["abcd", "efg"]);
        assert_eq!(out.copied_bytes, 7);
    }

    #[test]
    fn characters_are_never_split() {
        // 4-byte characters with chunks of 5 bytes: each chunk holds exactly one.
        let msg = Bytes::from("\u{1F600}".repeat(10));
        let out = chunk_message(&[msg], 5);
        assert_eq!(out.chunks.len(), 10);
        assert!(texts(&out).iter().all(|t| t == "\u{1F600}"));
        // A chunk size smaller than a character: the chunk holds the whole character.
        let out = chunk_message(&[Bytes::from("\u{e9}\u{e9}")], 1);
        assert_eq!(texts(&out), ["\u{e9}", "\u{e9}"]);
    }

    #[test]
    fn a_partial_character_at_the_end_is_dropped() {
        let full = "ab\u{20AC}".as_bytes(); // 2 + 3 bytes
        let out = chunk_message(&[Bytes::copy_from_slice(&full[..4])], 10);
        assert_eq!(texts(&out), ["ab"]);
        assert!(out.cut);
        assert_eq!(out.invalid_utf8_at, None);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_reported() {
        let segs = [
            Bytes::from_static(b"ok \xff\xfe then"),
            Bytes::from_static(b" more"),
        ];
        let out = chunk_message(&segs, 4);
        assert_eq!(out.invalid_utf8_at, Some(3));
        assert!(!out.cut, "replacing bad bytes is not cutting the message");
        assert_eq!(texts(&out).concat(), "ok \u{FFFD}\u{FFFD} then more");
        let capped = chunk_within(&segs, 4, 8);
        assert_eq!(texts(&capped).concat(), "ok \u{FFFD}");
        assert!(capped.cut, "the replacement made it longer than the cap: cut");
    }

    #[test]
    fn a_character_split_across_segments_is_valid() {
        let s = "\u{e9}t\u{e9}".as_bytes();
        let segs = [Bytes::copy_from_slice(&s[..1]), Bytes::copy_from_slice(&s[1..])];
        let out = chunk_message(&segs, 2);
        assert_eq!(out.invalid_utf8_at, None);
        assert_eq!(texts(&out).concat(), "\u{e9}t\u{e9}");
    }

    #[test]
    fn empty_message_has_no_chunks() {
        let out = chunk_message(&[], 10);
        assert!(out.chunks.is_empty());
        assert!(!out.cut);
    }
}
