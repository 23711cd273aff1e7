//! The size limiter: retains the bytes of a message as they pass, up to a cap.
//!
//! What it holds stays within the cap plus a small constant whatever the framing, counting the
//! buffers its slices pin and its own bookkeeping:
//!
//! - A slice that is nearly all of its frame (at most [`ZERO_COPY_SLACK`] bytes of the frame
//!   beyond it) is kept without copying when it is large ([`ZERO_COPY_MIN`] bytes or more), or
//!   when it is the first small slice of the message (so a request that came in one small frame
//!   costs no copy): it shares the frame's memory and pins little beyond itself.
//! - Everything else (the many small frames of a body sent a byte at a time, small slices of
//!   large frames) is copied into blocks that grow to [`COPY_BLOCK`] bytes, never past what the
//!   cap still allows: such a body costs its cap, not a million one-byte slices each pinning a
//!   read buffer.
//!
//! Each retained byte is copied at most once.
//!
//! Readers of an API family of one's own ([`LlmApi`](crate::api::LlmApi)) use it to keep their
//! logged message within the cap:
//!
//! ```
//! use bytes::Bytes;
//! use tower_llm_log::api::MessageCapture;
//!
//! let mut capture = MessageCapture::new(4);
//! capture.push_all(&Bytes::from_static(b"hello"));
//! let message = capture.finish();
//! assert_eq!(message.to_bytes(), Bytes::from_static(b"hell"));
//! assert_eq!((message.total(), message.is_truncated()), (5, true));
//! ```

use bytes::{Bytes, BytesMut};

/// A slice at least this large is kept without copying (if it is nearly all of its frame).
pub(crate) const ZERO_COPY_MIN: usize = 4096;
/// How many bytes of a frame beyond a slice kept without copying may be pinned with it. Only a
/// message's first and last frames are cut, so this is paid at most twice per message.
pub(crate) const ZERO_COPY_SLACK: usize = 4096;
/// How many small slices a message keeps without copying before it copies them: the first,
/// so that a message in one small frame costs no copy.
const SMALL_ZERO_COPY: u8 = 1;
/// The largest block small pieces are copied into; blocks start at [`FIRST_BLOCK`] and double.
pub(crate) const COPY_BLOCK: usize = 16 * 1024;
const FIRST_BLOCK: usize = 256;

/// A message's kept pieces: most messages are one piece, held without an allocation.
pub(crate) type Pieces = smallvec::SmallVec<[Bytes; 1]>;

/// Retains the first bytes of a message, up to a cap, and counts all of them.
#[derive(Debug, Default)]
pub struct MessageCapture {
    segments: Pieces,
    /// The block small pieces are being copied into; its spare room is never more than the cap
    /// still allows.
    copied: BytesMut,
    /// The capacity of the last block allocated, to double from.
    last_block: usize,
    /// Small slices kept without copying so far.
    small_zero_copy: u8,
    limit: usize,
    retained: usize,
    total: u64,
    cut_short: bool,
}

impl MessageCapture {
    /// A capture keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        MessageCapture {
            limit,
            ..MessageCapture::default()
        }
    }

    /// Offers `frame[start..end]`, the next bytes of the message.
    ///
    /// # Panics
    /// If `start..end` is not a range within `frame`.
    pub fn push(&mut self, frame: &Bytes, start: usize, end: usize) {
        let len = end - start;
        self.total += len as u64;
        let take = len.min(self.limit - self.retained);
        if take == 0 {
            return;
        }
        let nearly_all = frame.len() - take <= ZERO_COPY_SLACK;
        let small_allowed = self.small_zero_copy < SMALL_ZERO_COPY;
        if nearly_all && (take >= ZERO_COPY_MIN || small_allowed) {
            if take < ZERO_COPY_MIN {
                self.small_zero_copy += 1;
            }
            self.end_block();
            self.segments.push(frame.slice(start..start + take));
            self.retained += take;
            return;
        }
        let mut piece = &frame[start..start + take];
        while !piece.is_empty() {
            if self.copied.capacity() == self.copied.len() {
                self.end_block();
                // Doubling from the last block (or the piece's size), up to COPY_BLOCK, and
                // never past what is left of the cap: the blocks never hold more than the cap.
                let grown = (self.last_block * 2)
                    .max(piece.len())
                    .clamp(FIRST_BLOCK, COPY_BLOCK);
                let room = grown.min(self.limit - self.retained);
                self.copied = BytesMut::with_capacity(room);
                self.last_block = room;
            }
            let n = piece.len().min(self.copied.capacity() - self.copied.len());
            self.copied.extend_from_slice(&piece[..n]);
            self.retained += n;
            piece = &piece[n..];
        }
    }

    /// Offers a whole frame.
    pub fn push_all(&mut self, frame: &Bytes) {
        self.push(frame, 0, frame.len());
    }

    /// Bytes retained so far.
    pub fn retained(&self) -> usize {
        self.retained
    }

    /// The value did not end where it should (bad input): mark what is kept as incomplete.
    pub fn mark_cut_short(&mut self) {
        self.cut_short = true;
    }

    /// The bytes copied so far become a segment; the block's spare room stays for later pieces.
    fn end_block(&mut self) {
        if !self.copied.is_empty() {
            self.segments.push(self.copied.split().freeze());
        }
    }

    /// Ends the capture: the retained bytes and the full size.
    pub fn finish(mut self) -> LoggedMessage {
        self.end_block();
        LoggedMessage {
            truncated: self.cut_short || self.total > self.retained as u64,
            segments: self.segments,
            total: self.total,
        }
    }
}

/// A logged message: its first bytes (at most the cap, in pieces that share the traffic's
/// memory) and its full size.
#[derive(Debug, Default, Clone)]
pub struct LoggedMessage {
    pub(crate) segments: Pieces,
    pub(crate) total: u64,
    /// Whether bytes beyond the cap were seen and dropped.
    pub(crate) truncated: bool,
}

impl LoggedMessage {
    /// A message held in one piece, whose full size was `total` bytes.
    pub fn from_bytes(bytes: Bytes, total: u64) -> Self {
        let truncated = total > bytes.len() as u64;
        LoggedMessage {
            segments: if bytes.is_empty() {
                Pieces::new()
            } else {
                smallvec::smallvec![bytes]
            },
            total,
            truncated,
        }
    }

    /// A message written by the reader (a summary, or text it assembled), cut to `cap` bytes.
    pub fn from_vec(bytes: Vec<u8>, cap: usize) -> Self {
        let total = bytes.len() as u64;
        // A cut message gets a buffer of its own, so the longer one is freed, not pinned.
        let kept = if bytes.len() > cap {
            Bytes::copy_from_slice(&bytes[..cap])
        } else {
            Bytes::from(bytes)
        };
        LoggedMessage::from_bytes(kept, total)
    }

    /// A message of which nothing was kept, `total` bytes long.
    pub fn not_kept(total: u64) -> Self {
        LoggedMessage {
            segments: Pieces::new(),
            total,
            truncated: total > 0,
        }
    }

    /// The full size of the message, kept or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether only part of the message was kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The kept bytes, in the pieces they were kept in.
    pub fn segments(&self) -> &[Bytes] {
        &self.segments
    }

    /// The kept bytes in one piece (copied only when there is more than one piece).
    pub fn to_bytes(&self) -> Bytes {
        match self.segments.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => many.concat().into(),
        }
    }

    /// Several captured values logged as one JSON object, `{"name":value,...}`, cut to `cap`
    /// bytes. The names' bytes count in the message's size; the values keep their memory. After
    /// a value that was cut short, nothing more is kept (the text would skip a gap).
    pub(crate) fn object(members: Vec<(&'static str, LoggedMessage)>, cap: usize) -> Self {
        let mut out = LoggedMessage::default();
        let mut kept = 0usize;
        let mut gap = false;
        let mut keep = |bytes: Bytes, out: &mut LoggedMessage, gap: bool| {
            out.total += bytes.len() as u64;
            let room = cap - kept;
            if gap || room == 0 || bytes.is_empty() {
                return;
            }
            let piece = if bytes.len() > room {
                bytes.slice(..room)
            } else {
                bytes
            };
            kept += piece.len();
            out.segments.push(piece);
        };
        let count = members.len();
        for (i, (name, value)) in members.into_iter().enumerate() {
            let open = if i == 0 { "{" } else { "," };
            keep(Bytes::from(format!("{open}\"{name}\":")), &mut out, gap);
            let lost = value.total.saturating_sub(value.segments_len());
            for segment in value.segments {
                keep(segment, &mut out, gap);
            }
            out.total += lost;
            gap |= value.truncated;
        }
        if count > 0 {
            keep(Bytes::from_static(b"}"), &mut out, gap);
        }
        out.truncated = gap || out.total > kept as u64;
        out
    }

    fn segments_len(&self) -> u64 {
        self.segments.iter().map(|s| s.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_frames_are_kept_without_copying() {
        let frames: Vec<Bytes> = (0..4).map(|i| Bytes::from(vec![b'a' + i; 20_000])).collect();
        let mut c = MessageCapture::new(1 << 20);
        for f in &frames {
            c.push_all(f);
        }
        let done = c.finish();
        assert_eq!(done.total, 80_000);
        assert!(!done.truncated);
        assert_eq!(done.segments.len(), 4);
        for (s, f) in done.segments.iter().zip(&frames) {
            assert_eq!(s.as_ptr(), f.as_ptr(), "segment must share the frame's memory");
        }
    }

    #[test]
    fn the_cap_holds_and_small_slices_of_big_frames_are_copied() {
        let big = Bytes::from(vec![b'x'; 100_000]);
        let mut c = MessageCapture::new(1000);
        c.push(&big, 10, 90_000);
        c.push(&big, 0, 5);
        let done = c.finish();
        assert!(done.truncated);
        assert_eq!(done.total, 89_995);
        assert_eq!(done.segments.iter().map(Bytes::len).sum::<usize>(), 1000);
        assert!(done.segments.iter().all(|s| {
            let p = s.as_ptr() as usize;
            let b = big.as_ptr() as usize;
            p < b || p >= b + big.len()
        }));
    }

    #[test]
    fn members_make_one_object_within_the_cap() {
        let a = LoggedMessage::from_bytes(Bytes::from_static(b"\"sys\""), 5);
        let b = LoggedMessage::from_bytes(Bytes::from_static(b"[1,2]"), 5);
        let whole = LoggedMessage::object(vec![("system", a.clone()), ("messages", b.clone())], 100);
        assert_eq!(&whole.to_bytes()[..], br#"{"system":"sys","messages":[1,2]}"#);
        assert_eq!((whole.total, whole.truncated), (33, false));
        let cut = LoggedMessage::object(vec![("system", a), ("messages", b)], 12);
        assert_eq!(&cut.to_bytes()[..], br#"{"system":"s"#);
        assert_eq!((cut.total, cut.truncated), (33, true));
        let short = LoggedMessage::from_bytes(Bytes::from_static(b"\"sy"), 5);
        let after_gap = LoggedMessage::object(
            vec![
                ("system", short),
                (
                    "messages",
                    LoggedMessage::from_bytes(Bytes::from_static(b"[]"), 2),
                ),
            ],
            100,
        );
        assert_eq!(&after_gap.to_bytes()[..], br#"{"system":"sy"#);
        assert_eq!((after_gap.total, after_gap.truncated), (30, true));
    }

    #[test]
    fn a_message_sent_a_byte_at_a_time_is_held_in_blocks_within_the_cap() {
        // One-byte frames cut from one buffer, as a server's read buffer is cut.
        let buffer = Bytes::from((0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        for cap in [0, 1, 7, COPY_BLOCK - 1, COPY_BLOCK, 50_000, 200_000] {
            let mut c = MessageCapture::new(cap);
            for i in 0..buffer.len() {
                c.push(&buffer.slice(i..i + 1), 0, 1);
            }
            assert!(c.copied.capacity() <= cap, "a block never reaches past the cap");
            let done = c.finish();
            let kept = cap.min(buffer.len());
            assert_eq!(done.to_bytes(), buffer.slice(..kept), "cap {cap}");
            assert_eq!(done.total, 100_000);
            assert!(
                done.segments.len() <= kept / COPY_BLOCK + 8 + SMALL_ZERO_COPY as usize,
                "cap {cap}: {} segments",
                done.segments.len()
            );
            let pinning = done.segments.iter().filter(|s| {
                let (p, b) = (s.as_ptr() as usize, buffer.as_ptr() as usize);
                p >= b && p < b + buffer.len()
            });
            assert!(
                pinning.count() <= SMALL_ZERO_COPY as usize,
                "only the first piece shares the traffic's buffer"
            );
        }
    }

    #[test]
    fn copied_blocks_and_zero_copy_slices_keep_their_order() {
        let big = Bytes::from(vec![b'B'; ZERO_COPY_MIN]);
        let mut c = MessageCapture::new(1 << 20);
        c.small_zero_copy = SMALL_ZERO_COPY;
        let mut expected = Vec::new();
        for i in 0..50u8 {
            let small = Bytes::from(vec![b'a' + i % 26; 1 + i as usize * 37]);
            c.push_all(&small);
            expected.extend_from_slice(&small);
            if i % 10 == 0 {
                c.push_all(&big);
                expected.extend_from_slice(&big);
            }
        }
        let done = c.finish();
        assert_eq!(&done.to_bytes()[..], &expected[..]);
        assert_eq!(
            done.segments
                .iter()
                .filter(|s| s.as_ptr() == big.as_ptr())
                .count(),
            5,
            "the large frames are kept as they are"
        );
    }

    #[test]
    fn a_zero_cap_counts_but_keeps_nothing() {
        let mut c = MessageCapture::new(0);
        c.push_all(&Bytes::from_static(b"hello"));
        let done = c.finish();
        assert_eq!(done.total, 5);
        assert!(done.segments.is_empty());
        assert!(done.truncated);
    }
}
