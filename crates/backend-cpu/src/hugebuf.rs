//! Zeroed byte buffers on transparent huge pages where the OS offers them.
//!
//! Packed weights are streamed from memory once per token. On 4 KiB pages a core takes a TLB
//! miss every 4 KiB, and under virtualization each miss is a two-level page walk; the
//! hardware prefetchers also stop at every 4 KiB page boundary. On 2 MiB pages the misses all
//! but vanish. Linux backs an anonymous mapping with huge pages when it is advised to
//! (`MADV_HUGEPAGE`, honoured in the default `madvise` THP mode).
//!
//! A model's weights are mostly far smaller than a huge page (a 576 × 576 Q4_1 projection is
//! 207 KB), so buffers below half of [`SLAB_BYTES`] are carved one after another out of shared
//! *slabs*: mappings of [`SLAB_BYTES`] that start on a 2 MiB boundary and are advised whole.
//! Weights packed in the order the forward pass first uses them so also lie in that order in
//! memory. A slab's range is handed out once and never reused, so it is still zero; the slab
//! is unmapped when its last buffer is dropped (the allocator keeps only a weak reference).
//! Only touched pages are resident, so the slack is the unused end of the last huge page a
//! slab has touched. Buffers of half a slab or more get a mapping of their own, whose whole
//! huge pages are advised (a partly used last one never adds to the resident size).
//! Where a mapping fails (other systems, no memory for the mapping) a buffer is an ordinary
//! `Vec`.
//!
//! Measured on the 2-vCPU Zen 3 VM of the benches (`examples/matmul_speed.rs`, 60 Q4_1
//! 1536 × 576 weights of one token, alternating runs): 32-35 GB/s on two threads in slabs
//! against 20-31 GB/s on 4 KiB heap pages; 16-18 against 11-15 GB/s on one.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Huge page size the buffers align to.
const HUGE_PAGE: usize = 2 << 20;
/// Bytes of one slab; buffers of at least half of it get a mapping of their own. Reserving
/// address space costs nothing until pages are touched.
const SLAB_BYTES: usize = 256 << 20;
/// Alignment of a buffer inside a slab: a cache line, so no two buffers share one.
const SLAB_ALIGN: usize = 64;

/// A zero-initialised, fixed-length byte buffer (see the module doc).
pub struct HugeBuf(Inner);

enum Inner {
    /// Bytes `offset..offset + len` of a region: a shared slab, or the buffer's own mapping.
    Mapped {
        region: Arc<Region>,
        offset: usize,
        len: usize,
    },
    Heap(Vec<u8>),
}

/// An anonymous mapping whose usable bytes start on a huge-page boundary.
struct Region {
    /// Keeps the mapping alive; accessed only through `base`.
    _map: memmap2::MmapMut,
    /// The first usable byte, on a huge-page boundary.
    base: NonNull<u8>,
    /// Usable bytes from `base`.
    cap: usize,
}

// SAFETY: `base` points into `_map`, which lives as long as the `Region`; the region itself is
// never read or written through, only the disjoint ranges its `HugeBuf`s own, each with Rust's
// usual `&`/`&mut` rules applied by the owning `HugeBuf`.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

/// The slab being filled and the bytes of it handed out.
static SLABS: Mutex<(Weak<Region>, usize)> = Mutex::new((Weak::new(), 0));

impl Region {
    /// `cap` usable bytes, the first `advised` of them (whole huge pages) advised to the
    /// kernel as huge-page memory. Over-allocated by one huge page to align `base`; the slack
    /// is never touched, so it is never resident.
    fn new(cap: usize, advised: usize) -> Option<Region> {
        let mut map = memmap2::MmapMut::map_anon(cap.checked_add(HUGE_PAGE)?).ok()?;
        let offset = (map.as_ptr() as usize).next_multiple_of(HUGE_PAGE) - map.as_ptr() as usize;
        // Advice only: where the kernel has no THP the pages are ordinary ones.
        #[cfg(target_os = "linux")]
        let _ = map.advise_range(memmap2::Advice::HugePage, offset, advised);
        #[cfg(not(target_os = "linux"))]
        let _ = advised;
        let base = NonNull::new(map[offset..].as_mut_ptr())?;
        Some(Region {
            _map: map,
            base,
            cap,
        })
    }
}

impl HugeBuf {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        let buf = if len == 0 {
            None
        } else if len < SLAB_BYTES / 2 {
            Self::carve(len)
        } else {
            // Only whole huge pages are advised, so a partly used last one never adds to the
            // resident size.
            Region::new(len, len / HUGE_PAGE * HUGE_PAGE).map(|region| {
                Self(Inner::Mapped {
                    region: Arc::new(region),
                    offset: 0,
                    len,
                })
            })
        };
        buf.unwrap_or_else(|| Self(Inner::Heap(vec![0; len])))
    }

    /// The next `len` bytes of the current slab, or of a new one when they do not fit.
    fn carve(len: usize) -> Option<Self> {
        let mut slabs = SLABS.lock().unwrap_or_else(PoisonError::into_inner);
        let (current, used) = &mut *slabs;
        let region = match current.upgrade() {
            Some(slab) if slab.cap - *used >= len => slab,
            _ => {
                let slab = Arc::new(Region::new(SLAB_BYTES, SLAB_BYTES)?);
                *current = Arc::downgrade(&slab);
                *used = 0;
                slab
            }
        };
        let offset = *used;
        *used = (offset + len).next_multiple_of(SLAB_ALIGN).min(region.cap);
        Some(Self(Inner::Mapped {
            region,
            offset,
            len,
        }))
    }

    /// Whether the bytes live in a huge-page-advised mapping (not the heap fallback).
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Inner::Mapped { .. })
    }
}

impl Deref for HugeBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let (region, offset, len) = match &self.0 {
            Inner::Mapped {
                region,
                offset,
                len,
            } => (region, *offset, *len),
            Inner::Heap(v) => return v,
        };
        // SAFETY: `offset..offset + len` lies inside the region (`zeroed` and `carve` checked
        // it against `cap`) and belongs to this buffer alone; `&self` rules out a `&mut` to it.
        unsafe { std::slice::from_raw_parts(region.base.as_ptr().add(offset), len) }
    }
}

impl DerefMut for HugeBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        let (region, offset, len) = match &mut self.0 {
            Inner::Mapped {
                region,
                offset,
                len,
            } => (region, *offset, *len),
            Inner::Heap(v) => return v,
        };
        // SAFETY: as in `deref`; `&mut self` makes this the only reference to the range.
        unsafe { std::slice::from_raw_parts_mut(region.base.as_ptr().add(offset), len) }
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

    /// Writes `fill` over `buf` and checks it reads back, with the buffer zeroed before.
    fn zeroed_then_writable(buf: &mut HugeBuf, fill: u8) {
        assert!(buf.iter().all(|&b| b == 0), "zeroed");
        buf.fill(fill);
        assert!(buf.iter().all(|&b| b == fill));
    }

    #[test]
    fn small_buffers_share_slabs_without_overlapping() {
        let mut bufs: Vec<HugeBuf> = [1000, 1, 64, 207_360, 63, 1 << 20]
            .iter()
            .map(|&len| HugeBuf::zeroed(len))
            .collect();
        for (i, buf) in bufs.iter_mut().enumerate() {
            assert!(buf.is_mapped(), "in a slab");
            assert_eq!(buf.as_ptr() as usize % SLAB_ALIGN, 0, "cache-line aligned");
            zeroed_then_writable(buf, i as u8 + 1);
        }
        // Each still holds its own fill: no two ranges overlap.
        for (i, buf) in bufs.iter().enumerate() {
            assert!(buf.iter().all(|&b| b == i as u8 + 1), "buffer {i} intact");
        }
        let copy = bufs[3].clone();
        assert_eq!(&copy[..], &bufs[3][..]);
        drop(bufs);
        // A buffer carved after others were dropped is zeroed (ranges are never reused).
        zeroed_then_writable(&mut HugeBuf::zeroed(207_360), 9);
    }

    #[test]
    fn more_than_a_slab_of_small_buffers_spills_into_new_slabs() {
        let len = SLAB_BYTES / 2 - 1;
        let mut bufs: Vec<HugeBuf> = (0..3).map(|_| HugeBuf::zeroed(len)).collect();
        for (i, buf) in bufs.iter_mut().enumerate() {
            buf[0] = i as u8 + 1;
            buf[len - 1] = i as u8 + 1;
        }
        for (i, buf) in bufs.iter().enumerate() {
            assert_eq!(
                (buf.len(), buf[0], buf[len - 1]),
                (len, i as u8 + 1, i as u8 + 1)
            );
        }
    }

    #[test]
    fn large_buffers_get_their_own_aligned_mapping() {
        let len = SLAB_BYTES / 2 + 12345;
        let mut big = HugeBuf::zeroed(len);
        assert_eq!(big.len(), len);
        if big.is_mapped() {
            assert_eq!(
                big.as_ptr() as usize % HUGE_PAGE,
                0,
                "starts on a huge page"
            );
        }
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
