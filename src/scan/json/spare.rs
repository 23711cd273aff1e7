//! Vectors a scan reuses from an earlier one on the same thread, instead of allocating its
//! own: a scanner's nesting stack, captures, counts and scalars are each a few small entries,
//! and every exchange runs two scans, so they were eight of an exchange's allocations (and as
//! many frees, often on another thread).
//!
//! Each thread keeps at most [`KEPT`] vectors of each kind, each of at most [`MAX_BYTES`]
//! of capacity; anything larger, or beyond that count, is freed as usual. So what is kept stays
//! under `KEPT × MAX_BYTES` per kind and thread, whatever the traffic.

use std::cell::RefCell;
use std::thread::LocalKey;

/// Vectors of one kind kept per thread.
pub(super) const KEPT: usize = 16;

/// The largest capacity, in bytes, a kept vector may have.
pub(super) const MAX_BYTES: usize = 4096;

/// The spare vectors of one element type.
pub(super) struct Spares<T>(RefCell<Vec<Vec<T>>>);

impl<T> Spares<T> {
    pub(super) const fn new() -> Self {
        Spares(RefCell::new(Vec::new()))
    }
}

/// An empty vector: a spare one when the thread has one, else a new one (which allocates when
/// first pushed to).
pub(super) fn take<T: 'static>(spares: &'static LocalKey<Spares<T>>) -> Vec<T> {
    spares
        .try_with(|s| s.0.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Gives `v` back for a later scan on this thread: emptied, and kept only when it is small
/// and the thread has room.
pub(super) fn give<T: 'static>(spares: &'static LocalKey<Spares<T>>, mut v: Vec<T>) {
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>().max(1));
    if v.capacity() == 0 || bytes > MAX_BYTES {
        return;
    }
    v.clear();
    // During the thread's teardown the spares may be gone: the vector is then freed.
    let _ = spares.try_with(|s| {
        if let Ok(mut s) = s.0.try_borrow_mut() {
            if s.len() < KEPT {
                s.push(v);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static NUMBERS: Spares<u64> = const { Spares::new() };
    }

    #[test]
    fn a_vector_given_back_is_taken_again_empty() {
        let mut v = take(&NUMBERS);
        v.extend([1, 2, 3]);
        let at = v.as_ptr();
        give(&NUMBERS, v);
        let again = take(&NUMBERS);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same buffer, not a new allocation");
        assert!(again.capacity() >= 3);
    }

    #[test]
    fn what_is_kept_is_bounded() {
        // Too large to keep: freed.
        let big: Vec<u64> = Vec::with_capacity(MAX_BYTES / 8 + 1);
        give(&NUMBERS, big);
        assert_eq!(take(&NUMBERS).capacity(), 0);
        // No more than KEPT of a kind.
        for _ in 0..KEPT * 2 {
            give(&NUMBERS, Vec::with_capacity(4));
        }
        NUMBERS.with(|s| assert_eq!(s.0.borrow().len(), KEPT));
    }
}
