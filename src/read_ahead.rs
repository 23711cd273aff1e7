//! Request read-ahead: the frames of a request body read before the inner service is called, so
//! that a request the service rejects, fails on or never reads still logs its prompt, and held
//! until the service takes them.
//!
//! Frames are held as they came while they are few or large (4 KiB or more: the very same
//! `Bytes`, no copy). Past the first few, small frames are joined into blocks of 16 KiB, so a
//! body sent a byte at a time is held as a few blocks instead of millions of one-byte slices,
//! each pinning the buffer it was cut from: what is held stays within the body's own size plus
//! a small constant, whatever its framing. Users turn it on and off with
//! [`LogConfigBuilder::request_read_ahead`](crate::LogConfigBuilder::request_read_ahead).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use http_body::Frame;

/// Frames kept as they came before small ones are joined.
const KEPT_AS_THEY_CAME: usize = 4;
/// A data frame at least this large is always kept as it came.
pub(crate) const LARGE_FRAME: usize = 4096;
/// The size of the blocks small frames are joined into.
const JOIN_BLOCK: usize = 16 * 1024;

/// The frames read ahead of the inner service, in order.
#[derive(Debug, Default)]
pub(crate) struct HeldFrames {
    /// The first frame, apart, so a body of one frame (the usual request) costs no queue.
    first: Option<Frame<Bytes>>,
    rest: VecDeque<Frame<Bytes>>,
    /// Small frames being joined; they come after everything in `rest`.
    joining: BytesMut,
    /// Data bytes held.
    bytes: usize,
}

impl HeldFrames {
    /// Holds the next frame of the body.
    pub(crate) fn push(&mut self, frame: Frame<Bytes>) {
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(trailers) => {
                self.push_as_it_came(trailers);
                return;
            }
        };
        if data.is_empty() {
            return;
        }
        self.bytes += data.len();
        let held = usize::from(self.first.is_some()) + self.rest.len();
        if data.len() >= LARGE_FRAME || (held < KEPT_AS_THEY_CAME && self.joining.is_empty()) {
            self.push_as_it_came(Frame::data(data));
            return;
        }
        if self.joining.capacity() - self.joining.len() < data.len() {
            self.end_join();
            self.joining = BytesMut::with_capacity(JOIN_BLOCK);
        }
        self.joining.extend_from_slice(&data);
    }

    fn push_as_it_came(&mut self, frame: Frame<Bytes>) {
        self.end_join();
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(frame);
        } else {
            self.rest.push_back(frame);
        }
    }

    /// Ends the block being joined: it becomes a frame of its own.
    fn end_join(&mut self) {
        if !self.joining.is_empty() {
            let block = Frame::data(self.joining.split().freeze());
            match self.first {
                None if self.rest.is_empty() => self.first = Some(block),
                _ => self.rest.push_back(block),
            }
        }
    }

    /// The next frame to hand on.
    pub(crate) fn pop(&mut self) -> Option<Frame<Bytes>> {
        let frame = match self.first.take() {
            Some(f) => Some(f),
            None => match self.rest.pop_front() {
                Some(f) => Some(f),
                None => {
                    self.end_join();
                    self.first.take()
                }
            },
        };
        if let Some(data) = frame.as_ref().and_then(Frame::data_ref) {
            self.bytes -= data.len();
        }
        frame
    }

    /// Every frame held, in order (nothing is held after).
    pub(crate) fn take_all(&mut self) -> Vec<Frame<Bytes>> {
        let mut frames = Vec::with_capacity(self.rest.len() + 2);
        while let Some(frame) = self.pop() {
            frames.push(frame);
        }
        frames
    }

    /// Holds `frames` as they are, in order (after a [`take_all`](Self::take_all)).
    pub(crate) fn restore(&mut self, frames: Vec<Frame<Bytes>>) {
        for frame in frames {
            if let Some(data) = frame.data_ref() {
                self.bytes += data.len();
            }
            self.push_as_it_came(frame);
        }
    }

    /// Data bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty() && self.joining.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn drain(held: &mut HeldFrames) -> Vec<Frame<Bytes>> {
        std::iter::from_fn(|| held.pop()).collect()
    }

    #[test]
    fn large_frames_come_back_as_the_same_bytes() {
        let frames: Vec<Bytes> = (0..10)
            .map(|i| Bytes::from(vec![i as u8; LARGE_FRAME + i]))
            .collect();
        let mut held = HeldFrames::default();
        for f in &frames {
            held.push(Frame::data(f.clone()));
        }
        assert_eq!(held.bytes(), frames.iter().map(Bytes::len).sum::<usize>());
        let out = drain(&mut held);
        assert_eq!(out.len(), frames.len());
        for (o, f) in out.iter().zip(&frames) {
            let o = o.data_ref().unwrap();
            assert_eq!(o.as_ptr(), f.as_ptr(), "the very same bytes, not a copy");
            assert_eq!(o.len(), f.len());
        }
        assert_eq!(held.bytes(), 0);
        assert!(held.is_empty());
    }

    #[test]
    fn a_body_sent_a_byte_at_a_time_is_held_in_few_blocks_with_its_bytes_in_order() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut held = HeldFrames::default();
        for b in &body {
            held.push(Frame::data(Bytes::copy_from_slice(&[*b])));
        }
        let out = drain(&mut held);
        assert!(
            out.len() <= KEPT_AS_THEY_CAME + body.len() / JOIN_BLOCK + 1,
            "{} frames",
            out.len()
        );
        let joined: Vec<u8> = out.iter().flat_map(|f| f.data_ref().unwrap().to_vec()).collect();
        assert_eq!(joined, body);
    }

    #[test]
    fn small_large_and_trailers_keep_their_order() {
        let mut held = HeldFrames::default();
        let mut expected = Vec::new();
        for i in 0..40usize {
            let len = if i % 7 == 0 { LARGE_FRAME * 2 } else { 1 + i };
            let f = Bytes::from(vec![b'a' + (i % 26) as u8; len]);
            expected.extend_from_slice(&f);
            held.push(Frame::data(f));
            held.push(Frame::data(Bytes::new()));
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("x-t", "1".parse().unwrap());
        held.push(Frame::trailers(trailers));
        let out = drain(&mut held);
        let last = out.last().unwrap();
        assert_eq!(last.trailers_ref().unwrap()["x-t"], "1", "trailers come last");
        let joined: Vec<u8> = out
            .iter()
            .filter_map(|f| f.data_ref())
            .flat_map(|d| d.to_vec())
            .collect();
        assert_eq!(joined, expected);
        assert!(out.iter().all(|f| f.data_ref().is_none_or(|d| !d.is_empty())));
    }
}
