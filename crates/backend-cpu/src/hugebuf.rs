//! Large zeroed byte buffers on transparent huge pages where the OS offers them.
//!
//! Packed weights are streamed from memory once per token. On 4 KiB pages a core takes a TLB
//! miss every 4 KiB, and under virtualization each miss is a two-level page walk; on 2 MiB
//! pages the misses all but vanish. Linux backs an anonymous mapping with huge pages when it
//! is advised to (`MADV_HUGEPAGE`, honoured in the default `madvise` THP mode), so the buffer
//! is such a mapping, over-allocated by one huge page so its bytes start on a 2 MiB boundary
//! (the slack is never touched, so it is never resident).
//! Where that fails (other systems, no memory for the mapping) it is an ordinary `Vec`.

use std::ops::{Deref, DerefMut};

/// Huge page size the buffer aligns to.
const HUGE_PAGE: usize = 2 << 20;
/// Buffers smaller than this stay on the heap (they could not hold a whole huge page).
const MIN_MAPPED: usize = HUGE_PAGE;

/// A zero-initialised, fixed-length byte buffer (see the module doc).
pub struct HugeBuf(Inner);

enum Inner {
    Mapped {
        map: memmap2::MmapMut,
        offset: usize,
        len: usize,
    },
    Heap(Vec<u8>),
}

impl HugeBuf {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        if len < MIN_MAPPED {
            return Self(Inner::Heap(vec![0; len]));
        }
        match Self::map(len) {
            Some(buf) => buf,
            None => Self(Inner::Heap(vec![0; len])),
        }
    }

    fn map(len: usize) -> Option<Self> {
        let map = memmap2::MmapMut::map_anon(len.checked_add(HUGE_PAGE)?).ok()?;
        let offset = (map.as_ptr() as usize).next_multiple_of(HUGE_PAGE) - map.as_ptr() as usize;
        // Advice only: where the kernel has no THP the pages are ordinary ones. Only whole huge
        // pages inside the buffer are advised, so a partly used last one never adds to the
        // resident size.
        #[cfg(target_os = "linux")]
        let _ = map.advise_range(
            memmap2::Advice::HugePage,
            offset,
            len / HUGE_PAGE * HUGE_PAGE,
        );
        Some(Self(Inner::Mapped { map, offset, len }))
    }

    /// Whether the bytes live in a huge-page-advised mapping (not the heap fallback).
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Inner::Mapped { .. })
    }
}

impl Deref for HugeBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Inner::Mapped { map, offset, len } => &map[*offset..*offset + *len],
            Inner::Heap(v) => v,
        }
    }
}

impl DerefMut for HugeBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Inner::Mapped { map, offset, len } => &mut map[*offset..*offset + *len],
            Inner::Heap(v) => v,
        }
    }
}

impl Clone for HugeBuf {
    fn clone(&self) -> Self {
        let mut copy = Self::zeroed(self.len());
        copy.copy_from_slice(self);
        copy
    }
}

impl std::fmt::Debug for HugeBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeBuf")
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_buffers_stay_on_the_heap_and_large_ones_are_aligned_zeroed_and_writable() {
        let small = HugeBuf::zeroed(1000);
        assert!(!small.is_mapped());
        assert_eq!(small.len(), 1000);
        assert!(small.iter().all(|&b| b == 0));

        let len = MIN_MAPPED + 12345;
        let mut big = HugeBuf::zeroed(len);
        assert_eq!(big.len(), len);
        if big.is_mapped() {
            assert_eq!(
                big.as_ptr() as usize % HUGE_PAGE,
                0,
                "starts on a huge page"
            );
        }
        assert!(big.iter().all(|&b| b == 0));
        big[len - 1] = 7;
        big[0] = 3;
        let copy = big.clone();
        assert_eq!((copy[0], copy[len - 1], copy.len()), (3, 7, len));
        assert!(copy[1..len - 1].iter().all(|&b| b == 0));
    }

    #[test]
    fn empty_buffer() {
        let empty = HugeBuf::zeroed(0);
        assert!(empty.is_empty());
    }
}
