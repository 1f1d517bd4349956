//! Shared write access to one slice from several pool threads that write disjoint parts.
//!
//! The matmul splits its output by weight rows, which are strided in `y` (`y[t * n_out + o]`),
//! and its activation scratch by token rows; neither split is expressible with
//! `chunks_mut`, so threads write through this wrapper under the documented disjointness rule.

use std::marker::PhantomData;

/// A `&mut [T]` that several threads may write, each to indices no other thread touches.
pub(crate) struct DisjointMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: the wrapper only hands out access through `unsafe` methods whose contract forbids
// two threads from touching the same index, so sharing it is sound for `Send` elements.
unsafe impl<T: Send> Sync for DisjointMut<'_, T> {}

impl<'a, T> DisjointMut<'a, T> {
    /// Wraps `slice` for the duration of its borrow.
    pub(crate) fn new(slice: &'a mut [T]) -> Self {
        DisjointMut {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _borrow: PhantomData,
        }
    }

    /// Writes `value` at `idx` (panics when out of bounds).
    ///
    /// # Safety
    /// No other thread may read or write index `idx` while the wrapper is shared.
    #[inline]
    pub(crate) unsafe fn write(&self, idx: usize, value: T) {
        assert!(idx < self.len, "index {idx} out of bounds ({})", self.len);
        // SAFETY: in bounds (checked above) of the slice borrowed for 'a; exclusive access to
        // this index is the caller's contract.
        unsafe { self.ptr.add(idx).write(value) }
    }

    /// The sub-slice `start..start + len` (panics when out of bounds).
    ///
    /// # Safety
    /// No other thread may access any index of this range while the returned slice lives.
    #[inline]
    #[allow(clippy::mut_from_ref)] // handing out disjoint `&mut` parts is the point
    pub(crate) unsafe fn range(&self, start: usize, len: usize) -> &mut [T] {
        assert!(
            start <= self.len && len <= self.len - start,
            "range {start}+{len} of {}",
            self.len
        );
        // SAFETY: the range is in bounds (checked above) of the slice borrowed for 'a; that no
        // other thread touches it is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}
