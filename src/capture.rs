//! The size limiter: retains the bytes of a message as they pass, up to a cap.
//!
//! Bytes are kept as slices of the frames they arrived in (no copy) when the slice is most of its
//! frame; a small slice of a large frame is copied instead, so a retained slice never keeps much
//! more than itself alive. Interior frames of a long message are always kept whole, so only the
//! first and last frame of a message (or the frame where the cap falls) can be copied. Memory
//! held is therefore at most the cap plus `2 * ZERO_COPY_SLACK`.

use bytes::{Bytes, BytesMut};

/// How many bytes of a frame beyond the retained slice may be kept alive to avoid a copy.
pub(crate) const ZERO_COPY_SLACK: usize = 4096;

/// Retained bytes of one message, with the full size seen.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    segments: Vec<Bytes>,
    copied: BytesMut,
    limit: usize,
    retained: usize,
    total: u64,
    cut_short: bool,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Self {
        Capture {
            limit,
            ..Capture::default()
        }
    }

    /// Offers `frame[start..end]`, the next bytes of the message.
    pub(crate) fn push(&mut self, frame: &Bytes, start: usize, end: usize) {
        let len = end - start;
        self.total += len as u64;
        let take = len.min(self.limit - self.retained);
        if take == 0 {
            return;
        }
        self.retained += take;
        if frame.len() - take <= ZERO_COPY_SLACK {
            self.flush_copied();
            self.segments.push(frame.slice(start..start + take));
        } else {
            self.copied.extend_from_slice(&frame[start..start + take]);
        }
    }

    /// Offers a whole frame.
    pub(crate) fn push_all(&mut self, frame: &Bytes) {
        self.push(frame, 0, frame.len());
    }

    /// The value did not end where it should (bad input): mark what is kept as incomplete.
    pub(crate) fn mark_cut_short(&mut self) {
        self.cut_short = true;
    }

    fn flush_copied(&mut self) {
        if !self.copied.is_empty() {
            self.segments.push(self.copied.split().freeze());
        }
    }

    /// Ends the capture: the retained segments and the full size.
    pub(crate) fn finish(mut self) -> Captured {
        self.flush_copied();
        Captured {
            truncated: self.cut_short || self.total > self.retained as u64,
            segments: self.segments,
            total: self.total,
        }
    }
}

/// A finished capture: the first bytes of a message (at most the cap) and its full size.
#[derive(Debug, Default, Clone)]
pub(crate) struct Captured {
    pub(crate) segments: Vec<Bytes>,
    pub(crate) total: u64,
    /// Whether bytes beyond the cap were seen and dropped.
    pub(crate) truncated: bool,
}

impl Captured {
    /// A message held in one piece (built by the layer rather than captured).
    pub(crate) fn from_bytes(bytes: Bytes, total: u64) -> Self {
        let truncated = total > bytes.len() as u64;
        Captured {
            segments: if bytes.is_empty() { Vec::new() } else { vec![bytes] },
            total,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_frames_are_kept_without_copying() {
        let frames: Vec<Bytes> = (0..4).map(|i| Bytes::from(vec![b'a' + i; 10_000])).collect();
        let mut c = Capture::new(1 << 20);
        for f in &frames {
            c.push_all(f);
        }
        let done = c.finish();
        assert_eq!(done.total, 40_000);
        assert!(!done.truncated);
        assert_eq!(done.segments.len(), 4);
        for (s, f) in done.segments.iter().zip(&frames) {
            assert_eq!(s.as_ptr(), f.as_ptr(), "segment must share the frame's memory");
        }
    }

    #[test]
    fn the_cap_holds_and_small_slices_of_big_frames_are_copied() {
        let big = Bytes::from(vec![b'x'; 100_000]);
        let mut c = Capture::new(1000);
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
    fn a_zero_cap_counts_but_keeps_nothing() {
        let mut c = Capture::new(0);
        c.push_all(&Bytes::from_static(b"hello"));
        let done = c.finish();
        assert_eq!(done.total, 5);
        assert!(done.segments.is_empty());
        assert!(done.truncated);
    }
}
