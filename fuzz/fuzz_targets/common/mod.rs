//! What the fuzz targets share.
#![allow(dead_code)] // each target uses only some of it

use bytes::Bytes;

/// Cuts `whole` into frames at `splits`, each taken modulo `whole.len() + 1` and then sorted, so
/// every input names a valid cut pattern (repeated points give empty frames, which real bodies
/// can yield too). The frames are slices of `whole`, as frames of one buffer would be.
pub fn cut(whole: &Bytes, splits: &[u16]) -> Vec<Bytes> {
    let len = whole.len();
    let mut at: Vec<usize> = splits.iter().map(|&s| usize::from(s) % (len + 1)).collect();
    at.sort_unstable();
    let mut frames = Vec::with_capacity(at.len() + 1);
    let mut last = 0;
    for p in at.into_iter().chain(std::iter::once(len)) {
        frames.push(whole.slice(last..p));
        last = p;
    }
    frames
}

/// One frame per byte: the harshest split, checked on every input rather than left for the
/// fuzzer to find.
pub fn bytewise(whole: &Bytes) -> Vec<Bytes> {
    (0..whole.len()).map(|i| whole.slice(i..i + 1)).collect()
}
